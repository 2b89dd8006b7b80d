"""``python -m cdrexp.compare``: compare cdrexp runs kept in MLflow.

Exit codes: 0 answered (and no regression when gating), 1 a matched configuration got
slower by more than ``--fail-on-regression`` beyond the noise, 2 the tool could not
answer (bad arguments, no store, no runs, unknown id) or the gate could not decide (a
matched configuration with too few repeats for the interval, e.g. runs that logged only
their median), 130 interrupted (Ctrl-C).

Runs that an earlier command on this host left RUNNING when it was killed are marked
KILLED first (one line says so), so that no table shows a run that never ends.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from cdrexp.tracking import names
from cdrexp.usage import EXIT_INTERRUPTED

EXIT_OK, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2
DEFAULT_THRESHOLD = 5.0     # percent
PROG = "cdrexp-compare"


def _percent(text: str) -> float:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 <= value < 1000:
        raise argparse.ArgumentTypeError(f"percentage out of range [0, 1000): {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Compare cdrexp runs and sweeps kept in MLflow. "
        "Without an action, --latest.")
    p.add_argument("--latest", action="store_true",
                   help="the newest run or sweep, with the system it ran on")
    p.add_argument("--compare", nargs="*", metavar="ID",
                   help="the two newest comparable sweeps, or two run/sweep ids "
                   "(previous first); unique id prefixes work")
    p.add_argument("--trends", action="store_true",
                   help="every run of each configuration over time")
    p.add_argument("--export-csv", type=Path, metavar="FILE",
                   help="one row per run and configuration")
    p.add_argument("--plot", type=Path, metavar="FILE.png",
                   help="throughput over time per configuration")
    p.add_argument("--diff-profile", nargs="+", metavar="ID",
                   help="where the time went differently: run ids A B (A = before) with "
                   "py-spy or perf profiles; tables of the functions whose share changed "
                   "most and a differential flamegraph, logged under profile_diff/ of B")
    p.add_argument("--threshold", type=_percent, default=None, metavar="PCT",
                   help="change in %% beyond which (and beyond the noise) a verdict is "
                   "FASTER/SLOWER (default %g, or --fail-on-regression's)" % DEFAULT_THRESHOLD)
    p.add_argument("--fail-on-regression", type=_percent, metavar="PCT",
                   help="exit 1 when a matched configuration is slower by more than PCT "
                   "%% beyond the noise, 2 when a matched configuration has too few "
                   "repeats to decide (implies --compare; PCT is the threshold of the "
                   "whole report)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow store (default: $MLFLOW_TRACKING_URI, else "
                   "sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--experiment", default=names.DEFAULT_EXPERIMENT,
                   help="MLflow experiment (default %(default)s)")
    return p


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _compare(store, console, args, threshold: float) -> int:
    """--compare (and its gate); returns the exit status."""
    from . import _analysis, _report
    from ._store import StoreError
    status = EXIT_OK
    try:
        prev, cur = _analysis.pick_groups(store, args.compare)
    except _analysis.NothingToCompare as exc:
        # a first day: say what to run; only a gate, which cannot pass on nothing, fails
        if args.fail_on_regression is not None:
            return _error(f"gate cannot decide: {exc}")
        console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        return EXIT_OK
    comparison = _analysis.compare_groups(store, prev, cur, threshold)
    if not comparison.matches:
        raise StoreError(f"no configuration of {cur.group_id} matches one of "
                         f"{prev.group_id}: nothing to compare")
    _report.render_comparison(console, comparison)
    if args.fail_on_regression is not None:
        pct = args.fail_on_regression
        bad = _analysis.regressions(store, comparison, pct)
        for m in bad:
            print(f"REGRESSION: {m.label}: time {_report.fmt_pct(m.change.change)} "
                  f"{_report.fmt_interval(m.change)}, slower than {pct:g}% beyond "
                  "the noise", file=sys.stderr)
        unsure = _analysis.undecided(store, comparison)
        for m, why in unsure:
            print(f"UNDECIDED: {m.label}: {why}", file=sys.stderr)
        if bad:
            status = EXIT_REGRESSION
        elif unsure:
            # a gate that cannot decide must not pass
            status = _error(f"gate cannot decide: {len(unsure)} of "
                            f"{len(comparison.matches)} matched configuration(s) "
                            "have too few repeats (see UNDECIDED above)")
        else:
            drift = sum(m.drift for m in comparison.matches)
            console.print(f"gate: no configuration slower by more than {pct:g}% "
                          "beyond the noise" + (
                              f" ({drift} of {len(comparison.matches)} ran the "
                              "same code on both sides: not judged)"
                              if drift else ""))
    return status


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.compare is not None and len(args.compare) not in (0, 2):
        parser.error(f"--compare takes no id or two ids, got {len(args.compare)}")
    if args.fail_on_regression is not None and args.compare is None:
        args.compare = []
    # one threshold for the whole report: the gate's, when there is a gate
    if args.fail_on_regression is not None and args.threshold is not None \
            and args.threshold != args.fail_on_regression:
        parser.error(f"--threshold {args.threshold:g} and --fail-on-regression "
                     f"{args.fail_on_regression:g} disagree: give one (the gate's PCT is "
                     "the report's threshold)")
    pct_threshold = args.fail_on_regression if args.fail_on_regression is not None \
        else args.threshold if args.threshold is not None else DEFAULT_THRESHOLD
    if not (args.latest or args.compare is not None or args.trends or args.export_csv
            or args.plot or args.diff_profile):
        args.latest = True
    for path in (args.export_csv, args.plot):
        if path is not None and path.is_dir():
            return _error(f"{path} is a directory, expected a file name")
        if path is not None and not path.absolute().parent.is_dir():
            return _error(f"cannot write {path}: {path.absolute().parent} is not a "
                          "directory (create it first)")

    # imported here so that --help and argument errors stay instant
    from . import _analysis, _report
    from ._store import Store, StoreError, tracking_uri

    threshold = pct_threshold / 100
    console = _report.make_console()
    status = EXIT_OK
    try:
        uri = tracking_uri(args.tracking_uri)
        store = Store(uri, args.experiment)
        from mlflow.tracking import MlflowClient

        from cdrexp.tracking import say_orphans
        if say_orphans(MlflowClient(tracking_uri=uri), PROG):
            store = Store(uri, args.experiment)     # read again, with the runs marked
        if args.latest:
            group = store.require_groups()[-1]
            samples = {j.run_id: store.samples(j) for j in group.jobs}
            _report.render_latest(console, group, samples, store.system_info(group))
        if args.compare is not None:
            status = _compare(store, console, args, threshold)
        if args.diff_profile:
            _check_diff_ids(store, args.diff_profile)
            from ._profile_diff import run_diff_profile
            run_diff_profile(store, console, args.diff_profile)
        if args.trends or args.plot:
            trend_list = _analysis.trends(store, threshold)
            if args.trends:
                _report.render_trends(console, trend_list, threshold)
            if args.plot:
                _report.write_plot(args.plot, trend_list)
                _honour_umask(args.plot)
                console.print(f"plot written to {args.plot}")
        if args.export_csv:
            rows = _analysis.export_rows(store)
            _report.write_csv(args.export_csv, rows)
            _honour_umask(args.export_csv)
            console.print(f"{len(rows)} rows written to {args.export_csv}")
    except StoreError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"cannot write {exc.filename or ''}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    return status


def _check_diff_ids(store, ids: list[str]) -> None:
    """One id must be an A/B parent run: say what a job's or a sweep's id is instead."""
    from ._store import StoreError
    if len(ids) != 1:
        return
    ident = ids[0]
    if any(j.run_id.startswith(ident) for j in store.jobs):
        raise StoreError(f"{ident!r} is a job run (python -m cdrexp), not an A/B run: "
                         "--diff-profile takes two profiled job runs (A B), or one A/B "
                         "parent run (python -m cdrexp.ab)")
    if any(r.startswith(ident) for r in store.sweep_parents):
        raise StoreError(f"{ident!r} is a sweep's parent run, not an A/B run: "
                         "--diff-profile takes two profiled job runs (A B), or one A/B "
                         "parent run (python -m cdrexp.ab)")


def _honour_umask(path: Path) -> None:
    """The written file gets the mode any new file of this process would (it is written
    under a private temporary name, created 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


if __name__ == "__main__":
    sys.exit(main())
