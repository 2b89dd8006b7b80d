"""When ``LocalExecutor`` may fork its workers straight from the generator process.

Forking is the leanest start: a worker is a copy-on-write image of a process that has
imported what generation needs and built the population, so there is no forkserver
(~14 MB of every tree's PSS, and its imports' CPU) and nothing is imported twice. It is
unsafe, though, when another thread may hold a lock at the moment of the fork: the child
inherits the lock held, and deadlocks the first time it needs it. ``fork_blocker`` allows
a fork only when every other thread of the process is one that this package started and
declared safe (``mark_fork_safe``: the memory sampler, which ``quiet_for_fork`` keeps
idle while a fork runs) and no thread exists outside Python's view (a C library's pool:
pyarrow's import starts jemalloc's background thread, a profiler may add its own). Any
other process (a notebook, an MLflow client, a test runner with an I/O thread) gets the
forkserver.

``frozen_heap`` wraps the forks: ``gc.freeze()`` moves every object that exists into a
generation the collector never visits, so the workers' collections do not write into the
headers of the parent's objects and copy those pages (what ``_frozen`` does for the
forkserver).
"""
from __future__ import annotations

import contextlib
import gc
import os
import threading
import weakref
from typing import Optional

_SAFE: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
# held by a safe thread while it works; a fork waits for it (os.register_at_fork)
_QUIET = threading.Lock()


def mark_fork_safe(thread: threading.Thread) -> None:
    """``thread`` never holds a lock a forked worker could need, except while it holds
    ``quiet_for_fork()``, which a fork waits for."""
    _SAFE.add(thread)


def quiet_for_fork():
    """A safe thread's work between two waits: no fork happens meanwhile."""
    return _QUIET


def _os_threads() -> Optional[int]:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def fork_blocker() -> Optional[str]:
    """None when this process may fork its workers now, else why not (for tests and logs)."""
    if not hasattr(os, "register_at_fork"):
        return "this platform cannot fork"
    me = threading.current_thread()
    others = [t for t in threading.enumerate() if t is not me]
    unsafe = [t.name for t in others if t not in _SAFE]
    if unsafe:
        return f"other threads run: {', '.join(sorted(unsafe))}"
    count = _os_threads()
    if count is None:
        return "cannot count this process's threads (/proc/self/task)"
    if count != len(others) + 1:
        return f"{count - len(others) - 1} thread(s) outside Python run (a C library's pool)"
    return None


@contextlib.contextmanager
def frozen_heap():
    """Forks inside this block leave the parent's objects to the parent's collector."""
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_before:       # someone else's freeze stays as it was
            gc.unfreeze()


def _before_fork():
    _QUIET.acquire()


def _after_fork():
    _QUIET.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork,
                        after_in_child=_after_fork)
