"""The measuring part of a job: warm-up runs, measured repeats, one profiled run."""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from omegaconf import OmegaConf

from ..config import ExperimentConfig, config_to_dict
from ..stats import GenerationStats
from ..tracking.measure import Measurement, measure
from ..tracking.store import child_env
from ..writers import MANIFEST, SUMMARY  # noqa: F401 (MANIFEST: job.py reads it here)
from .display import progress_bar


@dataclass
class Repeat:
    measurement: Measurement
    stats: GenerationStats


def _generate(cfg: ExperimentConfig, description: str, on_progress=None) -> GenerationStats:
    from ..generation import generate
    with progress_bar(description) as bar:
        def both(p):
            bar(p)
            if on_progress:
                on_progress(p)
        return generate(cfg, both)


def run_repeats(cfg: ExperimentConfig,
                on_repeat: Optional[Callable[[int, Repeat], None]] = None) -> list[Repeat]:
    """``cfg.warmup`` unmeasured runs, then ``cfg.repeats`` measured ones. Each run
    replaces the previous run's files in ``out``, deleted before the timer starts (at
    10M subscribers that is ~35 GB of unlinks, no part of a generation)."""
    from ..writers import clear_output

    for i in range(cfg.warmup):
        _generate(cfg, f"warm-up {i + 1}/{cfg.warmup}")
    repeats = []
    for i in range(cfg.repeats):
        clear_output(cfg)
        # a remote Dask cluster's workers measured themselves: added to this tree's
        stats, m = measure(lambda: _generate(cfg, f"repeat {i + 1}/{cfg.repeats}"),
                           remote=lambda s: s.cluster)
        rep = Repeat(m, stats)
        repeats.append(rep)
        if on_repeat:
            on_repeat(i, rep)
    return repeats


def is_local(out: str) -> bool:
    return "://" not in out


def day_summaries(out: str) -> list[Path]:
    """The per-day summary.json files the last run left in ``out``."""
    if not is_local(out) or not os.path.isdir(out):
        return []
    return sorted(p for p in Path(out).glob(f"*/{SUMMARY}") if p.is_file())


def remove_output(out: str) -> None:
    """Delete what cdrexp wrote in a local ``out`` (``writers.remove_output``'s rules)."""
    if is_local(out):
        from ..writers import remove_output as remove
        remove(out)


def write_resolved_config(cfg: ExperimentConfig, path: Path, **changes) -> Path:
    data = config_to_dict(cfg)
    data.update(changes)
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(data)))
    return path


def run_profile(cfg: ExperimentConfig, job_dir: Path, context: dict):
    """One extra, unmeasured run under the configured profiler, in a child process.
    Returns a ``ProfileResult`` (never raises for a profiler that cannot run here)."""
    from ..profilers import ProfileResult, run_profiler

    artifact_dir = job_dir / "profile"
    if artifact_dir.exists():
        shutil.rmtree(artifact_dir)
    artifact_dir.mkdir(parents=True)
    # its own output directory: the profiled run must not replace the measured data
    out = job_dir / "profile_out" if is_local(cfg.out) else cfg.out.rstrip("/") + "_profile"
    config_file = write_resolved_config(cfg, job_dir / "profile_config.yaml", out=str(out))
    cmd = [sys.executable, "-m", "cdrexp.cli.child", "--config", str(config_file)]
    try:
        result = run_profiler(cfg.profiler, cmd, artifact_dir, env=child_env(),
                              context=context)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a profiler bug must not cost the measured results
        result = ProfileResult(cfg.profiler.name, "failed",
                               f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        if is_local(str(out)):
            remove_output(str(out))
            shutil.rmtree(out, ignore_errors=True)
    if result.artifact_dir is None:
        result.artifact_dir = artifact_dir
    return result
