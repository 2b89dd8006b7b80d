"""``LocalExecutor``: units across worker processes that share the population's memory.

- The population's arrays go once into one shared-memory segment owned by this process;
  workers attach zero-copy, read-only views (``Population.from_arrays``).
- Units are handed out dynamically: each worker has its own pipe and gets its next unit
  as soon as its current one is formatted; it generates that unit while the previous
  one's last buffers are written, so the disk does not wait for generation (two units
  at most per worker, ``_worker``). A unit is complete when its result arrives. Only
  ``UnitResult`` statistics come back; each worker writes its own files.
- Faults end the run, never hang it: the parent waits on the workers' pipes *and* their
  process sentinels, so a worker that dies (even by SIGKILL) is noticed at once and named
  with the units it held, which are discarded. SIGINT and SIGTERM become
  ``Interrupted``. On every exit path the workers are stopped (SIGTERM, then SIGKILL
  after a grace period) and the segment is unlinked.
- Start method: ``fork`` from this process when that is safe (``_fork.fork_blocker``: no
  thread but the memory sampler and jemalloc's, no other C library's pool, no
  profiler), with the format's modules imported here first and the heap frozen: no
  forkserver, no second copy of any import. Otherwise ``forkserver`` with the same
  modules preloaded: ``fork`` is unsafe from a parent that runs threads (a notebook,
  MLflow, a test runner's I/O thread); ``spawn`` re-imports numpy and pyarrow in every
  worker on every run (see docs/parallel.md for the measured start-up cost and memory
  of each).
- Workers never import the caller's ``__main__``: multiprocessing would re-run the
  caller's script in each of them (a script on stdin, a script without a main guard, a
  notebook all break that way); ``_main_hidden`` keeps it out of what they are sent.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import multiprocessing as mp
from multiprocessing import forkserver
import os
import signal
import sys
import threading
import time
import types
from multiprocessing.connection import wait
from typing import Callable, Optional, Sequence

import numpy as np

from .._environ import environ_set
from ..stats import Progress, UnitResult
from ._fork import fork_blocker, forking
from ._serial import SerialExecutor
from ._shm import OwnedSegment
from ._signals import Interrupted, SignalGuard
from ._worker import IDLE, worker_main
from .work import ExecutionError, discard_unit, run_unit

# imported once by the forkserver, so that forking a worker costs milliseconds and the
# workers share these modules' memory (copy-on-write) instead of importing them each
PRELOAD = ["cdrexp.parallel._worker", "cdrexp.parallel.work", "cdrexp.parallel.worker_profiling",
           "numpy", "cdrexp.model.records"]
# what each output format adds: the CSV formats format with a compiled kernel (from
# numpy: no pyarrow; the forkserver loads its library once, building it on a machine's
# first run, and the workers share it), zstd compresses with Arrow's codec, Parquet
# writes with pyarrow (and sizes its parts without formatting). Only what the run needs:
# an unused module still costs its import's CPU and memory in the forkserver.
CSV_PRELOAD = ["cdrexp.writers._csv", "cdrexp.writers._csv_kernel"]
FORMAT_PRELOAD = {"none": [], "parquet": ["cdrexp.writers._parquet"],
                  "csv_zst": CSV_PRELOAD + ["pyarrow"]}
GC_PAUSED = "cdrexp.parallel._gc_paused"    # always first: no collections while importing
FROZEN = "cdrexp.parallel._frozen"          # always last: freezes what the others made


def preload_for(output_format: str) -> list[str]:
    """The forkserver's imports for a run of ``output_format``."""
    return PRELOAD + FORMAT_PRELOAD.get(output_format, CSV_PRELOAD)


# the start method when fork is not safe
_NOT_FORK = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
STOP_GRACE_S = 5.0      # after a fault: SIGTERM, then SIGKILL after this long
FINISH_GRACE_S = 60.0   # after success: time for a worker's profiler hook to write out


class RemoteTraceback(Exception):
    """The worker's traceback, attached as the cause of the parent's ``ExecutionError``."""

    def __init__(self, tb: str):
        super().__init__(tb)

    def __str__(self):
        return "\n" + self.args[0]


def describe_exit(exitcode: Optional[int]) -> str:
    """How a process ended, from its exit code (None: it is still running)."""
    if exitcode is None:
        return "stopped responding"
    if exitcode < 0:
        try:
            return f"died (signal {-exitcode}, {signal.Signals(-exitcode).name})"
        except ValueError:
            return f"died (signal {-exitcode})"
    return f"exited with code {exitcode}"


def _population_parts(population):
    """(arrays to share, how a worker rebuilds the population from views of them)."""
    if hasattr(population, "arrays") and hasattr(type(population), "from_arrays"):
        return population.arrays(), type(population).from_arrays
    if isinstance(population, dict):       # bare arrays: the worker gets the dict
        return population, None
    raise TypeError(f"cannot share a {type(population).__name__}: it needs .arrays() "
                    "and a from_arrays() classmethod")


def _hand_over(population, segment: OwnedSegment) -> bool:
    """Point the caller's population at the shared copy, so its private arrays are freed
    during the run (the parent would otherwise hold the population twice)."""
    if not hasattr(population, "adopt"):
        return False
    population.adopt(segment.views())
    return True


def _take_back(population, adopted: bool, keys) -> None:
    """Private copies again before the segment goes, so the caller's population stays
    valid after the run (this costs a copy after the workers, and their memory, are gone).
    Only ``keys``: arrays built straight into the executor's own segment (``allocate``)
    stay there until that segment is released."""
    if adopted:
        population.adopt({k: np.array(v) for k, v in population.arrays().items()
                          if k in keys})


_MAIN_LOCK = threading.Lock()


def start_forkserver(preload: Sequence[str]) -> None:
    """Start the process-wide forkserver (a no-op once it runs), importing ``preload``
    (then freezing its heap, ``_frozen``), with neither the caller's ``__main__`` nor
    another cdrexp than this one. The first call's ``preload`` is the one that counts."""
    mp.get_context("forkserver").set_forkserver_preload(
        [GC_PAUSED] + [m for m in preload if m not in (GC_PAUSED, FROZEN)] + [FROZEN])
    with _main_hidden(), _this_cdrexp_first():
        forkserver.ensure_running()


@contextlib.contextmanager
def _this_cdrexp_first():
    """Start the forkserver so that it imports the cdrexp this process runs.

    Python 3.11's forkserver ignores the parent's ``sys.path``: it runs as ``python -c``,
    so the current directory comes first, and a cdrexp checkout there (another clone,
    an older revision's worktree) would serve the workers while this process runs
    another cdrexp, silently (measured: a benchmark's baseline process ran the working
    tree's code in its workers). PYTHONSAFEPATH=1 drops the current directory; this
    cdrexp's root goes first on PYTHONPATH. Only the forkserver's start sees them."""
    # cdrexp/parallel/local.py -> the directory holding the package cdrexp
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, "PYTHONSAFEPATH": "1"}
    with environ_set(env):
        yield


@contextlib.contextmanager
def _main_hidden():
    """While processes start: ``__main__`` is a blank module.

    ``multiprocessing.spawn.get_preparation_data`` tells each new process (spawn and
    forkserver alike) to re-import the parent's ``__main__``, by module name or by the
    path in ``__main__.__file__``, before it unpickles its target. Workers need nothing
    from it (their target and arguments live in cdrexp), and re-running it fails for a
    script on stdin (no such file ``<stdin>``) and recurses for a script without an
    ``if __name__ == "__main__"`` guard. A blank ``__main__`` has neither a spec nor a
    file, so nothing is sent.
    """
    with _MAIN_LOCK:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def _worker_env() -> dict:
    return {k: v for k, v in os.environ.items() if k.startswith("CDREXP_")}


class _Worker:
    def __init__(self, ctx, args_tail):
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=worker_main, args=(child_conn, *args_tail),
                                name="cdrexp-worker", daemon=True)
        # a forked worker is sent nothing, __main__ included
        with (_main_hidden() if ctx.get_start_method() != "fork" else contextlib.nullcontext()):
            self.proc.start()
        child_conn.close()
        # the units this worker holds, oldest first: [index, unit, formatted]; two at
        # most, the older one formatted (its last writes under way), see _worker
        self.running: list[list] = []

    @property
    def pid(self) -> int:
        return self.proc.pid


class LocalExecutor:
    """``run(cfg, population, units, on_progress)`` across ``workers`` processes."""

    def __init__(self, workers: int, start_method: Optional[str] = None,
                 unit_fn: Callable = run_unit, discard_fn: Optional[Callable] = None,
                 prestart: bool = True, preload: Optional[Sequence[str]] = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        # None: fork when it is safe at the time of each run (_fork), else the forkserver
        self.start_method = start_method
        self.last_start_method: Optional[str] = None      # what the last run used
        self.unit_fn = unit_fn          # module-level (picklable); tests inject fakes
        # (cfg, unit) -> removes what a unit left when its worker was killed mid-unit
        self.discard_fn = discard_fn or (discard_unit if unit_fn is run_unit else None)
        # the forkserver's imports: by default those of a CSV run
        self.preload = list(preload) if preload is not None else preload_for("csv")
        self.worker_pids: list[int] = []
        self._prebuilt: Optional[OwnedSegment] = None     # see allocate()
        self._done = 0
        if prestart and self._choose_start_method() == "forkserver":
            # Start the forkserver now: its imports (about a second on a busy machine) then
            # overlap whatever the caller does before run(), e.g. building the population.
            # Not for a run of one unit, which needs no workers: the forkserver's imports
            # would only compete with it for the CPU.
            start_forkserver(self.preload)

    def _choose_start_method(self) -> str:
        if self.start_method:
            return self.start_method
        return "fork" if fork_blocker() is None else _NOT_FORK

    def _start_method_now(self) -> str:
        """The start method of this run's workers, with what it needs in place: the
        forkserver running, or (fork) the preloads imported into this process."""
        method = self._choose_start_method()
        if method == "fork" and self.start_method is None:
            for name in self.preload:
                if name not in (GC_PAUSED, FROZEN):
                    importlib.import_module(name)
            if fork_blocker() is not None:      # an import started a thread after all
                method = _NOT_FORK
        if method == "forkserver":
            start_forkserver(self.preload)
        self.last_start_method = method
        return method

    def allocate(self, shapes: dict) -> dict:
        """``build_population``'s allocator: the per-subscriber arrays as views of a blank
        shared-memory segment, so the population is built where the workers map it and
        never copied (the parent held it twice while copying: 7.6 GB at 100M
        subscribers). The segment lives until the next ``allocate`` or
        ``release_population``; the population's arrays must not be used after that."""
        self.release_population()
        self._prebuilt = OwnedSegment.blank(shapes)
        return self._prebuilt.views()

    def release_population(self) -> None:
        pre, self._prebuilt = self._prebuilt, None
        if pre is not None:
            pre.release()

    def run(self, cfg, population, units: Sequence, on_progress=None) -> list[UnitResult]:
        units = list(units)
        if not units:
            return []
        if len(units) == 1:
            # nothing to share out: a worker would only add its start-up and the copy
            # into shared memory (10k subscribers run 40 % slower that way)
            # workers=1: the unit's writer may then use every core for its threads
            if hasattr(cfg, "workers"):
                cfg = dataclasses.replace(cfg, workers=1)
            return SerialExecutor(self.unit_fn).run(cfg, population, units, on_progress)
        self._done = 0
        with SignalGuard() as guard:
            try:
                return self._run_pool(guard, cfg, population, units, on_progress)
            except Interrupted as exc:
                raise Interrupted(exc.signum, (
                    f"{exc.signame} received: run stopped, workers ended, shared memory "
                    f"released; {self._done} of {len(units)} units were complete")) from None

    def _run_pool(self, guard, cfg, population, units, on_progress):
        n = min(self.workers, len(units))
        method = self._start_method_now()
        ctx = mp.get_context(method)
        rebuild = _population_parts(population)[1]
        tail = (rebuild, self.unit_fn, cfg, _worker_env())
        workers: list[_Worker] = []
        segment: Optional[OwnedSegment] = None
        adopted = False
        ok = False
        try:
            with (forking() if method == "fork" else contextlib.nullcontext()):
                for _ in range(n):
                    workers.append(_Worker(ctx, tail))
            self.worker_pids = [w.pid for w in workers]
            # filled while the workers start up; they wait for its name
            arrays = _population_parts(population)[0]
            pre = self._prebuilt
            own = {k: v for k, v in arrays.items() if not (pre and pre.holds(v))}
            segment = OwnedSegment(own, parts=(pre.spec,) if len(own) < len(arrays) else ())
            adopted = _hand_over(population, segment)
            for w in workers:
                _send(w, segment.spec, "at start-up")
            results = self._dispatch(workers, units, on_progress)
            ok = True
            return results
        finally:
            guard.quiet()
            try:
                _shutdown(workers, graceful=ok)
                if not ok:
                    self._discard_unfinished(cfg, workers)
            finally:
                if segment is not None:
                    _take_back(population, adopted, own)
                    segment.release()
            if ok and guard.received:       # a signal arrived while the pool wound down
                raise Interrupted(guard.received)

    def _discard_unfinished(self, cfg, workers) -> None:
        """Units that were running when the run stopped leave nothing under a final name:
        a worker stopped by SIGTERM cleans up itself, a killed one cannot."""
        if self.discard_fn is None:
            return
        for w in workers:
            for _, unit, _ in w.running:
                try:
                    self.discard_fn(cfg, unit)
                except OSError:
                    pass        # the run is failing already; its error says more

    def _dispatch(self, workers, units, on_progress):
        results: list[Optional[UnitResult]] = [None] * len(units)
        todo = iter(enumerate(units))
        rows = 0

        def hand_out(w: _Worker) -> None:
            """The next unit, if any, to a worker none of whose units is being formatted;
            ``IDLE`` to one holding a formatted unit when none is left."""
            if any(not formatted for _, _, formatted in w.running):
                return
            nxt = next(todo, None)
            if nxt is not None:
                w.running.append([nxt[0], nxt[1], False])
                _send(w, nxt, f"before it could take unit {nxt[1].name}")
            elif w.running:
                _send(w, IDLE, f"while finishing unit {w.running[0][1].name}")

        for w in workers:
            hand_out(w)
        by_conn = {w.conn: w for w in workers}
        by_sentinel = {w.proc.sentinel: w for w in workers}
        while self._done < len(units):
            busy = [w for w in workers if w.running]
            ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
            for obj in ready:
                w = by_conn.get(obj) or by_sentinel[obj]
                while w.running and w.conn.poll():
                    completed = self._take_message(w, _receive(w), units, results)
                    hand_out(w)
                    if completed is not None:
                        rows += completed.rows
                        if on_progress:
                            on_progress(Progress(self._done, len(units), rows))
                if w.running and obj is w.proc.sentinel:
                    _receive(w)         # it died holding units: raises, naming them
        return results

    def _take_message(self, w: _Worker, msg, units, results) -> Optional[UnitResult]:
        """Book one worker message; the result of the unit it completes, if it does."""
        kind, index = msg[0], msg[1]
        held = next(h for h in w.running if h[0] == index)
        if kind == "error":
            raise ExecutionError(
                f"unit {units[index].name} failed in worker pid {w.pid}: "
                f"{msg[2]}") from RemoteTraceback(msg[3])
        if kind == "formatted":
            held[2] = True
            return None
        w.running.remove(held)      # complete on disk: never to be discarded
        results[index] = msg[2]
        self._done += 1
        return msg[2]


def _worker_death(w: _Worker, when: str) -> ExecutionError:
    w.proc.join(timeout=2.0)
    return ExecutionError(f"worker pid {w.pid} {describe_exit(w.proc.exitcode)} {when}")


def _send(w: _Worker, msg, when: str) -> None:
    try:
        w.conn.send(msg)
    except OSError:             # broken pipe: the worker is gone
        raise _worker_death(w, when) from None


def _receive(w: _Worker):
    """The worker's next message, or ``ExecutionError`` naming how it died and on what."""
    try:
        if w.conn.poll():
            return w.conn.recv()
    except (EOFError, OSError):
        pass
    names = " and ".join(unit.name for _, unit, _ in w.running)
    raise _worker_death(w, f"while running unit {names}")


def _shutdown(workers: list[_Worker], graceful: bool) -> None:
    """Every worker ends: asked politely after success, SIGTERM otherwise, then SIGKILL."""
    for w in workers:
        try:
            if graceful:
                w.conn.send(None)
            elif w.proc.exitcode is None:
                w.proc.terminate()
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + (FINISH_GRACE_S if graceful else STOP_GRACE_S)
    for w in workers:
        w.proc.join(timeout=max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.proc.exitcode is None:
            w.proc.kill()
            w.proc.join(timeout=STOP_GRACE_S)
        w.conn.close()
        try:
            w.proc.close()
        except ValueError:
            pass
