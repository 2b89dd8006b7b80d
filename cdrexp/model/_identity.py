"""Subscriber identities as pure functions of (seed, subscriber index, ...).

MSISDN and IMSI are unique by construction (seeded bijections), IMEIs carry a standard
Luhn check digit, device changes and contacts are counter-based so any process can compute
them for any subscriber without having built anything first.
"""
from __future__ import annotations

import numpy as np

from ._hashing import (FeistelPermutation, below, hash_u64, standard_normal, stream_key,
                       unit_float)

MSIN_SPACE = 10 ** 10          # IMSI = mccmnc * 10^10 + msin
NUMBER_SPACE = 10 ** 7         # MSISDN = prefix * 10^7 + n
_TAC_LOW, _TAC_SPAN = 10 ** 7, 9 * 10 ** 7   # 8-digit TAC, first digit non-zero
_SERIAL_SPACE = 10 ** 6


def msisdns(seed: int, prefixes, idx: np.ndarray) -> np.ndarray:
    """Unique MSISDNs: a bijection of [0, len(prefixes) * 10^7) splits into prefix and n."""
    perm = FeistelPermutation(stream_key(seed, "msisdn"), len(prefixes) * NUMBER_SPACE)
    code = perm(idx)
    prefix = np.asarray(prefixes, dtype=np.int64)[code // NUMBER_SPACE]
    return prefix * NUMBER_SPACE + code % NUMBER_SPACE


def mccmnc_codes(seed: int, pool, idx: np.ndarray) -> np.ndarray:
    pool = np.asarray(pool, dtype=np.int32)
    return pool[below(hash_u64(stream_key(seed, "mccmnc"), idx), len(pool))]


def imsis(seed: int, mccmnc: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """IMSI with a unique MSIN per subscriber (a bijection of [0, 10^10))."""
    msin = FeistelPermutation(stream_key(seed, "msin"), MSIN_SPACE)(idx)
    return mccmnc.astype(np.int64) * MSIN_SPACE + msin


def _luhn_group_table() -> np.ndarray:
    """Luhn digit sum of every 4-digit group whose rightmost digit is doubled."""
    v = np.arange(10_000)
    total = np.zeros(v.size, dtype=np.int64)
    for pos in range(4):
        d = (v // 10 ** pos) % 10
        if pos % 2 == 0:
            d = 2 * d - 9 * (d > 4)
        total += d
    return total.astype(np.int8)


_LUHN_GROUP = _luhn_group_table()
# (10 - total % 10) % 10 for every digit sum a 19-digit body can have
_CHECK_DIGIT = (10 - np.arange(200, dtype=np.int64) % 10) % 10


def luhn_check_digit(body: np.ndarray) -> np.ndarray:
    """Standard Luhn: double every second digit starting from the rightmost body digit.

    Digits are summed four at a time by table lookup (groups of even length keep the
    doubling parity), so a 14-digit body costs four lookups instead of 14 divisions.
    """
    rest = np.asarray(body, dtype=np.int64).copy()
    total = np.zeros(rest.shape, dtype=np.int64)
    while True:
        # the remainder as rest - 10^4 (rest // 10^4): numpy divides by a scalar fast
        # (libdivide), its ``%`` is a hardware division per element
        quotient = rest // 10_000
        rest -= quotient * 10_000
        total += _LUHN_GROUP[rest]
        rest = quotient
        if not rest.any():
            break
    return _CHECK_DIGIT[total]


def imeis(seed: int, idx: np.ndarray, version) -> np.ndarray:
    """The IMEI of device ``version`` (0 = the one held on the run's first day)."""
    key = stream_key(seed, "imei")
    h = hash_u64(key, idx, version)
    tac = _TAC_LOW + below(h, _TAC_SPAN)
    serial = below(h << np.uint64(32), _SERIAL_SPACE)   # the low 32 bits, independent
    body = tac * _SERIAL_SPACE + serial
    return body * 10 + luhn_check_digit(body)


def device_versions(seed: int, idx: np.ndarray, day_index: int, p: float) -> np.ndarray:
    """How many device changes subscriber ``idx`` had on days 1..day_index.

    A Bernoulli(p) change per subscriber-day is the same process as geometric gaps
    between changes; drawing the gaps (one hash per change, not per day) keeps this cheap
    for late days of long runs. The k-th change day is a pure function of (seed, i, k).
    """
    idx = np.asarray(idx, dtype=np.int64)
    version = np.zeros(idx.shape, dtype=np.int64)
    if day_index <= 0 or p <= 0.0:
        return version
    if p >= 1.0:
        version[:] = day_index
        return version
    key = stream_key(seed, "device-change")
    log_q = np.log1p(-p)
    change_day = np.zeros(idx.shape, dtype=np.int64)
    live = np.arange(idx.size)
    k = 0
    while live.size:
        k += 1
        u = unit_float(hash_u64(key, idx[live], k))
        change_day[live] += 1 + np.floor(np.log(u) / log_q).astype(np.int64)
        changed = change_day[live] <= day_index
        live = np.compress(changed, live)
        version[live] += 1
    return version


def harmonic_table(max_k: int) -> np.ndarray:
    """H[j] = 1 + 1/2 + ... + 1/j, H[0] = 0: the cumulative weights of ranks 0..j-1."""
    return np.concatenate(([0.0], np.cumsum(1.0 / np.arange(1, max_k + 1))))


_EULER_GAMMA = 0.5772156649015329


# up to this many contacts the rank guess is a table lookup (at most ~19k entries)
_GUESS_TABLE_MAX_K = 1024
_guess_tables: dict[bytes, tuple[float, np.ndarray]] = {}


def _guess_table(harmonic: np.ndarray) -> tuple[float, np.ndarray]:
    """(1 / step, T): T[i] = the rank r with H[r] <= i step < H[r + 1]. The step is half
    the smallest gap 1/max_k of the table, so two neighbouring cells hold at most one
    H[j]: for any x, T[int(x / step)] is the rank of x to within one, even when the
    float product x / step lands in the neighbouring cell."""
    key = harmonic.tobytes()
    got = _guess_tables.get(key)
    if got is None:
        max_k = harmonic.size - 1
        step = 1.0 / (2 * max_k)
        grid = np.arange(int(harmonic[-1] / step) + 2) * step
        got = (1.0 / step, np.searchsorted(harmonic, grid, side="right") - 1)
        if len(_guess_tables) > 8:
            _guess_tables.clear()
        _guess_tables[key] = got
    return got


def contact_ranks(harmonic: np.ndarray, k: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Rank r < k (k >= 1) drawn with weight 1/(r+1): the r with H[r] <= u H[k] < H[r+1].

    A guess within one of the rank, then one comparison each way makes it exact (any
    such guess gives the same result); cheaper than a binary search per record. The
    guess is a table lookup (``_guess_table``) for tables of up to 1024 contacts, else
    H[j] ~ ln(j + 1/2) + gamma (its error is below the spacing 1/(j+1) of the table).
    """
    x = u * harmonic.take(k)         # .take: faster than fancy indexing
    if 1 <= harmonic.size - 1 <= _GUESS_TABLE_MAX_K:
        inv_step, table = _guess_table(harmonic)
        cell = x * inv_step
        r = table.take(cell.astype(np.int64))
    else:
        t = x - _EULER_GAMMA
        np.exp(t, out=t)
        t -= 0.5
        r = t.astype(np.int64)
    last = np.subtract(k, 1, dtype=np.int64)
    # r >= 0 throughout, so clip(r, 0, last) is a minimum: x = u H[k] >= 0; the table
    # holds ranks >= 0 (H[0] = 0); exp(x - gamma) - 1/2 > 0; and H[r] > x >= 0 needs
    # r >= 1 (H[0] = 0), so the step down never goes below 0
    np.minimum(r, last, out=r)
    r -= harmonic.take(r) > x
    r += harmonic[1:].take(r) <= x      # H[r + 1] without the r + 1 array
    np.minimum(r, last, out=r)      # x rounding up to H[k] itself
    return r


def contacts(seed: int, subs: int, idx: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Contact ``rank`` of subscriber ``idx``: any other subscriber of the population."""
    h = hash_u64(stream_key(seed, "contact"), idx, rank)
    j = below(h, subs - 1)
    return j + (j >= idx)


def contact_counts(seed: int, mean: float, subs: int, idx: np.ndarray) -> np.ndarray:
    """k ~ trunc(max(N(mean, 0.3 mean), 0)), capped at subs - 1."""
    z = standard_normal(stream_key(seed, "contacts-k"), idx)
    z *= 0.3 * mean                     # mean + 0.3 mean z, in place
    z += mean
    np.maximum(z, 0.0, out=z)
    k = z.astype(np.int64)              # the cast truncates (z >= 0: as np.trunc)
    np.minimum(k, subs - 1, out=k)
    return k
