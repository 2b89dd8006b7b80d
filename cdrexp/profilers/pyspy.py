"""py-spy: sampled CPU profile of the whole process tree (parent, forkserver, workers).

One ``py-spy record --subprocesses`` run writes the speedscope file (it keeps each
process and thread as its own profile, in time order); the flamegraph SVG and the
top-functions text are derived from those same samples, so all three agree.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._result import ProfileResult
from ._common import (child_env, child_failed, failure, find_tool, metadata,
                      run_logged, with_stats_file, write_json, write_text)
from ._flamegraph import render_svg
from ._samples import collapsed, load_speedscope, top_text

NAME = "pyspy"
SPEEDSCOPE = "profile.speedscope.json"
FLAMEGRAPH = "flamegraph.svg"
TOP = "top.txt"
_PTRACE = re.compile(r"permission denied|operation not permitted|ptrace|EPERM", re.I)


def profile(pcfg, child_cmd: list[str], artifact_dir: Path, env, context: dict
            ) -> ProfileResult:
    exe = find_tool("py-spy")       # Unavailable: run_profiler reports it
    cmd_child, stats_path = with_stats_file(child_cmd, artifact_dir)
    speedscope = artifact_dir / SPEEDSCOPE
    cmd = [exe, "record", "--subprocesses", "--rate", str(pcfg.rate),
           "--format", "speedscope", "--output", str(speedscope)]
    if pcfg.native:
        cmd.append("--native")
    if pcfg.idle:
        cmd.append("--idle")
    run = run_logged(cmd + ["--", *cmd_child], child_env(env), artifact_dir / "pyspy.log")

    if run.returncode != 0 and not speedscope.exists():
        if _PTRACE.search(run.output) and "Failed to create process" not in run.output:
            return ProfileResult(
                NAME, "unavailable",
                f"{NAME}: no permission to read the child's memory (ptrace): "
                f"run as root, or set kernel.yama.ptrace_scope=0, or grant CAP_SYS_PTRACE",
                artifact_dir)
        return failure(NAME, run, artifact_dir, skip=("py-spy>",))
    if child_failed(run, stats_path):
        return failure(NAME, run, artifact_dir, skip=("py-spy>",))

    m = re.search(r"Samples: (\d+) Errors: (\d+)", run.output)
    reported_samples, errors = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    samples = load_speedscope(speedscope)
    if samples.n_samples == 0:
        return ProfileResult(NAME, "failed", f"{NAME}: py-spy recorded no samples "
                             f"(log: {run.log.name})", artifact_dir)

    what = (f"{context.get('subscribers', '?')} subscribers, {context.get('days', '?')} "
            f"day(s) from {context.get('start_date', '?')}")
    title = f"cdrexp flamegraph: {what}"
    subtitle = (f"py-spy {pcfg.rate} Hz{', native' if pcfg.native else ''}"
                f"{', idle' if pcfg.idle else ''}: {samples.n_samples} samples, "
                f"{len(samples.processes)} processes | orange cdrexp, yellow libraries, "
                f"red stdlib, aqua native, grey processes")
    svg = artifact_dir / FLAMEGRAPH
    write_text(svg, render_svg(collapsed(samples), title, subtitle))
    write_text(artifact_dir / TOP, top_text(samples, pcfg.top_n, f"{title} ({subtitle})"))

    meta = metadata(context, NAME, flamegraph_file=FLAMEGRAPH,
                    flamegraph_size=svg.stat().st_size, speedscope_file=SPEEDSCOPE,
                    samples=samples.n_samples, errors=errors,
                    py_spy_reported_samples=reported_samples, rate_hz=pcfg.rate,
                    native=pcfg.native, idle=pcfg.idle, processes=len(samples.processes),
                    sampled_seconds=round(samples.seconds, 3),
                    profiled_wall_s=round(run.wall_s, 3), command=cmd_child)
    write_json(artifact_dir / "metadata.json", meta)
    metrics = {"pyspy_samples": float(samples.n_samples),
               "pyspy_processes": float(len(samples.processes)),
               "profiled_wall_s": run.wall_s}
    if errors is not None:
        metrics["pyspy_errors"] = float(errors)
    return ProfileResult(
        NAME, "ok",
        f"{NAME}: {samples.n_samples} samples from {len(samples.processes)} processes "
        f"({errors if errors is not None else '?'} errors) -> {FLAMEGRAPH}, {SPEEDSCOPE}, "
        f"{TOP}", artifact_dir, metrics)
