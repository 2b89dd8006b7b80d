"""Allocator settings for processes that generate units: keep freed memory for the next unit.

A unit allocates and frees the same numpy temporaries (a few MB each, ~100 MB in all) every
~80 ms. With glibc's defaults, blocks above the mmap threshold are mapped and unmapped each
time and the top of the heap is trimmed back to the kernel, so every unit faults its memory
in again: measured on a 20,000-subscriber unit, 15,000 minor page faults and 82 ms of CPU per
unit, against 660 faults and 53 ms with the thresholds raised. The peak memory of a unit is
the same; the process merely keeps it mapped between units instead of returning it.

Arrow's buffers (the CSV text of each ~6 MB slice, the casts behind it) go through the same
retained heap: ``pyarrow.system_memory_pool()`` instead of Arrow's default mimalloc, which
returns freed slices to the kernel and takes them back as fresh pages, zeroed by the kernel
on every slice (with transparent huge pages, 2 MB at a time). A ``perf record -e
cpu-clock`` of a 100k-subscriber CSV run at 2 workers had 10.7 % of all samples in
``clear_page_erms`` with mimalloc and 0.2 % with the system pool.

Workers keep the setting until they exit. A process that runs units itself (the serial
executor) uses ``units_allocator()``: the setting for the run, then the retained memory is
handed back (``malloc_trim``), the trim threshold comes down to 64 MB and Arrow's pool is
the one it was before, so the process does not stay at its peak after the run. Setting
either threshold switches off glibc's dynamic adjustment of both, which is why both are
set, and why the values afterwards are where the dynamic adjustment would have taken them
(32 MB and twice that), not glibc's initial 128 KB: those, static, would map and unmap
every temporary above 128 KB (measured: building a 1M population took 0.45 s instead of
0.13 s after a serial run). Elsewhere than glibc (musl, macOS) this does nothing;
``CDREXP_NO_MALLOPT=1`` in the environment keeps glibc's and Arrow's defaults (to compare).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 << 20       # glibc's upper bound for it on 64-bit
TRIM_THRESHOLD = 1 << 30

AFTER_TRIM_THRESHOLD = 2 * MMAP_THRESHOLD      # glibc's dynamic rule: trim = 2 x mmap
OPT_OUT_ENV = "CDREXP_NO_MALLOPT"


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
        except OSError:
            return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None     # not glibc
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    return libc


def _set_thresholds(libc, mmap_threshold: int, trim_threshold: int) -> bool:
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def _one_arena(libc) -> None:
    """Threads started from now on allocate from the arenas that exist (in a worker: the
    main heap alone) instead of an arena each.

    Why: a unit's CSV slices are allocated on its format thread and freed on others, and
    glibc gives each new thread an arena of its own; with the freed memory kept, every
    arena kept its own high-water mark. At 200k csv, 2 workers: 64-68 MB per worker
    against 52-55 MB with one arena. The threads allocate a few large blocks per slice,
    so the shared lock is not contended. glibc fixes its arena limit the first time a
    thread needs an arena, so the setting is for the rest of the process."""
    libc.mallopt(_M_ARENA_MAX, 1)


_ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
def _arrow_on_malloc():
    """Point Arrow's default pool at malloc; returns the pool it replaced. A process that
    has not loaded pyarrow (a CSV worker never does) is not made to: Arrow reads
    ``ARROW_DEFAULT_MEMORY_POOL`` when it loads, so that is set instead (unless the user
    set it), and None returned."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        os.environ.setdefault(_ARROW_POOL_ENV, "system")
        return None
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    return previous


def keep_freed_memory() -> bool:
    """Raise malloc's mmap and trim thresholds in this process and have Arrow allocate
    through malloc. True if applied."""
    if os.environ.get(OPT_OUT_ENV):
        return False
    libc = _libc()
    if libc is None or not _set_thresholds(libc, MMAP_THRESHOLD, TRIM_THRESHOLD):
        return False
    _one_arena(libc)
    _arrow_on_malloc()
    return True


@contextmanager
def units_allocator():
    """``keep_freed_memory()`` for the block; afterwards the memory it kept goes back to the
    kernel and at most 64 MB of freed memory is kept from then on (new threads keep
    sharing the arenas there are: ``_one_arena``)."""
    libc = None if os.environ.get(OPT_OUT_ENV) else _libc()
    if libc is None or not _set_thresholds(libc, MMAP_THRESHOLD, TRIM_THRESHOLD):
        yield False
        return
    env_before = os.environ.get(_ARROW_POOL_ENV)
    previous_pool = _arrow_on_malloc()
    _one_arena(libc)
    try:
        yield True
    finally:
        if previous_pool is not None:
            sys.modules["pyarrow"].set_memory_pool(previous_pool)
        elif env_before is None:    # ours; a pyarrow loaded meanwhile stays on malloc
            os.environ.pop(_ARROW_POOL_ENV, None)
        _set_thresholds(libc, MMAP_THRESHOLD, AFTER_TRIM_THRESHOLD)
        libc.malloc_trim(0)
