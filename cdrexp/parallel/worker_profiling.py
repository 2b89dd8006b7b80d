"""Profiling inside worker processes that a parent-level profiler cannot follow.

Executors call ``start()`` first thing in every worker process and the returned
``stop()`` when the worker ends. The parent's profiler asks for it through the
environment variable ``CDREXP_WORKER_PROFILER``:

- ``memray:DIR`` (or ``memray+native:DIR``): a ``memray.Tracker`` writing
  ``DIR/worker-<pid>.bin``. memray's ``--follow-fork`` covers only forked children;
  spawn / forkserver workers are fresh interpreters and need their own tracker.
- ``cprofile:DIR``: a ``cProfile.Profile`` dumped to ``DIR/worker-<pid>.pstats``.

Unset means do nothing. A hook that cannot start (memray missing, another profiler
already active) prints one line to stderr and leaves the worker unprofiled: profiling
must never break a generation. ``stop()`` is idempotent and is also registered to run
when a multiprocessing worker exits normally, so a worker that forgets it still
leaves a complete file; a worker killed by a signal leaves a truncated memray file
(read as far as it goes) or no pstats file.
"""
from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Callable

ENV_VAR = "CDREXP_WORKER_PROFILER"
KINDS = ("memray", "memray+native", "cprofile")


def _noop() -> None:
    return None


def worker_file(directory: Path, suffix: str) -> Path:
    """``DIR/worker-<pid><suffix>``, not clobbering a file of an earlier, reused pid."""
    pid = os.getpid()
    path = directory / f"worker-{pid}{suffix}"
    n = 1
    while path.exists():
        path = directory / f"worker-{pid}-{n}{suffix}"
        n += 1
    return path


def parse_spec(spec: str) -> tuple[str, Path]:
    kind, sep, directory = spec.partition(":")
    if not sep or kind not in KINDS or not directory:
        raise ValueError(f"{ENV_VAR}={spec!r}: expected one of "
                         f"{', '.join(k + ':DIR' for k in KINDS)}")
    return kind, Path(directory)


_active: dict[int, Callable[[], None]] = {}   # pid -> stop of the hook running there


def start() -> Callable[[], None]:
    """Start the profiler asked for in this process (once per process) and return stop."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return _noop
    pid = os.getpid()
    if pid in _active:     # a second call in the same worker joins the running profile
        return _active[pid]
    try:
        kind, directory = parse_spec(spec)
        directory.mkdir(parents=True, exist_ok=True)
        if kind == "cprofile":
            stop = _start_cprofile(directory)
        else:
            stop = _start_memray(directory, native=kind == "memray+native")
    except Exception as exc:   # noqa: BLE001 - a profiler must not break the worker
        print(f"cdrexp: worker {os.getpid()}: profiling not started: {exc}",
              file=sys.stderr)
        return _noop
    _active[pid] = _once(stop)
    return _active[pid]


def _once(stop: Callable[[], None]) -> Callable[[], None]:
    done = False

    def stop_once() -> None:
        nonlocal done
        if done:
            return
        done = True
        try:
            stop()
        except Exception as exc:   # noqa: BLE001
            print(f"cdrexp: worker {os.getpid()}: profile not saved: {exc}",
                  file=sys.stderr)

    # multiprocessing workers leave through os._exit after running these finalizers,
    # so atexit alone would miss them; plain processes run atexit.
    try:
        from multiprocessing import util
        util.Finalize(None, stop_once, exitpriority=100)
    except Exception:   # noqa: BLE001
        pass
    atexit.register(stop_once)
    return stop_once


def _start_cprofile(directory: Path) -> Callable[[], None]:
    import cProfile

    prof = cProfile.Profile()
    prof.enable()

    def stop() -> None:
        prof.disable()
        final = worker_file(directory, ".pstats")
        tmp = final.with_name(final.name + ".tmp")
        prof.dump_stats(str(tmp))
        os.replace(tmp, final)   # never a half-written file under the final name
    return stop


def _start_memray(directory: Path, native: bool) -> Callable[[], None]:
    import memray

    path = worker_file(directory, ".bin")
    tracker = memray.Tracker(str(path), native_traces=native, follow_fork=False)
    tracker.__enter__()

    def stop() -> None:
        tracker.__exit__(None, None, None)
    return stop
