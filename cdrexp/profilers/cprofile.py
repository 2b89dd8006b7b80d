"""cProfile: deterministic per-function call counts and times, per process and merged.

The parent runs under ``python -m cProfile -o parent.pstats``; each worker profiles
itself through ``worker_profiling`` (``CDREXP_WORKER_PROFILER=cprofile:DIR``) and writes
``worker-<pid>.pstats`` when it ends. Readable tops by cumulative time per process, and
a merged view of all processes (``merged.pstats``, by cumulative and by own time).
cProfile sees Python calls only: a numpy call's time is charged to the numpy function
object (``{method 'sort' ...}``), which is still useful; it adds overhead per call, so
call-heavy Python code looks slower than it is.
"""
from __future__ import annotations

import io
import pstats
from pathlib import Path

from ._result import ProfileResult
from ._common import (child_env, child_failed, failure, metadata, run_logged,
                      with_stats_file, write_json, write_text)
from ..parallel.worker_profiling import ENV_VAR

NAME = "cprofile"
RAW = "pstats"


def profile(pcfg, child_cmd: list[str], artifact_dir: Path, env, context: dict
            ) -> ProfileResult:
    raw = artifact_dir / RAW
    raw.mkdir(exist_ok=True)
    cmd_child, stats_path = with_stats_file(child_cmd, artifact_dir)
    python, args = cmd_child[0], cmd_child[1:]
    cmd = [python, "-m", "cProfile", "-o", str(raw / "parent.pstats"), *args]
    run = run_logged(cmd, child_env(env, **{ENV_VAR: f"cprofile:{raw}"}),
                     artifact_dir / "cprofile.log")
    if child_failed(run, stats_path):
        return failure(NAME, run, artifact_dir)

    files = sorted(raw.glob("*.pstats"), key=lambda p: (p.stem != "parent", p.stem))
    loaded, errors = {}, []
    for f in files:
        try:
            loaded[f.stem] = pstats.Stats(str(f))
        except Exception as exc:   # noqa: BLE001 - a worker killed while dumping
            errors.append(f"{f.name}: {exc}")
    if not loaded:
        return ProfileResult(NAME, "failed", f"{NAME}: no profile written "
                             f"({'; '.join(errors) or 'none found'})", artifact_dir)
    n = pcfg.top_n
    for proc, st in loaded.items():
        write_text(artifact_dir / f"cprofile-top-{proc}.txt",
                   _top(st, n, f"{proc}: top {n} by cumulative time", "cumulative"))
    merged = pstats.Stats(*[str(raw / f"{p}.pstats") for p in loaded])
    merged.dump_stats(str(artifact_dir / "merged.pstats"))
    title = f"all {len(loaded)} processes merged"
    write_text(artifact_dir / "cprofile-top-merged.txt",
               _top(merged, n, f"{title}: top {n} by cumulative time", "cumulative")
               + "\n" + _top(merged, n, f"{title}: top {n} by own time", "tottime"))

    workers = [p for p in loaded if p != "parent"]
    metrics = {"cprofile_processes": float(len(loaded)), "profiled_wall_s": run.wall_s,
               "cprofile_calls": float(merged.total_calls)}
    write_json(artifact_dir / "metadata.json", metadata(
        context, NAME, processes=list(loaded), errors=errors, top_n=n,
        profiled_wall_s=round(run.wall_s, 3), command=cmd_child))
    note = "" if workers else " (no worker profile: a serial run, or workers without " \
                              "worker_profiling)"
    if errors:
        note += f" ({len(errors)} unreadable: {errors[0]})"
    return ProfileResult(
        NAME, "ok",
        f"{NAME}: {len(loaded)} processes ({len(workers)} workers), "
        f"{merged.total_calls} calls -> {RAW}/*.pstats, merged.pstats, "
        f"cprofile-top-*.txt{note}", artifact_dir, metrics)


def _top(stats: pstats.Stats, n: int, heading: str, key: str) -> str:
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats(key).print_stats(n)
    return f"{heading}\n{'=' * len(heading)}\n{buf.getvalue()}"
