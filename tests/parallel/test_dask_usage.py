"""Remote Dask workers measured like local ones: against a real external cluster (a
``dask scheduler`` and a ``dask worker`` process with two worker processes, started
here), the CPU seconds and peak memory the run reports for its workers must be what the
worker processes themselves used, with the client's own share shown apart."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cdrexp.config import ExecutorConfig, GeneratorConfig, ModelConfig, OutputConfig
from cdrexp.generation import generate
from cdrexp.tracking.measure import measure
from cdrexp.tracking.system import usable_cores

pytestmark = pytest.mark.slow
DASK = Path(sys.executable).parent / "dask"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def _start_detached(argv: list[str], log: Path) -> psutil.Process:
    """Start ``argv`` outside this process's tree (as a cluster's processes are: started
    elsewhere), by letting a shell start it in the background and exit."""
    cmd = " ".join(f"'{a}'" for a in argv)
    out = subprocess.run(["sh", "-c", f"{cmd} >'{log}' 2>&1 & echo $!"],
                         capture_output=True, text=True, check=True)
    return psutil.Process(int(out.stdout.strip()))


@pytest.fixture(scope="module")
def external_cluster(tmp_path_factory):
    """(scheduler address, the ``dask worker`` process whose children are 2 workers)."""
    if not DASK.exists():
        pytest.skip(f"no dask command at {DASK}")
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask-logs")
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs: list[psutil.Process] = []
    try:
        procs.append(_start_detached(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port",
             address.rsplit(":", 1)[1], "--no-dashboard"], logs / "scheduler.log"))
        procs.append(_start_detached(
            [str(DASK), "worker", address, "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard", "--memory-limit", "0"], logs / "worker.log"))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs[1]
    finally:
        for p in reversed(procs):       # only the processes this fixture started
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=30)
        for p in alive:
            p.kill()


def _worker_pids(nanny: psutil.Process) -> set[int]:
    return {p.pid for p in nanny.children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())}


def test_remote_workers_are_measured_from_the_workers(external_cluster, tmp_path):
    address, nanny = external_cluster
    # 60,000 subscribers: ~1.5 CPU-seconds of units on a quiet machine (20,000 made 0.5 s,
    # too little against the idle event loops' share and psutil's resolution)
    cfg = GeneratorConfig(subs=60_000, days=1, seed=3, workers=2, out=str(tmp_path / "o"),
                          model=ModelConfig(chunk_size=2_500),
                          output=OutputConfig(format="csv"),
                          executor=ExecutorConfig(name="dask", address=address))
    # a warm-up, as the runner does: the workers import cdrexp on their first run,
    # before the measurement can start
    generate(cfg)
    workers = _worker_pids(nanny)
    me = {p.pid for p in psutil.Process().children(recursive=True)}
    assert len(workers) >= 2 and not workers & me     # outside the runner's tree
    before = {pid: _cpu(pid) for pid in workers}
    stats, m = measure(lambda: generate(cfg), remote=lambda s: s.cluster)
    after = {pid: _cpu(pid) for pid in workers}

    cluster = stats.cluster
    assert cluster is not None and cluster.processes == stats.workers >= 1
    ran = {int(member.rsplit(":", 1)[1]) for member in cluster.members}
    assert ran <= workers
    # CPU: what the worker processes that ran units used, as psutil sees them from
    # outside over a slightly longer window (their idle event loops add a little)
    seen = sum(after[pid] - before[pid] for pid in ran)
    assert seen > 0.5
    assert cluster.cpu_s == pytest.approx(seen, rel=0.15, abs=0.3)
    assert m.cpu_s == pytest.approx(m.client_cpu_s + cluster.cpu_s)
    # memory: each worker keeps its population after the run, so the peak of the sum
    # is at least what the workers hold now
    now = sum(psutil.Process(pid).memory_full_info().pss for pid in ran)
    assert cluster.peak_pss_bytes >= 0.9 * now
    assert m.peak_pss_bytes >= max(cluster.peak_pss_bytes, m.client_peak_pss_bytes)
    assert m.peak_pss_bytes <= cluster.peak_pss_bytes + m.client_peak_pss_bytes
    assert m.max_processes >= cluster.processes + 1
    # client and workers on this one machine: its cores count once
    assert m.usable_cores == usable_cores()


def test_runner_logs_the_workers_and_the_client_share_apart(external_cluster, tmp_path):
    from mlflow.tracking import MlflowClient

    from cdrexp.tracking import names as N

    address, _ = external_cluster
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [sys.executable, "-m", "cdrexp", "executor=dask", f"executor.address={address}",
         "subs=8000", "workers=2", "repeats=2", "warmup=0", "model.chunk_size=2000",
         "model.cells=50"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "client share" in proc.stdout
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    (run,) = client.search_runs([exp.experiment_id])
    m = run.data.metrics
    # the same metric names as a local run, the workers included; the client apart
    assert m[N.M_CPU_S] > m[N.M_CLIENT_CPU_S] > 0
    assert m[N.M_PEAK_PSS] > m[N.M_CLIENT_PEAK_PSS] > 0
    assert m[N.M_WORKERS] >= 1


def test_workers_in_the_runners_own_tree_are_not_counted_twice(tmp_path):
    """A cluster this process started itself, joined by address: its workers are this
    process's descendants, measured with its tree already."""
    from distributed import Client

    from cdrexp.parallel import _dask_cluster

    lc = _dask_cluster.start_local_cluster(2)
    try:
        with Client(lc):
            cfg = GeneratorConfig(subs=2_000, days=1, seed=3, workers=2,
                                  out=str(tmp_path / "o"),
                                  model=ModelConfig(chunk_size=1_000),
                                  output=OutputConfig(format="none"),
                                  executor=ExecutorConfig(name="dask",
                                                          address=lc.scheduler_address))
            stats = generate(cfg)
    finally:
        _dask_cluster.close_local_cluster(lc)
    assert stats.rows > 0 and stats.cluster is None
