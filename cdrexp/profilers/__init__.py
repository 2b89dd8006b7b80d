"""Profilers: each wraps one extra, unmeasured generation run in a child process.

Contract with the runner::

    result = run_profiler(pcfg, child_cmd, artifact_dir, env=None, context=None)

- ``pcfg``: the ``ProfilerConfig`` (``pcfg.name`` in none / pyspy / memray / cprofile / perf)
- ``child_cmd``: the argv of one generation, ``[python, -m, cdrexp.cli.child, --config, F]``
- ``artifact_dir``: an existing empty directory; the runner logs it to MLflow as ``profile/``
- ``context``: metadata for ``metadata.json`` (subscribers, days, start_date, git_commit,
  git_branch, ...)
- returns a ``ProfileResult``; never raises (but lets Ctrl-C through): a profiler that
  cannot run here returns "unavailable" (tool missing, no ptrace permission, kernel
  refuses perf events, no counter supported), one whose profiled run or tool failed
  returns "failed"; either with a one-line reason, and the experiment goes on.
  ``metrics`` are MLflow metrics (``peak_heap_mb``, ``task_clock_ms``, ``pyspy_samples``,
  ``profiled_wall_s``, ...).

One module per profiler (``pyspy``, ``memray_heap``, ``cprofile``, ``perf``), each with
``profile(pcfg, child_cmd, artifact_dir, env, context)``; ``_registry.get_profiler``
maps names to them. Workers the tools cannot follow profile themselves through
``cdrexp.parallel.worker_profiling``. Tool paths: ``CDREXP_PY_SPY_BIN``, ``CDREXP_MEMRAY_BIN``,
``CDREXP_PERF_BIN`` override the venv / ``PATH`` lookup.
"""
from __future__ import annotations

from pathlib import Path

from ._common import Unavailable, find_tool, last_line
from ._diff import FunctionShare, ProfileDiff, diff_profiles, diff_svg, function_label
from ._result import MB, ProfileResult
from ._samples import Samples, load_speedscope

__all__ = ["MB", "FunctionShare", "ProfileDiff", "ProfileResult", "Samples", "Unavailable",
           "diff_profiles", "diff_svg", "find_tool", "function_label", "last_line",
           "load_speedscope", "run_profiler"]


def run_profiler(pcfg, child_cmd, artifact_dir, env=None, context=None) -> ProfileResult:
    if pcfg.name == "none":
        return ProfileResult("none", "skipped")
    from ._registry import get_profiler
    artifact_dir = Path(artifact_dir)
    try:
        return get_profiler(pcfg.name)(pcfg, list(child_cmd), artifact_dir, env,
                                       context or {})
    except Unavailable as exc:  # tool missing, no permission: said once, here
        return ProfileResult(pcfg.name, "unavailable", f"{pcfg.name}: {exc}", artifact_dir)
    except Exception as exc:   # noqa: BLE001 - a broken profiler must not end the run
        first = str(exc).splitlines()[0] if str(exc) else ""
        return ProfileResult(pcfg.name, "failed",
                             f"{pcfg.name}: {type(exc).__name__}: {first}"[:300],
                             artifact_dir)

