"""The CDR model of docs/model.md, vectorised with numpy.

Public surface (the parallel executors and the tests use only this):

- ``build_population(cfg: GeneratorConfig) -> Population``: the cell catalog, the
  harmonic table and the parameters from which any subscriber's identities, home cell,
  activity and contact count are computed (``Population.subscribers(first, count)``,
  ``Population.msisdn_of(idx)``, ...); nothing per subscriber is stored.
  ``Population.arrays()`` gives its small numpy arrays (what goes into shared memory) and
  ``Population.from_arrays(arrays)`` rebuilds it zero-copy from views of them.
- ``generate_records(cfg, population, unit) -> Records``: every record of one (day, chunk)
  unit as numpy columns, sorted by ``start_ts_ms`` (what the writers take);
  ``generate_unit(...)``: the same as a ``pyarrow.Table`` in ``RECORD_SCHEMA``.
- ``cells_table(population) -> pyarrow.Table``: ``cell_id, lat, lon, rat`` for cells.csv;
  ``cells_csv(population) -> bytes``: that file's bytes, formatted without pyarrow.

Building the population, planning units and generating records need numpy alone;
pyarrow loads only for an Arrow table (``generate_unit``, ``Records.to_arrow``,
``RECORD_SCHEMA``), so neither the generator's parent nor a CSV worker imports it.
"""
from ._columns import Records, as_records
from .cells import cells_csv, cells_table
from .population import Population, build_population
from .schema import CSV_HEADER, EVENT_TYPES, RECORD_COLUMNS
from .units import Unit, plan_units, unit_seed_sequence

__all__ = ["CSV_HEADER", "EVENT_TYPES", "RECORD_COLUMNS", "RECORD_SCHEMA", "Population",
           "Records", "Unit", "as_records", "build_population", "cells_csv", "cells_table",
           "generate_records", "generate_unit", "plan_units", "unit_seed_sequence"]


def __getattr__(name):
    if name in ("generate_unit", "generate_records"):
        from . import records
        return getattr(records, name)
    if name == "RECORD_SCHEMA":
        from .schema import RECORD_SCHEMA
        return RECORD_SCHEMA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
