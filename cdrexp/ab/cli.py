"""``python -m cdrexp.ab BASE [CANDIDATE] [key=value ...]`` (also ``cdrexp-ab``).

Exit codes: 0 not slower by more than the threshold (decided); 1 slower by more than it
(decided); 2 undecided within the budget, or the comparison could not run (bad command
line, bad revision, a side that fails, no valgrind): one line says which. 130 / 143
when stopped by Ctrl-C / SIGTERM (the MLflow runs are marked KILLED, the temporary
worktree is removed).
"""
from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from rich import box
from rich.table import Table

from ..cli import display
from ..cli.precheck import UsageError
from ..parallel._signals import SignalGuard
from ._measure import METRICS
from ._revisions import RevisionError, repo_root, resolve
from ._run import (DEFAULT_MAX_PAIRS, DEFAULT_MAX_PAIRS_INSTRUCTIONS, DEFAULT_MAX_SECONDS,
                   DEFAULT_METRIC, ABError,
                   ABResult, ABSettings, run_ab)
from ._stats import DEFAULT_CONFIDENCE, DEFAULT_MIN_PAIRS, NOT_SLOWER, SLOWER

PROG = "cdrexp-ab"
EXIT_UNDECIDED = 2

EXAMPLES = """examples:
  python -m cdrexp.ab HEAD~1                        # the working tree vs its parent commit
  python -m cdrexp.ab main HEAD subs=50000 output=parquet --fail-on-regression 10
  python -m cdrexp.ab HEAD~1 subs=5000 --metric instructions --fail-on-regression 2
  python -m cdrexp.ab HEAD~1 subs=50000 profiler=pyspy   # and, once decided, where the time went
  python -m cdrexp.ab --bisect v1.0 HEAD subs=20000 --fail-on-regression 10   # which commit
exit codes: 0 not slower by more than PCT, 1 slower, 2 undecided or could not run"""


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    ap = _ArgParser(prog=PROG, epilog=EXAMPLES,
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    description="Interleaved A/B of two revisions of cdrexp on one job: "
                                "is the candidate slower than the base?")
    ap.add_argument("args", nargs="*", metavar="BASE [CANDIDATE] [key=value ...]",
                    help="git revisions (CANDIDATE defaults to the working tree, "
                         "uncommitted changes included) and the runner's overrides")
    ap.add_argument("--fail-on-regression", type=float, default=5.0, metavar="PCT",
                    help="the threshold: exit 1 when slower by more than PCT %% "
                         "(default 5)")
    ap.add_argument("--metric", choices=METRICS, default=DEFAULT_METRIC,
                    help=f"what the verdict compares (default {DEFAULT_METRIC}: CPU "
                         "seconds of the process tree; instructions: under cachegrind, "
                         "workers=1)")
    ap.add_argument("--max-pairs", type=int, default=None,
                    help=f"budget: pairs of runs at most (default {DEFAULT_MAX_PAIRS}; "
                         f"{DEFAULT_MAX_PAIRS_INSTRUCTIONS} for instructions)")
    ap.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS,
                    help="budget: seconds from the start of the command, warm-up "
                         "included "
                         f"(default {DEFAULT_MAX_SECONDS:g})")
    ap.add_argument("--min-pairs", type=int, default=DEFAULT_MIN_PAIRS,
                    help=f"first look at the interval (default {DEFAULT_MIN_PAIRS})")
    ap.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                    help="simultaneous over all looks (default 0.95: each wrong verdict "
                         "at most 2.5 %%)")
    ap.add_argument("--repo", default=".", help="the git repository (default: the one "
                                                "of the current directory)")
    ap.add_argument("--no-tracking", action="store_true",
                    help="do not log to MLflow")
    ap.add_argument("--bisect", nargs=2, metavar=("GOOD", "BAD"),
                    help="find the first first-parent commit after GOOD up to BAD that is "
                         "slower than GOOD by more than PCT: one A/B per step")
    return ap


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str], list[str]]:
    """(options, revisions, overrides); raises ``UsageError``."""
    args = _parser().parse_intermixed_args(list(argv))
    revs = [a for a in args.args if "=" not in a]
    overrides = [a for a in args.args if "=" in a]
    if not revs:
        raise UsageError("BASE: a git revision is required (e.g. HEAD~1)")
    if len(revs) > 2:
        raise UsageError(f"{revs[2]!r}: expected BASE [CANDIDATE] and key=value overrides")
    return args, revs, overrides


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
        args, revs, overrides = parse(argv)
        settings = ABSettings(threshold_pct=args.fail_on_regression, metric=args.metric,
                              max_pairs=args.max_pairs, max_seconds=args.max_seconds,
                              min_pairs=args.min_pairs, confidence=args.confidence)
        settings.check()
        from ._job import compose_job
        cfg = compose_job(overrides, settings.metric)
        from ._profile import check_profiler
        check_profiler(cfg.profiler)
        repo = repo_root(Path(args.repo))
        for rev in revs:
            resolve(repo, rev)
    except (UsageError, RevisionError) as exc:
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
    if cfg.profiler.name != "none":       # after a decided verdict: profiles and their diff
        from ._profile import ProfilingObserver, output_dir
        observer = ProfilingObserver(observer, output_dir(Path.cwd()), lambda line: print(
            f"{PROG}: {line}", file=sys.stderr), display.out)
    base, candidate = revs[0], (revs[1] if len(revs) > 1 else None)
    display.err.print(f"{PROG}: {candidate or 'the working tree'} vs {base}, "
                      f"{settings.metric}, threshold +{settings.threshold_pct:g} %, "
                      f"budget {settings.pairs_budget} pairs / {settings.max_seconds:g} s",
                      highlight=False)
    with SignalGuard() as guard:
        try:
            result = run_ab(base, candidate, overrides, settings, repo, observer, job=cfg,
                            started=started)
        except KeyboardInterrupt:
            guard.quiet()
            signum = guard.received or signal.SIGINT
            if observer:
                observer.end("KILLED", f"interrupted ({signal.Signals(signum).name})")
            print(f"{PROG}: interrupted ({signal.Signals(signum).name}); "
                  f"runs marked KILLED", file=sys.stderr)
            return 128 + int(signum)
        except (ABError, UsageError) as exc:
            if observer:
                observer.end("FAILED", str(exc))
            print(f"{PROG}: error: could not compare: {exc}", file=sys.stderr)
            return EXIT_UNDECIDED
        except Exception as exc:     # a bug or a failing store: still one line, runs closed
            line = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if observer:
                try:
                    observer.end("FAILED", line)
                except Exception:
                    pass
            print(f"{PROG}: error: could not compare: {line}", file=sys.stderr)
            return EXIT_UNDECIDED
    display.out.print(result_table(result))
    print(f"{PROG}: {result.summary()}", flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
