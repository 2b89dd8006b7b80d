"""What runs inside a Dask worker process: one population per config, reused by every unit.

The population is a deterministic function of the config, so each worker process builds
it from the (small) config on its first unit and keeps it for the next ones: the task
graph carries only the config and the unit, never the population's arrays, and a cluster
of many machines does not funnel the population through the client.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from typing import Callable, Optional

from ..config import GeneratorConfig, config_to_dict
from . import worker_profiling
from ..stats import UnitResult
from .work import run_unit

# keys of GeneratorConfig that say where and how units run or are written, not what the
# population is: a sweep over them reuses a worker's population
_NOT_POPULATION = ("executor", "output", "out", "workers")

_lock = threading.Lock()        # workers with several threads build a population once
_cached: tuple[str, object] | None = None  # (population key, Population): the latest only
builds = 0                      # populations built by this process (tests read it)


def population_key(cfg: GeneratorConfig) -> str:
    """A digest of everything in ``cfg`` that the population may depend on."""
    raw = config_to_dict(cfg)
    kept = {k: raw[k] for k in GeneratorConfig.__dataclass_fields__
            if k in raw and k not in _NOT_POPULATION}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def population_for(cfg: GeneratorConfig, key: str):
    """This process's population for ``cfg``, built on first use.

    Only the latest population is kept, so a long-lived cluster serving a sweep holds
    one population per worker, not one per config it has seen.
    """
    global _cached, builds
    with _lock:
        if _cached is None or _cached[0] != key:
            from ..model import build_population
            _cached = None  # let the previous one go before building the next
            _cached = (key, build_population(cfg))
            builds += 1
        return _cached[1]


def run_unit_task(unit, *, cfg: GeneratorConfig, population_key: str,
                  abort_event: Optional[str] = None, worker_env: Optional[dict] = None,
                  unit_fn: Optional[Callable] = None) -> Optional[UnitResult]:
    """One Dask task: a unit run against this worker's cached population.

    Returns None without doing anything once the run has set ``abort_event`` (another
    unit failed for good): the run is over, its remaining units must write nothing.
    ``worker_env``: the parent's ``CDREXP_*`` variables, for workers forked from a
    forkserver whose environment dates from its start.
    """
    if abort_event is not None:
        from distributed import Event
        if Event(abort_event).is_set():
            return None
    if worker_env is not None:
        _set_cdrexp_environ(worker_env)
    # the profilers' in-worker hook (a no-op unless the parent asked for one); idempotent
    # per process, and started from the task thread since cProfile sees only its thread
    worker_profiling.start()
    population = population_for(cfg, population_key)
    return (unit_fn or run_unit)(cfg, population, unit)


def _set_cdrexp_environ(env: dict) -> None:
    for key in [k for k in os.environ if k.startswith("CDREXP_") and k not in env]:
        del os.environ[key]
    os.environ.update(env)


def worker_state() -> dict:
    """What a worker holds (run on every worker with ``client.run`` by the tests)."""
    return {"builds": builds, "key": _cached[0] if _cached else None}

