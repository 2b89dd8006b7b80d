"""``Records``: one unit's records as numpy columns, the form the writers take.

The model fills numpy arrays. A CSV worker formats them with a compiled kernel
(``writers._csv_kernel``) straight from numpy and never loads pyarrow (~19 MB of every CSV
process tree's memory, and its import's CPU); Parquet gets an Arrow table over the same buffers, zero-copy (``to_arrow``). Tables made
elsewhere (the writers' tests) come in through ``from_arrow``.

A column is an integer array; a dictionary column is an ``int8`` array of codes into its
``words``. A column with nulls has a bool mask in ``valid`` (True: a value); the values
under a null are whatever the array holds.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from .schema import EVENT_TYPES


class Records:
    __slots__ = ("values", "valid", "words", "num_rows")

    def __init__(self, values: Mapping[str, np.ndarray],
                 valid: Optional[Mapping[str, np.ndarray]] = None,
                 words: Optional[Mapping[str, Sequence[str]]] = None):
        self.values = dict(values)
        self.valid = dict(valid or {})
        self.words = {k: tuple(v) for k, v in (words or {}).items()}
        sizes = {v.size for v in self.values.values()}
        if len(sizes) > 1:
            raise ValueError(f"columns of different lengths: {sorted(sizes)}")
        self.num_rows = sizes.pop() if sizes else 0

    def counts_by_type(self) -> dict[str, int]:
        """Rows per event type (all of ``EVENT_TYPES``, zeros included)."""
        counts = dict.fromkeys(EVENT_TYPES, 0)
        if self.num_rows:
            words = self.words["event_type"]
            codes = self.values["event_type"]
            # a count per code (three): np.bincount casts the int8 codes to intp and
            # took ~0.4 ms of a 197k-record unit, these ~0.05 ms
            for code, word in enumerate(words):
                counts[word] = counts.get(word, 0) + int(np.count_nonzero(codes == code))
        return counts

    def to_arrow(self):
        """The records as a ``pyarrow.Table`` over the same buffers (dictionary columns
        as ``dictionary<int8, string>``); in ``RECORD_SCHEMA`` when they are records."""
        import pyarrow as pa

        from ._arrow import from_numpy, strings
        from .schema import RECORD_COLUMNS

        arrays, packed = [], {}
        for name, values in self.values.items():
            arr = from_numpy(values, None, self.valid.get(name), packed)
            if name in self.words:
                arr = pa.DictionaryArray.from_arrays(arr, strings(self.words[name]),
                                                     safe=False)
            arrays.append(arr)
        if list(self.values) == list(RECORD_COLUMNS):
            from .schema import RECORD_SCHEMA
            return pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA)
        return pa.Table.from_arrays(arrays, names=list(self.values))

    @classmethod
    def from_arrow(cls, table) -> "Records":
        """Records from a ``pyarrow.Table`` of integer and dictionary-of-string columns
        (chunks and dictionaries unified; ``TypeError`` names a column of another type)."""
        import pyarrow as pa

        table = table.unify_dictionaries().combine_chunks()
        values, valid, words = {}, {}, {}
        for field, column in zip(table.schema, table.columns):
            arr = column.chunk(0) if column.num_chunks else pa.array([], field.type)
            typ = field.type
            if pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type):
                words[field.name] = arr.dictionary.to_pylist()
                arr = arr.indices
                values[field.name] = _buffer_values(arr).astype(np.int8, copy=False)
            elif pa.types.is_integer(typ):
                values[field.name] = _buffer_values(arr)
            else:
                raise TypeError(f"no CSV text for column {field.name!r} of type {typ}")
            if arr.null_count:
                bits = np.frombuffer(arr.buffers()[0], np.uint8)
                valid[field.name] = np.unpackbits(bits, bitorder="little")[
                    arr.offset:arr.offset + len(arr)].astype(bool)
        return cls(values, valid, words)


def as_records(data) -> Records:
    """``data`` itself, or the records of a ``pyarrow.Table``."""
    return data if isinstance(data, Records) else Records.from_arrow(data)


def _buffer_values(arr) -> np.ndarray:
    """An integer Arrow array's value buffer as numpy, nulls included (not
    ``to_numpy``/``to_pandas_dtype``: those refuse nulls or import pandas)."""
    import pyarrow as pa

    kind = "i" if pa.types.is_signed_integer(arr.type) else "u"
    dtype = np.dtype(f"{kind}{arr.type.bit_width // 8}")
    if len(arr) == 0:
        return np.empty(0, dtype)
    return np.frombuffer(arr.buffers()[1], dtype)[arr.offset:arr.offset + len(arr)]
