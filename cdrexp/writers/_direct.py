"""A write-only file that goes around the page cache (``O_DIRECT``).

Why: a buffered ``write`` copies every byte into freshly allocated page-cache pages, and
on this VM that copy (``copy_folio_from_iter_atomic``) was 25 % of the CPU of a 1M
subscriber csv run (3.4 GB written; 0.36-2 GB/s of kernel time per core depending on
whether the kernel has free pages at hand). With ``O_DIRECT`` the device reads the
process's own buffer: writing 2 GB took 0.03 s of CPU instead of 1-6 s. The data also
stays out of the page cache, where GBs of output would only push out other work's pages.

``O_DIRECT`` needs the buffer, the length and the file offset aligned to the device's
block; the file stages writes in one page-aligned buffer and writes it whole, then pads
the last block and truncates the file back to its true size. Where the filesystem refuses
``O_DIRECT`` (tmpfs, some FUSE and network filesystems), it falls back to buffered
writes, transparently.
"""
from __future__ import annotations

import errno
import mmap
import os
import threading

import numpy as np

ALIGN = 4096                  # a multiple of every common logical block size
# one write(2) per 2 MB: dd oflag=direct wrote 1 to 32 MB blocks at the same speed here
# (alone 607-670 MB/s, with both cores busy 384-426); 8 MB cost each worker 6 MB more
STAGE_BYTES = 2 << 20
_DIRECT = getattr(os, "O_DIRECT", 0)
# page-aligned buffers no longer in use (closed files' staging buffers, the CSV writer's
# write buffers), for the next ones: a fresh mapping is zeroed by the kernel on first
# touch (huge pages here: 4 % of a 200k csv run's CPU)
_SPARE: list[np.ndarray] = []
_MAX_SPARE = 8
_SPARE_LOCK = threading.Lock()


# filesystems whose files live in memory: O_DIRECT there (tmpfs takes it since Linux
# 6.6) is a copy by the CPU, never a wait on a device
_MEMORY_FS = {0x01021994, 0x858458F6}      # TMPFS_MAGIC, RAMFS_MAGIC


def _in_memory(fd: int) -> bool:
    """Whether ``fd``'s filesystem keeps its files in memory (``fstatfs``' f_type;
    False where that cannot be asked)."""
    import ctypes
    buf = ctypes.create_string_buffer(256)      # struct statfs; f_type is its first long
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.fstatfs(fd, buf) != 0:
            return False
    except (OSError, AttributeError):
        return False
    return ctypes.c_long.from_buffer(buf).value in _MEMORY_FS


def _address(view: memoryview) -> int:
    return np.frombuffer(view, np.uint8).ctypes.data if len(view) else 1


# a transparent huge page (x86-64; arm64 with 4 KB pages)
_HUGE = 2 << 20


def _new_buffer(nbytes: int) -> np.ndarray:
    """Private anonymous memory from a huge-page boundary, in huge pages where the
    kernel gives them (``MADV_HUGEPAGE``): a 2 MB ``O_DIRECT`` write from it is one
    physically contiguous segment. From 4 KB pages it was 512 segments, which this VM's
    virtio disk (254 segments a request at most) took as three requests: 1M csv ran at
    ~590 MB/s, now ~900 (``dd``, from 4 KB pages too, 620-820; from huge pages the disk
    takes ~3.5 GB/s: docs/parallel.md, issue 19's eighth round). Private,
    not shared: a forked process that writes into a buffer it inherited gets its own
    copy. The pages past the last whole huge page are kept small (``MADV_NOHUGEPAGE``):
    a line's slack past 2 MB must not fault in another 2 MB."""
    size = -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    m = mmap.mmap(-1, size + _HUGE, flags=flags) if flags else mmap.mmap(-1, size + _HUGE)
    whole = np.frombuffer(m, np.uint8)
    at = -whole.ctypes.data % _HUGE
    huge = size // _HUGE * _HUGE
    try:
        if huge:
            m.madvise(mmap.MADV_HUGEPAGE, at, huge)
        if size > huge:
            m.madvise(mmap.MADV_NOHUGEPAGE, at + huge, size - huge)
    except (AttributeError, OSError):      # no madvise, or no THP in this kernel
        pass
    return whole[at:at + size]


def take_buffer(nbytes: int) -> np.ndarray:
    """A page-aligned buffer (uint8) of ``nbytes`` or more (what ``DirectFile.write``
    sends to the device uncopied): the smallest spare that fits (of those, the one given
    back last), else a new one."""
    with _SPARE_LOCK:
        fits = [i for i, b in enumerate(_SPARE) if b.size >= nbytes]
        if fits:
            return _SPARE.pop(min(fits, key=lambda i: (_SPARE[i].size, -i)))
    return _new_buffer(nbytes)


def give_back(buf: np.ndarray) -> None:
    """``buf`` is no longer used: kept for ``take_buffer`` while there is room (else
    unmapped once its last reference goes)."""
    with _SPARE_LOCK:
        if len(_SPARE) < _MAX_SPARE:
            _SPARE.append(buf)


class DirectFile:
    """``write(data)`` / ``close()``; ``direct`` says whether the page cache is bypassed."""

    def __init__(self, path: str):
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        self.direct = bool(_DIRECT)
        try:
            self._fd = os.open(path, flags | _DIRECT, 0o666) if _DIRECT else -1
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self.direct, self._fd = False, -1
        if self._fd < 0:
            self._fd = os.open(path, flags, 0o666)
        # the writes wait on a device (not a copy into memory): see ``_csv._Ring``
        self.to_device = self.direct and not _in_memory(self._fd)
        try:
            self._stage = take_buffer(STAGE_BYTES)
        except BaseException:           # no memory for the buffer: nor a descriptor left
            os.close(self._fd)
            self._fd = -1
            raise
        self._view = memoryview(self._stage)
        self._fill = 0
        self.size = 0
        self.staged = 0         # bytes copied into the staging buffer on their way

    def write(self, data) -> int:
        src = memoryview(data).cast("B")
        n, pos = len(src), 0
        if not self._fill:
            # nothing staged: what can go out as it is does, uncopied: any length when
            # buffered, whole blocks of a block-aligned buffer when direct (the CSV
            # writer formats into such buffers, ``take_buffer``)
            if not self.direct:
                pos = n
            elif _address(src) % ALIGN == 0:
                pos = n - n % ALIGN
            if pos:
                self._write_all(src[:pos])
        while pos < n:
            k = min(STAGE_BYTES - self._fill, n - pos)
            self._view[self._fill:self._fill + k] = src[pos:pos + k]
            self._fill += k
            self.staged += k
            pos += k
            if self._fill == STAGE_BYTES:
                self._write_stage(STAGE_BYTES)
        self.size += n
        return n

    def _write_stage(self, length: int) -> None:
        self._write_all(self._view[:length])
        self._fill = 0

    def _write_all(self, view: memoryview) -> None:
        length = len(view)
        try:
            done = os.write(self._fd, view)
        except OSError as exc:
            # a filesystem may take O_DIRECT at open and refuse it on write
            if exc.errno != errno.EINVAL or not self.direct:
                raise
            self._buffered()
            done = os.write(self._fd, view)
        while done < length:            # buffered writes may be short; direct ones are not
            if not done or self.direct:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += os.write(self._fd, view[done:])

    def _buffered(self) -> None:
        import fcntl
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_DIRECT)
        self.direct = False

    def close(self) -> None:
        """Write what is staged and close; the descriptor and buffer are released even if
        that write fails (the error is raised)."""
        if self._fd < 0:
            return
        try:
            if self._fill:
                tail = self._fill
                if self.direct:
                    padded = -(-tail // ALIGN) * ALIGN
                    self._view[tail:padded] = bytes(padded - tail)
                    self._write_stage(padded)
                    os.ftruncate(self._fd, self.size)
                else:
                    self._write_stage(tail)
        finally:
            fd, self._fd = self._fd, -1
            self._view.release()
            give_back(self._stage)
            self._stage = self._view = None
            os.close(fd)
