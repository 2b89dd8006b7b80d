"""The Rust seed and cdrexp side by side, CPU seconds of whole process trees, alternating.

Not a test: a script that measures and prints (issue 18 item 6, issue 19).

    benchmarks/build_rust_seed.sh MIRROR /work/rust-seed-build      # once, see docs/rust-seed.md
    python benchmarks/bench_vs_rust.py --subs 200000 1000000 --out /dev/shm
    python benchmarks/bench_vs_rust.py --subs 200000 --formats csv --out /dev/shm \\
        --cdrexp-root /work/main --cdrexp-root /tmp/lean-snap \\
        --cdrexp-python /work/main/.venv/bin/python --cdrexp-python /tmp/lean-snap/.venv/bin/python
    python benchmarks/bench_vs_rust.py --subs 20000 --rounds 1        # smoke test

The seed is the program cdrexp replaces: whetherharder/rs_cdr_generator at commit 894091e,
built offline outside this repository by ``benchmarks/build_rust_seed.sh`` (none of its
code is here). Two binaries: ``rs_cdr_generator`` as it is (gzip CSV, flate2's
``Compression::default()`` = zlib level 6, Debian's flate2 1.0.25 on miniz_oxide), and
``rs_cdr_generator_plain``, the same program writing plain CSV (for ``csv``).

What runs (one generation of N subscribers x 1 day to files, nothing else, both sides):

- seed: ``BIN --subs N --workers N/SHARD --days 1 --start START --seed 42 --out DIR``
  with ``RAYON_NUM_THREADS=--workers``. Its "workers" are shards of N/W subscribers run
  on a rayon pool; its best shard here is 1,000 subscribers (``--seed-shard``, several
  may be given: 25000 is its own default shard). It writes per-shard files, then a
  bundle copy of the day (``cdr_DAY.csv[.gz]``): bytes are counted for one copy (the
  bundle); the copy's cost is part of its run. Rows: its ``summary.json`` totals.
- cdrexp: a fresh ``python`` (``--cdrexp-python``, default ROOT/.venv/bin/python) with
  ``PYTHONPATH=ROOT`` running ``cdrexp.generation.generate()`` on a ``GeneratorConfig``
  (subs, days 1, start, seed 42, workers, ``output.format`` csv or csv_gz at their
  defaults), started in a scratch directory. Not ``python -m cdrexp``: the runner adds
  Hydra composition and MLflow tracking, work the seed does not do. Interpreter start and
  imports are included, as the seed's process start is.

Every run is measured from this process, which makes itself the child subreaper
(``PR_SET_CHILD_SUBREAPER``) so that cdrexp's forkserver and workers, orphaned when the
main process exits, are reparented here and reaped: CPU seconds (user + sys) are the
``RUSAGE_CHILDREN`` difference around the run, i.e. the whole process tree (the seed's
rayon threads, cdrexp's forkserver and workers). Peak PSS and RSS are the sums over the
tree sampled every 50 ms (``cdrexp.parallel.memory.TreeMemorySampler`` of this checkout).
Wall time is the parent's clock from start to the main process's exit.

Rounds: for each subscriber count, each round runs every variant (every side x format)
once, in an order rotated by one each round; the load average (1 min) is read before and
after every round. Output goes to a scratch directory under ``--out`` (``/dev/shm``, a
tmpfs, for CPU-bound figures: nothing waits for a disk) and is removed after every run.
Printed per variant: median (min-max) wall s and CPU s, CPU microseconds per subscriber,
rows, rows per subscriber, MB of CDR files (one copy), peak tree PSS / RSS, compression;
then per format, every cdrexp side / every seed variant, medians of the per-round ratios
of CPU s per subscriber, wall, and CPU s per row; with several cdrexp sides, each
against the first as well.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
from cdrexp.ab._reap import reap_all, set_subreaper  # noqa: E402  (a script, not a module)
from cdrexp.parallel.memory import TreeMemorySampler  # noqa: E402

SEED_COMMIT = "894091e"
SEED_GZIP = "zlib level 6 (flate2 1.0.25, miniz_oxide)"
# cdrexp's run: a file, not -c (the workers' start method re-imports __main__)
RUN = """
import json, sys, time
from cdrexp.config import GeneratorConfig, OutputConfig
from cdrexp.generation import generate
if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    cfg = GeneratorConfig(subs=a["subs"], days=1, start=a["start"], seed=42,
                          workers=a["workers"], out=a["out"],
                          output=OutputConfig(format=a["format"]))
    out = cfg.output
    level = out.level() if callable(getattr(out, "level", None)) else out.compression_level
    comp = "none" if a["format"] == "csv" else f"{out.gzip_backend} level {level}"
    t0 = time.perf_counter()
    stats = generate(cfg)
    print(json.dumps({"inner_s": time.perf_counter() - t0, "rows": stats.rows,
                      "compression": comp}))
"""
GZIP_MAGIC = b"\x1f\x8b"


def children_cpu() -> tuple[float, float]:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime, u.ru_stime


def measure(cmd: list[str], env: dict, cwd: str) -> dict:
    """Run ``cmd``; wall to its exit, CPU of its whole tree, peak tree PSS/RSS."""
    u0, s0 = children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with TreeMemorySampler(pid=proc.pid, interval=0.05) as mem:
        stdout, stderr = proc.communicate()
        wall = time.perf_counter() - t0
    reap_all()                      # the tree's orphans (cdrexp's forkserver)
    u1, s1 = children_cpu()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{stdout[-1500:]}\n{stderr[-1500:]}")
    return {"wall_s": wall, "user_s": u1 - u0, "sys_s": s1 - s0, "cpu_s": u1 - u0 + s1 - s0,
            "peak_pss": mem.peak_pss, "peak_rss": mem.peak_rss, "stdout": stdout}


def cdr_files(top: str) -> tuple[int, int, list[str]]:
    """(bytes of every file, bytes of the CDR files, the CDR files) under ``top``. The
    seed's per-shard parts (``DAY/cdr_DAY_shardNNN_partNNN.*``) are left out of the CDR
    figure: its bundle ``cdr_DAY.*`` holds the same bytes again."""
    total = cdr = 0
    files = []
    for root, _dirs, names in os.walk(top):
        for n in names:
            p = os.path.join(root, n)
            size = os.path.getsize(p)
            total += size
            if n.startswith("cdr_") and n.endswith((".csv", ".csv.gz")) and "_shard" not in n:
                cdr += size
                files.append(p)
    return total, cdr, sorted(files)


def check_format(files: list[str], gzip_expected: bool) -> None:
    if not files:
        raise RuntimeError("no CDR file was written")
    for p in files:
        with open(p, "rb") as fh:
            magic = fh.read(2)
        if (magic == GZIP_MAGIC) != gzip_expected or p.endswith(".gz") != gzip_expected:
            raise RuntimeError(f"{p}: first bytes {magic.hex()}, expected "
                               f"{'gzip' if gzip_expected else 'plain CSV'}")


def seed_rows(out: str) -> int:
    rows = 0
    for day in os.listdir(out):
        summary = os.path.join(out, day, "summary.json")
        if os.path.isfile(summary):
            with open(summary) as fh:
                s = json.load(fh)
            rows += s["total_calls"] + s["total_sms"] + s["total_data"]
    return rows


def git_label(root: str) -> str:
    def git(*a):
        return subprocess.run(["git", "-C", root, *a], capture_output=True,
                              text=True).stdout.strip()
    sha = git("rev-parse", "--short=7", "HEAD") or "?"
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return f"{branch}@{sha}{dirty}" if branch and branch != "HEAD" else f"{sha}{dirty}"


class Variant:
    def __init__(self, name: str, kind: str, fmt: str, **kw):
        self.name, self.kind, self.fmt = name, kind, fmt
        self.__dict__.update(kw)


def run_variant(v: Variant, args, subs: int, scratch: str, script: str) -> dict:
    out = os.path.join(scratch, "out")
    if v.kind == "seed":
        shards = max(1, subs // v.shard)
        cmd = [v.bin, "--subs", str(subs), "--workers", str(shards), "--days", "1",
               "--start", args.start, "--seed", "42", "--out", out]
        env = {**os.environ, "RAYON_NUM_THREADS": str(args.workers)}
        r = measure(cmd, env, scratch)
        r["rows"] = seed_rows(out)
        r["compression"] = "none" if v.fmt == "csv" else SEED_GZIP
    else:
        arg = json.dumps({"subs": subs, "start": args.start, "workers": args.workers,
                          "out": out, "format": v.fmt})
        env = {**os.environ, "PYTHONPATH": v.root}
        r = measure([v.python, script, arg], env, scratch)
        res = json.loads(r["stdout"].strip().splitlines()[-1])
        r.update(rows=res["rows"], inner_s=res["inner_s"], compression=res["compression"])
    del r["stdout"]
    r["disk_bytes"], r["cdr_bytes"], files = cdr_files(out)
    check_format(files, v.fmt == "csv_gz")
    shutil.rmtree(out)
    return r


def _med(rs: list[dict], key: str) -> tuple[float, float, float]:
    values = [r[key] for r in rs]
    return statistics.median(values), min(values), max(values)


def _ratio_line(label: str, a: list[dict], b: list[dict]) -> tuple[str, dict]:
    """Medians (min-max) of per-round ratios a/b: CPU per subscriber, wall, CPU per row."""
    cpu = [x["cpu_s"] / y["cpu_s"] for x, y in zip(a, b)]
    wall = [x["wall_s"] / y["wall_s"] for x, y in zip(a, b)]
    row = [(x["cpu_s"] / x["rows"]) / (y["cpu_s"] / y["rows"]) for x, y in zip(a, b)]
    f = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"  # noqa: E731
    return (f"  {label:44s} CPU-s/sub {f(cpu)}  wall {f(wall)}  CPU-s/row {f(row)}",
            {"cpu_per_sub": cpu, "wall": wall, "cpu_per_row": row})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-build", default="/work/rust-seed-build", metavar="DIR",
                    help="DEST of build_rust_seed.sh (its bin/ holds both binaries)")
    ap.add_argument("--seed-bin", metavar="PATH", help="the seed (gzip); default "
                    "SEED_BUILD/bin/rs_cdr_generator")
    ap.add_argument("--seed-plain-bin", metavar="PATH", help="its plain-CSV variant; "
                    "default SEED_BUILD/bin/rs_cdr_generator_plain")
    ap.add_argument("--seed-shard", type=int, nargs="+", default=[1000], metavar="SUBS",
                    help="subscribers per seed shard (its --workers = N/SHARD); "
                         "1000 is its best here, 25000 its default")
    ap.add_argument("--cdrexp-root", action="append", metavar="PATH",
                    help="a cdrexp checkout to measure (repeat for several; default this one)")
    ap.add_argument("--cdrexp-python", action="append", metavar="PATH",
                    help="its python, in the order of --cdrexp-root (default "
                         "ROOT/.venv/bin/python, else this interpreter)")
    ap.add_argument("--subs", type=int, nargs="+", default=[200_000])
    ap.add_argument("--formats", nargs="+", default=["csv", "csv_gz"],
                    choices=["csv", "csv_gz"])
    ap.add_argument("--workers", type=int, default=2,
                    help="cdrexp's workers and the seed's rayon threads")
    ap.add_argument("--start", default="2025-01-01", help="the day, YYYY-MM-DD")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (>= 3 for a median)")
    ap.add_argument("--no-seed", action="store_true", help="cdrexp sides only")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="parent of the scratch directory (/dev/shm: tmpfs, CPU-bound)")
    ap.add_argument("--json", metavar="FILE", help="also save every figure here")
    args = ap.parse_args(argv)

    def bad(msg: str) -> int:
        print(f"bench_vs_rust: {msg}", file=sys.stderr)
        return 2
    if min(args.subs + args.seed_shard + [args.workers, args.rounds]) < 1:
        return bad("--subs, --seed-shard, --workers and --rounds must be >= 1")
    roots = [os.path.abspath(p) for p in (args.cdrexp_root or [HERE])]
    pythons = list(args.cdrexp_python or [])
    if len(pythons) > len(roots):
        return bad("more --cdrexp-python than --cdrexp-root")
    for root in roots[len(pythons):]:
        venv = os.path.join(root, ".venv", "bin", "python")
        pythons.append(venv if os.path.exists(venv) else sys.executable)
    for root, py in zip(roots, pythons):
        if not os.path.isfile(os.path.join(root, "cdrexp", "generation.py")) and \
                not os.path.isdir(os.path.join(root, "cdrexp", "generation")):
            return bad(f"--cdrexp-root: {root!r} is not a cdrexp checkout")
        if not os.access(py, os.X_OK):
            return bad(f"--cdrexp-python: {py!r} is not executable")
    bins = {"csv": args.seed_plain_bin or os.path.join(args.seed_build, "bin",
                                                        "rs_cdr_generator_plain"),
            "csv_gz": args.seed_bin or os.path.join(args.seed_build, "bin",
                                                    "rs_cdr_generator")}
    if not args.no_seed:
        for fmt in args.formats:
            if not (os.path.isfile(bins[fmt]) and os.access(bins[fmt], os.X_OK)):
                return bad(f"the seed's {fmt} binary {bins[fmt]!r} is not an executable "
                           f"file (build it: benchmarks/build_rust_seed.sh)")

    variants: list[Variant] = []
    labels = []
    for i, (root, py) in enumerate(zip(roots, pythons)):
        label = f"cdrexp {git_label(root)}"
        labels.append(label if label not in labels else f"{label}#{i + 1}")
    for fmt in args.formats:
        if not args.no_seed:
            for shard in args.seed_shard:
                variants.append(Variant(f"seed {SEED_COMMIT}/{shard} {fmt}", "seed", fmt,
                                        bin=bins[fmt], shard=shard))
        for label, root, py in zip(labels, roots, pythons):
            variants.append(Variant(f"{label} {fmt}", "cdrexp", fmt, root=root, python=py))

    set_subreaper()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="bench-vs-rust-", dir=args.out)
    script = os.path.join(scratch, "run_cdrexp.py")
    with open(script, "w") as fh:
        fh.write(RUN)
    load0 = os.getloadavg()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"scratch {scratch}, load average {load0[0]:.2f}/{load0[1]:.2f} (1/5 min) at "
          f"start, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    for label, root, py in zip(labels, roots, pythons):
        print(f"#   {label}: {root} with {py}", flush=True)
    results: dict[int, dict[str, list[dict]]] = {}
    rounds_load: dict[int, list[tuple[float, float]]] = {}
    try:
        for subs in args.subs:
            runs = results[subs] = {v.name: [] for v in variants}
            rounds_load[subs] = []
            for rnd in range(args.rounds):
                k = rnd % len(variants)
                before = os.getloadavg()[0]
                for v in variants[k:] + variants[:k]:
                    r = run_variant(v, args, subs, scratch, script)
                    runs[v.name].append(r)
                    print(f"  {subs:,} round {rnd + 1}/{args.rounds} {v.name:34s} "
                          f"wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
                          f"{r['rows']:>11,} rows  {r['cdr_bytes'] / 1e6:8.1f} MB  "
                          f"pss {r['peak_pss'] / 1e6:6.0f} MB  load "
                          f"{os.getloadavg()[0]:.2f}", flush=True)
                rounds_load[subs].append((before, os.getloadavg()[0]))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load1 = os.getloadavg()

    report = {}
    for subs in args.subs:
        runs = results[subs]
        print(f"\n{subs:,} subscribers x 1 day ({args.start}), {args.workers} workers "
              f"(seed: rayon threads), median (min-max) of {args.rounds} round(s); load "
              f"average per round (1 min, before -> after): " +
              ", ".join(f"{a:.1f}->{b:.1f}" for a, b in rounds_load[subs]))
        print(f"{'variant':34s} {'wall s':>21s} {'CPU s':>21s} {'CPU us/sub':>10s} "
              f"{'rows':>11s} {'rows/sub':>8s} {'CDR MB':>8s} {'PSS MB':>7s} {'RSS MB':>7s}"
              f"  compression")
        for v in variants:
            rs = runs[v.name]
            w, c = _med(rs, "wall_s"), _med(rs, "cpu_s")
            print(f"{v.name:34s} {w[0]:7.2f} ({w[1]:5.2f}-{w[2]:6.2f}) "
                  f"{c[0]:7.2f} ({c[1]:5.2f}-{c[2]:6.2f}) {c[0] / subs * 1e6:>10.1f} "
                  f"{_med(rs, 'rows')[0]:>11,.0f} {_med(rs, 'rows')[0] / subs:>8.2f} "
                  f"{_med(rs, 'cdr_bytes')[0] / 1e6:>8,.1f} "
                  f"{_med(rs, 'peak_pss')[0] / 1e6:>7,.0f} "
                  f"{_med(rs, 'peak_rss')[0] / 1e6:>7,.0f}  {rs[0]['compression']}")
        print("ratios, medians (min-max) of per-round ratios:")
        report[subs] = {}
        for fmt in args.formats:
            mine = [v for v in variants if v.kind == "cdrexp" and v.fmt == fmt]
            seeds = [v for v in variants if v.kind == "seed" and v.fmt == fmt]
            for m in mine:
                for s in seeds + mine[:1] * (m is not mine[0]):
                    line, data = _ratio_line(f"{m.name} / {s.name}", runs[m.name],
                                             runs[s.name])
                    print(line)
                    report[subs][f"{m.name} / {s.name}"] = data
    print(f"load average (1/5 min): {load0[0]:.2f}/{load0[1]:.2f} at start, "
          f"{load1[0]:.2f}/{load1[1]:.2f} at end")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "variants": [v.__dict__ for v in variants],
                       "runs": {str(k): v for k, v in results.items()},
                       "ratios": {str(k): v for k, v in report.items()},
                       "rounds_load": {str(k): v for k, v in rounds_load.items()},
                       "load_average": [load0, load1]}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
