"""The MLflow tracking store the runner, ``compare`` and ``ab`` write to: the client facade.

The jobs around it live in modules of their own: which store and how it is shown
(``_uri``: the one rule, ``mask_secrets``), whether it is usable before any run
(``_probe``), one creator and retries on a locked SQLite file (``_lock``), and a new
SQLite store seeded from a migrated template (``_fresh_db``). Their public names are
re-exported here, so ``cdrexp.tracking.store`` stays the one import for callers.

- The client API only (no fluent ``mlflow.start_run``): which run a call goes to is
  explicit, so an inherited ``MLFLOW_RUN_ID`` cannot redirect it. ``child_env`` strips
  that variable from the environment of processes the runner starts.
- No credentials in the store: every param, tag, run name and logged text goes through
  ``mask_secrets``, and so does a small text artifact (a Hydra config naming
  ``tracking.uri=postgresql://user:password@...``): it is logged as a masked copy.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional

from .._environ import environ_set
from ._fresh_db import seed_sqlite_store
from ._lock import LOCK_MESSAGES, LOCK_SECONDS, RETRY_SECONDS, creation_lock, retry_locked
from ._probe import PROBE_TIMEOUT_S, StoreUnusable, check_location, quick_network, \
    why_unusable
from ._uri import DB_FILE, ENV_URI, configured_uri, mask_secrets, resolve_tracking_uri, \
    sqlite_path, strip_credentials, uri_source
from .names import DEFAULT_EXPERIMENT

__all__ = ["DB_FILE", "ENV_URI", "LEAKY_ENV", "LOCK_MESSAGES", "LOCK_SECONDS",
           "PROBE_TIMEOUT_S", "RETRY_SECONDS", "StoreUnusable", "TrackingStore",
           "check_location", "check_store", "child_env", "configured_uri", "creation_lock",
           "mask_secrets", "open_store", "quick_network", "resolve_tracking_uri",
           "retry_locked", "sqlite_path", "strip_credentials", "strip_leaky_env",
           "uri_source"]

# environment variables that would attach our runs to someone else's run
LEAKY_ENV = ("MLFLOW_RUN_ID", "MLFLOW_PARENT_RUN_ID", "MLFLOW_EXPERIMENT_ID",
             "MLFLOW_EXPERIMENT_NAME")
MAX_BATCH = 100     # log_batch: at most 100 params and 1000 metrics per call
# artifacts read for credentials before logging: configs, results, summaries (profiles,
# plots and data are neither small nor written from a URI)
_SCANNED_SUFFIXES = {".yaml", ".yml", ".json", ".txt", ".md", ".csv", ".log", ".ini"}
_SCANNED_MAX_BYTES = 4 << 20


def open_store(uri: Optional[str], base_dir: str,
               experiment_name: str = DEFAULT_EXPERIMENT) -> "TrackingStore":
    """The store of ``uri``, opened as the runs will open it, with short network
    timeouts: a new SQLite store is created and migrated (under the lock), the experiment
    exists. Raises ``StoreUnusable`` with one line naming the store."""
    try:
        with quick_network():
            store = TrackingStore(uri, base_dir, experiment_name)
            exp = store.call("get_experiment", store.experiment_id)
    except StoreUnusable:
        raise
    except Exception as exc:
        raise StoreUnusable(f"tracking store {resolve_tracking_uri(uri, base_dir)} "
                            f"({uri_source(uri)}): {why_unusable(exc)}") from None
    if (exp.artifact_location or "").startswith("mlflow-artifacts:") \
            and not store.uri.startswith(("http://", "https://")):
        # the database of a tracking server that serves the artifacts itself: runs could
        # be created, but no artifact logged (MLflow fails only at the first one)
        raise StoreUnusable(f"tracking store {store.uri} ({uri_source(uri)}): experiment "
                            f"{experiment_name!r} keeps its artifacts on a tracking server "
                            f"({exp.artifact_location}): log to that server's http(s):// "
                            "URI (reading this database, as cdrexp.compare does, is fine)")
    return store


def check_store(uri: Optional[str], base_dir: str,
                experiment_name: str = DEFAULT_EXPERIMENT) -> "TrackingStore":
    """``check_location``, then ``open_store``: everything before any run uses it."""
    check_location(uri, base_dir)
    return open_store(uri, base_dir, experiment_name)


@contextlib.contextmanager
def _working_directory(path: str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def child_env(env: Optional[dict] = None) -> dict:
    """A copy of ``env`` (default: ours) without MLflow's run-attaching variables."""
    env = dict(os.environ if env is None else env)
    for name in LEAKY_ENV:
        env.pop(name, None)
    return env


def strip_leaky_env() -> None:
    """Remove the run-attaching variables from this process (and so from every worker
    it starts afterwards)."""
    for name in LEAKY_ENV:
        os.environ.pop(name, None)


def _masked(value) -> str:
    return mask_secrets(value)


def _needs_mask(path: Path) -> bool:
    """A small text file that names a URI with a password (or a secret query value)."""
    if path.suffix.lower() not in _SCANNED_SUFFIXES or not path.is_file() \
            or path.stat().st_size > _SCANNED_MAX_BYTES:
        return False
    text = path.read_text(errors="replace")
    return mask_secrets(text) != text


@contextlib.contextmanager
def _masked_tree(path: Path):
    """``path`` (a file or a directory) as it may be logged: itself when nothing in it
    names a credential, else a temporary copy with the credentials masked."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    if not any(_needs_mask(f) for f in files):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="cdrexp-masked-") as tmp:
        copy = Path(tmp) / path.name
        if path.is_file():
            shutil.copy2(path, copy)
        else:
            shutil.copytree(path, copy)
        for f in ([copy] if copy.is_file() else copy.rglob("*")):
            if _needs_mask(f):
                f.write_text(mask_secrets(f.read_text(errors="replace")))
        yield copy


class TrackingStore:
    """An MlflowClient on the resolved store, every call retried on a locked database;
    nothing it logs carries a credential."""

    def __init__(self, uri: Optional[str], base_dir: str,
                 experiment_name: str = DEFAULT_EXPERIMENT):
        from mlflow.tracking import MlflowClient

        self.base_dir = str(Path(base_dir).resolve())
        self.uri = resolve_tracking_uri(uri, self.base_dir)
        self.shown_uri = mask_secrets(self.uri)     # for messages
        # MLflow's SQL store puts new experiments' artifacts under "./mlruns", made
        # absolute against the working directory when the client first builds the store:
        # build it from base_dir, so artifacts land in <base_dir>/mlruns/<experiment id>/
        with creation_lock(self.uri), _working_directory(self.base_dir):
            path = sqlite_path(self.uri)
            if path is not None:
                seed_sqlite_store(path)     # a new mlflow.db without MLflow's migrations
            self.client = retry_locked(MlflowClient, tracking_uri=self.uri)
        self.experiment_name = experiment_name
        self._experiment_id: Optional[str] = None

    def call(self, method: str, *args, **kwargs):
        return retry_locked(getattr(self.client, method), *args, **kwargs)

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = self._get_or_create_experiment()
        return self._experiment_id

    def _get_or_create_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        exp = self.call("get_experiment_by_name", self.experiment_name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.call("restore_experiment", exp.experiment_id)
            return exp.experiment_id
        # artifact location: left to the store, whose root was fixed in __init__
        try:
            exp_id = self.call("create_experiment", self.experiment_name)
        except MlflowException:
            # another process created it between our lookup and our create
            exp = self.call("get_experiment_by_name", self.experiment_name)
            if exp is None:
                raise
            return exp.experiment_id
        return exp_id

    def create_run(self, run_name: str, tags: dict) -> str:
        run = self.call("create_run", self.experiment_id, run_name=_masked(run_name),
                        tags={k: _masked(v) for k, v in tags.items() if v is not None})
        return run.info.run_id

    def log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param
        items = [Param(k, _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), MAX_BATCH):
            self.call("log_batch", run_id, params=items[i:i + MAX_BATCH])

    def log_metrics(self, run_id: str, metrics: dict, step: int = 0) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if v is not None]
        for i in range(0, len(items), 1000):
            self.call("log_batch", run_id, metrics=items[i:i + 1000])

    def log_metric_steps(self, run_id: str, key: str, values: Iterable[float]) -> None:
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        items = [Metric(key, float(v), now, step) for step, v in enumerate(values)]
        if items:
            self.call("log_batch", run_id, metrics=items)

    def set_tags(self, run_id: str, tags: dict) -> None:
        from mlflow.entities import RunTag
        items = [RunTag(k, _masked(v)) for k, v in tags.items() if v is not None]
        if items:
            self.call("log_batch", run_id, tags=items)

    def log_artifact(self, run_id: str, path, artifact_path: Optional[str] = None) -> None:
        with _masked_tree(Path(path)) as safe:
            self.call("log_artifact", run_id, str(safe), artifact_path)

    def log_artifacts(self, run_id: str, path, artifact_path: Optional[str] = None) -> None:
        with _masked_tree(Path(path)) as safe:
            self.call("log_artifacts", run_id, str(safe), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.call("log_text", run_id, _masked(text), artifact_file)

    def log_dict(self, run_id: str, obj: dict, artifact_file: str) -> None:
        import json
        # through JSON text, so that a credential anywhere in the structure is masked
        masked = json.loads(mask_secrets(json.dumps(obj, default=str)))
        self.call("log_dict", run_id, masked, artifact_file)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        # MLflow prints a link to the run of a tracking server, with the server's
        # user:password if the URI has them: the runner prints its own, masked
        with environ_set({"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}):
            self.call("set_terminated", run_id, status)


def _param_value(v) -> str:
    text = _masked(v)
    # MLflow rejects params longer than its limit (6000 chars); keep the start
    return text if len(text) <= 6000 else text[:5997] + "..."
