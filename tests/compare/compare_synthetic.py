"""A temporary MLflow store filled with synthetic runs shaped like the runner's.

Runs are written with MlflowClient and the shared names only, so these tests pin the
contract between the runner (writer) and compare (reader), not either implementation.
"""
from __future__ import annotations

import statistics
import uuid

import numpy as np
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from cdrexp.tracking import names

T0_MS = 1_767_225_600_000       # 2026-01-01T00:00:00Z
HOUR_MS = 3_600_000
SPREAD = 0.05                   # lognormal sigma of the repeats: about 5 % scatter

SYSTEM_INFO = {
    "host": "bench-host-1",
    "cpu": {"model": "Synthetic CPU 9000", "logical_cores": 4, "usable_cores": 2},
    "memory": {"total_bytes": 8 * 2**30},
    "os": {"platform": "Linux-6.1-x86_64"},
    "python": {"version": "3.11.9"},
    "numpy": {"version": "2.4.0", "blas": {"name": "scipy-openblas"}},
    "git": {"commit": "c0ffee1234567890", "branch": "main", "dirty": False},
}


def job_config(subs: int, workers: int = 1, fmt: str = "csv") -> dict:
    return {"subs": subs, "days": 1, "seed": 42, "workers": workers,
            "output": {"format": fmt}, "repeats": 3, "out": "cdr_out"}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = str(v)
    return out


def noisy_samples(rng: np.random.Generator, median: float, n: int = 3,
                  spread: float = SPREAD) -> list[float]:
    return list(median * np.exp(rng.normal(0.0, spread, n)))


class SyntheticStore:
    def __init__(self, root):
        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)

    def experiment(self, name: str) -> str:
        return self.client.create_experiment(
            name, artifact_location=(self.root / "mlruns" / name).as_uri())

    def add_job(self, exp_id: str, config: dict, samples: list[float], *, start_ms: int,
                sweep_id: str | None = None, commit: str = "a" * 40, job_num: int = 0,
                status: str = "FINISHED", memory_mb: float = 100.0,
                system_info: dict | None = None, wall_steps: bool = True) -> str:
        """``wall_steps=False``: the median but no per-repeat ``wall_s`` (older runs)."""
        subs = config["subs"]
        label = f"subs={subs} workers={config['workers']} {config['output']['format']}"
        tags = {names.TAG_KIND: names.KIND_JOB, names.TAG_CONFIG_KEY: names.config_key(config),
                names.TAG_CONFIG_LABEL: label, names.TAG_GIT_COMMIT: commit,
                names.TAG_HOST: "bench-host-1", names.TAG_JOB_NUM: str(job_num)}
        if sweep_id:
            tags[names.TAG_SWEEP_ID] = sweep_id
        run = self.client.create_run(exp_id, start_time=start_ms, tags=tags,
                                     run_name=label)
        run_id = run.info.run_id
        if not samples:         # a job that failed before measuring anything
            self.client.set_terminated(run_id, status)
            return run_id
        median = statistics.median(samples)
        values = {names.M_WALL_MEDIAN: median, names.M_WALL_MIN: min(samples),
                  names.M_WALL_MAX: max(samples),
                  names.M_WALL_STDDEV: statistics.pstdev(samples),
                  names.M_SUBS_PER_S: subs / median,
                  names.M_RECORDS_PER_S: subs * 20.7 / median,
                  names.M_MB_PER_S: subs * 20.7 * 200 / 1e6 / median,
                  names.M_PEAK_PSS: memory_mb, names.M_PEAK_RSS: memory_mb * 1.5,
                  names.M_BYTES: subs * 20.7 * 200}
        metrics = [Metric(k, float(v), start_ms, 0) for k, v in values.items()]
        if wall_steps:
            metrics += [Metric(names.M_WALL_STEPS, float(v), start_ms, step)
                        for step, v in enumerate(samples)]
        self.client.log_batch(run_id, metrics=metrics,
                              params=[Param(k, v) for k, v in _flatten(config).items()])
        if system_info is not None:
            self.client.log_dict(run_id, system_info, names.A_SYSTEM_INFO)
        self.client.set_terminated(run_id, status, end_time=start_ms + 60_000)
        return run_id

    def add_sweep(self, exp_id: str, medians: dict[int, float], *, start_ms: int,
                  rng: np.random.Generator, commit: str = "a" * 40,
                  n_repeats: int = 3, system_info: dict | None = None) -> tuple[str, str]:
        """A sweep over ``subs`` values (their median wall time given); returns the sweep
        id and the parent run id."""
        sweep_id = uuid.uuid4().hex[:12]
        parent = self.client.create_run(
            exp_id, start_time=start_ms - 1000, run_name=f"sweep {sweep_id}",
            tags={names.TAG_KIND: names.KIND_SWEEP, names.TAG_SWEEP_ID: sweep_id,
                  names.TAG_GIT_COMMIT: commit})
        for num, (subs, median) in enumerate(sorted(medians.items())):
            self.add_job(exp_id, job_config(subs), noisy_samples(rng, median, n_repeats),
                         start_ms=start_ms + num * 1000, sweep_id=sweep_id, commit=commit,
                         job_num=num, system_info=system_info if num == 0 else None)
        self.client.set_terminated(parent.info.run_id, "FINISHED")
        return sweep_id, parent.info.run_id
