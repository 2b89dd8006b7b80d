"""Is a tracking store usable? Seconds to say so, where MLflow itself retries for minutes.

Each probe raises ``StoreUnusable`` with one line naming the store (its password masked:
``StoreUnusable`` masks every message it is given):

- the scheme is one MLflow can track to (only an unusual scheme costs an MLflow import);
- a SQLite file is a database;
- a database server (PostgreSQL, MySQL, SQL Server) accepts one connection within
  ``PROBE_TIMEOUT_S`` (MLflow's engine creation retries a failing one for ~100 s);
- an HTTP(S) server answers at all. ``user:password@`` in the URL is sent as HTTP Basic
  authentication, as MLflow's client (requests) sends it: urllib would otherwise take
  ``user:password@host`` for a host name ("Name or service not known").
"""
from __future__ import annotations

import base64
import contextlib
import re
import sqlite3
from typing import Optional

from .._environ import environ_set
from ._uri import mask_secrets, resolve_tracking_uri, split_credentials, sqlite_path, \
    uri_source

PROBE_TIMEOUT_S = 5     # a tracking server must answer a first request within this
# database servers MLflow can track to, and each driver's connect-timeout argument
SQL_SERVER_TIMEOUTS = {"postgresql": "connect_timeout", "mysql": "connect_timeout",
                       "mssql": "timeout"}


class StoreUnusable(Exception):
    """The tracking store cannot be used; ``str()`` is one line naming it, credentials
    masked."""

    def __init__(self, message: str = ""):
        super().__init__(mask_secrets(message))


@contextlib.contextmanager
def quick_network(timeout: int = PROBE_TIMEOUT_S):
    """MLflow's HTTP client with one try and a short timeout (it retries for minutes)."""
    with environ_set({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout)}):
        yield


def check_scheme(uri: str, source: str) -> None:
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry
    try:
        _tracking_store_registry.get_store_builder(uri)
    except Exception as exc:
        supported = sorted(s for s in getattr(exc, "supported_uri_schemes", []) if s)
        scheme = uri.split(":", 1)[0]
        raise StoreUnusable(f"{source}: MLflow cannot track to {uri!r} (scheme {scheme!r}); "
                            f"use one of: {', '.join(supported)}") from None


def check_sqlite(uri: str) -> None:
    """A SQLite store's file, if it exists, is a database (read-only look)."""
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


def check_sql_server(uri: str, source: str) -> None:
    """One connection to a database server, with a timeout."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = sqlalchemy.engine.make_url(uri)
    shown = url.render_as_string(hide_password=True)
    timeout = {SQL_SERVER_TIMEOUTS[url.get_backend_name()]: PROBE_TIMEOUT_S}
    try:
        engine = sqlalchemy.create_engine(url, connect_args=timeout, poolclass=NullPool)
    except ImportError as exc:
        hint = " (or name one that is: postgresql+psycopg2://...)" \
            if url.get_backend_name() == "postgresql" and "+" not in url.drivername else ""
        raise StoreUnusable(f"tracking store {shown} ({source}): its database driver is "
                            f"not installed ({exc}){hint}") from None
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


def check_http(uri: str, source: str) -> None:
    """Something answers HTTP at ``uri`` (any status: whether it is an MLflow server, with
    what authentication, the first real request tells)."""
    import urllib.error
    import urllib.request

    bare, user, password = split_credentials(uri)
    request = urllib.request.Request(bare)
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        pass
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        text = getattr(reason, "strerror", None) or str(reason)
        if "timed out" in str(reason).lower():
            text = f"no answer within {PROBE_TIMEOUT_S} s"
        raise StoreUnusable(f"tracking store {uri} ({source}): cannot reach it: "
                            f"{text}") from None


def check_location(uri: Optional[str], base_dir: str) -> str:
    """What can be said of the store of ``uri`` (``tracking.uri``) without building an
    MLflow client: its scheme, a SQLite file, a server that answers. Returns the resolved
    URI; raises ``StoreUnusable`` with one line naming the store."""
    source = uri_source(uri)
    resolved = resolve_tracking_uri(uri, base_dir)
    scheme = resolved.split(":", 1)[0]
    if scheme not in ("sqlite", "file", "http", "https"):
        check_scheme(resolved, source)
    check_sqlite(resolved)
    if scheme in ("http", "https"):
        check_http(resolved, source)
    elif scheme.split("+", 1)[0] in SQL_SERVER_TIMEOUTS:
        check_sql_server(resolved, source)
    return resolved


def why_unusable(exc: BaseException) -> str:
    """The gist of MLflow's (long, nested) message for a store that does not work."""
    text = str(exc)
    if m := re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text):
        return f"cannot reach it: {m.group(1).strip()}"
    if "timed out" in text.lower():
        return f"no answer within {PROBE_TIMEOUT_S} s"
    if m := re.search(r"error code (\d+) != 200", text):
        if m.group(1) in ("401", "403"):
            return (f"refused the credentials (HTTP {m.group(1)}): check the user and "
                    "password in the URI, or MLFLOW_TRACKING_USERNAME / _PASSWORD")
        return f"answered HTTP {m.group(1)} (is it an MLflow tracking server?)"
    first = (text.strip().splitlines() or [""])[0]
    return mask_secrets(f"{type(exc).__name__}: {first[:300]}")
