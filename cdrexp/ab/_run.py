"""``run_ab``: the interleaved A/B of two revisions, without the CLI and without MLflow.

Steps: validate the job, resolve both revisions, check both out in scratch worktrees
(the working tree as a snapshot: ``_revisions``), give each side its packages (this
environment, or one per declaration when the two declare different ones: ``_envs``),
compile both checkouts' bytecode alike, check that each side imports its own code, one
unmeasured warm-up run per side (it warms the page cache, proves the side runs and sets
the per-run timeout), then pairs of measured runs in ABBA order until the stopping rule
decides or the budget (``max_pairs``, ``max_seconds`` counted from the start, building
environments excepted) runs out. A run that would overrun ``max_seconds`` is stopped
there and the pair dropped; a run that outlives the per-run timeout (``run_timeout``,
default ``TIMEOUT_FACTOR`` times the warm-up, at least ``MIN_TIMEOUT_S``) is a side
that hangs: the comparison cannot be made.

An ``observer`` (the CLI's MLflow logging; a profiler wrapper) is told about the start,
each pair and the end; its failures are warnings (``warn``), never the verdict's end.
``ABError`` (one line) is raised for anything that makes the comparison impossible: a bad
revision, a side that fails or hangs (its log is copied to ``keep_logs`` first), a
missing tool, an environment that cannot be built; ``SettingsError`` (an ``ABError``)
for bad settings or overrides, before any work.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

from ..config import ExperimentConfig
from ._envs import EnvError, SideEnv, current_env, ensure_env, plan
from ._errors import ABError, SettingsError
from ._job import compose_job, write_side_config
from ._measure import (METRICS, RunMeasurement, RunTimedOut, Side, SideFailed, Unavailable,
                       allow_runs, cachegrind_command, check_side, measure_run, side_env,
                       stop_running)
from ._revisions import RevisionError, prepare_bytecode, repo_root, sides
from ._stats import (DEFAULT_CONFIDENCE, DEFAULT_MIN_PAIRS, NOT_SLOWER, SLOWER, UNDECIDED,
                     Decision, StoppingRule, log_ratios)

# wall or CPU seconds of the process tree: see docs/comparing.md for the measurements
DEFAULT_METRIC = "cpu"
DEFAULT_MAX_PAIRS = 40
# instruction counts scatter by ~0.2 %: 4-8 pairs decide what they can, and fewer looks
# keep each look's interval narrower (Bonferroni over 3 looks, not 9)
DEFAULT_MAX_PAIRS_INSTRUCTIONS = 8
DEFAULT_MAX_SECONDS = 600.0
# the per-run timeout when none is given: a measured run alone takes about as long as
# the warm-up (two runs side by side, cold caches) or less; 4x that is a hang, not noise
TIMEOUT_FACTOR = 4.0
MIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ABSettings:
    threshold_pct: float = 5.0
    metric: str = DEFAULT_METRIC
    max_pairs: Optional[int] = None     # None: 40, or 8 for instructions
    max_seconds: float = DEFAULT_MAX_SECONDS
    min_pairs: int = DEFAULT_MIN_PAIRS
    confidence: float = DEFAULT_CONFIDENCE
    run_timeout: Optional[float] = None  # seconds per measured run; None: from the warm-up
    base_deps: tuple[str, ...] = ()      # requirements added to the base's declaration
    candidate_deps: tuple[str, ...] = ()

    @property
    def pairs_budget(self) -> int:
        if self.max_pairs is not None:
            return self.max_pairs
        return DEFAULT_MAX_PAIRS_INSTRUCTIONS if self.metric == "instructions" \
            else DEFAULT_MAX_PAIRS

    def check(self) -> StoppingRule:
        """The stopping rule; raises ``SettingsError`` naming a bad setting."""
        if self.metric not in METRICS:
            raise SettingsError(f"--metric: {self.metric!r} is not one of "
                                f"{', '.join(METRICS)}")
        if not (math.isfinite(self.threshold_pct) and self.threshold_pct >= 0):
            raise SettingsError(f"--fail-on-regression: must be a percentage >= 0, "
                                f"got {self.threshold_pct}")
        if not self.max_seconds > 0:
            raise SettingsError(f"--max-seconds: must be > 0, got {self.max_seconds}")
        if self.run_timeout is not None and not self.run_timeout > 0:
            raise SettingsError(f"--run-timeout: must be > 0, got {self.run_timeout}")
        for option, reqs in (("--base-deps", self.base_deps),
                             ("--candidate-deps", self.candidate_deps)):
            for r in reqs:
                if not r.strip() or r.strip().startswith("-"):
                    raise SettingsError(f"{option}: {r!r} is not a requirement "
                                        f"(e.g. 'numpy<2')")
        try:
            return StoppingRule(self.threshold_pct / 100, self.confidence, self.min_pairs,
                                self.pairs_budget)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None


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
    aa: bool = False                # an A/A: the same code on both sides
    run_timeout: Optional[float] = None   # the per-run timeout used (seconds)
    warnings: list[str] = field(default_factory=list)   # e.g. tracking that failed

    def environments(self) -> str:
        """Which packages each side ran with, in one line."""
        if self.base.env == self.candidate.env:
            return f"both sides: {self.base.env}"
        return f"base: {self.base.env}; candidate: {self.candidate.env}"

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
        if self.aa:
            would = {SLOWER: "SLOWER (exit 1): a false alarm",
                     NOT_SLOWER: "OK (exit 0)"}.get(self.verdict, "UNDECIDED (exit 2)")
            return (f"A/A (the same code on both sides): {evidence}; a gate at +{pct} "
                    f"would have said {would}")
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


class _SafeObserver:
    """The observer's failures (a tracking store that stops answering) are warnings:
    the measurements, and so the verdict, go on. After one failure it is left alone,
    but asked to close the runs it opened (``end``)."""

    def __init__(self, inner, warn: Callable[[str], None], result: "ABResult"):
        self.inner, self.warn, self.result, self.broken = inner, warn, result, False

    def __call__(self, method: str, *args) -> None:
        if self.inner is None or self.broken:
            return
        try:
            getattr(self.inner, method)(*args)
        except Exception as exc:   # noqa: BLE001 - logging must not cost the verdict
            self.broken = True
            line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            msg = f"tracking failed ({method}): {line}; the verdict stands"
            self.result.warnings.append(msg)
            self.warn(msg)
            with contextlib.suppress(Exception):
                self.inner.end("FAILED", f"tracking failed: {line}")


class _Sides:
    """Per side: its config file, output and log directory."""

    def __init__(self, side: Side, cfg: ExperimentConfig, work: Path, counter,
                 keep_logs: Path):
        self.side = side
        # "base" / "cand": names of one length, so the runs' working directories (the
        # first entry of their sys.path), configs and outputs differ in length nowhere
        self.dir = work / side.label[:4]
        self.dir.mkdir(parents=True)
        self.out = self.dir / "out"
        self.config = write_side_config(cfg, self.out, self.dir / "config.yaml")
        self.counter = counter
        self.keep_logs = keep_logs
        self.runs = 0

    def run(self, counted: bool = True, timeout: Optional[float] = None) -> RunMeasurement:
        self.runs += 1
        log = self.dir / f"run{self.runs:03d}.log"
        return measure_run(self.side, self.config, self.out, log,
                           self.counter if counted else None, timeout, self.keep_logs)


def default_keep_logs() -> Path:
    """Where a failing side's log is copied when the caller names no place."""
    return Path(tempfile.gettempdir()) / "cdrexp-ab-logs" / time.strftime("%Y%m%d-%H%M%S")


def run_ab(base_rev: Optional[str], candidate_rev: Optional[str] = None,
           overrides: Sequence[str] = (), settings: ABSettings = ABSettings(),
           repo: Path = Path("."), observer: Optional[Observer] = None,
           job: Optional[ExperimentConfig] = None,
           started: Optional[float] = None, warn: Optional[Callable[[str], None]] = None,
           say: Optional[Callable[[str], None]] = None,
           keep_logs: Optional[Path] = None) -> ABResult:
    """Compare ``candidate_rev`` (None: the working tree) with ``base_rev`` (None: the
    working tree too, an A/A) on the job the runner's ``overrides`` describe (``job``:
    that job already composed by ``compose_job``, to skip composing it again).
    ``max_seconds`` counts from ``started`` (a ``time.monotonic()`` value; default:
    now), environment builds excepted. ``warn``/``say``: where warnings and progress
    lines go (default: stderr / nowhere); ``keep_logs``: where a failing side's log is
    copied (default under the temporary directory).

    Raises ``SettingsError`` for bad overrides or settings (before any work) and
    ``ABError`` when the comparison cannot be made.
    """
    t0 = time.monotonic() if started is None else started
    warn = warn or (lambda line: print(f"cdrexp-ab: warning: {line}", file=sys.stderr))
    say = say or (lambda line: None)
    rule = settings.check()
    cfg = job if job is not None else compose_job(overrides, settings.metric)
    # the same code and the same packages on both sides (`HEAD HEAD --base-deps X` is not)
    aa = base_rev == candidate_rev and settings.base_deps == settings.candidate_deps
    try:
        counter = cachegrind_command() if settings.metric == "instructions" else None
        root = repo_root(repo)
        with contextlib.ExitStack() as stack:
            scratch = Path(tempfile.mkdtemp(prefix="cdrexp-ab-"))
            stack.callback(shutil.rmtree, scratch, True)
            base, candidate = stack.enter_context(
                sides(root, base_rev, candidate_rev, scratch))
            tb = time.monotonic()
            base, candidate = _with_envs(base, candidate, settings, say)
            t0 += time.monotonic() - tb          # building environments is not measuring
            result = ABResult(base, candidate, cfg, settings, rule, aa=aa)
            notify = _SafeObserver(observer, warn, result)
            for side in (base, candidate):
                prepare_bytecode(side.root, side.python, side_env(side))
                check_side(side)
            runners = {s.label: _Sides(s, cfg, scratch / "runs", counter,
                                       keep_logs or default_keep_logs())
                       for s in (base, candidate)}
            # warm-up: unmeasured (so side by side), and proves that each side runs
            tw = time.monotonic()
            warm_timeout = settings.run_timeout or max(
                1.0, settings.max_seconds - (time.monotonic() - t0))
            _run_both(runners, ("base", "candidate"), concurrently=True, counted=False,
                      timeout=warm_timeout)
            warm_up_s = time.monotonic() - tw
            result.run_timeout = run_timeout(settings, warm_up_s)
            result.rule = _fit_schedule(rule, settings, warm_up_s,
                                        settings.max_seconds - (time.monotonic() - t0))
            notify("started", result)
            _measure_pairs(result, runners, t0, notify)
            result.seconds = time.monotonic() - t0
            notify("finished", result)
            return result
    except (RevisionError, SideFailed, Unavailable, EnvError) as exc:
        raise ABError(str(exc)) from None


def run_timeout(settings: ABSettings, warm_up_s: float) -> Optional[float]:
    """The per-run timeout: as given, else from the warm-up (instruction counts run
    under cachegrind, ~50x slower than the warm-up: only the budget bounds them)."""
    if settings.run_timeout is not None:
        return settings.run_timeout
    if settings.metric == "instructions":
        return None
    return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * warm_up_s)


def _with_envs(base: Side, candidate: Side, settings: ABSettings,
               say: Callable[[str], None]) -> tuple[Side, Side]:
    """Each side with its packages: this environment when both declare the same."""
    wanted = plan(base.root, candidate.root, settings.base_deps, settings.candidate_deps)
    envs: tuple[SideEnv, SideEnv]
    if wanted is None:
        envs = (current_env(), current_env())
    else:
        envs = (ensure_env(wanted[0], say=say), ensure_env(wanted[1], say=say))
    return (dataclasses.replace(base, python=envs[0].python, env=envs[0].describe(envs[1])),
            dataclasses.replace(candidate, python=envs[1].python,
                                env=envs[1].describe(envs[0])))


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


def _measure_pairs(result: ABResult, runners: dict, t0: float, notify) -> None:
    rule, settings = result.rule, result.settings
    pair_seconds: list[float] = []
    while True:
        n = len(result.pairs)
        if n >= rule.max_pairs:
            result.stopped_by = "max pairs"
            return
        expected = max(pair_seconds) if pair_seconds else 0.0
        if time.monotonic() - t0 + expected > settings.max_seconds:
            _out_of_time(result)
            return
        tp = time.monotonic()
        order = ("base", "candidate") if n % 2 == 0 else ("candidate", "base")
        try:
            runs = _run_both(runners, order,
                             concurrently=settings.metric == "instructions",
                             timeout=result.run_timeout,
                             deadline=t0 + settings.max_seconds)
        except _BudgetSpent:
            _out_of_time(result)          # the unfinished pair is dropped
            return
        pair = Pair(n, order[0], runs["base"], runs["candidate"])
        result.pairs.append(pair)
        pair_seconds.append(time.monotonic() - tp)
        notify("paired", result, pair)
        if rule.is_look(n + 1):
            result.decision = rule.decide(_logs(result))
            if result.decision.verdict != UNDECIDED:
                result.stopped_by = "decided"
                return


def _out_of_time(result: ABResult) -> None:
    result.stopped_by = "max seconds"
    n = len(result.pairs)
    if n and not result.rule.is_look(n):
        result.decision = result.rule.decide(_logs(result))


class _BudgetSpent(Exception):
    """A run stopped at ``max_seconds`` (not at its own timeout)."""


def _run_both(runners: dict, order: tuple[str, str], concurrently: bool,
              counted: bool = True, timeout: Optional[float] = None,
              deadline: Optional[float] = None) -> dict[str, RunMeasurement]:
    """One run of each side in ``order``; side by side when what is measured does not
    depend on it (an instruction count; a warm-up). Each run is stopped at ``timeout``
    seconds (``RunTimedOut``) or at the ``deadline`` (monotonic; ``_BudgetSpent``)."""
    def one(label: str) -> RunMeasurement:
        limit, by_budget = timeout, False
        if deadline is not None:
            left = max(0.5, deadline - time.monotonic())
            if limit is None or left < limit:
                limit, by_budget = left, True
        try:
            return runners[label].run(counted, limit)
        except RunTimedOut:
            if by_budget:
                raise _BudgetSpent() from None
            raise

    allow_runs()
    if not concurrently:
        return {label: one(label) for label in order}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {label: pool.submit(one, label) for label in order}
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
