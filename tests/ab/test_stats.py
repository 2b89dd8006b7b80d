"""The paired-ratio interval and the stopping rule on synthetic pairs (fixed seeds;
tolerances are three binomial standard errors of the simulated rate)."""
import math

import numpy as np
import pytest

from cdrexp.ab._stats import (EXIT_CODES, NOT_SLOWER, SLOWER, UNDECIDED, Interval,
                              StoppingRule, log_ratios, look_schedule, ratio_interval,
                              verdict_of)

from .ab_synthetic import (abba_biased, heavy_tailed, normal, two_runs_lognormal_with_outliers,
                          verdict_rates)

TRIALS = 2000


def _se(p, n=TRIALS):
    return math.sqrt(p * (1 - p) / n)


def _coverage(noise, n, level, true_ratio=1.1, seed=1):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(TRIALS):
        iv = ratio_interval(math.log(true_ratio) + noise(rng, n), level)
        hits += iv.low <= true_ratio <= iv.high
    return hits / TRIALS


@pytest.mark.parametrize("n", [4, 8, 20])
def test_interval_coverage_is_exact_for_normal_log_ratios(n):
    cover = _coverage(normal(0.1), n, 0.95)
    assert abs(cover - 0.95) < 3 * _se(0.95)


@pytest.mark.parametrize("noise", [heavy_tailed(0.1), two_runs_lognormal_with_outliers(0.1),
                                   abba_biased(0.05, 0.05)],
                         ids=["t3", "runs-with-outliers", "abba-order-effect"])
@pytest.mark.parametrize("n", [4, 8, 20])
def test_interval_coverage_holds_for_symmetric_non_normal_log_ratios(noise, n):
    # the t interval is conservative under symmetric heavy tails; an even number of
    # ABBA pairs cancels an order effect (it only widens the interval)
    assert _coverage(noise, n, 0.95) >= 0.95 - 3 * _se(0.95)


def test_interval_is_the_geometric_mean_and_t_quantile():
    iv = ratio_interval(np.log([1.1, 1.2, 1.0, 1.3]), 0.95)
    logs = np.log([1.1, 1.2, 1.0, 1.3])
    half = 3.182446 * logs.std(ddof=1) / 2          # t(0.975, 3) * sd / sqrt(4)
    assert iv.ratio == pytest.approx(math.exp(logs.mean()))
    assert math.log(iv.high) - math.log(iv.ratio) == pytest.approx(half, rel=1e-5)
    assert iv.n == 4 and iv.level == 0.95


def test_identical_measurements_give_a_point_interval():
    iv = ratio_interval([0.0, 0.0, 0.0], 0.99)
    assert (iv.low, iv.ratio, iv.high) == (1.0, 1.0, 1.0)


def test_log_ratios_reject_bad_input():
    assert log_ratios([2.0, 4.0], [3.0, 4.0]).tolist() == pytest.approx([math.log(1.5), 0])
    with pytest.raises(ValueError, match="positive"):
        log_ratios([1.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="2 base values but 1"):
        log_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least 2 pairs"):
        ratio_interval([0.1], 0.95)


@pytest.mark.parametrize("low, high, verdict", [
    (1.06, 1.3, SLOWER), (0.9, 1.049, NOT_SLOWER), (1.0, 1.06, UNDECIDED),
    (1.05, 1.2, UNDECIDED), (0.5, 0.8, NOT_SLOWER)])
def test_verdict_needs_the_whole_interval_on_one_side(low, high, verdict):
    iv = Interval(n=5, ratio=(low + high) / 2, low=low, high=high, level=0.99, log_sd=0.1)
    assert verdict_of(iv, 0.05) == verdict


def test_exit_codes():
    assert EXIT_CODES == {NOT_SLOWER: 0, SLOWER: 1, UNDECIDED: 2}


def test_look_schedule_grows_by_a_third_and_ends_at_max_pairs():
    assert look_schedule(4, 40) == (4, 6, 8, 11, 15, 20, 27, 36, 40)
    assert look_schedule(3, 3) == (3,)
    assert look_schedule(4, 5) == (4, 5)
    with pytest.raises(ValueError):
        look_schedule(1, 10)
    with pytest.raises(ValueError):
        look_schedule(8, 4)


def test_each_look_is_bonferroni_corrected():
    rule = StoppingRule(0.05, confidence=0.95, min_pairs=4, max_pairs=40)
    assert rule.look_level == pytest.approx(1 - 0.05 / 9)
    d = rule.decide(np.log([1.3, 1.25, 1.35, 1.3]))
    assert d.verdict == SLOWER and d.looks == 1 and d.interval.level == rule.look_level
    # a look forced by the time budget after 13 pairs is the 5th (after 4, 6, 8, 11)
    assert rule.decide(np.zeros(13)).looks == 5


# ---- the sequential gate: error rates over whole runs of the stopping rule ----------

RULE = StoppingRule(threshold=0.05, confidence=0.95, min_pairs=4, max_pairs=40)


@pytest.mark.parametrize("noise", [normal(0.07), heavy_tailed(0.07),
                                   two_runs_lognormal_with_outliers(0.07)],
                         ids=["normal", "t3", "runs-with-outliers"])
def test_wrong_verdicts_at_the_threshold_stay_under_alpha_over_two(noise):
    # true ratio exactly at the threshold: "slower" and "not slower" are both wrong
    # there, each must happen in at most alpha / 2 = 2.5 % of gates despite 9 looks
    rates = verdict_rates(RULE, 1.05, noise, TRIALS, seed=2)
    assert rates.get(SLOWER, 0) <= 0.025 + 3 * _se(0.025)
    assert rates.get(NOT_SLOWER, 0) <= 0.025 + 3 * _se(0.025)


def test_without_the_correction_repeated_looks_would_break_the_error_rate():
    # the same looks, each at 95 %: the gate at the threshold errs far more than 2.5 %
    class Naive(StoppingRule):
        @property
        def look_level(self):
            return self.confidence
    naive = Naive(0.05, 0.95, 4, 40)
    rates = verdict_rates(naive, 1.05, normal(0.07), TRIALS, seed=2)
    assert rates.get(SLOWER, 0) > 0.025 + 3 * _se(0.025)


def test_no_change_is_never_flagged_and_mostly_decided():
    # 7 % scatter per pair and a 5 % threshold: 40 pairs decide "not slower" ~94 % of
    # the time (the rest is undecided, exit 2: never a pass by default)
    rates = verdict_rates(RULE, 1.0, normal(0.07), TRIALS, seed=3)
    assert rates.get(SLOWER, 0) <= 3 * _se(0.001)
    assert rates.get(NOT_SLOWER, 0) >= 0.90


@pytest.mark.parametrize("true_ratio, caught", [(1.25, 0.99), (1.10, 0.80)])
def test_real_slowdowns_are_caught(true_ratio, caught):
    rates = verdict_rates(RULE, true_ratio, normal(0.07), TRIALS, seed=4)
    assert rates.get(SLOWER, 0) >= caught - 3 * _se(caught)
    assert rates.get(NOT_SLOWER, 0) <= 3 * _se(0.001)


def test_rule_rejects_bad_settings():
    with pytest.raises(ValueError, match="confidence"):
        StoppingRule(0.05, confidence=1.0)
    with pytest.raises(ValueError, match="threshold"):
        StoppingRule(-0.01)
    with pytest.raises(ValueError, match="max_pairs"):
        StoppingRule(0.05, min_pairs=10, max_pairs=5)
