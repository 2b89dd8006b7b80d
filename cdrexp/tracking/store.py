"""The MLflow tracking store the runner writes to, and the care it takes with it.

- Where (one rule, for the runner and ``cdrexp.compare`` alike): ``tracking.uri`` if
  set, else ``$MLFLOW_TRACKING_URI``, else MLflow's local default *in the directory the
  command ran from*: ``sqlite:///<cwd>/mlflow.db`` with artifacts under ``<cwd>/mlruns``,
  which is what a plain ``mlflow ui`` started in that directory reads. Both are made
  absolute here, so that nothing depends on the working directory of a Hydra job.
- Before any run: ``check_store`` accepts only the schemes MLflow can track to, and opens
  the store with short network timeouts, so a wrong or unreachable store is one line
  within seconds. A new SQLite store is created and migrated by exactly one process:
  building the client (which creates and migrates the schema) holds an exclusive lock
  on ``<db>.lock``; runs started together would otherwise race MLflow's migrations.
- Contention: several processes may write the same SQLite file (a sweep's jobs with a
  parallel launcher, ``mlflow ui`` reading it); every call is retried with backoff while
  SQLite says "database is locked".
- The client API only (no fluent ``mlflow.start_run``): which run a call goes to is
  explicit, so an inherited ``MLFLOW_RUN_ID`` cannot redirect it. ``child_env`` strips
  that variable from the environment of processes the runner starts.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar
from urllib.parse import unquote

from .._environ import environ_set
from ._fresh_db import seed_sqlite_store
from .names import DEFAULT_EXPERIMENT

T = TypeVar("T")

DB_FILE = "mlflow.db"
# environment variables that would attach our runs to someone else's run
LEAKY_ENV = ("MLFLOW_RUN_ID", "MLFLOW_PARENT_RUN_ID", "MLFLOW_EXPERIMENT_ID",
             "MLFLOW_EXPERIMENT_NAME")
LOCK_MESSAGES = ("database is locked", "database table is locked")
RETRY_SECONDS = 60.0
LOCK_SECONDS = 120.0    # waiting for another process to create and migrate the store
PROBE_TIMEOUT_S = 5     # a tracking server must answer a first request within this
ENV_URI = "MLFLOW_TRACKING_URI"
MAX_BATCH = 100     # log_batch: at most 100 params and 1000 metrics per call


class StoreUnusable(Exception):
    """The tracking store cannot be used; ``str()`` is one line naming it."""


def configured_uri(uri: Optional[str], env: Optional[dict] = None) -> Optional[str]:
    """The store asked for: ``uri`` (``tracking.uri``), else ``$MLFLOW_TRACKING_URI``,
    else None (the default store)."""
    env = os.environ if env is None else env
    return uri or env.get(ENV_URI) or None


def uri_source(uri: Optional[str], env: Optional[dict] = None) -> str:
    """Which setting chose the store, for messages."""
    env = os.environ if env is None else env
    if uri:
        return "tracking.uri"
    return ENV_URI if env.get(ENV_URI) else f"the default store ({DB_FILE} here)"


def resolve_tracking_uri(uri: Optional[str], base_dir: str,
                         env: Optional[dict] = None) -> str:
    """The absolute tracking URI by the one rule (``configured_uri``); relative paths are
    taken relative to ``base_dir``."""
    uri = configured_uri(uri, env)
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


def sqlite_path(uri: str) -> Optional[Path]:
    """The database file of an absolute ``sqlite:///`` URI (None for other stores)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = unquote(uri[len("sqlite:///"):].split("?", 1)[0])
    return None if path in ("", ":memory:") else Path(path)


@contextlib.contextmanager
def creation_lock(uri: str, timeout: float = LOCK_SECONDS):
    """Held while a client is built on ``uri``: for a SQLite file an exclusive ``flock``
    on ``<db>.lock`` (a lock file of its own: closing any descriptor of the database
    itself would drop SQLite's POSIX locks in this process); other stores need none."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    lock = f"{path}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreUnusable(f"tracking store {uri}: cannot create {exc.filename or lock}: "
                            f"{exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnusable(f"tracking store {uri}: {lock} stayed locked by "
                                        f"another process for {timeout:.0f} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)        # releases the lock


@contextlib.contextmanager
def _quick_network():
    """MLflow's HTTP client with one try and a short timeout (it retries for minutes)."""
    with environ_set({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": str(PROBE_TIMEOUT_S)}):
        yield


def _check_scheme(uri: str, source: str) -> None:
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry
    try:
        _tracking_store_registry.get_store_builder(uri)
    except Exception as exc:
        supported = sorted(s for s in getattr(exc, "supported_uri_schemes", []) if s)
        scheme = uri.split(":", 1)[0]
        raise StoreUnusable(f"{source}: MLflow cannot track to {uri!r} (scheme {scheme!r}); "
                            f"use one of: {', '.join(supported)}") from None


def _check_sql(uri: str) -> None:
    """One attempt to open a SQL store (MLflow retries a failing one for minutes)."""
    path = sqlite_path(uri)
    if path is not None and path.exists() and not path.is_file():
        raise StoreUnusable(f"tracking store {uri}: {path} is not a file (a SQLite "
                            "database file is needed there)")
    if path is not None and path.is_file():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
                db.execute("PRAGMA schema_version").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnusable(f"tracking store {uri}: {path} is not a usable SQLite "
                                f"database ({exc})") from None


# database servers MLflow can track to, and each driver's connect-timeout argument
_SQL_SERVER_TIMEOUTS = {"postgresql": "connect_timeout", "mysql": "connect_timeout",
                        "mssql": "timeout"}


def _check_sql_server(uri: str, source: str) -> None:
    """One connection to a database server, with a timeout: MLflow's own engine creation
    retries a failing one 10 times with backoff, ~100 s for a server that is down."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = sqlalchemy.engine.make_url(uri)
    shown = url.render_as_string(hide_password=True)
    timeout = {_SQL_SERVER_TIMEOUTS[url.get_backend_name()]: PROBE_TIMEOUT_S}
    try:
        engine = sqlalchemy.create_engine(url, connect_args=timeout, poolclass=NullPool)
    except ImportError as exc:
        raise StoreUnusable(f"tracking store {shown} ({source}): its database driver is "
                            f"not installed ({exc})") from None
    try:
        with engine.connect():
            pass
    except Exception as exc:
        cause = getattr(exc, "orig", None) or exc
        lines = [ln.strip() for ln in str(cause).strip().splitlines() if ln.strip()]
        raise StoreUnusable(f"tracking store {shown} ({source}): cannot connect: "
                            f"{(lines or [type(cause).__name__])[0][:300]}") from None
    finally:
        engine.dispose()


def _check_reachable(uri: str, source: str) -> None:
    """Something answers HTTP at ``uri`` (any status: whether it is an MLflow server, with
    what authentication, the first real request tells)."""
    import urllib.error
    import urllib.request
    try:
        urllib.request.urlopen(uri, timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        text = getattr(reason, "strerror", None) or str(reason)
        if "timed out" in str(reason).lower():
            text = f"no answer within {PROBE_TIMEOUT_S} s"
        raise StoreUnusable(f"tracking store {uri} ({source}): cannot reach it: "
                            f"{text}") from None


def check_location(uri: Optional[str], base_dir: str) -> str:
    """What can be said of the store of ``uri`` (``tracking.uri``) without building an
    MLflow client: its scheme is one MLflow supports (only an unusual scheme costs an
    MLflow import), a SQLite file is a database, a server answers. Returns the resolved
    URI; raises ``StoreUnusable`` with one line naming the store."""
    source = uri_source(uri)
    resolved = resolve_tracking_uri(uri, base_dir)
    scheme = resolved.split(":", 1)[0]
    if scheme not in ("sqlite", "file", "http", "https"):
        _check_scheme(resolved, source)
    _check_sql(resolved)
    if scheme in ("http", "https"):
        _check_reachable(resolved, source)
    elif scheme.split("+", 1)[0] in _SQL_SERVER_TIMEOUTS:
        _check_sql_server(resolved, source)
    return resolved


def open_store(uri: Optional[str], base_dir: str,
               experiment_name: str = DEFAULT_EXPERIMENT) -> "TrackingStore":
    """The store of ``uri``, opened as the runs will open it, with short network
    timeouts: a new SQLite store is created and migrated (under the lock), the experiment
    exists. Raises ``StoreUnusable`` with one line naming the store."""
    try:
        with _quick_network():
            store = TrackingStore(uri, base_dir, experiment_name)
            store.experiment_id
    except StoreUnusable:
        raise
    except Exception as exc:
        raise StoreUnusable(f"tracking store {resolve_tracking_uri(uri, base_dir)} "
                            f"({uri_source(uri)}): {_why_unusable(exc)}") from None
    return store


def check_store(uri: Optional[str], base_dir: str,
                experiment_name: str = DEFAULT_EXPERIMENT) -> "TrackingStore":
    """``check_location``, then ``open_store``: everything before any run uses it."""
    check_location(uri, base_dir)
    return open_store(uri, base_dir, experiment_name)


def _why_unusable(exc: BaseException) -> str:
    """The gist of MLflow's (long, nested) message for a store that does not work."""
    text = str(exc)
    if m := re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text):
        return f"cannot reach it: {m.group(1).strip()}"
    if "timed out" in text.lower():
        return f"no answer within {PROBE_TIMEOUT_S} s"
    if m := re.search(r"error code (\d+) != 200", text):
        return f"answered HTTP {m.group(1)} (is it an MLflow tracking server?)"
    first = (text.strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"


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
