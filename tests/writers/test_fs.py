"""fsspec output roots (what Dask workers writing to s3:// use), tried on memory:// and
file://: same names, same bytes, no temporary file left, errors naming the URL."""
import gzip
import io
import uuid

import fsspec
import pyarrow as pa
import pytest
import xxhash

import cdrexp.model
from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig
from cdrexp.model.units import plan_units
from cdrexp.writers import OutputError, finish_output, prepare_output, write_unit
from cdrexp.writers._fs import LocalFs, UrlFs, output_fs
from writers_readback import plain, read_csv

CELLS = pa.table({"cell_id": pa.array([1], pa.int32()), "lat": [52.0], "lon": [4.9],
                  "rat": ["LTE"]})


@pytest.fixture(autouse=True)
def fake_cells(monkeypatch):
    monkeypatch.setattr(cdrexp.model, "cells_csv", lambda population: _csv(CELLS),
                        raising=False)


def _run(out, records, fmt="csv_gz"):
    cfg = GeneratorConfig(subs=1500, days=1, start="2025-01-06", out=out,
                          model=ModelConfig(chunk_size=1000),
                          output=OutputConfig(format=fmt, rotate_bytes=50_000))
    prepare_output(cfg, None)
    results = [write_unit(records(u.n_subs, seed=u.chunk), cfg.output, cfg.out, u)
               for u in plan_units(cfg)]
    return finish_output(cfg, results), results


def test_memory_url_round_trip(records):
    root = f"memory://cdrexp-{uuid.uuid4().hex}"
    manifest, results = _run(root, records)
    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.find(root))
    assert names == sorted(["manifest.json"]
                           + [f.path.rsplit("/", 1)[-1] for f in manifest.files])
    assert not any(n.startswith(".") for n in names)
    for f in manifest.files:
        data = fs.cat_file(f"{root}/{f.path}")
        assert len(data) == f.bytes and xxhash.xxh128(data).hexdigest() == f.checksum
    tables = [read_csv(io.BytesIO(gzip.decompress(fs.cat_file(f"{root}/{f.path}"))))
              for f in results[0].files]
    assert len(tables) > 1
    assert pa.concat_tables(tables).equals(plain(records(1000, seed=0)))


def test_file_url_matches_local_path(tmp_path, records):
    via_url, _ = _run(f"file://{tmp_path / 'a'}", records, fmt="csv")
    via_path, _ = _run(str(tmp_path / "b"), records, fmt="csv")
    assert [(f.path, f.checksum) for f in via_url.files] == [
        (f.path, f.checksum) for f in via_path.files]
    assert (tmp_path / "a" / "manifest.json").exists()


def test_url_and_path_pick_their_backend(tmp_path):
    assert isinstance(output_fs(str(tmp_path)), LocalFs)
    assert isinstance(output_fs("memory://x"), UrlFs)


def test_url_write_failure_names_the_url(records, unit, monkeypatch):
    root = f"memory://cdrexp-{uuid.uuid4().hex}"

    def broken_open(self, path, mode="rb", **kw):
        raise PermissionError(13, "Access Denied")

    monkeypatch.setattr(type(fsspec.filesystem("memory")), "open", broken_open)
    with pytest.raises(OutputError, match=f"{root}/2025-01-06/"):
        write_unit(records(10), OutputConfig(format="csv"), root, unit)


def _csv(table) -> bytes:
    """cells.csv's bytes for a fake cell table (as pyarrow's CSV writer gives them)."""
    import pyarrow.csv as pacsv

    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False,
                                                    quoting_style="none"))
    return (",".join(table.column_names) + "\n").encode() + sink.getvalue().to_pybytes()
