"""Measuring a generation: CPU of the whole process tree, sampled peak memory."""
import json
import subprocess
import sys
import time

import psutil

from cdrexp.tracking.measure import measure, wall_summary

BURN = "import time\nt=time.process_time()\nwhile time.process_time()-t<{s}: pass\n{tail}"


def test_cpu_of_a_reaped_child_is_counted():
    def work():
        subprocess.run([sys.executable, "-c", BURN.format(s=0.6, tail="")], check=True)
    _, m = measure(work)
    assert m.cpu_s >= 0.6 and m.wall_s >= 0.6


def test_cpu_of_a_live_child_is_counted_without_its_earlier_use():
    # a child that already burned CPU before the measurement and keeps running after it
    child = subprocess.Popen([sys.executable, "-c",
                              BURN.format(s=0.4, tail="import time\ntime.sleep(60)")])
    try:
        p = psutil.Process(child.pid)
        while sum(p.cpu_times()[:2]) < 0.4:
            time.sleep(0.05)
        busy = sum(p.cpu_times()[:2])

        def work():    # this process burns 0.3 s; the child sleeps
            t = time.process_time()
            while time.process_time() - t < 0.3:
                pass
        _, m = measure(work)
        assert 0.3 <= m.cpu_s < 0.3 + busy      # not the child's earlier 0.4 s
    finally:
        child.kill()
        child.wait()


_TRANSIENT = """
import json, time
import numpy as np
from cdrexp.tracking.measure import measure
def work():
    a = np.ones(200_000_000 // 8)          # 200 MB, touched
    time.sleep(0.3)                        # several sampling intervals
    return float(a[-1])
_, m = measure(work)
print(json.dumps([m.peak_pss_bytes, m.baseline_pss_bytes, m.peak_rss_bytes]))
"""


def test_peak_memory_sees_a_transient_allocation():
    # in a process of its own: in this one, processes other tests left in the tree (a
    # forkserver, a Dask cluster) can give memory back during the measurement and hide
    # part of the allocation from the tree's sum
    out = subprocess.run([sys.executable, "-c", _TRANSIENT], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    peak_pss, baseline_pss, peak_rss = json.loads(out.strip().splitlines()[-1])
    assert peak_pss - baseline_pss > 150_000_000
    assert baseline_pss < 150_000_000           # python, numpy, psutil: well under
    assert peak_rss >= peak_pss * 0.9


def test_wall_summary():
    s = wall_summary([3.0, 1.0, 2.0])
    assert (s["median"], s["min"], s["max"]) == (2.0, 1.0, 3.0)
    assert s["stddev"] == 1.0
    assert wall_summary([5.0])["stddev"] == 0.0


def test_the_peak_is_never_below_the_baseline(monkeypatch):
    """The baseline is the tree's first sample: PSS read during the run can be lower
    (other processes started mapping the same libraries), the peak still includes it."""
    import cdrexp.tracking.measure as measure_module
    from cdrexp.parallel.memory import TreeMemory

    class Shrunk(measure_module.TreeMemorySampler):
        def sample(self):
            self.peak_pss = self.peak_rss = self.peak_uss = 1
            self.max_processes = 1
            return TreeMemory(1, 1, 1, 1)

    monkeypatch.setattr(measure_module, "TreeMemorySampler", Shrunk)
    monkeypatch.setattr(measure_module, "tree_memory",
                        lambda proc: TreeMemory(5_000, 6_000, 4_000, 2))
    _, m = measure(lambda: None)
    assert m.baseline_pss_bytes == 5_000
    assert (m.peak_pss_bytes, m.peak_rss_bytes, m.peak_uss_bytes) == (5_000, 6_000, 4_000)
    assert m.max_processes == 2
