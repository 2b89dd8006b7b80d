"""The command and URLs a job and a sweep print, and that they open the right page of a
real MLflow UI in a real browser (headless Chromium; skipped without it), with the
headline figures on the first screen at 1400x1000.

``CDREXP_UI_SHOTS=<dir>`` keeps the end-to-end test's screenshots there, to look at."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from cdrexp.tracking import ui
from cdrexp.tracking.store import resolve_tracking_uri

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
HINT = re.compile(r"^MLflow UI: (?:run `(?P<cmd>[^`]+)`(?: in (?P<dir>\S+))? and )?open\n"
                  r"  (?P<url>\S+)$", re.M)


def test_the_default_store_is_served_by_a_plain_mlflow_ui(tmp_path):
    uri = resolve_tracking_uri(None, str(tmp_path), env={})
    hint = ui.browse_hint(uri, str(tmp_path), "1", "abc")
    assert hint == (f"MLflow UI: run `mlflow ui` in {tmp_path} and open\n"
                    "  http://127.0.0.1:5000/#/experiments/1/runs/abc"
                    "?workflowType=machine_learning")


def test_another_store_is_named_on_the_command_line(tmp_path):
    uri = resolve_tracking_uri("sqlite:///elsewhere/my store.db", str(tmp_path))
    m = HINT.match(ui.browse_hint(uri, str(tmp_path), "3", "abc"))
    assert m["cmd"] == f"mlflow ui --backend-store-uri '{uri}'" and m["dir"] is None


def test_a_tracking_server_needs_no_command():
    hint = ui.browse_hint("http://mlflow.example:8080/", "/x", "2", "abc")
    assert hint == ("MLflow UI: open\n  http://mlflow.example:8080/#/experiments/2/runs/abc"
                    "?workflowType=machine_learning")
    assert ui.browse_hint("databricks", "/x", "2", "abc") is None


def test_a_sweep_opens_the_runs_table_filtered_to_its_runs():
    url = ui.runs_url(ui.LOCAL_UI, "1", "tags.`cdrexp.sweep_id` = 'S1'")
    assert url == ("http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"
                   "&searchFilter=tags.%60cdrexp.sweep_id%60%20%3D%20%27S1%27")


def test_a_sweep_with_a_shared_view_opens_it_and_nothing_else():
    # any search parameter beside the share key makes MLflow's UI ignore the shared view
    url = ui.runs_url(ui.LOCAL_UI, "1", "tags.x = 'S1'", view_key="cdrexp-sweep-S1")
    assert url == ("http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning"
                   "&viewStateShareKey=cdrexp-sweep-S1")


def test_the_sweep_view_filters_groups_and_shows_the_figures():
    state = ui.sweep_view_state("2026-12-02_14-26-07-0d8516")
    assert state["searchFilter"] == "tags.`cdrexp.sweep_id` = '2026-12-02_14-26-07-0d8516'"
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "cdrexp.kind"}]
    assert "metrics.`subs_per_s`" in state["selectedColumns"]
    assert state["columnOrder"][0] in state["columnWidths"]
    assert ui.view_key("a b/c'd") == "cdrexp-sweep-a-b-c-d"


def test_the_view_is_an_experiment_tag_and_a_refused_tag_falls_back(tmp_path):
    calls = []

    class Store:
        experiment_id = "7"

        def call(self, method, *args):
            calls.append((method, args))

    assert ui.share_sweep_view(Store(), "S1") == "cdrexp-sweep-S1"
    (method, (exp, key, value)), = calls
    assert (method, exp, key) == ("set_experiment_tag", "7",
                                  "mlflow.sharedViewState.cdrexp-sweep-S1")
    assert json.loads(value) == ui.sweep_view_state("S1")

    class Refusing(Store):
        def call(self, method, *args):
            raise PermissionError("no")

    assert ui.share_sweep_view(Refusing(), "S1") is None


# ---- end to end: a tiny sweep, `mlflow ui` as printed, Chromium on the printed URLs ----

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlflow ui exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"mlflow ui did not answer {url} within {timeout:.0f} s")


def _chromium(chromium: str, url: str, *args: str) -> subprocess.CompletedProcess:
    """Chromium on ``url`` at 1400x1000 from a fresh browser profile (so nothing
    remembered from an earlier visit chooses the view), after its scripts ran."""
    with tempfile.TemporaryDirectory(prefix="cdrexp-chromium-") as profile:
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--window-size=1400,1000", "--virtual-time-budget=20000", *args, url],
            capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _page_text_and_screenshot(chromium: str, url: str, png) -> str:
    """The page's text (its DOM after its scripts ran, tags dropped), and its screenshot
    in ``png``: one Chromium run does both (a run costs seconds of a loaded CI machine)."""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _chromium(
        chromium, url, "--dump-dom", f"--screenshot={png}").stdout))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("CDREXP_UI_SHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(png, os.path.join(keep, png.name))
    return text


HEADLINE = re.compile(r"#(?P<job>\d) subs=(?P<subs>\d+) days=1 workers=0 csv: "
                      r"[\d,]+ subs/s, [\d.]+ s ±\d+%, CPU [\d.]+ cores, PSS [\d,]+ MB")


@pytest.mark.slow
def test_printed_urls_open_the_runs_in_a_browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    run = subprocess.run([sys.executable, "-m", "cdrexp", "-m", "subs=200,300",
                          "repeats=2", "warmup=0"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    hints = list(HINT.finditer(run.stdout))
    assert len(hints) == 3, run.stdout[-3000:]          # two jobs, then the sweep
    assert {(h["cmd"], h["dir"]) for h in hints} == {("mlflow ui", str(tmp_path))}
    job_url, sweep_url = hints[0]["url"], hints[2]["url"]
    assert "/runs/" in job_url and "viewStateShareKey=" in sweep_url

    port = _free_port()
    # the printed command, on a free port, without MLflow's background job runner (7 Huey
    # processes, ~25 s of CPU to start on a 2-core machine, for GenAI jobs): the pages
    # and the REST API are the same (test_server.py does the same)
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/health", server)
        job_url, sweep_url = (u.replace(ui.LOCAL_UI, base) for u in (job_url, sweep_url))
        job = _page_text_and_screenshot(chromium, job_url, tmp_path / "ui_job.png")
        sweep = _page_text_and_screenshot(chromium, sweep_url, tmp_path / "ui_sweep.png")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    # the job's own page: its title carries its figures (the top of the first screen),
    # and its metrics are there; not MLflow 3's empty GenAI overview
    title = HEADLINE.search(job)
    assert title and title["job"] == "0" and title["subs"] == "200", job[:3000]
    assert "subs_per_s" in job and "wall_s_median" in job
    assert "No data available" not in job
    # the sweep's shared view: its parent run and every job with its figures, flat
    assert "shared view" in sweep and "sweep subs=200,300 repeats=2 warmup=0" in sweep
    assert sorted((m["job"], m["subs"]) for m in HEADLINE.finditer(sweep)) == \
        [("0", "200"), ("1", "300")], sweep[-3000:]
    assert re.search(r"\b3\s+matching runs", sweep), sweep[-2000:]
    assert "No data available" not in sweep and "does not exist" not in sweep
