"""For ``bench_lean.py --cases imports``: a unit that waits before it runs, so the tree
can be measured with its workers started and nothing generated yet."""
import time

from cdrexp.parallel import run_unit

WAIT_S = 3.0


def sleepy_unit(cfg, population, unit):
    time.sleep(WAIT_S)
    return run_unit(cfg, population, unit)
