"""perf record: sampled call stacks of the whole process tree, kernel frames included.

``perf record -e cpu-clock -g`` follows every process and thread the child starts (the
software clock samples in VMs, where hardware events do not exist). From ``perf.data``:
``perf_report.txt`` (``perf report --stdio``, by library and symbol) and, through
``perf script`` folded into a speedscope document, the flamegraph and ``top.txt``, the
same views as py-spy's and the input of the differential view. Call chains come from
frame pointers (``-g``): code built without them (the interpreter, most wheels) ends its
chain early, at an ``[unknown]`` frame; the sampled function itself is always right.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from ._result import ProfileResult
from ._common import (child_env, child_failed, failure, last_line, run_logged,
                      with_stats_file, write_text)
from ._flamegraph import render_svg
from ._perf_script import SCRIPT_FIELDS, fold
from ._samples import collapsed, load_speedscope, top_text

DATA = "perf.data"
REPORT = "perf_report.txt"
SPEEDSCOPE = "profile.speedscope.json"       # the name py-spy's profile has: one reader
FLAMEGRAPH = "perf_flamegraph.svg"
TOP = "top.txt"
DENIED = re.compile(r"perf_event_paranoid|Access to performance monitoring|"
                     r"Permission denied|not permitted", re.I)
REPORT_PERCENT_LIMIT = 0.2


def record(exe: str, pcfg, child_cmd: list[str], artifact_dir: Path, env,
           context: dict) -> ProfileResult:
    cmd_child, stats_path = with_stats_file(child_cmd, artifact_dir)
    if stats_path is not None:
        stats_path.unlink(missing_ok=True)      # perf stat's run wrote one already
    data = artifact_dir / DATA
    cmd = [exe, "record", "-e", "cpu-clock", "-F", str(pcfg.freq), "-g", "-o", str(data),
           "--", *cmd_child]
    run = run_logged(cmd, child_env(env), artifact_dir / "perf_record.log")
    if not data.exists() or data.stat().st_size == 0:
        if DENIED.search(run.output):
            return ProfileResult("perf", "unavailable",
                                 "perf record: the kernel does not allow perf events here "
                                 "(see /proc/sys/kernel/perf_event_paranoid)", artifact_dir)
        return ProfileResult("perf", "failed", f"perf record did not start (exit "
                             f"{run.returncode}): {last_line(run.output)}", artifact_dir)
    if child_failed(run, stats_path):
        return failure("perf", run, artifact_dir)

    report = subprocess.run([exe, "report", "-i", str(data), "--stdio", "--no-children",
                             "--sort", "dso,sym", "-g", "none", "--percent-limit",
                             str(REPORT_PERCENT_LIMIT)],
                            capture_output=True, text=True, errors="replace")
    write_text(artifact_dir / REPORT, report.stdout or report.stderr)
    speedscope = artifact_dir / SPEEDSCOPE
    with subprocess.Popen([exe, "script", "-i", str(data), "-F", SCRIPT_FIELDS,
                           "--show-task-events"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, errors="replace") as proc:
        doc = fold(proc.stdout, name=f"perf record: {' '.join(cmd_child[-3:])}")
    write_text(speedscope, json.dumps(doc))
    samples = load_speedscope(speedscope)
    if samples.n_samples == 0:
        return ProfileResult("perf", "failed", "perf record: no samples (log: "
                             f"{run.log.name})", artifact_dir)

    what = (f"{context.get('subscribers', '?')} subscribers, {context.get('days', '?')} "
            f"day(s) from {context.get('start_date', '?')}")
    title = f"cdrexp perf flamegraph: {what}"
    subtitle = (f"perf record -e cpu-clock -F {pcfg.freq} -g: {samples.n_samples} samples, "
                f"{len(samples.processes)} processes | violet kernel, aqua native, "
                "grey processes")
    write_text(artifact_dir / FLAMEGRAPH, render_svg(collapsed(samples), title, subtitle))
    write_text(artifact_dir / TOP, top_text(samples, pcfg.top_n, f"{title} ({subtitle})"))
    kernel = sum(w for stack, w in samples.stacks
                 if stack and samples.frames[stack[-1]].file.startswith("[kernel"))
    metrics = {"perf_samples": float(samples.n_samples),
               "perf_kernel_share": kernel / (samples.seconds or 1.0),
               "perf_record_wall_s": run.wall_s}
    return ProfileResult(
        "perf", "ok", f"perf record: {samples.n_samples} samples from "
        f"{len(samples.processes)} processes, {100 * metrics['perf_kernel_share']:.0f}% "
        f"in the kernel -> {FLAMEGRAPH}, {REPORT}, {TOP}", artifact_dir, metrics)
