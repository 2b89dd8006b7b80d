"""Where to read runs in the MLflow UI: the command that serves a store, and the URLs.

MLflow 3 opens an experiment on its GenAI overview (traces, latency, tokens: "No data
available" for runs like ours) unless the URL asks for the *Model training* view with
``?workflowType=machine_learning``; a fresh browser profile remembers nothing else. The
routes used here, ``#/experiments/<id>/runs/<run id>`` (one run: its name, params and
metrics) and ``#/experiments/<id>/runs`` (the runs table, with ``searchFilter`` to show a
sweep's runs only), are those of MLflow 3.17's UI; benchmarks/check_mlflow_ui.py and
tests/tracking/test_ui.py open them in headless Chromium.
"""
from __future__ import annotations

import shlex
from typing import Optional
from urllib.parse import quote, urlencode

from ._uri import mask_secrets, resolve_tracking_uri, strip_credentials

LOCAL_UI = "http://127.0.0.1:5000"      # `mlflow ui`'s default host and port
ML_VIEW = {"workflowType": "machine_learning"}


def ui_command(uri: str, base_dir: str) -> Optional[str]:
    """The command that serves the store at ``uri`` (started in ``base_dir``), or None
    when a tracking server serves it already or no local UI can (Databricks)."""
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    if uri == resolve_tracking_uri(None, base_dir, env={}):
        return "mlflow ui"
    # a password stays out of the terminal: the user puts it back in (or uses ~/.pgpass)
    return f"mlflow ui --backend-store-uri {shlex.quote(mask_secrets(uri))}"


def ui_base(uri: str) -> Optional[str]:
    """The UI's address for the store at ``uri`` (without a ``user:password@``: the
    browser asks for the login)."""
    if uri.startswith(("http://", "https://")):
        return strip_credentials(uri).rstrip("/")
    return None if uri.startswith("databricks") else LOCAL_UI


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{urlencode(ML_VIEW)}"


def runs_url(base: str, experiment_id: str, search_filter: Optional[str] = None) -> str:
    query = dict(ML_VIEW, **({"searchFilter": search_filter} if search_filter else {}))
    return (f"{base}/#/experiments/{experiment_id}/runs?"
            f"{urlencode(query, quote_via=quote)}")


def browse_hint(uri: str, base_dir: str, experiment_id: str, run_id: Optional[str] = None,
                search_filter: Optional[str] = None) -> Optional[str]:
    """Two lines for the terminal: how to start the UI on the store at ``uri``, then the
    URL of the run (or of the runs table). None if there is no UI to point at."""
    base = ui_base(uri)
    if base is None:
        return None
    url = run_url(base, experiment_id, run_id) if run_id else \
        runs_url(base, experiment_id, search_filter)
    command = ui_command(uri, base_dir)
    if command is None:
        start = "open"
    else:   # a plain `mlflow ui` reads the store of the directory it starts in
        where = f" in {base_dir}" if command == "mlflow ui" else ""
        start = f"run `{command}`{where} and open"
    return f"MLflow UI: {start}\n  {url}"
