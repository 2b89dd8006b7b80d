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
               validity: Optional[np.ndarray] = None) -> pa.Array:
    """A primitive Arrow array viewing ``values`` (zero-copy); ``validity``: a bool mask
    of the non-null entries, or None for no nulls."""
    values = np.ascontiguousarray(values)
    arrow_type = arrow_type or pa.from_numpy_dtype(values.dtype)
    if validity is None:
        return pa.Array.from_buffers(arrow_type, values.size, [None, pa.py_buffer(values)])
    bits = pa.py_buffer(np.packbits(validity, bitorder="little"))
    return pa.Array.from_buffers(arrow_type, values.size, [bits, pa.py_buffer(values)],
                                 null_count=int(validity.size - np.count_nonzero(validity)))


def strings(words: Sequence[str]) -> pa.Array:
    """A string array of ``words`` (no nulls)."""
    data = [w.encode() for w in words]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(data),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])
