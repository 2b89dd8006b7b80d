"""The MLflow tracking store the runner writes to, and the care it takes with it.

- Where: ``tracking.uri`` if set, else MLflow's local default *in the directory the
  command ran from*: ``sqlite:///<cwd>/mlflow.db`` with artifacts under ``<cwd>/mlruns``,
  which is what a plain ``mlflow ui`` started in that directory reads. Both are made
  absolute here, so that nothing depends on the working directory of a Hydra job.
- Contention: several processes may write the same SQLite file (a sweep's jobs with a
  parallel launcher, ``mlflow ui`` reading it); every call is retried with backoff while
  SQLite says "database is locked".
- The client API only (no fluent ``mlflow.start_run``): which run a call goes to is
  explicit, so an inherited ``MLFLOW_RUN_ID`` cannot redirect it. ``child_env`` strips
  that variable from the environment of processes the runner starts.
"""
from __future__ import annotations

import contextlib
import os
import random
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

from ._fresh_db import seed_sqlite_store
from .names import DEFAULT_EXPERIMENT

T = TypeVar("T")

DB_FILE = "mlflow.db"
# environment variables that would attach our runs to someone else's run
LEAKY_ENV = ("MLFLOW_RUN_ID", "MLFLOW_PARENT_RUN_ID", "MLFLOW_EXPERIMENT_ID",
             "MLFLOW_EXPERIMENT_NAME")
LOCK_MESSAGES = ("database is locked", "database table is locked")
RETRY_SECONDS = 60.0
MAX_BATCH = 100     # log_batch: at most 100 params and 1000 metrics per call


def resolve_tracking_uri(uri: Optional[str], base_dir: str) -> str:
    """An absolute tracking URI; relative paths are taken relative to ``base_dir``."""
    base = Path(base_dir).resolve()
    if not uri:
        return f"sqlite:///{base / DB_FILE}"
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        return uri if path.startswith("/") or path == ":memory:" else \
            f"sqlite:///{base / path}"
    if "://" in uri:            # http(s)://, databricks://, file:///abs, postgresql://...
        return uri
    return (base / uri).resolve().as_uri()     # a plain directory: a file store


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


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m in text for m in LOCK_MESSAGES)


def retry_locked(fn: Callable[..., T], *args, timeout: float = RETRY_SECONDS,
                 **kwargs) -> T:
    """Call ``fn``; while it fails because SQLite is locked, wait and call it again."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 2.0)


class TrackingStore:
    """An MlflowClient on the resolved store, every call retried on a locked database."""

    def __init__(self, uri: Optional[str], base_dir: str,
                 experiment_name: str = DEFAULT_EXPERIMENT):
        from mlflow.tracking import MlflowClient

        self.base_dir = str(Path(base_dir).resolve())
        self.uri = resolve_tracking_uri(uri, self.base_dir)
        seed_sqlite_store(self.uri)     # a new mlflow.db without MLflow's migrations
        # MLflow's SQL store puts new experiments' artifacts under "./mlruns", made
        # absolute against the working directory when the client first builds the store:
        # build it from base_dir, so artifacts land in <base_dir>/mlruns/<experiment id>/
        with _working_directory(self.base_dir):
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
        run = self.call("create_run", self.experiment_id, run_name=run_name,
                        tags={k: str(v) for k, v in tags.items() if v is not None})
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
        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        if items:
            self.call("log_batch", run_id, tags=items)

    def log_artifact(self, run_id: str, path, artifact_path: Optional[str] = None) -> None:
        self.call("log_artifact", run_id, str(path), artifact_path)

    def log_artifacts(self, run_id: str, path, artifact_path: Optional[str] = None) -> None:
        self.call("log_artifacts", run_id, str(path), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.call("log_text", run_id, text, artifact_file)

    def log_dict(self, run_id: str, obj: dict, artifact_file: str) -> None:
        self.call("log_dict", run_id, obj, artifact_file)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.call("set_terminated", run_id, status)


def _param_value(v) -> str:
    text = str(v)
    # MLflow rejects params longer than its limit (6000 chars); keep the start
    return text if len(text) <= 6000 else text[:5997] + "..."
