"""Work units: (day, chunk) pairs, the grain of parallelism and of determinism.

A unit's output depends only on the config, the seed, its calendar date and its chunk,
never on which process runs it or what ran before.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from ..config import GeneratorConfig, parse_date


@dataclass(frozen=True, order=True)
class Unit:
    day_index: int      # 0-based day of the run (device changes count from day 0)
    chunk: int          # chunk number; subscribers [first_sub, first_sub + n_subs)
    date: dt.date
    first_sub: int
    n_subs: int

    @property
    def name(self) -> str:
        return f"{self.date.isoformat()}/c{self.chunk:05d}"


def plan_units(cfg: GeneratorConfig) -> list[Unit]:
    """All units of a run, day-major (a day's files complete before the next day's)."""
    start = parse_date("start", cfg.start)
    size = cfg.model.chunk_size
    n_chunks = -(-cfg.subs // size)
    return [
        Unit(d, c, start + dt.timedelta(days=d), c * size, min(size, cfg.subs - c * size))
        for d in range(cfg.days) for c in range(n_chunks)
    ]


def unit_seed_sequence(seed: int, date: dt.date, chunk: int) -> np.random.SeedSequence:
    """The unit's random stream, keyed by the calendar date (not the day index)."""
    return np.random.SeedSequence([seed, date.toordinal(), chunk])
