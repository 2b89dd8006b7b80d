"""hydra/launcher=slurm on the stack's one-node SLURM cluster: each job a SLURM job, the
parent run, children and summary of a local sweep; a job cancelled by scancel is that
job's failure (one line, run KILLED), and the sweep's other jobs finish."""
import re
import subprocess
import sys
import time
import uuid

import pytest

from cdrexp.tracking import names as N

pytestmark = [pytest.mark.team, pytest.mark.slow]


def _runs(stack, tag):
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=stack.tracking_uri)
    exp = client.get_experiment_by_name("cdrexp")
    return client, client.search_runs([exp.experiment_id],
                                      filter_string=f"params.description = '{tag}'")


@pytest.mark.timeout(900)
def test_sweep_runs_as_slurm_jobs_like_a_local_sweep(stack, tmp_path):
    stack.require("slurm", "mlflow")
    tag = uuid.uuid4().hex
    proc = stack.run(["-m", "cdrexp", "-m", "subs=1000,2000", "repeats=1", "warmup=0",
                      "output.format=none", f"description={tag}", "hydra/launcher=slurm"],
                     tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, jobs = _runs(stack, tag)
    assert len(jobs) == 2 and {r.info.status for r in jobs} == {"FINISHED"}
    parents = {r.data.tags[N.TAG_MLFLOW_PARENT] for r in jobs}
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.info.status == "FINISHED" and parent.data.metrics["jobs_finished"] == 2
    # each ran as a SLURM job: submitit's folder holds their logs, named by SLURM job id
    logs = list(tmp_path.glob("multirun/*/*/.submitit/*/*_log.out"))
    assert len(logs) == 2


@pytest.mark.timeout(900)
def test_scancel_is_that_jobs_failure(stack, tmp_path):
    stack.require("slurm", "mlflow")
    tag = uuid.uuid4().hex
    # job #0 long (many repeats), job #1 short; SLURM runs them one after the other
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdrexp", "-m", "subs=5000", "repeats=200,1", "warmup=0",
         "output.format=none", f"description={tag}", "hydra/launcher=slurm"],
        cwd=tmp_path, env=stack.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        job_id = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job_id is None:
            time.sleep(1)
            q = subprocess.run(["squeue", "-h", "-o", "%i %T %j"], capture_output=True,
                               text=True, env=stack.env)
            _, runs = _runs(stack, tag)
            running = [ln.split()[0] for ln in q.stdout.splitlines() if " RUNNING " in ln]
            if running and runs:        # the job has opened its MLflow run
                job_id = running[0]
        assert job_id, "no SLURM job started"
        subprocess.run(["scancel", job_id], check=True, env=stack.env)
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    assert re.search(r"cdrexp: error: job #\d failed: killed by SLURM", err), err[-3000:]
    client, jobs = _runs(stack, tag)
    statuses = sorted(r.info.status for r in jobs)
    assert "KILLED" in statuses and "FINISHED" in statuses, statuses
    killed = [r for r in jobs if r.info.status == "KILLED"][0]
    assert "killed by SLURM" in killed.data.tags[N.TAG_ERROR]
    parent = client.get_run(killed.data.tags[N.TAG_MLFLOW_PARENT])
    assert parent.info.status == "FAILED"
