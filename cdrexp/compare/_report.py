"""Rendering: rich tables on the terminal, the CSV export and the throughput plot.

Files are written to a temporary name beside the target and renamed when complete, so
an interrupted export never leaves a file that looks whole.
"""
from __future__ import annotations

import csv
import os
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterable, Optional

from rich.console import Console
from rich.table import Table

from cdrexp.tracking import names

from ._analysis import (AB_HINT, EXPORT_COLUMNS, Comparison, Trend, peak_memory_mb,
                        relative, throughput)
from ._stats import DRIFT, FASTER, SLOWER, Change
from ._store import JobRun, RunGroup

_VERDICT_STYLE = {SLOWER: "bold red", FASTER: "bold green", DRIFT: "yellow"}


def make_console() -> Console:
    # piped output (CI logs, files) keeps whole rows instead of wrapping at 80 columns
    return Console(width=None if os.isatty(1) else 240)


# ------------------------------------------------------------------ formatting
def fmt_s(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"


def fmt_rate(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def fmt_mb(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:,.1f}"


def fmt_pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def fmt_interval(change: Change) -> str:
    if change.confidence <= 0:
        return "-"
    return (f"[{change.low * 100:+.1f}, {change.high * 100:+.1f}]% "
            f"@{change.confidence * 100:.0f}%")


def fmt_p(change: Change) -> str:
    return "-" if change.p_value is None else f"{change.p_value:.3g}"


def rate_name(jobs: Iterable[JobRun]) -> str:
    """What subs_per_s counts: subscribers/s, or subscriber-days/s when a run covers
    several days."""
    multi = any((job.param("days") or "1") not in ("1", "") for job in jobs)
    return "sub-days/s" if multi else "subs/s"


def fmt_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def verdict_cell(change: Change) -> str:
    style = _VERDICT_STYLE.get(change.verdict)
    return f"[{style}]{change.verdict}[/]" if style else change.verdict


def group_title(kind: str, group: RunGroup) -> str:
    what = "sweep" if group.is_sweep else "run"
    return (f"{kind}: {what} {group.group_id} started {fmt_time(group.started)} UTC, "
            f"{len(group.jobs)} job(s), commit {', '.join(group.commits)}")


# ------------------------------------------------------------------ --latest
def system_lines(info: dict, group: RunGroup) -> list[str]:
    """The machine a group ran on, from system_info.json, else from the run tags."""
    first = group.jobs[0]
    if not info:
        return [f"host {first.host or '?'}, commit {first.short_commit} "
                "(no system_info.json logged)"]
    cpu, mem, osinfo = info.get("cpu", {}), info.get("memory", {}), info.get("os", {})
    py, npy, git = info.get("python", {}), info.get("numpy", {}), info.get("git", {})
    blas = npy.get("blas") or {}
    blas_name = blas.get("name") if isinstance(blas, dict) else blas
    total = mem.get("total_bytes")
    lines = [
        f"host {info.get('host', first.host or '?')}: {cpu.get('model', '?')}, "
        f"{cpu.get('usable_cores', '?')} usable / {cpu.get('logical_cores', '?')} logical "
        f"cores, {total / 2**30:.1f} GiB" if total else
        f"host {info.get('host', first.host or '?')}: {cpu.get('model', '?')}",
        f"{osinfo.get('platform', '?')}, Python {py.get('version', '?')}, "
        f"numpy {npy.get('version', '?')}" + (f" ({blas_name})" if blas_name else ""),
    ]
    if git.get("commit"):
        dirty = " dirty" if git.get("dirty") else ""
        lines.append(f"git {git['commit'][:7]} on {git.get('branch') or '?'}{dirty}")
    return lines


def render_latest(console: Console, group: RunGroup, samples: dict[str, tuple],
                  system: dict) -> None:
    console.print(group_title("Latest", group))
    for line in system_lines(system, group):
        console.print(f"  {line}")
    table = Table(show_lines=False)
    for col in ("Configuration", "Repeats", "Time (median)", "min - max",
                rate_name(group.jobs),
                "records/s", "MB/s", "Peak PSS MB", "Peak RSS MB", "Commit"):
        table.add_column(col, no_wrap=col == "Configuration",
                         justify="left" if col == "Configuration" else "right")
    for job in group.jobs:
        reps = samples.get(job.run_id, ())
        table.add_row(job.label, str(len(reps)), fmt_s(job.metric(names.M_WALL_MEDIAN)),
                      f"{fmt_s(job.metric(names.M_WALL_MIN))} - "
                      f"{fmt_s(job.metric(names.M_WALL_MAX))}",
                      fmt_rate(throughput(job)), fmt_rate(job.metric(names.M_RECORDS_PER_S)),
                      fmt_rate(job.metric(names.M_MB_PER_S)),
                      fmt_mb(job.metric(names.M_PEAK_PSS)),
                      fmt_mb(job.metric(names.M_PEAK_RSS)), job.short_commit)
    console.print(table)


# ------------------------------------------------------------------ --compare
def render_comparison(console: Console, comp: Comparison) -> None:
    console.print(group_title("Previous", comp.prev))
    console.print(group_title("Current ", comp.cur))
    show_commits = any(m.commits_differ for m in comp.matches)
    table = Table()
    rate = rate_name(j for m in comp.matches for j in (m.prev, m.cur))
    cols = ["Configuration", "Prev time", "Cur time", "Time change", "Noise interval",
            "p (MWU)", f"Prev {rate}", f"Cur {rate}", "Thrpt change", "Mem change",
            "Verdict", "Note"]
    if show_commits:
        cols.append("Commits")
    for col in cols:
        table.add_column(col, no_wrap=col == "Configuration",
                         justify="left" if col in ("Configuration", "Note",
                                                   "Commits") else "right")
    for m in comp.matches:
        c = m.change
        note = "; ".join(x for x in (c.note, "configs differ" if m.forced else "") if x)
        row = [m.label, fmt_s(c.prev_median), fmt_s(c.cur_median), fmt_pct(c.change),
               fmt_interval(c), fmt_p(c), fmt_rate(throughput(m.prev)),
               fmt_rate(throughput(m.cur)), fmt_pct(m.throughput_change),
               _mem_cell(m.prev, m.cur), verdict_cell(c), note]
        if show_commits:
            row.append(f"{m.prev.short_commit} -> {m.cur.short_commit}"
                       if m.commits_differ else "")
        table.add_row(*row)
    console.print(table)
    counts = {v: sum(m.change.verdict == v for m in comp.matches)
              for v in ("OK", FASTER, SLOWER, DRIFT)}
    judged = ", ".join(f"{counts[v]} {v}" for v in ("OK", FASTER, SLOWER, DRIFT)
                       if counts[v])
    console.print(f"{len(comp.matches)} matched at threshold {comp.threshold * 100:g}%: "
                  + judged
                  + (f"; {len(comp.only_cur)} only in current" if comp.only_cur else "")
                  + (f"; {len(comp.only_prev)} only in previous" if comp.only_prev else ""))
    if counts[DRIFT]:
        commits = sorted({m.cur.short_commit for m in comp.matches if m.drift})
        console.print(
            f"DRIFT: {'all ' if counts[DRIFT] == len(comp.matches) else ''}"
            f"{counts[DRIFT]} configuration(s) ran the same code on both sides (commit "
            f"{', '.join(commits)}, no uncommitted change): their time changes are the "
            "machine's drift between the two sessions, not a finding, so no verdict is "
            f"given. To measure a change: {AB_HINT}.", style="yellow",
            markup=False, highlight=False, soft_wrap=True)
    console.print("Noise interval: distribution-free interval of the time change from "
                  "the repeats (Mann-Whitney/Hodges-Lehmann); a verdict needs the whole "
                  "interval beyond the threshold.", style="dim")


def _mem_cell(prev: JobRun, cur: JobRun) -> str:
    a, b = peak_memory_mb(prev), peak_memory_mb(cur)
    if a is None or b is None:
        return "-"
    return f"{fmt_pct(relative(a, b))} ({a:,.0f}->{b:,.0f} MB)"


# ------------------------------------------------------------------ --trends
def _direction(change: Optional[Change]) -> str:
    if change is None:
        return ""
    if change.verdict == SLOWER:
        return "[bold red]v slower[/]"
    if change.verdict == FASTER:
        return "[bold green]^ faster[/]"
    if change.verdict == DRIFT:
        return "[yellow]~ drift (same commit)[/]"
    return "= noise" if change.note else "= same"


def render_trends(console: Console, trend_list: Iterable[Trend], threshold: float) -> None:
    table = Table(title=f"Trends (threshold {threshold * 100:g}%)")
    for col in ("Configuration", "#", "Started (UTC)", "Commit", "Time", "subs/s",
                "Change vs prev", "Direction", "Peak MB"):
        table.add_column(col, no_wrap=col == "Configuration",
                         justify="left" if col in ("Configuration", "Started (UTC)",
                                                   "Commit", "Direction") else "right")
    trend_list = list(trend_list)
    for t in trend_list:
        for i, point in enumerate(t.points):
            last = i == len(t.points) - 1
            job, c = point.job, point.vs_previous
            table.add_row(t.label if i == 0 else "", str(i + 1), fmt_time(job.started),
                          job.short_commit, fmt_s(job.metric(names.M_WALL_MEDIAN)),
                          fmt_rate(throughput(job)), fmt_pct(c.change) if c else "",
                          _direction(c), fmt_mb(peak_memory_mb(job)), end_section=last)
    console.print(table)
    for t in trend_list:
        if t.overall is not None:
            console.print(f"{t.label}: {len(t.points)} runs, first to last "
                          f"{fmt_pct(t.overall.change)} time {fmt_interval(t.overall)} "
                          f"-> {_direction(t.overall)}")


# ------------------------------------------------------------------ files
@contextmanager
def _atomic_path(target: Path):
    """A temporary path next to ``target``, renamed onto it if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix,
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_csv(path: Path, rows: list[dict]) -> None:
    with _atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(EXPORT_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)


def write_plot(path: Path, trend_list: Iterable[Trend]) -> None:
    """Throughput (subs/s) over time, one line per configuration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    try:
        for t in trend_list:
            xs = [p.job.started for p in t.points if throughput(p.job) is not None]
            ys = [throughput(p.job) for p in t.points if throughput(p.job) is not None]
            if ys:
                ax.plot(xs, ys, marker="o", label=t.label)
        values = [y for line in ax.lines for y in line.get_ydata()]
        if values and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_yscale("log")        # configurations far apart in size stay readable
        ax.set_xlabel("run start (UTC)")
        ax.set_ylabel("throughput (subscribers/s)")
        ax.set_title("cdrexp throughput over time per configuration")
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small", loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        with _atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
