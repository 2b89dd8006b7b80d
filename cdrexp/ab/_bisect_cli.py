"""The bisect command: real A/Bs for ``_bisect.bisect``, the table, and MLflow.

MLflow: one parent run (kind ``bisect``) with GOOD, BAD, the outcome and the first bad
commit as tags, its ratio and interval as metrics, one step per A/B of the metric
``bisect_step_ratio``, and ``bisect_steps.csv`` / ``bisect_steps.txt`` /
``bisect_result.json``; each step's A/B logs its own runs (``MlflowObserver``) as
children of it.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Optional, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from ..cli import display
from ..cli.precheck import UsageError
from ..tracking import names as N
from ._args import EXIT_ERROR, guarded, parse, settings_from
from ._bisect import CLEAN, FOUND, BisectResult, Commit, Step, first_parent_commits, \
    run_bisect
from ._errors import ABError, SettingsError
from ._revisions import RevisionError, repo_root
from ._run import ABSettings

PROG = "cdrexp-ab --bisect"
STEP_COLUMNS = ("step", "commit", "subject", "attempt", "verdict", "ratio", "low", "high",
                "pairs", "seconds", "ab_run_id")


def steps_table(result: BisectResult, threshold_pct: float) -> Table:
    t = Table(title=f"cdrexp bisect: {len(result.commits)} commits after GOOD "
                    f"{result.good.short}, threshold +{threshold_pct:g} %",
              title_justify="left", box=box.SIMPLE)
    for col in ("step", "commit", "subject", "verdict", "ratio", "interval", "pairs", "s"):
        t.add_column(col, justify="right" if col in ("step", "ratio", "pairs", "s")
                     else "left")
    for s in result.steps:
        colour = {"slower": "red", "not slower": "green"}.get(s.verdict, "yellow")
        verdict = s.verdict.upper() + (" (retry, 2x budget)" if s.attempt > 1 else "")
        t.add_row(str(s.number), s.commit.short, _cut(s.commit.subject),
                  f"[{colour}]{verdict}[/]", _f(s.ratio),
                  f"[{_f(s.low)}, {_f(s.high)}]" if s.low else "-", str(s.pairs),
                  f"{s.seconds:.0f}")
    return t


def _cut(text: str, width: int = 50) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _f(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.3f}"


def _row(s: Step) -> list:
    return [s.number, s.commit.sha, s.commit.subject, s.attempt, s.verdict, s.ratio, s.low,
            s.high, s.pairs, round(s.seconds, 3), s.run_id or ""]


def steps_csv(result: BisectResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(STEP_COLUMNS)
    w.writerows(_row(s) for s in result.steps)
    return buf.getvalue()


def result_dict(result: BisectResult, settings: ABSettings, overrides: list[str]) -> dict:
    def commit(c: Optional[Commit]):
        return None if c is None else {"sha": c.sha, "subject": c.subject}
    return {"status": result.status, "exit_code": result.exit_code,
            "good": commit(result.good), "bad": commit(result.bad),
            "first_bad": commit(result.first_bad), "last_good": commit(result.last_good),
            "undecided": commit(result.undecided), "settings": vars(settings),
            "overrides": overrides, "commits": [commit(c) for c in result.commits],
            "steps": [dict(zip(STEP_COLUMNS, _row(s))) for s in result.steps]}


class BisectTracker:
    """The bisect's parent run, and an observer per step whose runs hang below it."""

    def __init__(self, store, overrides: list[str]):
        self.store = store
        self.overrides = overrides
        self.parent: Optional[str] = None
        self.step_runs: dict[int, str] = {}
        self.current = None                  # the observer of the step under way

    def start(self, good: Commit, bad: Commit, commits: int, settings: ABSettings,
              label: str) -> None:
        self.parent = self.store.create_run(
            f"bisect {good.short}..{bad.short}: {label}",
            {N.TAG_KIND: N.KIND_BISECT, N.TAG_BISECT_GOOD: good.sha,
             N.TAG_BISECT_BAD: bad.sha, N.TAG_CONFIG_LABEL: label,
             "overrides": " ".join(self.overrides)})
        self.store.log_params(self.parent, {
            "good_subject": good.subject, "bad_subject": bad.subject, "commits": commits,
            **{k: v for k, v in vars(settings).items()}})

    def observer(self, number: int):
        from ._tracking import MlflowObserver
        tracker = self

        class StepObserver(MlflowObserver):
            def started(self, result):
                super().started(result)
                tracker.step_runs[number] = self.parent
                tracker.store.set_tags(self.parent, {N.TAG_MLFLOW_PARENT: tracker.parent,
                                                     N.TAG_BISECT_STEP: number})
        self.current = StepObserver(self.store, self.overrides)
        return self.current

    def step_done(self, step: Step) -> None:
        if step.ratio is not None:
            self.store.log_metrics(self.parent, {N.M_BISECT_STEP_RATIO: step.ratio},
                                   step=step.number)

    def finish(self, result: BisectResult, settings: ABSettings, table_text: str) -> None:
        tags = {N.TAG_BISECT_STATUS: result.status,
                N.TAG_MLFLOW_NOTE: result.summary(settings.threshold_pct)}
        metrics = {N.M_BISECT_STEPS: len(result.steps),
                   N.M_BISECT_EXIT_CODE: result.exit_code}
        if result.first_bad is not None and result.status == FOUND:
            tags.update({N.TAG_BISECT_FIRST_BAD: result.first_bad.sha,
                         N.TAG_BISECT_FIRST_BAD_SUBJECT: result.first_bad.subject})
            e = result.evidence
            metrics.update({N.M_BISECT_RATIO: e.ratio, N.M_BISECT_RATIO_LOW: e.low,
                            N.M_BISECT_RATIO_HIGH: e.high})
        self.store.set_tags(self.parent, tags)
        self.store.log_metrics(self.parent, metrics)
        self.store.log_text(self.parent, steps_csv(result), N.A_BISECT_STEPS_CSV)
        self.store.log_text(self.parent, table_text, N.A_BISECT_STEPS_TXT)
        self.store.log_dict(self.parent, result_dict(result, settings, self.overrides),
                            N.A_BISECT_RESULT)
        self.end("FINISHED")

    def end(self, status: str, error: Optional[str] = None) -> None:
        if self.current is not None and self.current.parent is not None:
            self.current.end(status, error)       # the step's A/B runs, still open
        if self.parent is None:
            return
        if error:
            self.store.set_tags(self.parent, {N.TAG_ERROR: error})
        self.store.end_run(self.parent, status)
        self.parent = None


def main(argv: Sequence[str]) -> int:
    """``python -m cdrexp.ab --bisect GOOD BAD ...``: argv as ``cdrexp.ab``'s."""
    from ..tracking.store import strip_leaky_env
    strip_leaky_env()
    try:
        args, extra, overrides = parse(PROG, argv)
        if extra:
            raise UsageError(f"{extra[0]!r}: --bisect GOOD BAD takes no other revision")
        if args.aa is not None:
            raise UsageError("--aa: not with --bisect")
        good_rev, bad_rev = args.bisect
        settings = settings_from(args)
        from ._job import compose_job
        cfg = compose_job(overrides, settings.metric)
        if cfg.profiler.name != "none":
            raise UsageError(f"profiler={cfg.profiler.name}: --bisect does not profile; "
                             "once it has found the commit, python -m cdrexp.ab "
                             f"FIRST_BAD~1 FIRST_BAD profiler={cfg.profiler.name} does")
        root = repo_root(Path(args.repo))
        first_parent_commits(root, good_rev, bad_rev)     # bad revisions: before any work
    except (UsageError, SettingsError, RevisionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    tracker = None
    if not args.no_tracking:
        from ._tracking import open_store
        try:
            store = open_store(cfg.tracking)
        except ABError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        tracker = BisectTracker(store, overrides)

    def progress(line: str) -> None:
        display.err.print(f"{PROG}: {line}", highlight=False, markup=False)

    def bisect() -> BisectResult:
        try:
            return run_bisect(good_rev, bad_rev, overrides, settings, root, tracker,
                              job=cfg, progress=progress,
                              warn=lambda line: progress(f"warning: {line}"))
        except RevisionError as exc:
            raise ABError(str(exc)) from None

    result, code = guarded(PROG, bisect, tracker.end if tracker else None)
    if result is None:
        return code
    table = steps_table(result, settings.threshold_pct)
    display.out.print(table)
    text = Console(record=True, width=160, file=io.StringIO(), color_system=None)
    text.print(table)
    if tracker:
        try:
            tracker.finish(result, settings, text.export_text())
        except Exception as exc:   # noqa: BLE001 - the outcome stands without its record
            progress(f"warning: tracking failed (finish): "
                     f"{type(exc).__name__}: {exc}".splitlines()[0])
            try:
                tracker.end("FAILED", "tracking failed")
            except Exception:      # noqa: BLE001
                pass
    print(f"{PROG}: {result.summary(settings.threshold_pct)}", flush=True)
    if result.status == CLEAN:
        print(f"{PROG}: exit 1: no regression to find", file=sys.stderr)
    return result.exit_code
