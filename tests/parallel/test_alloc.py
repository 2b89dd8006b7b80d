"""keep_freed_memory: generating units stops page-faulting its memory in again each unit."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cdrexp.parallel._alloc import OPT_OUT_ENV

# six units in a fresh process through the serial executor; prints the minor page
# faults of the last five (the first one grows the heap either way)
UNITS = """
import json, resource
from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig
from cdrexp.model import build_population, plan_units
from cdrexp.parallel import SerialExecutor
from cdrexp.parallel.work import run_unit
faults = []
def counted(cfg, pop, unit):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    res = run_unit(cfg, pop, unit)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return res
cfg = GeneratorConfig(subs=60000, start="2025-01-06", out="unused",
                      model=ModelConfig(chunk_size=10000), output=OutputConfig(format="none"))
SerialExecutor(counted).run(cfg, build_population(cfg), plan_units(cfg))
print(json.dumps(sum(faults[1:])))
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


# 100 MB in 2 MB blocks, touched and freed; prints how much RSS the process kept
CHURN = """
import sys, numpy as np, psutil
import pyarrow  # imported by units_allocator: loaded before the baseline, like the workers
from cdrexp.parallel._alloc import keep_freed_memory, units_allocator
def churn():
    blocks = [np.ones(1 << 18) for _ in range(50)]
    del blocks
rss = lambda: psutil.Process().memory_info().rss
base = rss()
if sys.argv[1] == "kept":
    assert keep_freed_memory()
    churn()
else:
    with units_allocator() as applied:
        assert applied
        churn()
print((rss() - base) >> 20)
"""


def kept_mb(mode: str) -> int:
    return int(subprocess.run([sys.executable, "-c", CHURN, mode], check=True,
                              capture_output=True, text=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_run_in_this_process_hands_the_memory_back():
    assert kept_mb("kept") >= 80          # what the workers do until they exit
    assert kept_mb("block") < 20          # what the serial executor does per run


AFTER = """
import resource, numpy as np
from cdrexp.parallel._alloc import units_allocator
with units_allocator():
    pass
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = np.ones(1 << 20)        # 8 MB, as the population build's temporaries
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_after_a_run_big_temporaries_are_not_mapped_afresh_each_time():
    # static 128 KB thresholds would map and fault each 8 MB block in: 20 x 2048 faults
    faults = int(subprocess.run([sys.executable, "-c", AFTER], check=True,
                                capture_output=True, text=True).stdout)
    assert faults < 2 * 2048, faults


POOL = """
import pyarrow as pa
from cdrexp.parallel._alloc import keep_freed_memory, units_allocator
before = pa.default_memory_pool().backend_name
with units_allocator():
    during = pa.default_memory_pool().backend_name
after = pa.default_memory_pool().backend_name
keep_freed_memory()
print(before, during, after, pa.default_memory_pool().backend_name)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("opt_out", [False, True])
def test_arrow_allocates_from_the_retained_heap_while_units_run(opt_out):
    env = {k: v for k, v in os.environ.items() if k not in (OPT_OUT_ENV,
                                                            "ARROW_DEFAULT_MEMORY_POOL")}
    if opt_out:
        env[OPT_OUT_ENV] = "1"
    out = subprocess.run([sys.executable, "-c", POOL], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    default = out[0]
    assert default != "system"      # Arrow's own choice (mimalloc or jemalloc)
    if opt_out:
        assert out == [default] * 4
    else:
        # the serial executor's block, then a worker's setting for its life
        assert out == [default, "system", default, "system"]


# threads allocate 8 MB each and exit; prints how many malloc arenas the process has
ARENAS = """
import ctypes, os, sys, tempfile, threading
import numpy as np
from cdrexp.parallel._alloc import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
def work():
    a = np.ones(1 << 20)
    del a
for _ in range(2):
    threads = [threading.Thread(target=work) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "info.xml")
    fh = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, fh)
    libc.fclose(fh)
    print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_workers_threads_share_one_heap():
    """The CSV writer's threads allocate its slices: with an arena each, each arena kept
    its own high-water mark of freed slices (~10 MB more PSS per worker at 200k csv)."""
    env = {k: v for k, v in os.environ.items() if k != OPT_OUT_ENV}

    def arenas(mode):
        return int(subprocess.run([sys.executable, "-c", ARENAS, mode], env=env, check=True,
                                  capture_output=True, text=True).stdout)
    assert arenas("default") > 1        # the test sees arenas: glibc gives threads their own
    assert arenas("kept") == 1
