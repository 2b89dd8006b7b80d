"""Where to read runs in the MLflow UI: the command that serves a store, and the URLs.

MLflow 3 opens an experiment on its GenAI overview (traces, latency, tokens: "No data
available" for runs like ours) unless the URL asks for the *Model training* view with
``?workflowType=machine_learning``; a fresh browser profile remembers nothing else. The
routes used here, ``#/experiments/<id>/runs/<run id>`` (one run: its name, params and
metrics) and ``#/experiments/<id>/runs`` (the runs table), are those of MLflow 3.17's UI;
tests/tracking/test_ui.py opens them in headless Chromium.

A job's figures are in its run's name (``tracking.results.headline``): the title of its
page. A sweep's link opens the runs table through a *shared view*, MLflow's own "Share"
mechanism: an experiment tag ``mlflow.sharedViewState.<key>`` holding the view's state as
JSON, opened by ``?viewStateShareKey=<key>``. It filters the table to the sweep, groups the
rows by kind (a group's rows are shown flat; otherwise the jobs hide, collapsed, under
their parent run), widens the name column so that every job's figures show, and adds the
metric columns. The URL must carry no other search parameter: the UI ignores the shared
view when one is present.
"""
from __future__ import annotations

import json
import re
import shlex
from typing import Optional
from urllib.parse import quote, urlencode

from . import names as N
from ._uri import mask_secrets, resolve_tracking_uri, strip_credentials

LOCAL_UI = "http://127.0.0.1:5000"      # `mlflow ui`'s default host and port
ML_VIEW = {"workflowType": "machine_learning"}
SHARED_VIEW_TAG = "mlflow.sharedViewState."     # + the key: MLflow's UI reads it
# the runs table's columns for a sweep, in this order after the (widened) run name
SWEEP_COLUMNS = (N.M_SUBS_PER_S, N.M_WALL_MEDIAN, N.M_WALL_SPREAD, N.M_CPU_CORES_BUSY,
                 N.M_PEAK_PSS, N.M_WORKERS, N.M_SPEEDUP, N.M_EFFICIENCY)
_RUN_NAME_COLUMN = "attributes.`Run Name`"
NAME_WIDTH_PX = 680      # the job's name with its figures, at a 1400 px wide window


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


def runs_url(base: str, experiment_id: str, search_filter: Optional[str] = None,
             view_key: Optional[str] = None) -> str:
    query = dict(ML_VIEW)
    if view_key:
        query["viewStateShareKey"] = view_key
    elif search_filter:
        query["searchFilter"] = search_filter
    return (f"{base}/#/experiments/{experiment_id}/runs?"
            f"{urlencode(query, quote_via=quote)}")


def sweep_view_state(sweep_id: str) -> dict:
    """The runs table's state for one sweep (what MLflow's "Share" button saves)."""
    metric_cols = [f"metrics.`{m}`" for m in SWEEP_COLUMNS]
    return {
        "searchFilter": f"tags.`{N.TAG_SWEEP_ID}` = '{sweep_id}'",
        "orderByKey": "attributes.start_time", "orderByAsc": True,
        "selectedColumns": metric_cols,
        # widths apply only to the columns listed in the order
        "columnOrder": [_RUN_NAME_COLUMN] + metric_cols,
        "columnWidths": {_RUN_NAME_COLUMN: NAME_WIDTH_PX},
        "groupBy": {"aggregateFunction": "average",
                    "groupByKeys": [{"mode": "tag", "groupByData": N.TAG_KIND}]},
    }


def view_key(sweep_id: str) -> str:
    """The share key of a sweep's view: its id in the characters a tag key allows."""
    return "cdrexp-sweep-" + re.sub(r"[^A-Za-z0-9_.-]", "-", sweep_id)


def share_sweep_view(store, sweep_id: str) -> Optional[str]:
    """Save the sweep's view as an experiment tag of ``store`` (a ``TrackingStore``);
    returns its share key for ``runs_url``, or None when the store refused the tag (a
    server that allows no experiment tags: the plain filtered table is the fallback)."""
    key = view_key(sweep_id)
    try:
        store.call("set_experiment_tag", store.experiment_id, SHARED_VIEW_TAG + key,
                   json.dumps(sweep_view_state(sweep_id)))
    except Exception:       # noqa: BLE001 - the link degrades, the sweep's results stand
        return None
    return key


def browse_hint(uri: str, base_dir: str, experiment_id: str, run_id: Optional[str] = None,
                search_filter: Optional[str] = None,
                view_key: Optional[str] = None) -> Optional[str]:
    """Two lines for the terminal: how to start the UI on the store at ``uri``, then the
    URL of the run (or of the runs table). None if there is no UI to point at."""
    base = ui_base(uri)
    if base is None:
        return None
    url = run_url(base, experiment_id, run_id) if run_id else \
        runs_url(base, experiment_id, search_filter, view_key)
    command = ui_command(uri, base_dir)
    if command is None:
        start = "open"
    else:   # a plain `mlflow ui` reads the store of the directory it starts in
        where = f" in {base_dir}" if command == "mlflow ui" else ""
        start = f"run `{command}`{where} and open"
    return f"MLflow UI: {start}\n  {url}"
