"""``python -m cdrexp.ab --bisect GOOD BAD [key=value ...] --fail-on-regression PCT``.

Binary search of the first-parent commits after GOOD up to BAD for the first one that is
slower than GOOD by more than PCT. Each step is a whole A/B (``run_ab``) of one commit
against GOOD, so every verdict has the A/B's guarantee (wrong with probability at most
alpha/2 in each direction). BAD is measured first: if it is not slower there is nothing
to look for. A step the A/B leaves undecided is run once more with twice the budget
(pairs and seconds); undecided again, the search stops and says between which commits
the change lies: it never guesses.

The search itself (``bisect``) takes the step as a function, so it is tested without
running anything; ``run_bisect`` (the programmatic entry point) gives it real A/Bs, and
a tracker (``_bisect_cli.BisectTracker``: one MLflow parent run of kind ``bisect``, each
step's A/B a child of it).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from .._git import git, git_ok
from ._revisions import RevisionError, repo_root, resolve, subject
from ._run import ABResult, ABSettings, run_ab
from ._stats import NOT_SLOWER, SLOWER, UNDECIDED

FOUND, CLEAN, UNDECIDABLE = "found", "bad is not slower", "undecidable"
EXIT_CODES = {FOUND: 0, CLEAN: 1, UNDECIDABLE: 2}
RETRY_BUDGET = 2          # the retry of an undecided step: this many times the budget


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:10]


@dataclass
class Step:
    """One A/B of the search: ``commit`` against GOOD."""
    number: int
    commit: Commit
    attempt: int                  # 1, or 2 for the retry of an undecided step
    verdict: str
    ratio: Optional[float] = None
    low: Optional[float] = None
    high: Optional[float] = None
    pairs: int = 0
    seconds: float = 0.0
    run_id: Optional[str] = None  # the step's A/B parent run in MLflow

    @classmethod
    def of(cls, number: int, commit: Commit, attempt: int, result: ABResult,
           run_id: Optional[str] = None) -> "Step":
        iv = result.decision.interval if result.decision else None
        return cls(number, commit, attempt, result.verdict,
                   iv.ratio if iv else None, iv.low if iv else None,
                   iv.high if iv else None, len(result.pairs), result.seconds, run_id)


@dataclass
class BisectResult:
    good: Commit
    bad: Commit
    commits: list[Commit]                     # after GOOD up to BAD, oldest first
    steps: list[Step] = field(default_factory=list)
    status: str = ""                          # FOUND / CLEAN / UNDECIDABLE
    first_bad: Optional[Commit] = None
    evidence: Optional[Step] = None           # the step that found first_bad slower
    last_good: Optional[Commit] = None        # the newest commit measured not slower
    undecided: Optional[Commit] = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 2)

    def summary(self, threshold_pct: float) -> str:
        pct = f"{threshold_pct:g} %"
        if self.status == FOUND:
            e = self.evidence
            return (f"first bad commit: {self.first_bad.short} {self.first_bad.subject!r}: "
                    f"slower than GOOD {self.good.short} by more than {pct} (ratio "
                    f"{e.ratio:.3f} [{e.low:.3f}, {e.high:.3f}], {e.pairs} pairs); "
                    f"{len(self.steps)} steps")
        if self.status == CLEAN:
            return (f"BAD {self.bad.short} is not slower than GOOD {self.good.short} by "
                    f"more than {pct}: nothing to bisect")
        lo = self.last_good or self.good
        hi = self.first_bad or self.bad
        return (f"undecidable: the A/B of {self.undecided.short} "
                f"{self.undecided.subject!r} stayed undecided with twice the budget; the "
                f"first commit slower by more than {pct} is after {lo.short} and at or "
                f"before {hi.short} (more --max-pairs / --max-seconds, a larger job or a "
                f"quieter machine may decide)")


StepFn = Callable[[Commit, ABSettings, int], Step]


def bisect(good: Commit, commits: list[Commit], settings: ABSettings,
           step: StepFn) -> BisectResult:
    """The search. ``step(commit, settings, number)`` runs one A/B against GOOD."""
    result = BisectResult(good, commits[-1], commits)

    def measure(i: int) -> Optional[Step]:
        """The decided step of commits[i], or None (recorded as undecidable)."""
        s = None
        for attempt, budget in ((1, settings), (2, _larger(settings))):
            s = step(commits[i], budget, len(result.steps) + 1)
            s.attempt = attempt
            result.steps.append(s)
            if s.verdict != UNDECIDED:
                return s
        result.status, result.undecided = UNDECIDABLE, commits[i]
        return None

    # commits[lo] is not slower (lo = -1: GOOD itself), commits[hi] is slower
    lo, hi = -1, len(commits) - 1
    s = measure(hi)
    if s is None:
        return result
    if s.verdict == NOT_SLOWER:
        result.status, result.last_good = CLEAN, commits[hi]
        return result
    result.first_bad, result.evidence = commits[hi], s
    while hi - lo > 1:
        mid = (lo + hi) // 2
        s = measure(mid)
        if s is None:
            return result
        if s.verdict == SLOWER:
            hi = mid
            result.first_bad, result.evidence = commits[mid], s
        else:
            lo = mid
            result.last_good = commits[mid]
    result.status = FOUND
    return result


def _larger(settings: ABSettings) -> ABSettings:
    """The retry's budget: twice the pairs (the default's when none was given) and
    twice the seconds."""
    return replace(settings, max_pairs=settings.pairs_budget * RETRY_BUDGET,
                   max_seconds=settings.max_seconds * RETRY_BUDGET)


def first_parent_commits(repo: Path, good_rev: str, bad_rev: str
                         ) -> tuple[Commit, list[Commit]]:
    """GOOD, and the first-parent commits after it up to BAD, oldest first; raises
    ``RevisionError`` (one line) when there are none or GOOD is not BAD's ancestor."""
    good, bad = resolve(repo, good_rev), resolve(repo, bad_rev)
    if good == bad:
        raise RevisionError(f"GOOD {good_rev} and BAD {bad_rev} are the same commit")
    if not git_ok(repo, "merge-base", "--is-ancestor", good, bad):
        raise RevisionError(f"GOOD {good_rev} ({good[:10]}) is not an ancestor of BAD "
                            f"{bad_rev} ({bad[:10]})")
    log = git(repo, "log", "--first-parent", "--reverse", "--format=%H%x00%s",
              f"{good}..{bad}")
    commits = [Commit(*line.split("\0", 1)) for line in log.splitlines() if line]
    if not commits or commits[-1].sha != bad:
        raise RevisionError(f"no first-parent history from {good_rev} to {bad_rev}")
    return Commit(good, subject(repo, good)), commits


def run_bisect(good_rev: str, bad_rev: str, overrides: Sequence[str], settings: ABSettings,
               repo: Path, tracker=None, job=None,
               progress=None, warn=None) -> BisectResult:
    """Raises ``RevisionError`` (bad revisions) before measuring, ``ABError`` when an
    A/B cannot run (a commit that fails, a missing tool)."""
    from ..tracking.results import config_label
    from ._job import compose_job
    cfg = job if job is not None else compose_job(overrides, settings.metric)
    root = repo_root(repo)
    good, commits = first_parent_commits(root, good_rev, bad_rev)
    if tracker:
        tracker.start(good, commits[-1], len(commits), settings, config_label(cfg))

    def step(commit: Commit, budget: ABSettings, number: int) -> Step:
        if progress:
            progress(f"step {number}: {commit.short} {commit.subject!r} vs GOOD "
                     f"{good.short} (budget {budget.pairs_budget} pairs / "
                     f"{budget.max_seconds:g} s)")
        observer = tracker.observer(number) if tracker else None
        result = run_ab(good.sha, commit.sha, overrides, budget, root, observer, job=cfg,
                        warn=warn, say=progress)
        s = Step.of(number, commit, 1, result,
                    tracker.step_runs.get(number) if tracker else None)
        if progress:
            progress(f"step {number}: {s.verdict.upper()} (ratio "
                     f"{'-' if s.ratio is None else f'{s.ratio:.3f}'}, {s.pairs} pairs)")
        if tracker:
            try:
                tracker.step_done(s)
            except Exception as exc:   # noqa: BLE001 - the step's verdict stands
                if warn:
                    warn(f"tracking failed (step {number}): {type(exc).__name__}: {exc}"
                         .splitlines()[0])
        return s

    return bisect(good, commits, settings, step)
