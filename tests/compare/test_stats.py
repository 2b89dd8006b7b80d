"""The noise-aware verdict: power against a real change, false alarms under pure noise,
and the exactness of the interval it rests on."""
import numpy as np
import pytest
from scipy.stats import binom, mannwhitneyu

from cdrexp.compare._stats import (FASTER, NOTE_FEW, NOTE_NOISE, OK, SLOWER, _interval_rank,
                                   _u_cdf, compare_samples)

SPREAD = 0.05       # lognormal sigma of repeat wall times (about 5 % scatter)
TRIALS = 100


def _trials(factor: float, n: int = 3, seed: int = 1, spread: float = SPREAD,
            threshold: float = 0.05) -> list[str]:
    rng = np.random.default_rng(seed)
    verdicts = []
    for _ in range(TRIALS):
        prev = np.exp(rng.normal(0, spread, n))
        cur = factor * np.exp(rng.normal(0, spread, n))
        verdicts.append(compare_samples(prev, cur, threshold).verdict)
    return verdicts


def _max_misses(rate: float) -> int:
    """Most misses in TRIALS that a method with this per-trial miss rate shows with
    probability 0.999: any count above it means the rate is worse than claimed."""
    return int(binom.ppf(0.999, TRIALS, rate))


def test_injected_30pct_slowdown_is_caught_with_three_repeats():
    verdicts = _trials(1.3)
    # simulated power at 3 vs 3 and 5 % spread is 99 %; allow for sampling error
    assert verdicts.count(SLOWER) >= TRIALS - _max_misses(0.01)
    assert FASTER not in verdicts


def test_pure_noise_is_not_flagged_in_95_of_100_trials():
    verdicts = _trials(1.0, seed=2)
    flagged = TRIALS - verdicts.count(OK)
    assert flagged <= 5
    # the design's simulated false-alarm rate is 0.7 %: the binomial bound is tighter
    assert flagged <= _max_misses(0.007)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_pure_noise_false_alarms_stay_rare_for_more_repeats(n):
    verdicts = _trials(1.0, n=n, seed=3 + n)
    assert TRIALS - verdicts.count(OK) <= 5


def test_faster_run_is_faster():
    verdicts = _trials(1 / 1.3, seed=4)
    assert verdicts.count(FASTER) >= TRIALS - _max_misses(0.01)
    assert SLOWER not in verdicts


def test_change_inside_the_noise_is_reported_as_such():
    # medians 10 % apart, but the repeats scatter over 40 %
    change = compare_samples([1.0, 0.8, 1.2], [1.1, 0.9, 1.3], 0.05)
    assert change.verdict == OK
    assert change.note == NOTE_NOISE
    assert change.change == pytest.approx(0.10)
    assert change.low < 0 < change.high
    assert change.p_value is not None and change.p_value > 0.05


def test_interval_for_three_repeats_is_the_range_of_ratios_at_90pct():
    prev, cur = [1.0, 1.02, 0.98], [1.30, 1.28, 1.33]
    change = compare_samples(prev, cur, 0.05)
    assert change.verdict == SLOWER and change.significant
    assert change.confidence == pytest.approx(0.9)
    assert change.low == pytest.approx(1.28 / 1.02 - 1)
    assert change.high == pytest.approx(1.33 / 0.98 - 1)


def test_verdict_needs_the_interval_beyond_the_threshold():
    # significant (ranges apart) and +8 % at the median, but the interval reaches +3 %
    change = compare_samples([1.0, 0.99, 1.01], [1.08, 1.04, 1.12], 0.05)
    assert change.significant
    assert change.verdict == OK and change.note == NOTE_NOISE


@pytest.mark.parametrize("n_prev, n_cur", [(1, 1), (2, 2), (1, 5)])
def test_too_few_repeats_give_no_verdict(n_prev, n_cur):
    change = compare_samples([1.0] * n_prev, [2.0] * n_cur, 0.05)
    assert change.verdict == OK and change.note == NOTE_FEW
    assert not change.significant


def test_bad_samples_are_refused():
    with pytest.raises(ValueError):
        compare_samples([], [1.0], 0.05)
    with pytest.raises(ValueError):
        compare_samples([0.0, -1.0], [1.0], 0.05)


@pytest.mark.parametrize("n, m", [(3, 3), (4, 6), (5, 5), (2, 7)])
def test_exact_u_distribution_matches_scipy(n, m):
    cdf = _u_cdf(n, m)
    y = np.arange(m) + 100.0
    for u in range(n * m + 1):
        # n values of x: u of the (x, y) pairs have x > y
        x = np.full(n, 0.5)
        left = u
        for i in range(n):
            take = min(left, m)
            x[i] = 100.0 + take - 0.5 if take else 0.5 - i * 0.01
            left -= take
        if left:
            continue
        p = mannwhitneyu(x, y, alternative="less", method="exact").pvalue
        assert cdf[u] == pytest.approx(p)


def test_interval_rank_matches_the_published_critical_value():
    # two-sided 5 % critical value of U for 10 vs 10 is 23, so k = 24
    k, cover = _interval_rank(10, 10, 0.95)
    assert k == 24 and 0.95 <= cover < 0.96
    assert _interval_rank(3, 3, 0.95) == (1, pytest.approx(0.9))


def test_interval_covers_the_true_ratio_as_often_as_it_claims():
    rng = np.random.default_rng(7)
    trials, hits, claimed = 2000, 0, None
    for _ in range(trials):
        prev = np.exp(rng.normal(0, 0.1, 5))
        cur = 1.2 * np.exp(rng.normal(0, 0.1, 5))
        c = compare_samples(prev, cur, 0.05)
        claimed = c.confidence
        hits += c.low <= 0.2 <= c.high
    # the coverage is exact, so the hit count is Binomial(trials, claimed)
    assert hits >= binom.ppf(0.001, trials, claimed)
