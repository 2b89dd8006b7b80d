"""Work units on dask.distributed: a LocalCluster of processes, or an existing cluster.

``executor=dask`` starts a ``LocalCluster`` of ``workers`` single-threaded processes for
the run and closes it at the end; ``executor.address=tcp://host:8786`` joins a running
cluster instead (``dask scheduler`` / ``dask worker``, dask-jobqueue, dask-kubernetes...)
and leaves it running. Each unit is one task, retried ``executor.retries`` times by the
scheduler; workers build the population once each (see ``_dask_worker``) and write their
files to ``out`` themselves, so only ``UnitResult`` statistics come back.
"""
from __future__ import annotations

import logging
import os
import uuid
from contextlib import contextmanager, suppress
from typing import Callable, Optional

from ..config import ExecutorConfig
from ..stats import Progress, UnitResult
from . import _dask_worker
from ._signals import SignalGuard
from .work import ExecutionError

# how long to wait for a scheduler to answer, then for its first worker to join
CONNECT_TIMEOUT_S = 30
FIRST_WORKER_TIMEOUT_S = 120
# after a unit failed for good, how long to wait for the units still running
DRAIN_TIMEOUT_S = 300
# Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536. Setting it at all
# turns off glibc's adaptive mmap threshold, so every large numpy temporary is a fresh
# mmap: 5x the page faults and ~15 % more CPU per unit (measured). Our workers' memory is
# bounded by one unit, so this run's own cluster goes without it.
LOCAL_WORKER_ENV = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
# no dashboard; the scheduler's plain HTTP routes (health, metrics) on a free loopback
# port instead of 8787, which another run or cluster on the machine may hold
LOCAL_NO_DASHBOARD = dict(dashboard_address=None,
                          scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


class DaskExecutor:
    """Runs units as Dask tasks; ``workers`` is the cluster's size once ``run`` connected.

    ``unit_fn`` replaces ``work.run_unit`` in the tasks (same signature); it must be
    picklable by value or importable on the workers. The tests use it to inject faults.
    """

    def __init__(self, cfg: ExecutorConfig, workers: int,
                 unit_fn: Optional[Callable] = None):
        self.address = cfg.address or None
        self.retries = cfg.retries
        self.requested_workers = workers
        self.workers = workers          # replaced by the real cluster size in run()
        self.threads = workers
        self._unit_fn = unit_fn

    def run(self, cfg, population, units, on_progress=None) -> list[UnitResult]:
        # the parent's population is not sent: each worker builds its own from cfg
        del population
        from distributed import Event, wait
        # SIGTERM unwinds like Ctrl-C, so the LocalCluster's processes are closed too
        with SignalGuard() as guard, self._client(guard) as client:
            nthreads = client.nthreads()
            self.workers, self.threads = len(nthreads), sum(nthreads.values())
            run_id = uuid.uuid4().hex[:12]
            abort = Event(f"cdrexp-abort-{run_id}", client=client)
            futures = client.map(
                _dask_worker.run_unit_task, units,
                key=[f"cdrexp-unit-{run_id}-{u.date.isoformat()}-c{u.chunk:05d}"
                     for u in units],
                retries=self.retries, pure=False,
                cfg=cfg, population_key=_dask_worker.population_key(cfg),
                abort_event=abort.name, unit_fn=self._unit_fn)
            try:
                return self._collect(futures, units, on_progress)
            except BaseException as exc:
                # units that have not started skip themselves from now on; cancelling
                # alone would not stop a task a worker thread already runs
                with suppress(Exception):
                    abort.set()
                if isinstance(exc, ExecutionError):
                    # let running units finish, so that no file of this run appears
                    # after it reported failure (a Ctrl-C does not wait: the user wants
                    # out, and a unit cut short leaves only a hidden temp file)
                    with suppress(Exception):
                        wait(futures, timeout=DRAIN_TIMEOUT_S)
                raise
            finally:
                with suppress(Exception):   # the scheduler may be gone: keep the error
                    client.cancel([f for f in futures if not f.done()])
                    abort.clear()           # frees the event on the scheduler

    def _collect(self, futures, units, on_progress) -> list[UnitResult]:
        from distributed import as_completed

        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Optional[UnitResult]] = [None] * len(units)
        done = rows = 0
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status != "finished":
                raise self._unit_error(units[i], fut)
            results[i] = fut.result()
            fut.release()
            done += 1
            rows += results[i].rows
            if on_progress:
                on_progress(Progress(done, len(units), rows))
        return results

    def _unit_error(self, unit, fut) -> ExecutionError:
        exc = fut.exception() if fut.status == "error" else None
        tries = self.retries + 1
        if exc is None:
            return ExecutionError(f"unit {unit.name} failed: its Dask task was "
                                  f"{fut.status} (scheduler or workers lost?)")
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            # worker deaths are counted by the scheduler (allowed-failures), not retries
            return ExecutionError(f"unit {unit.name} failed: the Dask workers running it "
                                  f"died ({exc})")
        err = ExecutionError(f"unit {unit.name} failed after {tries} "
                             f"attempt{'s' if tries > 1 else ''}: "
                             f"{type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return err

    @contextmanager
    def _client(self, guard: SignalGuard):
        import dask
        from distributed import Client, LocalCluster

        cluster = None
        if self.address:
            client = self._join(Client)
        else:
            with _environ_kept(), dask.config.set(LOCAL_WORKER_ENV):
                cluster = LocalCluster(
                    n_workers=self.requested_workers, threads_per_worker=1,
                    processes=True, silence_logs=logging.ERROR, **LOCAL_NO_DASHBOARD)
            client = Client(cluster)
        try:
            yield client
        finally:
            guard.quiet()   # a second Ctrl-C must not cut the cluster's shutdown short
            client.close()
            if cluster is not None:
                with _environ_kept():   # a nanny restarting a worker sets them again
                    cluster.close()

    def _join(self, client_cls):
        try:
            client = client_cls(self.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExecutionError(f"executor.address: cannot reach a Dask scheduler at "
                                 f"{self.address} ({exc})") from None
        try:
            client.wait_for_workers(1, timeout=FIRST_WORKER_TIMEOUT_S)
        except TimeoutError:
            client.close()
            raise ExecutionError(f"executor.address: no Dask worker joined the scheduler "
                                 f"at {self.address} within {FIRST_WORKER_TIMEOUT_S} s"
                                 ) from None
        return client


@contextmanager
def _environ_kept():
    """Undo what Dask's nannies write into this process's environment before spawning a
    worker (OMP_NUM_THREADS=1, PYTHONHASHSEED...): processes this one starts later, such
    as the next sweep job's local workers, must not inherit them."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
