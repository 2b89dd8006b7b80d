"""Writers: a unit's records to rotated CSV / gzip / zstd / Parquet part files, and the
output root around them (cells.csv, per-day summary.json, manifest.json).

Public surface:

- ``write_unit(table, output_cfg, out_root, unit, threads=1) -> UnitResult``: one
  unit's files, each written under a hidden temporary name and renamed when complete;
  ``writer_threads(workers)`` is the ``threads`` a worker should use;
  ``start_writing(...) -> PendingUnit`` the same in two steps (``finish()`` waits for the
  last writes), so a worker can generate its next unit meanwhile.
- ``prepare_output(cfg, population)``: create ``out``, clear a previous cdrexp run's
  files there (never anything else), write cells.csv; ``clear_output(cfg)`` only clears;
  ``check_output_root(cfg)`` raises what clearing would, before any work.
- ``finish_output(cfg, results) -> Manifest``: summaries and manifest.
- ``OutputError``: an ``OSError`` whose message names the path that failed.
- ``check_url_root(url)``: a test object written and deleted under a URL ``out``.

``out`` may be a local path or an fsspec URL (``s3://bucket/run``, ``memory://x``).
"""
from ._fs import OutputError, check_url_root, output_fs
from ._output import (MANIFEST, SUMMARY, Manifest, check_output_root, clear_output,
                      finish_output, prepare_output, remove_output, run_dates)
from ._unit import (EXTENSIONS, PendingUnit, part_name, rows_by_type, start_writing,
                    write_unit, writer_threads)

__all__ = ["EXTENSIONS", "MANIFEST", "SUMMARY", "Manifest", "OutputError", "check_output_root",
           "check_url_root", "clear_output", "finish_output", "output_fs", "part_name", "remove_output",
           "PendingUnit", "prepare_output", "rows_by_type", "run_dates", "start_writing",
           "write_unit", "writer_threads"]
