"""Arrow arrays from numpy buffers, without ``pyarrow.array``.

``pyarrow.array(obj)`` asks pyarrow's pandas shim whether ``obj`` is a pandas object,
and that imports pandas (~0.4 s of CPU and ~40 MB per process, in the generator process,
the forkserver and every worker alike) although cdrexp never hands it a pandas object.
Building arrays from their buffers never touches the shim (tests/model/test_imports.py).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyarrow as pa


def from_numpy(values: np.ndarray, arrow_type: Optional[pa.DataType] = None,
               validity: Optional[np.ndarray] = None,
               packed: Optional[dict] = None) -> pa.Array:
    """A primitive Arrow array viewing ``values`` (zero-copy); ``validity``: a bool mask
    of the non-null entries, or None for no nulls. ``packed``: a dict the caller keeps
    over several columns, so a mask they share is packed into bits once (records: five
    DATA-only columns, two SMS-only)."""
    values = np.ascontiguousarray(values)
    arrow_type = arrow_type or pa.from_numpy_dtype(values.dtype)
    if validity is None:
        return pa.Array.from_buffers(arrow_type, values.size, [None, pa.py_buffer(values)])
    got = None if packed is None else packed.get(id(validity))
    if got is None or got[0] is not validity:
        got = (validity, pa.py_buffer(np.packbits(validity, bitorder="little")),
               int(validity.size - np.count_nonzero(validity)))
        if packed is not None:
            packed[id(validity)] = got          # holds the mask: its id stays its own
    return pa.Array.from_buffers(arrow_type, values.size, [got[1], pa.py_buffer(values)],
                                 null_count=got[2])


def strings(words: Sequence[str]) -> pa.Array:
    """A string array of ``words`` (no nulls)."""
    data = [w.encode() for w in words]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(data),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])
