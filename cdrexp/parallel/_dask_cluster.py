"""Connecting to Dask: this run's own LocalCluster, or a running cluster's scheduler.

The LocalCluster is tuned for what a run needs, each choice measured on a 2-core machine:

- Workers are forked from the forkserver that ``LocalExecutor`` also uses, with numpy,
  pyarrow, the model, the writers and distributed preloaded: a 2-worker cluster then
  starts in ~0.15 s and closes in ~0.03 s, against ~0.8 s and ~0.25 s when every worker
  is a fresh interpreter (Dask's default, spawn). The forkserver lives as long as this
  process, so repeats and sweep jobs pay its imports once.
- No MALLOC_TRIM_THRESHOLD_ (Dask sets 65536): set at all, it turns off glibc's
  adaptive mmap threshold, so every large numpy temporary is a fresh mmap: 5x the page
  faults and ~15 % more CPU per unit. A worker's memory is bounded by one unit anyway.
- No dashboard, and the scheduler's plain HTTP routes on a free loopback port rather
  than 8787, which another cluster on the machine may hold.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from contextlib import contextmanager

from .work import ExecutionError

# how long to wait for a scheduler to answer, then for its first worker to join
CONNECT_TIMEOUT_S = 30
FIRST_WORKER_TIMEOUT_S = 120

LOCAL_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
LOCAL_NO_DASHBOARD = dict(dashboard_address=None,
                          scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


def start_local_cluster(n_workers: int):
    """A LocalCluster of ``n_workers`` single-threaded worker processes."""
    import dask
    from distributed import LocalCluster

    from .local import _main_hidden

    config = dict(LOCAL_WORKER_CONFIG)
    if "forkserver" in mp.get_all_start_methods():
        ensure_forkserver()
        config["distributed.worker.multiprocessing-method"] = "forkserver"
    # the nannies start their workers with multiprocessing, which would re-run the
    # caller's __main__ in each (a script without a main guard recurses)
    with environ_kept(), dask.config.set(config), _main_hidden():
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                            silence_logs=logging.ERROR, **LOCAL_NO_DASHBOARD)


def close_local_cluster(cluster) -> None:
    with environ_kept():    # a nanny restarting a worker sets its variables again
        cluster.close()


def ensure_forkserver() -> None:
    """Start the process-wide forkserver with everything a worker of either executor
    imports. A no-op once it runs: if ``LocalExecutor`` started it first, Dask workers
    import distributed themselves (~0.5 s each, every run)."""
    from .local import PRELOAD, start_forkserver

    start_forkserver(list(PRELOAD) + ["distributed", "cdrexp.parallel._dask_worker"])


def join_cluster(address: str):
    """A client of the scheduler at ``address``, once at least one worker has joined."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ExecutionError(f"executor.address: cannot reach a Dask scheduler at "
                             f"{address} ({exc})") from None
    try:
        client.wait_for_workers(1, timeout=FIRST_WORKER_TIMEOUT_S)
    except TimeoutError:
        client.close()
        raise ExecutionError(f"executor.address: no Dask worker joined the scheduler at "
                             f"{address} within {FIRST_WORKER_TIMEOUT_S} s") from None
    return client


@contextmanager
def dask_logs_quiet():
    """Dask's in-process scheduler, nannies and clients log every worker and client
    coming and going at INFO; under Hydra's root handler that buries the run's own
    output. Warnings and errors still show."""
    import distributed  # noqa: F401  its import sets the level we override

    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def worker_environment() -> dict:
    """The ``CDREXP_*`` variables (the profilers' worker switch) for this run's workers:
    forked workers have the forkserver's environment, which dates from its start."""
    return {k: v for k, v in os.environ.items() if k.startswith("CDREXP_")}


@contextmanager
def environ_kept():
    """Undo what Dask's nannies write into this process's environment before starting a
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
