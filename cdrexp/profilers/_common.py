"""What every profiler shares: finding its tool, running the child under it, metadata."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .._git import git_or_none
from ._result import ProfileResult

CHILD_MODULE = "cdrexp.cli.child"
STATS_FILE = "generation_stats.json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Unavailable(Exception):
    """The profiler cannot run here; ``str()`` is the one-line reason."""


def find_tool(name: str) -> str:
    """Path of executable ``name``: ``$CDREXP_<NAME>_BIN`` if set, else next to this
    Python (a venv's bin/ need not be on PATH), else on PATH."""
    env_var = f"CDREXP_{re.sub(r'[^A-Z0-9]', '_', name.upper())}_BIN"
    override = os.environ.get(env_var)
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise Unavailable(f"{env_var}={override} is not an executable file")
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise Unavailable(f"{name} is not installed (not beside {sys.executable} "
                          f"nor on PATH; set {env_var} to its path)")
    return found


def child_env(env: Optional[dict], **extra: str) -> dict:
    """The profiled child's environment; workers profile themselves only when this
    profiler asks for it in ``extra``, never because of a stale inherited switch."""
    from ..parallel.worker_profiling import ENV_VAR

    out = dict(os.environ if env is None else env)
    out.pop(ENV_VAR, None)
    out.update(extra)
    return out


def with_stats_file(child_cmd: list[str], artifact_dir: Path) -> tuple[list[str], Optional[Path]]:
    """Ask the cdrexp child to write its statistics: the file appears only when the
    generation succeeded, which tells success even under a tool (py-spy) that does not
    pass the child's exit code on. Other commands are left as they are."""
    if CHILD_MODULE not in child_cmd or "--stats" in child_cmd:
        return child_cmd, None
    path = artifact_dir / STATS_FILE
    return child_cmd + ["--stats", str(path)], path


@dataclass
class ToolRun:
    returncode: int
    output: str          # stdout and stderr of the tool and the child, interleaved
    wall_s: float
    log: Path


def run_logged(cmd: list[str], env: dict, log: Path, cwd: Optional[str] = None) -> ToolRun:
    """Run ``cmd`` to completion with its output in ``log`` (the child's progress bar
    and messages go there too, not to the runner's terminal)."""
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        rc = subprocess.call(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=cwd)
    wall = time.perf_counter() - t0
    text = log.read_bytes().decode("utf-8", "replace")
    return ToolRun(rc, _ANSI.sub("", text), wall, log)


def last_line(text: str, skip: tuple[str, ...] = ()) -> str:
    """The last meaningful line of some output: what a one-line reason should quote."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not any(ln.startswith(s) for s in skip)]
    for ln in reversed(lines):   # prefer an error line over a trailing backtrace frame
        if re.search(r"error|denied|not permitted|failed|exception", ln, re.I):
            return ln[:240]
    return lines[-1][:240] if lines else "(no output)"


def child_failed(run: ToolRun, stats_path: Optional[Path]) -> bool:
    if run.returncode != 0:
        return True
    return stats_path is not None and not stats_path.exists()


def failure(name: str, run: ToolRun, artifact_dir: Path, skip: tuple[str, ...] = ()
            ) -> ProfileResult:
    return ProfileResult(name, "failed",
                         f"{name}: the profiled generation failed (exit {run.returncode}): "
                         f"{last_line(run.output, skip)} (log: {run.log.name})",
                         artifact_dir)


def metadata(context: dict, profiler: str, **extra) -> dict:
    """The seed's metadata.json keys (from the runner's context), then ours."""
    meta = {
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": context.get("git_commit") or _git("rev-parse", "HEAD"),
        "git_branch": context.get("git_branch") or _git("rev-parse", "--abbrev-ref", "HEAD"),
        "subscribers": context.get("subscribers"),
        "days": context.get("days"),
        "start_date": context.get("start_date"),
        "profiler": profiler,
    }
    meta.update({k: v for k, v in context.items() if k not in meta})
    meta.update(extra)
    return meta


def _git(*args: str) -> Optional[str]:
    """Best effort, for a caller that passed no git context: the current checkout's."""
    return git_or_none(None, *args, timeout=5) or None


def write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
