"""Which tracking store a command uses (one rule for the runner, ``compare`` and ``ab``),
and how a store's address is shown: never with its credentials.

- Where: ``tracking.uri`` if set, else ``$MLFLOW_TRACKING_URI``, else MLflow's local
  default *in the directory the command ran from*: ``sqlite:///<cwd>/mlflow.db`` with
  artifacts under ``<cwd>/mlruns``, which is what a plain ``mlflow ui`` started in that
  directory reads. Both are made absolute, so nothing depends on a Hydra job's directory.
- Shown: ``mask_secrets`` replaces the password of every ``scheme://user:password@host``
  in a text (any scheme: http, https, postgresql, mysql+pymysql, s3 ...) and the value
  of ``password=``-like query parameters by ``***``. Messages, params, tags and logged
  texts go through it; ``strip_credentials`` drops the user part of a URL altogether
  (a link for a browser, which asks for the login itself).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlsplit, urlunsplit

DB_FILE = "mlflow.db"
ENV_URI = "MLFLOW_TRACKING_URI"
MASK = "***"

# scheme://user:password@  (the password ends at the last '@' before the host; an '@'
# inside a password must be percent-encoded in a URI, so '@', '/' and spaces end it)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@'\"]*):"
                       r"(?P<secret>[^\s/@'\"]+)@")
# ?password=... &sslpassword=... &secret_key=... (SQLAlchemy and driver query options)
_QUERY = re.compile(r"(?P<head>[?&](?:[A-Za-z_]*password|pwd|secret|secret_key|token|"
                    r"access_key|sig|signature)=)(?P<secret>[^&\s'\"]+)", re.IGNORECASE)


def mask_secrets(text) -> str:
    """``text`` (any object; ``str()`` of it) with every URI password and secret-looking
    query value replaced by ``***``: the one helper for everything cdrexp shows or logs."""
    text = str(text)
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}", text)


def split_credentials(url: str) -> tuple[str, Optional[str], Optional[str]]:
    """``url`` without its ``user:password@`` part, and the (decoded) user and password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(user), unquote(password) if password else None


def strip_credentials(url: str) -> str:
    return split_credentials(url)[0]


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
