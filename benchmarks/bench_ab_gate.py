"""Planted regressions against the A/B gate (``python -m cdrexp.ab``): detection and
false-alarm rates, seconds per gate run.

    python benchmarks/bench_ab_gate.py                  # 10 rounds of every cell
    python benchmarks/bench_ab_gate.py --rounds 3 --cells a_quiet,c_loaded

In a scratch clone of this repository (its HEAD = the base), four commits on the base:
(a) a comment; (b) ~10 % and (c) ~25 % more CPU on the default gate job, (d) ~3 % more
instructions on the instructions job. The extra work is real work in the hot path: every
work unit sorts an array of random numbers whose size is calibrated here first (CPU per
element in this process, the base job's CPU over 3 runs; instructions per element and the
base job's count under cachegrind). Cells, run round-robin so that every cell sees the
same machine, one gate run each per round:

    a_quiet    (a) vs base, cpu, 5 %           a_loaded  same with one core ~50 % busy
    b_quiet    (b) vs base, cpu, 5 %           c_loaded  (c) vs base, with that load
    d_instr    (d) vs base, instructions, 2 %  a_instr   (a) vs base, instructions, 2 %

A gate run is ``python -m cdrexp.ab BASE CELL_COMMIT ... --max-seconds 150`` (its start-up
and MLflow logging come on top: the whole run stays within 3 minutes); its exit
code is the verdict (1 = flagged slower, 0 = passed, 2 = undecided). The table is
printed after every round, with the load average, so a run cut short still reports.

Issue 18's cells run the README's own commands in a plain ``git clone`` of this
repository in a directory named ``cdrexp`` (its ``.venv`` a link to this one's), with a
comment-only commit at HEAD and an earlier run's ``mlflow.db`` and ``outputs/`` lying in
it, from that directory, with that clone's code:

    e_quiet    python -m cdrexp.ab HEAD~1 (the default job, the candidate the working
               tree), targets: flagged <= 1 of 30, median |ratio - 1| <= 1 %
    e_loaded   the same with one core ~50 % busy
    e_landed   the baseline: e_quiet with the gate as landed before issue 18
               (``--landed-rev``, default 3e176c0) in a clone of that revision
    f_aa       python -m cdrexp.ab --aa: ratio within [0.98, 1.02] in 9 of 10
    g_deps     python -m cdrexp.ab HEAD~1 HEAD in a second clone whose HEAD only pins
               numpy below the installed minor version in pyproject.toml: each side in
               its own environment; seconds per gate, environment builds included (the
               first round builds them in an empty cache, the later ones find them)

    python benchmarks/bench_ab_gate.py --cells e_quiet,e_loaded,f_aa,g_deps --rounds 10
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from cdrexp.ab._measure import Side, cachegrind_command, measure_run  # noqa: E402

CPU_JOB = ["subs=20000"]                        # the CI gate's job (workers: all cores)
INSTR_JOB = ["subs=2000", "workers=1"]
UNITS = {"cpu": 2, "instructions": 1}           # work units of each job (chunk 10,000)
TARGETS = {"b": ("cpu", 0.10), "c": ("cpu", 0.25), "d": ("instructions", 0.03)}
CELLS = {
    "a_quiet": ("a", "cpu", 5, False), "a_loaded": ("a", "cpu", 5, True),
    "b_quiet": ("b", "cpu", 5, False), "c_loaded": ("c", "cpu", 5, True),
    "d_instr": ("d", "instructions", 2, False), "a_instr": ("a", "instructions", 2, False),
}
SLOWER_CELLS = ("b", "c", "d")
EXAMPLE_CELLS = {"e_quiet": ("e", False), "e_loaded": ("e", True), "f_aa": ("f", False),
                 "g_deps": ("g", False), "e_landed": ("e", False)}

PLANT = '''

def _planted_work(n: int) -> None:
    # benchmark's planted regression: sort {n} random numbers per work unit
    import numpy as np
    np.sort(np.random.default_rng(0).random(n))
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit(repo: Path, base: str, name: str, edit) -> str:
    git(repo, "checkout", "-q", "--detach", base)
    edit(repo / "cdrexp" / "parallel" / "work.py")
    git(repo, "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qam", name)
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach", base)
    return sha


def plant(n: int):
    def edit(path: Path):
        text = path.read_text()
        text = text.replace("    gen_s = time.perf_counter() - t0\n",
                            f"    _planted_work({n})\n    gen_s = time.perf_counter() - t0\n", 1)
        path.write_text(text + PLANT.format(n=n))
    return edit


def comment(path: Path):
    path.write_text(path.read_text().replace(
        "def run_unit(", "# a no-op change: this comment\ndef run_unit(", 1))


def measure_job(repo: Path, job: list[str], scratch: Path, counted: bool, runs: int) -> float:
    """Median CPU seconds (or instructions) of the base job, ``runs`` fresh processes."""
    from cdrexp.ab._job import compose_job, write_side_config
    cfg = compose_job(job, "instructions" if counted else "cpu")
    side = Side("base", "HEAD", git(repo, "rev-parse", "HEAD"), repo)
    values = []
    for i in range(runs + 1):
        d = scratch / f"calib-{'i' if counted else 'c'}{i}"
        d.mkdir()
        conf = write_side_config(cfg, d / "out", d / "config.yaml")
        m = measure_run(side, conf, d / "out", d / "run.log",
                        cachegrind_command() if counted and i else None)
        if i:                                   # the first run warms up
            values.append(m.instructions if counted else m.cpu_s)
    return statistics.median(values)


def sort_cost(n: int, counted: bool, scratch: Path) -> float:
    """CPU seconds (or instructions) of ``_planted_work(n)``."""
    code = ("import time, numpy as np\n"
            "t = time.process_time()\n"
            f"np.sort(np.random.default_rng(0).random({n}))\n"
            "print(time.process_time() - t)\n")
    if not counted:
        return statistics.median(float(subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout) for _ in range(5))
    counts = []
    for size in (0, n):
        out = scratch / f"sort{size}.cg"
        subprocess.run(cachegrind_command() + [f"--cachegrind-out-file={out}", sys.executable,
                       "-c", code.replace(str(n), str(size))], capture_output=True, check=True)
        counts.append(int(next(ln.split()[1] for ln in out.read_text().splitlines()
                               if ln.startswith("summary:"))))
    return counts[1] - counts[0]


def calibrate(repo: Path, scratch: Path) -> dict[str, int]:
    """Elements to sort per unit for each planted slowdown."""
    sizes = {}
    probe = 2_000_000
    for metric in ("cpu", "instructions"):
        counted = metric == "instructions"
        job = measure_job(repo, INSTR_JOB if counted else CPU_JOB, scratch, counted,
                          runs=1 if counted else 3)
        per_element = sort_cost(probe, counted, scratch) / probe
        for name, (m, target) in TARGETS.items():
            if m == metric:
                sizes[name] = int(target * job / UNITS[metric] / per_element)
        print(f"calibration ({metric}): base job {job:,.3f}, sort {per_element:.3g} per "
              f"element -> {[(k, sizes[k]) for k in TARGETS if TARGETS[k][0] == metric]}",
              flush=True)
    return sizes


def _busy_half_core(stop):
    while not stop.is_set():
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            pass
        time.sleep(0.05)


def gate(repo: Path, base: str, cand: str, metric: str, pct: float, loaded: bool,
         store_dir: Path, max_seconds: float) -> dict:
    job = INSTR_JOB if metric == "instructions" else CPU_JOB
    cmd = [sys.executable, "-m", "cdrexp.ab", base, cand, *job, "--repo", str(repo),
           "--metric", metric, "--fail-on-regression", str(pct),
           "--max-seconds", str(max_seconds)]
    return _timed_gate(cmd, store_dir, dict(os.environ, PYTHONPATH=str(ROOT)), loaded)[1]


def _timed_gate(cmd: list[str], cwd: Path, env: dict, loaded: bool):
    """Run one gate (with half a core kept busy if ``loaded``); its process and figures:
    exit code, seconds, the verdict line, ratio, pairs, the load average around it."""
    stop, load = mp.Event(), None
    if loaded:
        load = mp.Process(target=_busy_half_core, args=(stop,), daemon=True)
        load.start()
    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    finally:
        if load is not None:
            stop.set()
            load.join()
    seconds = time.monotonic() - t0
    # the verdict line is the last of stdout; a could-not-run line the last of stderr
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(
        "cdrexp-ab: ")), None) or (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    ratio = re.search(r"ratio ([0-9.]+) \[", line)
    pairs = re.search(r"(\d+) pairs", line)
    return proc, {"rc": proc.returncode, "seconds": seconds, "line": line,
                  "ratio": float(ratio.group(1)) if ratio else None,
                  "pairs": int(pairs.group(1)) if pairs else None,
                  "load": (load_before + os.getloadavg()[0]) / 2}


def _clone(repo: Path, rev: Optional[str] = None) -> None:
    """A plain clone of this repository at ``rev`` (default: this checkout's HEAD; a
    clone alone would be at the origin's HEAD, another branch when this is a worktree)."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    git(repo, "checkout", "-q", "--detach", rev or git(ROOT, "rev-parse", "HEAD"))


def _clone_named_cdrexp(where: Path, rev: Optional[str] = None) -> Path:
    """A plain clone named ``cdrexp`` of this repository, as a user has it after the
    README's install and a first run: a comment-only commit at HEAD, ``mlflow.db`` and
    ``outputs/`` of an earlier run, ``.venv`` (a link to this checkout's)."""
    repo = where / "cdrexp"
    _clone(repo, rev)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    readme = repo / "README.md"
    init = repo / "cdrexp" / "__init__.py"
    init.write_text(init.read_text() + "\n# a comment-only change\n")
    git(repo, "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qam",
        "a comment")
    subprocess.run([str(repo / ".venv" / "bin" / "python"), "-m", "cdrexp", "subs=2000",
                    "repeats=1", "warmup=0"], cwd=repo, env=_clone_env(repo), check=True,
                   capture_output=True)
    status = git(repo, "status", "--porcelain")
    print(f"clone {repo}: {sorted(p.name for p in repo.iterdir())}; git status: "
          f"{status or 'clean'}", flush=True)
    assert readme.exists()
    return repo


def _clone_env(repo: Path, **extra: str) -> dict:
    # the clone's code, as an editable install of the clone would give it
    return dict(os.environ, PYTHONPATH=str(repo), **extra)


def _dependency_commit(where: Path) -> Path:
    """A second clone named cdrexp whose HEAD only edits pyproject.toml: numpy pinned
    below the installed minor version (a real change of the package the hot path uses)."""
    import numpy
    major, minor = (int(x) for x in numpy.__version__.split(".")[:2])
    repo = where / "cdrexp"
    _clone(repo)
    py = repo / "pyproject.toml"
    text = py.read_text()
    assert '"numpy>=1.26",' in text
    py.write_text(text.replace('"numpy>=1.26",', f'"numpy>=1.26,<{major}.{minor}",', 1))
    git(repo, "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qam",
        f"numpy below {major}.{minor}")
    print(f"dependency clone {repo}: HEAD pins numpy<{major}.{minor} "
          f"(installed here: {numpy.__version__})", flush=True)
    return repo


def example_gate(kind: str, loaded: bool, repo: Path, env_cache: Path,
                 max_seconds: float) -> dict:
    py = str(repo / ".venv" / "bin" / "python") if (repo / ".venv").exists() \
        else sys.executable
    args = {"e": ["HEAD~1"], "f": ["--aa"], "g": ["HEAD~1", "HEAD"]}[kind]
    cmd = [py, "-m", "cdrexp.ab", *args, "--max-seconds", str(max_seconds)]
    proc, result = _timed_gate(cmd, repo, _clone_env(repo, CDREXP_ENV_CACHE=str(env_cache)),
                               loaded)
    result["packages"] = next((ln for ln in proc.stderr.splitlines() if "packages:" in ln),
                              "")
    if kind == "f" and result["rc"] in (0, 1, 2) and "A/A" not in result["line"]:
        result["rc"] = -1                # not an A/A answer at all
    return result


def report_examples(results: dict[str, list[dict]]) -> None:
    print(f"\n{'cell':9} {'done':>4} {'flagged(1)':>10} {'ok(0)':>6} {'undec(2)':>8} "
          f"{'other':>5} {'median|r-1|':>11} {'r in .98-1.02':>13} {'median s':>8} "
          f"{'max s':>6} {'pairs':>5} {'load':>5}")
    for cell, rs in results.items():
        if not rs:
            continue
        count = {c: sum(r["rc"] == c for r in rs) for c in (0, 1, 2)}
        other = len(rs) - sum(count.values())
        ratios = [r["ratio"] for r in rs if r["ratio"]]
        dev = statistics.median(abs(r - 1) for r in ratios) if ratios else float("nan")
        inside = sum(0.98 <= r <= 1.02 for r in ratios)
        pairs = [r["pairs"] for r in rs if r["pairs"]]
        print(f"{cell:9} {len(rs):>4} {count[1]:>10} {count[0]:>6} {count[2]:>8} "
              f"{other:>5} {100 * dev:>10.2f}% {inside:>6}/{len(ratios):<6} "
              f"{statistics.median(r['seconds'] for r in rs):>8.0f} "
              f"{max(r['seconds'] for r in rs):>6.0f} "
              f"{statistics.median(pairs) if pairs else 0:>5.0f} "
              f"{statistics.mean(r['load'] for r in rs):>5.1f}")
    if results.get("g_deps"):
        for i, r in enumerate(results["g_deps"], 1):
            print(f"g_deps round {i}: {r['seconds']:.0f} s, exit {r['rc']}; "
                  f"{r['packages'].removeprefix('cdrexp-ab: ')}")
    for cell in ("e_quiet", "e_loaded", "e_landed", "f_aa"):
        if results.get(cell):
            ratios = ["none" if r["ratio"] is None else f"{r['ratio']:.3f}"
                      for r in results[cell]]
            print(f"{cell} ratios: {' '.join(ratios)}")
    e = results.get("e_quiet", []) + results.get("e_loaded", [])
    if e:
        print(f"(e) flagged {sum(r['rc'] == 1 for r in e)} of {len(e)} (target <= 1 of 30)")
    print(flush=True)


def report(results: dict[str, list[dict]], rounds: int) -> None:
    print(f"\n{'cell':10} {'done':>5} {'flagged(1)':>11} {'passed(0)':>10} "
          f"{'undecided(2)':>13} {'median s':>9} {'max s':>7} {'pairs':>6} "
          f"{'ratio':>6} {'load':>5}")
    for cell, rs in results.items():
        if not rs:
            continue
        n = len(rs)
        count = {c: sum(r["rc"] == c for r in rs) for c in (0, 1, 2)}
        ratios = [r["ratio"] for r in rs if r["ratio"]]
        pairs = [r["pairs"] for r in rs if r["pairs"]]
        kind = "caught" if CELLS[cell][0] in SLOWER_CELLS else "false alarms"
        print(f"{cell:10} {n:>2}/{rounds:<2} {count[1]:>6} ({100 * count[1] / n:3.0f}%)"
              f" {count[0]:>10} {count[2]:>13} "
              f"{statistics.median(r['seconds'] for r in rs):>9.0f} "
              f"{max(r['seconds'] for r in rs):>7.0f} "
              f"{statistics.median(pairs) if pairs else 0:>6.0f} "
              f"{statistics.median(ratios) if ratios else 0:>6.3f} "
              f"{statistics.mean(r['load'] for r in rs):>5.1f}   ({kind}: flagged)")
    print(flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--sizes", help="skip the calibration: b=N,c=N,d=N elements per unit")
    ap.add_argument("--max-seconds", type=float, default=150.0,
                    help="budget of a cpu gate run (the 3-minute target)")
    ap.add_argument("--instr-max-seconds", type=float, default=400.0,
                    help="budget of an instructions gate run (cachegrind is ~50x slower)")
    ap.add_argument("--example-max-seconds", type=float, default=600.0,
                    help="budget of the README-example cells (e, f, g): the default's")
    ap.add_argument("--landed-rev", default="3e176c0",
                    help="e_landed: the revision whose gate is the baseline")
    ap.add_argument("--g-rounds", type=int, default=2,
                    help="rounds that run g_deps (the first builds the environments)")
    args = ap.parse_args()
    cells = args.cells.split(",")
    scratch = Path(tempfile.mkdtemp(prefix="ab-bench-"))
    examples = [c for c in cells if c in EXAMPLE_CELLS]
    cells = [c for c in cells if c not in EXAMPLE_CELLS]
    if examples:
        return run_examples(examples, args, scratch)
    repo = scratch / "repo"
    _clone(repo)
    base = git(repo, "rev-parse", "HEAD")
    print(f"scratch clone {repo} at {base[:10]}; load average {os.getloadavg()}", flush=True)
    sizes = ({k: int(v) for k, v in (kv.split("=") for kv in args.sizes.split(","))}
             if args.sizes else calibrate(repo, scratch))
    shas = {"a": commit(repo, base, "a: a comment", comment)}
    for name, n in sizes.items():
        shas[name] = commit(repo, base, f"{name}: planted slowdown", plant(n))
    store = scratch / "store"
    store.mkdir()
    results: dict[str, list[dict]] = {c: [] for c in cells}
    for rnd in range(args.rounds):
        for cell in cells:
            change, metric, pct, loaded = CELLS[cell]
            budget = args.instr_max_seconds if metric == "instructions" else args.max_seconds
            r = gate(repo, base, shas[change], metric, pct, loaded, store, budget)
            results[cell].append(r)
            print(f"round {rnd + 1} {cell}: exit {r['rc']} in {r['seconds']:.0f} s "
                  f"(load {r['load']:.1f}): {r['line']}", flush=True)
        report(results, args.rounds)
    return 0


def run_examples(cells: list[str], args, scratch: Path) -> int:
    print(f"scratch {scratch}; load average {os.getloadavg()}", flush=True)
    clone = _clone_named_cdrexp(scratch / "e")
    landed = _clone_named_cdrexp(scratch / "landed", args.landed_rev) \
        if "e_landed" in cells else None
    dep_clone = _dependency_commit(scratch / "g") if "g_deps" in cells else None
    if dep_clone is not None:
        (dep_clone / ".venv").symlink_to(ROOT / ".venv")
    env_cache = scratch / "envs"                # empty: the first g round builds
    results: dict[str, list[dict]] = {c: [] for c in cells}
    for rnd in range(args.rounds):
        for cell in cells:
            kind, loaded = EXAMPLE_CELLS[cell]
            if kind == "g" and rnd >= args.g_rounds:
                continue
            where = {"g_deps": dep_clone, "e_landed": landed}.get(cell, clone)
            r = example_gate(kind, loaded, where, env_cache, args.example_max_seconds)
            results[cell].append(r)
            print(f"round {rnd + 1} {cell}: exit {r['rc']} in {r['seconds']:.0f} s "
                  f"(load {r['load']:.1f}): {r['line']}", flush=True)
        report_examples(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
