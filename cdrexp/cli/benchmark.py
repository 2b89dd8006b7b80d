"""The measuring part of a job: warm-up runs and measured repeats in a generator process
of their own (``cli.repeats``), one profiled run."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import psutil
from omegaconf import OmegaConf

from ..config import ExperimentConfig, config_to_dict
from ..parallel import describe_exit
from ..tracking.store import child_env
from ..writers import MANIFEST, SUMMARY  # noqa: F401 (MANIFEST: job.py reads it here)
from . import repeats as gen
from .display import progress_bar
from .repeats import Repeat  # noqa: F401 (job.py's name for a measured repeat)

# after an interrupt: the generator stops its workers (their own grace: 5 s), releases
# the shared memory and exits; only a process that does not is killed
STOP_GRACE_S = 60.0
GENERATOR_CONFIG = "generator_config.yaml"


class GeneratorFailed(Exception):
    """The generator process failed; ``str()`` is the one line to show (its traceback,
    when it had one, is the cause)."""


class _GeneratorTraceback(Exception):
    def __str__(self):
        return "\n" + self.args[0]


def run_repeats(cfg: ExperimentConfig, job_dir: Path,
                on_repeat: Optional[Callable[[int, Repeat], None]] = None) -> list[Repeat]:
    """``cfg.warmup`` unmeasured runs, then ``cfg.repeats`` measured ones, in one
    generator process (``python -m cdrexp.cli.repeats``) that measures its own tree; this
    process shows their progress, adds its own PSS to each ``Measurement``
    (``runner_pss_bytes``) and hands each repeat to ``on_repeat`` as it ends."""
    config_file = write_resolved_config(cfg, Path(job_dir) / GENERATOR_CONFIG)
    read_fd, write_fd = os.pipe()
    cmd = [sys.executable, "-m", gen.MODULE, "--config", str(config_file),
           "--warmup", str(cfg.warmup), "--repeats", str(cfg.repeats),
           "--events-fd", str(write_fd), "--parent", str(os.getpid())]
    try:
        proc = subprocess.Popen(cmd, pass_fds=(write_fd,), env=_generator_env())
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    done: list[Repeat] = []
    error: Optional[dict] = None
    try:
        with os.fdopen(read_fd, encoding="utf-8") as events, _Bars() as bars:
            for line in events:
                try:
                    event = json.loads(line)
                except ValueError:      # cut short: the process died writing it
                    continue
                kind = event.get("event")
                if kind == gen.EVENT_RUN:
                    bars.start(event["description"])
                elif kind == gen.EVENT_PROGRESS:
                    bars.update(gen.progress_of(event))
                elif kind == gen.EVENT_REPEAT:
                    bars.stop()
                    rep = Repeat.from_event(event)
                    rep.measurement.runner_pss_bytes = _own_pss()
                    done.append(rep)
                    if on_repeat:
                        on_repeat(event["index"], rep)
                elif kind == gen.EVENT_ERROR:
                    error = event
        code = proc.wait()
    except KeyboardInterrupt as exc:
        # a terminal's Ctrl-C reached the generator too (one process group); a SIGTERM
        # to this process alone did not: pass it on either way (a second one is ignored)
        _stop(proc, getattr(exc, "signum", signal.SIGINT))
        raise
    finally:
        _stop(proc, signal.SIGTERM)     # anything else that ends this early
    if error is not None:
        tb = error.get("traceback")
        raise GeneratorFailed(error["message"]) from (_GeneratorTraceback(tb) if tb
                                                       else None)
    if code != 0 or len(done) != cfg.repeats:
        raise GeneratorFailed(f"the generator process (pid {proc.pid}) {describe_exit(code)}"
                              f" after {len(done)} of {cfg.repeats} measured repeats")
    return done


def _stop(proc: subprocess.Popen, signum: int) -> None:
    """Signal a generator still running, wait for it to clean up, kill it if it hangs."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signum)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _generator_env() -> dict:
    """The generator runs this cdrexp (``python -m`` would put the current directory,
    and any checkout there, first) without MLflow's run-attaching variables."""
    root = str(Path(__file__).resolve().parents[2])     # the directory holding cdrexp/
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONSAFEPATH"] = "1"
    return env


def _own_pss() -> Optional[int]:
    """This process's PSS: the runner's own memory (MLflow, Hydra), outside the tree."""
    try:
        return psutil.Process().memory_full_info().pss
    except (psutil.Error, AttributeError):      # no PSS on this platform
        return None


class _Bars:
    """One progress bar per run of the generator, as its events arrive."""

    def __init__(self):
        self._stack = contextlib.ExitStack()
        self._update = None

    def start(self, description: str) -> None:
        self.stop()
        self._update = self._stack.enter_context(progress_bar(description))

    def update(self, progress) -> None:
        if self._update is not None:
            self._update(progress)

    def stop(self) -> None:
        self._stack.close()
        self._update = None

    def __enter__(self) -> "_Bars":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


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
