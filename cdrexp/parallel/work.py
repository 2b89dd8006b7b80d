"""One work unit, start to finish: generate its records, write its files, report stats."""
from __future__ import annotations

import time

from ..config import GeneratorConfig
from ..model import Unit
from ..stats import UnitResult


class ExecutionError(RuntimeError):
    """A run that could not complete; the message names the unit or the fault."""


def run_unit(cfg: GeneratorConfig, population, unit: Unit) -> UnitResult:
    from ..model import generate_unit   # noqa: the model's heavy imports stay lazy
    from ..writers import write_unit

    t0 = time.perf_counter()
    table = generate_unit(cfg, population, unit)
    gen_s = time.perf_counter() - t0
    result = write_unit(table, cfg.output, cfg.out, unit)
    result.generation_s = gen_s
    return result
