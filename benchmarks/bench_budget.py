"""Calibrating the pre-run estimate of memory and output size (cdrexp/config/_budget.py).

Not a test: runs the real command line (``python -m cdrexp``, one measured repeat, no
warm-up) at a few sizes and prints, per run, the estimate next to what was measured:
the peak PSS of the generator's process tree (``peak_pss_mb``) plus the runner's own
(``runner_pss_mb``: Hydra, MLflow), since the machine holds both, and the bytes written
per record. The ``Footprint`` constants should stay at or above the measured
figures (the check must not refuse a run that fits) and within ~1.5x of them.

    python benchmarks/bench_budget.py                  # memory ladder and formats
    python benchmarks/bench_budget.py --runs 3         # the median of 3 runs each
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

from cdrexp.config import FOOTPRINT, estimate, to_config
from cdrexp.tracking import names as N

MEMORY = [  # (overrides): sizes and rates at which the memory model is checked
    ["subs=20000", "workers=1"],
    ["subs=20000", "workers=1", "model.chunk_size=20000", "model.avg_data_sessions_per_user=200",
     "output=parquet"],
    ["subs=200000", "workers=2", "output=parquet"],
    ["subs=100000", "workers=2", "model.chunk_size=50000", "output=parquet"],
    ["subs=100000", "workers=1"],
    ["subs=100000", "workers=2"],
    ["subs=200000", "workers=2"],
    ["subs=50000", "workers=2", "model.avg_data_sessions_per_user=48"],
    ["subs=20000", "workers=2", "model.chunk_size=20000",
     "model.avg_data_sessions_per_user=200"],
    ["subs=1000000", "workers=2"],
]
FORMATS = [["subs=20000", "workers=1", f"output={fmt}"]
           for fmt in ("csv", "csv_gz", "csv_zst", "parquet")]


def run(overrides: list[str], runs: int) -> dict:
    from mlflow.tracking import MlflowClient
    peaks, per_record = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-budget-") as cwd:
            args = [sys.executable, "-m", "cdrexp", *overrides, "repeats=1", "warmup=0",
                    "keep_output=false"]
            proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"{' '.join(overrides)}: {proc.stderr[-2000:]}")
            client = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
            exp = client.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
            m = client.search_runs([exp.experiment_id])[0].data.metrics
            peaks.append((m[N.M_PEAK_PSS] + m[N.M_RUNNER_PSS]) * N.MB)
            per_record.append(m[N.M_BYTES] / m[N.M_ROWS])
    from omegaconf import OmegaConf
    raw = OmegaConf.merge(OmegaConf.from_dotlist([o for o in overrides
                                                  if not o.startswith("output=")]),
                          {"out": tempfile.gettempdir()}, _output(overrides))
    cfg = to_config(raw, validate_all=False)
    est = estimate(cfg)
    return {"run": " ".join(overrides), "peak_pss_mb": statistics.median(peaks) / N.MB,
            "estimate_mb": est.memory_bytes / N.MB,
            "bytes_per_record": statistics.median(per_record),
            "estimate_bytes_per_record": FOOTPRINT.record_bytes(cfg.output.format)}


def _output(overrides: list[str]) -> dict:
    fmt = next((o.split("=", 1)[1] for o in overrides if o.startswith("output=")), "csv")
    return {"output": {"format": fmt}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only", choices=("memory", "formats"))
    ap.add_argument("--skip", type=int, default=0, help="skip the first N cases")
    args = ap.parse_args()
    import cdrexp
    print(f"cdrexp {cdrexp.__file__}, load average {os.getloadavg()}")
    cases = (MEMORY if args.only != "formats" else []) + \
        (FORMATS if args.only != "memory" else [])
    print(f"{'run':70} {'peak PSS MB':>12} {'estimate MB':>12} {'B/record':>9} "
          f"{'estimate':>9}")
    for overrides in cases[args.skip:]:
        r = run(overrides, args.runs)
        print(f"{r['run']:70} {r['peak_pss_mb']:12.0f} {r['estimate_mb']:12.0f} "
              f"{r['bytes_per_record']:9.1f} {r['estimate_bytes_per_record']:9.0f}",
              flush=True)


if __name__ == "__main__":
    main()
