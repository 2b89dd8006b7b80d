"""Issue 19: what ``python -m cdrexp`` reports and costs, this checkout against a baseline
checkout (before the job ran its repeats in a generator process of their own), alternating
in the same run.

Not a test: a script that measures and prints. Each run is a whole command, ``python -m
cdrexp CASE``, in a fresh scratch directory (its own MLflow store, output deleted after)
with ``PYTHONPATH`` pointing at one checkout, under ``cdrexp/ab/_reap.py`` (a child
subreaper: the CPU seconds of every process of the command, the orphaned forkserver's
workers included, which ``/usr/bin/time -f %U+%S`` alone misses), itself under
``/usr/bin/time`` (printed too, as ``time_cpu_s``, to show what that misses). The
job's own figures come from its ``benchmark_results.json``: median wall time of the
measured repeats, subs/s, CPU s (median repeat), cores busy, peak PSS (highest repeat),
"before generating" (baseline PSS, median repeat) and, for a checkout that measures them
apart, the runner's own PSS. Medians over ``--rounds``.

It also measures what the extra process costs each job: ``python -m cdrexp.cli.repeats``
with no warm-up and no repeat (interpreter start-up and the generator's imports), wall
and CPU seconds, median of ``--rounds``.

    git clone -q /work/main /tmp/base && git -C /tmp/base checkout -q 5eb643e
    python benchmarks/bench_runner_child.py --base /tmp/base --rounds 3
    python benchmarks/bench_runner_child.py --base /tmp/base --cases sweep4
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
REAP = HERE / "cdrexp" / "ab" / "_reap.py"
CASES = {
    "c200k": ["subs=200000", "output=csv"],
    "n1m_w1": ["subs=1000000", "output=none", "workers=1"],
    "n1m_w2": ["subs=1000000", "output=none", "workers=2"],
    # the same at half the default unit (docs/parallel.md: chunk_size's trade-off)
    "n1m_w1_k5": ["subs=1000000", "output=none", "workers=1", "model.chunk_size=5000"],
    "n1m_w2_k5": ["subs=1000000", "output=none", "workers=2", "model.chunk_size=5000"],
    # a sweep of 4 small jobs: what a generator process per job costs (only the
    # command's figures: its jobs' are each in their own directory)
    "sweep4": ["-m", "seed=1,2,3,4", "subs=20000", "workers=2", "repeats=1", "warmup=0",
               "output=none"],
}
JOB_KEYS = ("wall_s", "subs_per_s", "cpu_s", "cores_busy", "peak_pss_mb", "before_mb",
            "runner_mb")
MB = 1e6


def run_command(checkout: Path, args: list[str], scratch: Path) -> dict:
    """One ``python -m cdrexp ARGS`` in a fresh directory: its figures."""
    cwd = Path(tempfile.mkdtemp(dir=scratch))
    env = dict(os.environ, PYTHONPATH=str(checkout))
    env.pop("MLFLOW_TRACKING_URI", None)
    timing, reaped = cwd / "time.txt", cwd / "reaped.json"
    try:
        proc = subprocess.run(["/usr/bin/time", "-f", "%e %U %S", "-o", str(timing),
                               sys.executable, "-I", "-S", str(REAP), str(reaped), "--",
                               sys.executable, "-m", "cdrexp", *args], cwd=cwd, env=env,
                              capture_output=True, text=True)
        tree = json.loads(reaped.read_text())
        if proc.returncode != 0 or tree["returncode"] != 0:
            raise SystemExit(f"{checkout}: {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        _, user, sys_ = map(float, timing.read_text().split()[-3:])
        command = {"command_cpu_s": tree["cpu_s"], "command_wall_s": tree["wall_s"],
                   "time_cpu_s": user + sys_}
        found = list(cwd.glob("outputs/*/*/benchmark_results.json"))
        if len(found) != 1:         # a sweep
            return {**dict.fromkeys(JOB_KEYS), **command}
        r = json.loads(found[0].read_text())
        reps = r["repeat_measurements"]
        runner = [m.get("runner_pss_bytes") for m in reps if m.get("runner_pss_bytes")]
        return {
            "wall_s": r["elapsed_seconds"],
            "subs_per_s": r["throughput_subs_per_sec"],
            "cpu_s": statistics.median(m["cpu_s"] for m in reps),
            "cores_busy": r["cpu_cores_busy"],
            "peak_pss_mb": r["peak_pss_bytes"] / MB,
            "before_mb": statistics.median(m["baseline_pss_bytes"] for m in reps) / MB,
            "runner_mb": max(runner) / MB if runner else None,
            **command,
        }
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def start_cost(checkout: Path, scratch: Path) -> tuple[float, float]:
    """Wall and CPU s of the generator process doing nothing: start-up and imports."""
    cwd = Path(tempfile.mkdtemp(dir=scratch))
    try:
        config = cwd / "c.yaml"
        config.write_text("subs: 1000\nout: out\n")
        timing = cwd / "time.txt"
        subprocess.run(["/usr/bin/time", "-f", "%e %U %S", "-o", str(timing),
                        sys.executable, "-m", "cdrexp.cli.repeats", "--config", str(config),
                        "--warmup", "0", "--repeats", "0", "--events-fd", "1"], cwd=cwd,
                       env=dict(os.environ, PYTHONPATH=str(checkout), PYTHONSAFEPATH="1"),
                       check=True, capture_output=True)
        wall, user, sys_ = map(float, timing.read_text().split()[-3:])
        return wall, user + sys_
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, type=Path, help="the baseline checkout")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", nargs="+", default=["c200k", "n1m_w1", "n1m_w2"],
                    choices=list(CASES))
    ap.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()))
    args = ap.parse_args()
    sides = {"base": args.base.resolve(), "this": HERE}
    commits = {k: subprocess.run(["git", "-C", str(v), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
               for k, v in sides.items()}
    print(f"base {sides['base']} ({commits['base']}), this {HERE} ({commits['this']})")
    print("load before:", os.getloadavg())
    got: dict = {(c, s): [] for c in args.cases for s in sides}
    for rnd in range(args.rounds):
        for case in args.cases:
            order = list(sides) if rnd % 2 == 0 else list(sides)[::-1]
            for side in order:
                got[case, side].append(run_command(sides[side], CASES[case], args.scratch))
                print(f"round {rnd + 1} {case} {side}: {got[case, side][-1]}", flush=True)
    starts = [start_cost(HERE, args.scratch) for _ in range(args.rounds)]
    print("load after:", os.getloadavg())
    keys = ["peak_pss_mb", "before_mb", "runner_mb", "wall_s", "subs_per_s", "cpu_s",
            "cores_busy", "command_cpu_s", "command_wall_s", "time_cpu_s"]
    specs = [".1f", ".1f", ".1f", ".3f", ",.0f", ".2f", ".2f", ".2f", ".2f", ".2f"]
    print(f"\nmedians of {args.rounds} (the job's table: peak PSS, before generating, "
          "runner PSS, wall, subs/s, CPU s, cores busy; the whole command: CPU s, wall s; "
          "/usr/bin/time's CPU s without a subreaper)")
    print(f"{'case':8} {'side':5} " + " ".join(f"{k:>14}" for k in keys))
    for case in args.cases:
        for side in sides:
            runs = got[case, side]
            cells = []
            for k, spec in zip(keys, specs):
                vals = [r[k] for r in runs if r[k] is not None]
                cells.append(f"{_fmt(statistics.median(vals) if vals else None, spec):>14}")
            print(f"{case:8} {side:5} " + " ".join(cells))
    print(f"\nthe generator process alone (start-up and imports, nothing generated): "
          f"wall {statistics.median(w for w, _ in starts):.2f} s, "
          f"CPU {statistics.median(c for _, c in starts):.2f} s (median of {len(starts)})")


if __name__ == "__main__":
    main()
