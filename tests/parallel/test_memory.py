"""TreeMemorySampler: the peak of the PSS sum over a process tree."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from cdrexp.parallel._shm import OwnedSegment
from cdrexp.parallel.memory import TreeMemorySampler, tree_memory

MB = 1 << 20

# a child that touches N MB of private memory, says so, and waits to be told to go
ALLOCATE = """
import sys
block = b"\\x01" * (int(sys.argv[1]) << 20)
print("ready", flush=True)
sys.stdin.readline()
"""
# a child that maps a shared segment and touches every page of it
ATTACH = """
import sys
import numpy as np
from cdrexp.parallel._shm import _Segment
shm = _Segment(sys.argv[1])
view = np.frombuffer(shm.buf, dtype=np.uint8)
print("ready", int(view[::4096].sum()), flush=True)
sys.stdin.readline()
del view
shm.close()
"""


def start(code, *args):
    p = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline().startswith("ready")
    return p


def stop(procs):
    for p in procs:
        p.communicate("go\n", timeout=30)


def wait_for_samples(mem: TreeMemorySampler, n: int, timeout: float = 30.0) -> None:
    target, deadline = mem.samples + n, time.monotonic() + timeout
    while mem.samples < target:
        assert time.monotonic() < deadline, "the sampler stopped sampling"
        time.sleep(0.01)


def test_children_memory_is_summed():
    with TreeMemorySampler(interval=0.02) as mem:
        base = tree_memory(mem._root).pss
        kids = [start(ALLOCATE, 150), start(ALLOCATE, 100)]
        wait_for_samples(mem, 2)        # taken by the sampling thread while both live
        stop(kids)
    assert mem.samples >= 4
    assert mem.max_processes >= 3
    # 250 MB touched by the children shows up on top of what was there before
    assert mem.peak_pss - base >= 240 * MB
    assert mem.peak_rss >= mem.peak_pss


def test_a_vanishing_child_is_skipped():
    with TreeMemorySampler(interval=0.01) as mem:
        for _ in range(5):
            subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert mem.peak_pss > 0


def test_shared_pages_count_once_in_pss_but_per_process_in_rss():
    size = 200 * MB
    seg = OwnedSegment({"block": np.ones(size, dtype=np.uint8)})   # the owner touched it
    try:
        with TreeMemorySampler(interval=0.02) as mem:
            before = tree_memory(mem._root)
            kids = [start(ATTACH, seg.name), start(ATTACH, seg.name)]
            during = mem.sample()
            stop(kids)
    finally:
        seg.release()
    # three processes map the 200 MB: RSS counts it three times, PSS once (plus the
    # children's own interpreter and numpy, well under 100 MB each)
    assert during.rss - before.rss >= 2 * size
    assert during.pss - before.pss < size
    assert mem.peak_pss < before.pss + size


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="interval"):
        TreeMemorySampler(interval=0)
    with pytest.raises(ValueError, match="max_cpu_share"):
        TreeMemorySampler(max_cpu_share=0)


def test_sampling_keeps_its_cpu_share():
    share = 0.01
    kid = start(ALLOCATE, 300)          # a big tree makes each PSS sample cost something
    try:
        t0 = time.perf_counter()
        with TreeMemorySampler(interval=0.001, max_cpu_share=share) as mem:
            time.sleep(1.5)
        elapsed = time.perf_counter() - t0
    finally:
        stop([kid])
    assert mem.samples >= 2 and mem.sampling_cpu_s > 0
    # sum(cost) <= share * sum(cost + wait), plus the one sample in flight at the end
    per_sample = mem.sampling_cpu_s / (mem.samples - 2 or 1)
    # (uncapped, a 1 ms interval would spend most of the elapsed time sampling)
    assert mem.sampling_cpu_s <= share * elapsed + 3 * per_sample


def test_peak_of_sum_adds_timelines_bin_by_bin():
    from cdrexp.parallel.memory import peak_of_sum

    a = {10: (100, 200, 50), 11: (300, 400, 60), 13: (100, 100, 10)}
    b = {11: (50, 60, 5), 12: (500, 600, 70)}
    # bin 12: a still holds its bin-11 value (no sample there), b its own: 300 + 500
    assert peak_of_sum([a, b]) == (800, 1000, 130)
    # peaks at different times do not add up: sum of peaks would be 300 + 500
    assert peak_of_sum([{1: (300, 0, 0), 2: (10, 0, 0)},
                        {1: (0, 0, 0), 2: (500, 0, 0)}])[0] == 510
    # after its last sample a tree holds nothing
    assert peak_of_sum([{1: (300, 0, 0)}, {2: (500, 0, 0)}])[0] == 500
    assert peak_of_sum([]) == (0, 0, 0)


def test_sampler_keeps_its_peaks_per_time_bin():
    # a small tree of its own: sampling the test process (hundreds of MB, children left
    # by other tests) is slow enough that the CPU-share cap spaces samples > 0.25 s apart
    kid = start(ALLOCATE, 1)
    try:
        with TreeMemorySampler(pid=kid.pid, interval=0.01, bin_s=0.05,
                               max_cpu_share=1.0) as mem:
            deadline = time.monotonic() + 10
            while len(mem.bins) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        stop([kid])
    assert len(mem.bins) >= 3
    assert max(v[0] for v in mem.bins.values()) == mem.peak_pss
    assert all(pss <= rss for pss, rss, _ in mem.bins.values())
