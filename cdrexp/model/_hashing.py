"""Counter-based randomness: values that are pure functions of (seed, subscriber, ...).

Identities, contacts and device changes must be the same whichever worker computes them
and for any subscriber index (a mirrored call needs its counterparty's IMEI), so they come
from a hash of the counters rather than from a sequential random stream. The mixer is
splitmix64's finaliser, applied to uint64 arrays (numpy wraps uint64 arithmetic).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31 = np.uint64(30), np.uint64(27), np.uint64(31)
_TWO53 = 2.0 ** -53


def _finalise_int(x: int) -> int:
    """``mix64`` on a Python int."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix_int(x: int) -> int:
    """splitmix64 on a Python int (for keys, computed once)."""
    return _finalise_int(x + _GOLDEN)


@lru_cache(maxsize=256)
def stream_key(seed: int, stream: str) -> int:
    """A 64-bit key per (seed, purpose), so purposes draw independent values."""
    k = _mix_int(seed & _MASK64)
    for byte in stream.encode():
        k = _mix_int(k ^ byte)
    return k


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, in place on a uint64 array (returns it)."""
    shifted = np.empty_like(x)      # one scratch array for the three shifts
    x ^= np.right_shift(x, _U30, out=shifted)
    x *= _C1
    x ^= np.right_shift(x, _U27, out=shifted)
    x *= _C2
    x ^= np.right_shift(x, _U31, out=shifted)
    return x


def hash_u64(key: int, *counters) -> np.ndarray:
    """A uint64 hash of ``key`` and one or more counter arrays (broadcast together)."""
    h = None
    for i, c in enumerate(counters):
        add = (key + (i + 1) * _GOLDEN) & _MASK64
        if np.ndim(c) == 0:   # a scalar counter: mix it in Python (no scalar overflow warnings)
            m = np.uint64(_finalise_int(int(c) + add))
        else:
            m = _mixed_counter(np.asarray(c), add)
        if h is None:
            h = m
        elif isinstance(h, np.ndarray) and _fits(h.shape, np.shape(m)):
            h ^= m                                   # h is this function's own array
            mix64(h)
        else:
            h = h ^ m
            h = mix64(h) if isinstance(h, np.ndarray) else np.uint64(_finalise_int(int(h)))
    if not isinstance(h, np.ndarray):
        raise ValueError("hash_u64 needs at least one array counter")
    return h


def _fits(shape: tuple, other: tuple) -> bool:
    """Whether ``other`` broadcasts into ``shape`` (so ``^=`` works in place); the
    common cases without ``np.broadcast_shapes`` (~10 us a call)."""
    return other == shape or other == () or shape == np.broadcast_shapes(shape, other)


_TABLE_MIN_SIZE = 4096


def _mixed_counter(c: np.ndarray, add: int) -> np.ndarray:
    """``mix64(c + add)`` as a new uint64 array. A counter of few distinct values over
    many elements (contact ranks 0..k, the subscribers of one chunk) is mixed once per
    value of its range and gathered: a table lookup instead of eight passes."""
    if c.dtype.kind in "iu" and c.size >= _TABLE_MIN_SIZE:
        lo, hi = int(c.min()), int(c.max())
        if hi - lo < c.size // 4 and hi < 2 ** 63:
            table = np.arange(lo, hi + 1, dtype=np.int64).astype(np.uint64)
            table += np.uint64(add)
            mix64(table)
            return table.take(np.subtract(c, lo, dtype=np.int64) if lo else c)
    m = c.astype(np.uint64)         # a copy: free to work in place
    m += np.uint64(add)
    return mix64(m)


def unit_float(h: np.ndarray) -> np.ndarray:
    """Uniform float64 in (0, 1] from the top 53 bits of a hash (never 0: safe for log).
    ``h`` is shifted in place (callers pass hashes they own)."""
    h >>= np.uint64(11)
    u = h.astype(np.float64)
    u += 1.0
    u *= _TWO53
    return u


def below(h: np.ndarray, n: int) -> np.ndarray:
    """Uniform integers in [0, n) from a hash, by multiply-shift (no modulo bias worth
    speaking of for n < 2^32; exact modulo beyond that)."""
    if n < (1 << 32):
        j = h >> np.uint64(32)
        j *= np.uint64(n)
        j >>= np.uint64(32)
        return j.view(np.int64)          # < 2^32: the same values as a cast
    return (h % np.uint64(n)).astype(np.int64)


def hash_u64_last(key: int, counters: tuple, last: tuple) -> list:
    """``[hash_u64(key, *counters, v) for v in last]`` (scalars ``v``), the counters'
    part mixed once for all of them."""
    first = hash_u64(key, *counters)
    i = len(counters)
    add = (key + (i + 1) * _GOLDEN) & _MASK64
    out = []
    for v in last:
        h = first.copy()
        h ^= np.uint64(_finalise_int(int(v) + add))
        out.append(mix64(h))
    return out


def standard_normal(key: int, idx: np.ndarray) -> np.ndarray:
    """N(0, 1) per counter by Box-Muller on two hashed uniforms
    (``sqrt(-2 log u1) cos(2 pi u2)``, computed in place)."""
    h1, h2 = hash_u64_last(key, (idx,), (0, 1))
    u1, u2 = unit_float(h1), unit_float(h2)
    np.log(u1, out=u1)
    u1 *= -2.0
    np.sqrt(u1, out=u1)
    u2 *= 2.0 * np.pi
    np.cos(u2, out=u2)
    u1 *= u2
    return u1


class FeistelPermutation:
    """A seeded bijection of [0, size): a balanced Feistel network on the smallest
    even-bit domain 2^(2b) >= size, with cycle-walking back into [0, size).

    An affine map would also be a bijection, but consecutive subscribers would get
    evenly spaced numbers; six Feistel rounds scatter them like random draws.
    """

    ROUNDS = 6

    def __init__(self, key: int, size: int):
        if size < 1:
            raise ValueError("size must be >= 1")
        self.size = size
        bits = max(1, (max(size - 1, 1).bit_length() + 1) // 2)
        self._half = np.uint64(bits)
        self._mask = np.uint64((1 << bits) - 1)
        self._top = np.uint64(64 - bits)
        # round function: the top bits of (half ^ key) * odd multiplier; the product's
        # top bits depend on every input bit through the carries
        self._keys = [(np.uint64(_mix_int(key ^ (2 * r))),
                       np.uint64(_mix_int(key ^ (2 * r + 1)) | 1)) for r in range(self.ROUNDS)]

    def _rounds(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self._half, x & self._mask
        f = np.empty_like(left)     # three arrays rotate through the rounds: no allocation
        for k, mult in self._keys:
            np.bitwise_xor(right, k, out=f)
            f *= mult
            f >>= self._top
            f ^= left
            left, right, f = right, f, left
        left <<= self._half
        left |= right
        return left

    _BLOCK = 1 << 16    # temporaries stay in cache: several times faster on big inputs

    def __call__(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.uint64)
        out = np.empty(idx.shape, dtype=np.int64)
        flat_in, flat_out = idx.reshape(-1), out.reshape(-1)
        for lo in range(0, flat_in.size, self._BLOCK):
            flat_out[lo:lo + self._BLOCK] = self._permute(flat_in[lo:lo + self._BLOCK])
        return out

    def _permute(self, idx: np.ndarray) -> np.ndarray:
        x = self._rounds(idx)
        out_of_range = np.flatnonzero(x >= np.uint64(self.size))
        while out_of_range.size:  # cycle-walking: expected < 4 more passes
            y = self._rounds(x.take(out_of_range))
            x[out_of_range] = y
            out_of_range = np.compress(y >= np.uint64(self.size), out_of_range)
        return x
