"""Issue 19: a worker reuses its heap pages from one unit to the next (no page faults
of ~20 MB per unit, which cost 19 % of the generation's CPU in system time)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cdrexp.model._heap import keep_heap_pages

ROOT = Path(__file__).resolve().parents[2]

FAULTS_PER_UNIT = r"""
import resource
from cdrexp.config import GeneratorConfig
from cdrexp.model import build_population, generate_unit
from cdrexp.model.units import plan_units
cfg = GeneratorConfig(subs=60000, workers=1)
pop = build_population(cfg)
units = plan_units(cfg)
for u in units[:2]:                      # warm-up: the heap grows to a unit's peak
    generate_unit(cfg, pop, u)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for u in units[2:]:
    generate_unit(cfg, pop, u)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // len(units[2:]))
"""


def test_units_reuse_heap_pages():
    if not keep_heap_pages():
        pytest.skip("no glibc mallopt in this C library")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", FAULTS_PER_UNIT], env=env, cwd=str(ROOT),
                         check=True, capture_output=True, text=True).stdout
    # without the setting a unit of 10,000 subscribers faults ~2,400 pages back in (measured)
    assert int(out) < 500, f"{out.strip()} minor page faults per unit"
