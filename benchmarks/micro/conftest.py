"""Inputs shared by the kernel micro-benchmarks: a default model, a population, a unit.

Run with ``python -m pytest benchmarks/micro`` (plain ``pytest`` collects only tests/).
Sizes mirror one work unit at the defaults: a chunk of ``chunk_size`` subscribers, about
20.7 records per subscriber-day.
"""
import numpy as np
import pytest

from cdrexp.config import GeneratorConfig, ModelConfig
from cdrexp.model import build_population, generate_unit, plan_units

from kernel_sizes import CHUNK_SUBS, MONDAY


@pytest.fixture(scope="session")
def model() -> ModelConfig:
    return ModelConfig()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.Generator(np.random.SFC64(12345))


@pytest.fixture(scope="session")
def unit_cfg() -> GeneratorConfig:
    """One day of one default chunk."""
    return GeneratorConfig(subs=CHUNK_SUBS, days=1, start=MONDAY.isoformat(), seed=7,
                           workers=1)


@pytest.fixture(scope="session")
def population(unit_cfg):
    return build_population(unit_cfg)


@pytest.fixture(scope="session")
def unit(unit_cfg):
    return plan_units(unit_cfg)[0]


@pytest.fixture(scope="session")
def unit_table(unit_cfg, population, unit):
    """The first 100k records (a quarter) of a default unit: enough for a stable CSV
    formatting time without a slow benchmark."""
    return generate_unit(unit_cfg, population, unit).slice(0, 100_000)
