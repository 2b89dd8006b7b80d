"""Many processes on one SQLite store: one creates it, everyone retries while it is locked.

- Creation: a new SQLite store is created and migrated by exactly one process. Building
  the client (which creates and migrates the schema) holds an exclusive lock on
  ``<db>.lock`` (``filelock``; a lock file of its own: closing any descriptor of the
  database itself would drop SQLite's POSIX locks in this process). Runs started
  together would otherwise race MLflow's migrations. Server stores need no lock.
- Contention: a sweep's jobs under a parallel launcher and ``mlflow ui`` may write and
  read one SQLite file; every call is retried with backoff while SQLite says "database
  is locked".
"""
from __future__ import annotations

import contextlib
import random
import time
from typing import Callable, TypeVar

from filelock import FileLock, Timeout

from ._probe import StoreUnusable
from ._uri import sqlite_path

T = TypeVar("T")

LOCK_MESSAGES = ("database is locked", "database table is locked")
RETRY_SECONDS = 60.0
LOCK_SECONDS = 120.0    # waiting for another process to create and migrate the store


@contextlib.contextmanager
def creation_lock(uri: str, timeout: float = LOCK_SECONDS):
    """Held while a client is built on ``uri``: for a SQLite file an exclusive lock on
    ``<db>.lock``; other stores need none."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    lock_path = f"{path}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path, timeout=timeout, mode=0o644)
        lock.acquire()
    except Timeout:
        raise StoreUnusable(f"tracking store {uri}: {lock_path} stayed locked by another "
                            f"process for {timeout:.0f} s") from None
    except OSError as exc:
        raise StoreUnusable(f"tracking store {uri}: cannot create "
                            f"{exc.filename or lock_path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


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
