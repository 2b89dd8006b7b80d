"""Faults hit a LocalExecutor run in its own process (fault_driver.py, fake units).

In every case: the run ends non-zero naming what happened, every process it started is
gone within a (generous: the machine is loaded) bound, every file under a final name is
whole, nothing of the run is left in /dev/shm, and the resource tracker neither warned of
a leak nor crashed. The same faults against the real generator (cli.child) are in
test_local_generate.py.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from parallel_fakes import read_unit_file

from cdrexp.parallel.memory import is_worker

DRIVER = Path(__file__).with_name("fault_driver.py")
GONE_WITHIN_S = 20.0
pytestmark = pytest.mark.slow


def segments_of(pid: int) -> list[str]:
    return [f for f in os.listdir("/dev/shm") if f.startswith(f"cdrexp_{pid}_")]


def tracker_complaints(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "leaked shared_memory" in line or "resource_tracker" in line
            or line.startswith("KeyError")]


@pytest.fixture(params=[(None, ""), ("forkserver", ""), (None, "2")],
                ids=["forked", "forkserver", "two-step"])
def start(request):
    """Both ways workers start: forked from the driver (its own choice), and from the
    forkserver (a parent that runs threads, or Parquet); and forked workers running
    the fake unit's two-step form, each holding up to two units."""
    return request.param


class Run:
    def __init__(self, out: Path, mode: str, start, workers: int = 2):
        self.out = out
        self.start, kind = start
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), str(out), mode + kind, str(workers)]
            + ([self.start] if self.start else []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)    # its own process group, as a terminal job
        self.ps = psutil.Process(self.proc.pid)

    def wait_progress(self, n: int) -> list[str]:
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.strip() == f"progress {n}":
                return lines
        raise AssertionError(f"run ended before {n} units: {lines}, "
                             f"{self.proc.stderr.read()}")

    def descendants(self) -> list[psutil.Process]:
        return self.ps.children(recursive=True)

    def workers(self) -> list[psutil.Process]:
        found = [p for p in self.descendants() if is_worker(p)]
        # forked: the driver's children; else the forkserver's
        assert all((p.ppid() == self.proc.pid) == (self.start is None) for p in found)
        return found

    def finish(self) -> tuple[int, str, float]:
        t0 = time.monotonic()
        procs = self.descendants()
        out, err = self.proc.communicate(timeout=60)
        _, alive = psutil.wait_procs(procs, timeout=GONE_WITHIN_S)
        assert not alive, f"still running after the run ended: {alive}"
        return self.proc.returncode, err, time.monotonic() - t0


def assert_clean(run: Run, err: str, allow_tmp: int = 0) -> None:
    assert segments_of(run.proc.pid) == []
    assert tracker_complaints(err) == []
    names = os.listdir(run.out)
    finals = [n for n in names if not n.endswith(".tmp")]
    assert all(read_unit_file(str(run.out / n))["complete"] for n in finals)
    assert len([n for n in names if n.endswith(".tmp")]) <= allow_tmp


def test_normal_run_prints_nothing_and_leaves_nothing(tmp_path, start):
    run = Run(tmp_path, "ok", start)
    rc, err, _ = run.finish()
    assert rc == 0, err
    assert err == ""                          # not even a resource-tracker warning
    assert len(os.listdir(tmp_path)) == 8
    assert_clean(run, err)


def test_failing_unit(tmp_path, start):
    run = Run(tmp_path, "error", start)
    rc, err, _ = run.finish()
    assert rc != 0
    assert "ExecutionError: unit 2025-01-01/c00003 failed in worker pid" in err
    assert_clean(run, err)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_signal_mid_run(tmp_path, how, start):
    run = Run(tmp_path, "slow", start)
    run.wait_progress(3)
    assert len(run.workers()) == 2
    if how == "ctrl-c":             # a terminal's Ctrl-C reaches the whole process group
        os.killpg(run.proc.pid, signal.SIGINT)
    else:
        os.kill(run.proc.pid, signal.SIGTERM)
    rc, err, took = run.finish()
    name = "SIGINT" if how == "ctrl-c" else "SIGTERM"
    assert rc != 0
    assert re.search(rf"Interrupted: {name} received: run stopped, workers ended, shared "
                     r"memory released; \d+ of 40 units were complete", err), err
    assert took < GONE_WITHIN_S
    assert_clean(run, err)          # the stopped workers removed their temp files
    assert 3 <= len(os.listdir(tmp_path)) < 40


def test_worker_killed_mid_run(tmp_path, start):
    run = Run(tmp_path, "slow", start)
    run.wait_progress(3)
    victim = run.workers()[0]
    victim.send_signal(signal.SIGKILL)
    rc, err, took = run.finish()
    assert rc != 0
    units = r"2025-01-01/c000\d\d( and 2025-01-01/c000\d\d)?"
    assert re.search(rf"ExecutionError: worker pid {victim.pid} died \(signal 9, SIGKILL\) "
                     rf"while running unit {units}\n", err), err
    assert took < GONE_WITHIN_S
    # the killed worker could not remove its temp file: the parent did
    assert_clean(run, err)
