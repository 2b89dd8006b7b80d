"""CSV text of a unit's ``Records``: ``;``-separated lines, no header, nulls as empty
fields, no quotes (no field can hold ``;``, a quote or a newline).

- ``CsvText`` formats them, slice by slice, with polars (imported on first use: only the
  CSV formats pay for it), straight from the numpy columns: no pyarrow in a CSV worker.
- ``line_lengths`` says how long each line would be without formatting anything: the
  decimal width of every integer and the length of every word, computed with numpy. The
  Parquet writer sizes its parts with it, so a Parquet worker never loads polars
  (~30 MB and ~0.2 CPU-s a worker).
"""
from __future__ import annotations

import numpy as np

from ..model import as_records

# 10, 100, ..., 10**18: a non-negative int64's decimal width is 1 + how many it reaches
_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)


def _int_width(dtype: np.dtype) -> int:
    """The widest decimal text of an integer type, sign included."""
    info = np.iinfo(dtype)
    return max(len(str(info.min)), len(str(info.max)))


def _word_lengths(words) -> np.ndarray:
    return np.array([len(w.encode()) for w in words] or [0], np.int64)


def line_bound(data) -> int:
    """Bytes that no CSV line of ``data`` (``Records`` or a table) can exceed
    (separators and newline included)."""
    records = as_records(data)
    total = len(records.values)         # the separators and the newline
    for name, values in records.values.items():
        if name in records.words:
            total += int(_word_lengths(records.words[name]).max())
        else:
            total += _int_width(values.dtype)
    return total


def line_lengths(data, rows: np.ndarray | None = None) -> np.ndarray:
    """Bytes of each line ``CsvText`` writes for ``data`` (``Records`` or a table;
    separators and newline included), or of the lines at ``rows``: computed, not
    formatted; equal to the formatted lines by test."""
    records = as_records(data)
    at = slice(None) if rows is None else np.asarray(rows, np.intp)
    total = np.full(records.num_rows if rows is None else at.size, len(records.values),
                    np.int64)
    for name, values in records.values.items():
        values = values[at]
        if name in records.words:
            lengths = _word_lengths(records.words[name])[values.astype(np.intp)]
        else:
            values = values.astype(np.int64)
            lengths = np.searchsorted(_POWERS_OF_TEN, np.abs(values), side="right") + 1
            lengths += values < 0
        valid = records.valid.get(name)
        total += lengths if valid is None else np.where(valid[at], lengths, 0)
    return total


class _Sink:
    """The file object polars writes into: one buffer sized by the line bound, so the
    text is copied once and never regrown."""

    def __init__(self, size: int):
        self.buf = np.empty(size, np.uint8)
        self.pos = 0

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self.buf[self.pos:self.pos + n] = np.frombuffer(data, np.uint8)
        self.pos += n
        return n

    def flush(self) -> None:
        pass


class CsvText:
    """``records`` as CSV lines, formatted slice by slice (``text(start, rows)``,
    thread-safe).

    polars writes the text: measured on a 197k-row unit, one thread, it takes 0.6x the
    CPU of ``pyarrow.csv.write_csv`` for the same bytes. Integer columns go over from
    numpy zero-copy; a dictionary column becomes a polars ``Enum`` column by gathering
    its words by code (Enum columns write ~1.5x faster than strings or Categoricals);
    nulls come from the validity masks."""

    def __init__(self, data):
        import polars as pl     # only CSV formats pay for the import

        records = as_records(data)
        self.bound = line_bound(records)
        self.num_rows = records.num_rows
        series = []
        for name, values in records.values.items():
            if name in records.words:
                words = list(records.words[name])
                codes = pl.Series(values.astype(np.uint32, copy=False))
                column = pl.Series(name, words, dtype=pl.Enum(words)).gather(codes)
            else:
                column = pl.Series(name, values)
            series.append(column)
        frame = pl.DataFrame(series)
        # columns share masks (five DATA-only columns, two SMS-only): each mask is checked
        # and handed to polars once
        masks = {id(v): v for v in records.valid.values()}
        shown = {key: pl.Series(v) for key, v in masks.items() if not v.all()}
        masked = [(name, shown[id(v)]) for name, v in records.valid.items()
                  if id(v) in shown]
        if masked:
            frame = frame.with_columns(pl.when(valid).then(pl.col(name)).alias(name)
                                       for name, valid in masked)
        self._frame = frame

    def text(self, start: int = 0, rows: int | None = None) -> np.ndarray:
        piece = self._frame.slice(start, rows)
        sink = _Sink(piece.height * self.bound)
        piece.write_csv(sink, include_header=False, separator=";", quote_style="never",
                        null_value="", line_terminator="\n")
        return sink.buf[:sink.pos]


def format_csv(data) -> np.ndarray:
    """All of ``data`` (``Records`` or a ``pyarrow.Table``) as CSV text, as uint8."""
    return CsvText(data).text()
