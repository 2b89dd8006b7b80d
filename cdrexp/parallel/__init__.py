"""Running work units: in this process, across a shared-memory process pool, or on Dask.

Every executor has one method::

    run(cfg, population, units, on_progress=None) -> list[UnitResult]

It runs ``work.run_unit`` for each unit (results in unit order), calls
``on_progress(Progress)`` as units complete, and raises ``ExecutionError`` naming the
unit when one fails for good (a dead worker: its pid, signal and unit). SIGINT and
SIGTERM during a run raise ``Interrupted`` (a ``KeyboardInterrupt`` naming the signal)
after the workers are stopped. Only ``UnitResult`` statistics come back, never records.

``LocalExecutor`` (local.py) is the shared-memory process pool; ``memory.TreeMemorySampler``
measures the peak PSS/RSS of a process tree while it runs.
"""
from __future__ import annotations

from typing import Optional

from ..config import GeneratorConfig, resolved_workers
from ._serial import SerialExecutor
from ._signals import (Interrupted, SignalGuard, install_stop_handlers, restore_handlers,
                       sigterm_when_parent_dies)
from .local import LocalExecutor, describe_exit, preload_for
from .work import ExecutionError, run_unit

__all__ = ["ExecutionError", "Interrupted", "LocalExecutor", "SerialExecutor", "SignalGuard",
           "describe_exit", "install_stop_handlers", "make_executor", "restore_handlers",
           "run_unit", "sigterm_when_parent_dies"]


def make_executor(cfg: GeneratorConfig, n_units: Optional[int] = None):
    """The executor the config asks for (``n_units``: how many units it will run, if
    known; a local run of one unit then starts no worker machinery at all)."""
    if cfg.executor.name == "dask":
        from .dask import DaskExecutor  # dask is heavy: import only when asked for
        return DaskExecutor(cfg.executor, resolved_workers(cfg))
    workers = resolved_workers(cfg)
    if workers == 1:
        return SerialExecutor()
    return LocalExecutor(workers, prestart=n_units is None or n_units > 1,
                         preload=preload_for(cfg.output.format))
