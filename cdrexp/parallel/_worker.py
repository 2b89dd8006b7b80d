"""The worker process of ``LocalExecutor``: attach the population, run units until told to stop.

Protocol on the worker's own pipe (the parent hands one unit at a time to whichever worker
is free, so it always knows which unit each worker is running):

- parent -> worker: first the population's ``SegmentSpec``, then ``(index, unit)`` or
  ``None`` (stop)
- worker -> parent: ``("ok", index, UnitResult)`` or ``("error", index, summary, traceback)``

A runner killed outright (SIGKILL) takes its workers with it: they get SIGTERM when their
parent exits (``PR_SET_PDEATHSIG``; the parent is the runner itself when the workers were
forked from it, or its forkserver, which exits after it), or find the pipe closed; either
way they stop quietly, and the one that first finds the runner gone unlinks the
population's segments (no leak).
"""
from __future__ import annotations

import os
import signal
import traceback


class _Terminated(SystemExit):
    """SIGTERM from the parent: unwinds the unit so its writer removes its temp files."""


def _on_sigterm(signum, frame):
    raise _Terminated(128 + signum)


def _population(rebuild, arrays):
    return arrays if rebuild is None else rebuild(arrays)


def _unlink_orphaned(name: str) -> None:
    """The runner died without unlinking the population's segment (SIGKILL): unlink it in
    its place. Only one worker's unlink succeeds."""
    from ._shm import owner_gone, unlink
    if owner_gone(name):
        unlink(name)


WORKER_NAME = "cdrexp-worker"       # the process's name in ps, top and /proc/PID/comm
_PR_SET_NAME = 15


def _name_this_process() -> None:
    """A forked worker shows its parent's command line; its name tells them apart."""
    import ctypes
    try:
        ctypes.CDLL(None).prctl(_PR_SET_NAME, WORKER_NAME.encode(), 0, 0, 0)
    except (OSError, AttributeError):
        pass            # not Linux: the name is cosmetic


def worker_main(conn, rebuild, unit_fn, cfg, env: dict) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what
    # happens (it stops the workers with SIGTERM), the workers must not race it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _name_this_process()
    # a forkserver's environment dates from its start; the profiler's switch is the
    # parent's current one
    os.environ.update(env)
    from . import worker_profiling
    from ._alloc import keep_freed_memory
    from ._signals import sigterm_when_parent_dies
    from ._shm import AttachedSegment

    keep_freed_memory()
    # a SIGKILLed runner must not leave workers that finish their unit and then fail to
    # report it: their parent is the runner, or its forkserver, which exits after it
    if not sigterm_when_parent_dies(os.getppid()):
        raise _Terminated(128 + signal.SIGTERM)
    stop_hook = worker_profiling.start()
    segment = population = segment_spec = None
    told_to_stop = False
    try:
        try:
            segment_spec = conn.recv()      # the parent fills the segment meanwhile
        except (EOFError, OSError):
            return
        segment = AttachedSegment(segment_spec)
        population = _population(rebuild, segment.arrays)
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):     # the parent is gone: nobody to report to
                break
            if msg is None:
                told_to_stop = True
                break
            index, unit = msg
            try:
                result = unit_fn(cfg, population, unit)
                reply = ("ok", index, result)
            except Exception as exc:
                reply = ("error", index, f"{type(exc).__name__}: {exc}",
                         traceback.format_exc())
            try:
                conn.send(reply)
            except OSError:                 # BrokenPipe / ConnectionReset: parent gone
                break
    finally:
        population = None
        if segment is not None:
            segment.close()
        if segment_spec is not None and not told_to_stop:
            # the runner may be gone (SIGKILL): the population's segment and its small
            # parts (cells, tables), each a name, are then this worker's to unlink. A
            # worker told to stop has a runner that unlinks them itself.
            for part in (segment_spec, *segment_spec.parts):
                _unlink_orphaned(part.name)
        stop_hook()
        conn.close()
