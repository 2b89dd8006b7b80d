"""Profiling inside worker processes that a parent-level profiler cannot follow.

Executors call ``start()`` first thing in every worker process and the returned
``stop()`` when the worker ends. The parent's profiler asks for it through the
environment variable ``CDREXP_WORKER_PROFILER`` ("memray:DIR" or "cprofile:DIR");
unset means do nothing.
"""
from __future__ import annotations

import os
from typing import Callable

ENV_VAR = "CDREXP_WORKER_PROFILER"


def start() -> Callable[[], None]:
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return lambda: None
    return lambda: None  # filled in by the profilers subpackage
