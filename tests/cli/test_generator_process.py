"""The job's generator process (``python -m cdrexp.cli.repeats``, issue 19): lean, measured
apart from the runner, and stopped or reported as safely as an in-process run was."""
import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from cdrexp.parallel.memory import is_worker
from cdrexp.tracking import names as N

pytestmark = pytest.mark.slow

psutil = pytest.importorskip("psutil")

HEAVY = ("mlflow", "hydra", "omegaconf", "pandas", "scipy", "matplotlib")
# long enough to be stopped mid-run, writing nothing to disk
LONG = ["subs=1000000", "output=none", "workers=2", "warmup=0", "repeats=8",
        "oversubscribe=true"]


def _linux_only():
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only (prctl, /dev/shm, PSS)")


def _runs(cwd):
    from mlflow.tracking import MlflowClient
    c = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    exp = c.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    return c.search_runs([exp.experiment_id], order_by=["attribute.start_time ASC"])


def _start(cwd, *args):
    return subprocess.Popen([sys.executable, "-m", "cdrexp", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _generator(proc, timeout=180):
    """The job's generator process once its two workers run, and the whole tree."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the command ended first: {proc.stderr.read()[-2000:]}")
        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        gens = [p for p in tree if _is_generator(p)]
        if gens and sum(map(is_worker, tree)) >= 2:
            return gens[0], tree
        time.sleep(0.1)
    pytest.fail("the generator's workers never started")


def _is_generator(p) -> bool:
    try:
        return "cdrexp.cli.repeats" in " ".join(p.cmdline())
    except psutil.Error:
        return False


def _finish(proc, tree):
    try:
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for p in tree:
        try:
            p.wait(timeout=30)
        except psutil.Error:
            pass
    return err


def _alive(tree):
    return [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _segments(pids):
    return [n for pid in pids for n in glob.glob(f"/dev/shm/cdrexp_{pid}_*")]


def test_the_generator_process_imports_nothing_of_the_runner(tmp_path):
    """The real job's real generator process: neither MLflow, Hydra, OmegaConf nor the
    analysis libraries (every process of the command notes its modules at exit)."""
    _linux_only()
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(textwrap.dedent(f"""
        import atexit, json, os, sys
        def _note():
            with open(os.path.join({str(probe)!r}, f"modules-{{os.getpid()}}.json"), "w") as f:
                json.dump({{"argv": sys.argv, "modules": sorted(sys.modules)}}, f)
        atexit.register(_note)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(probe), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "cdrexp", "subs=4000", "workers=2",
                           "warmup=1", "repeats=1", "model.chunk_size=1000",
                           "model.cells=50", "oversubscribe=true"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notes = [json.loads(p.read_text()) for p in probe.glob("modules-*.json")]
    # argv[0] of ``python -m M`` is M's file
    by_role = {("generator" if n["argv"][0].endswith("cdrexp/cli/repeats.py") else
                "runner" if n["argv"][0].endswith("cdrexp/__main__.py") else "other"): n
               for n in notes}
    assert {"generator", "runner"} <= set(by_role), [n["argv"] for n in notes]
    # the probe sees what a process imported: the runner has all of it
    assert {"mlflow", "hydra", "omegaconf"} <= set(by_role["runner"]["modules"])
    modules = set(by_role["generator"]["modules"])
    assert "cdrexp.generation" in modules
    assert [m for m in HEAVY if m in modules] == []


def test_sigterm_to_the_job_alone_stops_the_generator(tmp_path):
    """``kill JOB`` (not its process group): the job passes SIGTERM on, the generator
    stops its workers and releases its shared memory, the run is marked KILLED."""
    _linux_only()
    proc = _start(tmp_path, *LONG)
    gen, tree = _generator(proc)
    time.sleep(1.0)             # into a unit
    os.kill(proc.pid, signal.SIGTERM)
    err = _finish(proc, tree)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert _alive(tree) == []
    assert _segments([proc.pid] + [p.pid for p in tree]) == []
    assert "leaked shared_memory" not in err, err[-3000:]
    (run,) = _runs(tmp_path)
    assert run.info.status == "KILLED"
    assert "SIGTERM" in run.data.tags[N.TAG_ERROR]


def test_a_killed_generator_fails_its_job_and_the_sweep_goes_on(tmp_path):
    """``kill -9`` of the first job's generator process: that job fails with one line,
    nothing of its tree is left, and the next job runs."""
    _linux_only()
    proc = _start(tmp_path, "-m", *[a for a in LONG if not a.startswith("subs=")],
                  "subs=1000000,3000")
    gen, tree = _generator(proc)
    time.sleep(1.0)
    os.kill(gen.pid, signal.SIGKILL)
    err = _finish(proc, tree)
    assert proc.returncode == 1, err[-3000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("cdrexp: error")]
    assert errors == [f"cdrexp: error: job #0 failed: the generator process (pid "
                      f"{gen.pid}) died (signal 9, SIGKILL) after 0 of 8 measured "
                      "repeats"], err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert _alive(tree) == []
    assert _segments([p.pid for p in tree]) == []
    assert "leaked shared_memory" not in err, err[-3000:]
    runs = _runs(tmp_path)
    status = {r.data.tags.get(N.TAG_JOB_NUM): r.info.status for r in runs
              if r.data.tags[N.TAG_KIND] == N.KIND_JOB}
    assert status == {"0": "FAILED", "1": "FINISHED"}


def test_a_killed_worker_fails_its_job_in_one_line(tmp_path):
    """``kill -9`` of a worker: the generator names it and its unit, the job fails with
    that line, the generator exits and leaves no shared memory."""
    _linux_only()
    proc = _start(tmp_path, *LONG)
    gen, tree = _generator(proc)
    workers = [p for p in gen.children(recursive=True) if is_worker(p)]
    assert workers, [p.cmdline() for p in tree]
    time.sleep(1.0)
    os.kill(workers[0].pid, signal.SIGKILL)
    err = _finish(proc, tree)
    assert proc.returncode == 1, err[-3000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("cdrexp: error")]
    assert len(errors) == 1 and f"worker pid {workers[0].pid}" in errors[0], err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert _alive(tree) == []
    assert _segments([p.pid for p in tree]) == []
    (run,) = _runs(tmp_path)
    assert run.info.status == "FAILED"
    assert f"worker pid {workers[0].pid}" in run.data.tags[N.TAG_ERROR]
