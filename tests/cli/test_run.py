"""End to end: ``python -m cdrexp`` in an empty directory, then read what MLflow holds."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from cdrexp.tracking import names as N

pytestmark = pytest.mark.slow

TINY = ["repeats=2", "warmup=0", "workers=1", "model.cells=50"]
JOB_METRICS = [N.M_SUBS_PER_S, N.M_RECORDS_PER_S, N.M_MB_PER_S, N.M_WALL_MEDIAN,
               N.M_WALL_MIN, N.M_WALL_MAX, N.M_WALL_STDDEV, N.M_CPU_UTIL, N.M_PEAK_PSS,
               N.M_PEAK_RSS, N.M_PHASE_POPULATION, N.M_PHASE_GENERATION,
               N.M_PHASE_FORMATTING, N.M_PHASE_WRITING, N.M_ROWS, N.M_BYTES, N.M_WALL_STEPS,
               N.M_BASELINE_PSS]
SEED_FIELDS = ["description", "subscribers", "days", "elapsed_seconds", "stddev_seconds",
               "throughput_subs_per_sec", "output_size_kb", "max_memory_bytes"]


def cdrexp(cwd, *args, env_extra=None, timeout=240):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "cdrexp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def client(cwd):
    from mlflow.tracking import MlflowClient
    return MlflowClient(f"sqlite:///{cwd}/mlflow.db")


def all_runs(cwd):
    c = client(cwd)
    exp = c.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    return c, c.search_runs([exp.experiment_id], order_by=["attribute.start_time ASC"])


def artifact_paths(c, run_id, path=None):
    found = []
    for a in c.list_artifacts(run_id, path):
        found += artifact_paths(c, run_id, a.path) if a.is_dir else [a.path]
    return found


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("single")
    # an inherited MLFLOW_RUN_ID must not redirect the run
    proc = cdrexp(cwd, "subs=600", *TINY, "profiler=cprofile",
                  env_extra={"MLFLOW_RUN_ID": "0" * 32})
    return cwd, proc


def test_single_run_succeeds_and_prints_a_result_table(single):
    cwd, proc = single
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cdrexp job: subs=600 days=1 workers=1 csv" in proc.stdout
    assert "subs/s" in proc.stdout and "records/s" in proc.stdout


def test_single_run_is_logged_with_metrics_params_tags(single):
    cwd, _ = single
    c, runs = all_runs(cwd)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_id != "0" * 32
    m, p, t = run.data.metrics, run.data.params, run.data.tags
    for key in JOB_METRICS:
        assert key in m, key
    assert m[N.M_ROWS] > 0 and m[N.M_BYTES] > 0
    assert m[N.M_SUBS_PER_S] == pytest.approx(600 / m[N.M_WALL_MEDIAN])
    assert m[N.M_WALL_MIN] <= m[N.M_WALL_MEDIAN] <= m[N.M_WALL_MAX]
    # the process tree's memory: at least this Python with numpy, well under 4 GB
    assert 20 < m[N.M_PEAK_PSS] < 4000 and m[N.M_PEAK_RSS] >= m[N.M_PEAK_PSS] * 0.9
    assert 0 < m[N.M_BASELINE_PSS] <= m[N.M_PEAK_PSS]
    history = c.get_metric_history(run.info.run_id, N.M_WALL_STEPS)
    assert sorted(h.step for h in history) == [0, 1]
    assert {h.value for h in history} == {m[N.M_WALL_MIN], m[N.M_WALL_MAX]}
    for key, value in {"subs": "600", "days": "1", "workers": "1", "repeats": "2",
                       "warmup": "0", "model.cells": "50", "output.format": "csv",
                       "profiler.name": "cprofile"}.items():
        assert p[key] == value, key
    assert "start" in p and "seed" in p and "out" in p
    assert t[N.TAG_KIND] == N.KIND_JOB
    assert t[N.TAG_HOST] and t[N.TAG_GIT_COMMIT]
    assert N.TAG_MLFLOW_PARENT not in t and N.TAG_SWEEP_ID not in t


def test_single_run_artifacts_and_store_location(single, tmp_path):
    cwd, _ = single
    c, (run,) = all_runs(cwd)
    # the store is MLflow's local default in the directory the command ran from
    assert (cwd / "mlflow.db").is_file()
    assert run.info.artifact_uri.startswith((cwd / "mlruns").as_uri()) or \
        run.info.artifact_uri.startswith(str(cwd / "mlruns"))
    paths = artifact_paths(c, run.info.run_id)
    for expected in (".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml",
                     N.A_SYSTEM_INFO, N.A_BENCHMARK_RESULTS, N.A_RESOLVED_CONFIG,
                     "day_summaries/2025-01-01/summary.json"):
        assert expected in paths, (expected, paths)
    local = c.download_artifacts(run.info.run_id, "", str(tmp_path))
    results = json.load(open(os.path.join(local, N.A_BENCHMARK_RESULTS)))
    for field in SEED_FIELDS:
        assert field in results, field
    assert results["subscribers"] == 600 and results["days"] == 1
    assert results["elapsed_seconds"] == pytest.approx(run.data.metrics[N.M_WALL_MEDIAN])
    system = json.load(open(os.path.join(local, N.A_SYSTEM_INFO)))
    assert system["cpu"]["logical_cores"] >= 1 and system["memory"]["total_bytes"] > 0
    assert system["numpy"]["version"] and "blas" in system["numpy"]
    assert set(system["git"]) >= {"commit", "branch", "dirty"}
    resolved = yaml.safe_load(open(os.path.join(local, N.A_RESOLVED_CONFIG)))
    assert resolved["subs"] == 600
    assert run.data.tags[N.TAG_CONFIG_KEY] == N.config_key(resolved)
    overrides = yaml.safe_load(open(os.path.join(local, ".hydra", "overrides.yaml")))
    assert "subs=600" in overrides
    # the data went into the job's own Hydra directory, and is kept (keep_output)
    out = resolved["out"]
    assert out.startswith(str(cwd / "outputs")) and os.path.isfile(
        os.path.join(out, "manifest.json"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("sweep")
    proc = cdrexp(cwd, "-m", "subs=400,800", *TINY, "repeats=1", "keep_output=false")
    return cwd, proc


def test_sweep_runs_two_jobs_under_a_parent(sweep):
    cwd, proc = sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    c, runs = all_runs(cwd)
    parents = [r for r in runs if r.data.tags.get(N.TAG_KIND) == N.KIND_SWEEP]
    jobs = [r for r in runs if r.data.tags.get(N.TAG_KIND) == N.KIND_JOB]
    assert len(parents) == 1 and len(jobs) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    sweep_id = parent.data.tags[N.TAG_SWEEP_ID]
    assert sorted(int(r.data.params["subs"]) for r in jobs) == [400, 800]
    for r in jobs:
        assert r.info.status == "FINISHED"
        assert r.data.tags[N.TAG_MLFLOW_PARENT] == parent.info.run_id
        assert r.data.tags[N.TAG_SWEEP_ID] == sweep_id
        assert r.data.tags[N.TAG_JOB_NUM] in ("0", "1")
    # the sweep table was printed
    assert "sweep subs=400,800" in proc.stdout


def test_sweep_summary_artifacts(sweep, tmp_path):
    cwd, _ = sweep
    c, runs = all_runs(cwd)
    parent = next(r for r in runs if r.data.tags.get(N.TAG_KIND) == N.KIND_SWEEP)
    paths = artifact_paths(c, parent.info.run_id)
    pngs = [p for p in paths if p.endswith(".png")]
    assert {os.path.basename(p) for p in pngs} >= {
        "throughput_vs_subs.png", "memory_vs_subs.png", "throughput_vs_workers.png",
        "memory_vs_workers.png"}
    local = c.download_artifacts(parent.info.run_id, N.A_SWEEP_DIR, str(tmp_path))
    for p in pngs:
        with open(os.path.join(local, os.path.basename(p)), "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    table = open(os.path.join(local, N.A_SWEEP_TABLE_CSV)).read().splitlines()
    assert len(table) == 3 and table[0].startswith("job,run_id,status,subs")
    assert "| job |" in open(os.path.join(local, N.A_SWEEP_TABLE_MD)).read()
    # keep_output=false: the jobs' data is gone, their Hydra records are not
    job_dirs = [d for d in (cwd / "multirun").glob("*/*/[0-9]")]
    assert len(job_dirs) == 2
    for d in job_dirs:
        assert (d / ".hydra" / "config.yaml").is_file()
        assert not (d / "cdr_out").exists()


def test_profiler_wraps_one_extra_run_and_its_files_are_logged(single):
    cwd, _ = single
    c, (run,) = all_runs(cwd)
    assert run.data.tags[N.TAG_PROFILER] == "cprofile"
    assert run.data.tags[N.TAG_PROFILER_STATUS] == "ok"
    profile = [p for p in artifact_paths(c, run.info.run_id) if p.startswith("profile/")]
    assert any(p.endswith(".pstats") for p in profile), profile
    # the measured runs' data is intact and the profiled run's own output is gone
    (job_dir,) = (cwd / "outputs").glob("*/*")
    assert (job_dir / "cdr_out" / "manifest.json").is_file()
    assert not (job_dir / "profile_out").exists()


def test_a_failing_job_is_marked_failed_and_the_sweep_goes_on(tmp_path):
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    # a file where the run's day directory goes: found only when the run creates it (a
    # foreign manifest.json, used here before, is now refused before any work)
    (bad / "2025-01-01").write_text("not a directory\n")
    proc = cdrexp(tmp_path, "-m", "subs=300", *TINY, "repeats=1", f"out={bad},{good}")
    assert proc.returncode == 1, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cdrexp:")]
    assert len(errors) == 1 and "job #0 failed" in errors[0] and "2025-01-01" in errors[0]
    assert "Traceback" not in proc.stderr
    _, runs = all_runs(tmp_path)
    status = {(r.data.tags[N.TAG_KIND], r.data.tags.get(N.TAG_JOB_NUM)): r.info.status
              for r in runs}
    assert status == {(N.KIND_SWEEP, None): "FAILED", (N.KIND_JOB, "0"): "FAILED",
                      (N.KIND_JOB, "1"): "FINISHED"}
    failed = next(r for r in runs if r.data.tags.get(N.TAG_JOB_NUM) == "0")
    assert "2025-01-01" in failed.data.tags[N.TAG_ERROR]
    assert (good / "manifest.json").is_file()


def test_ctrl_c_marks_runs_killed(tmp_path):
    """SIGINT to the process group (a terminal's Ctrl-C) during a sweep's first job."""
    proc = subprocess.Popen([sys.executable, "-m", "cdrexp", "-m",
                             "subs=400000,400001", "repeats=5", "warmup=0", "workers=1"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        # the first job is generating once its data directory exists (the test stays
        # away from mlflow.db: opening a store that is being created races its set-up)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(
                tmp_path.glob("multirun/*/*/0/cdr_out")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        assert list(tmp_path.glob("multirun/*/*/0/cdr_out")), "the first job never started"
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        # and again, as an impatient user does, while the run and the sweep are closed
        while proc.poll() is None and time.monotonic() < deadline + 60:
            time.sleep(0.3)
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    _, runs = all_runs(tmp_path)
    statuses = {r.data.tags[N.TAG_KIND]: r.info.status for r in runs}
    assert statuses == {N.KIND_JOB: "KILLED", N.KIND_SWEEP: "KILLED"}
    job = next(r for r in runs if r.data.tags[N.TAG_KIND] == N.KIND_JOB)
    parent = next(r for r in runs if r.data.tags[N.TAG_KIND] == N.KIND_SWEEP)
    assert "interrupted" in job.data.tags[N.TAG_ERROR]
    # the last line says what became of the runs
    assert err.splitlines()[-1] == (
        f"cdrexp: interrupted (SIGINT); run {job.info.run_id} marked KILLED; "
        f"sweep parent run {parent.info.run_id} marked KILLED")


def test_commands_started_together_in_a_new_directory_all_land(tmp_path):
    """Issue 14: started at once in a directory without a store, runs were lost (MLflow's
    migrations raced), runs of the same second shared outputs/<date>/<time>, and sweeps
    of the same second filed their jobs under one parent. Two runs and two sweeps (these
    even share their sweep directory) start together here."""
    import sqlite3
    tiny = [*TINY, "repeats=1", "subs=300"]
    commands = {
        "run1": ["seed=1"], "run2": ["seed=2"],
        "sweepA": ["-m", "seed=3,4", "hydra.sweep.dir=shared", f"out={tmp_path}/a"],
        "sweepB": ["-m", "seed=5,6", "hydra.sweep.dir=shared", f"out={tmp_path}/b"],
    }
    env = dict(os.environ)
    procs = {name: subprocess.Popen([sys.executable, "-m", "cdrexp", *args, *tiny],
                                    cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, args in commands.items()}
    results = {name: p.communicate(timeout=400) for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, (name, results[name][1][-3000:])
    _, runs = all_runs(tmp_path)
    jobs = [r for r in runs if r.data.tags.get(N.TAG_KIND) == N.KIND_JOB]
    parents = {r.info.run_id: r for r in runs if r.data.tags.get(N.TAG_KIND) == N.KIND_SWEEP}
    assert sorted(int(r.data.params["seed"]) for r in jobs) == [1, 2, 3, 4, 5, 6]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len(parents) == 2
    for r in jobs:
        seed = r.data.params["seed"]
        if seed in ("1", "2"):
            assert N.TAG_MLFLOW_PARENT not in r.data.tags
            continue
        parent = parents[r.data.tags[N.TAG_MLFLOW_PARENT]]
        assert f"seed={'3,4' if seed in '34' else '5,6'}" in parent.data.tags["overrides"]
        assert r.data.tags[N.TAG_SWEEP_ID] == parent.data.tags[N.TAG_SWEEP_ID]
    # each single run has its own directory, holding its own data and results
    run_dirs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(run_dirs) == 2, run_dirs
    seeds = set()
    for d in run_dirs:
        (override,) = [o for o in yaml.safe_load(open(d / ".hydra" / "overrides.yaml"))
                       if o.startswith("seed=")]
        results_json = json.loads((d / N.A_BENCHMARK_RESULTS).read_text())
        assert override in results_json["overrides"]
        assert (d / "cdr_out" / "manifest.json").is_file()
        seeds.add(override)
    assert seeds == {"seed=1", "seed=2"}
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
    assert not [t for t in tables if t.startswith("_alembic_tmp")], tables


def test_memory_is_one_unit_in_mlflow_results_json_and_the_export(single, tmp_path,
                                                                   monkeypatch):
    """peak_pss_mb (MLflow), max_memory_bytes (benchmark_results.json) and the export's
    max_memory_bytes are one figure in one unit: MB = 10^6 bytes."""
    import csv

    cwd, _ = single
    c, (run,) = all_runs(cwd)
    results = json.load(open(c.download_artifacts(run.info.run_id, N.A_BENCHMARK_RESULTS,
                                                  str(tmp_path))))
    pss_mb = run.data.metrics[N.M_PEAK_PSS]
    assert results["max_memory_bytes"] == results["peak_pss_bytes"]
    assert results["max_memory_bytes"] == pytest.approx(pss_mb * 10**6, abs=1)
    target = tmp_path / "runs.csv"
    # `python -m cdrexp.compare --export-csv` in the run's directory, through the main
    # its __main__ calls, in this process (tests/compare/ starts it as a process)
    from cdrexp.compare.cli import main as compare_main
    monkeypatch.chdir(cwd)
    assert compare_main(["--export-csv", str(target)]) == 0
    (row,) = list(csv.DictReader(open(target)))
    assert int(row["max_memory_bytes"]) == pytest.approx(results["max_memory_bytes"], abs=1)
