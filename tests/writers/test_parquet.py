"""Parquet parts: same 22 columns, integer types, nulls; rotation by estimated CSV size."""
import math
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdrexp.config import COMPRESSION_LEVELS, OutputConfig
from cdrexp.model.schema import RECORD_SCHEMA
from cdrexp.writers import write_unit
from cdrexp.writers._csv import HEADER
from cdrexp.writers._csv_text import format_csv
from cdrexp.writers._parquet import csv_line_bytes
from writers_readback import files_under, plain, read_parts, checksum_file


def _out(tmp_path):
    (tmp_path / "2025-01-06").mkdir(parents=True, exist_ok=True)
    return str(tmp_path)


def test_round_trip_types_and_nulls(tmp_path, records, unit):
    table = records(3000, seed=11)
    res = write_unit(table, OutputConfig(format="parquet"), _out(tmp_path), unit)
    (info,) = res.files
    assert info.path == "2025-01-06/cdr_2025-01-06_c00003_p000.parquet"
    path = os.path.join(tmp_path, info.path)
    back = pq.read_table(path)
    assert back.column_names == RECORD_SCHEMA.names
    for field in RECORD_SCHEMA:
        if pa.types.is_integer(field.type):
            assert back.schema.field(field.name).type == field.type, field.name
        assert back[field.name].null_count == table[field.name].null_count, field.name
    assert plain(back).equals(plain(table))
    rg = pq.ParquetFile(path).metadata.row_group(0)
    start = rg.column(RECORD_SCHEMA.names.index("start_ts_ms")).statistics
    assert (start.min, start.max) == (table["start_ts_ms"][0].as_py(),
                                      table["start_ts_ms"][-1].as_py())
    assert info.rows == 3000 and pq.ParquetFile(path).metadata.num_rows == 3000
    assert info.bytes == os.path.getsize(path) and info.checksum == checksum_file(path)
    assert files_under(str(tmp_path)) == [info.path]


def test_line_estimate_is_close_to_the_real_csv(records):
    table = records(20_000, seed=12)
    real = format_csv(table).size / table.num_rows
    assert abs(csv_line_bytes(table) - real) / real < 0.02


def test_rotation_by_estimated_csv_size(tmp_path, records, unit):
    table = records(4000, seed=13)
    rotate = 100_000
    res = write_unit(table, OutputConfig(format="parquet", rotate_bytes=rotate),
                     _out(tmp_path), unit)
    per_part = math.ceil((rotate - len(HEADER)) / csv_line_bytes(table))
    assert [f.rows for f in res.files[:-1]] == [per_part] * (len(res.files) - 1)
    assert 0 < res.files[-1].rows <= per_part
    assert len(res.files) == math.ceil(4000 / per_part) > 1
    assert [f.path[-13:] for f in res.files] == [f"_p{i:03d}.parquet" for i in
                                                 range(len(res.files))]
    assert read_parts(str(tmp_path), res.files).equals(plain(table))


LOW, HIGH, DEFAULT = COMPRESSION_LEVELS[("parquet", None)]


@pytest.mark.parametrize("level", [*range(LOW, HIGH + 1), None])
def test_every_accepted_level_is_zstd_at_that_level(tmp_path, records, unit, level):
    table = records(1500, seed=14)
    res = write_unit(table, OutputConfig(format="parquet", compression_level=level),
                     _out(tmp_path), unit)
    assert read_parts(str(tmp_path), res.files).equals(plain(table))
    meta = pq.ParquetFile(os.path.join(tmp_path, res.files[0].path)).metadata
    assert meta.row_group(0).column(1).compression == "ZSTD"


def test_a_higher_level_writes_smaller_files(tmp_path, records, unit):
    table = records(5000, seed=14)
    sizes = {}
    for level in (LOW, HIGH, DEFAULT, None):
        out = tmp_path / str(level)
        res = write_unit(table, OutputConfig(format="parquet", compression_level=level),
                         _out(out), unit)
        sizes[level] = res.files[0].bytes
    assert sizes[HIGH] < sizes[LOW]
    assert sizes[None] == sizes[DEFAULT]


def test_unit_without_records_has_an_empty_file(tmp_path, records, unit):
    res = write_unit(records(5).slice(0, 0), OutputConfig(format="parquet"),
                     _out(tmp_path), unit)
    (info,) = res.files
    assert info.rows == 0
    back = pq.read_table(os.path.join(tmp_path, info.path))
    assert back.num_rows == 0 and back.column_names == RECORD_SCHEMA.names
