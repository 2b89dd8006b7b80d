"""What the A/B command and the bisect command share: the command line, the settings
built from it, and the signal-guarded call that turns every way out into one line and
an exit code (``cli.py`` and ``_bisect_cli.py`` use these; neither imports the other's
internals)."""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Callable, Optional, TypeVar

from ..cli.precheck import UsageError
from ..parallel import SignalGuard
from ._errors import ABError
from ._measure import METRICS
from ._run import (DEFAULT_MAX_PAIRS, DEFAULT_MAX_PAIRS_INSTRUCTIONS, DEFAULT_MAX_SECONDS,
                   DEFAULT_METRIC, MIN_TIMEOUT_S, TIMEOUT_FACTOR, ABSettings)
from ._stats import DEFAULT_CONFIDENCE, DEFAULT_MIN_PAIRS

EXIT_ERROR = 2
T = TypeVar("T")

EXAMPLES = """examples:
  python -m cdrexp.ab HEAD~1                        # the working tree vs its parent commit
  python -m cdrexp.ab main HEAD subs=50000 output=parquet --fail-on-regression 10
  python -m cdrexp.ab HEAD~1 subs=5000 --metric instructions --fail-on-regression 2
  python -m cdrexp.ab HEAD~1 subs=50000 profiler=pyspy   # and, once decided, where the time went
  python -m cdrexp.ab --aa                          # A/A: this machine's false-alarm risk
  python -m cdrexp.ab HEAD HEAD --base-deps 'numpy<2'   # is numpy 2 faster for us?
  python -m cdrexp.ab --bisect v1.0 HEAD subs=20000 --fail-on-regression 10   # which commit
exit codes: 0 not slower by more than PCT, 1 slower, 2 undecided or could not run"""


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parser(prog: str) -> argparse.ArgumentParser:
    ap = _ArgParser(prog=prog, epilog=EXAMPLES,
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
                         "included, building environments excepted; a run that would "
                         f"overrun it is stopped (default {DEFAULT_MAX_SECONDS:g})")
    ap.add_argument("--run-timeout", type=float, default=None, metavar="SECONDS",
                    help=f"a measured run that takes longer is stopped and its side "
                         f"reported as hanging (default {TIMEOUT_FACTOR:g}x the warm-up, "
                         f"at least {MIN_TIMEOUT_S:g} s)")
    ap.add_argument("--min-pairs", type=int, default=DEFAULT_MIN_PAIRS,
                    help=f"first look at the interval (default {DEFAULT_MIN_PAIRS})")
    ap.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                    help="simultaneous over all looks (default 0.95: each wrong verdict "
                         "at most 2.5 %%)")
    ap.add_argument("--base-deps", action="append", default=[], metavar="REQ",
                    help="a requirement added to the base's declared packages (e.g. "
                         "'numpy<2'; repeatable): each side then runs in a virtualenv "
                         "of its own declaration")
    ap.add_argument("--candidate-deps", action="append", default=[], metavar="REQ",
                    help="the same for the candidate")
    ap.add_argument("--repo", default=".", help="the git repository (default: the one "
                                                "of the current directory)")
    ap.add_argument("--no-tracking", action="store_true",
                    help="do not log to MLflow")
    ap.add_argument("--aa", nargs="?", const="", default=None, metavar="REV",
                    help="A/A: the same code on both sides (REV, default the working "
                         "tree): the ratio, its interval and what a gate at PCT would "
                         "have said, i.e. this machine's false-alarm risk")
    ap.add_argument("--bisect", nargs=2, metavar=("GOOD", "BAD"),
                    help="find the first first-parent commit after GOOD up to BAD that is "
                         "slower than GOOD by more than PCT: one A/B per step")
    return ap


def parse(prog: str, argv) -> tuple[argparse.Namespace, list[str], list[str]]:
    """(options, revisions, overrides); raises ``UsageError``."""
    args = parser(prog).parse_intermixed_args(list(argv))
    if args.aa and "=" in args.aa:        # `--aa subs=2000`: an override, not a REV
        args.args.insert(0, args.aa)
        args.aa = ""
    revs = [a for a in args.args if "=" not in a]
    overrides = [a for a in args.args if "=" in a]
    return args, revs, overrides


def settings_from(args: argparse.Namespace) -> ABSettings:
    """The checked settings of a parsed command line; raises ``SettingsError``."""
    settings = ABSettings(threshold_pct=args.fail_on_regression, metric=args.metric,
                          max_pairs=args.max_pairs, max_seconds=args.max_seconds,
                          min_pairs=args.min_pairs, confidence=args.confidence,
                          run_timeout=args.run_timeout, base_deps=tuple(args.base_deps),
                          candidate_deps=tuple(args.candidate_deps))
    settings.check()
    return settings


def guarded(prog: str, work: Callable[[], T], end: Optional[Callable[..., None]],
            error_prefix: str = "") -> tuple[Optional[T], int]:
    """``(work(), 0)``, or ``(None, exit code)`` after one line on stderr: 128+signal on
    Ctrl-C / SIGTERM, 2 on an ``ABError`` or any other exception (a bug, a failing
    store). ``end(status, reason)`` closes the caller's MLflow runs (KILLED / FAILED);
    its own failure is ignored, the line and the exit code stand."""
    def close(status: str, reason: str) -> None:
        if end is not None:
            try:
                end(status, reason)
            except Exception:      # noqa: BLE001 - the store itself may be what failed
                pass

    with SignalGuard() as guard:
        try:
            return work(), 0
        except KeyboardInterrupt:
            guard.quiet()
            signum = guard.received or signal.SIGINT
            name = signal.Signals(signum).name
            close("KILLED", f"interrupted ({name})")
            print(f"{prog}: interrupted ({name}); runs marked KILLED", file=sys.stderr)
            return None, 128 + int(signum)
        except ABError as exc:
            close("FAILED", str(exc))
            print(f"{prog}: error: {error_prefix}{exc}", file=sys.stderr)
            return None, EXIT_ERROR
        except Exception as exc:   # noqa: BLE001 - still one line, runs closed
            line = f"{type(exc).__name__}: {exc}".splitlines()[0]
            close("FAILED", line)
            print(f"{prog}: error: {error_prefix}{line}", file=sys.stderr)
            return None, EXIT_ERROR
