"""The default run (``python -m cdrexp``, no arguments) in a fresh directory, against a baseline.

    python benchmarks/bench_startup.py                     # 5 rounds; baseline: git ref main
    python benchmarks/bench_startup.py --rounds 7 --baseline-ref 6f18324
    python benchmarks/bench_startup.py --baseline /path/to/a/checkout

Variants, each run with its source tree first on PYTHONPATH, in a new empty directory:

- ``baseline``: a checkout of ``--baseline-ref`` (extracted with ``git archive``) or
  ``--baseline``;
- ``this``: this tree, with the cached empty MLflow database warm (the usual case: every
  run after the first on a machine);
- ``this-cold``: this tree with an empty cache directory (a machine's very first run).

Each round runs every variant once, in an order that rotates from round to round, so
load that drifts on a shared machine hits all alike. A run is ``python -m cdrexp``
itself, started through this script (``--child``) so that a few of the runner's
functions are timed on the way: the breakdown shows where the wall time goes (the
interpreter and cdrexp's imports, the up-front command-line check, importing MLflow,
opening the store (MLflow's schema migrations on a new database; every opening summed),
Hydra and whatever else comes before the job, system info, creating the run, the warm-up
and repeats themselves, logging and the rest of the job, and exit). Prints one line
per run, then the medians per variant and phase, with CPU seconds (user + sys of the run's
process tree) and the load average before and after.
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import os
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

THIS_TREE = Path(__file__).resolve().parent.parent
PHASES_ENV = "CDREXP_BENCH_PHASES_FILE"
# phase name -> (module, attribute path) of the function whose calls it times
TIMED = {
    "main": ("cdrexp.cli.main", "main"),
    "precheck": ("cdrexp.cli.main", "check_command_line"),
    "run_job": ("cdrexp.cli.job", "run_job"),
    "import_mlflow": ("cdrexp.cli.display", "quiet_mlflow"),
    "open_store": ("cdrexp.tracking.store", "TrackingStore.__init__"),
    "system_info": ("cdrexp.cli.job", "collect_system_info"),
    "create_run": ("cdrexp.tracking.store", "TrackingStore.create_run"),
    "repeats": ("cdrexp.cli.benchmark", "run_repeats"),
}
# what the summary shows, roughly in the order a run goes through it
ROWS = ("startup", "precheck", "import_mlflow", "open_store", "hydra", "system_info",
        "create_run", "repeats", "logging", "exit")


# ---- in the child: time the runner's functions, then be `python -m cdrexp` ----

def _child() -> None:
    import importlib
    spans: dict[str, list[list]] = {}

    def timed(name, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            # [wall start, wall end, CPU start, CPU end]; main() ends after the report
            span = [time.time(), None, time.process_time(), None]
            spans.setdefault(name, []).append(span)
            try:
                return fn(*args, **kwargs)
            finally:
                span[1], span[3] = time.time(), time.process_time()
                if name == "run_job":
                    Path(os.environ[PHASES_ENV]).write_text(json.dumps(spans))
        return wrapper

    for name, (module, attr) in TIMED.items():
        owner = importlib.import_module(module)
        *path, last = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, last):
            setattr(owner, last, timed(name, getattr(owner, last)))
    sys.argv = ["cdrexp"]
    runpy.run_module("cdrexp", run_name="__main__", alter_sys=True)


# ---- in the parent ----

def _one_run(variant: str, tree: Path, scratch: Path, cache: Path, i: int) -> dict:
    cwd = scratch / f"{variant}-{i}"
    cwd.mkdir()
    phases_file = scratch / f"{variant}-{i}.json"
    env = dict(os.environ, PYTHONPATH=str(tree), XDG_CACHE_HOME=str(cache),
               **{PHASES_ENV: str(phases_file)})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child"],
                          cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    t_end = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{variant}: python -m cdrexp exited {proc.returncode}:\n{proc.stderr}")
    shutil.rmtree(cwd)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    spans = json.loads(phases_file.read_text())
    return {"wall": t_end - t0, "cpu": cpu, "phases": _phases(spans, 0, t0, t_end),
            "cpu_phases": _phases(spans, 2, 0.0, cpu)}


def _phases(spans: dict, at: int, t0: float, t_end: float) -> dict:
    """Seconds per phase of one run, from the spans its functions were timed in: wall
    (``at`` 0; ``t0``, ``t_end``: the run's start and end) or CPU of the runner's process
    (``at`` 2; from 0 to the CPU of the whole run, so "exit" also holds the CPU of
    child processes). Timed functions may run before Hydra starts the job (a newer
    runner opens the store up front) or inside it: each phase sums its calls wherever
    they are; "hydra" is what is left between main() and the job, "logging" what is left
    inside the job."""
    leaves = ("precheck", "import_mlflow", "open_store", "system_info", "create_run",
              "repeats")
    main_start = spans["main"][0][at]
    run_start, run_end = spans["run_job"][0][at], spans["run_job"][0][at + 1]

    def total(name, lo=float("-inf"), hi=float("inf")):
        inside = [s[at + 1] - s[at] for s in spans.get(name, [])
                  if s[at] >= lo and s[at + 1] <= hi]
        return sum(inside) if inside else None

    out = {k: total(k) for k in leaves}
    out["startup"] = main_start - t0
    out["hydra"] = (run_start - main_start) - sum(
        total(k, hi=run_start) or 0.0 for k in leaves)
    out["logging"] = (run_end - run_start) - sum(
        total(k, lo=run_start, hi=run_end) or 0.0 for k in leaves)
    out["exit"] = t_end - run_end
    return out


def _checkout(ref: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(THIS_TREE), "archive", ref],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _fmt(v) -> str:
    return "     -" if v is None else f"{v:6.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline-ref", default="main",
                    help="git ref of the baseline (default: main)")
    ap.add_argument("--baseline", default=None, help="a baseline source tree instead")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child()
        return 0
    with tempfile.TemporaryDirectory(prefix="cdrexp-bench-startup-") as tmp:
        scratch = Path(tmp)
        base = Path(args.baseline) if args.baseline else _checkout(
            args.baseline_ref, scratch / "baseline-src")
        warm = scratch / "cache-warm"
        variants = {"baseline": (base, lambda i: scratch / f"cache-base-{i}"),
                    "this": (THIS_TREE, lambda i: warm),
                    "this-cold": (THIS_TREE, lambda i: scratch / f"cache-cold-{i}")}
        load0 = os.getloadavg()
        print(f"baseline: {args.baseline or args.baseline_ref}; this: {THIS_TREE}; "
              f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
        _one_run("warm-up", THIS_TREE, scratch, warm, 0)   # fills the warm cache
        results: dict[str, list[dict]] = {v: [] for v in variants}
        names = list(variants)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for v in order:
                tree, cache = variants[v]
                res = _one_run(v, tree, scratch, cache(r), r)
                results[v].append(res)
                print(f"round {r + 1} {v:<10} wall {res['wall']:6.2f} s  "
                      f"cpu {res['cpu']:6.2f} s  load {os.getloadavg()[0]:.2f}", flush=True)
        load1 = os.getloadavg()
    for title, part in (("wall", "phases"), ("CPU", "cpu_phases")):
        print(f"\n{title} seconds, medians over {args.rounds} rounds:")
        print(f"{'phase':<14}" + "".join(f"{v:>12}" for v in names))
        for key in (("wall", "cpu") if part == "phases" else ()) + ROWS:
            cells = []
            for v in names:
                vals = [r.get(key, r[part].get(key)) for r in results[v]]
                vals = [x for x in vals if x is not None]
                cells.append(_fmt(statistics.median(vals) if vals else None))
            print(f"{key:<14}" + "".join(f"{c:>12}" for c in cells))
    ratios = [t["wall"] / b["wall"] for t, b in zip(results["this"], results["baseline"])]
    print(f"\nthis / baseline wall: {statistics.median(ratios):.2f} (median of rounds); "
          f"load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
