"""When ``LocalExecutor`` may fork its workers straight from the generator process.

Forking is the leanest start: a worker is a copy-on-write image of a process that has
imported what generation needs and built the population, so there is no forkserver
(~14 MB of every tree's PSS, and its imports' CPU) and nothing is imported twice. It is
unsafe, though, when another thread may hold a lock at the moment of the fork: the child
inherits the lock held, and deadlocks the first time it needs it. ``fork_blocker`` allows
a fork only when

- every other Python thread is one that this package started and declared safe
  (``mark_fork_safe``: the memory sampler, which ``quiet_for_fork`` keeps idle while a
  fork runs);
- every thread outside Python's view is one whose library makes fork safe
  (``NATIVE_FORK_SAFE``), not some other C library's pool (OpenBLAS with more than one
  thread, memray's tracker);
- no profiler runs in the process (cProfile: each worker profiles itself instead,
  ``worker_profiling``).

Any other process (a notebook, an MLflow client, a test runner with an I/O thread) gets
the forkserver.

``forking`` wraps the forks: ``gc.freeze()`` moves every object that exists into a
generation the collector never visits, so the workers' collections do not write into the
headers of the parent's objects and copy those pages (what ``_frozen`` does for the
forkserver).
"""
from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import warnings
import weakref
from typing import Optional

_SAFE: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()
# Native threads, by name (/proc/self/task/*/comm), whose library makes a fork safe:
# pyarrow's import starts jemalloc's background thread, and jemalloc takes every one of
# its locks around a fork (pthread_atfork) and starts that thread again in the child as
# needed; Arrow registers at-fork handlers so that its APIs work in the child.
NATIVE_FORK_SAFE = {"jemalloc_bg_thd"}
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
    """This process's threads, less those ``NATIVE_FORK_SAFE`` names."""
    try:
        tasks = os.listdir("/proc/self/task")
        count = len(tasks)
        for task in tasks:
            with open(f"/proc/self/task/{task}/comm") as fh:
                count -= fh.read().strip() in NATIVE_FORK_SAFE
    except FileNotFoundError:
        return _os_threads()            # a thread ended meanwhile: count again
    except OSError:
        return None
    return count


def fork_blocker() -> Optional[str]:
    """None when this process may fork its workers now, else why not (for tests and logs)."""
    if not hasattr(os, "register_at_fork"):
        return "this platform cannot fork"
    if _profiler_active():
        return "a profiler runs in this process (its workers profile themselves)"
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


def _profiler_active() -> bool:
    """cProfile in this process: a forked worker would inherit it, running and lost at
    the worker's exit, and (Python 3.12+) could not start its own."""
    if sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)
    return bool(monitoring and monitoring.get_tool(monitoring.PROFILER_ID))


@contextlib.contextmanager
def forking():
    """Around the forks of the workers, once ``fork_blocker`` allowed them: the parent's
    objects are left to the parent's collector, and Python 3.12+'s warning about forking
    a process that runs threads (here: only the safe ones) is not shown."""
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*multi-threaded, use of fork",
                                    category=DeprecationWarning)
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
