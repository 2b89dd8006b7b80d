"""The shared-memory segment: layout, zero-copy views, ownership, release."""
from __future__ import annotations

import os

import numpy as np
import pytest

from cdrexp.parallel._shm import AttachedSegment, OwnedSegment


def arrays():
    return {"a": np.arange(1001, dtype=np.int64), "b": np.linspace(0, 1, 7, dtype=np.float32),
            "grid": np.arange(12, dtype=np.int16).reshape(3, 4),
            "empty": np.zeros(0, dtype=np.uint8)}


def test_round_trip_zero_copy_read_only():
    src = arrays()
    with OwnedSegment(src) as seg:
        assert seg.name.startswith(f"cdrexp_{os.getpid()}_")
        assert os.path.exists(f"/dev/shm/{seg.name}")
        att = AttachedSegment(seg.spec)
        for k, v in src.items():
            got = att.arrays[k]
            assert got.dtype == v.dtype and got.shape == v.shape
            np.testing.assert_array_equal(got, v)
            assert not got.flags.writeable
            if got.size:
                assert got.ctypes.data % 64 == 0       # aligned, views into the segment
        with pytest.raises(ValueError, match="read-only"):
            att.arrays["a"][0] = 5
        att.close()
    assert not os.path.exists(f"/dev/shm/{seg.name}")


def test_release_is_idempotent_and_survives_an_outside_unlink():
    seg = OwnedSegment(arrays())
    os.unlink(f"/dev/shm/{seg.name}")
    seg.release()
    seg.release()
    assert seg._shm is None          # released once, and the second call was a no-op
    assert not os.path.exists(f"/dev/shm/{seg.name}")


def test_object_arrays_are_refused():
    with pytest.raises(TypeError, match="'names' holds Python objects"):
        OwnedSegment({"names": np.array(["x", None], dtype=object)})
