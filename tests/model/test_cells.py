"""The cell catalog: ids, disc placement, RAT quotas, and its config check."""
import numpy as np
import pyarrow as pa
import pytest

from cdrexp.config import RATS, ConfigError, ModelConfig, RatShares, to_config
from cdrexp.model import cells_table
from cdrexp.config import rat_cell_counts
from cdrexp.model.cells import build_cells


def test_catalog_rows_and_columns(default_population):
    table = cells_table(default_population)
    assert table.column_names == ["cell_id", "lat", "lon", "rat"]
    assert table["cell_id"].to_pylist() == list(range(1, 2001))
    assert set(table["rat"].to_pylist()) == set(RATS)
    assert table["lat"].type == pa.float64()


def test_cells_lie_in_the_disc_with_six_decimals():
    m = ModelConfig()
    cat = build_cells(m, seed=3)
    dy = (cat.lat - m.center_lat) * 111.0
    dx = (cat.lon - m.center_lon) * 111.320 * np.cos(np.radians(m.center_lat))
    r = np.hypot(dx, dy)
    assert r.max() <= m.radius_km + 1e-3          # 6-decimal rounding moves < 0.1 m
    assert np.allclose(cat.lat, np.round(cat.lat, 6), atol=0, rtol=0)
    # uniform in the disc: the share inside half the radius is 1/4 (binomial bound)
    inner = np.mean(r < m.radius_km / 2)
    assert abs(inner - 0.25) < 4.5 * np.sqrt(0.25 * 0.75 / r.size)
    # uniform in angle: each quadrant holds 1/4
    quadrant = (dx > 0).astype(int) * 2 + (dy > 0)
    counts = np.bincount(quadrant, minlength=4)
    assert np.all(np.abs(counts - 500) < 4.5 * np.sqrt(2000 * 0.25 * 0.75))


def test_catalog_is_deterministic_from_the_seed():
    m = ModelConfig()
    a, b, c = build_cells(m, 1), build_cells(m, 1), build_cells(m, 2)
    assert np.array_equal(a.lat, b.lat) and np.array_equal(a.rat, b.rat)
    assert not np.array_equal(a.lat, c.lat)


def test_rat_quotas_follow_the_shares():
    assert rat_cell_counts(2000, RatShares()) == [600, 1000, 400]
    assert rat_cell_counts(7, RatShares()) == [2, 4, 1]      # 2.1, 3.5, 1.4 -> largest rest
    assert sum(rat_cell_counts(13, RatShares(0.33, 0.33, 0.34))) == 13
    cat = build_cells(ModelConfig(cells=2000), 5)
    assert np.bincount(cat.rat).tolist() == [600, 1000, 400]


def test_a_rat_without_cells_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        to_config({"out": str(tmp_path), "model": {"cells": 2}})   # no NR cell left
    assert str(err.value).startswith("model.cells")
    assert "NR" in str(err.value)
    # the same catalog is fine when no DATA record asks for NR
    to_config({"out": str(tmp_path), "model": {
        "cells": 2, "data_rat_shares": {"WCDMA": 0.4, "LTE": 0.6, "NR": 0.0}}})


@pytest.mark.parametrize("center", [(52.37, 4.89), (0.0, 0.0), (10.0, 20.0)])
def test_cells_csv_is_pyarrows_text(center, tmp_path):
    """cells.csv is formatted without pyarrow (issue 19), byte for byte what pyarrow's
    CSV writer gives; a catalog around (0, 0) has coordinates with exponents in Python and
    goes through pyarrow; integral coordinates lose their '.0' as in Arrow."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from cdrexp.config import GeneratorConfig, ModelConfig
    from cdrexp.model import build_population, cells_table
    from cdrexp.model.cells import cells_csv

    cfg = GeneratorConfig(subs=100, model=ModelConfig(center_lat=center[0],
                                                      center_lon=center[1],
                                                      radius_km=1.0, cells=3000))
    pop = build_population(cfg)
    if center == (10.0, 20.0):      # integral values in the catalog
        object.__setattr__(pop, "cell_lat", np.round(pop.cell_lat))
    sink = pa.BufferOutputStream()
    pacsv.write_csv(cells_table(pop), sink,
                    pacsv.WriteOptions(include_header=False, quoting_style="none"))
    expected = b"cell_id,lat,lon,rat\n" + sink.getvalue().to_pybytes()
    assert cells_csv(pop) == expected
