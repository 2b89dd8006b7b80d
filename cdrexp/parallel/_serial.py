"""Units one after another in this process: the reference every executor must match."""
from __future__ import annotations

from ..stats import Progress
from ._alloc import units_allocator
from ._signals import SignalGuard
from .work import ExecutionError, run_unit


class SerialExecutor:
    workers = 1

    def __init__(self, unit_fn=run_unit):
        self.unit_fn = unit_fn

    def run(self, cfg, population, units, on_progress=None):
        results, rows = [], 0
        # SIGTERM unwinds like Ctrl-C, so the unit being written removes its temp files;
        # the workers' allocator settings for the run (35 % less CPU per unit, see _alloc)
        with SignalGuard(), units_allocator():
            for unit in units:
                try:
                    res = self.unit_fn(cfg, population, unit)
                except Exception as exc:
                    raise ExecutionError(f"unit {unit.name} failed: {exc}") from exc
                results.append(res)
                rows += res.rows
                if on_progress:
                    on_progress(Progress(len(results), len(units), rows))
        return results
