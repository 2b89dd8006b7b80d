"""perf: ``perf stat`` counters of the whole process tree (it follows children by default),
then, with ``profiler.sample`` (the default), a second run under ``perf record`` for call
stacks (``_perf_record``).

Hardware counters (cycles, instructions, cache and branch misses) exist only where the
kernel exposes a PMU; in most VMs they read ``<not supported>`` while the software ones
(task-clock, context switches, page faults) always work. Unsupported counters are listed
in the message and in ``perf_counters.json``, never logged as zeros.
"""
from __future__ import annotations

import re
from pathlib import Path

from ._result import ProfileResult
from ._common import (child_env, child_failed, failure, find_tool, last_line,
                      metadata, run_logged, with_stats_file, write_json, write_text)
from . import _perf_record

NAME = "perf"
CSV = "perf_stat.csv"
_NAMES = {"task-clock": "task_clock_ms", "cpu-clock": "cpu_clock_ms"}
_DENIED = _perf_record.DENIED
_NOT_COUNTED = ("<not supported>", "<not counted>")


def metric_name(event: str) -> str:
    """``cache-misses`` -> ``cache_misses``; ``cycles:u`` -> ``cycles_u``."""
    return _NAMES.get(event) or re.sub(r"[^A-Za-z0-9]+", "_", event).strip("_").lower()


def parse_csv(text: str) -> tuple[dict[str, float], list[str]]:
    """``perf stat -x,`` output -> ({event: value}, [events not supported / counted])."""
    counted, missing = {}, []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) < 3:
            continue
        value, event = fields[0].strip(), fields[2].strip()
        if not event:
            continue
        if value in _NOT_COUNTED:
            missing.append(event)
            continue
        try:
            counted[event] = float(value)
        except ValueError:
            missing.append(event)
    return counted, missing


def derived(metrics: dict[str, float], wall_s: float) -> dict[str, float]:
    out = {}
    for name, num, den in (("ipc", "instructions", "cycles"),
                           ("cache_miss_rate", "cache_misses", "cache_references"),
                           ("branch_miss_rate", "branch_misses", "branches")):
        if metrics.get(den):
            out[name] = metrics[num] / metrics[den] if num in metrics else None
    if "task_clock_ms" in metrics and wall_s > 0:
        out["cpus_utilized"] = metrics["task_clock_ms"] / 1000.0 / wall_s
    return {k: v for k, v in out.items() if v is not None}


def profile(pcfg, child_cmd: list[str], artifact_dir: Path, env, context: dict
            ) -> ProfileResult:
    exe = find_tool("perf")       # Unavailable: run_profiler reports it
    if not pcfg.events and not pcfg.sample:
        return ProfileResult(NAME, "failed", f"{NAME}: profiler.events is empty and "
                             "profiler.sample is false: nothing to do", artifact_dir)
    results, meta = [], {}
    if pcfg.events:
        stat = _stat(exe, pcfg, child_cmd, artifact_dir, env, meta)
        if stat.status == "failed":      # the child or an event is at fault: no second run
            return stat
        results.append(stat)
    if pcfg.sample:
        sampled = _perf_record.record(exe, pcfg, child_cmd, artifact_dir, env, context)
        results.append(sampled)
        meta.update(sampled=sampled.status, freq_hz=pcfg.freq)
        if sampled.status == "ok":
            meta.update(flamegraph_file=_perf_record.FLAMEGRAPH,
                        speedscope_file=_perf_record.SPEEDSCOPE)
    write_json(artifact_dir / "metadata.json", metadata(context, NAME, **meta))
    ok = [r for r in results if r.status == "ok"]
    status = "ok" if ok else results[-1].status
    message = "; ".join(r.message if r.status == "ok" else f"{r.status}: {r.message}"
                        for r in results) if ok else results[-1].message
    metrics = {k: v for r in ok for k, v in r.metrics.items()}
    return ProfileResult(NAME, status, f"{NAME}: {message}" if ok else message,
                         artifact_dir, metrics)


def _stat(exe: str, pcfg, child_cmd: list[str], artifact_dir: Path, env, meta: dict
          ) -> ProfileResult:
    """``perf stat`` of one run; adds to ``meta`` what metadata.json should say."""
    cmd_child, stats_path = with_stats_file(child_cmd, artifact_dir)
    csv_path = artifact_dir / CSV
    cmd = [exe, "stat", "-x", ",", "-o", str(csv_path), "-e", ",".join(pcfg.events),
           "--", *cmd_child]
    run = run_logged(cmd, child_env(env), artifact_dir / "perf.log")
    text = csv_path.read_text() if csv_path.exists() else ""
    counted, missing = parse_csv(text)
    if not counted and not missing:          # perf itself refused: the child never ran
        if _DENIED.search(run.output):
            return ProfileResult(
                NAME, "unavailable",
                f"{NAME}: the kernel does not allow perf events here "
                f"(see /proc/sys/kernel/perf_event_paranoid)", artifact_dir)
        bad = re.search(r"event syntax error: '([^']*)'", run.output)
        if bad:
            return ProfileResult(NAME, "failed",
                                 f"{NAME}: profiler.events has an event perf does not know: "
                                 f"{bad.group(1)!r} (see `perf list`)", artifact_dir)
        return ProfileResult(NAME, "failed", f"{NAME}: perf stat did not start "
                             f"(exit {run.returncode}): {last_line(run.output)}",
                             artifact_dir)
    if child_failed(run, stats_path):
        return failure(NAME, run, artifact_dir)
    if not counted:
        return ProfileResult(NAME, "unavailable",
                             f"{NAME}: none of the counters is supported here "
                             f"({', '.join(missing)})", artifact_dir)

    metrics = {metric_name(e): v for e, v in counted.items()}
    metrics.update(derived(metrics, run.wall_s))
    metrics["profiled_wall_s"] = run.wall_s
    hw_missing = [e for e in missing if not _software(e)]
    report = {"counters": counted, "not_supported": missing, "metrics": metrics,
              "events_asked": list(pcfg.events), "wall_s": run.wall_s}
    write_json(artifact_dir / "perf_counters.json", report)
    write_text(artifact_dir / "perf.txt", _table(counted, missing, metrics))
    meta.update(counters=counted, not_supported=missing,
                profiled_wall_s=round(run.wall_s, 3), command=cmd_child)
    msg = f"{len(counted)} counters ({', '.join(counted)})"
    if missing:
        msg += f"; not supported here: {', '.join(missing)}"
        if hw_missing and len(hw_missing) == len(missing):
            msg += " (no hardware counters on this machine, e.g. a VM without a PMU: " \
                   "software counters only)"
    return ProfileResult(NAME, "ok", msg, artifact_dir, metrics)


def _software(event: str) -> bool:
    return event.split(":")[0] in {"task-clock", "cpu-clock", "context-switches", "cs",
                                   "cpu-migrations", "migrations", "page-faults",
                                   "faults", "minor-faults", "major-faults",
                                   "alignment-faults", "emulation-faults"}


def _table(counted: dict, missing: list, metrics: dict) -> str:
    lines = [f"{'counter':<24} {'value':>18}"]
    lines += [f"{e:<24} {v:>18,.2f}" for e, v in counted.items()]
    lines += [f"{e:<24} {'<not supported>':>18}" for e in missing]
    extra = {k: v for k, v in metrics.items() if k in ("ipc", "cache_miss_rate",
                                                       "branch_miss_rate", "cpus_utilized",
                                                       "profiled_wall_s")}
    lines += [""] + [f"{k:<24} {v:>18.3f}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"
