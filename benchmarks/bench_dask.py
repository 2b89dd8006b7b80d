"""executor=dask (a LocalCluster of N processes) against executor=local (N workers).

    python benchmarks/bench_dask.py                      # 1M subscribers, 2 workers, 3 rounds
    python benchmarks/bench_dask.py --subs 200000 --rounds 5 --format none

Each round runs both executors on the same config, one after the other in alternating
order, so drifting load on a shared machine hits both alike; the figures are medians
over rounds of ``generate()``'s wall time, which for Dask includes starting and closing
the LocalCluster and each worker building its own population. Outputs are deleted after
every run. The CPU seconds of the whole process tree are measured alongside: they
show what each executor costs even when other loads disturb wall times. Prints one line
per run, then the medians and dask's share of local's
throughput, both as the ratio of the medians and as the median of each round's ratio
(robust to load that drifts during the benchmark), with the load average before and
after as the conditions.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

import psutil

from cdrexp.config import (OUTPUT_FORMATS, ExecutorConfig, GeneratorConfig, ModelConfig,
                           OutputConfig, validate)
from cdrexp.generation import generate


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subs", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each executor (>= 3)")
    ap.add_argument("--format", default="csv", choices=OUTPUT_FORMATS)
    ap.add_argument("--chunk-size", type=int, default=None,
                    help="model.chunk_size (default: the model's own)")
    ap.add_argument("--out", default=None, help="scratch directory (default: a temp dir)")
    return ap.parse_args(argv)


def configs(args, scratch: str) -> dict[str, GeneratorConfig]:
    model = ModelConfig() if args.chunk_size is None else ModelConfig(
        chunk_size=args.chunk_size)
    base = GeneratorConfig(subs=args.subs, days=args.days, seed=42, workers=args.workers,
                           out=os.path.join(scratch, "out"), model=model,
                           output=OutputConfig(format=args.format))
    cfgs = {"local": base,
            "dask": dataclasses.replace(base, executor=ExecutorConfig(name="dask"))}
    for cfg in cfgs.values():
        validate(cfg)
    return cfgs


class TreeCpu:
    """CPU seconds (user + sys) of this process and all its descendants during a block,
    sampled every 0.1 s (workers that end between samples lose their last 0.1 s). Less
    disturbed than wall time by other loads on a shared machine."""

    def __enter__(self):
        self._me = psutil.Process()
        self._base = self._sample()
        self._last = dict(self._base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> dict[int, float]:
        out = {}
        for p in [self._me] + self._me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
        return out

    def _loop(self):
        while not self._stop.wait(0.1):
            self._last.update(self._sample())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._last.update(self._sample())
        self.seconds = sum(v - self._base.get(pid, 0.0) for pid, v in self._last.items())
        return False


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.rounds < 3:
        print("bench_dask: --rounds must be >= 3 (medians of fewer say little)",
              file=sys.stderr)
        return 2
    scratch = args.out or tempfile.mkdtemp(prefix="bench_dask_")
    os.makedirs(scratch, exist_ok=True)
    cfgs = configs(args, scratch)
    # Both executors fork their workers from this process's one forkserver, and its
    # preloaded modules are those of whichever executor started it: start it here with
    # both executors' modules, as a run of either kind would, so neither gets the other's
    # forkserver
    from cdrexp.parallel._dask_cluster import ensure_forkserver
    ensure_forkserver()
    walls: dict[str, list[float]] = {name: [] for name in cfgs}
    cpus: dict[str, list[float]] = {name: [] for name in cfgs}
    rows = 0
    load_before = os.getloadavg()
    print(f"subs={args.subs} days={args.days} workers={args.workers} "
          f"format={args.format} chunk_size={cfgs['local'].model.chunk_size} "
          f"cpus={os.cpu_count()} load={load_before[0]:.2f}")
    try:
        for r in range(args.rounds):
            order = list(cfgs) if r % 2 == 0 else list(cfgs)[::-1]
            for name in order:
                cfg = cfgs[name]
                with TreeCpu() as cpu:
                    t0 = time.perf_counter()
                    stats = generate(cfg)
                    wall = time.perf_counter() - t0
                walls[name].append(wall)
                cpus[name].append(cpu.seconds)
                rows = stats.rows
                print(f"round {r + 1} {name:5s} wall {wall:7.2f} s  "
                      f"{stats.rows / wall / 1e6:6.2f} M records/s  "
                      f"cpu {cpu.seconds:6.2f} s  (workers {stats.workers})",
                      flush=True)
                shutil.rmtree(cfg.out, ignore_errors=True)
    finally:
        if args.out is None:
            shutil.rmtree(scratch, ignore_errors=True)
    load_after = os.getloadavg()
    med = {name: statistics.median(w) for name, w in walls.items()}
    for name, m in med.items():
        print(f"median {name:5s} wall {m:7.2f} s  {rows / m / 1e6:6.2f} M records/s  "
              f"{args.subs * args.days / m:,.0f} subscriber-days/s  "
              f"(min {min(walls[name]):.2f}, max {max(walls[name]):.2f})  "
              f"cpu {statistics.median(cpus[name]):.2f} s")
    # each round's two runs are back to back, so their ratio is what drifting load on
    # a shared machine disturbs least
    ratios = [lw / dw for lw, dw in zip(walls["local"], walls["dask"])]
    print(f"dask throughput = {med['local'] / med['dask']:.1%} of local (ratio of "
          f"medians); per round {', '.join(f'{r:.0%}' for r in ratios)}, median "
          f"{statistics.median(ratios):.1%}  (load average 1 min: {load_before[0]:.2f} "
          f"before, {load_after[0]:.2f} after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
