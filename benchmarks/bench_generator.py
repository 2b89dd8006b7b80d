"""Generator benchmark: throughput, phase times and peak memory of ``generate()``.

Not a test: a script that measures and prints. Each configuration runs ``--warmup``
unmeasured times, then ``--runs`` measured times; the table shows the median (min-max).
Every run writes into a fresh temporary directory under ``--out`` that is deleted after
the run.

    python benchmarks/bench_generator.py                         # issue 2: 100k subs, 1 worker
    python benchmarks/bench_generator.py --formats csv --subs 200000 --workers 2
    python benchmarks/bench_generator.py --scaling               # issue 3: 10k/100k/1M x w1/w2
    python benchmarks/bench_generator.py --scaling --include-10m --runs 1 --warmup 0
    python benchmarks/bench_generator.py --json bench.json

Definitions: subscribers/s = subs x days / wall time (subscriber-days per second);
records/s = rows / wall; MB/s = bytes on disk (10^6) / wall; phase times are busy seconds
summed over units and threads (see cdrexp.generation); cpu s = user + system CPU seconds
of this process (all its threads; not the worker processes of workers > 1), which is
less disturbed than wall time when the machine is shared; peak PSS / RSS are summed
over this process and its children (workers), sampled every 50 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

from cdrexp.config import (OUTPUT_FORMATS, ConfigError, GeneratorConfig, ModelConfig,
                           OutputConfig, validate)
from cdrexp.generation import generate
from cdrexp.parallel.memory import TreeMemorySampler

# (format, workers, subs) -> minimum subscribers/s, from issues 2 and 3
TARGETS_SUBS_S = {
    ("none", 1, 100_000): 150_000, ("csv", 1, 100_000): 30_000,
    ("parquet", 1, 100_000): 60_000,
    ("none", 2, 1_000_000): 250_000, ("csv", 2, 1_000_000): 50_000,
}
TARGET_SPEEDUP_NONE = 1.8         # workers 2 vs 1, generation alone
TARGET_FLAT = 0.15                # throughput at 1M within 15 % of 100k
TARGET_10M_PSS = 1.5e9            # 10M subs, csv, workers=2: peak PSS sum
METRICS = ("wall_s", "subs_s", "records_s", "mb_s", "population_s", "generation_s",
           "formatting_s", "writing_s", "peak_pss", "peak_rss", "cpu_s")


@dataclass
class Result:
    fmt: str
    subs: int
    workers: int
    runs: list[dict] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)

    def spread(self, key: str) -> tuple[float, float]:
        values = [r[key] for r in self.runs]
        return min(values), max(values)

    def as_dict(self) -> dict:
        return {"format": self.fmt, "subs": self.subs, "workers": self.workers,
                "runs": self.runs,
                "median": {k: self.median(k) for k in METRICS},
                "min": {k: self.spread(k)[0] for k in METRICS},
                "max": {k: self.spread(k)[1] for k in METRICS}}


def one_run(args, fmt: str, subs: int, workers: int) -> dict:
    os.makedirs(args.out, exist_ok=True)
    out = tempfile.mkdtemp(prefix=f"run-{fmt}-{subs}-w{workers}-", dir=args.out)
    cfg = GeneratorConfig(subs=subs, days=args.days, start=args.start, seed=args.seed,
                          workers=workers, out=out,
                          model=ModelConfig(chunk_size=args.chunk_size),
                          output=OutputConfig(format=fmt))
    pinned = _pin_writer_threads(args.writer_threads)
    try:
        with TreeMemorySampler(interval=0.05) as mem:
            c0 = os.times()
            t0 = time.perf_counter()
            stats = generate(cfg)
            wall = time.perf_counter() - t0
            c1 = os.times()
    finally:
        shutil.rmtree(out, ignore_errors=True)
        pinned()
    return {"wall_s": wall, "subs_s": subs * args.days / wall,
            "records_s": stats.rows / wall, "mb_s": stats.bytes_written / 1e6 / wall,
            "rows": stats.rows, "bytes": stats.bytes_written, "files": stats.files,
            "population_s": stats.population_s, "generation_s": stats.generation_s,
            "formatting_s": stats.formatting_s, "writing_s": stats.writing_s,
            "peak_pss": mem.peak_pss, "peak_rss": mem.peak_rss,
            # this process only (all its threads); workers of workers > 1 not included
            "cpu_s": (c1.user - c0.user) + (c1.system - c0.system)}


def _pin_writer_threads(threads: int | None):
    """A/B switch for the CSV writer's threads (in-process runs only: run_unit looks
    ``cdrexp.writers.writer_threads`` up at each call). Returns the undo function."""
    import cdrexp.writers as writers

    if not threads:
        return lambda: None
    original = writers.writer_threads
    writers.writer_threads = lambda workers: threads

    def undo():
        writers.writer_threads = original
    return undo


def measure(args, fmt: str, subs: int, workers: int) -> Result:
    for _ in range(args.warmup):
        one_run(args, fmt, subs, workers)
    res = Result(fmt, subs, workers)
    for i in range(args.runs):
        res.runs.append(one_run(args, fmt, subs, workers))
        r = res.runs[-1]
        print(f"  {fmt:8s} subs={subs:>9,} w={workers} run {i + 1}/{args.runs}: "
              f"{r['wall_s']:.2f} s, {r['subs_s']:,.0f} subs/s", file=sys.stderr)
    return res


def _target(res: Result) -> str:
    t = TARGETS_SUBS_S.get((res.fmt, res.workers, res.subs))
    if t is None:
        return ""
    got = res.median("subs_s")
    return f">= {t:,} {'OK' if got >= t else 'MISSED'}"


def _fmt(v: float, unit: str = "") -> str:
    if unit == "MB":
        return f"{v / 1e6:,.0f}"
    return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"


def print_table(results: list[Result]) -> None:
    head = (f"{'format':8s} {'subs':>10s} {'w':>2s} {'subs/s (min-max)':>28s} "
            f"{'records/s':>11s} {'MB/s':>6s} {'pop s':>6s} {'gen s':>6s} {'fmt s':>6s} "
            f"{'write s':>7s} {'cpu s':>6s} {'PSS MB':>7s} {'RSS MB':>7s}  target subs/s")
    print(head)
    print("-" * len(head))
    for r in results:
        lo, hi = r.spread("subs_s")
        print(f"{r.fmt:8s} {r.subs:>10,} {r.workers:>2d} "
              f"{r.median('subs_s'):>11,.0f} ({lo:>7,.0f}-{hi:>7,.0f}) "
              f"{r.median('records_s'):>11,.0f} {r.median('mb_s'):>6,.0f} "
              f"{r.median('population_s'):>6.2f} {r.median('generation_s'):>6.2f} "
              f"{r.median('formatting_s'):>6.2f} {r.median('writing_s'):>7.2f} "
              f"{r.median('cpu_s'):>6.2f} "
              f"{r.median('peak_pss') / 1e6:>7,.0f} {r.median('peak_rss') / 1e6:>7,.0f}  "
              f"{_target(r)}")


def print_scaling(results: list[Result]) -> None:
    by = {(r.fmt, r.subs, r.workers): r for r in results}
    print("\nscaling: speedup workers 2 vs 1, and flatness (throughput vs 100k)")
    for (fmt, subs, w), r in sorted(by.items()):
        if w != 2 or (fmt, subs, 1) not in by:
            continue
        sp = r.median("subs_s") / by[(fmt, subs, 1)].median("subs_s")
        tgt = f"  target >= {TARGET_SPEEDUP_NONE} {'OK' if sp >= TARGET_SPEEDUP_NONE else 'MISSED'}" \
            if fmt == "none" else ""
        print(f"  {fmt:8s} subs={subs:>10,}  speedup w2/w1 = {sp:.2f}{tgt}")
    for (fmt, subs, w), r in sorted(by.items()):
        base = by.get((fmt, 100_000, w))
        if subs != 1_000_000 or base is None:
            continue
        change = r.median("subs_s") / base.median("subs_s") - 1
        ok = "OK" if change >= -TARGET_FLAT else "MISSED"
        print(f"  {fmt:8s} w={w}  1M vs 100k: {change:+.1%}  "
              f"(target within -{TARGET_FLAT:.0%}: {ok})")
    r10 = by.get(("csv", 10_000_000, 2))
    if r10:
        pss = r10.median("peak_pss")
        print(f"  csv 10M w=2: peak PSS sum {pss / 1e9:.2f} GB (target <= 1.5 GB: "
              f"{'OK' if pss <= TARGET_10M_PSS else 'MISSED'})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--formats", default=None,
                    help="comma-separated, from " + ",".join(OUTPUT_FORMATS)
                    + " (default none,csv,csv_gz,parquet; none,csv with --scaling)")
    ap.add_argument("--subs", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="measured runs per configuration")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs first")
    ap.add_argument("--start", default="2025-01-06")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--chunk-size", type=int, default=ModelConfig().chunk_size)
    ap.add_argument("--out", default="bench_out", help="parent of the runs' temporary dirs")
    ap.add_argument("--scaling", action="store_true",
                    help="subs 10k, 100k, 1M x workers 1 and 2")
    ap.add_argument("--include-10m", action="store_true", help="with --scaling: add 10M")
    ap.add_argument("--ladder", default="10000,100000,1000000",
                    help="with --scaling: the subscriber counts (default 10k,100k,1M)")
    ap.add_argument("--writer-threads", type=int, default=None, metavar="N",
                    help="force the CSV writer's threads (default: cores // workers); "
                         "workers=1 only, to compare against the default")
    ap.add_argument("--json", metavar="FILE", help="also save the results here")
    args = ap.parse_args(argv)

    default_formats = "none,csv" if args.scaling else "none,csv,csv_gz,parquet"
    formats = (args.formats or default_formats).split(",")
    if args.scaling:
        try:
            ladder = [int(v) for v in args.ladder.split(",")]
        except ValueError:
            print(f"bench_generator: --ladder: not a list of integers: {args.ladder!r}",
                  file=sys.stderr)
            return 2
        plan = [(f, s, w) for s in ladder + ([10_000_000] if args.include_10m else [])
                for w in (1, 2) for f in formats]
    else:
        plan = [(f, args.subs, args.workers) for f in formats]
    try:
        for fmt, subs, workers in plan:
            if fmt not in OUTPUT_FORMATS:
                raise ConfigError(f"--formats: unknown format {fmt!r}")
            validate(GeneratorConfig(subs=subs, days=args.days, start=args.start,
                                     seed=args.seed, workers=workers, out=args.out,
                                     model=ModelConfig(chunk_size=args.chunk_size),
                                     output=OutputConfig(format=fmt)))
        if args.runs < 1 or args.warmup < 0:
            raise ConfigError("--runs must be >= 1 and --warmup >= 0")
        if args.writer_threads is not None and (
                args.writer_threads < 1 or args.scaling or args.workers != 1):
            raise ConfigError("--writer-threads: needs a value >= 1, --workers 1 and no "
                              "--scaling (worker processes do not see it)")
    except ConfigError as exc:
        print(f"bench_generator: {exc}", file=sys.stderr)
        return 2

    load0 = os.getloadavg()
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()},"
          f" load average {load0[0]:.2f} at start (the machine may be shared: a load above"
          f" 0 means other work ran alongside)", file=sys.stderr)
    results = [measure(args, f, s, w) for f, s, w in plan]
    try:
        os.rmdir(args.out)      # only if empty: never someone else's files
    except OSError:
        pass
    load1 = os.getloadavg()
    threads = f", writer threads forced to {args.writer_threads}" if args.writer_threads \
        else ""
    print(f"\n{args.days} day(s), chunk_size {args.chunk_size}, median of {args.runs} "
          f"run(s) after {args.warmup} warm-up{threads}; load average {load0[0]:.2f} -> "
          f"{load1[0]:.2f}")
    print_table(results)
    if args.scaling:
        print_scaling(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "cpus": os.cpu_count(),
                       "load_average": [load0, load1],
                       "results": [r.as_dict() for r in results]}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
