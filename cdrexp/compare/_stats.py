"""Noise-aware comparison of two sets of repeat timings.

The question is "did the current run get slower (or faster) by more than the threshold,
beyond what its own repeats scatter?". Repeats are few (3 by default), so the design
must stay honest at 3 vs 3 samples, where a two-sided Mann-Whitney test cannot reach
p < 0.1 at all.

Method: the distribution-free confidence interval for the time ratio that comes with the
Mann-Whitney U test (Hodges-Lehmann / Bauer): sort the pairwise ratios ``cur_j / prev_i``
and take the k-th smallest and k-th largest, with k the largest value whose exact
coverage ``1 - 2 P(U <= k-1)`` is at least 95 %. With 3 vs 3 only k = 1 exists: the
interval is ``[min(cur)/max(prev), max(cur)/min(prev)]`` and covers the true ratio with
probability 90 % (exactly, whatever the noise distribution).

Verdict: SLOWER when the whole interval lies above ``1 + threshold``, FASTER when it lies
below ``1 - threshold``; everything else is OK. So a verdict needs both a change beyond
the threshold and significance, and more: the interval must clear the threshold, not
only zero. At 3 vs 3 with a point-estimate rule ("median beyond the threshold and ranges
apart") noise with a 5 % spread would be flagged in about 6 % of comparisons; with the
interval rule it is about 0.7 %, while a 30 % slowdown at that spread is still caught in
99 % of comparisons. Fewer repeats than 3 vs 3 (coverage < 90 %) give no verdict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy.stats import mannwhitneyu, norm

OK, FASTER, SLOWER = "OK", "FASTER", "SLOWER"
# the same code on both sides (same commit, no uncommitted changes): whatever the times
# say is the machine's drift between the sessions, not a finding (cdrexp.ab measures
# a change, both revisions alternately in one session)
DRIFT = "DRIFT"
NOTE_NOISE = "within noise"
NOTE_FEW = "too few repeats"

# coverage wanted for the interval, and the least accepted when samples are tiny
TARGET_CONFIDENCE = 0.95
MIN_CONFIDENCE = 0.90
# beyond this many pairs the exact U distribution is replaced by its normal approximation
_EXACT_MAX_PAIRS = 2500


@dataclass(frozen=True)
class Change:
    """How the current samples (wall times) compare with the previous ones."""
    n_prev: int
    n_cur: int
    prev_median: float
    cur_median: float
    change: float          # cur_median / prev_median - 1: > 0 means slower
    low: float             # interval of the time ratio, minus 1
    high: float
    confidence: float      # exact coverage of [low, high]; 0 when not computable
    p_value: float | None  # two-sided Mann-Whitney U, for reference
    verdict: str           # OK / FASTER / SLOWER
    note: str              # NOTE_NOISE, NOTE_FEW or ""

    @property
    def significant(self) -> bool:
        """True when the interval excludes "no change"."""
        return self.confidence >= MIN_CONFIDENCE - 1e-9 and (self.low > 0 or self.high < 0)


@lru_cache(maxsize=256)
def _u_cdf(n: int, m: int) -> tuple[float, ...]:
    """P(U <= u) for u = 0..n*m under the null, exact (no ties), by the usual recurrence."""
    # ways[j][u]: arrangements of i samples of one kind and j of the other with U = u
    ways = [np.zeros(n * m + 1) for _ in range(m + 1)]
    for j in range(m + 1):
        ways[j][0] = 1.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            # the largest value belongs to the first kind (adds j to U) or the second
            shifted = np.zeros(n * m + 1)
            shifted[j:] = ways[j][:-j] if j else ways[j]
            ways[j] = shifted + ways[j - 1]
    counts = ways[m]
    return tuple(np.cumsum(counts) / counts.sum())


def _interval_rank(n: int, m: int, target: float) -> tuple[int, float]:
    """The k (1-based) of the order-statistic interval and its exact coverage."""
    if n * m > _EXACT_MAX_PAIRS:
        z = norm.ppf(0.5 + target / 2)
        k = max(1, math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12)))
        cover = 1 - 2 * norm.cdf((k - 0.5 - n * m / 2) / math.sqrt(n * m * (n + m + 1) / 12))
        return k, cover
    cdf = _u_cdf(n, m)
    best_k, best_cover = 1, 1 - 2 * cdf[0]
    for k in range(2, n * m // 2 + 1):
        cover = 1 - 2 * cdf[k - 1]
        if cover < target:
            break
        best_k, best_cover = k, cover
    return best_k, best_cover


def compare_samples(prev: Sequence[float], cur: Sequence[float], threshold: float,
                    *, target_confidence: float = TARGET_CONFIDENCE,
                    min_confidence: float = MIN_CONFIDENCE) -> Change:
    """Compare two sets of wall times; ``threshold`` is a fraction (0.05 = 5 %)."""
    a = np.asarray([x for x in prev if x > 0 and math.isfinite(x)], dtype=float)
    b = np.asarray([x for x in cur if x > 0 and math.isfinite(x)], dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("both sides need at least one positive wall time")
    pm, cm = float(np.median(a)), float(np.median(b))
    change = cm / pm - 1
    ratios = np.sort(np.divide.outer(b, a).ravel())
    k, cover = _interval_rank(a.size, b.size, target_confidence)
    low, high = float(ratios[k - 1] - 1), float(ratios[-k] - 1)
    p_value = None
    if a.size >= 2 and b.size >= 2:
        p_value = float(mannwhitneyu(b, a, alternative="two-sided").pvalue)

    if cover < min_confidence - 1e-9:
        verdict, note = OK, NOTE_FEW
    elif low > threshold:
        verdict, note = SLOWER, ""
    elif high < -threshold:
        verdict, note = FASTER, ""
    else:
        verdict, note = OK, (NOTE_NOISE if abs(change) > threshold else "")
    return Change(n_prev=int(a.size), n_cur=int(b.size), prev_median=pm, cur_median=cm,
                  change=change, low=low, high=high, confidence=float(max(cover, 0.0)),
                  p_value=p_value, verdict=verdict, note=note)
