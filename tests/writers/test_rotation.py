"""Rotation: a part closes on the line that makes it reach rotate_bytes."""
import os

import numpy as np
import pyarrow as pa
import pytest

from cdrexp.config import OutputConfig
from cdrexp.model.schema import CSV_HEADER
from cdrexp.writers import _csv, _csv_text, write_unit
from writers_readback import plain, raw_text, read_csv, read_parts

HEADER = CSV_HEADER.encode()


def _write(tmp_path, table, unit, fmt, rotate, threads=1):
    os.makedirs(tmp_path / "2025-01-06", exist_ok=True)
    return write_unit(table, OutputConfig(format=fmt, rotate_bytes=rotate), str(tmp_path),
                      unit, threads=threads)


def _check_parts(tmp_path, table, res, rotate):
    texts = [raw_text(os.path.join(tmp_path, f.path)) for f in res.files]
    longest = max(len(line) + 1 for t in texts for line in t.split(b"\n")[1:-1])
    for i, (info, text) in enumerate(zip(res.files, texts)):
        assert info.path.endswith(f"_p{i:03d}" + info.path[info.path.index("."):])
        assert text.startswith(HEADER) and text.count(HEADER) == 1
        assert text.count(b"\n") - 1 == info.rows > 0
        assert len(text) < rotate + longest
        if i < len(texts) - 1:
            assert len(text) >= rotate
            # the part ended on the line that reached the limit, not later
            last_line = len(text) - text.rstrip(b"\n").rfind(b"\n") - 1
            assert len(text) - last_line < rotate
        ts = np.asarray(read_csv(os.path.join(tmp_path, info.path))["start_ts_ms"])
        assert np.all(np.diff(ts) >= 0)
    assert sum(len(t) for t in texts) == res.uncompressed_bytes
    assert read_parts(str(tmp_path), res.files).equals(plain(table))


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("fmt", ["csv", "csv_gz", "csv_zst"])
def test_small_rotate_gives_many_parts_under_the_limit(tmp_path, records, unit, fmt,
                                                       threads):
    table = records(3000, seed=21)
    res = _write(tmp_path, table, unit, fmt, 20_000, threads)
    assert len(res.files) > 10
    _check_parts(tmp_path, table, res, 20_000)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("fmt", ["csv", "csv_zst"])
def test_rotation_across_formatted_slices(tmp_path, records, unit, monkeypatch, fmt,
                                          threads):
    # slices smaller than a part, so parts span several slices and cuts land anywhere
    monkeypatch.setattr(_csv, "BATCH_ROWS", 97)
    table = records(2500, seed=22)
    res = _write(tmp_path, table, unit, fmt, 30_000, threads)
    assert len(res.files) > 5
    _check_parts(tmp_path, table, res, 30_000)


def test_rotate_below_header_gives_one_row_per_part(tmp_path, records, unit):
    table = records(7, seed=23)
    res = _write(tmp_path, table, unit, "csv", len(HEADER) - 10)
    assert [f.rows for f in res.files] == [1] * 7
    assert read_parts(str(tmp_path), res.files).equals(plain(table))


def test_part_ending_exactly_at_the_end_opens_no_empty_part(tmp_path, records, unit):
    table = records(50, seed=24)
    size = len(HEADER) + _csv_text.format_csv(table).size
    res = _write(tmp_path, table, unit, "csv", size)
    assert [f.rows for f in res.files] == [50]


def test_start_order_across_parts(tmp_path, records, unit):
    table = records(3000, seed=25)
    res = _write(tmp_path, table, unit, "csv", 15_000)
    ts = np.concatenate([np.asarray(read_csv(os.path.join(tmp_path, f.path))["start_ts_ms"])
                         for f in res.files])
    assert np.array_equal(ts, np.asarray(table["start_ts_ms"]))
    assert isinstance(res.files[0].rows, int) and pa.types.is_int64(
        read_csv(os.path.join(tmp_path, res.files[0].path)).schema.field(4).type)
