"""Which tracking store a command uses (one rule for the runner, ``compare`` and ``ab``),
and how a store's address is shown: never with its credentials.

- Where: ``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else MLflow's local
  default *in the directory the command ran from*: ``sqlite:///<cwd>/mlflow.db`` with
  artifacts under ``<cwd>/mlruns``, which is what a plain ``mlflow ui`` started in that
  directory reads. Both are made absolute, so nothing depends on a Hydra job's directory.
- Shown: ``mask_secrets`` (``cdrexp._secrets``, shared with the writers' messages)
  replaces the password of every ``scheme://user:password@host`` in a text and the
  value of ``password=``-like query parameters by ``***``; ``strip_credentials`` drops
  the user part of a URL altogether (a link for a browser, which asks for the login).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional
from urllib.parse import unquote

from .._secrets import mask_secrets, split_credentials, strip_credentials

__all__ = ["DB_FILE", "ENV_URI", "configured_uri", "mask_secrets", "resolve_tracking_uri",
           "split_credentials", "sqlite_path", "strip_credentials", "uri_source"]

DB_FILE = "mlflow.db"
ENV_URI = "MLFLOW_TRACKING_URI"
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
