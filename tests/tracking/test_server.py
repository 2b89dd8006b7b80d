"""``mlflow server`` started in the directory of a sweep serves its runs, metrics and
artifacts over the REST API (what ``mlflow ui`` shows), with no option but host/port."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from cdrexp.tracking import names as N

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base, endpoint, **params):
    url = f"{base}{endpoint}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def post(base, path, body):
    req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("served")
    sweep = subprocess.run([sys.executable, "-m", "cdrexp", "-m", "subs=300,600",
                            "workers=1", "repeats=2", "warmup=0", "keep_output=false"],
                           cwd=cwd, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    log = open(cwd / "server.log", "w")
    # no background job runner (a dozen huey processes on a 2-core machine); the REST
    # API and the store are the same
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = subprocess.Popen([str(mlflow), "server", "--host", "127.0.0.1", "--port",
                             str(port), "--workers", "1"], cwd=cwd, stdout=log, env=env,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(base, "/health") is not None:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("mlflow server did not start:\n"
                                     + (cwd / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc, timeout=20.0):
    """SIGTERM the server's process group, wait until every member is gone."""
    os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def search(base, filter_string):
    exp = json.loads(get(base, "/api/2.0/mlflow/experiments/get-by-name",
                         experiment_name=N.DEFAULT_EXPERIMENT))["experiment"]
    return post(base, "/api/2.0/mlflow/runs/search",
                {"experiment_ids": [exp["experiment_id"]], "filter": filter_string,
                 "max_results": 100}).get("runs", [])


def tags(run):
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_server_lists_the_sweep_and_its_jobs(server):
    parents = search(server, f"tags.`{N.TAG_KIND}` = '{N.KIND_SWEEP}'")
    assert len(parents) == 1
    parent = parents[0]
    sweep_id = tags(parent)[N.TAG_SWEEP_ID]
    jobs = search(server, f"tags.`{N.TAG_SWEEP_ID}` = '{sweep_id}' and "
                          f"tags.`{N.TAG_KIND}` = '{N.KIND_JOB}'")
    assert len(jobs) == 2
    for job in jobs:
        assert job["info"]["status"] == "FINISHED"
        assert tags(job)[N.TAG_MLFLOW_PARENT] == parent["info"]["run_id"]
        metrics = {m["key"]: m["value"] for m in job["data"]["metrics"]}
        assert metrics[N.M_SUBS_PER_S] > 0 and metrics[N.M_PEAK_PSS] > 0
        params = {p["key"]: p["value"] for p in job["data"]["params"]}
        assert params["subs"] in ("300", "600")


def test_server_serves_metric_history(server):
    job = search(server, f"tags.`{N.TAG_KIND}` = '{N.KIND_JOB}'")[0]
    history = json.loads(get(server, "/api/2.0/mlflow/metrics/get-history",
                             run_id=job["info"]["run_id"], metric_key=N.M_WALL_STEPS))
    steps = sorted(m["step"] for m in history["metrics"])
    assert steps == [0, 1]                        # one step per measured repeat


def test_server_serves_artifacts(server):
    parent = search(server, f"tags.`{N.TAG_KIND}` = '{N.KIND_SWEEP}'")[0]
    run_id = parent["info"]["run_id"]
    listing = json.loads(get(server, "/api/2.0/mlflow/artifacts/list", run_id=run_id,
                             path=N.A_SWEEP_DIR))
    files = {f["path"] for f in listing["files"]}
    assert f"{N.A_SWEEP_DIR}/throughput_vs_subs.png" in files
    assert f"{N.A_SWEEP_DIR}/{N.A_SWEEP_TABLE_CSV}" in files
    # the file itself, as the UI fetches it
    png = get(server, "/get-artifact", path=f"{N.A_SWEEP_DIR}/throughput_vs_subs.png",
              run_uuid=run_id)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    job = search(server, f"tags.`{N.TAG_KIND}` = '{N.KIND_JOB}'")[0]
    listing = json.loads(get(server, "/api/2.0/mlflow/artifacts/list",
                             run_id=job["info"]["run_id"]))
    top = {f["path"] for f in listing["files"]}
    assert {N.A_SYSTEM_INFO, N.A_BENCHMARK_RESULTS, N.A_HYDRA_DIR} <= top
    results = json.loads(get(server, "/get-artifact", path=N.A_BENCHMARK_RESULTS,
                             run_uuid=job["info"]["run_id"]))
    assert results["throughput_subs_per_sec"] > 0
