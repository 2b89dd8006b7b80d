"""The population: unique identities, pure functions of (seed, i), compact arrays."""
import numpy as np
from scipy import stats

from cdrexp.model import Population, build_population
from model_helpers import P_FLOOR, luhn_valid, model_cfg


def test_identities_are_unique_and_well_formed(default_cfg, default_population):
    pop, m = default_population, default_cfg.model
    assert pop.subs == default_cfg.subs
    assert np.unique(pop.msisdn).size == pop.subs
    assert np.unique(pop.imsi).size == pop.subs
    assert set((pop.msisdn // 10**7).tolist()) <= set(m.prefixes)
    assert set((pop.imsi // 10**10).tolist()) <= set(m.mccmnc_pool)
    assert np.array_equal(pop.imsi // 10**10, pop.mccmnc)
    assert all(luhn_valid(int(x)) for x in pop.imei)
    assert np.all((pop.home_cell >= 0) & (pop.home_cell < pop.cells))


def test_identities_are_pure_functions_of_seed_and_index(default_population):
    bigger = build_population(model_cfg(subs=5000))
    for name in ("msisdn", "imsi", "imei", "mccmnc", "home_cell", "activity"):
        assert np.array_equal(getattr(bigger, name)[:3000], getattr(default_population, name))
    other_seed = build_population(model_cfg(seed=8))
    assert not np.array_equal(other_seed.msisdn, default_population.msisdn)
    assert not np.array_equal(other_seed.imei, default_population.imei)


def test_msisdn_uses_every_prefix_uniformly():
    pop = build_population(model_cfg(subs=20_000))
    counts = np.unique(pop.msisdn // 10**7, return_counts=True)[1]
    assert counts.size == 4
    assert stats.chisquare(counts).pvalue > P_FLOOR


def test_msisdns_fill_the_whole_number_space():
    """subs = len(prefixes) * 10^7 exactly is allowed: the bijection then uses every
    number (checked on a single short prefix space to keep it small)."""
    cfg = model_cfg(subs=20, prefixes=[31612], contacts_mean=3)
    from cdrexp.model._identity import msisdns
    numbers = msisdns(7, [31612], np.arange(10**7))
    assert np.all(numbers // 10**7 == 31612)
    assert np.all(np.bincount(numbers % 10**7, minlength=10**7) == 1)   # each number once
    assert build_population(cfg).msisdn.size == 20


def test_arrays_round_trip_without_copying(default_population):
    arrays = default_population.arrays()
    rebuilt = Population.from_arrays(arrays)
    for name, arr in arrays.items():
        assert np.shares_memory(getattr(rebuilt, name), arr)
    assert rebuilt.nbytes == default_population.nbytes
    per_subscriber = sum(a.nbytes for n, a in arrays.items() if a.size == rebuilt.subs)
    assert per_subscriber / rebuilt.subs <= 64


def test_activity_has_mean_one():
    assert np.all(build_population(model_cfg(subs=100)).activity == 1.0)
    pop = build_population(model_cfg(subs=40_000, activity_sigma=0.5))
    sd = np.sqrt(np.exp(0.25) - 1.0)                   # lognormal sd at mean 1
    assert abs(pop.activity.mean() - 1.0) < 4.5 * sd / np.sqrt(pop.subs)
    assert abs(np.log(pop.activity).std() - 0.5) < 0.02
    assert stats.kstest(np.log(pop.activity), "norm", args=(-0.125, 0.5)).pvalue > P_FLOOR


def test_contact_counts_are_stored(default_population):
    k = default_population.n_contacts
    assert k.dtype.itemsize <= 4
    assert 28 < k.mean() < 31
    assert default_population.harmonic.size == k.max() + 1


def test_population_holds_30_bytes_per_subscriber():
    """Issue 19: the day-0 IMEI is computed, not stored (8 of 38 bytes per subscriber,
    0.8 GB at 100M); what units see is the same (``Population.imei`` and the records'
    tests check the values)."""
    from cdrexp.config import GeneratorConfig
    from cdrexp.model import build_population
    from cdrexp.model.population import subscriber_arrays

    cfg = GeneratorConfig(subs=50_000)
    per_sub = sum(dtype.itemsize for _, dtype in subscriber_arrays(cfg).values())
    assert per_sub == 30 and "imei" not in subscriber_arrays(cfg)
    pop = build_population(cfg)
    catalog = pop.cell_lat.nbytes + pop.cell_lon.nbytes + pop.cell_rat.nbytes
    assert pop.nbytes - catalog - pop.harmonic.nbytes - pop.seed.nbytes == 30 * cfg.subs
