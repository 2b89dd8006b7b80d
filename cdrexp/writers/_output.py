"""The output root around the units: preparing it, cells.csv, summaries and the manifest.

Re-running into the same ``out`` must work and must never delete a file that cdrexp did
not write. ``prepare_output`` therefore removes only

- the files listed by a previous cdrexp ``manifest.json`` (recognised by its
  ``"generator": "cdrexp"`` key), and only names cdrexp itself writes (``cells.csv``,
  ``YYYY-MM-DD/cdr_...`` parts and ``YYYY-MM-DD/summary.json``), so a hand-edited
  manifest cannot point it elsewhere;
- in every day directory (``YYYY-MM-DD``): part files named exactly like ours (left by
  an interrupted run that never wrote its manifest, e.g. a killed 3-day run's days 2 and
  3 beside a later 1-day run), their hidden temporary files, and ``summary.json``; a day
  directory of another date that this leaves empty is removed.

Everything else in ``out`` is left alone. A ``manifest.json`` that cdrexp did not write
makes it stop with an error rather than guess, and so does a day directory that is a
symbolic link (clearing it would delete files in the link's target).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

from ..config import GeneratorConfig, parse_date
from ..stats import FileInfo, UnitResult
from ._checksum import checksum_of
from ._fs import OutputError, display, output_fs
from ._part import PartFile

MANIFEST = "manifest.json"
CELLS = "cells.csv"
SUMMARY = "summary.json"
GENERATOR = "cdrexp"
MANIFEST_VERSION = 2       # 2: "checksum" names the algorithm; entries carry the digest under it

_DATE = r"\d{4}-\d{2}-\d{2}"
_DAY_DIR = re.compile(rf"^{_DATE}$")
_PART = re.compile(rf"^cdr_{_DATE}_c\d{{5,}}_p\d{{3,}}\.(csv|csv\.gz|csv\.zst|parquet)$")
_TEMP = re.compile(r"^\.(cdr_.+|cells\.csv|manifest\.json|summary\.json)\.tmp-\d+-[0-9a-f]+$")
_OURS = re.compile(rf"^({re.escape(CELLS)}|{_DATE}/(cdr_[^/]+|{re.escape(SUMMARY)}))$")


@dataclass
class Manifest:
    """What a generation left in ``out``: every file it wrote (cells.csv, the data files,
    the day summaries) but manifest.json itself."""
    path: str                                   # where manifest.json was written
    files: list[FileInfo] = field(default_factory=list)
    rows_by_type: dict[str, int] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def n_files(self) -> int:
        return len(self.files)


def run_dates(cfg: GeneratorConfig) -> list[str]:
    start = parse_date("start", cfg.start)
    return [(start + dt.timedelta(days=d)).isoformat() for d in range(cfg.days)]


def clear_output(cfg: GeneratorConfig) -> None:
    """Remove what a previous run left in ``out`` (by the rules above); nothing else.
    ``prepare_output`` does it too: a measuring caller calls this first, outside its
    timer, so that deleting the last run's files is not timed as part of the next."""
    _remove_previous_run(output_fs(cfg.out), run_dates(cfg))


def remove_output(out: str) -> None:
    """Delete what cdrexp wrote in ``out`` (by the rules above, with no day kept), then
    the directories that leaves empty, ``out`` itself included. Nothing else."""
    fs = output_fs(out)
    if not fs.isdir(""):
        return
    _remove_previous_run(fs, [])
    fs.remove(CELLS)        # ours by name (a run that stopped before its manifest)
    fs.rmdir_if_empty("")


def prepare_output(cfg: GeneratorConfig, population) -> FileInfo:
    """Create ``out`` and its day directories, clear a previous run's files, write
    cells.csv. Returns cells.csv's entry."""
    from ..model import cells_csv

    fs = output_fs(cfg.out)
    fs.makedirs()
    dates = run_dates(cfg)
    _remove_previous_run(fs, dates)     # quick when clear_output ran just before
    for date in dates:
        fs.makedirs(date)
    # cells_csv: the same bytes as write_cells(cells_table(...)), without pyarrow
    data = cells_csv(population)
    return _write_atomic(fs, CELLS, [data], data.count(b"\n") - 1, cfg.output.checksum)


def write_cells(fs, cells: "pa.Table", checksum: str) -> FileInfo:
    """``cells.csv``: comma-separated, header ``cell_id,lat,lon,rat``, written atomically."""
    import pyarrow as pa        # the only Arrow use of the generator's parent process
    import pyarrow.csv as pacsv

    sink = pa.BufferOutputStream()
    pacsv.write_csv(cells, sink, pacsv.WriteOptions(include_header=False,
                                                    quoting_style="none"))
    header = (",".join(cells.column_names) + "\n").encode()
    return _write_atomic(fs, CELLS, [header, sink.getvalue()], cells.num_rows, checksum)


def _write_atomic(fs, rel: str, pieces: list, rows: int, checksum: str) -> FileInfo:
    part = PartFile(fs, rel, checksum)
    try:
        for p in pieces:
            part.write(p)
        return part.commit(rows)
    finally:
        part.discard()      # no-op once committed


def check_output_root(cfg: GeneratorConfig) -> None:
    """What would stop clearing ``out`` (a day directory that is a symbolic link, a
    ``manifest.json`` cdrexp did not write), as ``OutputError``, before any work."""
    fs = output_fs(cfg.out)
    if not fs.isdir(""):
        return
    day_dirs(fs)
    if fs.exists(MANIFEST):
        _read_manifest(fs)


def day_dirs(fs) -> list[str]:
    """The ``YYYY-MM-DD`` entries of the output root (cdrexp's day directories, of this
    run or an earlier one); ``OutputError`` if one is a symbolic link."""
    days = sorted(name for name in fs.listdir("") if _DAY_DIR.match(name))
    for name in days:
        if fs.islink(name):
            raise OutputError(f"{display(fs, name)} is a symbolic link; cdrexp writes and "
                              "clears its day directories itself and would delete files "
                              "in the link's target: remove the link or choose another "
                              "out")
    return days


def _remove_previous_run(fs, dates: list[str]) -> None:
    stale = [d for d in day_dirs(fs) if d not in set(dates)]
    if fs.exists(MANIFEST):
        old = _read_manifest(fs)
        old_dirs = set()
        for entry in old.get("files", []):
            rel = str(entry.get("path", ""))
            if _OURS.match(rel):
                fs.remove(rel)
                if "/" in rel:
                    old_dirs.add(rel.split("/", 1)[0])
        for d in sorted(old_dirs - set(dates)):
            fs.remove(f"{d}/{SUMMARY}")
            fs.rmdir_if_empty(d)
        fs.remove(MANIFEST)
    for name in fs.listdir(""):
        if _TEMP.match(name):
            fs.remove(name)
    for date in dates + stale:
        for name in fs.listdir(date):
            if _PART.match(name) or _TEMP.match(name) or name == SUMMARY:
                fs.remove(f"{date}/{name}")
    for date in stale:
        fs.rmdir_if_empty(date)


def _read_manifest(fs) -> dict:
    where = display(fs, MANIFEST)
    try:
        old = json.loads(fs.read_bytes(MANIFEST))
    except (ValueError, OSError) as exc:
        raise OutputError(f"{where} exists but is not a cdrexp manifest ({exc}); "
                          "remove it or choose another out") from None
    if not isinstance(old, dict) or old.get("generator") != GENERATOR:
        raise OutputError(f"{where} exists but was not written by cdrexp; "
                          "remove it or choose another out")
    return old


def file_kind(rel: str) -> str:
    """What a listed file is: ``cells``, ``summary`` (a day's summary.json) or ``data``."""
    if rel == CELLS:
        return "cells"
    return "summary" if rel.endswith("/" + SUMMARY) else "data"


def _file_entry(info: FileInfo, checksum: str) -> dict:
    """The manifest's entry: the digest under its algorithm's name (``xxh128``,
    ``blake3`` or ``sha256``), so a reader cannot take one for the other."""
    return {"path": info.path, "rows": info.rows, "bytes": info.bytes,
            checksum: info.checksum, "kind": file_kind(info.path)}


def finish_output(cfg: GeneratorConfig, results: list[UnitResult]) -> Manifest:
    """Write each day's summary.json and the run's manifest.json; return the manifest."""
    fs = output_fs(cfg.out)
    results = sorted(results, key=lambda r: (r.day_index, r.chunk))
    by_day: dict[str, list[UnitResult]] = {d: [] for d in run_dates(cfg)}
    for r in results:
        by_day.setdefault(r.date, []).append(r)
    checksum = cfg.output.checksum
    summaries = [_write_json(fs, f"{date}/{SUMMARY}", _day_summary(cfg, date, day_results),
                             checksum)
                 for date, day_results in by_day.items()]

    files = [_existing_entry(fs, CELLS, checksum)] if fs.exists(CELLS) else []
    files += [f for r in results for f in r.files] + summaries
    manifest = Manifest(path=display(fs, MANIFEST), files=files,
                        rows_by_type=_sum_types(results))
    _write_json(fs, MANIFEST, {
        "generator": GENERATOR, "version": MANIFEST_VERSION,
        "format": cfg.output.format, "subs": cfg.subs, "days": cfg.days,
        "start": cfg.start, "seed": cfg.seed, "chunk_size": cfg.model.chunk_size,
        "rows_by_type": manifest.rows_by_type, "rows": sum(manifest.rows_by_type.values()),
        "n_files": manifest.n_files, "total_bytes": manifest.total_bytes,
        "checksum": checksum, "files": [_file_entry(f, checksum) for f in files],
    }, checksum)
    return manifest


def _sum_types(results: list[UnitResult]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in results:
        for k, v in r.rows_by_type.items():
            total[k] = total.get(k, 0) + v
    return total


def _day_summary(cfg: GeneratorConfig, date: str, results: list[UnitResult]) -> dict:
    chunks = [{
        "chunk": r.chunk, "rows_by_type": r.rows_by_type, "rows": r.rows,
        "bytes": sum(f.bytes for f in r.files), "uncompressed_bytes": r.uncompressed_bytes,
        "files": [f.path.rsplit("/", 1)[-1] for f in r.files],
    } for r in results]
    types = _sum_types(results)
    return {
        "date": date, "format": cfg.output.format, "rows_by_type": types,
        "rows": sum(types.values()), "bytes": sum(c["bytes"] for c in chunks),
        "uncompressed_bytes": sum(c["uncompressed_bytes"] for c in chunks),
        "files": sum(len(c["files"]) for c in chunks), "chunks": chunks,
    }


def _existing_entry(fs, rel: str, checksum: str) -> FileInfo:
    """cells.csv is small (tens of kB): re-reading it is simpler than carrying its
    entry from ``prepare_output`` through the executor."""
    data = fs.read_bytes(rel)
    return FileInfo(path=rel, rows=max(data.count(b"\n") - 1, 0), bytes=len(data),
                    checksum=checksum_of(data, checksum))


def _write_json(fs, rel: str, obj: dict, checksum: str) -> FileInfo:
    data = (json.dumps(obj, indent=2) + "\n").encode()
    return _write_atomic(fs, rel, [data], 0, checksum)
