"""keep_freed_memory: generating units stops page-faulting its memory in again each unit."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cdrexp.parallel._alloc import OPT_OUT_ENV, keep_freed_memory

# six units in a fresh process; prints the minor page faults of the last five
UNITS = """
import json, resource
from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig
from cdrexp.model import build_population, plan_units
from cdrexp.parallel import SerialExecutor
from cdrexp.parallel.work import run_unit
cfg = GeneratorConfig(subs=60000, start="2025-01-06", out="unused",
                      model=ModelConfig(chunk_size=10000), output=OutputConfig(format="none"))
pop = build_population(cfg)
units = plan_units(cfg)
SerialExecutor().run(cfg, pop, units[:1])          # warm-up, and the allocator setting
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
SerialExecutor().run(cfg, pop, units[1:])
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0))
"""


def faults(opt_out: bool) -> int:
    env = {k: v for k, v in os.environ.items() if k != OPT_OUT_ENV}
    if opt_out:
        env[OPT_OUT_ENV] = "1"
    out = subprocess.run([sys.executable, "-c", UNITS], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_units_stop_faulting_their_memory_in():
    default, kept = faults(opt_out=True), faults(opt_out=False)
    # glibc's defaults give back and re-fault most of a unit's temporaries each time
    assert kept < default / 4, (kept, default)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_applies_once_and_reports_it():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True
