"""A new local SQLite store starts as a copy of an empty, fully migrated one.

MLflow builds a new database by running every one of its schema migrations (69 in MLflow
3.17, many of them SQLite table rebuilds, each synced to disk): 2-3 s of CPU, the largest
single cost of a default run in a fresh directory. The result is the same for every new
store of one MLflow installation, so it is built once, by MLflow itself, into the user's
cache directory (``$XDG_CACHE_HOME/cdrexp``, else ``~/.cache/cdrexp``), and copied.

MLflow's Default experiment (id 0) is taken out of the cached copy: its artifact location
names the directory the database was built in. MLflow creates it again, in the right
place, when it first opens the new store. Anything unexpected (no cache directory, a
file system without hard links) leaves the store to MLflow, as before.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cdrexp"


def _schema_key() -> str:
    """MLflow's version and its list of migrations: the schema a new store gets."""
    import mlflow
    versions = Path(mlflow.__file__).parent / "store" / "db_migrations" / "versions"
    names = sorted(p.name for p in versions.glob("*.py"))
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    return f"{mlflow.__version__}-{digest}"


def _hidden_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _template() -> Path:
    """The empty migrated database for this MLflow, built by MLflow on first need."""
    target = cache_dir() / f"mlflow-{_schema_key()}.db"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _hidden_sibling(target)
    try:
        from mlflow.tracking import MlflowClient
        MlflowClient(tracking_uri=f"sqlite:///{tmp}")   # runs the migrations
        with sqlite3.connect(tmp) as db:
            db.execute("DELETE FROM experiment_tags WHERE experiment_id = 0")
            db.execute("DELETE FROM experiments WHERE experiment_id = 0")
        db.close()
        os.replace(tmp, target)     # whole or not at all; a concurrent builder's is equal
    finally:
        tmp.unlink(missing_ok=True)
    return target


def seed_sqlite_store(path: Path) -> bool:
    """If the SQLite database ``path`` (absolute) does not exist yet, create it as a copy
    of the migrated template; True if this call created it."""
    if not path.is_absolute() or path.exists() or not path.parent.is_dir():
        return False
    try:
        template = _template()
        tmp = _hidden_sibling(path)
        try:
            shutil.copyfile(template, tmp)
            os.link(tmp, path)      # never replaces a store another process just made
        finally:
            tmp.unlink(missing_ok=True)
    except Exception:   # any failure only means MLflow builds the store itself, as before
        return False
    return True
