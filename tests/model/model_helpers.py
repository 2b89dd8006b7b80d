"""Helpers of the model tests (a module of its own: conftest is not importable by name)."""
import datetime as dt

import pyarrow as pa

from cdrexp.config import GeneratorConfig, ModelConfig
from cdrexp.model import generate_unit
from cdrexp.model.units import Unit

P_FLOOR = 1e-4   # fixed seeds: a correct model fails a statistical check this rarely


def luhn_valid(number: int) -> bool:
    """Independent Luhn validator: from the right, double every second digit."""
    digits = [int(c) for c in str(number)][::-1]
    total = 0
    for pos, d in enumerate(digits):
        if pos % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


SUBS = 3000
CHUNK = 1000


def model_cfg(subs=SUBS, seed=7, start="2025-01-06", days=1, **model) -> GeneratorConfig:
    model.setdefault("chunk_size", CHUNK)
    return GeneratorConfig(subs=subs, days=days, start=start, seed=seed, workers=1,
                           model=ModelConfig(**model))


def unit_for(cfg: GeneratorConfig, date: str, chunk: int, day_index: int = 0) -> Unit:
    size = cfg.model.chunk_size
    first = chunk * size
    return Unit(day_index, chunk, dt.date.fromisoformat(date), first,
                min(size, cfg.subs - first))


def day_table(cfg: GeneratorConfig, population, date: str, day_index: int = 0) -> pa.Table:
    """Every chunk of one day, concatenated (each chunk is time-sorted on its own)."""
    n_chunks = -(-cfg.subs // cfg.model.chunk_size)
    return pa.concat_tables(generate_unit(cfg, population, unit_for(cfg, date, c, day_index))
                            for c in range(n_chunks))
