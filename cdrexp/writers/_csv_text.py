"""CSV text of a unit's ``Records``: ``;``-separated lines, no header, nulls as empty
fields, no quotes (no field can hold ``;``, a quote or a newline).

- ``CsvText`` formats them, slice by slice, with a numba-compiled loop loaded as a
  shared library (``_csv_kernel``, imported on first use: only the CSV formats load it),
  straight from the numpy columns: no pyarrow, no polars, no numba in a CSV worker.
- ``line_lengths`` says how long each line would be without formatting anything: the
  decimal width of every integer and the length of every word, computed with numpy. The
  Parquet writer sizes its parts with it, so a Parquet worker loads no formatter.
"""
from __future__ import annotations

import numpy as np

from ..model import as_records

# 10, 100, ..., 10**18: a non-negative int64's decimal width is 1 + how many it reaches
_POWERS_OF_TEN = 10 ** np.arange(1, 20, dtype=np.uint64)


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
            negative = values < 0
            # magnitudes as uint64: np.abs of int64's minimum is itself, negative
            magnitude = values.view(np.uint64).copy()
            np.negative(magnitude, out=magnitude, where=negative)
            lengths = np.searchsorted(_POWERS_OF_TEN, magnitude, side="right") + 1
            lengths += negative
        valid = records.valid.get(name)
        total += lengths if valid is None else np.where(valid[at], lengths, 0)
    return total


class CsvText:
    """``records`` as CSV lines: ``text(start, rows)`` formats a slice into a buffer of
    its own, ``write_rows`` into the caller's (thread-safe, both).

    A compiled loop writes the text (``_csv_kernel``; measured on a 197k-row unit, one
    thread: ~0.37x the CPU of polars' CSV writer for the same bytes,
    benchmarks/bench_csv_numba.py), reading the unit's columns where they are."""

    def __init__(self, data):
        from . import _csv_kernel     # only CSV formats load it

        records = as_records(data)
        self.bound = line_bound(records)
        self.num_rows = records.num_rows
        names = list(records.values)
        for name, values in records.values.items():
            if values.dtype == np.uint64:   # the kernel takes int64: would wrap over 2**63
                raise TypeError(f"column {name!r}: uint64 is not written as CSV")
        # columns share masks (five DATA-only columns, two SMS-only): each is passed
        # once. A mask with no null is kept: the kernel unrolled for the records' layout
        # (_csv_kernel.LAYOUTS) takes a mask for each column that may be null
        masks, mask_at = [], {}
        mask_of = np.full(len(names), -1, np.int64)
        for c, name in enumerate(names):
            valid = records.valid.get(name)
            if valid is not None:
                if id(valid) not in mask_at:
                    mask_at[id(valid)] = len(masks)
                    masks.append(valid)
                mask_of[c] = mask_at[id(valid)]
        word_of = np.full(len(names), -1, np.int64)
        words = []
        for c, name in enumerate(names):
            if name in records.words:
                word_of[c] = len(words)
                table = [w.encode() for w in records.words[name]]
                _check_codes(name, records.values[name], records.valid.get(name),
                             len(table))
                words += table
        self._columns = _csv_kernel.Columns(list(records.values.values()), masks, mask_of,
                                            word_of, words)
        # bytes a buffer needs past the text it may hold
        self.slack = self._columns.slack

    def text(self, start: int = 0, rows: int | None = None) -> np.ndarray:
        """Lines ``start`` to ``start + rows`` (to the end when ``rows`` is None)."""
        stop = self.num_rows if rows is None else min(self.num_rows, start + rows)
        out = np.empty(max(stop - start, 0) * self.bound + self.slack, np.uint8)
        _, end = self._columns.write_rows(start, stop, out, 0, out.size)
        return out[:end]

    def write_rows(self, start: int, out: np.ndarray, at: int, limit: int) -> tuple[int, int]:
        """Lines from row ``start`` on into ``out`` from ``at``, up to the first line that
        ends at or past ``limit`` (or the last row): (the next row, where the text ends).
        ``out`` holds ``limit + bound + slack`` bytes at least."""
        if out.size < limit + self.bound + self.slack:
            raise ValueError(f"write_rows: {out.size} bytes cannot take text up to "
                             f"{limit} and a line ({self.bound}) past it")
        return self._columns.write_rows(start, self.num_rows, out, at, limit)


def _check_codes(name: str, codes: np.ndarray, valid, words: int) -> None:
    """A word column's codes (where not null) all name a word: the compiled loop reads
    the word table at them unchecked."""
    if not codes.size or (valid is not None and not valid.any()):
        return
    # every code in range, nulls' included, is the usual case and settles it: a masked
    # reduction (``where=``) is not vectorised and cost ~3 ms a column of a 197k-record
    # unit, ~9 % of a plain CSV unit's CPU, against ~0.01 ms for the plain one
    if 0 <= int(codes.min()) and int(codes.max()) < words:
        return
    where = True if valid is None else valid
    lo = int(np.min(codes, where=where, initial=words))
    hi = int(np.max(codes, where=where, initial=-1))
    if lo < 0 or hi >= words:
        raise ValueError(f"column {name!r}: codes {lo}..{hi} for {words} words")


def format_csv(data) -> np.ndarray:
    """All of ``data`` (``Records`` or a ``pyarrow.Table``) as CSV text, as uint8."""
    return CsvText(data).text()
