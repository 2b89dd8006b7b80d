"""The cell catalog of cdr-model.md section 2: ids 1..cells placed uniformly in a disc.

Each RAT gets an exact quota of cells (largest-remainder rounding of
``cells * cell_rat_shares``), shuffled over the cells. Exact quotas rather than
independent draws per cell make "this config leaves a RAT without cells" a property of
the config alone (checked by ``validate_model`` without the seed), and keep the RAT mix
of a small catalog at its configured shares.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import RATS, ModelConfig, rat_cell_counts

_KM_PER_DEG_LAT = 111.0
_KM_PER_DEG_LON_AT_EQUATOR = 111.320


@dataclass(frozen=True)
class CellCatalog:
    lat: np.ndarray      # float64, rounded to 6 decimals; cell id = index + 1
    lon: np.ndarray
    rat: np.ndarray      # int8 index into RATS

    @property
    def size(self) -> int:
        return len(self.rat)


def build_cells(m: ModelConfig, seed: int) -> CellCatalog:
    """Deterministic from (config, seed): its own random stream, apart from the units'."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xCE11])))
    n = m.cells
    r = m.radius_km * np.sqrt(rng.random(n))
    theta = 2.0 * np.pi * rng.random(n)
    lat = m.center_lat + r * np.sin(theta) / _KM_PER_DEG_LAT
    lon = m.center_lon + r * np.cos(theta) / (
        _KM_PER_DEG_LON_AT_EQUATOR * np.cos(np.radians(m.center_lat)))
    counts = rat_cell_counts(n, m.cell_rat_shares)
    rat = rng.permutation(np.repeat(np.arange(len(RATS), dtype=np.int8), counts))
    return CellCatalog(np.round(lat, 6), np.round(lon, 6), rat)


def cells_by_rat(rat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell indices grouped by RAT: (indices, start per RAT, count per RAT)."""
    order = np.argsort(rat, kind="stable").astype(np.int32)
    count = np.bincount(rat, minlength=len(RATS)).astype(np.int64)
    start = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    return order, start, count


def cells_table(population):
    """``cell_id, lat, lon, rat`` of the catalog, for cells.csv."""
    lat, lon, rat = population.cell_lat, population.cell_lon, population.cell_rat
    import pyarrow as pa   # only the cells.csv writer needs Arrow

    from ._arrow import from_numpy, strings

    rats = pa.DictionaryArray.from_arrays(from_numpy(rat.astype(np.int8)), strings(RATS))
    return pa.Table.from_arrays([
        from_numpy(np.arange(1, len(rat) + 1, dtype=np.int32)), from_numpy(lat),
        from_numpy(lon), rats.cast(pa.string())], names=["cell_id", "lat", "lon", "rat"])


def _arrow_float_text(values: np.ndarray):
    """Each value as pyarrow's CSV writer writes a double (the shortest text that reads
    back exactly, no trailing ``.0``), or None where Python's ``repr`` would take another
    notation (an exponent: |x| < 1e-4 or >= 1e16, where Arrow still writes plain digits
    down to ~1e-7)."""
    text = [repr(x) for x in values.tolist()]
    if any("e" in t or "n" in t for t in text):      # exponents, inf, nan
        return None
    return [t[:-2] if t.endswith(".0") else t for t in text]


def cells_csv(population) -> bytes:
    """cells.csv: ``cell_id,lat,lon,rat`` header and lines, the bytes pyarrow's CSV
    writer gives for ``cells_table`` (a test compares them). Formatted here so that the
    generator's parent, which writes this file, does not import pyarrow for it (issue 19:
    ~15 MB and ~0.15 s of CPU); a catalog whose coordinates need an exponent in Python
    (within 1e-4 degrees of 0) goes through pyarrow."""
    lat = _arrow_float_text(population.cell_lat)
    lon = _arrow_float_text(population.cell_lon)
    if lat is None or lon is None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        sink = pa.BufferOutputStream()
        pacsv.write_csv(cells_table(population), sink,
                        pacsv.WriteOptions(include_header=False, quoting_style="none"))
        body = sink.getvalue().to_pybytes()
    else:
        rats = [RATS[r] for r in population.cell_rat.tolist()]
        body = "".join(f"{i},{a},{o},{r}\n" for i, (a, o, r)
                       in enumerate(zip(lat, lon, rats), start=1)).encode()
    return b"cell_id,lat,lon,rat\n" + body
