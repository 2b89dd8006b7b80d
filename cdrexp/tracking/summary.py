"""A sweep's summary: one row per job, parallel speedup and efficiency, and plots of
throughput and peak memory against ``subs`` and against the worker count.

Every plotted point carries the spread of its job's repeats as a bar (throughputs and
speedups from the fastest and the slowest repeat, memory from the lowest and the highest
repeat's peak), and jobs whose wall times spread by more than ``LARGE_SPREAD`` of their
median are ringed in red: a noisy point must not look like a real one.

Workers are those a job really ran units on (``workers_used``): a ``workers=2`` job of a
single unit ran in one process, so it gets no speedup or efficiency (it would credit
parallelism that did not happen) and is drawn apart from the lines. A job whose speedup
interval over the repeats of both jobs contains 1 (its repeats overlap its base's) is
marked as noise: its spread exceeds the difference it would show.
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
           N.M_RECORDS_PER_S, N.M_MB_PER_S, N.M_CPU_CORES_BUSY, N.M_CPU_UTIL, N.M_PEAK_PSS,
           N.M_PEAK_RSS, N.M_SPEEDUP, N.M_EFFICIENCY, "note", "overrides")
_METRICS = (N.M_WALL_MEDIAN, N.M_WALL_MIN, N.M_WALL_MAX, N.M_WALL_STDDEV, N.M_WALL_SPREAD,
            N.M_SUBS_PER_S, N.M_RECORDS_PER_S, N.M_MB_PER_S, N.M_CPU_CORES_BUSY,
            N.M_CPU_UTIL, N.M_PEAK_PSS,
            N.M_PEAK_PSS_MIN, N.M_PEAK_RSS)
# (max - min) / median of a job's wall times beyond which its points are marked noisy
LARGE_SPREAD = 0.10
_SPEEDUP_RANGE, _EFFICIENCY_RANGE = "speedup_range", "efficiency_range"
NOISE = "speedup_is_noise"


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


def short_of_workers(r: dict) -> bool:
    """The job ran units on fewer processes than it asked for (e.g. one unit: serial)."""
    asked, used = r.get("workers"), r.get("workers_used")
    return bool(asked and used and used < asked)


def add_speedup(rows: list[dict]) -> None:
    """Speedup and parallel efficiency of each job against the job with the fewest
    worker processes (``workers_used``: those that really ran units) among those that
    differ from it only in ``workers``; none for a job that ran on fewer workers than it
    asked for. Each row gets a ``note`` saying why a figure is missing or is noise."""
    groups = defaultdict(list)
    for r in rows:
        r.setdefault("note", "")
        if short_of_workers(r):
            r["note"] = f"{r['workers_used']} of {r['workers']} workers ran: no speedup"
        if r.get(N.M_WALL_MEDIAN) and r.get("workers_used"):
            key = tuple(o for o in str(r.get("overrides", "")).split()
                        if not o.startswith("workers="))
            groups[key].append(r)
    for members in groups.values():
        # the fewest processes that ran units; among equals, the fewest asked for
        base = min(members, key=lambda r: (r["workers_used"], r.get("workers") or 0,
                                           r[N.M_WALL_MEDIAN]))
        for r in members:
            if short_of_workers(r) and r is not base:
                continue
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
                if r is not base and b_lo / hi <= 1.0 <= b_hi / lo:
                    r[NOISE] = True
                    # short: a column of the terminal's table
                    r["note"] = f"noise: speedup {b_lo / hi:.2f}-{b_hi / lo:.2f}"


def speedup_noise(r: dict) -> bool:
    """The job's speedup cannot be told from 1: its repeats overlap its base's."""
    return bool(r.get(NOISE))


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


def to_note(rows: list[dict], title: str = "") -> str:
    """The sweep's parent-run description in MLflow's UI: one narrow row per job with
    the headline figures (jobs.md has every column)."""
    days = {r.get("days") for r in rows}
    unit = "subs/s" if days <= {1, None} else "subscriber-days/s"
    lines = [f"**{title}**", ""] if title else []
    lines += [f"| # | subs | workers (used) | {unit} | wall s ± | CPU cores | PSS MB | "
              "speedup | note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def f(key, spec):
            v = r.get(key)
            return "" if v is None else format(v, spec)
        half = r.get(N.M_WALL_SPREAD)
        wall = "" if r.get(N.M_WALL_MEDIAN) is None else \
            f"{r[N.M_WALL_MEDIAN]:.3g} ±{(half or 0) / 2:.0%}" + (" !" if noisy(r) else "")
        note = r.get("note") or ("" if r.get("status") == "FINISHED" else r.get("status"))
        lines.append(f"| {f('job', 'd')} | {f('subs', ',d')} | {f('workers', 'd')} "
                     f"({f('workers_used', 'd')}) | {f(N.M_SUBS_PER_S, ',.0f')} | {wall} | "
                     f"{f(N.M_CPU_CORES_BUSY, '.2f')} | {f(N.M_PEAK_PSS, ',.0f')} | "
                     f"{f(N.M_SPEEDUP, '.2f')} | {note or ''} |")
    if any(noisy(r) for r in rows):
        lines += ["", f"`!` repeats spread by more than {LARGE_SPREAD:.0%} of their median: "
                  "noisy figures."]
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
            mark: bool = True, mark_noise: bool = False) -> dict:
    """{line value: sorted [(x, y, low, high, noisy)]} over rows that have x and y;
    ``band(row, y)`` gives (low, high) of the repeats (none: a bar of zero length).
    Jobs that ran on fewer workers than asked are left out (``_apart`` draws them):
    on their ``workers_used`` line they would sit beside the job that asked for that
    many, and the line would zigzag."""
    out = defaultdict(list)
    for r in rows:
        if r.get(x) is not None and r.get(y) is not None and not short_of_workers(r):
            lo, hi = (band(r, y) if band else None) or (r[y], r[y])
            flag = mark and (noisy(r) or (mark_noise and speedup_noise(r)))
            out[r.get(line)].append((r[x], r[y], lo, hi, flag))
    return {k: sorted(v) for k, v in sorted(out.items(), key=lambda kv: str(kv[0]))}


def _apart(rows: list[dict], x: str, y: str) -> list[tuple]:
    """(x, y) of the jobs that ran on fewer workers than they asked for."""
    return [(r[x], r[y]) for r in rows if short_of_workers(r)
            and r.get(x) is not None and r.get(y) is not None]


def _plot_lines(ax, series: dict, legend: str, logx: bool = False,
                apart: list[tuple] = ()) -> None:
    """Lines with the repeats' range as error bars; noisy jobs ringed in red; jobs that
    ran on fewer workers than asked as grey hollow points off the lines."""
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
                   zorder=5, label=f"noise (spread > {LARGE_SPREAD:.0%}, or overlaps "
                   "its base)")
    if apart:
        ax_, ay = zip(*apart)
        ax.scatter(ax_, ay, s=60, facecolors="none", edgecolors="grey", marker="s",
                   zorder=4, label="ran on fewer workers than asked")
    if logx:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    if series or apart:
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
                    log_subs, _apart(done, "subs", y))
        ax.set_xlabel("subscribers")
        ax.set_ylabel(label)
        ax.set_title(f"throughput ({label}) vs subscribers")
    save(fig, "throughput_vs_subs.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _plot_lines(ax, _series(done, "subs", "workers_used", N.M_PEAK_PSS, _memory_band,
                            mark=False), "workers", log_subs,
                _apart(done, "subs", N.M_PEAK_PSS))
    ax.set_xlabel("subscribers")
    ax.set_ylabel("peak PSS of the process tree (MB = 10^6 bytes)")
    ax.set_title("peak memory vs subscribers")
    save(fig, "memory_vs_subs.png")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    _plot_lines(axes[0], _series(done, "workers_used", "subs", N.M_SUBS_PER_S, _rate_band),
                "subs", apart=_apart(done, "workers_used", N.M_SUBS_PER_S))
    axes[0].set_ylabel("subscribers/s")
    axes[0].set_title("throughput vs workers")
    speed = _series(done, "workers_used", "subs", N.M_SPEEDUP, _speedup_band,
                    mark_noise=True)
    _plot_lines(axes[1], speed, "subs")
    ws = sorted({p[0] for pts in speed.values() for p in pts})
    if ws:
        axes[1].plot(ws, [w / ws[0] for w in ws], "k--", alpha=0.5, label="ideal")
        axes[1].legend(fontsize=8)
    axes[1].set_ylabel("speedup vs fewest workers")
    axes[1].set_title("parallel speedup")
    _plot_lines(axes[2], _series(done, "workers_used", "subs", N.M_EFFICIENCY,
                                 _speedup_band, mark_noise=True), "subs")
    axes[2].set_ylim(0, 1.2)
    axes[2].set_ylabel("parallel efficiency")
    axes[2].set_title("parallel efficiency (speedup / workers ratio)")
    for ax in axes:
        ax.set_xlabel("worker processes")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    save(fig, "throughput_vs_workers.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    _plot_lines(ax, _series(done, "workers_used", "subs", N.M_PEAK_PSS, _memory_band,
                            mark=False), "subs", apart=_apart(done, "workers_used",
                                                              N.M_PEAK_PSS))
    ax.set_xlabel("worker processes")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("peak PSS of the process tree (MB = 10^6 bytes)")
    ax.set_title("peak memory vs workers")
    save(fig, "memory_vs_workers.png")
    return files
