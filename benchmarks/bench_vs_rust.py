"""The Rust seed and cdrexp side by side: plain CSV and gzip CSV, in one run, alternating.

Not a test: a script that measures and prints.

    python benchmarks/bench_vs_rust.py --rust-bin /tmp/rs_seed/target/release/rs_cdr_generator
    python benchmarks/bench_vs_rust.py --rust-bin BIN --subs 20000 --rounds 1     # smoke test

The Rust seed is the public repository whetherharder/rs_cdr_generator (a Cargo project,
binary ``rs_cdr_generator``). None of its code is in this repository and none may be:
clone it outside this checkout, build its release binary there with its own Cargo
setup, and pass that binary's path as ``--rust-bin``. Its current CLI has two
subcommands; this script uses them as follows.

- ``generate-subscribers --size SUBS --output DB --seed 42``: its subscriber database
  (redb). Built once per invocation, before the rounds, and timed on its own (printed,
  not part of the ratios): cdrexp builds its population inside every run instead.
  ``--rust-db PATH`` uses a database made beforehand instead (copied, never changed).
- ``generate-cdr --subscriber-db DB --start START --days DAYS --workers WORKERS --out DIR
  --config YAML``: the measured runs. Plain CSV vs gzip CSV and the shard size are not
  flags there but YAML keys: ``compression_type: none`` or ``gzip``, and ``chunk_size``
  (subscribers per chunk, ``--shard-size`` here; the seed's default is 25,000).

Every measured run is a fresh process: the Rust binary, or ``python`` running
``cdrexp.generation.generate()`` on this checkout (PYTHONPATH), ``output.format`` csv or
csv_gz, the same ``--subs``, ``--days``, ``--start`` and ``--workers``. Each round runs
the four variants in an order rotated by one every round, so none is always first or
last. Wall seconds are the parent's clock around the whole process (cdrexp's include the
interpreter start and imports; its in-process ``generate()`` wall is shown too). Every
run's output directory is made under a temporary directory and removed right after it is
measured (GBs at 200k subscribers); the temporary directory is removed at the end.

Printed: per variant median (min-max) wall seconds, subscribers/s, rows, rows/s, MB of
CDR files (the Rust seed's combined ``cdr_DAY.csv[.gz]``; it also leaves per-shard
copies of the same bytes, counted in the last column) and MB on disk in all; then, for
csv and for gzip, the speed of cdrexp relative to the Rust seed taken within each round
(Rust wall / cdrexp wall, median of the per-round ratios), and the load average at the
start and end of every round.

The ratio is a speed ratio only when both did comparable work: the script prints rows
per subscriber-day of both, the rows/s ratio too, and says so when the rows per
subscriber-day differ by more than 25 %. Check this before quoting a ratio: the seed's
current ``generate-cdr`` looks subscriber i up under the MSISDN ``prefix[i % 4] * 10^7 +
i``, while ``generate-subscribers`` draws its MSISDNs at random, so with that database
almost no subscriber is found (about 0.015 rows per subscriber at 20k, 0.1 at 200k,
against ~20 for cdrexp) and the Rust runs measure almost nothing. A database whose
MSISDNs follow that arithmetic (the same identities and histories, MSISDNs renumbered;
made with the seed's own library, outside this repository) given as ``--rust-db`` makes
it write all subscribers: ~23 rows per subscriber-day (it writes both legs of on-net
calls), so there compare rows/s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_csv_gzip import HERE, _med  # noqa: E402  (the house helpers: repo root, median)

# cdrexp's run: a file, not -c (the workers' start method re-imports __main__). It leaves
# its output for the parent to measure on disk and remove.
RUN = """
import json, sys, time
from cdrexp.config import GeneratorConfig, OutputConfig
from cdrexp.generation import generate
if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    cfg = GeneratorConfig(subs=a["subs"], days=a["days"], start=a["start"],
                          workers=a["workers"], out=a["out"],
                          output=OutputConfig(format=a["format"]))
    t0 = time.perf_counter()
    stats = generate(cfg)
    print(json.dumps({"inner_s": time.perf_counter() - t0, "rows": stats.rows}))
"""
VARIANTS = [("rust csv", "rust", "none"), ("rust csv_gz", "rust", "gzip"),
            ("cdrexp csv", "cdrexp", "csv"), ("cdrexp csv_gz", "cdrexp", "csv_gz")]
PARITY = 0.25       # rows per subscriber-day may differ this much for a ratio to count
GZIP_MAGIC = b"\x1f\x8b"


def disk_bytes(top: str) -> tuple[int, int, list[str]]:
    """(bytes of every file, bytes of the CDR files, the CDR files) under ``top``.

    CDR files: ``cdr_*.csv`` / ``cdr_*.csv.gz`` files; the Rust seed's per-shard parts
    (``DAY/cdr_DAY_shardNNN_partNNN.*``) are left out of the second figure, since its
    combined ``cdr_DAY.*`` in ``top`` holds the same bytes again.
    """
    total = cdr = 0
    files = []
    for root, _dirs, names in os.walk(top):
        for n in names:
            p = os.path.join(root, n)
            size = os.path.getsize(p)
            total += size
            if n.startswith("cdr_") and (n.endswith(".csv") or n.endswith(".csv.gz")) \
                    and "_shard" not in n:
                cdr += size
                files.append(p)
    return total, cdr, sorted(files)


def check_format(files: list[str], gzip_expected: bool) -> str:
    """One line on what the CDR files really are; raises if it is not what was asked."""
    if not files:
        raise RuntimeError("no CDR file was written")
    for p in files:
        with open(p, "rb") as fh:
            magic = fh.read(2)
        is_gz = magic == GZIP_MAGIC
        if is_gz != gzip_expected or p.endswith(".gz") != gzip_expected:
            raise RuntimeError(f"{p}: magic {magic.hex()}, expected "
                               f"{'gzip' if gzip_expected else 'plain CSV'}")
    return (f"{len(files)} file(s), e.g. {os.path.basename(files[0])}, first bytes "
            f"{magic.hex()}: {'gzip' if gzip_expected else 'plain CSV (not gzip)'}")


def rust_run(args, db: str, config: str, out: str) -> dict:
    cmd = [args.rust_bin, "generate-cdr", "--subscriber-db", db, "--start", args.start,
           "--days", str(args.days), "--workers", str(args.workers), "--out", out,
           "--config", config]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    rows = 0
    for day in sorted(os.listdir(out)):
        summary = os.path.join(out, day, "summary.json")
        if os.path.isfile(summary):
            with open(summary) as fh:
                s = json.load(fh)
            rows += s["total_calls"] + s["total_sms"] + s["total_data"]
    loaded = [ln for ln in proc.stdout.splitlines() if ln.startswith("Loaded ")]
    return {"wall_s": wall, "rows": rows, "loaded": loaded[0] if loaded else "?"}


def cdrexp_run(args, fmt: str, out: str, scratch: str) -> dict:
    arg = json.dumps({"subs": args.subs, "days": args.days, "start": args.start,
                      "workers": args.workers, "out": out, "format": fmt})
    with tempfile.NamedTemporaryFile("w", suffix=".py", dir=scratch, delete=False) as fh:
        fh.write(RUN)
    env = {**os.environ, "PYTHONPATH": HERE}
    try:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, fh.name, arg], env=env, capture_output=True,
                              text=True)
        wall = time.perf_counter() - t0
    finally:
        os.unlink(fh.name)
    if proc.returncode != 0:
        raise RuntimeError(f"cdrexp {fmt} subs={args.subs} failed:\n{proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "inner_s": r["inner_s"], "rows": r["rows"]}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rust-bin", required=True, metavar="PATH",
                    help="release binary of the Rust seed (rs_cdr_generator)")
    ap.add_argument("--subs", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--start", default="2025-01-06", help="first day, YYYY-MM-DD")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="rounds (>= 3 for a median)")
    ap.add_argument("--shard-size", type=int, default=1000,
                    help="the Rust seed's chunk_size (subscribers per chunk)")
    ap.add_argument("--rust-db", metavar="PATH",
                    help="the Rust seed's subscriber database (redb) to use instead of "
                         "building one with generate-subscribers (see above)")
    ap.add_argument("--out", default=None,
                    help="parent of the temporary directory (default: the system's)")
    ap.add_argument("--json", metavar="FILE", help="also save every figure here")
    args = ap.parse_args(argv)
    if min(args.subs, args.days, args.workers, args.rounds, args.shard_size) < 1:
        print("bench_vs_rust: --subs, --days, --workers, --rounds and --shard-size must be"
              " >= 1", file=sys.stderr)
        return 2
    if not (os.path.isfile(args.rust_bin) and os.access(args.rust_bin, os.X_OK)):
        print(f"bench_vs_rust: --rust-bin: {args.rust_bin!r} is not an executable file",
              file=sys.stderr)
        return 2
    version = subprocess.run([args.rust_bin, "--version"], capture_output=True,
                             text=True).stdout.strip()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="bench-vs-rust-", dir=args.out)
    load0 = os.getloadavg()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{version}, load average {load()} (1/5 min) at start", file=sys.stderr)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in VARIANTS}
    rounds_load = []
    formats_seen: dict[str, str] = {}
    try:
        configs = {}
        for comp in ("none", "gzip"):
            configs[comp] = os.path.join(scratch, f"rust-{comp}.yaml")
            with open(configs[comp], "w") as fh:
                fh.write(f"compression_type: {comp}\nchunk_size: {args.shard_size}\n")
        db = os.path.join(scratch, "subscribers.redb")
        if args.rust_db:
            shutil.copyfile(args.rust_db, db)     # the runs open it; keep the original as is
            db_s = None
            db_note = f"given: {args.rust_db}"
        else:
            t0 = time.perf_counter()
            proc = subprocess.run([args.rust_bin, "generate-subscribers", "--size",
                                   str(args.subs), "--output", db, "--seed", "42"],
                                  capture_output=True, text=True)
            db_s = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"generate-subscribers failed:\n{proc.stdout[-1500:]}"
                                   f"\n{proc.stderr[-1500:]}")
            db_note = f"generate-subscribers --size {args.subs:,}, once: {db_s:.2f} s"
        print(f"  rust subscriber database: {db_note} (not in the ratios)", file=sys.stderr)

        for rnd in range(args.rounds):
            k = rnd % len(VARIANTS)
            order = VARIANTS[k:] + VARIANTS[:k]
            l_start = load()
            for name, tool, fmt in order:
                out = os.path.join(scratch, "out")
                if tool == "rust":
                    r = rust_run(args, db, configs[fmt], out)
                else:
                    r = cdrexp_run(args, fmt, out, scratch)
                r["disk_bytes"], r["cdr_bytes"], files = disk_bytes(out)
                if name not in formats_seen:
                    formats_seen[name] = check_format(files, fmt in ("gzip", "csv_gz"))
                shutil.rmtree(out)
                r["subs_s"] = args.subs * args.days / r["wall_s"]
                r["rows_s"] = r["rows"] / r["wall_s"]
                r["load1"] = os.getloadavg()[0]
                runs[name].append(r)
                print(f"  round {rnd + 1}/{args.rounds} {name:14s}: {r['wall_s']:7.2f} s, "
                      f"{r['rows']:>11,} rows, {r['cdr_bytes'] / 1e6:9.1f} MB, "
                      f"load {r['load1']:.2f}", file=sys.stderr)
            rounds_load.append((l_start, load()))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if args.out:
            try:
                os.rmdir(args.out)      # only if empty: never someone else's files
            except OSError:
                pass
    load1 = os.getloadavg()

    print(f"\n{args.subs:,} subscribers, {args.days} day(s) from {args.start}, "
          f"{args.workers} workers, Rust chunk_size {args.shard_size:,}; median (min-max) of "
          f"{args.rounds} round(s); load average {load0[0]:.2f} -> {load1[0]:.2f} (1 min), "
          f"{load0[1]:.2f} -> {load1[1]:.2f} (5 min)")
    print(f"{'variant':14s} {'wall s':>24s} {'subs/s':>9s} {'rows':>11s} {'rows/s':>10s} "
          f"{'CDR MB':>9s} {'disk MB':>9s}")
    for name, rs in runs.items():
        w, lo, hi = _med(rs, "wall_s")
        print(f"{name:14s} {w:>8.2f} ({lo:6.2f}-{hi:7.2f}) {_med(rs, 'subs_s')[0]:>9,.0f} "
              f"{_med(rs, 'rows')[0]:>11,.0f} {_med(rs, 'rows_s')[0]:>10,.0f} "
              f"{_med(rs, 'cdr_bytes')[0] / 1e6:>9,.1f} {_med(rs, 'disk_bytes')[0] / 1e6:>9,.1f}")
    inner = [f"{n} {_med(runs[n], 'inner_s')[0]:.2f} s" for n in runs if n.startswith("cdrexp")]
    print(f"cdrexp generate() wall inside its process (median): {', '.join(inner)}")
    print(f"rust subscriber database ({db_note}); generate-cdr: "
          f"{runs['rust csv'][0]['loaded']}")
    for name, line in formats_seen.items():
        print(f"output check {name:14s}: {line}")
    print("load average (1/5 min) per round, start -> end: " +
          "; ".join(f"{i + 1}: {a} -> {b}" for i, (a, b) in enumerate(rounds_load)))

    print("\ncdrexp speed / Rust seed speed, same round (Rust wall / cdrexp wall):")
    report_ratios = {}
    for label, rust, mine in (("csv", "rust csv", "cdrexp csv"),
                              ("gzip", "rust csv_gz", "cdrexp csv_gz")):
        per_round = [r["wall_s"] / c["wall_s"] for r, c in zip(runs[rust], runs[mine])]
        rows_ratio = [c["rows_s"] / r["rows_s"] if r["rows_s"] else float("inf")
                      for r, c in zip(runs[rust], runs[mine])]
        rps_r = _med(runs[rust], "rows")[0] / (args.subs * args.days)
        rps_c = _med(runs[mine], "rows")[0] / (args.subs * args.days)
        same = rps_r > 0 and abs(rps_c / rps_r - 1) <= PARITY
        m = statistics.median(per_round)
        print(f"  {label:4s}: {m:.2f}x ({min(per_round):.2f}-{max(per_round):.2f}) per "
              f"subscriber; rows/s {statistics.median(rows_ratio):.2f}x; rows per "
              f"subscriber-day Rust {rps_r:.3f}, cdrexp {rps_c:.3f}: "
              + ("comparable work" if same else
                 "NOT comparable work, so neither figure is a speed ratio"))
        report_ratios[label] = {"per_round": per_round, "rows_s_ratio": rows_ratio,
                                "rows_per_sub_day": [rps_r, rps_c], "same_work": same}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "rust_version": version, "db": db_note,
                       "runs": runs, "ratios": report_ratios, "formats": formats_seen,
                       "load_average": [load0, load1], "rounds_load": rounds_load},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
