"""From a job's measured repeats to what gets logged: metrics, params, labels and the
seed-compatible benchmark_results.json."""
from __future__ import annotations

import datetime as dt
import statistics
from typing import Any, Optional

from ..config import ExperimentConfig
from ..stats import GenerationStats
from . import names as N
from .measure import Measurement, wall_summary
from .names import MB


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"cells": 5}}`` -> ``{"model.cells": 5}``; lists stay values."""
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def config_label(cfg: ExperimentConfig, choices: Optional[dict] = None) -> str:
    """Short human name of a job's configuration, e.g. ``subs=1000 days=1 workers=2 csv``."""
    parts = [f"subs={cfg.subs}", f"days={cfg.days}", f"workers={cfg.workers}",
             cfg.output.format]
    if cfg.executor.name != "local":
        parts.append(f"executor={cfg.executor.name}")
    model = (choices or {}).get("model")
    if model and model != "default":
        parts.append(f"model={model}")
    return " ".join(parts)


def job_metrics(cfg: ExperimentConfig, measurements: list[Measurement],
                stats: list[GenerationStats], usable_cores: int) -> dict[str, float]:
    """Every metric of a job from its measured repeats (throughputs from the median
    wall time; rows and bytes are the same in every repeat: the output is
    deterministic)."""
    walls = [m.wall_s for m in measurements]
    w = wall_summary(walls)
    last = stats[-1]
    cores_busy = statistics.median(m.cpu_s / m.wall_s for m in measurements if m.wall_s > 0)
    # a remote cluster: the cores of every machine that took part, not only this one's
    usable_cores = measurements[-1].usable_cores or usable_cores
    metrics = {
        # subscriber-days per second: subscribers/s for a one-day run, the seed's
        # throughput_subs_per_sec
        N.M_SUBS_PER_S: cfg.subs * cfg.days / w["median"],
        N.M_RECORDS_PER_S: last.rows / w["median"],
        N.M_MB_PER_S: last.bytes_written / MB / w["median"],
        N.M_WALL_MEDIAN: w["median"],
        N.M_WALL_MIN: w["min"],
        N.M_WALL_MAX: w["max"],
        N.M_WALL_STDDEV: w["stddev"],
        N.M_WALL_SPREAD: w["spread"],
        N.M_CPU_S: statistics.median(m.cpu_s for m in measurements),
        N.M_CPU_CORES_BUSY: cores_busy,
        N.M_CPU_UTIL: cores_busy / max(usable_cores, 1),
        N.M_PEAK_PSS: max(m.peak_pss_bytes for m in measurements) / MB,
        N.M_PEAK_PSS_MIN: min(m.peak_pss_bytes for m in measurements) / MB,
        N.M_PEAK_RSS: max(m.peak_rss_bytes for m in measurements) / MB,
        N.M_BASELINE_PSS: statistics.median(m.baseline_pss_bytes for m in measurements) / MB,
        N.M_ROWS: last.rows,
        N.M_BYTES: last.bytes_written,
        N.M_UNCOMPRESSED_BYTES: last.uncompressed_bytes,
        N.M_FILES: last.files,
        N.M_WORKERS: last.workers,
        N.M_REPEATS: len(measurements),
        N.M_PHASE_POPULATION: statistics.median(s.population_s for s in stats),
        N.M_PHASE_GENERATION: statistics.median(s.generation_s for s in stats),
        N.M_PHASE_FORMATTING: statistics.median(s.formatting_s for s in stats),
        N.M_PHASE_WRITING: statistics.median(s.writing_s for s in stats),
    }
    runner = [m.runner_pss_bytes for m in measurements if m.runner_pss_bytes is not None]
    if runner:
        metrics[N.M_RUNNER_PSS] = max(runner) / MB
    client = [m for m in measurements if m.client_cpu_s is not None]
    if client:
        metrics[N.M_CLIENT_CPU_S] = statistics.median(m.client_cpu_s for m in client)
        metrics[N.M_CLIENT_PEAK_PSS] = max(m.client_peak_pss_bytes for m in client) / MB
    for kind, rows in sorted(last.rows_by_type.items()):
        metrics[f"rows_{kind.lower()}"] = rows
    return metrics


def benchmark_results(cfg: ExperimentConfig, label: str, metrics: dict,
                      measurements: list[Measurement], stats: list[GenerationStats],
                      extra: Optional[dict] = None) -> dict:
    """The seed's benchmark_results.json entry (its first eight keys), plus ours."""
    last = stats[-1]
    peak_pss = max(m.peak_pss_bytes for m in measurements)
    return {
        # the seed's fields
        "description": f"{cfg.description} ({label})",
        "subscribers": cfg.subs,
        "days": cfg.days,
        "elapsed_seconds": metrics[N.M_WALL_MEDIAN],
        "stddev_seconds": metrics[N.M_WALL_STDDEV],
        "throughput_subs_per_sec": metrics[N.M_SUBS_PER_S],
        "output_size_kb": last.bytes_written / 1024,
        "max_memory_bytes": peak_pss,
        # ours
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config_label": label,
        "start": cfg.start,
        "seed": cfg.seed,
        "workers": cfg.workers,
        "workers_used": last.workers,
        "output_format": cfg.output.format,
        "executor": cfg.executor.name,
        "warmup": cfg.warmup,
        "repeats": len(measurements),
        "records": last.rows,
        "rows_by_type": last.rows_by_type,
        "records_per_sec": metrics[N.M_RECORDS_PER_S],
        "mb_per_sec": metrics[N.M_MB_PER_S],
        "cpu_utilization": metrics[N.M_CPU_UTIL],
        "cpu_cores_busy": metrics[N.M_CPU_CORES_BUSY],
        "peak_pss_bytes": peak_pss,
        "peak_rss_bytes": max(m.peak_rss_bytes for m in measurements),
        "bytes_written": last.bytes_written,
        "uncompressed_bytes": last.uncompressed_bytes,
        "files": last.files,
        "repeat_measurements": [m.to_dict() for m in measurements],
        "repeat_stats": [s.to_dict() for s in stats],
        **(extra or {}),
    }


def throughput_unit(days: int) -> str:
    """What ``subs_per_s`` counts: subscribers for a one-day run, subscriber-days
    (subscribers x days) otherwise."""
    return "subs/s" if days == 1 else "subscriber-days/s"


def headline(metrics: dict, days: int = 1) -> str:
    """The figures a reader wants first, in one line short enough for a run's name in
    MLflow's UI (shown as the title of the run's page and in the runs table):
    ``2,874 subs/s, 0.104 s ±12%, CPU 0.36 cores, PSS 309 MB``. The ± is half the
    range of the repeats' wall times, relative to their median."""
    m = metrics
    half_range = (m.get(N.M_WALL_SPREAD) or 0.0) / 2
    return (f"{m[N.M_SUBS_PER_S]:,.0f} {throughput_unit(days)}, "
            f"{m[N.M_WALL_MEDIAN]:.3g} s ±{half_range:.0%}, "
            f"CPU {m[N.M_CPU_CORES_BUSY]:.2f} cores, PSS {m[N.M_PEAK_PSS]:,.0f} MB")
