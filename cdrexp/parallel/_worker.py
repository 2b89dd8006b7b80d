"""The worker process of ``LocalExecutor``: attach the population, run units until told to stop.

Protocol on the worker's own pipe (the parent hands one unit at a time to whichever worker
is free, so it always knows which unit each worker is running):

- parent -> worker: first the population's ``SegmentSpec``, then ``(index, unit)`` or
  ``None`` (stop)
- worker -> parent: ``("ok", index, UnitResult)`` or ``("error", index, summary, traceback)``
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


def worker_main(conn, rebuild, unit_fn, cfg, env: dict) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what
    # happens (it stops the workers with SIGTERM), the workers must not race it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # the forkserver's environment dates from its start; the profiler's switch is the
    # parent's current one
    os.environ.update(env)
    # a unit's CSV slices are formatted on the writer's own threads (its share of the
    # cores); polars' pool on top of them only oversubscribes (1M csv at 2 workers:
    # 14.0 against 14.5 CPU-s). Set before polars is first imported here; a user's
    # value wins.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    from ..profilers import worker_hook
    from ._alloc import keep_freed_memory
    from ._shm import AttachedSegment

    keep_freed_memory()
    stop_hook = worker_hook.start()
    segment = population = None
    try:
        try:
            segment_spec = conn.recv()      # the parent fills the segment meanwhile
        except EOFError:
            return
        segment = AttachedSegment(segment_spec)
        population = _population(rebuild, segment.arrays)
        while True:
            try:
                msg = conn.recv()
            except EOFError:        # the parent is gone: nobody to report to
                break
            if msg is None:
                break
            index, unit = msg
            try:
                result = unit_fn(cfg, population, unit)
            except Exception as exc:
                conn.send(("error", index, f"{type(exc).__name__}: {exc}",
                           traceback.format_exc()))
                continue
            conn.send(("ok", index, result))
    finally:
        population = None
        if segment is not None:
            segment.close()
        stop_hook()
        conn.close()
