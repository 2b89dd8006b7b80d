"""Runs, sweeps, compare and ab against the stack's MLflow server (PostgreSQL store, S3
artifacts, basic auth): runs land, artifacts are in the bucket and served back, and no
credential shows in any output, param, tag or error, whatever the URI's scheme."""
import json
import subprocess
import sys
import uuid

import pytest

from cdrexp.tracking import names as N

pytestmark = [pytest.mark.team, pytest.mark.slow]


def _client(stack):
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=stack.tracking_uri)


def _runs(stack, tag_filter):
    client = _client(stack)
    exp = client.get_experiment_by_name("cdrexp")
    return client, client.search_runs([exp.experiment_id], filter_string=tag_filter)


def _assert_no_secret(stack, *texts):
    for text in texts:
        for secret in stack.secrets():
            assert secret not in text


def test_run_with_profile_and_s3_output_lands_masked(stack, tmp_path, monkeypatch):
    stack.require("mlflow", "s3")
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                 "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"):
        monkeypatch.setenv(name, stack.env[name])   # artifact downloads read these
    tag = uuid.uuid4().hex
    out = f"s3://{stack.bucket}/runs/{tag}"
    proc = stack.run(["-m", "cdrexp", "subs=3000", "repeats=1", "warmup=0",
                      "profiler=cprofile", f"description={tag}", f"out={out}",
                      "keep_output=true", f"tracking.uri={stack.tracking_uri}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_no_secret(stack, proc.stdout, proc.stderr)
    assert "127.0.0.1" in proc.stdout        # the UI link is there, without user:password
    client, runs = _runs(stack, f"params.description = '{tag}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    _assert_no_secret(stack, json.dumps(run.data.params), json.dumps(run.data.tags))
    assert run.data.params["tracking.uri"].count("***") == 1
    # artifacts: stored in the bucket behind the server, and served back by it (the UI's
    # own route: /get-artifact through the REST API the client uses)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"manifest.json", "system_info.json"} <= names, names
    assert any(a.path.startswith("profile") for a in client.list_artifacts(run.info.run_id))
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "manifest.json"):
        local = client.download_artifacts(run.info.run_id, name, str(tmp_path / "dl"))
        text = open(local).read()
        _assert_no_secret(stack, text)
    assert json.loads(text)["generator"] == "cdrexp"
    import boto3
    s3 = boto3.client("s3", endpoint_url=stack.env["AWS_ENDPOINT_URL_S3"],
                      region_name="us-east-1",
                      aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])
    keys = [o["Key"] for o in s3.list_objects_v2(
        Bucket=stack.bucket, Prefix="mlflow-artifacts/").get("Contents", [])]
    assert any(run.info.run_id in k and k.endswith("manifest.json") for k in keys)


def test_wrong_password_is_one_line_without_it(stack, tmp_path):
    stack.require("mlflow")
    wrong = stack.tracking_uri.replace(stack.password, "not-" + stack.password)
    proc = stack.run(["-m", "cdrexp", "subs=1000", f"tracking.uri={wrong}"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "refused the credentials" in proc.stderr
    _assert_no_secret(stack, proc.stderr, proc.stdout)
    assert "not-" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_eight_runs_at_once_all_land(stack, tmp_path):
    stack.require("mlflow")
    tag = uuid.uuid4().hex
    procs = [subprocess.Popen([sys.executable, "-m", "cdrexp", "subs=1000", "repeats=1",
                               "warmup=0", "workers=1", "output.format=none",
                               f"description={tag}"], cwd=tmp_path, env=stack.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = [(p.wait(timeout=900), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err[-2000:]
        _assert_no_secret(stack, out, err)
    _, runs = _runs(stack, f"params.description = '{tag}'")
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}


def test_sweep_parent_children_and_compare_over_postgresql(stack, tmp_path):
    stack.require("mlflow", "postgres")
    tag = uuid.uuid4().hex
    for _ in range(2):
        proc = stack.run(["-m", "cdrexp", "-m", "subs=1000,2000", "repeats=2", "warmup=0",
                          "workers=1", "output.format=none", f"description={tag}"], tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        _assert_no_secret(stack, proc.stdout, proc.stderr)
    client, jobs = _runs(stack, f"params.description = '{tag}'")
    assert len(jobs) == 4 and {r.info.status for r in jobs} == {"FINISHED"}
    parents = {r.data.tags["mlflow.parentRunId"] for r in jobs}
    assert len(parents) == 2
    for parent in parents:
        assert client.get_run(parent).info.status == "FINISHED"
        assert f"{N.A_SWEEP_DIR}/{N.A_SWEEP_TABLE_CSV}" in {
            a.path for a in client.list_artifacts(parent, N.A_SWEEP_DIR)}
    # compare reads the server's PostgreSQL database directly: masked in every line
    pg = stack.env["CDREXP_STACK_PG_URI"]
    proc = stack.run(["-m", "cdrexp.compare", "--tracking-uri", pg, "--compare"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _assert_no_secret(stack, proc.stdout, proc.stderr)
    bad = pg.replace("@", "x@", 1)
    proc = stack.run(["-m", "cdrexp.compare", "--tracking-uri", bad], tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "***" in proc.stderr
    _assert_no_secret(stack, proc.stdout, proc.stderr)
    # and through the server, with user:password in the URI
    proc = stack.run(["-m", "cdrexp.compare", "--tracking-uri", stack.tracking_uri,
                      "--latest"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    _assert_no_secret(stack, proc.stdout, proc.stderr)


def test_ab_logs_to_the_server_masked(stack, tmp_path):
    stack.require("mlflow")
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    if subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"],
                      capture_output=True).returncode != 0:
        pytest.skip("cdrexp.ab needs the project's git repository")
    proc = stack.run(["-m", "cdrexp.ab", "HEAD", "HEAD", "subs=2000", "--repo", str(repo),
                      "--max-pairs", "2", "--min-pairs", "2", "--max-seconds", "240",
                      "--fail-on-regression", "1000"], tmp_path, timeout=900)
    _assert_no_secret(stack, proc.stdout, proc.stderr)
    assert proc.returncode in (0, 2), proc.stderr[-3000:]   # 2 pairs may not decide
    client, runs = _runs(stack, "tags.`cdrexp.kind` = 'ab'")
    newest = max(runs, key=lambda r: r.info.start_time)
    _assert_no_secret(stack, json.dumps(newest.data.params), json.dumps(newest.data.tags))
    assert client.list_artifacts(newest.info.run_id)
