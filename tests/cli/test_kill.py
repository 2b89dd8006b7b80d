"""``kill -9`` of the runner mid-run (issue 22): its workers exit quietly, no shared memory
is left or warned about, and the next command on the store marks the run KILLED."""
import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from cdrexp.parallel.memory import is_worker
from cdrexp.tracking import names as N

pytestmark = pytest.mark.slow

psutil = pytest.importorskip("psutil")


def _runs(cwd):
    from mlflow.tracking import MlflowClient
    c = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    exp = c.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    return c.search_runs([exp.experiment_id]) if exp else []


def _segments(pids):
    """The shared-memory segments owned by any of ``pids`` (the generator process, the
    runner's child, owns the population's)."""
    return [name for pid in pids for name in glob.glob(f"/dev/shm/cdrexp_{pid}_*")]


def _wait_for_workers(proc, timeout=180):
    """Until the runner has two worker processes and its population's segment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it was killed: {proc.stderr.read()[-2000:]}")
        try:
            kids = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            kids = []
        if (sum(map(is_worker, kids)) >= 2
                and _segments([proc.pid] + [k.pid for k in kids])):
            return kids
        time.sleep(0.1)
    pytest.fail("no workers started")


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("Linux only (prctl, /dev/shm)")
    cwd = tmp_path_factory.mktemp("killed")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdrexp", "subs=60000", "workers=2", "warmup=0",
         "repeats=20", "model.cells=50", "oversubscribe=true"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kids = _wait_for_workers(proc)
    time.sleep(1.0)                 # into a unit
    os.kill(proc.pid, signal.SIGKILL)
    # EOF once every process holding the pipes (the generator, its workers) is gone
    out, err = proc.communicate(timeout=120)
    for k in kids:
        try:
            k.wait(timeout=30)
        except psutil.Error:
            pass
    return cwd, proc.pid, kids, err


def test_the_workers_exit_quietly(killed):
    _, _, kids, err = killed
    assert "Traceback" not in err and "Error" not in err, err[-3000:]
    assert not [k.pid for k in kids if k.is_running()
                and k.status() != psutil.STATUS_ZOMBIE]


def test_no_shared_memory_is_left_or_warned_about(killed):
    _, pid, kids, err = killed
    assert _segments([pid] + [k.pid for k in kids]) == []
    assert "leaked shared_memory" not in err, err[-3000:]


def test_the_run_records_its_process(killed):
    cwd, pid, _, _ = killed
    (run,) = _runs(cwd)
    tags = run.data.tags
    assert tags[N.TAG_OWNER_PID] == str(pid)
    assert float(tags[N.TAG_OWNER_STARTED]) > 0 and tags[N.TAG_OWNER_HOST]


def test_the_next_command_marks_the_orphan_killed(killed, capsys, monkeypatch):
    # `python -m cdrexp.compare --latest` through the main its __main__ calls, in this
    # process (a process spends ~4.5 s of CPU importing MLflow and SciPy); the runner's
    # own process marks an orphan below
    from cdrexp.compare.cli import main as compare_main
    cwd, pid, _, _ = killed
    (run,) = _runs(cwd)
    assert run.info.status == "RUNNING"          # nothing closed it
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    compare_main(["--latest"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "RUNNING" in ln]
    assert lines == [f"cdrexp-compare: run {run.info.run_id} ({run.info.run_name}) was "
                     f"left RUNNING by process {pid}, which is gone: marked KILLED"], err
    (after,) = _runs(cwd)
    assert after.info.status == "KILLED"
    assert f"process {pid}" in after.data.tags[N.TAG_ERROR]
    # said once: the next command finds nothing left to mark
    compare_main(["--latest"])
    assert "marked KILLED" not in capsys.readouterr().err


def test_the_runner_marks_an_orphan_killed_too(tmp_path):
    """A run whose process ended without closing it (here: a process that opened it and
    exited), then the next ``python -m cdrexp`` on the store."""
    opener = subprocess.run([sys.executable, "-c", """
import sys
from cdrexp.tracking import owner_tags
from cdrexp.tracking.store import TrackingStore
store = TrackingStore(None, sys.argv[1])
print(store.create_run("orphan", owner_tags()))
""", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert opener.returncode == 0, opener.stderr[-2000:]
    orphan = opener.stdout.split()[-1]
    proc = subprocess.run([sys.executable, "-m", "cdrexp", "subs=200", "repeats=1",
                           "warmup=0", "workers=1", "model.cells=50"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"cdrexp: run {orphan} (orphan) was left RUNNING by process " in proc.stderr
    status = {r.info.run_id: r.info.status for r in _runs(tmp_path)}
    assert status[orphan] == "KILLED"
    assert list(status.values()).count("FINISHED") == 1
