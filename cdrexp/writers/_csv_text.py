"""CSV text of a records table: ``;``-separated lines, no header, nulls as empty fields,
no quotes (no field can hold ``;``, a quote or a newline).

- ``CsvText`` formats it, slice by slice, with polars (imported here on first use: only
  the CSV formats pay for it).
- ``line_lengths`` says how long each line would be without formatting anything: the
  decimal width of every integer and the length of every word, computed with numpy. The
  Parquet writer sizes its parts with it, so a Parquet worker never loads polars
  (~30 MB and ~0.2 CPU-s a worker).
"""
from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# widest decimal text of each integer type, sign included
_INT_WIDTHS = {pa.int8(): 4, pa.int16(): 6, pa.int32(): 11, pa.int64(): 20,
               pa.uint8(): 3, pa.uint16(): 5, pa.uint32(): 10, pa.uint64(): 20}


def line_bound(table: pa.Table) -> int:
    """Bytes that no CSV line of ``table`` can exceed (its separators and newline
    included)."""
    total = table.num_columns           # the separators and the newline
    for field, column in zip(table.schema, table.columns):
        typ = field.type
        if typ in _INT_WIDTHS:
            total += _INT_WIDTHS[typ]
        elif pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type):
            total += max([_longest(c.dictionary) for c in column.chunks] or [0])
        elif pa.types.is_string(typ):
            total += _longest(column)
        else:
            raise TypeError(f"no CSV text for column {field.name!r} of type {typ}")
    return total


def _longest(strings) -> int:
    return pc.max(pc.binary_length(strings)).as_py() or 0


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
    """A records table as ``;``-separated lines, no header, nulls as empty fields, no
    quotes, formatted slice by slice (``text(start, rows)``, thread-safe).

    polars writes the text: measured on a 197k-row unit, one thread, it takes 0.6x the
    CPU of ``pyarrow.csv.write_csv`` (whose per-field copies and per-column casts to
    strings were ~60 % of a 1M-subscriber csv run), for the same bytes. The columns go
    over zero-copy; dictionary columns arrive as polars ``Enum`` columns of the same codes
    (``_as_enums``)."""

    def __init__(self, table: pa.Table):
        import polars as pl     # only CSV formats pay for the import

        self.bound = line_bound(table)
        table = _as_enums(table)
        frame = pl.from_arrow(table)
        # Categorical columns write ~1.5x slower than Enum ones; a polars that did not
        # take the Enum hint gets the (slower, by-string) cast
        frame = frame.with_columns(
            pl.col(name).cast(pl.Enum(_words(table.column(name))))
            for name, dtype in frame.schema.items()
            if pa.types.is_dictionary(table.schema.field(name).type)
            and not isinstance(dtype, pl.Enum))
        self._frame = frame
        self.num_rows = table.num_rows

    def text(self, start: int = 0, rows: int | None = None) -> np.ndarray:
        piece = self._frame.slice(start, rows)
        sink = _Sink(piece.height * self.bound)
        piece.write_csv(sink, include_header=False, separator=";", quote_style="never",
                        null_value="", line_terminator="\n")
        return sink.buf[:sink.pos]


def _words(column: pa.ChunkedArray) -> tuple:
    return tuple(column.chunk(0).dictionary.to_pylist()) if column.num_chunks else ()


def _as_enums(table: pa.Table) -> pa.Table:
    """The table with one dictionary per dictionary column, each column's field marked the
    way polars marks the Enum columns it exports, so ``from_arrow`` takes the codes as
    they are (0.3 ms for 200k rows) instead of mapping every row by its string (12 ms)."""
    fields, columns = [], []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_dictionary(field.type):
            if column.num_chunks > 1:
                column = column.unify_dictionaries()
            field = field.with_metadata(_enum_metadata(_words(column)))
        fields.append(field)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


@functools.lru_cache(maxsize=64)
def _enum_metadata(words: tuple) -> dict:
    """The Arrow field metadata polars writes for an ``Enum(words)`` column (asked of
    polars itself, so it follows polars' own encoding from version to version)."""
    import polars as pl

    empty = pl.DataFrame({"x": pl.Series([], dtype=pl.Enum(list(words)))})
    return empty.to_arrow().schema.field("x").metadata or {}


def format_csv(table: pa.Table) -> np.ndarray:
    """All of ``table`` as CSV text (see ``CsvText``), as uint8."""
    return CsvText(table).text()


# 10, 100, ..., 10**18: a non-negative int64's decimal width is 1 + how many it reaches
_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)


def _valid_mask(arr: pa.Array) -> np.ndarray | None:
    """The array's validity as bools (None: no nulls)."""
    if arr.null_count == 0:
        return None
    bits = np.frombuffer(arr.buffers()[0], np.uint8)
    return np.unpackbits(bits, bitorder="little")[arr.offset:arr.offset + len(arr)] \
        .astype(bool)


def _values(arr: pa.Array) -> np.ndarray:
    """The array's value buffer as numpy (nulls hold whatever the buffer holds)."""
    # (not ``to_pandas_dtype()``: that imports pandas, ~40 MB and 0.4 CPU-s a worker)
    kind = "i" if pa.types.is_signed_integer(arr.type) else "u"
    dtype = np.dtype(f"{kind}{arr.type.bit_width // 8}")
    return np.frombuffer(arr.buffers()[1], dtype)[arr.offset:arr.offset + len(arr)]


def _field_lengths(arr: pa.Array, at: np.ndarray) -> np.ndarray:
    """Bytes of the CSV text of the values at ``at`` (0 for a null)."""
    if pa.types.is_dictionary(arr.type):
        words = np.array([len(w.encode()) for w in arr.dictionary.to_pylist()] or [0],
                         np.int64)
        lengths = words[_values(arr.indices)[at].astype(np.intp)]
        valid = _valid_mask(arr.indices)
    elif arr.type in _INT_WIDTHS:
        values = _values(arr)[at].astype(np.int64)
        lengths = np.searchsorted(_POWERS_OF_TEN, np.abs(values), side="right") + 1
        lengths += values < 0
        valid = _valid_mask(arr)
    else:
        raise TypeError(f"no CSV text for type {arr.type}")
    return lengths if valid is None else np.where(valid[at], lengths, 0)


def line_lengths(table: pa.Table, rows: np.ndarray | None = None) -> np.ndarray:
    """Bytes of each line ``CsvText`` writes for ``table`` (separators and newline
    included), or of the lines ``rows`` (sorted), computed, not formatted; equal to the
    formatted lines by test."""
    rows = np.arange(table.num_rows) if rows is None else np.asarray(rows, np.int64)
    total = np.full(rows.size, table.num_columns, np.int64)
    for column in table.columns:
        start = 0
        for chunk in column.chunks:
            end = start + len(chunk)
            lo, hi = np.searchsorted(rows, [start, end])
            if hi > lo:
                total[lo:hi] += _field_lengths(chunk, rows[lo:hi] - start)
            start = end
    return total
