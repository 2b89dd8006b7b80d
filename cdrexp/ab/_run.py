"""``run_ab``: the interleaved A/B of two revisions, without the CLI and without MLflow.

Steps: validate the job, resolve both revisions, check the base out (and the candidate
when it is a revision), check that each side imports its own code, one unmeasured
warm-up run per side (it compiles the bytecode, warms the page cache and proves the side
runs), then pairs of measured runs in ABBA order until the stopping rule decides or the
budget (``max_pairs``, ``max_seconds`` counted from the start) runs out.

An ``observer`` (the CLI's MLflow logging; a profiler wrapper) is told about the start,
each pair and the end; ``ABError`` (one line) is raised for anything that makes the
comparison impossible: a bad revision, a side that fails, a missing tool.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Protocol, Sequence

from ..cli.precheck import UsageError
from ..config import ExperimentConfig
from ._job import compose_job, write_side_config
from ._measure import (METRICS, RunMeasurement, Side, SideFailed, Unavailable,
                       cachegrind_command, check_side, measure_run, stop_running)
from ._revisions import RevisionError, repo_root, sides
from ._stats import (DEFAULT_CONFIDENCE, DEFAULT_MIN_PAIRS, NOT_SLOWER, SLOWER, UNDECIDED,
                     Decision, StoppingRule, log_ratios)

# wall or CPU seconds of the process tree: see docs/comparing.md for the measurements
DEFAULT_METRIC = "cpu"
DEFAULT_MAX_PAIRS = 40
DEFAULT_MAX_SECONDS = 600.0


class ABError(Exception):
    """The comparison could not be made; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class ABSettings:
    threshold_pct: float = 5.0
    metric: str = DEFAULT_METRIC
    max_pairs: int = DEFAULT_MAX_PAIRS
    max_seconds: float = DEFAULT_MAX_SECONDS
    min_pairs: int = DEFAULT_MIN_PAIRS
    confidence: float = DEFAULT_CONFIDENCE

    def check(self) -> StoppingRule:
        """The stopping rule; raises ``UsageError`` naming a bad setting."""
        if self.metric not in METRICS:
            raise UsageError(f"--metric: {self.metric!r} is not one of {', '.join(METRICS)}")
        if not (math.isfinite(self.threshold_pct) and self.threshold_pct >= 0):
            raise UsageError(f"--fail-on-regression: must be a percentage >= 0, "
                             f"got {self.threshold_pct}")
        if not self.max_seconds > 0:
            raise UsageError(f"--max-seconds: must be > 0, got {self.max_seconds}")
        try:
            return StoppingRule(self.threshold_pct / 100, self.confidence, self.min_pairs,
                                self.max_pairs)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


@dataclass
class Pair:
    index: int
    first: str                      # "base" or "candidate": who ran first
    base: RunMeasurement
    candidate: RunMeasurement

    def ratio(self, metric: str) -> float:
        return self.candidate.value(metric) / self.base.value(metric)


@dataclass
class ABResult:
    base: Side
    candidate: Side
    config: ExperimentConfig
    settings: ABSettings
    rule: StoppingRule
    pairs: list[Pair] = field(default_factory=list)
    decision: Optional[Decision] = None
    stopped_by: str = ""            # "decided", "max pairs", "max seconds"
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return self.decision.verdict if self.decision else UNDECIDED

    @property
    def exit_code(self) -> int:
        return self.decision.exit_code if self.decision else 2

    def values(self, side: str, metric: Optional[str] = None) -> list[float]:
        metric = metric or self.settings.metric
        return [getattr(p, side).value(metric) for p in self.pairs]

    def summary(self) -> str:
        """The one line the CLI prints: what was decided and on what evidence."""
        pct = f"{self.settings.threshold_pct:g} %"
        iv = self.decision.interval if self.decision else None
        evidence = (f"{self.settings.metric} ratio {iv.ratio:.3f} "
                    f"[{iv.low:.3f}, {iv.high:.3f}] @{iv.level:.1%} per look, "
                    f"{iv.n} pairs" if iv else f"{len(self.pairs)} pairs")
        if self.verdict == SLOWER:
            return f"SLOWER: the candidate is slower by more than {pct} ({evidence})"
        if self.verdict == NOT_SLOWER:
            return f"OK: the candidate is not slower by more than {pct} ({evidence})"
        return (f"UNDECIDED: the interval still straddles +{pct} when the budget ran out "
                f"({self.stopped_by}; {evidence}); more pairs (--max-pairs, "
                f"--max-seconds) or a quieter machine may decide")


class Observer(Protocol):
    def started(self, result: ABResult) -> None: ...
    def paired(self, result: ABResult, pair: Pair) -> None: ...
    def finished(self, result: ABResult) -> None: ...


class _Sides:
    """Per side: its config file, output and log directory."""

    def __init__(self, side: Side, cfg: ExperimentConfig, work: Path, counter):
        self.side = side
        self.dir = work / side.label
        self.dir.mkdir(parents=True)
        self.out = self.dir / "out"
        self.config = write_side_config(cfg, self.out, self.dir / "config.yaml")
        self.counter = counter
        self.runs = 0

    def run(self, counted: bool = True) -> RunMeasurement:
        self.runs += 1
        log = self.dir / f"run{self.runs:03d}.log"
        return measure_run(self.side, self.config, self.out, log,
                           self.counter if counted else None)


def run_ab(base_rev: str, candidate_rev: Optional[str] = None,
           overrides: Sequence[str] = (), settings: ABSettings = ABSettings(),
           repo: Path = Path("."), observer: Optional[Observer] = None,
           job: Optional[ExperimentConfig] = None,
           started: Optional[float] = None) -> ABResult:
    """Compare ``candidate_rev`` (None: the working tree) with ``base_rev`` on the job
    the runner's ``overrides`` describe (``job``: that job already composed by
    ``compose_job``, to skip composing it again). ``max_seconds`` counts from
    ``started`` (a ``time.monotonic()`` value; default: now).

    Raises ``UsageError`` for bad overrides or settings (before any work) and
    ``ABError`` when the comparison cannot be made.
    """
    t0 = time.monotonic() if started is None else started
    rule = settings.check()
    cfg = job if job is not None else compose_job(overrides, settings.metric)
    try:
        counter = cachegrind_command() if settings.metric == "instructions" else None
        root = repo_root(repo)
        with contextlib.ExitStack() as stack:
            scratch = Path(tempfile.mkdtemp(prefix="cdrexp-ab-"))
            stack.callback(shutil.rmtree, scratch, True)
            base, candidate = stack.enter_context(
                sides(root, base_rev, candidate_rev, scratch))
            result = ABResult(base, candidate, cfg, settings, rule)
            for side in (base, candidate):
                check_side(side)
            runners = {s.label: _Sides(s, cfg, scratch / "runs", counter)
                       for s in (base, candidate)}
            # warm-up: unmeasured (so side by side), and proves that each side runs
            tw = time.monotonic()
            _run_both(runners, ("base", "candidate"), concurrently=True, counted=False)
            result.rule = _fit_schedule(rule, settings, time.monotonic() - tw,
                                        settings.max_seconds - (time.monotonic() - t0))
            if observer:
                observer.started(result)
            _measure_pairs(result, runners, t0, observer)
            result.seconds = time.monotonic() - t0
            if observer:
                observer.finished(result)
            return result
    except (RevisionError, SideFailed, Unavailable) as exc:
        raise ABError(str(exc)) from None


def _fit_schedule(rule: StoppingRule, settings: ABSettings, warm_up_s: float,
                  remaining_s: float) -> StoppingRule:
    """The rule with ``max_pairs`` cut to the pairs the time budget can hold, so that
    the Bonferroni correction is not spent on looks that would never happen. Decided
    from the warm-up's duration (two runs side by side take about as long as a pair
    one after the other), before any measured pair: the schedule stays fixed in
    advance. Instruction counts run under cachegrind, which the warm-up does not: their
    schedule is left as asked."""
    if settings.metric == "instructions" or warm_up_s <= 0:
        return rule
    fits = int(remaining_s / warm_up_s)
    max_pairs = max(rule.min_pairs, min(rule.max_pairs, fits))
    return dataclasses.replace(rule, max_pairs=max_pairs)


def _measure_pairs(result: ABResult, runners: dict, t0: float, observer) -> None:
    rule, settings = result.rule, result.settings
    pair_seconds: list[float] = []
    while True:
        n = len(result.pairs)
        if n >= rule.max_pairs:
            result.stopped_by = "max pairs"
            return
        expected = max(pair_seconds) if pair_seconds else 0.0
        if time.monotonic() - t0 + expected > settings.max_seconds:
            result.stopped_by = "max seconds"
            if n and not rule.is_look(n):
                result.decision = rule.decide(_logs(result))
            return
        tp = time.monotonic()
        order = ("base", "candidate") if n % 2 == 0 else ("candidate", "base")
        runs = _run_both(runners, order, concurrently=settings.metric == "instructions")
        pair = Pair(n, order[0], runs["base"], runs["candidate"])
        result.pairs.append(pair)
        pair_seconds.append(time.monotonic() - tp)
        if observer:
            observer.paired(result, pair)
        if rule.is_look(n + 1):
            result.decision = rule.decide(_logs(result))
            if result.decision.verdict != UNDECIDED:
                result.stopped_by = "decided"
                return


def _run_both(runners: dict, order: tuple[str, str], concurrently: bool,
              counted: bool = True) -> dict[str, RunMeasurement]:
    """One run of each side in ``order``; side by side when what is measured does not
    depend on it (an instruction count; a warm-up)."""
    if not concurrently:
        return {label: runners[label].run(counted) for label in order}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {label: pool.submit(runners[label].run, counted) for label in order}
        try:
            done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
            for f in done:
                if f.exception() is not None:
                    raise f.exception()
            return {label: f.result() for label, f in futures.items()}
        except BaseException:       # Ctrl-C, SIGTERM, a failed side: stop the other run
            stop_running()
            raise


def _logs(result: ABResult):
    m = result.settings.metric
    return log_ratios(result.values("base", m), result.values("candidate", m))
