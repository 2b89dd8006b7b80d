"""What the terminal shows: a progress bar while generating, result tables after."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterable, Optional

from rich import box
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from ..stats import Progress as GenProgress
from ..tracking import names as N
from ..tracking.results import throughput_unit


def _console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr)
    # a log file or CI: no live display to fit; wide enough for the sweep table
    return c if c.is_terminal else Console(stderr=stderr, width=160)


out = _console()
err = _console(stderr=True)


def quiet_mlflow() -> None:
    """MLflow's INFO lines ("Creating initial MLflow database tables...", system
    metrics start/stop) are not the user's business; its warnings are. MLflow sets its
    logger's level when first imported, so import it first."""
    import mlflow  # noqa: F401
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def print_hint(text: Optional[str]) -> None:
    """Plain lines (URLs must stay whole and unstyled to be clicked or copied)."""
    if text:
        out.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def progress_bar(description: str):
    """A bar of work units done / total with the rows written so far; yields the
    ``on_progress`` callback to hand to ``generate``."""
    bar = Progress(TextColumn("{task.description:<14}"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("units"),
                   TextColumn("{task.fields[rows]:>13,} rows"), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=err, transient=True)
    if not err.is_terminal:     # nothing to animate in a log; keep logs clean
        yield lambda p: None
        return
    task = bar.add_task(description, total=None, rows=0)

    def on_progress(p: GenProgress) -> None:
        bar.update(task, completed=p.units_done, total=p.units_total, rows=p.rows_written)

    with bar:
        yield on_progress


def _fmt(v, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def job_table(label: str, metrics: dict, run_id: Optional[str], status: str = "FINISHED",
              profiler: Optional[str] = None, days: int = 1) -> Table:
    m = metrics
    t = Table(title=f"cdrexp job: {label}", title_justify="left", show_header=False,
              box=box.SIMPLE)
    t.add_column("what", style="bold")
    t.add_column("value")
    t.add_row("wall time", f"{_fmt(m.get(N.M_WALL_MEDIAN), '.3f')} s median of "
              f"{_fmt(m.get(N.M_REPEATS), 'd')} (min {_fmt(m.get(N.M_WALL_MIN), '.3f')}, "
              f"max {_fmt(m.get(N.M_WALL_MAX), '.3f')}, sd {_fmt(m.get(N.M_WALL_STDDEV), '.3f')})")
    wrote = m.get(N.M_BYTES) != 0       # output=none generates and discards
    t.add_row("throughput", f"{_fmt(m.get(N.M_SUBS_PER_S))} {throughput_unit(days)}   "
              f"{_fmt(m.get(N.M_RECORDS_PER_S))} records/s" + (
                  f"   {_fmt(m.get(N.M_MB_PER_S), ',.1f')} MB/s" if wrote else ""))
    t.add_row("written", f"{_fmt(m.get(N.M_ROWS))} records, {_fmt(m.get(N.M_BYTES))} bytes, "
              f"{_fmt(m.get(N.M_FILES))} files" if wrote else
              f"nothing: {_fmt(m.get(N.M_ROWS))} records generated and discarded "
              "(output=none)")
    remote = N.M_CLIENT_CPU_S in m     # a remote Dask cluster's workers are included
    t.add_row("CPU", f"{_fmt(m.get(N.M_CPU_CORES_BUSY), '.2f')} cores busy "
              f"({_fmt(100 * m[N.M_CPU_UTIL] if N.M_CPU_UTIL in m else None, '.0f')} % of "
              f"the machine{'s' if remote else ''}), {_fmt(m.get(N.M_WORKERS))} "
              f"worker{'' if m.get(N.M_WORKERS) == 1 else 's'}")
    t.add_row("peak memory", f"PSS {_fmt(m.get(N.M_PEAK_PSS), ',.1f')} MB, "
              f"RSS {_fmt(m.get(N.M_PEAK_RSS), ',.1f')} MB (sums over the generator's "
              f"process tree{' and the Dask workers' if remote else ''}; "
              f"{_fmt(m.get(N.M_BASELINE_PSS), ',.1f')} MB PSS before generating)")
    if remote:
        t.add_row("client share", f"CPU {_fmt(m.get(N.M_CLIENT_CPU_S), '.2f')} s, "
                  f"PSS {_fmt(m.get(N.M_CLIENT_PEAK_PSS), ',.1f')} MB (the generator's "
                  "process tree on this machine, not the workers)")
    if N.M_RUNNER_PSS in m:
        t.add_row("runner", f"PSS {_fmt(m.get(N.M_RUNNER_PSS), ',.1f')} MB (this process: "
                  "Hydra, MLflow; not in the figures above)")
    t.add_row("phases", ", ".join(f"{name} {_fmt(m.get(k), '.2f')} s" for name, k in (
        ("population", N.M_PHASE_POPULATION), ("generation", N.M_PHASE_GENERATION),
        ("formatting", N.M_PHASE_FORMATTING), ("writing", N.M_PHASE_WRITING))))
    if profiler:
        t.add_row("profiler", profiler)
    t.add_row("MLflow run", f"{run_id or '-'} ({status})")
    return t


SWEEP_COLUMNS = (("job", "#", "d"), ("status", "status", ""), ("subs", "subs", ",d"),
                 ("days", "days", "d"), ("workers", "workers", "d"),
                 ("workers_used", "used", "d"), ("format", "format", ""),
                 (N.M_WALL_MEDIAN, "wall s", ".3f"), (N.M_WALL_STDDEV, "sd", ".3f"),
                 (N.M_WALL_SPREAD, "spread", ".0%"),
                 (N.M_SUBS_PER_S, "subs/s", ",.0f"), (N.M_RECORDS_PER_S, "records/s", ",.0f"),
                 (N.M_MB_PER_S, "MB/s", ",.1f"), (N.M_PEAK_PSS, "PSS MB", ",.1f"),
                 (N.M_SPEEDUP, "speedup", ".2f"), (N.M_EFFICIENCY, "efficiency", ".0%"),
                 ("note", "note", ""))


def sweep_table(title: str, rows: Iterable[dict]) -> Table:
    rows = list(rows)
    t = Table(title=title, title_justify="left")
    multi_day = any((r.get("days") or 1) > 1 for r in rows)
    for key, head, _ in SWEEP_COLUMNS:
        if key == N.M_SUBS_PER_S and multi_day:
            head = "sub-days/s"     # subscribers x days per second
        t.add_column(head, justify="left" if head in ("status", "format", "note") else
                     "right")
    for r in rows:
        cells = []
        for key, _, spec in SWEEP_COLUMNS:
            v = r.get(key)
            if key == N.M_MB_PER_S and r.get("format") == "none":
                v = None            # nothing written: no MB/s to show
            try:
                cells.append("-" if v is None or v == "" else format(v, spec))
            except (TypeError, ValueError):
                cells.append(str(v))
        t.add_row(*cells)
    return t
