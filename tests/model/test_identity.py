"""Counter-based identities: bijections, Luhn, device changes, contacts."""
import numpy as np
import pytest
from scipy import stats

from cdrexp.model import _identity as ident
from cdrexp.model._hashing import FeistelPermutation, hash_u64, stream_key

from model_helpers import P_FLOOR, luhn_valid


def test_luhn_validator_knows_a_real_imei():
    assert luhn_valid(490154203237518)      # the textbook IMEI example
    assert not luhn_valid(490154203237517)
    assert ident.luhn_check_digit(np.array([49015420323751]))[0] == 8


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 4097])
def test_feistel_is_a_bijection_of_its_domain(size):
    perm = FeistelPermutation(stream_key(1, "t"), size)
    out = perm(np.arange(size))
    assert sorted(out.tolist()) == list(range(size))


def test_feistel_scatters_consecutive_indices():
    out = FeistelPermutation(stream_key(3, "t"), 10**7)(np.arange(10_000))
    gaps = np.diff(out)
    # an affine map would give a single gap value; a random-like one gives thousands
    assert np.unique(gaps).size > 5000
    # and the values spread over the whole domain (uniform deciles, chi-square)
    counts = np.bincount(out // 10**6, minlength=10)
    assert stats.chisquare(counts).pvalue > P_FLOOR


def test_hash_is_a_pure_function_of_its_counters():
    a = hash_u64(5, np.arange(100), 3)
    b = hash_u64(5, np.arange(50, 150), 3)
    assert np.array_equal(a[50:], b[:50])
    assert not np.array_equal(a, hash_u64(6, np.arange(100), 3))
    assert not np.array_equal(a, hash_u64(5, np.arange(100), 4))


def test_imeis_are_luhn_valid_with_8_digit_tac():
    imei = ident.imeis(11, np.arange(20_000), np.arange(20_000) % 5)
    assert all(luhn_valid(int(x)) for x in imei)
    assert np.all((imei >= 10**14) & (imei < 10**15))        # 15 digits, TAC starts 1..9
    assert np.array_equal(imei, ident.imeis(11, np.arange(20_000), np.arange(20_000) % 5))


def test_device_versions_persist_and_change_at_the_configured_rate():
    p, subs, days = 0.2, 20_000, 8
    idx = np.arange(subs)
    versions = np.stack([ident.device_versions(9, idx, d, p) for d in range(days)])
    assert np.all(versions[0] == 0)
    steps = np.diff(versions, axis=0)
    assert set(np.unique(steps).tolist()) <= {0, 1}     # non-decreasing, one change a day
    for day_changes in steps.sum(axis=1):                # Binomial(subs, p) per day
        assert stats.binomtest(int(day_changes), subs, p).pvalue > P_FLOOR
    # the change process does not depend on which subscribers are asked about
    assert np.array_equal(ident.device_versions(9, idx[::7], 5, p), versions[5][::7])


@pytest.mark.parametrize("p, expected", [(0.0, 0), (1.0, 6)])
def test_device_versions_at_the_edges(p, expected):
    assert np.all(ident.device_versions(1, np.arange(100), 6, p) == expected)


def test_contacts_exclude_self_and_cover_the_population():
    subs = 50
    idx = np.repeat(np.arange(subs), 400)
    rank = np.tile(np.arange(400), subs)
    j = ident.contacts(4, subs, idx, rank)
    assert np.all(j != idx)
    assert np.all((j >= 0) & (j < subs))
    # every other subscriber is reachable, uniformly (chi-square over j for one i)
    counts = np.bincount(j[idx == 0], minlength=subs)
    assert counts[0] == 0
    assert stats.chisquare(counts[1:]).pvalue > P_FLOOR


def test_contact_ranks_follow_one_over_rank():
    k = 30
    harmonic = ident.harmonic_table(40)
    u = np.random.default_rng(0).random(200_000)
    ranks = ident.contact_ranks(harmonic, np.full(u.size, k), u)
    assert ranks.min() >= 0 and ranks.max() <= k - 1
    weights = 1.0 / np.arange(1, k + 1)
    expected = u.size * weights / weights.sum()
    observed = np.bincount(ranks, minlength=k)
    assert stats.chisquare(observed, expected).pvalue > P_FLOOR


def test_contact_counts_are_a_truncated_normal():
    mean, subs = 30.0, 40_000
    k = ident.contact_counts(2, mean, subs, np.arange(subs))
    z = (k.mean() - (mean - 0.5)) / (0.3 * mean / np.sqrt(subs))   # trunc lowers by ~0.5
    assert abs(z) < 4.5
    assert k.min() >= 0
    assert np.all(ident.contact_counts(2, mean, 10, np.arange(10)) <= 9)   # capped


def test_contact_ranks_invert_the_harmonic_table_exactly():
    harmonic = ident.harmonic_table(5000)
    rng = np.random.default_rng(5)
    k = rng.integers(1, 5001, 300_000)
    u = rng.random(k.size)
    exact = np.searchsorted(harmonic, u * harmonic[k], side="right") - 1
    assert np.array_equal(ident.contact_ranks(harmonic, k, u), np.minimum(exact, k - 1))
    # at the edges of each rank's interval too
    j = rng.integers(0, 4000, 10_000)
    at_edge = np.concatenate([harmonic[j] / harmonic[5000],
                              np.nextafter(harmonic[j] / harmonic[5000], 0)])
    exact = np.searchsorted(harmonic, at_edge * harmonic[5000], side="right") - 1
    ranks = ident.contact_ranks(harmonic, np.full(at_edge.size, 5000), at_edge)
    assert np.array_equal(ranks, exact)
    assert np.all(np.abs(ranks - np.tile(j, 2)) <= 1)
