"""prepare_output / finish_output: cells.csv, summaries, manifest, re-runs into one out."""
import json
import os
import shutil
import subprocess

import pyarrow as pa
import pytest

import cdrexp.model
from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig
from cdrexp.model.units import plan_units
from cdrexp.writers import OutputError, finish_output, prepare_output, write_unit
from writers_readback import checksum_file, files_under

CELLS = pa.table({"cell_id": pa.array([1, 2, 3], pa.int32()),
                  "lat": [52.37, 52.123456, 51.9], "lon": [4.895, 5.0, 4.5],
                  "rat": ["LTE", "NR", "WCDMA"]})


@pytest.fixture(autouse=True)
def fake_cells(monkeypatch):
    """The writers ask the model for the cell table; these tests need no population."""
    monkeypatch.setattr(cdrexp.model, "cells_csv", lambda population: _csv(CELLS),
                        raising=False)


def _cfg(out, fmt="csv", days=2, start="2025-01-06", rotate=30_000):
    return GeneratorConfig(subs=2500, days=days, start=start, seed=3, workers=1,
                           out=str(out), model=ModelConfig(chunk_size=1000),
                           output=OutputConfig(format=fmt, rotate_bytes=rotate))


def _run(cfg, records):
    prepare_output(cfg, None)
    results = [write_unit(records(u.n_subs, seed=100 * u.day_index + u.chunk), cfg.output,
                          cfg.out, u) for u in plan_units(cfg)]
    return finish_output(cfg, results), results


def _data_files(out):
    """Every file the run wrote but manifest.json: what the manifest must list."""
    return [p for p in files_under(str(out)) if p != "manifest.json"]


def test_manifest_lists_every_file_with_rows_bytes_sha(tmp_path, records):
    out = tmp_path / "out"
    manifest, results = _run(_cfg(out), records)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["generator"] == "cdrexp"
    listed = {f["path"]: f for f in on_disk["files"]}
    # every file but the manifest itself, the day summaries included
    assert sorted(listed) == _data_files(out)
    assert {"cells.csv", "2025-01-06/summary.json", "2025-01-07/summary.json"} <= set(listed)
    assert len(listed) > 8
    for path, entry in listed.items():
        full = os.path.join(out, path)
        assert entry["bytes"] == os.path.getsize(full)
        assert entry["xxh128"] == checksum_file(full)
        with open(full, "rb") as fh:
            lines = fh.read().count(b"\n") - 1
        assert entry["rows"] == (0 if path.endswith("summary.json") else lines)
    assert manifest.n_files == on_disk["n_files"] == len(listed)
    assert manifest.total_bytes == on_disk["total_bytes"] == sum(
        os.path.getsize(os.path.join(out, p)) for p in listed)
    assert on_disk["rows"] == sum(r.rows for r in results) == 2 * 2500
    assert files_under(str(out)) == sorted(list(listed) + ["manifest.json"])


def test_cells_csv(tmp_path, records):
    out = tmp_path / "out"
    _run(_cfg(out, days=1), records)
    assert (out / "cells.csv").read_text() == (
        "cell_id,lat,lon,rat\n1,52.37,4.895,LTE\n2,52.123456,5,NR\n3,51.9,4.5,WCDMA\n")


def test_day_summaries(tmp_path, records):
    out = tmp_path / "out"
    _, results = _run(_cfg(out), records)
    for day in ("2025-01-06", "2025-01-07"):
        summary = json.loads((out / day / "summary.json").read_text())
        mine = [r for r in results if r.date == day]
        assert summary["date"] == day and len(mine) == 3
        assert [c["chunk"] for c in summary["chunks"]] == [0, 1, 2]
        for chunk, r in zip(summary["chunks"], mine):
            assert chunk["rows_by_type"] == r.rows_by_type and chunk["rows"] == r.rows
            assert chunk["files"] == [
                f.path.split("/")[1] for f in r.files]
            assert chunk["bytes"] == sum(os.path.getsize(out / day / f)
                                         for f in chunk["files"])
        for t in ("CALL", "SMS", "DATA"):
            assert summary["rows_by_type"][t] == sum(r.rows_by_type[t] for r in mine)
        assert summary["rows"] == 2500
        assert summary["files"] == len([n for n in os.listdir(out / day)
                                        if n.startswith("cdr_")])
        assert summary["bytes"] == sum(os.path.getsize(out / day / n)
                                       for n in os.listdir(out / day)
                                       if n.startswith("cdr_"))


def test_rerun_replaces_previous_output_and_keeps_unrelated_files(tmp_path, records):
    out = tmp_path / "out"
    _run(_cfg(out, fmt="csv", days=2), records)
    (out / "notes.txt").write_text("mine")
    (out / "2025-01-06" / "keep.txt").write_text("mine")
    (out / "2025-01-07" / "cdr_notes.txt").write_text("mine")
    manifest, _ = _run(_cfg(out, fmt="parquet", days=1, rotate=100_000_000), records)
    listed = sorted(f.path for f in manifest.files)
    assert all(p.endswith(".parquet") for p in listed
               if p not in ("cells.csv", "2025-01-06/summary.json"))
    assert files_under(str(out)) == sorted(listed + [
        "2025-01-06/keep.txt", "2025-01-07/cdr_notes.txt", "manifest.json", "notes.txt"])


def test_rerun_into_same_out_gives_same_files(tmp_path, records):
    out = tmp_path / "out"
    first, _ = _run(_cfg(out), records)
    second, _ = _run(_cfg(out), records)
    assert [(f.path, f.checksum) for f in first.files] == [
        (f.path, f.checksum) for f in second.files]
    assert _data_files(out) == sorted(f.path for f in second.files)


def test_interrupted_run_leftovers_are_cleared(tmp_path, records):
    out = tmp_path / "out"
    day = out / "2025-01-06"
    day.mkdir(parents=True)
    (day / "cdr_2025-01-06_c00007_p000.csv").write_text("half a run ago")
    (day / ".cdr_2025-01-06_c00000_p001.csv.tmp-123-abcdef").write_text("partial")
    (out / ".manifest.json.tmp-9-00aa11").write_text("partial")
    (day / "cdr_2025-01-06_c00007_p000.csv.bak").write_text("not ours")
    manifest, _ = _run(_cfg(out, days=1), records)
    assert files_under(str(out)) == sorted(
        [f.path for f in manifest.files] + ["manifest.json",
                                            "2025-01-06/cdr_2025-01-06_c00007_p000.csv.bak"])


def test_foreign_manifest_is_refused_and_kept(tmp_path, records):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"files": [{"path": "important.db"}]}')
    (out / "important.db").write_text("precious")
    with pytest.raises(OutputError, match=str(out / "manifest.json")):
        prepare_output(_cfg(out), None)
    assert (out / "important.db").read_text() == "precious"
    assert (out / "manifest.json").exists()


def test_manifest_cannot_point_outside_our_names(tmp_path, records):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "victim.txt").write_text("precious")
    (out / "data.csv").write_text("precious")
    (out / "manifest.json").write_text(json.dumps({"generator": "cdrexp", "files": [
        {"path": "../victim.txt"}, {"path": "data.csv"},
        {"path": "2025-01-06/../../victim.txt"}]}))
    _run(_cfg(out, days=1), records)
    assert (tmp_path / "victim.txt").read_text() == "precious"
    assert (out / "data.csv").read_text() == "precious"


def test_none_format_writes_summaries_and_manifest_only(tmp_path, records):
    out = tmp_path / "out"
    manifest, results = _run(_cfg(out, fmt="none", days=1), records)
    assert [f.path for f in manifest.files] == ["cells.csv", "2025-01-06/summary.json"]
    summary = json.loads((out / "2025-01-06" / "summary.json").read_text())
    assert summary["rows"] == 2500 and summary["files"] == 0 and summary["bytes"] == 0


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_cryptographic_checksum_on_request(tmp_path, algorithm):
    """output.checksum=sha256 / blake3: every entry carries that digest, as sha256sum /
    b3sum would give it, and no other."""
    from cdrexp.generation import generate
    from cdrexp.parallel import SerialExecutor

    cfg = GeneratorConfig(subs=300, days=1, out=str(tmp_path / "out"),
                          output=OutputConfig(checksum=algorithm))
    generate(cfg, executor=SerialExecutor())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["checksum"] == algorithm
    for entry in manifest["files"]:
        assert {"xxh128", "blake3", "sha256"} & set(entry) == {algorithm}
        assert entry[algorithm] == checksum_file(os.path.join(cfg.out, entry["path"]),
                                                 algorithm)


def test_xxhsum_checks_the_default_checksums(tmp_path):
    """The docs tell users to check the manifest with ``xxhsum -H2``: it agrees."""
    from cdrexp.generation import generate
    from cdrexp.parallel import SerialExecutor

    if shutil.which("xxhsum") is None:
        pytest.skip("xxhsum is not installed (Debian: apt-get install xxhash)")
    cfg = GeneratorConfig(subs=300, days=1, out=str(tmp_path / "out"))
    generate(cfg, executor=SerialExecutor())
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["checksum"] == "xxh128"
    paths = [e["path"] for e in manifest["files"]]
    out = subprocess.run(["xxhsum", "-H2", *paths], cwd=cfg.out, check=True,
                         capture_output=True, text=True).stdout
    got = {line.split()[1]: line.split()[0] for line in out.splitlines()}
    assert got == {e["path"]: e["xxh128"] for e in manifest["files"]}


def _csv(table) -> bytes:
    """cells.csv's bytes for a fake cell table (as pyarrow's CSV writer gives them)."""
    import pyarrow.csv as pacsv

    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False,
                                                    quoting_style="none"))
    return (",".join(table.column_names) + "\n").encode() + sink.getvalue().to_pybytes()
