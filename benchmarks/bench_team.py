"""The team set-up measured (issue 20), against the local stack of deploy/local/up.sh.

  python benchmarks/bench_team.py sweep   [--rounds N]   # 4-job sweep: SLURM vs local
  python benchmarks/bench_team.py s3      [--rounds N]   # 1M subs csv_gz / parquet: S3 vs disk
  python benchmarks/bench_team.py startup [--rounds N]   # up.sh to a ready stack: cold, warm

Each pair of cells runs alternately in the same run (A, B, A, B ...); medians printed
with the load average. ``sweep`` and ``s3`` need the stack up (``eval "$(deploy/local/up.sh)"``);
``startup`` purges and restarts the stack of $CDREXP_STACK_DIR (left up afterwards).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def _wall(cmd, cwd, env=None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{proc.stderr[-2000:]}")
    return wall


def bench_sweep(rounds: int) -> None:
    """Wall time of `python -m cdrexp -m subs=... (4 jobs)` with the local (basic) launcher
    and with hydra/launcher=slurm; overhead per job = (slurm - local) / 4."""
    args = [sys.executable, "-m", "cdrexp", "-m", "subs=20000,40000", "workers=1,2",
            "repeats=1", "warmup=0", "output.format=csv"]
    cells = {"local": args, "slurm": args + ["hydra/launcher=slurm"]}
    times: dict[str, list[float]] = {k: [] for k in cells}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for name, cmd in cells.items():
                times[name].append(_wall(cmd, tmp))
    local, slurm = statistics.median(times["local"]), statistics.median(times["slurm"])
    print(f"4-job sweep, {rounds} rounds each, alternated; {_load()}")
    for name in cells:
        print(f"  {name:6s} median {statistics.median(times[name]):7.1f} s   "
              f"runs {', '.join(f'{t:.1f}' for t in times[name])}")
    print(f"  SLURM overhead per job: {(slurm - local) / 4:.1f} s")


def bench_s3(rounds: int, subs: int) -> None:
    """MB/s of one generation (cdrexp.generation.generate, workers=0) to a local
    directory and to s3://$CDREXP_STACK_BUCKET, per format."""
    from cdrexp.config import GeneratorConfig, OutputConfig
    from cdrexp.generation import generate

    bucket = os.environ.get("CDREXP_STACK_BUCKET")
    if not bucket:
        sys.exit("s3: no CDREXP_STACK_BUCKET: eval \"$(deploy/local/up.sh)\" first")
    import s3fs
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    print(f"{subs:,} subscribers, 1 day, {rounds} rounds each, alternated")
    for fmt in ("csv_gz", "parquet"):
        rates: dict[str, list[float]] = {"disk": [], "s3": []}
        for _ in range(rounds):
            for target in rates:
                tmp = tempfile.mkdtemp(prefix="cdrexp-bench-", dir=os.environ.get("TMPDIR"))
                prefix = f"{bucket}/bench/{uuid.uuid4().hex}"
                out = os.path.join(tmp, "out") if target == "disk" else f"s3://{prefix}"
                cfg = GeneratorConfig(subs=subs, days=1, out=out,
                                      output=OutputConfig(format=fmt))
                t0 = time.perf_counter()
                stats = generate(cfg)
                wall = time.perf_counter() - t0
                rates[target].append(stats.bytes_written / 1e6 / wall)
                shutil.rmtree(tmp, ignore_errors=True)
                if target == "s3":
                    fs.rm(prefix, recursive=True)
        print(f"  {fmt:8s} disk {statistics.median(rates['disk']):7.1f} MB/s   "
              f"s3 {statistics.median(rates['s3']):7.1f} MB/s   "
              f"({stats.bytes_written / 1e6:.0f} MB; {_load()})")


def bench_startup(rounds: int) -> None:
    """Seconds from up.sh to a ready stack: cold (after down.sh --purge: initdb, MLflow's
    migrations, the accounting database) and warm (everything running already). Uses the
    stack of $CDREXP_STACK_DIR itself (one stack per machine: munge's socket is shared),
    which it leaves up, with new state."""
    up, down = REPO / "deploy/local/up.sh", REPO / "deploy/local/down.sh"
    env = dict(os.environ, CDREXP_PYTHON=sys.executable)
    cold, warm = [], []
    for _ in range(rounds):
        subprocess.run(["bash", str(down), "--purge"], env=env, capture_output=True)
        cold.append(_wall(["bash", str(up)], REPO, env))
        warm.append(_wall(["bash", str(up)], REPO, env))
    print(f"up.sh to a ready stack, {rounds} rounds; {_load()}")
    print(f"  cold median {statistics.median(cold):6.1f} s   runs {', '.join(f'{t:.1f}' for t in cold)}")
    print(f"  warm median {statistics.median(warm):6.1f} s   runs {', '.join(f'{t:.1f}' for t in warm)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["sweep", "s3", "startup"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--subs", type=int, default=1_000_000)
    args = ap.parse_args()
    {"sweep": lambda: bench_sweep(args.rounds), "s3": lambda: bench_s3(args.rounds, args.subs),
     "startup": lambda: bench_startup(args.rounds)}[args.what]()


if __name__ == "__main__":
    main()
