"""A sweep's summary: one row per job, parallel speedup and efficiency, and plots of
throughput and peak memory against ``subs`` and against the worker count.

Every plotted point carries the spread of its job's repeats as a bar (throughputs and
speedups from the fastest and the slowest repeat, memory from the lowest and the highest
repeat's peak), and jobs whose wall times spread by more than ``LARGE_SPREAD`` of their
median are ringed in red: a noisy point must not look like a real one.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from . import names as N
from .measure import relative_spread

COLUMNS = ("job", "run_id", "status", "subs", "days", "workers", "workers_used", "format",
           "executor", N.M_WALL_MEDIAN, N.M_WALL_STDDEV, N.M_WALL_SPREAD, N.M_SUBS_PER_S,
           N.M_RECORDS_PER_S, N.M_MB_PER_S, N.M_CPU_UTIL, N.M_PEAK_PSS, N.M_PEAK_RSS,
           N.M_SPEEDUP, N.M_EFFICIENCY, "overrides")
_METRICS = (N.M_WALL_MEDIAN, N.M_WALL_MIN, N.M_WALL_MAX, N.M_WALL_STDDEV, N.M_WALL_SPREAD,
            N.M_SUBS_PER_S, N.M_RECORDS_PER_S, N.M_MB_PER_S, N.M_CPU_UTIL, N.M_PEAK_PSS,
            N.M_PEAK_PSS_MIN, N.M_PEAK_RSS)
# (max - min) / median of a job's wall times beyond which its points are marked noisy
LARGE_SPREAD = 0.10
_SPEEDUP_RANGE, _EFFICIENCY_RANGE = "speedup_range", "efficiency_range"


def _int(v):
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def job_rows(runs: Iterable) -> list[dict]:
    """One dict per MLflow job run (``mlflow.entities.Run``), in job order."""
    rows = []
    for run in runs:
        p, m, t = run.data.params, run.data.metrics, run.data.tags
        row = {
            "job": _int(t.get(N.TAG_JOB_NUM)), "run_id": run.info.run_id,
            "status": run.info.status, "subs": _int(p.get("subs")),
            "days": _int(p.get("days")), "workers": _int(p.get("workers")),
            "workers_used": _int(m.get(N.M_WORKERS, p.get("workers_used"))),
            "format": p.get("output.format"), "executor": p.get("executor.name"),
            "overrides": t.get("overrides", ""),
        }
        row.update({k: m.get(k) for k in _METRICS})
        if row[N.M_WALL_SPREAD] is None and None not in (
                row[N.M_WALL_MIN], row[N.M_WALL_MAX], row[N.M_WALL_MEDIAN]):
            # runs logged before the spread was a metric
            row[N.M_WALL_SPREAD] = relative_spread(row[N.M_WALL_MIN], row[N.M_WALL_MAX],
                                                   row[N.M_WALL_MEDIAN])
        rows.append(row)
    rows.sort(key=lambda r: (r["job"] is None, r["job"] or 0))
    add_speedup(rows)
    return rows


def add_speedup(rows: list[dict]) -> None:
    """Speedup and parallel efficiency of each job against the job with the fewest
    worker processes (``workers_used``: those that really ran units) among those that
    differ from it only in ``workers``."""
    groups = defaultdict(list)
    for r in rows:
        if r.get(N.M_WALL_MEDIAN) and r.get("workers_used"):
            key = tuple(o for o in str(r.get("overrides", "")).split()
                        if not o.startswith("workers="))
            groups[key].append(r)
    for members in groups.values():
        # the fewest processes that ran units; among equals, the fewest asked for
        base = min(members, key=lambda r: (r["workers_used"], r.get("workers") or 0,
                                           r[N.M_WALL_MEDIAN]))
        for r in members:
            scale = r["workers_used"] / base["workers_used"]
            speedup = base[N.M_WALL_MEDIAN] / r[N.M_WALL_MEDIAN]
            r[N.M_SPEEDUP] = speedup
            r[N.M_EFFICIENCY] = speedup / scale
            # the speedup's range over the repeats of both jobs: the plots' bars
            lo, hi = r.get(N.M_WALL_MIN), r.get(N.M_WALL_MAX)
            b_lo, b_hi = base.get(N.M_WALL_MIN), base.get(N.M_WALL_MAX)
            if lo and hi and b_lo and b_hi:
                r[_SPEEDUP_RANGE] = (b_lo / hi, b_hi / lo)
                r[_EFFICIENCY_RANGE] = (b_lo / hi / scale, b_hi / lo / scale)


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k in COLUMNS})
    return buf.getvalue()


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def to_markdown(rows: list[dict], title: str = "") -> str:
    cols = [c for c in COLUMNS if c != "run_id"]
    lines = [f"# {title}", ""] if title else []
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in rows:
        cells = [_spread_cell(r) if c == N.M_WALL_SPREAD else _cell(r.get(c)) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    if any(noisy(r) for r in rows):
        lines += ["", f"`!`: the job's repeats spread by more than {LARGE_SPREAD:.0%} of "
                  "their median wall time (max - min): its figures are noisy."]
    return "\n".join(lines) + "\n"


def _spread_cell(r: dict) -> str:
    v = r.get(N.M_WALL_SPREAD)
    return "" if v is None else f"{v:.1%}" + (" !" if noisy(r) else "")


def _rate_band(r: dict, y: str):
    """(low, high) of a per-second figure over the repeats: from the slowest and the
    fastest repeat (rows and bytes are the same in every repeat)."""
    v, med = r.get(y), r.get(N.M_WALL_MEDIAN)
    lo, hi = r.get(N.M_WALL_MIN), r.get(N.M_WALL_MAX)
    return (v * med / hi, v * med / lo) if v is not None and med and lo and hi else None


def _memory_band(r: dict, y: str):
    """(lowest, highest) repeat's peak PSS; peak_pss_mb is the highest."""
    lo = r.get(N.M_PEAK_PSS_MIN)
    return (lo, r[y]) if lo is not None and r.get(y) is not None else None


def _speedup_band(r: dict, y: str):
    return r.get(_SPEEDUP_RANGE if y == N.M_SPEEDUP else _EFFICIENCY_RANGE)


def noisy(r: dict) -> bool:
    """The job's repeats spread by more than ``LARGE_SPREAD`` of their median."""
    return (r.get(N.M_WALL_SPREAD) or 0.0) > LARGE_SPREAD


def _series(rows: list[dict], x: str, line: str, y: str, band=None,
            mark: bool = True) -> dict:
    """{line value: sorted [(x, y, low, high, noisy)]} over rows that have x and y;
    ``band(row, y)`` gives (low, high) of the repeats (none: a bar of zero length)."""
    out = defaultdict(list)
    for r in rows:
        if r.get(x) is not None and r.get(y) is not None:
            lo, hi = (band(r, y) if band else None) or (r[y], r[y])
            out[r.get(line)].append((r[x], r[y], lo, hi, mark and noisy(r)))
    return {k: sorted(v) for k, v in sorted(out.items(), key=lambda kv: str(kv[0]))}


def _plot_lines(ax, series: dict, legend: str, logx: bool = False) -> None:
    """Lines with the repeats' range as error bars; noisy jobs ringed in red."""
    flagged = []
    for name, points in series.items():
        xs, ys, los, his, marks = zip(*points)
        ax.errorbar(xs, ys, yerr=[[y - lo for y, lo in zip(ys, los)],
                                  [hi - y for y, hi in zip(ys, his)]],
                    marker="o", capsize=3, label=f"{legend}={name}")
        flagged += [(x, y) for x, y, m in zip(xs, ys, marks) if m]
    if flagged:
        fx, fy = zip(*flagged)
        ax.scatter(fx, fy, s=220, facecolors="none", edgecolors="red", linewidths=1.5,
                   zorder=5, label=f"repeats spread > {LARGE_SPREAD:.0%}")
    if logx:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8)


def write_plots(rows: list[dict], out_dir: Path, title: str = "") -> list[Path]:
    """PNG plots of the finished jobs; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    done = [r for r in rows if r.get(N.M_WALL_MEDIAN) is not None]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []

    def save(fig, name):
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        path = out_dir / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files.append(path)

    log_subs = len({r["subs"] for r in done}) > 1
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, y, label in ((axes[0], N.M_SUBS_PER_S, "subscribers/s"),
                         (axes[1], N.M_RECORDS_PER_S, "records/s")):
        _plot_lines(ax, _series(done, "subs", "workers_used", y, _rate_band), "workers",
                    log_subs)
        ax.set_xlabel("subscribers")
        ax.set_ylabel(label)
        ax.set_title(f"throughput ({label}) vs subscribers")
    save(fig, "throughput_vs_subs.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _plot_lines(ax, _series(done, "subs", "workers_used", N.M_PEAK_PSS, _memory_band,
                            mark=False), "workers", log_subs)
    ax.set_xlabel("subscribers")
    ax.set_ylabel("peak PSS of the process tree (MB = 10^6 bytes)")
    ax.set_title("peak memory vs subscribers")
    save(fig, "memory_vs_subs.png")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    _plot_lines(axes[0], _series(done, "workers_used", "subs", N.M_SUBS_PER_S, _rate_band),
                "subs")
    axes[0].set_ylabel("subscribers/s")
    axes[0].set_title("throughput vs workers")
    speed = _series(done, "workers_used", "subs", N.M_SPEEDUP, _speedup_band)
    _plot_lines(axes[1], speed, "subs")
    ws = sorted({p[0] for pts in speed.values() for p in pts})
    if ws:
        axes[1].plot(ws, [w / ws[0] for w in ws], "k--", alpha=0.5, label="ideal")
        axes[1].legend(fontsize=8)
    axes[1].set_ylabel("speedup vs fewest workers")
    axes[1].set_title("parallel speedup")
    _plot_lines(axes[2], _series(done, "workers_used", "subs", N.M_EFFICIENCY,
                                 _speedup_band), "subs")
    axes[2].set_ylim(0, 1.2)
    axes[2].set_ylabel("parallel efficiency")
    axes[2].set_title("parallel efficiency (speedup / workers ratio)")
    for ax in axes:
        ax.set_xlabel("worker processes")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    save(fig, "throughput_vs_workers.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _plot_lines(ax, _series(done, "workers_used", "subs", N.M_PEAK_PSS, _memory_band,
                            mark=False), "subs")
    ax.set_xlabel("worker processes")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("peak PSS of the process tree (MB = 10^6 bytes)")
    ax.set_title("peak memory vs workers")
    save(fig, "memory_vs_workers.png")
    return files
