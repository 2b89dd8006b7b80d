"""Synthetic pairs for the A/B statistics: noise models of per-pair log-ratios, and one
whole gate (every scheduled look) on them."""
import math

import numpy as np

from cdrexp.ab._stats import UNDECIDED, Decision, StoppingRule


def normal(sd):
    return lambda rng, n: rng.normal(0.0, sd, n)


def heavy_tailed(sd):
    """Student t with 3 degrees of freedom scaled to standard deviation ``sd``: most
    pairs quiet, now and then one hit hard by someone else's burst."""
    return lambda rng, n: rng.standard_t(3, n) * sd / math.sqrt(3.0)


def two_runs_lognormal_with_outliers(sd):
    """The log-ratio of two exchangeable runs, each lognormal with a 10 % chance of a
    +50 % hit: symmetric, bimodal tails, not normal."""
    def draw(rng, n):
        runs = rng.normal(0.0, sd / math.sqrt(2), (2, n)) + \
            np.log1p(0.5 * (rng.random((2, n)) < 0.1))
        return runs[1] - runs[0]
    return draw


def abba_biased(sd, bias):
    """Normal noise plus an order effect: whoever runs second gains ``bias`` (log)."""
    def draw(rng, n):
        sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)   # even pairs: base first
        return rng.normal(0.0, sd, n) - bias * sign
    return draw


def simulate_gate(rule: StoppingRule, true_ratio: float, noise, rng) -> Decision:
    """One gate: pairs drawn up to max_pairs, decided at the first decisive look."""
    logs = math.log(true_ratio) + noise(rng, rule.max_pairs)
    for n in rule.schedule:
        d = rule.decide(logs[:n])
        if d.verdict != UNDECIDED or n == rule.max_pairs:
            return d
    raise AssertionError("the schedule ends at max_pairs")


def verdict_rates(rule, true_ratio, noise, trials, seed) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    verdicts = [simulate_gate(rule, true_ratio, noise, rng).verdict for _ in range(trials)]
    return {v: verdicts.count(v) / trials for v in set(verdicts)}
