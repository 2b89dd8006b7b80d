"""One unit's records to its part files: the format dispatch and the unit's statistics."""
from __future__ import annotations

from ..config import OutputConfig, usable_cores
from ..model import as_records
from ..model.units import Unit
from ..stats import UnitResult
from ._fs import output_fs

# the format modules (pyarrow, the CSV kernel) load in write_unit: the generator's parent names
# parts and writes the manifest without them
EXTENSIONS = {"csv": ".csv", "csv_gz": ".csv.gz", "csv_zst": ".csv.zst",
              "parquet": ".parquet"}


def part_name(date: str, chunk: int, part: int, fmt: str) -> str:
    """``YYYY-MM-DD/cdr_YYYY-MM-DD_cCCCCC_pPPP.<ext>``, relative to the output root."""
    return f"{date}/cdr_{date}_c{chunk:05d}_p{part:03d}{EXTENSIONS[fmt]}"


def rows_by_type(data) -> dict[str, int]:
    """Rows per event type of ``Records`` or of a ``pyarrow.Table`` of them."""
    return as_records(data).counts_by_type()


def writer_threads(workers: int) -> int:
    """Threads one unit's CSV writer may use: this machine's usable cores shared among the
    worker processes (1 each when workers >= cores; 2 for a single worker on 2 cores)."""
    return max(1, usable_cores() // max(1, workers))


def write_unit(records, output_cfg: OutputConfig, out_root: str,
               unit: Unit, *, threads: int = 1) -> UnitResult:
    """Write one unit's records (``Records``, or a ``pyarrow.Table`` of them; sorted by
    start time) as rotated part files.

    ``threads``: how many threads format and compress CSV slices (see ``_csv``); the
    output bytes do not depend on it.

    All or nothing: if anything fails, the unit's finished parts are removed as well as
    its temporary file, so no file of an incomplete unit carries a final name.
    Format ``none`` writes nothing; its ``uncompressed_bytes`` is 0 (not an estimate).
    """
    return start_writing(records, output_cfg, out_root, unit, threads=threads).finish()


class PendingUnit:
    """A unit whose records are formatted and whose last writes may still be under way:
    ``finish()`` waits for them and gives the ``UnitResult``; ``abort()`` stops them.
    Either way, all or nothing: a unit that does not finish leaves no file."""

    def __init__(self, result: UnitResult, writer=None, fs=None):
        self.result, self._writer, self._fs = result, writer, fs

    def finish(self) -> UnitResult:
        writer, self._writer = self._writer, None
        if writer is None:
            return self.result
        done = False
        try:
            writer.end()
            done = True
        finally:
            if not done:
                _undo(writer, self._fs)
        result = self.result
        result.files = writer.files
        result.uncompressed_bytes = writer.uncompressed
        result.formatting_s = writer.format_s + writer.compress_s
        result.writing_s = writer.write_s
        return result

    def abort(self) -> None:
        """Stop the writes and remove what the unit wrote (never raises)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.end()
        except BaseException:
            pass
        _undo(writer, self._fs)


def _undo(writer, fs) -> None:
    writer.abort()
    for info in writer.files:
        try:
            fs.remove(info.path)
        except OSError:
            pass


def start_writing(records, output_cfg: OutputConfig, out_root: str, unit: Unit, *,
                  threads: int = 1) -> PendingUnit:
    """``write_unit`` in two steps: format and write the records, and return while the
    last writes may still be under way (plain CSV formatted by one thread; every other
    format is written whole here). The caller finishes the ``PendingUnit``."""
    date = unit.date.isoformat()
    result = UnitResult(unit.day_index, unit.chunk, date, rows_by_type=rows_by_type(records))
    fmt = output_cfg.format
    if fmt == "none":
        return PendingUnit(result)
    fs = output_fs(out_root, output_cfg.direct_io)

    def name_of(part: int) -> str:
        return part_name(date, unit.chunk, part, fmt)

    if fmt == "parquet":
        from ._parquet import ParquetPartWriter
        writer = ParquetPartWriter(fs, name_of, output_cfg.rotate_bytes, output_cfg.level(),
                                   output_cfg.checksum)
    else:
        from ._csv import CsvPartWriter
        writer = CsvPartWriter(fs, name_of, output_cfg, threads)
    done = False
    try:
        writer.begin(records)
        done = True
    finally:
        if not done:
            _undo(writer, fs)
    return PendingUnit(result, writer, fs)
