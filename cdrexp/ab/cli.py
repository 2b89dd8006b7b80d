"""``python -m cdrexp.ab BASE [CANDIDATE] [key=value ...]`` (also ``cdrexp-ab``).

Exit codes: 0 not slower by more than the threshold (decided); 1 slower by more than it
(decided); 2 undecided within the budget, or the comparison could not run (bad command
line, bad revision, a side that fails, no valgrind): one line says which. 130 / 143
when stopped by Ctrl-C / SIGTERM (the MLflow runs are marked KILLED, the temporary
worktree is removed).
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from rich import box
from rich.table import Table

from ..cli import display
from ..cli.precheck import UsageError
from ._args import EXIT_ERROR, guarded, parse, settings_from
from ._errors import ABError, SettingsError
from ._revisions import RevisionError, repo_root, resolve
from ._run import ABResult, run_ab
from ._stats import NOT_SLOWER, SLOWER

PROG = "cdrexp-ab"
EXIT_UNDECIDED = EXIT_ERROR


def _revisions(args, revs: list[str]) -> tuple[Optional[str], Optional[str]]:
    """(base, candidate) revisions; None is the working tree; raises ``UsageError``."""
    if args.aa is not None:
        if revs:
            raise UsageError(f"{revs[0]!r}: --aa [REV] compares REV with itself; "
                             f"no other revision")
        rev = args.aa or None
        return rev, rev
    if not revs:
        raise UsageError("BASE: a git revision is required (e.g. HEAD~1)")
    if len(revs) > 2:
        raise UsageError(f"{revs[2]!r}: expected BASE [CANDIDATE] and key=value overrides")
    return revs[0], (revs[1] if len(revs) > 1 else None)


def _fmt(metric: str, v: float) -> str:
    return f"{v / 1e9:,.3f} G" if metric == "instructions" else f"{v:.3f} s"


def result_table(result: ABResult) -> Table:
    """Each side's median and spread, the ratio and its interval, the verdict."""
    metric = result.settings.metric
    t = Table(title=f"cdrexp A/B ({metric}): {len(result.pairs)} pairs, "
                    f"{result.seconds:.0f} s", title_justify="left", box=box.SIMPLE)
    for col in ("side", "revision", "commit", "runs", f"median {metric}",
                "spread (min .. max)", "sd %"):
        t.add_column(col, justify="left" if col in ("side", "revision", "commit")
                     else "right")
    for side in (result.base, result.candidate):
        v = result.values(side.label)
        if not v:
            continue
        med = statistics.median(v)
        sd = 100 * statistics.stdev(v) / med if len(v) > 1 else 0.0
        t.add_row(side.label, side.rev, side.short, str(len(v)), _fmt(metric, med),
                  f"{_fmt(metric, min(v))} .. {_fmt(metric, max(v))}", f"{sd:.1f}")
    iv = result.decision.interval if result.decision else None
    if iv is not None:
        t.add_section()
        colour = {SLOWER: "red", NOT_SLOWER: "green"}.get(result.verdict, "yellow")
        t.add_row("ratio", "candidate / base", f"{iv.ratio:.3f}", str(iv.n),
                  f"[{iv.low:.3f}, {iv.high:.3f}]", f"@{iv.level:.2%} per look",
                  f"{100 * iv.log_sd:.1f}")
        t.add_row("verdict", f"[{colour}]{result.verdict.upper()}[/]",
                  f"threshold +{result.settings.threshold_pct:g} %", "", "", "", "")
    return t


def main(argv: Optional[Sequence[str]] = None) -> int:
    started = time.monotonic()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--bisect" in argv:
        from ._bisect_cli import main as bisect_main
        return bisect_main(argv)
    from ..tracking.store import strip_leaky_env
    strip_leaky_env()
    try:
        args, revs, overrides = parse(PROG, argv)
        base, candidate = _revisions(args, revs)
        settings = settings_from(args)
        from ._job import compose_job
        cfg = compose_job(overrides, settings.metric)
        from ._profile import check_profiler
        check_profiler(cfg.profiler)
        repo = repo_root(Path(args.repo))
        for rev in (base, candidate):
            if rev is not None:
                resolve(repo, rev)
    except (UsageError, SettingsError, RevisionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_UNDECIDED
    observer = None
    if not args.no_tracking:
        from ._tracking import MlflowObserver, open_store
        try:
            store = open_store(cfg.tracking)
        except ABError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_UNDECIDED
        observer = MlflowObserver(store, overrides)
    from ._profile import output_dir
    out_dir = output_dir(Path.cwd())
    if cfg.profiler.name != "none":       # after a decided verdict: profiles and their diff
        from ._profile import ProfilingObserver
        observer = ProfilingObserver(observer, out_dir, lambda line: print(
            f"{PROG}: {line}", file=sys.stderr), display.out)
    what = ("A/A of " + (base or "the working tree") if args.aa is not None
            else f"{candidate or 'the working tree'} vs {base}")
    display.err.print(f"{PROG}: {what}, {settings.metric}, threshold "
                      f"+{settings.threshold_pct:g} %, budget {settings.pairs_budget} pairs "
                      f"/ {settings.max_seconds:g} s", highlight=False)

    def say(line: str) -> None:
        display.err.print(f"{PROG}: {line}", highlight=False, markup=False)

    result, code = guarded(PROG, lambda: run_ab(
        base, candidate, overrides, settings, repo, observer, job=cfg, started=started,
        say=say, warn=lambda line: say(f"warning: {line}"), keep_logs=out_dir / "logs"),
        observer.end if observer else None, error_prefix="could not compare: ")
    if result is None:
        return code
    display.out.print(result_table(result))
    print(f"{PROG}: packages: {result.environments()}", file=sys.stderr)
    print(f"{PROG}: {result.summary()}", flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
