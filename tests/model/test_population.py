"""The population: unique identities, pure functions of (seed, i), compact arrays."""
import numpy as np
import pytest
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
    assert np.array_equal(rebuilt.msisdn, default_population.msisdn)


def test_activity_has_mean_one():
    assert np.all(build_population(model_cfg(subs=100)).activity == 1.0)
    pop = build_population(model_cfg(subs=40_000, activity_sigma=0.5))
    sd = np.sqrt(np.exp(0.25) - 1.0)                   # lognormal sd at mean 1
    assert abs(pop.activity.mean() - 1.0) < 4.5 * sd / np.sqrt(pop.subs)
    assert abs(np.log(pop.activity).std() - 0.5) < 0.02
    assert stats.kstest(np.log(pop.activity), "norm", args=(-0.125, 0.5)).pvalue > P_FLOOR


def test_contact_counts_stay_within_the_harmonic_table():
    """The table is sized by the largest count ``contact_counts`` can give, not by a pass
    over every subscriber; the counts of 200,000 subscribers stay below that bound."""
    from cdrexp.model.population import most_contacts

    pop = build_population(model_cfg(subs=200_000))
    k = pop.n_contacts
    assert k.dtype.itemsize <= 4
    assert 28 < k.mean() < 31
    assert pop.harmonic.size == most_contacts(model_cfg().model, pop.subs) + 1
    assert k.max() < pop.harmonic.size
    assert most_contacts(model_cfg().model, 5) == 4        # capped at subs - 1


@pytest.mark.parametrize("mean", [30, 600])     # a guess table; the ln guess (> 1024)
def test_contact_ranks_do_not_depend_on_the_tables_length(mean):
    """Why sizing the table by a bound changes no record: a rank is the same from the
    table of the largest count drawn and from any longer one."""
    from cdrexp.model._identity import contact_ranks, harmonic_table

    rng = np.random.default_rng(5)
    k = rng.integers(1, 2 * mean, 200_000)
    u = rng.random(k.size)
    exact = contact_ranks(harmonic_table(int(k.max())), k, u)
    for longer in (int(k.max()) + 1, 4 * mean, 3000):
        assert np.array_equal(contact_ranks(harmonic_table(longer), k, u), exact)


def test_chunks_and_single_subscribers_match_the_whole_population(default_population):
    """A unit computes its chunk (``subscribers``) and looks up or computes the values of
    others (``*_of``): the values the whole population has at those indices."""
    pop, whole = default_population, default_population.subscribers()
    chunk = pop.subscribers(1000, 700)
    for name in ("msisdn", "imsi", "mccmnc", "home_cell", "activity", "n_contacts"):
        assert np.array_equal(getattr(chunk, name), getattr(whole, name)[1000:1700])
        assert getattr(chunk, name).dtype == getattr(whole, name).dtype
    idx = np.random.default_rng(2).integers(0, pop.subs, 500)
    assert np.array_equal(pop.msisdn_of(idx), whole.msisdn[idx])
    assert np.array_equal(pop.mccmnc_of(idx), whole.mccmnc[idx])
    assert np.array_equal(pop.imsi_of(idx), whole.imsi[idx])
    assert np.array_equal(pop.home_cell_of(idx), whole.home_cell[idx])


def test_population_holds_8_bytes_per_subscriber():
    """Issue 19: only the MSISDN is stored (units look up their contacts' numbers);
    every other value is computed where it is needed (30 bytes per subscriber were
    stored before, 3 GB at 100M)."""
    from cdrexp.model.population import subscriber_arrays

    cfg = model_cfg(subs=50_000)
    assert {k: d.itemsize for k, (_, d) in subscriber_arrays(cfg).items()} == {"msisdn": 8}
    small, big = build_population(model_cfg(subs=1_000)), build_population(cfg)
    assert big.nbytes - small.nbytes == 8 * (50_000 - 1_000)
    assert small.nbytes < 200_000
