"""csv and csv_gz side by side, against a baseline checkout, and the gzip codecs per level.

Not a test: a script that measures and prints (issue 11).

    python benchmarks/bench_csv_gzip.py --baseline /tmp/base          # 200k and 1M, 3 rounds
    python benchmarks/bench_csv_gzip.py --subs 200000 --runs 5 --no-levels
    python benchmarks/bench_csv_gzip.py --json csv_gzip.json

1. Codecs per level: one unit's CSV text (``--level-subs`` subscribers, formatted as the
   writer does, in its ~6 MB slices) compressed by every gzip backend at every level, one
   thread: MB/s of text per CPU second (median of 3) and ratio (text / gzip bytes).
2. End to end: every measured run is a fresh ``python`` process running ``generate()``
   (workers ``--workers``), in rounds: each round runs, for every subscriber count, csv,
   then csv_gz (defaults), then csv of the ``--baseline`` checkout (its ``cdrexp`` first on
   PYTHONPATH) at the largest count, so the variants share the machine's load. Tables:
   median (min-max) wall s, subscribers/s, MB/s of CSV text (uncompressed) per wall
   second, bytes on disk.
3. Bytes of zlib level 6 for the same rows: one csv_gz run with gzip_backend=zlib,
   compression_level=6 at the smallest count (deterministic: its bytes do not vary).

Targets (issue 11): csv_gz wall <= 1.5x csv wall (same round); csv_gz bytes at the
default level <= 1.15x zlib level 6's; csv at 1M >= 1.5x the baseline's throughput.
The load average is printed with every round: on a shared machine, wall times measure the
machine as much as the code.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RUN = """
import json, shutil, sys, time
from cdrexp.config import GeneratorConfig, OutputConfig
from cdrexp.generation import generate
if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    cfg = GeneratorConfig(subs=a["subs"], workers=a["workers"], out=a["out"],
                          start="2025-01-06", output=OutputConfig(**a["output"]))
    t0 = time.perf_counter()
    stats = generate(cfg)
    wall = time.perf_counter() - t0
    shutil.rmtree(a["out"], ignore_errors=True)
    print(json.dumps({"wall_s": wall, "rows": stats.rows, "bytes": stats.bytes_written}))
"""
TARGET_GZ_WALL = 1.5
TARGET_BYTES_VS_ZLIB6 = 1.15
TARGET_SPEEDUP = 1.5


def one_run(pythonpath: str, subs: int, workers: int, output: dict, scratch: str) -> dict:
    out = tempfile.mkdtemp(prefix="run-", dir=scratch)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    arg = json.dumps({"subs": subs, "workers": workers, "out": out, "output": output})
    with tempfile.NamedTemporaryFile("w", suffix=".py", dir=scratch, delete=False) as fh:
        fh.write(RUN)       # a file, not -c: the workers' start method re-imports __main__
    try:
        # cwd: the scratch directory, never a checkout: a revision older than cdrexp's
        # forkserver fix would start its workers with the current directory's cdrexp
        proc = subprocess.run([sys.executable, fh.name, arg], env=env, capture_output=True,
                              text=True, cwd=scratch)
    finally:
        os.unlink(fh.name)
    if proc.returncode != 0:
        raise RuntimeError(f"run {output} subs={subs} with PYTHONPATH={pythonpath} failed:"
                           f"\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def codec_levels(subs: int) -> tuple[list[dict], int]:
    """(rows of the per-level table, text bytes) on one unit's CSV text."""
    from cdrexp.config import COMPRESSION_LEVELS, GeneratorConfig, ModelConfig
    from cdrexp.model import build_population, generate_unit, plan_units
    from cdrexp.writers._csv import BATCH_ROWS, gzip_compressor
    from cdrexp.writers._csv_text import format_csv

    cfg = GeneratorConfig(subs=subs, start="2025-01-06", out=tempfile.gettempdir(),
                          model=ModelConfig(chunk_size=subs))
    table = generate_unit(cfg, build_population(cfg), plan_units(cfg)[0])
    slices = [format_csv(table.slice(i, BATCH_ROWS))
              for i in range(0, table.num_rows, BATCH_ROWS)]
    text = sum(s.size for s in slices)
    rows = []
    for (fmt, backend), (low, high, default) in COMPRESSION_LEVELS.items():
        if fmt != "csv_gz":
            continue
        for level in range(low, high + 1):
            compress = gzip_compressor(backend, level)
            secs = []
            for _ in range(3):
                c0 = time.process_time()
                size = sum(len(compress(s)) for s in slices)
                secs.append(time.process_time() - c0)
            rows.append({"backend": backend, "level": level, "default": level == default,
                         "mb_s": text / 1e6 / statistics.median(secs),
                         "ratio": text / size, "bytes": size})
    return rows, text


def print_levels(rows: list[dict], text: int) -> None:
    z6 = next(r for r in rows if r["backend"] == "zlib" and r["level"] == 6)
    print(f"\ngzip codecs, one thread, {text / 1e6:.0f} MB of CSV text in ~6 MB slices "
          "(median of 3):")
    print(f"{'backend':10s} {'level':>5s} {'MB/s':>7s} {'ratio':>6s} {'bytes/zlib6':>11s}"
          f" {'speed/zlib6':>11s}")
    for r in rows:
        mark = "  <- default" if r["default"] and r["backend"] == "isal" else ""
        print(f"{r['backend']:10s} {r['level']:>5d} {r['mb_s']:>7,.0f} {r['ratio']:>6.2f} "
              f"{r['bytes'] / z6['bytes']:>11.3f} {r['mb_s'] / z6['mb_s']:>11.1f}{mark}")


def _med(runs: list[dict], key: str) -> tuple[float, float, float]:
    values = [r[key] for r in runs]
    return statistics.median(values), min(values), max(values)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subs", default="200000,1000000", help="comma-separated counts")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="rounds (>= 3 for a median)")
    ap.add_argument("--baseline", metavar="DIR",
                    help="a checkout to compare csv against at the largest count")
    ap.add_argument("--level-subs", type=int, default=20_000,
                    help="subscribers of the unit whose text the per-level table uses")
    ap.add_argument("--no-levels", action="store_true", help="skip the per-level table")
    ap.add_argument("--no-zlib6", action="store_true", help="skip the zlib level 6 run")
    ap.add_argument("--out", default="bench_out", help="parent of the runs' directories")
    ap.add_argument("--json", metavar="FILE", help="also save every figure here")
    args = ap.parse_args(argv)
    try:
        counts = [int(v) for v in args.subs.split(",")]
    except ValueError:
        print(f"bench_csv_gzip: --subs: not a list of integers: {args.subs!r}",
              file=sys.stderr)
        return 2
    if args.runs < 1 or args.workers < 1 or min(counts) < 1:
        print("bench_csv_gzip: --runs, --workers and --subs must be >= 1", file=sys.stderr)
        return 2
    if args.baseline and not os.path.isdir(os.path.join(args.baseline, "cdrexp")):
        print(f"bench_csv_gzip: --baseline: {args.baseline!r} has no cdrexp/ package",
              file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    scratch = os.path.abspath(tempfile.mkdtemp(prefix="bench-csv-gzip-", dir=args.out))
    load0 = os.getloadavg()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {load0[0]:.2f} at start", file=sys.stderr)
    report: dict = {"args": vars(args), "cpus": os.cpu_count(), "rounds": []}

    if not args.no_levels:
        rows, text = codec_levels(args.level_subs)
        print_levels(rows, text)
        report["levels"] = {"text_bytes": text, "rows": rows}

    variants = [("csv", HERE, {"format": "csv"}), ("csv_gz", HERE, {"format": "csv_gz"})]
    runs: dict[tuple[str, int], list[dict]] = {}
    for rnd in range(args.runs):
        for subs in counts:
            plan = list(variants)
            if args.baseline and subs == max(counts):
                plan.append(("csv@baseline", args.baseline, {"format": "csv"}))
            for name, path, output in plan:
                r = one_run(path, subs, args.workers, output, scratch)
                r["load1"] = os.getloadavg()[0]
                r["subs_s"] = subs / r["wall_s"]
                runs.setdefault((name, subs), []).append(r)
                print(f"  round {rnd + 1}/{args.runs} {name:13s} subs={subs:>9,}: "
                      f"{r['wall_s']:6.2f} s, {r['bytes'] / 1e6:8.1f} MB, "
                      f"load {r['load1']:.2f}", file=sys.stderr)
    # csv text bytes are the csv run's bytes: the same rows (deterministic generator)
    text_bytes = {subs: runs[("csv", subs)][0]["bytes"] for subs in counts}
    for (name, subs), rs in runs.items():
        for r in rs:
            r["text_mb_s"] = text_bytes[subs] / 1e6 / r["wall_s"]

    zlib6 = None
    if not args.no_zlib6:
        zlib6 = one_run(HERE, min(counts), args.workers,
                        {"format": "csv_gz", "gzip_backend": "zlib",
                         "compression_level": 6}, scratch)
    load1 = os.getloadavg()
    os.rmdir(scratch)
    try:
        os.rmdir(args.out)      # only if empty: never someone else's files
    except OSError:
        pass

    print(f"\n{args.workers} workers, 1 day, median (min-max) of {args.runs} rounds; "
          f"load average {load0[0]:.2f} -> {load1[0]:.2f} (1 min), "
          f"{load0[1]:.2f} -> {load1[1]:.2f} (5 min)")
    print(f"{'variant':13s} {'subs':>10s} {'wall s':>22s} {'subs/s':>9s} "
          f"{'text MB/s':>10s} {'MB on disk':>10s} {'ratio':>6s}")
    for (name, subs), rs in runs.items():
        w, lo, hi = _med(rs, "wall_s")
        print(f"{name:13s} {subs:>10,} {w:>8.2f} ({lo:6.2f}-{hi:6.2f}) "
              f"{_med(rs, 'subs_s')[0]:>9,.0f} {_med(rs, 'text_mb_s')[0]:>10,.0f} "
              f"{rs[0]['bytes'] / 1e6:>10,.1f} {text_bytes[subs] / rs[0]['bytes']:>6.2f}")
    print("\ntargets:")
    for subs in counts:
        gz = [g["wall_s"] / c["wall_s"] for g, c in zip(runs[("csv_gz", subs)],
                                                       runs[("csv", subs)])]
        m = statistics.median(gz)
        print(f"  subs={subs:>9,}: csv_gz wall / csv wall, same round: {m:.2f} "
              f"({min(gz):.2f}-{max(gz):.2f}); target <= {TARGET_GZ_WALL}: "
              f"{'OK' if m <= TARGET_GZ_WALL else 'MISSED'}")
    if zlib6 is not None:
        subs = min(counts)
        ratio = runs[("csv_gz", subs)][0]["bytes"] / zlib6["bytes"]
        print(f"  subs={subs:>9,}: csv_gz bytes / zlib level 6 bytes, same rows: {ratio:.3f}"
              f" ({zlib6['wall_s']:.1f} s for the zlib run); target <= "
              f"{TARGET_BYTES_VS_ZLIB6}: {'OK' if ratio <= TARGET_BYTES_VS_ZLIB6 else 'MISSED'}")
        report["zlib6"] = zlib6
    if args.baseline:
        subs = max(counts)
        sp = [b["wall_s"] / c["wall_s"] for c, b in zip(runs[("csv", subs)],
                                                       runs[("csv@baseline", subs)])]
        m = statistics.median(sp)
        print(f"  subs={subs:>9,}: csv throughput / baseline's, same round: {m:.2f} "
              f"({min(sp):.2f}-{max(sp):.2f}); target >= {TARGET_SPEEDUP}: "
              f"{'OK' if m >= TARGET_SPEEDUP else 'MISSED'}")
    if args.json:
        report["runs"] = [{"variant": n, "subs": s, "runs": rs}
                          for (n, s), rs in runs.items()]
        report["load_average"] = [load0, load1]
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
