"""Helpers of the profiler tests: a small real generation (2 workers, 60000 subs in 30 units,
~1 s) to wrap: long enough that py-spy finds and samples both workers (6000 subs in 4
units was not; 20000 in 10 was not once the CSV loop was unrolled: 0.36 s, py-spy saw only
the parent)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig, ProfilerConfig
from cdrexp.profilers import run_profiler

SUBS = 60000
CONTEXT = {"subscribers": SUBS, "days": 1, "start_date": "2025-01-06",
           "git_commit": "0123abc", "git_branch": "main"}
SEED_KEYS = ("timestamp", "git_commit", "git_branch", "subscribers", "days", "start_date")


def child_command(tmp: Path, **over) -> list[str]:
    cfg = GeneratorConfig(subs=SUBS, days=1, start="2025-01-06", seed=7, workers=2,
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


SPEEDSCOPE_MAIN = 'process {pid}:"/venv/bin/python -m cdrexp.cli.child --config {pid}.yaml"'
SPEEDSCOPE_WORKER = ('process {pid}:"/venv/bin/python -c from multiprocessing.forkserver '
                     'import main"')


def write_profile(path: Path, pid: int, weights: dict[str, int]) -> Path:
    """A py-spy-shaped speedscope file: main -> worker -> run_unit -> each function of
    ``weights`` (its number of 10 ms samples), on a different line per run (moved code)."""
    frames = [{"name": SPEEDSCOPE_MAIN.format(pid=pid), "file": "", "line": 0},
              {"name": SPEEDSCOPE_WORKER.format(pid=pid + 1), "file": "", "line": 0},
              {"name": "run_unit", "file": "/x/cdrexp/parallel/work.py", "line": pid}]
    samples = []
    for name, count in weights.items():
        frames.append({"name": name, "file": "/x/cdrexp/model/records.py", "line": pid})
        samples += [[0, 1, 2, len(frames) - 1]] * count
    doc = {"shared": {"frames": frames}, "profiles": [
        {"type": "sampled", "name": f"Process {pid + 1} Thread {pid + 1}",
         "unit": "seconds", "samples": samples, "weights": [0.01] * len(samples)}]}
    path.write_text(json.dumps(doc))
    return path
