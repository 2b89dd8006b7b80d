"""A sweep's summary: one row per job, parallel speedup and efficiency, and plots of
throughput and peak memory against ``subs`` and against the worker count."""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from . import names as N

COLUMNS = ("job", "run_id", "status", "subs", "days", "workers", "workers_used", "format",
           "executor", N.M_WALL_MEDIAN, N.M_WALL_STDDEV, N.M_SUBS_PER_S, N.M_RECORDS_PER_S,
           N.M_MB_PER_S, N.M_CPU_UTIL, N.M_PEAK_PSS, N.M_PEAK_RSS, N.M_SPEEDUP,
           N.M_EFFICIENCY, "overrides")
_METRICS = (N.M_WALL_MEDIAN, N.M_WALL_STDDEV, N.M_SUBS_PER_S, N.M_RECORDS_PER_S,
            N.M_MB_PER_S, N.M_CPU_UTIL, N.M_PEAK_PSS, N.M_PEAK_RSS)


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
            speedup = base[N.M_WALL_MEDIAN] / r[N.M_WALL_MEDIAN]
            r[N.M_SPEEDUP] = speedup
            r[N.M_EFFICIENCY] = speedup / (r["workers_used"] / base["workers_used"])


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
        lines.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _series(rows: list[dict], x: str, line: str, y: str) -> dict:
    """{line value: sorted [(x, y)]} over rows that have all three."""
    out = defaultdict(list)
    for r in rows:
        if r.get(x) is not None and r.get(y) is not None:
            out[r.get(line)].append((r[x], r[y]))
    return {k: sorted(v) for k, v in sorted(out.items(), key=lambda kv: str(kv[0]))}


def _plot_lines(ax, series: dict, legend: str, logx: bool = False) -> None:
    for name, points in series.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=f"{legend}={name}")
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
        _plot_lines(ax, _series(done, "subs", "workers_used", y), "workers", log_subs)
        ax.set_xlabel("subscribers")
        ax.set_ylabel(label)
        ax.set_title(f"throughput ({label}) vs subscribers")
    save(fig, "throughput_vs_subs.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _plot_lines(ax, _series(done, "subs", "workers_used", N.M_PEAK_PSS), "workers", log_subs)
    ax.set_xlabel("subscribers")
    ax.set_ylabel("peak PSS of the process tree (MB)")
    ax.set_title("peak memory vs subscribers")
    save(fig, "memory_vs_subs.png")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    _plot_lines(axes[0], _series(done, "workers_used", "subs", N.M_SUBS_PER_S), "subs")
    axes[0].set_ylabel("subscribers/s")
    axes[0].set_title("throughput vs workers")
    speed = _series(done, "workers_used", "subs", N.M_SPEEDUP)
    _plot_lines(axes[1], speed, "subs")
    ws = sorted({x for pts in speed.values() for x, _ in pts})
    if ws:
        axes[1].plot(ws, [w / ws[0] for w in ws], "k--", alpha=0.5, label="ideal")
        axes[1].legend(fontsize=8)
    axes[1].set_ylabel("speedup vs fewest workers")
    axes[1].set_title("parallel speedup")
    _plot_lines(axes[2], _series(done, "workers_used", "subs", N.M_EFFICIENCY), "subs")
    axes[2].set_ylim(0, 1.2)
    axes[2].set_ylabel("parallel efficiency")
    axes[2].set_title("parallel efficiency (speedup / workers ratio)")
    for ax in axes:
        ax.set_xlabel("worker processes")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    save(fig, "throughput_vs_workers.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _plot_lines(ax, _series(done, "workers_used", "subs", N.M_PEAK_PSS), "subs")
    ax.set_xlabel("worker processes")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("peak PSS of the process tree (MB)")
    ax.set_title("peak memory vs workers")
    save(fig, "memory_vs_workers.png")
    return files
