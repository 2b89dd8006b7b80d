"""py-spy: sampled CPU profile of the whole process tree (parent, workers, a forkserver).

One ``py-spy record --subprocesses`` run writes the speedscope file (it keeps each
process and thread as its own profile, in time order); the flamegraph SVG and the
top-functions text are derived from those same samples, so all three agree.

``flamegraph.svg`` and ``top.txt`` show the generation (``_samples.split_startup``);
interpreter start-up, imports and teardown, most of a short run's samples, are in
``flamegraph_startup.svg`` and ``top_startup.txt``; the speedscope file has everything.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._result import ProfileResult
from ._common import (child_env, child_failed, failure, find_tool, metadata,
                      run_logged, with_stats_file, write_json, write_text)
from ._flamegraph import render_svg
from ._samples import (Samples, collapsed, import_share, load_speedscope, split_startup,
                       top_text)

NAME = "pyspy"
SPEEDSCOPE = "profile.speedscope.json"
FLAMEGRAPH = "flamegraph.svg"
TOP = "top.txt"
STARTUP_FLAMEGRAPH = "flamegraph_startup.svg"
STARTUP_TOP = "top_startup.txt"
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
    work, startup = split_startup(samples)
    if work.n_samples == 0:         # not a cdrexp generation: nothing to set apart
        work, startup = samples, Samples(samples.frames, [])
    apart = (f"{startup.n_samples} samples of start-up, imports and teardown "
             f"({100 * startup.seconds / (samples.seconds or 1):.0f}% of all) are apart: "
             f"{STARTUP_FLAMEGRAPH}, {STARTUP_TOP}")
    svg = artifact_dir / FLAMEGRAPH
    write_text(svg, render_svg(collapsed(work), f"{title}: the generation",
                               f"{subtitle}\n{apart}"))
    write_text(artifact_dir / TOP, top_text(work, pcfg.top_n,
                                            f"{title}: the generation ({subtitle})\n{apart}"))
    if startup.n_samples:
        what_else = f"{title}: start-up, imports and teardown (the generation: {FLAMEGRAPH})"
        write_text(artifact_dir / STARTUP_FLAMEGRAPH,
                   render_svg(collapsed(startup), what_else, subtitle))
        write_text(artifact_dir / STARTUP_TOP, top_text(startup, pcfg.top_n,
                                                        f"{what_else} ({subtitle})"))

    meta = metadata(context, NAME, flamegraph_file=FLAMEGRAPH,
                    flamegraph_size=svg.stat().st_size, speedscope_file=SPEEDSCOPE,
                    samples=samples.n_samples, errors=errors,
                    py_spy_reported_samples=reported_samples, rate_hz=pcfg.rate,
                    native=pcfg.native, idle=pcfg.idle, processes=len(samples.processes),
                    sampled_seconds=round(samples.seconds, 3),
                    generation_samples=work.n_samples, startup_samples=startup.n_samples,
                    startup_flamegraph_file=STARTUP_FLAMEGRAPH if startup.n_samples else None,
                    profiled_wall_s=round(run.wall_s, 3), command=cmd_child)
    write_json(artifact_dir / "metadata.json", meta)
    metrics = {"pyspy_samples": float(samples.n_samples),
               "pyspy_startup_share": startup.seconds / (samples.seconds or 1),
               "pyspy_import_share_of_generation_view": import_share(work),
               "pyspy_processes": float(len(samples.processes)),
               "profiled_wall_s": run.wall_s}
    if errors is not None:
        metrics["pyspy_errors"] = float(errors)
    return ProfileResult(
        NAME, "ok",
        f"{NAME}: {samples.n_samples} samples from {len(samples.processes)} processes "
        f"({errors if errors is not None else '?'} errors) -> {FLAMEGRAPH}, {TOP} (the "
        f"generation), {STARTUP_FLAMEGRAPH}, {STARTUP_TOP} (start-up and imports, "
        f"{100 * metrics['pyspy_startup_share']:.0f}%), {SPEEDSCOPE}", artifact_dir, metrics)
