"""The population of cdr-model.md section 1: pure functions of (seed, i), one of them kept.

Every per-subscriber value (msisdn, imsi, mccmnc, home cell, activity, contact count,
IMEI) is a counter-based function of (seed, subscriber index). A unit computes its own
chunk's values (``Population.subscribers``, ~0.2 us a subscriber). Only the MSISDN is
stored (8 bytes per subscriber, ``Population.msisdn``): a unit looks up its contacts'
numbers, anyone in the population, ~80,000 a 10,000-subscriber unit; computing them
(a Feistel permutation, ~50 ns each) cost ~10 % of a unit's CPU against ~2 % for the
look-up. The rest of the population is small and fixed: the cell catalog, the harmonic
table of contact ranks and the parameters of those functions. It held 30 bytes per
subscriber before (3 GB at 100M, all of it built by the parent before any worker could
start); the values, and so the output, are the same.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..config import GeneratorConfig, ModelConfig
from . import _identity as ident
from ._hashing import below, hash_u64, standard_normal, stream_key
from .cells import build_cells, cells_by_rat

# Computing in slices keeps the hashing's temporaries in the CPU cache (measured 4-5x
# faster than whole-array passes at 10M subscribers) and bounds their memory.
_BUILD_SLICE = 1 << 16
# the largest |z| standard_normal returns: Box-Muller's sqrt(-2 ln u1) at u1 = 2^-53
_Z_MAX = float(np.sqrt(-2.0 * np.log(2.0 ** -53)))


@dataclass(frozen=True)
class Subscribers:
    """The values of consecutive subscribers ``[first, first + len)``, aligned."""
    msisdn: np.ndarray        # int64
    imsi: np.ndarray          # int64
    mccmnc: np.ndarray        # int32
    home_cell: np.ndarray     # int32, 0-based cell index (cell_id = index + 1)
    activity: np.ndarray      # float32, rate multiplier with mean 1
    n_contacts: np.ndarray    # uint16 / uint32


_COMPUTED = frozenset(f.name for f in fields(Subscribers)) - {"msisdn"}


@dataclass(frozen=True)
class Population:
    """The MSISDN of every subscriber, and small arrays (the cell catalog, the harmonic
    table, what the per-subscriber functions take); all shared as they are by the
    executors."""
    msisdn: np.ndarray        # int64, one per subscriber
    cell_lat: np.ndarray      # float64, cell catalog
    cell_lon: np.ndarray      # float64
    cell_rat: np.ndarray      # int8 index into RATS
    harmonic: np.ndarray      # float64, harmonic numbers H[0..most contacts possible]
    seed: np.ndarray          # uint64[1], the run's seed mod 2^64
    prefixes: np.ndarray      # int64, MSISDN prefixes
    mccmnc_pool: np.ndarray   # int32
    # float64[2]: activity_sigma, contacts_mean
    params: np.ndarray

    @property
    def subs(self) -> int:
        return len(self.msisdn)

    @property
    def cells(self) -> int:
        return len(self.cell_rat)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays().values())

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def adopt(self, arrays: dict[str, np.ndarray]) -> None:
        """Swap in equal arrays held elsewhere (e.g. shared-memory views), so the private
        ones can be freed: the shared-memory executor's parent then holds the population
        once instead of twice."""
        for name, new in arrays.items():
            old = getattr(self, name)
            if old.shape != new.shape or old.dtype != new.dtype:
                raise ValueError(f"population array {name!r}: {new.dtype}{new.shape} "
                                 f"cannot replace {old.dtype}{old.shape}")
        for name, new in arrays.items():
            object.__setattr__(self, name, new)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Population":
        """Rebuild from (possibly shared-memory) views, without copying them."""
        return cls(**{f.name: arrays[f.name] for f in fields(cls)})

    def rat_cells(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell indices grouped by RAT: (indices, start per RAT, count per RAT)."""
        cached = self.__dict__.get("_rat_cells")
        if cached is None:
            cached = cells_by_rat(self.cell_rat)
            object.__setattr__(self, "_rat_cells", cached)
        return cached

    # -- per-subscriber values ------------------------------------------------------------
    @property
    def _seed(self) -> int:
        return int(self.seed[0])

    def msisdn_of(self, idx: np.ndarray) -> np.ndarray:
        return self.msisdn.take(idx)        # .take: faster than fancy indexing

    def mccmnc_of(self, idx: np.ndarray) -> np.ndarray:
        return ident.mccmnc_codes(self._seed, self.mccmnc_pool, idx)

    def imsi_of(self, idx: np.ndarray, mccmnc: np.ndarray | None = None) -> np.ndarray:
        """``mccmnc``: the subscribers' ``mccmnc_of(idx)`` if already at hand."""
        return ident.imsis(self._seed, self.mccmnc_of(idx) if mccmnc is None else mccmnc,
                           idx)

    def home_cell_of(self, idx: np.ndarray) -> np.ndarray:
        return below(hash_u64(stream_key(self._seed, "home-cell"), idx),
                     self.cells).astype(np.int32)

    def subscribers(self, first: int = 0, count: int | None = None) -> Subscribers:
        """Every value of subscribers ``[first, first + count)`` (default: all)."""
        count = self.subs - first if count is None else count
        seed, (sigma, contacts_mean) = self._seed, self.params.tolist()
        out = Subscribers(
            msisdn=self.msisdn[first:first + count], imsi=np.empty(count, np.int64),
            mccmnc=np.empty(count, np.int32), home_cell=np.empty(count, np.int32),
            activity=np.empty(count, np.float32),
            n_contacts=np.empty(count, _contact_dtype(contacts_mean)))
        activity_key = stream_key(seed, "activity")
        for lo in range(0, count, _BUILD_SLICE):
            idx = np.arange(first + lo, first + min(count, lo + _BUILD_SLICE),
                            dtype=np.int64)
            part = slice(lo, lo + idx.size)
            mccmnc = self.mccmnc_of(idx)
            out.mccmnc[part] = mccmnc
            out.imsi[part] = self.imsi_of(idx, mccmnc)
            out.home_cell[part] = self.home_cell_of(idx)
            if sigma > 0:   # lognormal with mean 1: exp(sigma Z - sigma^2 / 2)
                z = standard_normal(activity_key, idx)
                out.activity[part] = np.exp(sigma * z - 0.5 * sigma * sigma)
            else:
                out.activity[part] = 1.0
            out.n_contacts[part] = ident.contact_counts(seed, contacts_mean, self.subs, idx)
        return out

    def __getattr__(self, name: str):
        """``imsi``, ``mccmnc``, ``home_cell``, ``activity``, ``n_contacts``: the whole
        population's values (tests, small populations), computed on each access."""
        if name in _COMPUTED:
            return getattr(self.subscribers(), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def imei(self) -> np.ndarray:
        """int64: the device each subscriber holds on the run's first day (version 0)."""
        return ident.imeis(self._seed, np.arange(self.subs, dtype=np.int64), 0)


def _contact_dtype(contacts_mean: float):
    return np.uint16 if contacts_mean * 4 < np.iinfo(np.uint16).max else np.uint32


def most_contacts(m: ModelConfig, subs: int) -> int:
    """The largest contact count ``contact_counts`` can give: its normal draw is at most
    ``_Z_MAX``. The harmonic table is sized by it, so no pass over every subscriber is
    needed; ``contact_ranks`` is exact whatever the table's length beyond the counts."""
    bound = int(np.trunc(max(m.contacts_mean + 0.3 * m.contacts_mean * _Z_MAX, 0.0)))
    return max(0, min(bound, subs - 1))


def subscriber_arrays(cfg: GeneratorConfig) -> dict[str, tuple[int, np.dtype]]:
    """The per-subscriber arrays of the population: name -> (length, dtype)."""
    return {"msisdn": (cfg.subs, np.dtype(np.int64))}


def build_population(cfg: GeneratorConfig, allocate=None) -> Population:
    """``allocate(subscriber_arrays(cfg)) -> {name: empty array}``: where the
    per-subscriber arrays are built (default: private ``np.empty``). The shared-memory
    executor passes its own, so they are built straight into the segment the workers
    map, never held twice."""
    m, seed, subs = cfg.model, cfg.seed, cfg.subs
    catalog = build_cells(m, seed)
    specs = subscriber_arrays(cfg)
    if allocate is None:
        arrays = {name: np.empty(n, dtype) for name, (n, dtype) in specs.items()}
    else:
        arrays = allocate(specs)
    msisdn = arrays["msisdn"]
    for lo in range(0, subs, _BUILD_SLICE):
        idx = np.arange(lo, min(subs, lo + _BUILD_SLICE), dtype=np.int64)
        msisdn[lo:lo + idx.size] = ident.msisdns(seed, m.prefixes, idx)
    return Population(
        msisdn=msisdn,
        cell_lat=catalog.lat, cell_lon=catalog.lon, cell_rat=catalog.rat,
        harmonic=ident.harmonic_table(most_contacts(m, cfg.subs)),
        # only seed mod 2^64 enters the hashes (stream_key)
        seed=np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64),
        prefixes=np.asarray(m.prefixes, dtype=np.int64),
        mccmnc_pool=np.asarray(m.mccmnc_pool, dtype=np.int32),
        params=np.array([m.activity_sigma, m.contacts_mean], dtype=np.float64))
