"""Profiler name -> the function that runs it (imported only when asked for)."""
from __future__ import annotations

import importlib
from typing import Callable

_MODULES = {"pyspy": "pyspy", "memray": "memray_heap", "cprofile": "cprofile",
            "perf": "perf"}


def names() -> tuple[str, ...]:
    return tuple(_MODULES)


def get_profiler(name: str) -> Callable:
    """``profile(pcfg, child_cmd, artifact_dir, env, context) -> ProfileResult``."""
    if name not in _MODULES:
        raise KeyError(f"profiler {name!r} is not one of {', '.join(_MODULES)}")
    return importlib.import_module(f"{__package__}.{_MODULES[name]}").profile
