"""Faults while writing: no file under a final name, no temp file, the path named."""
import errno
import os
import time

import pyarrow.parquet as pq
import pytest

from cdrexp.config import GeneratorConfig, OutputConfig
from cdrexp.writers import (OutputError, _csv, _csv_text, _parquet, prepare_output,
                            start_writing, write_unit)
from cdrexp.writers._fs import LocalFs
from writers_readback import files_under


class _FullDisk:
    """A file on a disk with ``disk["room"]`` bytes free, failing when it is full."""

    def __init__(self, real, disk, on_close=False):
        self.real, self.disk, self.on_close = real, disk, on_close

    def write(self, data):
        n = memoryview(data).nbytes
        if n > self.disk["room"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.disk["room"] -= n
        return self.real.write(data)

    def close(self):
        self.real.close()
        if self.on_close:
            raise OSError(errno.ENOSPC, "No space left on device")


def _full_disk_after(monkeypatch, total, on_close=False):
    disk = {"room": total}
    real_open = LocalFs.open_write

    def open_write(self, rel):
        return _FullDisk(real_open(self, rel), disk, on_close)

    monkeypatch.setattr(LocalFs, "open_write", open_write)


def _out(tmp_path):
    os.makedirs(tmp_path / "2025-01-06", exist_ok=True)
    return str(tmp_path)


@pytest.mark.parametrize("fmt", ["csv", "csv_gz", "csv_zst", "parquet"])
def test_full_disk_mid_unit_leaves_nothing(tmp_path, records, unit, monkeypatch, fmt):
    monkeypatch.setattr(_csv, "BATCH_ROWS", 500)
    table = records(12_000, seed=31)
    cfg = OutputConfig(format=fmt, rotate_bytes=200_000)
    whole = write_unit(table, cfg, _out(tmp_path / "whole"), unit)
    assert len(whole.files) >= 5
    # the disk fills while the unit is past its first parts
    _full_disk_after(monkeypatch, sum(f.bytes for f in whole.files) * 6 // 10)
    tmp_path = tmp_path / "full"
    with pytest.raises(OutputError) as info:
        write_unit(table, cfg, _out(tmp_path), unit)
    msg = str(info.value)
    assert os.path.join(str(tmp_path), "2025-01-06", "cdr_2025-01-06_c00003_p") in msg
    assert "No space left on device" in msg and info.value.errno == errno.ENOSPC
    assert files_under(str(tmp_path)) == []


def test_full_disk_at_close_leaves_nothing(tmp_path, records, unit, monkeypatch):
    _full_disk_after(monkeypatch, 10**9, on_close=True)
    with pytest.raises(OutputError, match="cdr_2025-01-06_c00003_p000.csv"):
        write_unit(records(500), OutputConfig(format="csv"), _out(tmp_path), unit)
    assert files_under(str(tmp_path)) == []


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_while_formatting_removes_finished_parts(tmp_path, records, unit,
                                                         monkeypatch, exc, threads):
    """One thread formats into the write buffers (``write_rows``), several format
    slices (``text``): a failure in either, parts already committed, leaves nothing."""
    calls = {"n": 0}
    name = "write_rows" if threads == 1 else "text"
    real = getattr(_csv_text.CsvText, name)

    def flaky(self, *args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise exc
        return real(self, *args)

    monkeypatch.setattr(_csv_text.CsvText, name, flaky)
    monkeypatch.setattr(_csv, "BATCH_ROWS", 300)
    monkeypatch.setattr(_csv, "STAGE_BYTES", 8192)     # one thread: 4 buffers, 2 parts
    with pytest.raises(type(exc)):
        write_unit(records(3000, seed=32), OutputConfig(format="csv", rotate_bytes=20_000),
                   _out(tmp_path), unit, threads=threads)
    assert 4 <= calls["n"] < 4 + threads        # threads format ahead of the failure
    assert files_under(str(tmp_path)) == []


def test_parquet_failure_after_some_parts(tmp_path, records, unit, monkeypatch):
    calls = {"n": 0}
    real = pq.write_table

    def flaky(table, where, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            where.write(b"PAR1 partial")
            raise RuntimeError("encoder died")
        return real(table, where, **kw)

    monkeypatch.setattr(_parquet.pq, "write_table", flaky)
    with pytest.raises(RuntimeError, match="encoder died"):
        write_unit(records(4000, seed=33), OutputConfig(format="parquet",
                                                        rotate_bytes=100_000),
                   _out(tmp_path), unit)
    assert calls["n"] == 3
    assert files_under(str(tmp_path)) == []


def test_unwritable_out_is_named(tmp_path, records, unit):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = str(blocker / "out")
    with pytest.raises(OutputError) as info:
        write_unit(records(100), OutputConfig(format="csv"), out, unit)
    assert os.path.join(out, "2025-01-06") in str(info.value)
    cfg = GeneratorConfig(out=out, start="2025-01-06")
    with pytest.raises(OutputError) as info:
        prepare_output(cfg, None)
    assert out in str(info.value)
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize("threads", [1, 2])
def test_failed_block_is_never_committed(tmp_path, records, unit, monkeypatch, threads):
    """A failed write (here the part's last block, so that the commit is already queued
    behind it) must not let the part be committed."""
    monkeypatch.setattr(_csv, "BATCH_ROWS", 200)       # 3000 rows: 15 blocks
    monkeypatch.setattr(_csv, "STAGE_BYTES", 40_960)   # one thread: 13 buffers
    real_write = _csv.CsvPartWriter._w_write
    last = 15 if threads == 2 else 13
    calls = {"n": 0}
    renamed = []

    def flaky_write(self, pieces):
        calls["n"] += 1
        if calls["n"] == last:
            raise OSError(errno.EIO, "transient")
        return real_write(self, pieces)

    real_rename = LocalFs.rename

    def spy_rename(self, src, dst):
        renamed.append(dst)
        return real_rename(self, src, dst)

    monkeypatch.setattr(_csv.CsvPartWriter, "_w_write", flaky_write)
    monkeypatch.setattr(LocalFs, "rename", spy_rename)
    with pytest.raises(OSError, match="transient"):
        write_unit(records(3000, seed=34), OutputConfig(format="csv", rotate_bytes=10**9),
                   _out(tmp_path), unit, threads=threads)
    assert calls["n"] == last
    assert renamed == [] and files_under(str(tmp_path)) == []


def test_a_pending_unit_finishes_whole_or_leaves_nothing(tmp_path, records, unit,
                                                         monkeypatch):
    """``start_writing`` returns with the last writes under way (the worker generates its
    next unit meanwhile): ``finish`` gives what ``write_unit`` gives, ``abort`` removes
    every part, the committed ones included."""
    monkeypatch.setattr(_csv, "STAGE_BYTES", 8192)
    table = records(3000, seed=7)
    cfg = OutputConfig(format="csv", rotate_bytes=100_000)
    whole = write_unit(table, cfg, _out(tmp_path / "whole"), unit)
    assert len(whole.files) >= 4
    real_write = _csv.CsvPartWriter._w_write

    def slow_write(self, pieces):
        time.sleep(0.01)
        return real_write(self, pieces)

    monkeypatch.setattr(_csv.CsvPartWriter, "_w_write", slow_write)
    for ending in ("finish", "abort"):
        out = tmp_path / ending
        pending = start_writing(table, cfg, _out(out), unit)
        names = files_under(str(out))
        assert any(os.path.basename(n).startswith(".") for n in names)   # still writing
        if ending == "finish":
            result = pending.finish()
            assert [(f.path, f.bytes, f.checksum) for f in result.files] == \
                [(f.path, f.bytes, f.checksum) for f in whole.files]
            assert sorted(files_under(str(out))) == sorted(f.path for f in whole.files)
        else:
            pending.abort()
            assert files_under(str(out)) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_the_first_failure_is_the_one_reported(tmp_path, records, unit, monkeypatch,
                                               threads):
    """A part's commit fails (the disk filled at its last block); the writes queued after
    it fail only because it did. The error raised is the commit's, whatever the writer
    waits on first (one thread waits for its buffers, several for their slices)."""
    monkeypatch.setattr(_csv, "STAGE_BYTES", 8192)
    monkeypatch.setattr(_csv, "BATCH_ROWS", 200)

    def full_at_commit(self, rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_csv.CsvPartWriter, "_w_commit", full_at_commit)
    with pytest.raises(OSError) as info:
        write_unit(records(3000, seed=35), OutputConfig(format="csv", rotate_bytes=40_000),
                   _out(tmp_path), unit, threads=threads)
    assert info.value.errno == errno.ENOSPC, info.value
    assert files_under(str(tmp_path)) == []
