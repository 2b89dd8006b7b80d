"""Issue 19 (generation CPU): CPU ms per 100k records of what a worker calls to generate a
unit (``generate_records`` where a checkout has it, else ``generate_unit``), this checkout
against a baseline checkout, alternating, in the same run.

Not a test: a script that measures and prints. Each round runs one child process per
checkout (``PYTHONPATH`` = that checkout) that builds a population once, generates
``--units`` units once unmeasured (warm-up: caches, page faults), then times each unit
with ``time.process_time`` (this process's CPU, single-threaded numpy). Figures: medians
over rounds x units of CPU ms per 100k records, for the whole call and for
the model part alone (the columns' assembly, ``_records`` or ``_to_table``, replaced by a
no-op); and the
peak of the memory numpy allocates while one unit is generated (``tracemalloc``).

    python benchmarks/bench_gen_unit.py --base /tmp/base-e02e4db
    python benchmarks/bench_gen_unit.py --base /tmp/base --rounds 5 --units 4 --mirror
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

CHILD = r"""
import datetime as dt, json, sys, time
from cdrexp.config import GeneratorConfig, ModelConfig
from cdrexp.model import records
from cdrexp.model.population import build_population
from cdrexp.model.units import plan_units

args = json.loads(sys.argv[1])
cfg = GeneratorConfig(subs=args["subs"], days=args["days"], seed=args["seed"], workers=1,
                      model=ModelConfig(mirror_onnet_calls=args["mirror"],
                                        activity_sigma=args["sigma"]))
pop = build_population(cfg)
units = plan_units(cfg)[-args["units"]:]          # the last day: device changes count
out = {}
generate = getattr(records, "generate_records", None) or records.generate_unit
assembly = "_records" if hasattr(records, "_records") else "_to_table"
import tracemalloc                                   # peak of one unit (numpy is traced)
generate(cfg, pop, units[-1])
tracemalloc.start()
generate(cfg, pop, units[-1])
out["peak_mb"] = [tracemalloc.get_traced_memory()[1] / 1e6]
tracemalloc.stop()
for mode in ("whole", "model"):
    if mode == "model":
        setattr(records, assembly, lambda cols, *rest: cols["event_type"].size)
    for u in units:                                  # warm-up, unmeasured
        generate(cfg, pop, u)
    per = []
    for u in units:
        t0 = time.process_time()
        res = generate(cfg, pop, u)
        dt_s = time.process_time() - t0
        n = res if isinstance(res, int) else res.num_rows
        per.append(dt_s * 1e3 / n * 1e5)
    out[mode] = per
print(json.dumps(out))
"""


def run(python: str, checkout: Path, params: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    res = subprocess.run([python, "-c", CHILD, json.dumps(params)], env=env,
                         cwd=str(checkout), check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, type=Path, help="baseline checkout")
    ap.add_argument("--head", type=Path, default=HERE, help="checkout measured (default: this one)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--units", type=int, default=3, help="units (10k subscribers) timed per round")
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sigma", type=float, default=0.0, help="model.activity_sigma")
    ap.add_argument("--mirror", action="store_true", help="model.mirror_onnet_calls=true")
    a = ap.parse_args(argv)
    params = dict(subs=10_000 * a.units, days=a.days, seed=a.seed, units=a.units,
                  mirror=a.mirror, sigma=a.sigma)
    figs = {side: {"whole": [], "model": [], "peak_mb": []} for side in ("base", "head")}
    for r in range(a.rounds):
        for side, path in (("base", a.base), ("head", a.head)):
            got = run(a.python, path, params)
            for k in got:
                figs[side][k] += got[k]
            print(f"round {r + 1} {side}: whole {statistics.median(got['whole']):.1f}  "
                  f"model {statistics.median(got['model']):.1f} ms/100k records", flush=True)
    print(f"\nCPU ms per 100k records, a unit as a worker generates it (medians of {a.rounds} rounds x "
          f"{a.units} units; {params}); load {os.getloadavg()[0]:.2f}")
    print(f"{'':24}{'base':>10}{'head':>10}{'head/base':>11}")
    for k, label in (("whole", "whole unit"), ("model", "without the assembly"),
                     ("peak_mb", "unit peak MB (traced)")):
        b, h = statistics.median(figs["base"][k]), statistics.median(figs["head"][k])
        print(f"{label:24}{b:10.1f}{h:10.1f}{h / b:11.3f}")
    # on a shared machine other work only ever adds CPU time (cache, SMT siblings): the
    # fastest unit of each side is the least disturbed figure
    for k, label in (("whole", "whole unit, min"), ("model", "without assembly, min")):
        b, h = min(figs["base"][k]), min(figs["head"][k])
        print(f"{label:24}{b:10.1f}{h:10.1f}{h / b:11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
