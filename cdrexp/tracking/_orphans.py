"""Runs left RUNNING by a process that is gone (``kill -9``, a crash, a lost machine).

Every run cdrexp opens carries ``owner_tags()``: the host, pid and start time of the
process that opened it. A RUNNING run whose owner was on this host and is no longer
running (no such pid, a zombie, or a pid reused by a process started at another time)
can never end by itself; ``reconcile_orphans`` marks it KILLED, with the reason in
``cdrexp.error``, and returns one line saying so. The runner calls it before its jobs
start and ``cdrexp.compare`` before it reads; runs of other hosts are left alone (their
processes cannot be seen from here).
"""
from __future__ import annotations

import os
import socket
from typing import Optional

from . import names as N

# two start times of one process read at different moments differ by rounding only
_START_TOLERANCE_S = 1.0


def _started(pid: int) -> Optional[float]:
    """The process's start time (epoch seconds), None if it is not running."""
    import psutil
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:        # not ours to read (another user): it is running
        return float("nan")


def owner_tags(pid: Optional[int] = None) -> dict[str, str]:
    """The tags naming the process (default: this one) that owns a run being opened."""
    pid = os.getpid() if pid is None else pid
    started = _started(pid)
    tags = {N.TAG_OWNER_HOST: socket.gethostname(), N.TAG_OWNER_PID: str(pid)}
    if started is not None and started == started:
        tags[N.TAG_OWNER_STARTED] = f"{started:.2f}"
    return tags


def owner_gone(tags: dict, host: Optional[str] = None) -> bool:
    """Whether the run's owning process (by its tags) is known to have ended: only for a
    run of this host; a run without owner tags (older cdrexp) is never judged."""
    host = socket.gethostname() if host is None else host
    if tags.get(N.TAG_OWNER_HOST) != host:
        return False
    try:
        pid = int(tags[N.TAG_OWNER_PID])
    except (KeyError, ValueError):
        return False
    started = _started(pid)
    if started is None:
        return True
    recorded = tags.get(N.TAG_OWNER_STARTED)
    if recorded is None or started != started:
        return False
    try:
        return abs(float(recorded) - started) > _START_TOLERANCE_S   # pid reused
    except ValueError:
        return False


def reconcile_orphans(client, experiment_ids: Optional[list[str]] = None,
                      retry=None) -> Optional[str]:
    """Mark KILLED every RUNNING run of ``experiment_ids`` (default: every active
    experiment) whose owning process on this host is gone. ``client``: an MlflowClient;
    ``retry(fn, *args)`` wraps each call (a SQLite store another process writes). Returns
    one line naming the runs marked, or None."""
    call = retry or (lambda fn, *a, **k: fn(*a, **k))
    host = socket.gethostname()
    if experiment_ids is None:
        experiment_ids = [e.experiment_id for e in call(client.search_experiments)]
    if not experiment_ids:
        return None
    runs = call(client.search_runs, experiment_ids,
                filter_string=f"attributes.status = 'RUNNING' and "
                              f"tags.`{N.TAG_OWNER_HOST}` = '{host}'",
                max_results=1000)
    marked = []
    for run in runs:
        tags = run.data.tags
        if not owner_gone(tags, host):
            continue
        pid = tags.get(N.TAG_OWNER_PID)
        call(client.set_tag, run.info.run_id, N.TAG_ERROR,
             f"process {pid} on {host} ended without closing the run (killed?); "
             "marked KILLED by a later command")
        call(client.set_terminated, run.info.run_id, "KILLED")
        marked.append((run.info.run_id, tags.get(N.TAG_MLFLOW_RUN_NAME) or "", pid))
    if not marked:
        return None
    if len(marked) == 1:
        run_id, name, pid = marked[0]
        return (f"run {run_id} ({name}) was left RUNNING by process {pid}, which is "
                f"gone: marked KILLED")
    pids = ", ".join(sorted({str(p) for _, _, p in marked}))
    return (f"{len(marked)} runs left RUNNING by process(es) {pids}, which are gone, "
            f"marked KILLED: {', '.join(r for r, _, _ in marked)}")


def say_orphans(client, prog: str) -> bool:
    """Before a command uses a store (``client``: its MlflowClient): reconcile, and say in
    one line on stderr what was marked KILLED, or that the store could not be searched (a
    warning: the command goes on). True if a run was marked."""
    import sys

    from .store import retry_locked
    try:
        line = reconcile_orphans(client, retry=retry_locked)
    except Exception as exc:    # a store that opened but cannot be searched
        from ..usage import one_line
        print(f"{prog}: warning: could not look for runs left RUNNING: "
              f"{one_line(exc, 300)}", file=sys.stderr)
        return False
    if line:
        print(f"{prog}: {line}", file=sys.stderr)
    return bool(line)
