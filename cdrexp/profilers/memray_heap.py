"""memray: heap profile of the parent and of every worker, one capture per process.

The parent runs under ``python -m memray run``; ``--follow-fork`` would not help, since
the executor's workers come from a forkserver (memray's tracker runs a thread of its own,
so the executor does not fork: ``parallel._fork``), so each worker starts its own
``memray.Tracker`` through ``worker_profiling`` (``CDREXP_WORKER_PROFILER=memray:DIR``).
Per process: an HTML flamegraph of the allocations live at the heap's peak
(``memray flamegraph``) and ``memray stats`` as text.

Metrics: ``peak_heap_mb`` is the largest per-process peak; ``peak_heap_mb_sum`` adds the
per-process peaks, an upper bound of the tree's heap at any one moment (the peaks need
not coincide). Shared-memory views that a worker maps are counted in that worker.

pyarrow's default pool (mimalloc / jemalloc) reserves a large arena with mmap and then
serves allocations from it, which memray sees as one ~1 GB allocation at import and
nothing after; the profiled child therefore runs with ``ARROW_DEFAULT_MEMORY_POOL=system``
(unless set already) so that Arrow buffers are real, tracked mallocs.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ._result import MB, ProfileResult     # MB: 10^6 bytes, like every *_mb metric
from ._common import (child_env, child_failed, failure, find_tool, metadata,
                      run_logged, with_stats_file, write_json, write_text)
from ..parallel.worker_profiling import ENV_VAR

NAME = "memray"
RAW = "memray_raw"


def profile(pcfg, child_cmd: list[str], artifact_dir: Path, env, context: dict
            ) -> ProfileResult:
    exe = find_tool("memray")       # Unavailable: run_profiler reports it
    raw = artifact_dir / RAW
    raw.mkdir(exist_ok=True)
    cmd_child, stats_path = with_stats_file(child_cmd, artifact_dir)
    python, args = cmd_child[0], cmd_child[1:]
    cmd = [python, "-m", "memray", "run", "--quiet", "--force",
           "--output", str(raw / "parent.bin")]
    if pcfg.native:
        cmd.append("--native")
    kind = "memray+native" if pcfg.native else "memray"
    run_env = child_env(env, **{ENV_VAR: f"{kind}:{raw}"})
    run_env.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    run = run_logged(cmd + args, run_env, artifact_dir / "memray.log")
    if run.returncode != 0 and "No module named memray" in run.output:
        return ProfileResult(NAME, "unavailable",
                             f"{NAME}: memray is not installed for {python}", artifact_dir)
    if child_failed(run, stats_path):
        return failure(NAME, run, artifact_dir)

    processes, errors = [], []
    for bin_path in sorted(raw.glob("*.bin"), key=_process_order):
        proc = bin_path.stem
        try:
            info = _peak(bin_path)
        except Exception as exc:   # noqa: BLE001 - e.g. a worker killed mid-write
            errors.append(f"{bin_path.name}: unreadable capture: {exc}")
            continue
        html = artifact_dir / f"memray-flamegraph-{proc}.html"
        stats_txt = artifact_dir / f"memray-stats-{proc}.txt"
        for what, argv in (("flamegraph", [exe, "flamegraph", "--force", "--output",
                                           str(html), str(bin_path)]),
                           ("stats", [exe, "stats", "--num-largest", "15", str(bin_path)])):
            out = subprocess.run(argv, capture_output=True, text=True)
            if out.returncode != 0:
                errors.append(f"{bin_path.name}: memray {what} failed: "
                              f"{(out.stderr.strip().splitlines() or ['?'])[-1]}")
            elif what == "stats":
                write_text(stats_txt, out.stdout)
        processes.append({"process": proc, **info,
                          "flamegraph": html.name if html.exists() else None,
                          "stats": stats_txt.name if stats_txt.exists() else None})
    if not processes:
        return ProfileResult(NAME, "failed", f"{NAME}: no readable capture in {RAW}/ "
                             f"({'; '.join(errors) or 'none written'})", artifact_dir)

    peaks = [p["peak_heap_mb"] for p in processes]
    workers = [p for p in processes if p["process"] != "parent"]
    metrics = {"peak_heap_mb": max(peaks), "peak_heap_mb_sum": sum(peaks),
               "memray_processes": float(len(processes)),
               "profiled_wall_s": run.wall_s}
    parent = [p for p in processes if p["process"] == "parent"]
    if parent:
        metrics["peak_heap_mb_parent"] = parent[0]["peak_heap_mb"]
    if workers:
        metrics["peak_heap_mb_worker_max"] = max(p["peak_heap_mb"] for p in workers)
    write_text(artifact_dir / "memray_summary.txt", _summary(processes, metrics, errors))
    write_json(artifact_dir / "metadata.json", metadata(
        context, NAME, native=pcfg.native, processes=processes, errors=errors,
        command=cmd_child, arrow_memory_pool=run_env["ARROW_DEFAULT_MEMORY_POOL"],
        **{k: round(v, 3) for k, v in metrics.items()}))
    status = "ok"
    note = f" ({len(errors)} errors: {errors[0]})" if errors else ""
    if not workers:
        note += " (no worker capture: a serial run, or workers without worker_profiling)"
    return ProfileResult(
        NAME, status,
        f"{NAME}: {len(processes)} processes, peak heap {max(peaks):.1f} MB max, "
        f"{sum(peaks):.1f} MB summed -> memray-flamegraph-*.html, memray-stats-*.txt{note}",
        artifact_dir, metrics)


def _process_order(path: Path):
    return (path.stem != "parent", [int(x) if x.isdigit() else x
                                    for x in re.split(r"(\d+)", path.stem)])


def _peak(bin_path: Path) -> dict:
    import memray

    meta = memray.FileReader(str(bin_path)).metadata
    return {"pid": meta.pid, "peak_heap_mb": meta.peak_memory / MB,
            "allocations": meta.total_allocations,
            "duration_s": (meta.end_time - meta.start_time).total_seconds()}


def _summary(processes: list[dict], metrics: dict, errors: list[str]) -> str:
    lines = [f"{'process':<20} {'pid':>8} {'peak heap MB':>13} {'allocations':>12} "
             f"{'seconds':>8}"]
    for p in processes:
        lines.append(f"{p['process']:<20} {p['pid']:>8} {p['peak_heap_mb']:13.1f} "
                     f"{p['allocations']:>12} {p['duration_s']:8.2f}")
    lines += ["", f"peak_heap_mb (largest process)        {metrics['peak_heap_mb']:.1f}",
              f"peak_heap_mb_sum (sum of the peaks)   {metrics['peak_heap_mb_sum']:.1f}"]
    lines += [f"error: {e}" for e in errors]
    return "\n".join(lines) + "\n"
