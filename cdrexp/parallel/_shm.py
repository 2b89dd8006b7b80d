"""Numpy arrays in one POSIX shared-memory segment, owned by the process that made it.

The owner (the executor's parent process) creates the segment, copies the arrays in and is
the only process that ever unlinks it. Workers attach read-only views, zero-copy.

No segment is registered with multiprocessing's resource tracker: the tracker is a Python
process of its own (~7 MB of every tree's PSS) started by the first registration, and
Python 3.11/3.12 register even a mere attach (bpo-38119), which corrupts the owner's entry
when workers share its tracker. Its one service, unlinking after an owner died by
SIGKILL, is done here instead: a segment's name carries its owner's pid, the workers
of a dead owner unlink its segments (``_worker``), and the first segment a process
creates sweeps away those whose owner is gone (``sweep_orphans``: the owner's lock on
them went with it), e.g. one killed while it built the population, before any worker
existed.
"""
from __future__ import annotations

import fcntl
import mmap
import os
import secrets
import time
from dataclasses import dataclass
from typing import Optional

import _posixshmem
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


def owner_pid(name: str) -> Optional[int]:
    """The pid in a segment's name, or None for a name that is not ours."""
    parts = name.split("_")
    if len(parts) != 3 or f"{parts[0]}_" != NAME_PREFIX or not parts[1].isdigit():
        return None
    return int(parts[1])


def unlink(name: str) -> bool:
    """Unlink the segment ``name``; False when it was gone already."""
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        return False
    return True


class _Segment:
    """A mapped segment: ``multiprocessing.shared_memory.SharedMemory`` without the
    resource tracker (its ``track=False`` exists only from Python 3.13). The creator
    keeps a shared ``flock`` on it until ``close``: the kernel drops it when the creator
    dies, however it dies, which is how ``sweep_orphans`` tells an orphan from a live
    segment (whatever PID namespace its owner runs in)."""

    def __init__(self, name: str, size: int = 0, create: bool = False):
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        self.name = name
        self._fd = _posixshmem.shm_open("/" + name, flags, mode=0o600)
        try:
            if create:
                fcntl.flock(self._fd, fcntl.LOCK_SH)
                os.ftruncate(self._fd, size)
            self._mmap = mmap.mmap(self._fd, size or os.fstat(self._fd).st_size)
        except BaseException:
            if create:
                unlink(name)
            os.close(self._fd)
            raise
        if not create:
            os.close(self._fd)
            self._fd = None
        self.buf = memoryview(self._mmap)

    def close(self) -> None:
        """Unmap (``BufferError`` while a view of ``buf`` lives; the map then goes with
        the last view) and drop the creator's lock."""
        if self.buf is not None:
            self.buf.release()
            self.buf = None
        self._mmap.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


_swept = False
ORPHAN_MIN_AGE_S = 10.0     # younger segments may not be locked yet, or be an older
                            # cdrexp's (which took no lock) before its workers attached


def sweep_orphans(directory: str = "/dev/shm") -> list[str]:
    """Unlink the segments whose creator has died (once per process; returns their
    names): no lock held on them, at least ``ORPHAN_MIN_AGE_S`` old, and, since an older
    cdrexp took no lock, the pid in the name not alive here."""
    global _swept
    if _swept:
        return []
    _swept = True
    gone = []
    try:
        names = os.listdir(directory)
    except OSError:
        return gone
    for name in names:
        if not owner_gone(name):
            continue
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
        except OSError:
            continue            # gone meanwhile, or another user's
        try:
            if time.time() - os.fstat(fd).st_mtime < ORPHAN_MIN_AGE_S:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue            # locked: its creator lives
        finally:
            os.close(fd)
        if unlink(name):
            gone.append(name)
    return gone


def owner_gone(name: str) -> bool:
    """Whether the process that created segment ``name`` has died. A SIGKILLed owner stays
    a zombie until its own parent reaps it, which counts as dead; a pid that is not
    this user's is alive."""
    pid = owner_pid(name)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


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
        sweep_orphans()
        self._shm = _Segment(segment_name(), size, create=True)
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
        unlink(shm.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


class AttachedSegment:
    """A worker's side: read-only views; closing unmaps, never unlinks."""

    def __init__(self, spec: SegmentSpec):
        self._shms = []
        self.arrays = {}
        for part in (spec, *spec.parts):
            self._shms.append(_Segment(part.name))
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
