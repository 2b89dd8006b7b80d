"""Numpy arrays in one POSIX shared-memory segment, owned by the process that made it.

The owner (the executor's parent process) creates the segment, copies the arrays in and is
the only process that ever unlinks it. Workers attach read-only views, zero-copy.

Python 3.11/3.12 register a segment with the resource tracker even when a process merely
attaches to it (bpo-38119). Workers share their parent's tracker, so a worker's
registration (or a worker's ``unregister``, the usual recipe) corrupts the owner's entry:
the tracker then prints a ``KeyError`` traceback when the owner unlinks, or a "leaked
shared_memory" warning at exit. ``attach`` therefore never registers; only ``create``
does, which leaves the tracker as a safety net should the owner be SIGKILLed.
"""
from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory

import numpy as np

NAME_PREFIX = "cdrexp_"
_ALIGN = 64          # cache-line alignment of every array in the segment


@dataclass(frozen=True)
class ArraySpec:
    key: str
    dtype: str
    shape: tuple[int, ...]
    offset: int


@dataclass(frozen=True)
class SegmentSpec:
    """Everything a worker needs to find the arrays: small and picklable."""
    name: str
    size: int
    arrays: tuple[ArraySpec, ...]
    # further segments whose arrays belong to the same set (a population built straight
    # into shared memory, plus the small arrays sized by the build)
    parts: tuple["SegmentSpec", ...] = ()


def segment_name() -> str:
    """A unique name carrying the owner's pid, so leaks can be traced to a process."""
    return f"{NAME_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"


def _layout(arrays: dict[str, np.ndarray]) -> tuple[tuple[ArraySpec, ...], int]:
    shapes = {}
    for key, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype.hasobject:
            raise TypeError(f"population array {key!r} holds Python objects; "
                            "only plain numpy dtypes can be shared")
        shapes[key] = (arr.shape, arr.dtype)
    return _layout_shapes(shapes)


def _layout_shapes(shapes: dict) -> tuple[tuple[ArraySpec, ...], int]:
    specs, offset = [], 0
    for key, (shape, dtype) in shapes.items():
        dtype = np.dtype(dtype)
        shape = tuple(np.atleast_1d(shape).tolist())
        specs.append(ArraySpec(key, dtype.str, shape, offset))
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        offset += -(-nbytes // _ALIGN) * _ALIGN
    return tuple(specs), max(offset, 1)


def _views(buf, specs) -> dict[str, np.ndarray]:
    out = {}
    for s in specs:
        view = np.ndarray(s.shape, dtype=np.dtype(s.dtype), buffer=buf, offset=s.offset)
        out[s.key] = view
    return out


class OwnedSegment:
    """The owner's side: create, fill, and always unlink (idempotent ``release``)."""

    def __init__(self, arrays: dict[str, np.ndarray], parts: tuple = (),
                 _specs=None):
        specs, size = _specs or _layout(arrays)
        self._shm = shared_memory.SharedMemory(name=segment_name(), create=True, size=size)
        self.spec = SegmentSpec(self._shm.name, size, specs, tuple(parts))
        try:
            for key, view in _views(self._shm.buf, specs).items():
                if key in arrays:       # a blank segment is filled by its caller
                    np.copyto(view, np.asarray(arrays[key]), casting="no")
                del view
        except BaseException:
            self.release()
            raise

    @classmethod
    def blank(cls, shapes: dict) -> "OwnedSegment":
        """A segment for arrays ``{key: (shape, dtype)}``, left for the caller to fill
        through ``views()`` (the kernel gives zeroed pages; nothing is copied)."""
        return cls({}, _specs=_layout_shapes(shapes))

    def holds(self, arr: np.ndarray) -> bool:
        """Whether ``arr``'s memory lies inside this segment."""
        if self._shm is None or not isinstance(arr, np.ndarray) or arr.size == 0:
            return False
        base = np.frombuffer(self._shm.buf, np.uint8, count=1).ctypes.data
        start = arr.ctypes.data
        return base <= start and start + arr.nbytes <= base + self.spec.size

    @property
    def name(self) -> str:
        return self.spec.name

    def views(self) -> dict[str, np.ndarray]:
        """The owner's own writable views of the arrays (drop them before ``release``)."""
        return _views(self._shm.buf, self.spec.arrays)

    def release(self) -> None:
        shm, self._shm = self._shm, None
        if shm is None:
            return
        try:
            shm.close()
        except BufferError:
            # a view is still alive somewhere in this process; the mapping goes when it
            # does, but the name must go now
            pass
        try:
            shm.unlink()
        except FileNotFoundError:
            resource_tracker.unregister(shm._name, "shared_memory")  # noqa: SLF001

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _open_untracked(name: str) -> shared_memory.SharedMemory:
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    register = resource_tracker.register
    resource_tracker.register = lambda *a, **k: None   # workers are single-threaded here
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register


class AttachedSegment:
    """A worker's side: read-only views; closing unmaps, never unlinks."""

    def __init__(self, spec: SegmentSpec):
        self._shms = []
        self.arrays = {}
        for part in (spec, *spec.parts):
            self._shms.append(_open_untracked(part.name))
            self.arrays.update(_views(self._shms[-1].buf, part.arrays))
        for view in self.arrays.values():
            view.flags.writeable = False

    def close(self) -> None:
        self.arrays = {}
        shms, self._shms = self._shms, []
        for shm in shms:
            try:
                shm.close()
            except BufferError:
                pass    # a view escaped (e.g. held by a population); unmapped at exit
