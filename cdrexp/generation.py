"""One whole generation: population, units across an executor, manifest. No measuring.

``generate(cfg)`` is the Python entry point; the runner times it, the profilers wrap it
in a child process (``python -m cdrexp.cli.child``), the tests call it directly.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

from .config import GeneratorConfig, resolved_workers, validate
from .stats import GenerationStats, Progress


def generate(cfg: GeneratorConfig,
             on_progress: Optional[Callable[[Progress], None]] = None,
             executor=None) -> GenerationStats:
    """Generate every record of ``cfg`` into ``cfg.out`` and return its statistics."""
    from .model import build_population, plan_units
    from .parallel import make_executor
    from .writers import finish_output, prepare_output

    validate(cfg)
    t0 = time.perf_counter()
    population = build_population(cfg)
    population_s = time.perf_counter() - t0
    units = plan_units(cfg)
    prepare_output(cfg, population)
    executor = executor or make_executor(cfg)
    results = executor.run(cfg, population, units, on_progress)
    manifest = finish_output(cfg, results)
    wall_s = time.perf_counter() - t0
    rows_by_type: dict[str, int] = {}
    for r in results:
        for k, v in r.rows_by_type.items():
            rows_by_type[k] = rows_by_type.get(k, 0) + v
    return GenerationStats(
        subs=cfg.subs, days=cfg.days, workers=getattr(executor, "workers",
                                                      resolved_workers(cfg)),
        output_format=cfg.output.format, rows_by_type=rows_by_type,
        bytes_written=manifest.total_bytes, uncompressed_bytes=sum(
            r.uncompressed_bytes for r in results),
        files=manifest.n_files, wall_s=wall_s, population_s=population_s,
        generation_s=sum(r.generation_s for r in results),
        formatting_s=sum(r.formatting_s for r in results),
        writing_s=sum(r.writing_s for r in results), out=cfg.out)
