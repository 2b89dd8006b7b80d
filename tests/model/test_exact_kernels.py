"""Issue 19: the branch-free replacements of ``np.where`` and ``%`` give exactly the
values of the forms they replace (the output must stay byte-identical)."""
import numpy as np
import pytest

from cdrexp.model._events import blend, choose
from cdrexp.model import _identity as ident
from cdrexp.model._hashing import hash_u64
from cdrexp.model._identity import luhn_check_digit
from cdrexp.model.records import _below_share
from model_helpers import luhn_valid


@pytest.mark.parametrize("if_true, if_false", [(3, 5), (0, 1), (1, 0), (-7, 100)])
def test_choose_is_where(if_true, if_false):
    mask = np.random.default_rng(1).random(10_001) < 0.4
    got = choose(mask, if_true, if_false)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, np.where(mask, if_true, if_false))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_blend_is_where(dtype):
    rng = np.random.default_rng(2)
    info = np.iinfo(dtype)
    a = rng.integers(info.min // 2, info.max // 2, 10_001, dtype=dtype)
    b = rng.integers(info.min // 2, info.max // 2, 10_001, dtype=dtype)
    mask = rng.random(a.size) < 0.7
    got = blend(mask, a, b)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.where(mask, a, b))


def test_below_share_is_the_compare_with_where():
    rng = np.random.default_rng(3)
    u = rng.random(50_000)
    u[:4] = [0.25, 0.5, 0.0, np.nextafter(0.5, 0)]     # ties at the thresholds
    first = rng.random(u.size) < 0.3
    first[:4] = [True, False, True, False]
    np.testing.assert_array_equal(_below_share(u, first, 0.25, 0.5),
                                  u < np.where(first, 0.25, 0.5))
    np.testing.assert_array_equal(_below_share(u, first, 0.5, 0.5),   # equal shares
                                  u < np.where(first, 0.5, 0.5))


def test_luhn_check_digit_matches_a_digit_by_digit_validator():
    body = np.random.default_rng(4).integers(0, 10 ** 18, 2_000)
    body[:3] = [0, 9, 10 ** 18 - 1]
    check = luhn_check_digit(body)
    assert all(luhn_valid(int(b) * 10 + int(c)) for b, c in zip(body, check))


@pytest.mark.parametrize("max_k", [1, 2, 7, 70, 1024, 1025])
def test_contact_ranks_table_guess_is_exact(max_k):
    """The table-guess path (max_k <= 1024) and the exp path (beyond) both give the
    exact inverse of the harmonic table, at the edges of each rank's interval too."""
    harmonic = ident.harmonic_table(max_k)
    rng = np.random.default_rng(max_k)
    k = rng.integers(1, max_k + 1, 100_000)
    u = rng.random(k.size)
    j = rng.integers(0, k[:5_000])                 # u landing on H[j] / H[k] and just below
    edge = harmonic[j] / harmonic[k[:5_000]]
    u[:5_000], u[5_000:10_000] = edge, np.nextafter(edge, 0)
    u[10_000:10_010] = np.nextafter(1.0, 0)
    exact = np.searchsorted(harmonic, u * harmonic[k], side="right") - 1
    np.testing.assert_array_equal(ident.contact_ranks(harmonic, k, u),
                                  np.minimum(exact, k - 1))


@pytest.mark.parametrize("counter", [
    np.arange(10_000) % 70,                                    # contact ranks
    np.repeat(np.arange(500_000, 502_000), 5),                 # one chunk's subscribers
    np.repeat(np.arange(-120, 120, dtype=np.int8), 40),        # a narrow dtype below 0
    np.repeat(np.arange(2 ** 63, 2 ** 63 + 50, dtype=np.uint64), 200),
    np.arange(10_000),                                         # no repeats: no table
])
def test_hash_of_repeating_counters_is_the_direct_mix(counter):
    """``hash_u64`` mixes a counter of few distinct values once per value (a table);
    every element gets exactly the hash of the direct computation."""
    from cdrexp.model._hashing import _GOLDEN, _MASK64, mix64
    key = 0x1234_5678_9ABC_DEF0
    direct = mix64(counter.astype(np.uint64) + np.uint64((key + _GOLDEN) & _MASK64))
    np.testing.assert_array_equal(hash_u64(key, counter), direct)
    other = np.arange(counter.size)
    two = mix64(counter.astype(np.uint64) + np.uint64((key + 2 * _GOLDEN) & _MASK64))
    np.testing.assert_array_equal(hash_u64(key, other, counter),
                                  mix64(hash_u64(key, other) ^ two))


def test_hash_u64_last_is_one_hash_per_last_counter():
    """The counters' part mixed once for several last counters: the same hashes."""
    from cdrexp.model._hashing import hash_u64_last
    idx = np.arange(-5, 70_000, 3)
    got = hash_u64_last(0xDEAD_BEEF, (idx,), (0, 1, 2 ** 40))
    for h, v in zip(got, (0, 1, 2 ** 40)):
        np.testing.assert_array_equal(h, hash_u64(0xDEAD_BEEF, idx, v))


def test_standard_normal_in_place_is_the_box_muller_expression():
    from cdrexp.model._hashing import standard_normal, unit_float
    key, idx = 987654321, np.arange(100_000)
    u1 = unit_float(hash_u64(key, idx, 0))
    u2 = unit_float(hash_u64(key, idx, 1))
    np.testing.assert_array_equal(standard_normal(key, idx),
                                  np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2))


@pytest.mark.parametrize("mean, subs", [(30.0, 10 ** 6), (2.0, 50), (0.0, 10), (3000.0, 40)])
def test_contact_counts_in_place_are_the_clipped_truncated_normal(mean, subs):
    from cdrexp.model._hashing import standard_normal, stream_key
    idx = np.arange(20_000)
    z = standard_normal(stream_key(5, "contacts-k"), idx)
    expected = np.minimum(np.trunc(np.maximum(mean + 0.3 * mean * z, 0.0)).astype(np.int64),
                          subs - 1)
    np.testing.assert_array_equal(ident.contact_counts(5, mean, subs, idx), expected)


def test_counts_by_type_are_the_bincount():
    from cdrexp.model import Records
    from cdrexp.model.schema import EVENT_TYPES
    codes = np.random.default_rng(6).integers(0, 3, 100_001).astype(np.int8)
    codes[:50] = 2
    got = Records({"event_type": codes}, words={"event_type": EVENT_TYPES}).counts_by_type()
    assert got == dict(zip(EVENT_TYPES, np.bincount(codes, minlength=3).tolist()))
    empty = Records({"event_type": np.zeros(0, np.int8)}, words={"event_type": EVENT_TYPES})
    assert empty.counts_by_type() == dict.fromkeys(EVENT_TYPES, 0)


@pytest.mark.parametrize("probs", [[0.2, 0.5, 0.3], [1.0], [0.0, 1.0], [0.5, 0.5, 0.0],
                                   [0.1, 0.1, 0.2, 0.3, 0.3], [0.0, 0.0, 0.7, 0.3]])
def test_categorical_is_the_sum_of_threshold_comparisons(probs):
    from cdrexp.model._events import _thresholds, categorical
    u = np.random.default_rng(7).random(30_001)
    thresholds = _thresholds(tuple(probs))
    u[:len(thresholds)] = thresholds            # ties land in the upper category
    expected = np.zeros(u.size, np.int64)
    for t in thresholds:
        expected += u >= t
    got = categorical(u, np.asarray(probs))
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, expected)


def test_to_arrow_packs_a_shared_mask_once_with_each_columns_nulls():
    """Columns sharing one validity mask (and one with its own) get their own nulls."""
    pa = pytest.importorskip("pyarrow")
    from cdrexp.model import Records
    rng = np.random.default_rng(8)
    shared, own = rng.random(1_001) < 0.4, rng.random(1_001) < 0.9
    values = {name: rng.integers(0, 100, 1_001) for name in ("a", "b", "c", "d")}
    records = Records(values, {"a": shared, "b": shared, "c": own})
    table = records.to_arrow()
    for name, mask in (("a", shared), ("b", shared), ("c", own), ("d", None)):
        expected = pa.array(values[name], mask=None if mask is None else ~mask)
        assert table.column(name).chunk(0).equals(expected), name


def _sorted_local_seconds_before(rng, n, hour_share):
    """sorted_local_seconds as it was at 7f19873 (numpy scalars in the hour loop)."""
    spacing = rng.standard_exponential(n + 1)
    np.cumsum(spacing, out=spacing)
    u = spacing[:-1]
    u /= spacing[-1]
    cdf = np.concatenate(([0.0], np.cumsum(hour_share)))
    cdf /= cdf[-1]
    bounds = np.searchsorted(u, cdf, side="left")
    hours = [(h, bounds[h], bounds[h + 1]) for h in range(24) if bounds[h] < bounds[h + 1]]
    for hour, a, b in hours:
        within = u[a:b]
        within -= cdf[hour]
        within *= 3600.0 / (cdf[hour + 1] - cdf[hour])
    np.clip(u, 0, 3599, out=u)
    seconds = u.astype(np.int32)
    for hour, a, b in hours:
        seconds[a:b] += hour * 3600
    return seconds


@pytest.mark.parametrize("seed", [1, 2])
def test_sorted_local_seconds_are_those_of_the_numpy_scalar_loop(seed):
    from cdrexp.config import ModelConfig
    from cdrexp.model._clock import sorted_local_seconds
    share = np.asarray(ModelConfig().diurnal_weekday, dtype=np.float64)
    zero_hours = share.copy()
    zero_hours[[0, 5, 23]] = 0.0
    for profile in (share / share.sum(), zero_hours / zero_hours.sum()):
        got = sorted_local_seconds(np.random.default_rng(seed), 200_001, profile)
        expected = _sorted_local_seconds_before(np.random.default_rng(seed), 200_001, profile)
        np.testing.assert_array_equal(got, expected)
