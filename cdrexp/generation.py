"""One whole generation: population, units across an executor, manifest. No measuring.

``generate(cfg)`` is the Python entry point; the runner times it, the profilers wrap it
in a child process (``python -m cdrexp.cli.child``), the tests call it directly.

Phase times in the returned statistics:

- ``population_s``: wall time of building the population in this process;
- ``generation_s``, ``formatting_s``, ``writing_s``: summed over units, i.e. busy seconds
  across workers (comparable between worker counts, larger than the wall time when
  workers run in parallel). A unit formats a slice while a writer thread hashes and writes
  the previous one, so formatting and writing may also overlap within a unit.
- ``writing_s`` also includes this process's own output work: preparing ``out``
  (clearing a previous run, unless the caller did it first with
  ``writers.clear_output`` as the runner does outside its timer; cells.csv) and writing
  the summaries and the manifest.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Optional

from .config import GeneratorConfig, resolved_workers, validate
from .stats import GenerationStats, Progress


def generate(cfg: GeneratorConfig,
             on_progress: Optional[Callable[[Progress], None]] = None,
             executor=None) -> GenerationStats:
    """Generate every record of ``cfg`` into ``cfg.out`` and return its statistics.

    Raises ``ConfigError`` for a bad config (before anything is written), ``OutputError``
    naming the path when ``out`` cannot be written, ``ExecutionError`` naming the unit
    when a unit fails. Files of completed units stay; no incomplete file has a final name.
    """
    from .model import build_population, plan_units
    from .parallel import make_executor
    from .writers import finish_output, prepare_output

    validate(cfg)
    if "://" not in cfg.out:
        # workers may run with another working directory (a forkserver started earlier,
        # a Dask worker): they must all see the same absolute path
        cfg = dataclasses.replace(cfg, out=os.path.abspath(os.path.expanduser(cfg.out)))
    t0 = time.perf_counter()
    units = plan_units(cfg)
    # made before the population: a local executor that will need its forkserver starts
    # it now, so the forkserver's imports overlap the population build
    executor = executor or make_executor(cfg, len(units))
    # a shared-memory executor has the population built straight into its segment
    allocate = getattr(executor, "allocate", None)
    release = getattr(executor, "release_population", lambda: None)
    try:
        tp = time.perf_counter()
        population = build_population(cfg, allocate)
        population_s = time.perf_counter() - tp

        t1 = time.perf_counter()
        prepare_output(cfg, population)
        output_s = time.perf_counter() - t1

        results = executor.run(cfg, population, units, on_progress)
    finally:
        population = None
        release()

    t2 = time.perf_counter()
    manifest = finish_output(cfg, results)
    output_s += time.perf_counter() - t2
    wall_s = time.perf_counter() - t0

    return GenerationStats(
        subs=cfg.subs, days=cfg.days,
        workers=_processes_used(results, executor, cfg),
        output_format=cfg.output.format, rows_by_type=manifest.rows_by_type,
        bytes_written=manifest.total_bytes,
        uncompressed_bytes=sum(r.uncompressed_bytes for r in results),
        files=manifest.n_files, wall_s=wall_s, population_s=population_s,
        generation_s=sum(r.generation_s for r in results),
        formatting_s=sum(r.formatting_s for r in results),
        writing_s=sum(r.writing_s for r in results) + output_s, out=cfg.out,
        cluster=getattr(executor, "cluster_usage", None))


def _processes_used(results, executor, cfg: GeneratorConfig) -> int:
    """How many processes really ran units: a pool of 2 that got one unit ran it in the
    calling process (1), a Dask cluster may leave workers idle. Unit functions that do
    not say where they ran (test fakes) fall back to the executor's size."""
    ran = {r.process for r in results if r.process}
    return len(ran) or getattr(executor, "workers", resolved_workers(cfg))
