"""Driver for the fault tests: a LocalExecutor run over fake units, in its own process.

    python fault_driver.py OUT MODE WORKERS [START]
        MODE: ok | slow | error | exit, or the same with "2" (ok2...): the fake unit's
        two-step form (two units per worker in flight); START: the executor's start
        method (default: its own choice, which is fork in this single-threaded script)

Prints "progress N" as units complete, "done" at the end.
"""
import sys

from parallel_fakes import (FakeCfg, fake_discard, fake_population, fake_unit,
                            fake_unit_two_step, fake_units)

from cdrexp.parallel import LocalExecutor


def main():
    out, mode, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    start = sys.argv[4] if len(sys.argv) > 4 else None
    unit_fn = fake_unit_two_step if mode.endswith("2") else fake_unit
    mode = mode.rstrip("2")
    cfg = FakeCfg(out=out, n_units=8)
    if mode == "slow":
        cfg = FakeCfg(out=out, n_units=40, line_sleep=0.1)
    elif mode == "error":
        cfg = FakeCfg(out=out, n_units=8, fail_chunk=3, line_sleep=0.02)
    elif mode == "exit":
        cfg = FakeCfg(out=out, n_units=8, exit_chunk=3, line_sleep=0.02)
    ex = LocalExecutor(workers, unit_fn=unit_fn, discard_fn=fake_discard,
                       start_method=start)
    ex.run(cfg, fake_population(cfg.n_units * cfg.chunk), fake_units(cfg),
           lambda p: print(f"progress {p.units_done}", flush=True))
    print("done", flush=True)


if __name__ == "__main__":
    main()
