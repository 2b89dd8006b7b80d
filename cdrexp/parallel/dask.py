"""Work units on dask.distributed: a LocalCluster of processes, or an existing cluster.

``executor=dask`` starts a ``LocalCluster`` of ``workers`` single-threaded processes for
the run and closes it at the end; ``executor.address=tcp://host:8786`` joins a running
cluster instead (``dask scheduler`` / ``dask worker``, dask-jobqueue, dask-kubernetes...)
and leaves it running. Each unit is one task, retried ``executor.retries`` times by the
scheduler; workers build the population once each (see ``_dask_worker``) and write their
files to ``out`` themselves, so only ``UnitResult`` statistics come back.

When a unit fails for good, the units that have not started skip themselves (a Dask
``Event``: cancelling cannot stop a task a worker thread already runs), the running ones
are waited for, and whatever the failed unit left (a worker killed mid-unit leaves parts
under final names) is removed, so the run ends with every unit whole or absent.
"""
from __future__ import annotations

import uuid
from asyncio import CancelledError
from contextlib import contextmanager, suppress
from typing import Callable, Optional

from ..config import ExecutorConfig
from ..stats import Progress, UnitResult
from . import _dask_cluster, _dask_usage, _dask_worker
from ._dask_usage import ClusterUsage
from ._signals import Interrupted, SignalGuard
from .work import ExecutionError, discard_unit

# after a unit failed for good, how long to wait for the units still running
DRAIN_TIMEOUT_S = 300


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
        # with an address: what the workers that ran the units used (see _dask_usage)
        self.cluster_usage: Optional[ClusterUsage] = None

    def run(self, cfg, population, units, on_progress=None) -> list[UnitResult]:
        # the parent's population is not sent: each worker builds its own from cfg
        del population
        units = list(units)
        broken: list = []       # units that may have left part of their files
        # SIGTERM unwinds like Ctrl-C, so this run's LocalCluster is closed too
        with SignalGuard() as guard:
            try:
                with self._client(guard) as client:
                    return self._run_on(client, cfg, units, on_progress, broken)
            except Interrupted as exc:
                raise Interrupted(exc.signum, f"{exc.signame} received: run stopped, "
                                  "Dask tasks cancelled") from None
            finally:
                # after the cluster is closed: none of these units is still writing
                for unit in broken:
                    with suppress(Exception):
                        discard_unit(cfg, unit)

    def _run_on(self, client, cfg, units, on_progress, broken) -> list[UnitResult]:
        from distributed import Event, wait

        nthreads = client.nthreads()
        self.workers, self.threads = len(nthreads), sum(nthreads.values())
        run_id = uuid.uuid4().hex[:12]
        abort = Event(f"cdrexp-abort-{run_id}", client=client)
        # a remote cluster's workers are outside this process tree: they measure
        # themselves (this run's own LocalCluster is inside it, measured with it)
        usage_token = f"cdrexp-usage-{run_id}" if self.address else None
        self.cluster_usage = None
        if usage_token:
            _dask_usage.begin(client, usage_token)
        futures = client.map(
            _dask_worker.run_unit_task, units,
            key=[f"cdrexp-unit-{run_id}-{u.date.isoformat()}-c{u.chunk:05d}"
                 for u in units],
            retries=self.retries, pure=False,
            cfg=cfg, population_key=_dask_worker.population_key(cfg),
            abort_event=abort.name, unit_fn=self._unit_fn,
            # only this run's own workers take this process's profiler switch
            worker_env=None if self.address else _dask_cluster.worker_environment())
        try:
            results = self._collect(futures, units, on_progress)
            if usage_token:
                self.cluster_usage = _dask_usage.collect(
                    client, usage_token, {r.process for r in results if r is not None})
                usage_token = None
            return results
        except BaseException as exc:
            with suppress(Exception):
                abort.set()         # units that have not started skip themselves
            if isinstance(exc, ExecutionError):
                # running units finish, so no file of this run appears after it failed
                with suppress(Exception):
                    wait(futures, timeout=DRAIN_TIMEOUT_S)
                # a dead worker fails every unit it held, not only the one named
                failed = [u for f, u in zip(futures, units) if f.status == "error"]
                broken.extend(failed or getattr(exc, "units", []))
                if len(failed) > 1:
                    exc.args = (f"{exc.args[0]} (and {len(failed) - 1} more unit"
                                f"{'s' if len(failed) > 2 else ''} failed)",)
            elif self.address is None:
                # a Ctrl-C does not wait: closing this run's cluster kills the units
                # still running, whose leftovers are then removed
                broken.extend(self._running(client, futures, units))
            raise
        finally:
            with suppress(Exception):       # the scheduler may be gone: keep the error
                client.cancel([f for f in futures if not f.done()])
                abort.clear()               # frees the event on the scheduler
            if usage_token:                 # failed: the workers' samplers still stop
                with suppress(Exception):
                    client.run(_dask_usage.stop, usage_token, on_error="ignore")

    def _collect(self, futures, units, on_progress) -> list[UnitResult]:
        from distributed import as_completed

        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Optional[UnitResult]] = [None] * len(units)
        done = rows = 0
        for fut in as_completed(futures):
            i = index[fut.key]
            if fut.status != "finished":
                raise self._unit_error(units[i], fut)
            try:
                results[i] = fut.result()
            except (Exception, CancelledError):
                # finished, then lost with its worker: the recomputation failed
                raise self._unit_error(units[i], fut) from None
            fut.release()
            done += 1
            rows += results[i].rows
            if on_progress:
                on_progress(Progress(done, len(units), rows))
        return results

    @staticmethod
    def _running(client, futures, units) -> list:
        with suppress(Exception):
            busy = {k for keys in client.processing().values() for k in keys}
            return [u for f, u in zip(futures, units) if f.key in busy]
        return [u for f, u in zip(futures, units) if not f.done()]

    def _unit_error(self, unit, fut) -> ExecutionError:
        from distributed import KilledWorker

        exc = fut.exception() if fut.status == "error" else None
        tries = self.retries + 1
        if exc is None:
            err = ExecutionError(f"unit {unit.name} failed: its Dask task was "
                                 f"{fut.status} (scheduler or workers lost?)")
        elif isinstance(exc, KilledWorker):
            # worker deaths are counted by the scheduler (allowed-failures), not retries
            err = ExecutionError(f"unit {unit.name} failed: the Dask workers running it "
                                 f"died ({exc})")
        else:
            err = ExecutionError(f"unit {unit.name} failed after {tries} "
                                 f"attempt{'s' if tries > 1 else ''}: "
                                 f"{type(exc).__name__}: {exc}")
            err.__cause__ = exc
        err.units = [unit]
        return err

    @contextmanager
    def _client(self, guard: SignalGuard):
        with _dask_cluster.dask_logs_quiet():
            cluster = None
            if self.address:
                client = _dask_cluster.join_cluster(self.address)
            else:
                from distributed import Client

                cluster = _dask_cluster.start_local_cluster(self.requested_workers)
                client = Client(cluster)
            try:
                # distributed's wait() and as_completed() use the *current* client's
                # event loop: a caller's own `with Client(...)` (a notebook's) would
                # otherwise wait on our futures from its loop, which fails when a
                # finished result is lost and recomputed ("bound to a different
                # event loop")
                with client.as_current():
                    yield client
            finally:
                guard.quiet()   # a second Ctrl-C must not cut the cluster's shutdown short
                client.close()
                if cluster is not None:
                    _dask_cluster.close_local_cluster(cluster)
