"""One measured run of one side: a fresh ``python -m cdrexp.cli.child`` process.

The side's code is whatever directory ``Side.root`` holds: it is put first (and alone)
on PYTHONPATH, so an editable install of cdrexp is shadowed and nothing is reinstalled;
its packages are those of ``Side.python``'s environment (``_envs``: this one, or one
built from the side's own declaration). Every run is a new interpreter, so imports, the
population build and the generation are all in the figure, as a user's command would pay
them. The hash seed is random per process (as pyperf does: one fixed seed can favour one
side for good through set and dict orders), except for instruction counts, which need
the same seed on both sides to be repeatable. A run that outlives its ``timeout`` is
stopped (its whole process group) and reported as ``RunTimedOut``; a failing run's log
is copied out of the scratch directory first, so the path in the message exists.

Figures of a run:

- ``wall_s``: from starting the process to its exit.
- ``cpu_s``: user + sys of the process and of every descendant (its workers, and its
  forkserver when it has one), as the kernel accounts them to a subreaper that reaps the whole tree
  (``_reap.py``: without it the workers' CPU is lost). ``tracking.measure.measure``
  would miss those orphans too, and add this process's sampler thread to the figure.
- ``instructions`` (``metric="instructions"`` only): the instructions the process
  executed under valgrind's cachegrind (``--cache-sim=no``), from its output file. The
  generation must then run in that one process (workers=1: the serial executor starts
  no worker), so ``--trace-children`` is not needed.
- ``peak_pss_bytes``: the tree's peak PSS, sampled every 0.2 s (information only).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import psutil

from ..parallel.memory import TreeMemorySampler
from ..profilers import Unavailable, find_tool, last_line
from ..parallel.worker_profiling import ENV_VAR as WORKER_PROFILER_ENV
from ..tracking.store import child_env

CHILD_MODULE = "cdrexp.cli.child"
CHILD_FILE = Path("cdrexp") / "cli" / "child.py"
REAP_SCRIPT = Path(__file__).with_name("_reap.py")
METRICS = ("wall", "cpu", "instructions")
STOP_GRACE_S = 10.0
MEMORY_INTERVAL_S = 0.2
# instructions only: the same hash seed on both sides, so that set and dict orders, and
# so the counts, do not change from run to run
HASH_SEED = "0"
THIS_ENV = "this environment"


@dataclass(frozen=True)
class Side:
    """One of the two codes being compared."""
    label: str                  # "base" or "candidate"
    rev: str                    # as the user wrote it ("HEAD~1"; "working tree")
    sha: str                    # the commit (for the working tree: HEAD's)
    root: Path                  # the directory holding the side's ``cdrexp`` package
    dirty: bool = False         # the working tree with uncommitted changes
    python: str = sys.executable  # the interpreter of the side's environment
    env: str = THIS_ENV         # which environment that is, for the verdict

    @property
    def short(self) -> str:
        return self.sha[:10] + ("+dirty" if self.dirty else "")


@dataclass
class RunMeasurement:
    side: str                   # Side.label
    wall_s: float
    cpu_s: float
    peak_pss_bytes: int = 0
    instructions: Optional[int] = None

    def value(self, metric: str) -> float:
        if metric == "wall":
            return self.wall_s
        if metric == "cpu":
            return self.cpu_s
        if metric == "instructions":
            if self.instructions is None:
                raise ValueError("this run was not counted under cachegrind")
            return float(self.instructions)
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")

    def to_dict(self) -> dict:
        return asdict(self)


# runs in progress, so that an interrupt in the main thread can stop the runs that other
# threads are waiting for (side-by-side runs)
_RUNNING: set[subprocess.Popen] = set()
# set by stop_running: a run whose thread starts it only afterwards (a loaded machine
# schedules threads late) stops at once instead of running to its end unseen
_STOPPING = threading.Event()


def stop_running() -> None:
    """Stop every measured run in progress, and any about to start (SIGTERM, then
    SIGKILL); ``allow_runs`` lifts that."""
    _STOPPING.set()
    for proc in list(_RUNNING):
        _stop(proc)


def allow_runs() -> None:
    _STOPPING.clear()


class SideFailed(Exception):
    """A run of one side failed; ``str()`` is the one line to show."""


class RunTimedOut(SideFailed):
    """A run stopped because it outlived its timeout."""


def side_env(side: Side, env: Optional[dict] = None, fixed_hash_seed: bool = False) -> dict:
    """The environment of a side's runs: its checkout alone on PYTHONPATH; the hash
    seed random per process unless ``fixed_hash_seed`` (instruction counts)."""
    out = child_env(env)
    out["PYTHONPATH"] = str(side.root)
    if fixed_hash_seed:
        out["PYTHONHASHSEED"] = HASH_SEED
    else:
        out.pop("PYTHONHASHSEED", None)
    out.pop(WORKER_PROFILER_ENV, None)
    # a virtualenv's own variables must not point a side's interpreter elsewhere
    for var in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT"):
        out.pop(var, None)
    return out


def check_side(side: Side) -> None:
    """Raise ``SideFailed`` unless the side's checkout is what its runs will import."""
    if not (side.root / CHILD_FILE).is_file():
        raise SideFailed(f"{side.label} {side.rev} ({side.short}) has no {CHILD_FILE}: "
                         f"cdrexp.ab needs {CHILD_MODULE} on both sides")
    probe = subprocess.run(
        [side.python, "-c", "import cdrexp, os; print(os.path.realpath(cdrexp.__file__))"],
        env=side_env(side), cwd=str(side.root), capture_output=True, text=True,
        stdin=subprocess.DEVNULL)
    where = probe.stdout.strip()
    if probe.returncode != 0:
        raise SideFailed(f"{side.label} {side.rev} ({side.short}): importing cdrexp "
                         f"failed: {last_line(probe.stderr)}")
    if not Path(where).is_relative_to(side.root.resolve()):
        raise SideFailed(f"{side.label} {side.rev}: Python imports cdrexp from {where}, "
                         f"not from {side.root}")


def cachegrind_command() -> list[str]:
    """The prefix that counts instructions; raises ``Unavailable`` without valgrind."""
    return [find_tool("valgrind"), "--tool=cachegrind", "--cache-sim=no"]


def measure_run(side: Side, config_file: Path, out_dir: Path, log: Path,
                counter: Optional[list[str]] = None, timeout: Optional[float] = None,
                keep_failed: Optional[Path] = None) -> RunMeasurement:
    """Run one generation of ``side`` on ``config_file`` (whose ``out`` is ``out_dir``)
    and measure it; ``counter`` is ``cachegrind_command()`` for instruction counts.
    ``timeout``: seconds, then the run is stopped (``RunTimedOut``). A failed run's log
    is copied to ``keep_failed`` (a directory) and the message names that copy.
    The output is deleted afterwards, outside the measurement."""
    cmd = [side.python, "-m", CHILD_MODULE, "--config", str(config_file)]
    counts = None
    if counter:
        counts = log.with_suffix(".cachegrind")
        cmd = counter + [f"--cachegrind-out-file={counts}"] + cmd
    result = log.with_suffix(".result.json")
    wrapper = [sys.executable, "-I", "-S", str(REAP_SCRIPT), str(result), "--"]
    try:
        with open(log, "wb") as fh:
            # a session of its own: a run that times out is stopped with all its
            # processes (an interrupt reaches it through stop_running / _stop)
            proc = subprocess.Popen(wrapper + cmd, env=side_env(side,
                                                                fixed_hash_seed=bool(counter)),
                                    cwd=str(log.parent), stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            _RUNNING.add(proc)
            if _STOPPING.is_set():
                _stop(proc)
            try:
                memory = _sampler(proc.pid, counter is None)
                try:
                    try:
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        _stop(proc)
                        raise RunTimedOut(
                            f"{side.label} {side.rev} ({side.short}): a run took longer "
                            f"than {timeout:.0f} s and was stopped"
                            f"{_kept(log, side, keep_failed)}") from None
                finally:
                    if memory is not None:
                        memory.stop()
            except BaseException:
                _stop(proc)
                raise
            finally:
                _RUNNING.discard(proc)
        try:
            figures = json.loads(result.read_text())
        except (OSError, ValueError):
            figures = {"returncode": proc.returncode}
        if proc.returncode != 0 or figures["returncode"] != 0:
            text = log.read_bytes().decode("utf-8", "replace")
            raise SideFailed(f"{side.label} {side.rev} ({side.short}) failed "
                             f"(exit {figures['returncode']}): {last_line(text)}"
                             f"{_kept(log, side, keep_failed)}")
        return RunMeasurement(
            side=side.label, wall_s=figures["wall_s"], cpu_s=figures["cpu_s"],
            peak_pss_bytes=memory.peak_pss if memory is not None else 0,
            instructions=_read_instructions(counts) if counts else None)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        result.unlink(missing_ok=True)
        if counts is not None:
            counts.unlink(missing_ok=True)


def _kept(log: Path, side: Side, keep: Optional[Path]) -> str:
    """`` (log: PATH)`` with PATH a copy of ``log`` that outlives the scratch directory."""
    if keep is None:
        return f" (log: {log})"
    try:
        keep.mkdir(parents=True, exist_ok=True)
        kept = keep / f"{side.label}-{log.name}"
        shutil.copyfile(log, kept)
        return f" (log: {kept})"
    except OSError as exc:
        return f" (its log could not be kept: {exc})"


def _sampler(pid: int, wanted: bool) -> Optional[TreeMemorySampler]:
    if not wanted:
        return None
    try:
        return TreeMemorySampler(pid=pid, interval=MEMORY_INTERVAL_S,
                                 max_cpu_share=0.02).start()
    except psutil.Error:        # the process was already gone
        return None


def _stop(proc: subprocess.Popen) -> None:
    """Interrupted or timed out mid-run: SIGTERM the wrapper (it passes it on to the
    child, which stops its own workers), then SIGKILL the run's whole process group."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)     # whatever is left of the run
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _read_instructions(path: Path) -> int:
    """The ``summary:`` line of a cachegrind output file (events: Ir)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    raise SideFailed(f"cachegrind wrote no instruction count to {path}")


__all__ = ["METRICS", "RunMeasurement", "RunTimedOut", "Side", "SideFailed", "Unavailable",
           "cachegrind_command", "check_side", "measure_run", "side_env", "stop_running"]
