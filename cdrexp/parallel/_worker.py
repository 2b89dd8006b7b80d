"""The worker process of ``LocalExecutor``: attach the population, run units until told to stop.

Protocol on the worker's own pipe (the parent always knows which units each worker holds):

- parent -> worker: first the population's ``SegmentSpec``, then ``(index, unit)``,
  ``IDLE`` (no unit left to hand out) or ``None`` (stop)
- worker -> parent: ``("formatted", index)``, ``("ok", index, UnitResult)`` or
  ``("error", index, summary, traceback)``

A unit function with a two-step form (``unit_fn.start``, as ``work.run_unit`` has)
keeps the disk busy between units: the worker starts a unit, says ``formatted`` while its
last writes are still under way, and the parent hands it the next unit (or ``IDLE``). The
worker generates that unit's records meanwhile, then finishes the previous unit (its
files complete and renamed) and reports it ``ok``, then writes the new one. A worker thus
holds at most two units, and a unit is complete only once reported ``ok``: after a fault
the parent discards every unit a worker held. A unit function without a two-step form
is run whole and reported ``ok``, one unit at a time.

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


IDLE = "idle"


class _Terminated(SystemExit):
    """SIGTERM from the parent: unwinds the unit so its writer removes its temp files."""


def _on_sigterm(signum, frame):
    raise _Terminated(128 + signum)


def _error(index: int, exc: BaseException) -> tuple:
    return ("error", index, f"{type(exc).__name__}: {exc}", traceback.format_exc())


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
        start = getattr(unit_fn, "start", None)
        pending = []            # at most one (index, PendingUnit): its last writes go on

        def finish_pending() -> None:
            """Complete the pending unit and report it (ok or error)."""
            if not pending:
                return
            index, unit_pending = pending.pop()
            try:
                reply = ("ok", index, unit_pending.finish())
            except Exception as exc:
                reply = _error(index, exc)
            conn.send(reply)

        try:
            while True:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):     # the parent is gone: nobody to report to
                    break
                if msg is None:
                    told_to_stop = True
                    break
                if msg == IDLE:
                    finish_pending()
                    continue
                index, unit = msg
                try:
                    if start is None:
                        reply = ("ok", index, unit_fn(cfg, population, unit))
                    else:
                        pending.append((index, start(cfg, population, unit,
                                                     before_writing=finish_pending)))
                        reply = ("formatted", index)
                except Exception as exc:
                    finish_pending()            # generated or not, this unit failed
                    reply = _error(index, exc)
                conn.send(reply)
        except OSError:                         # BrokenPipe / ConnectionReset: parent gone
            pass
        finally:
            for _, unit_pending in pending:     # stopped mid-way: its files go
                unit_pending.abort()
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
