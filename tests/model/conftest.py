"""Shared fixtures of the model tests: a few thousand subscribers, built once."""
import pytest

from cdrexp.model import build_population
from model_helpers import day_table, model_cfg


@pytest.fixture(scope="session")
def default_cfg():
    return model_cfg()


@pytest.fixture(scope="session")
def default_population(default_cfg):
    return build_population(default_cfg)


@pytest.fixture(scope="session")
def weekday_table(default_cfg, default_population):
    """Monday 2025-01-06 at the defaults, all 3000 subscribers."""
    return day_table(default_cfg, default_population, "2025-01-06")
