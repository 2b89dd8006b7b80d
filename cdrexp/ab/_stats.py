"""The paired-ratio interval and the sequential stopping rule of the A/B gate.

Data: pair i gives one run of each side, back to back, and its log-ratio
``r_i = log(candidate_i / base_i)``. Pairing cancels whatever changes slowly (the load
of the machine, its clock); the ABBA order (base first in even pairs, candidate first in
odd ones) cancels a drift or an "is second" advantage within a pair, on average.

**Interval.** Student's t interval for the mean log-ratio, turned back into a ratio
(the geometric mean of the per-pair ratios and its interval). Why it is honest here:
when the candidate is the base slowed by a constant factor and the two runs of a pair
are exchangeable, ``r_i`` is *exactly symmetric* about the log of that factor, whatever
the distribution of one run's time (the difference of two exchangeable variables is
symmetric). The t interval is at its weakest under skew, which this removes; under
symmetric heavy tails (a run hit by someone else's burst) it is conservative. The tests
check its coverage on normal, heavy-tailed and ABBA-biased synthetic pairs.

**Stopping rule.** The interval is looked at only after the pair counts of a fixed
schedule (``min_pairs``, then about a third more each time, and ``max_pairs``), and at
each of the K looks it is computed at level ``1 - alpha / K`` (Bonferroni): with
probability at least ``confidence = 1 - alpha`` *every* interval the run could look at
covers the true ratio, so the verdict the first decisive look gives is wrong with
probability at most ``alpha / 2`` in either direction (slower when it is not, not
slower when it is). A look forced early by the time budget replaces the remaining
scheduled looks, so it stays within the K. The verdict:

- SLOWER (exit 1): the whole interval lies above ``1 + threshold``;
- NOT_SLOWER (exit 0): the whole interval lies below ``1 + threshold``;
- UNDECIDED (exit 2): it straddles it, and the budget is spent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
# scipy.special's t quantile is what scipy.stats.t.ppf calls (equal to the last bit), and
# importing scipy.special costs ~0.55 CPU-s against ~1.3 for scipy.stats: every cdrexp.ab
# process pays it
from scipy.special import stdtrit

SLOWER, NOT_SLOWER, UNDECIDED = "slower", "not slower", "undecided"
EXIT_CODES = {NOT_SLOWER: 0, SLOWER: 1, UNDECIDED: 2}

DEFAULT_CONFIDENCE = 0.95
DEFAULT_MIN_PAIRS = 4
SCHEDULE_GROWTH = 4 / 3


@dataclass(frozen=True)
class Interval:
    """The candidate/base ratio from ``n`` pairs: geometric mean and interval."""
    n: int
    ratio: float
    low: float
    high: float
    level: float            # two-sided coverage of this one interval
    log_sd: float           # sample standard deviation of the log-ratios


@dataclass(frozen=True)
class Decision:
    verdict: str            # SLOWER / NOT_SLOWER / UNDECIDED
    interval: Optional[Interval]
    looks: int              # looks taken so far (this one included)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]


def log_ratios(base: Sequence[float], candidate: Sequence[float]) -> np.ndarray:
    b, c = np.asarray(base, dtype=float), np.asarray(candidate, dtype=float)
    if b.shape != c.shape:
        raise ValueError(f"{b.size} base values but {c.size} candidate values")
    if not (np.all(b > 0) and np.all(c > 0)):
        raise ValueError("measurements must be positive")
    return np.log(c / b)


def ratio_interval(logs: Sequence[float], level: float) -> Interval:
    """The t interval of the mean log-ratio at two-sided ``level``, as ratios."""
    x = np.asarray(logs, dtype=float)
    n = x.size
    if n < 2:
        raise ValueError("an interval needs at least 2 pairs")
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    half = _t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Interval(n=n, ratio=math.exp(mean), low=math.exp(mean - half),
                    high=math.exp(mean + half), level=level, log_sd=sd)


@lru_cache(maxsize=1024)
def _t_quantile(q: float, df: int) -> float:
    return float(stdtrit(df, q))


def verdict_of(interval: Interval, threshold: float) -> str:
    """``threshold`` is a fraction: 0.05 means "slower by more than 5 %"."""
    limit = 1.0 + threshold
    if interval.low > limit:
        return SLOWER
    if interval.high < limit:
        return NOT_SLOWER
    return UNDECIDED


def look_schedule(min_pairs: int, max_pairs: int,
                  growth: float = SCHEDULE_GROWTH) -> tuple[int, ...]:
    """Pair counts at which the interval is looked at: min_pairs, then about
    ``growth`` times more each time (at least 2 more: an even count of ABBA pairs is
    balanced), and always max_pairs last."""
    if min_pairs < 2:
        raise ValueError(f"min_pairs must be >= 2, got {min_pairs}")
    if max_pairs < min_pairs:
        raise ValueError(f"max_pairs ({max_pairs}) must be >= min_pairs ({min_pairs})")
    looks, n = [], min_pairs
    while n < max_pairs:
        looks.append(n)
        n = max(n + 2, math.ceil(n * growth))
    looks.append(max_pairs)
    return tuple(looks)


@dataclass(frozen=True)
class StoppingRule:
    """When to look, at which level, and what each look decides."""
    threshold: float                        # a fraction: 0.05 = 5 %
    confidence: float = DEFAULT_CONFIDENCE  # simultaneous, over every look
    min_pairs: int = DEFAULT_MIN_PAIRS
    max_pairs: int = 40

    def __post_init__(self):
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")
        look_schedule(self.min_pairs, self.max_pairs)   # validates the counts

    @property
    def schedule(self) -> tuple[int, ...]:
        return look_schedule(self.min_pairs, self.max_pairs)

    @property
    def look_level(self) -> float:
        """The level of each look's interval (Bonferroni over the schedule)."""
        return 1.0 - (1.0 - self.confidence) / len(self.schedule)

    def is_look(self, n: int) -> bool:
        return n in self.schedule

    def looks_before(self, n: int) -> int:
        return sum(1 for k in self.schedule if k < n)

    def decide(self, logs: Sequence[float]) -> Decision:
        """The decision after ``len(logs)`` pairs, at a scheduled look or at the one
        forced by the time budget running out (then the remaining looks never happen)."""
        n = len(logs)
        looks = self.looks_before(n) + 1
        if n < 2:
            return Decision(UNDECIDED, None, looks)
        interval = ratio_interval(logs, self.look_level)
        return Decision(verdict_of(interval, self.threshold), interval, looks)
