"""The Dask executor: same bytes as the serial reference, retries, failures, clusters.

One 2-worker LocalCluster is shared by the module (starting one costs seconds); the
executor joins it through ``executor.address``, which is also how a user points a run at
an existing cluster. One test lets the executor start (and close) its own cluster.
Fault-injecting unit functions are defined here: the workers are forked from a
forkserver started after pytest put this directory on ``sys.path`` (restarted ones are
spawned with it), so they import this module by name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pstats
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import psutil
import pytest
from distributed import Client
from omegaconf import OmegaConf

from cdrexp.config import (ExecutorConfig, GeneratorConfig, ModelConfig, OutputConfig,
                           config_to_dict)
from cdrexp.generation import generate
from cdrexp.model import build_population, plan_units
from cdrexp.parallel import (ExecutionError, SerialExecutor, _dask_cluster, _dask_worker,
                             make_executor)
from cdrexp.parallel.dask import DaskExecutor
from cdrexp.parallel.work import run_unit
from cdrexp.parallel import worker_profiling
from cdrexp.writers import part_name, prepare_output

FAILING_CHUNK = 2


def _cfg(out: Path, **executor) -> GeneratorConfig:
    # 6 units of 500 subscribers; parts rotate at ~0.5 MB, so a unit writes several files
    return GeneratorConfig(
        subs=3000, days=1, start="2025-01-06", seed=7, workers=2, out=str(out),
        model=ModelConfig(chunk_size=500), output=OutputConfig(rotate_bytes=500_000),
        executor=ExecutorConfig(name="dask", **executor))


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden temp files included, so they show)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cluster():
    # started like the executor starts its own; the executor joins it by address. A
    # worker that dies running a unit fails it at once (Dask's default allows 3 deaths)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        lc = _dask_cluster.start_local_cluster(2)
    try:
        with Client(lc) as client:
            yield lc.scheduler_address, client
    finally:
        _dask_cluster.close_local_cluster(lc)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The serial executor's output: what every executor must reproduce byte for byte."""
    cfg = _cfg(tmp_path_factory.mktemp("serial") / "out")
    cfg = dataclasses.replace(cfg, workers=1, executor=ExecutorConfig(name="local"))
    stats = generate(cfg, executor=SerialExecutor())
    tree = _tree(Path(cfg.out))
    assert any(p.endswith(".csv") for p in tree) and stats.rows > 0
    return stats, tree


def _attempt(marker_dir: Path, unit) -> int:
    """Count this attempt at ``unit`` with a marker file (attempts run in other processes,
    and a retry may land on another worker); returns how many came before it."""
    name = f"{unit.date.isoformat()}_c{unit.chunk:05d}"
    before = len(list(marker_dir.glob(f"{name}.*")))
    (marker_dir / f"{name}.{os.getpid()}.{before}").touch()
    return before


def fails_first_attempt(cfg, population, unit):
    if unit.chunk == FAILING_CHUNK and _attempt(Path(cfg.out).parent / "markers", unit) == 0:
        raise RuntimeError("injected failure on the first attempt")
    return run_unit(cfg, population, unit)


def fails_mid_write(cfg, population, unit):
    """The failing chunk dies on its 4th write: its first part is complete by then, the
    second is half-written (what a full disk or a killed upload leaves)."""
    if unit.chunk != FAILING_CHUNK:
        return run_unit(cfg, population, unit)
    _attempt(Path(cfg.out).parent / "markers", unit)
    from cdrexp.writers import _part
    original, calls = _part.PartFile.write, []

    def write(self, data):
        calls.append(1)
        if len(calls) == 4:
            raise OSError(28, "No space left on device (injected)")
        return original(self, data)

    _part.PartFile.write = write
    try:
        return run_unit(cfg, population, unit)
    finally:
        _part.PartFile.write = original


def killed_after_first_part(cfg, population, unit):
    """The failing chunk's worker is killed (SIGKILL: no cleanup of its own) right after
    its first part got its final name: what an OOM kill or a lost node leaves."""
    if unit.chunk != FAILING_CHUNK:
        return run_unit(cfg, population, unit)
    from cdrexp.writers import _part
    original = _part.PartFile.commit

    def commit(self, rows):
        info = original(self, rows)
        os.kill(os.getpid(), signal.SIGKILL)
        return info

    _part.PartFile.commit = commit
    return run_unit(cfg, population, unit)


def run_unit_without_malloc_trim(cfg, population, unit):
    # set at all, it turns glibc's adaptive mmap threshold off (slower units)
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ
    return run_unit(cfg, population, unit)


def _builds(client) -> dict[str, dict]:
    return client.run(_dask_worker.worker_state)


def test_output_identical_to_serial_and_population_built_once_per_worker(
        cluster, reference, tmp_path):
    address, client = cluster
    ref_stats, ref_tree = reference
    before = _builds(client)
    cfg = _cfg(tmp_path / "out", address=address)
    seen = []
    stats = generate(cfg, on_progress=seen.append)

    assert _tree(Path(cfg.out)) == ref_tree
    assert stats.rows_by_type == ref_stats.rows_by_type
    # and executor=local, the shared-memory pool, writes the same bytes
    local = dataclasses.replace(cfg, out=str(tmp_path / "local"),
                                executor=ExecutorConfig(name="local"))
    generate(local)
    assert _tree(Path(local.out)) == ref_tree
    n_units = len(plan_units(cfg))
    assert [p.units_done for p in seen] == list(range(1, n_units + 1))
    assert seen[-1].rows_written == ref_stats.rows
    after = _builds(client)
    key = _dask_worker.population_key(cfg)
    new_builds = {w: after[w]["builds"] - before[w]["builds"] for w in after}
    # 6 units on 2 workers: every worker that ran units built the population once
    assert all(n <= 1 for n in new_builds.values()) and sum(new_builds.values()) >= 1
    # workers_used: the worker processes that ran units, i.e. built a population
    assert stats.workers == sum(new_builds.values())
    assert all(after[w]["key"] == key for w in after if new_builds[w])


def test_population_key_ignores_where_and_how_units_run(tmp_path):
    cfg = _cfg(tmp_path / "a")
    moved = dataclasses.replace(cfg, out="s3://bucket/x", workers=8,
                                executor=ExecutorConfig(name="local"),
                                output=OutputConfig(format="parquet"))
    assert _dask_worker.population_key(moved) == _dask_worker.population_key(cfg)
    assert (_dask_worker.population_key(dataclasses.replace(cfg, seed=8))
            != _dask_worker.population_key(cfg))
    assert (_dask_worker.population_key(dataclasses.replace(cfg, subs=3001))
            != _dask_worker.population_key(cfg))


def test_unit_failing_once_succeeds_on_retry(cluster, reference, tmp_path):
    address, _ = cluster
    (tmp_path / "markers").mkdir()
    cfg = _cfg(tmp_path / "out", address=address, retries=1)
    generate(cfg, executor=DaskExecutor(cfg.executor, 2, unit_fn=fails_first_attempt))

    assert len(list((tmp_path / "markers").iterdir())) == 2   # failed, then succeeded
    assert _tree(Path(cfg.out)) == reference[1]


def test_unit_failing_for_good_fails_the_run_naming_it(cluster, reference, tmp_path):
    address, client = cluster
    (tmp_path / "markers").mkdir()
    cfg = _cfg(tmp_path / "out", address=address, retries=1)
    failing = plan_units(cfg)[FAILING_CHUNK]
    with pytest.raises(ExecutionError, match=f"unit {failing.name} failed after 2 attempts"
                                             ".*No space left on device"):
        generate(cfg, executor=DaskExecutor(cfg.executor, 2, unit_fn=fails_mid_write))

    assert len(list((tmp_path / "markers").iterdir())) == 2   # the retry ran, and failed
    written = _tree(Path(cfg.out))
    # the run waited for the units still running: nothing of it lands afterwards
    time.sleep(1.0)
    assert _tree(Path(cfg.out)) == written
    assert not any(client.processing().values())
    # every file under a final name is complete (identical to the reference); the
    # half-written part of the failing unit left nothing, not even a temp file
    assert written and all(sha == reference[1].get(path) for path, sha in written.items())
    failing_prefix = _unit_prefix(failing)
    assert sum(p.startswith(failing_prefix) for p in reference[1]) >= 2, \
        "the failing unit must have several parts for this test to mean something"
    # the writers' all-or-nothing unit: its part completed before the fault is gone too
    assert not any(p.startswith(failing_prefix) for p in written)
    assert not any("/." in p or p.startswith(".") for p in written), "temp files left"


def test_worker_killed_mid_unit_leaves_no_part_of_it(cluster, reference, tmp_path):
    address, client = cluster
    cfg = _cfg(tmp_path / "out", address=address)
    failing = plan_units(cfg)[FAILING_CHUNK]
    # the units queued on the dead worker fail with it (this cluster allows no worker
    # death): the one named may be another
    with pytest.raises(ExecutionError, match=r"unit 2025-01-06/c0000\d failed: the Dask "
                                             "workers running it died"):
        generate(cfg, executor=DaskExecutor(cfg.executor, 2,
                                            unit_fn=killed_after_first_part))
    written = _tree(Path(cfg.out))
    assert written and all(sha == reference[1].get(path) for path, sha in written.items())
    # the killed worker had renamed its first part: the run removed it
    assert not any(p.startswith(_unit_prefix(failing)) for p in written)
    client.wait_for_workers(2, timeout=60)      # the nanny restarts the worker


def test_run_waits_on_its_own_client_not_the_callers(cluster, monkeypatch, tmp_path):
    # the module's `with Client(...)` is current here, as a notebook's would be: the
    # run's wait()/as_completed() must still use the run's client and its event loop
    # (on the caller's loop, a result lost with its worker and recomputed raised
    # "bound to a different event loop" instead of the unit's error)
    from distributed import default_client

    address, caller = cluster
    assert default_client() is caller
    seen = []
    collect = DaskExecutor._collect

    def spy(self, futures, units, on_progress):
        seen.append((default_client(), futures[0].client))
        return collect(self, futures, units, on_progress)

    monkeypatch.setattr(DaskExecutor, "_collect", spy)
    generate(_cfg(tmp_path / "out", address=address))
    (current, owner), = seen
    assert current is owner and current is not caller
    assert default_client() is caller        # given back afterwards


class _LostThenFailed:
    """A future seen finished, whose result was lost with its worker and whose
    recomputation then failed: what ``result()`` meets in that race."""
    key = "k0"

    def __init__(self):
        self.status = "finished"

    def result(self):
        self.status = "error"
        raise self.exception()

    def exception(self):
        return RuntimeError("recomputation failed")


def test_result_lost_after_finishing_is_the_units_error(monkeypatch, tmp_path):
    import distributed

    monkeypatch.setattr(distributed, "as_completed", iter)
    unit = plan_units(_cfg(tmp_path / "out"))[0]
    executor = DaskExecutor(ExecutorConfig(name="dask"), 2)
    with pytest.raises(ExecutionError, match=f"unit {unit.name} failed after \\d+ attempts?: "
                                             "RuntimeError: recomputation failed") as err:
        executor._collect([_LostThenFailed()], [unit], None)
    assert err.value.units == [unit]


def _unit_prefix(unit) -> str:
    return part_name(unit.date.isoformat(), unit.chunk, 0, "csv").rsplit("_p", 1)[0]


def test_fsspec_url_output(cluster, reference, tmp_path):
    address, _ = cluster
    out = tmp_path / "out"
    cfg = _cfg(out, address=address)
    cfg = dataclasses.replace(cfg, out=out.as_uri())    # file:///...: through fsspec
    generate(cfg)
    assert _tree(out) == reference[1]


def test_unreachable_scheduler_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(_dask_cluster, "CONNECT_TIMEOUT_S", 1)
    cfg = _cfg(tmp_path / "out", address="tcp://127.0.0.1:9")
    with pytest.raises(ExecutionError, match="executor.address: cannot reach a Dask "
                                             "scheduler at tcp://127.0.0.1:9"):
        DaskExecutor(cfg.executor, 2).run(cfg, None, plan_units(cfg))


def test_own_local_cluster_is_started_and_closed(reference, tmp_path, monkeypatch):
    # the cluster's workers inherit the environment, so a profiler's worker hook reaches
    # them: each worker process leaves its own profile
    monkeypatch.setenv(worker_profiling.ENV_VAR, f"cprofile:{tmp_path / 'prof'}")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    environ_before = dict(os.environ)
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    cfg = _cfg(tmp_path / "out")                      # no address: a LocalCluster of 2
    assert isinstance(make_executor(cfg), DaskExecutor)
    executor = DaskExecutor(cfg.executor, 2, unit_fn=run_unit_without_malloc_trim)
    stats = generate(cfg, executor=executor)

    assert executor.workers == 2
    # Dask's nannies set variables in this process before spawning workers: undone
    assert dict(os.environ) == environ_before
    assert _tree(Path(cfg.out)) == reference[1]
    profiles = sorted((tmp_path / "prof").glob("worker-*.pstats"))
    assert 1 <= len(profiles) <= 2
    assert stats.workers == len(profiles)       # the worker processes that ran units
    assert any(fn == "run_unit" for p in profiles
               for (_, _, fn) in pstats.Stats(str(p)).stats)
    # the cluster's processes (scheduler and nannies are in-process, workers are not)
    # end; multiprocessing's resource tracker, started once per process, stays
    _, alive = psutil.wait_procs(
        [p for p in me.children(recursive=True)
         if p.pid not in children_before and not _is_resource_tracker(p)], timeout=30)
    assert not alive, f"cluster processes left running: {[p.pid for p in alive]}"


def _is_resource_tracker(proc: psutil.Process) -> bool:
    try:
        return any("resource_tracker" in arg for arg in proc.cmdline())
    except psutil.NoSuchProcess:
        return False


def _compose(overrides: list[str], hydra_node: bool = True):
    from hydra import compose, initialize_config_module

    with initialize_config_module("cdrexp.conf", version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=hydra_node)


def test_executor_group_selects_dask_and_an_address():
    from cdrexp.config import to_config

    raw = _compose(["executor=dask", "executor.address=tcp://dask-scheduler:8786"], False)
    raw.out = "unused"      # the root config points it into Hydra's run directory
    cfg = to_config(raw, validate_all=False)
    assert cfg.executor == ExecutorConfig(name="dask", address="tcp://dask-scheduler:8786",
                                          retries=2)
    assert to_config({"executor": _compose(["executor=local"], False).executor},
                     validate_all=False).executor.name == "local"


def test_slurm_launcher_preset_asks_for_whole_nodes():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="optional extra 'cluster' (hydra-submitit-launcher)")
    launcher = _compose(["hydra/launcher=slurm"]).hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.additional_parameters.exclusive is True    # timed jobs share no cores
    assert launcher.cpus_per_task >= 2 and launcher.nodes == 1


def test_joblib_launcher_preset_loads():
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher",
                        reason="optional extra 'cluster' (hydra-joblib-launcher)")
    launcher = _compose(["hydra/launcher=joblib_untimed"]).hydra.launcher
    assert launcher._target_.endswith("JoblibLauncher") and launcher.n_jobs == 2


# ---- a run stopped by a signal: python -m cdrexp.cli.child with executor=dask ----------

GONE_WITHIN_S = 30.0


def _final_parts(out: Path) -> list[Path]:
    return [p for p in out.glob("*/cdr_*") if not p.name.startswith(".")]


def _chunk_of(part: Path) -> int:
    return int(part.name.split("_c", 1)[1].split("_", 1)[0])


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_run_stopped_by_signal_ends_its_cluster_and_keeps_only_whole_units(tmp_path, how):
    cfg = _cfg(tmp_path / "out")
    cfg = dataclasses.replace(cfg, subs=300_000, model=ModelConfig(chunk_size=20_000),
                              output=OutputConfig(rotate_bytes=4_000_000))
    cfg_file = tmp_path / "cfg.yaml"
    OmegaConf.save(config_to_dict(cfg), cfg_file)
    proc = subprocess.Popen([sys.executable, "-m", "cdrexp.cli.child", "--config",
                             str(cfg_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    out = Path(cfg.out)
    deadline = time.monotonic() + 120
    # parts of 3 chunks on disk: with 2 workers, one unit is whole and others are running
    while len({_chunk_of(p) for p in _final_parts(out)}) < 3:
        assert proc.poll() is None, f"run ended early: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no unit finished in time"
        time.sleep(0.05)
    procs = psutil.Process(proc.pid).children(recursive=True)
    assert len(procs) >= 2
    if how == "ctrl-c":     # a terminal's Ctrl-C reaches the whole process group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    name = "SIGINT" if how == "ctrl-c" else "SIGTERM"
    assert proc.returncode != 0
    assert f"{name} received: run stopped, Dask tasks cancelled" in err, err
    _, alive = psutil.wait_procs(procs, timeout=GONE_WITHIN_S)
    assert not alive, f"still running after the run ended: {alive}"

    # what is left is whole units only, byte for byte what the serial run writes
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("*/.*")), "temp files left"
    chunks = {_chunk_of(p) for p in _final_parts(out)}
    assert chunks and len(chunks) < len(plan_units(cfg))
    ref = dataclasses.replace(cfg, out=str(tmp_path / "ref"))
    population = build_population(ref)
    prepare_output(ref, population)
    SerialExecutor().run(ref, population, [u for u in plan_units(ref) if u.chunk in chunks])
    assert _tree(out) == _tree(Path(ref.out))


def test_bad_address_or_unusable_url_is_a_config_error_before_any_work(tmp_path,
                                                                        monkeypatch):
    from cdrexp.config import ConfigError, validate

    with pytest.raises(ConfigError, match=r"^executor.address: expected a Dask scheduler "
                                          r"address such as tcp://HOST:8786, got 'h:8786'"):
        validate(_cfg(tmp_path / "out", address="h:8786"))
    with pytest.raises(ConfigError, match=r"^out: unknown fsspec protocol 'nonesuch'"):
        validate(dataclasses.replace(_cfg(tmp_path / "out"), out="nonesuch://b/x"))

    import fsspec

    def missing(protocol):
        raise ImportError(f"Install {protocol}fs to access {protocol}")
    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    with pytest.raises(ConfigError, match=r"^out: 's3://b/x' needs a package that is not "
                                          r"installed: Install s3fs"):
        validate(dataclasses.replace(_cfg(tmp_path / "out"), out="s3://b/x"))
