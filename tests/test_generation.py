"""generate() end to end on a few thousand subscribers, serial executor."""
import dataclasses
import json
import os
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import xxhash

from cdrexp.config import ConfigError, OutputConfig
from cdrexp.generation import generate
from cdrexp.model.schema import RECORD_SCHEMA
from cdrexp.parallel import SerialExecutor

PLAIN = {f.name: (pa.string() if pa.types.is_dictionary(f.type) else f.type)
         for f in RECORD_SCHEMA}


def _with(cfg, **kw):
    out = dict(kw)
    if "fmt" in out:
        out["output"] = OutputConfig(format=out.pop("fmt"), rotate_bytes=out.pop(
            "rotate", 2_000_000))
    return dataclasses.replace(cfg, **out)


def _manifest(out):
    with open(os.path.join(out, "manifest.json")) as fh:
        return json.load(fh)


def _read_all(out, manifest):
    tables = []
    for f in manifest["files"]:
        path = os.path.join(out, f["path"])
        if f["kind"] != "data":
            continue
        if path.endswith(".parquet"):
            t = pq.read_table(path)
            t = t.cast(pa.schema([(n, PLAIN[n]) for n in t.column_names]))
        else:
            t = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=";"),
                               convert_options=pacsv.ConvertOptions(
                                   column_types=PLAIN, strings_can_be_null=True))
        tables.append(t)
    return pa.concat_tables(tables)


def test_same_config_same_files_other_seed_other_files(small_cfg, tmp_path):
    a = _with(small_cfg, out=str(tmp_path / "a"), fmt="csv")
    b = _with(small_cfg, out=str(tmp_path / "b"), fmt="csv")
    c = _with(small_cfg, out=str(tmp_path / "c"), fmt="csv", seed=small_cfg.seed + 1)
    for cfg in (a, b, c):
        generate(cfg, executor=SerialExecutor())
    ma, mb, mc = (_manifest(cfg.out) for cfg in (a, b, c))
    assert [(f["path"], f["xxh128"]) for f in ma["files"]] == [
        (f["path"], f["xxh128"]) for f in mb["files"]]
    data = lambda m: {f["path"]: f["xxh128"] for f in m["files"] if f["kind"] == "data"}
    assert len(data(ma)) >= 3
    assert not set(data(ma).values()) & set(data(mc).values())


def test_manifest_and_summaries_match_the_disk(small_cfg):
    cfg = _with(small_cfg, days=2, fmt="csv_gz", rotate=1_000_000)
    progress = []
    stats = generate(cfg, on_progress=progress.append, executor=SerialExecutor())
    assert [p.units_done for p in progress] == list(range(1, 7))
    assert progress[-1].units_total == 6 and progress[-1].rows_written == stats.rows
    m = _manifest(cfg.out)
    on_disk = sorted(os.path.relpath(os.path.join(d, n), cfg.out)
                     for d, _, names in os.walk(cfg.out) for n in names)
    listed = sorted(f["path"] for f in m["files"])
    # every file the run wrote but the manifest itself, day summaries included
    assert on_disk == sorted(listed + ["manifest.json"])
    assert {f["path"]: f["kind"] for f in m["files"]
            if f["kind"] != "data"} == {"cells.csv": "cells",
                                        "2025-01-06/summary.json": "summary",
                                        "2025-01-07/summary.json": "summary"}
    for f in m["files"]:
        with open(os.path.join(cfg.out, f["path"]), "rb") as fh:
            data = fh.read()
        assert len(data) == f["bytes"] and xxhash.xxh128(data).hexdigest() == f["xxh128"]
    assert stats.files == m["n_files"] == len(listed)
    assert stats.bytes_written == m["total_bytes"] == sum(f["bytes"] for f in m["files"])
    assert stats.rows_by_type == m["rows_by_type"]
    assert _read_all(cfg.out, m).num_rows == stats.rows == m["rows"]
    for day in ("2025-01-06", "2025-01-07"):
        with open(os.path.join(cfg.out, day, "summary.json")) as fh:
            s = json.load(fh)
        assert [c["chunk"] for c in s["chunks"]] == [0, 1, 2]
        day_files = [f for f in m["files"]
                     if f["path"].startswith(day + "/") and f["kind"] == "data"]
        assert s["files"] == len(day_files)
        assert s["rows"] == sum(f["rows"] for f in day_files)
        assert s["bytes"] == sum(f["bytes"] for f in day_files)
    total = {k: 0 for k in stats.rows_by_type}
    for day in ("2025-01-06", "2025-01-07"):
        with open(os.path.join(cfg.out, day, "summary.json")) as fh:
            for k, v in json.load(fh)["rows_by_type"].items():
                total[k] += v
    assert total == stats.rows_by_type
    assert stats.uncompressed_bytes > stats.bytes_written > 0
    assert stats.population_s > 0 and stats.generation_s > 0 and stats.formatting_s > 0


def test_csv_and_parquet_hold_the_same_records(small_cfg, tmp_path):
    csv_cfg = _with(small_cfg, out=str(tmp_path / "csv"), fmt="csv")
    pq_cfg = _with(small_cfg, out=str(tmp_path / "pq"), fmt="parquet")
    for cfg in (csv_cfg, pq_cfg):
        generate(cfg, executor=SerialExecutor())
    from_csv = _read_all(csv_cfg.out, _manifest(csv_cfg.out))
    from_pq = _read_all(pq_cfg.out, _manifest(pq_cfg.out))
    assert from_csv.num_rows > 50_000
    assert from_csv.equals(from_pq)


def test_parts_are_in_start_order(small_cfg):
    cfg = _with(small_cfg, fmt="csv", rotate=500_000)
    generate(cfg, executor=SerialExecutor())
    files = [f for f in _manifest(cfg.out)["files"] if f["kind"] == "data"]
    assert len(files) > 3
    for f in files:
        t = pacsv.read_csv(os.path.join(cfg.out, f["path"]),
                           parse_options=pacsv.ParseOptions(delimiter=";"),
                           convert_options=pacsv.ConvertOptions(column_types=PLAIN))
        assert np.all(np.diff(np.asarray(t["start_ts_ms"])) >= 0)


def test_none_writes_no_records_but_counts_them(small_cfg):
    stats = generate(_with(small_cfg, fmt="none"), executor=SerialExecutor())
    assert stats.rows > 50_000 and stats.uncompressed_bytes == 0
    assert stats.files == 2     # cells.csv and the day's summary.json
    assert sorted(os.listdir(small_cfg.out)) == ["2025-01-06", "cells.csv", "manifest.json"]


def test_bad_config_fails_before_writing(small_cfg):
    with pytest.raises(ConfigError, match="output.format"):
        generate(_with(small_cfg, fmt="xml"))
    assert not os.path.exists(small_cfg.out)


def test_relative_out_is_made_absolute(small_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stats = generate(_with(small_cfg, out="rel_out", fmt="csv"), executor=SerialExecutor())
    assert stats.out == str(tmp_path / "rel_out")
    assert (tmp_path / "rel_out" / "manifest.json").exists()


@pytest.mark.slow
def test_a_csv_gz_run_is_the_csv_run_gzipped(small_cfg, tmp_path):
    """Two worker processes; every .csv.gz passes `gzip -t` and decompresses to exactly
    the bytes of the matching .csv of a csv run of the same config."""
    gzip_bin = shutil.which("gzip")
    if gzip_bin is None:
        pytest.skip("no gzip(1) on this machine")
    runs = {}
    for fmt in ("csv", "csv_gz"):
        cfg = _with(small_cfg, out=str(tmp_path / fmt), workers=2, fmt=fmt, rotate=250_000)
        generate(cfg)
        runs[fmt] = [f for f in _manifest(cfg.out)["files"] if f["kind"] == "data"]
    assert len(runs["csv"]) >= 6
    assert [f["path"] + ".gz" for f in runs["csv"]] == [f["path"] for f in runs["csv_gz"]]
    for plain_f, gz_f in zip(runs["csv"], runs["csv_gz"]):
        gz_path = tmp_path / "csv_gz" / gz_f["path"]
        subprocess.run([gzip_bin, "-t", str(gz_path)], check=True)
        text = subprocess.run([gzip_bin, "-dc", str(gz_path)], check=True,
                              capture_output=True).stdout
        assert xxhash.xxh128(text).hexdigest() == plain_f["xxh128"]
        assert gz_f["rows"] == plain_f["rows"]
    csv_rows = _read_all(str(tmp_path / "csv"), {"files": runs["csv"]})
    assert _read_all(str(tmp_path / "csv_gz"), {"files": runs["csv_gz"]}).equals(csv_rows)
