"""CPU seconds (user + sys) of a process tree: this process and every descendant.

``getrusage`` gives this process and the children it has reaped; children still alive at
the end (a pool kept between runs) are read with psutil, and whatever such processes had
used before the measurement started is subtracted.
"""
from __future__ import annotations

import resource

import psutil


def _rusage_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _live_children_cpu() -> dict[int, float]:
    """CPU time of each live descendant (not yet reaped, so not in RUSAGE_CHILDREN)."""
    times = {}
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return times
    for p in children:
        try:
            t = p.cpu_times()
            times[p.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return times


class TreeCpu:
    """CPU seconds (user + sys) this process and its descendants used since creation."""

    def __init__(self):
        self._rusage0 = _rusage_cpu()
        self._live0 = sum(_live_children_cpu().values())

    def elapsed(self) -> float:
        used = _rusage_cpu() - self._rusage0 + sum(_live_children_cpu().values()) - \
            self._live0
        return max(used, 0.0)
