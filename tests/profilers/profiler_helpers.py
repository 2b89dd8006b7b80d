"""Helpers of the profiler tests: a small real generation (2 workers, 20000 subs in 10 units) to wrap:
long enough that py-spy finds and samples both workers (6000 subs in 4 units was not)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig, ProfilerConfig
from cdrexp.profilers import run_profiler

CONTEXT = {"subscribers": 20000, "days": 1, "start_date": "2025-01-06",
           "git_commit": "0123abc", "git_branch": "main"}
SEED_KEYS = ("timestamp", "git_commit", "git_branch", "subscribers", "days", "start_date")


def child_command(tmp: Path, **over) -> list[str]:
    cfg = GeneratorConfig(subs=20000, days=1, start="2025-01-06", seed=7, workers=2,
                          out=str(tmp / "out"), model=ModelConfig(chunk_size=2000),
                          output=OutputConfig(format="csv"))
    for k, v in over.items():
        setattr(cfg, k, v)
    path = tmp / "resolved.yaml"
    OmegaConf.save(OmegaConf.structured(cfg), path)
    return [sys.executable, "-m", "cdrexp.cli.child", "--config", str(path)]


def profile(tmp: Path, name: str, child_cmd=None, **options):
    artifacts = tmp / "profile"
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = child_cmd or child_command(tmp)
    return run_profiler(ProfilerConfig(name=name, **options), cmd, artifacts,
                        context=dict(CONTEXT))


def broken_child(tmp: Path) -> list[str]:
    """A child that fails at once: its config file does not exist."""
    return [sys.executable, "-m", "cdrexp.cli.child", "--config", str(tmp / "missing.yaml")]


def load_json(path: Path):
    return json.loads(Path(path).read_text())
