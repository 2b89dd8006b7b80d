"""The command and URLs a job and a sweep print, and that they open the right page of a
real MLflow UI in a real browser (headless Chromium; skipped without it)."""
from __future__ import annotations

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


def _page_text(chromium: str, url: str) -> str:
    """The page's DOM after its scripts ran, from a fresh browser profile (so nothing
    remembered from an earlier visit chooses the view)."""
    with tempfile.TemporaryDirectory(prefix="cdrexp-chromium-") as profile:
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--virtual-time-budget=20000", "--dump-dom", url],
            capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return re.sub(r"<[^>]+>", " ", proc.stdout)


@pytest.mark.slow
def test_printed_urls_open_the_runs_in_a_browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    run = subprocess.run([sys.executable, "-m", "cdrexp", "-m", "subs=200,300",
                          "repeats=1", "warmup=0"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    hints = list(HINT.finditer(run.stdout))
    assert len(hints) == 3, run.stdout[-3000:]          # two jobs, then the sweep
    assert {(h["cmd"], h["dir"]) for h in hints} == {("mlflow ui", str(tmp_path))}
    job_url, sweep_url = hints[0]["url"], hints[2]["url"]
    assert "/runs/" in job_url and "searchFilter=" in sweep_url

    port = _free_port()
    # the printed command, on a free port
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/health", server)
        job = _page_text(chromium, job_url.replace(ui.LOCAL_UI, base))
        sweep = _page_text(chromium, sweep_url.replace(ui.LOCAL_UI, base))
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    # the job's own page: its name and its metrics, not MLflow 3's empty GenAI overview
    assert "#0 subs=200 days=1 workers=0 csv" in job
    assert "subs_per_s" in job and "wall_s_median" in job
    assert "No data available" not in job
    # the sweep's runs table, filtered to it: its parent run, the jobs under it
    assert "sweep subs=200,300 repeats=1 warmup=0" in sweep
    assert re.search(r"\b3\s+matching runs", sweep), sweep[-2000:]
    assert "No data available" not in sweep
