"""The CDR model of docs/model.md, vectorised with numpy.

Public surface (the parallel executors and the tests use only this):

- ``build_population(cfg: GeneratorConfig) -> Population``: identities, home cells,
  activity and contact counts of all ``cfg.subs`` subscribers, plus the cell catalog.
  ``Population.arrays()`` gives the flat numpy arrays (what goes into shared memory) and
  ``Population.from_arrays(arrays)`` rebuilds it zero-copy from views of them.
- ``generate_unit(cfg, population, unit) -> pyarrow.Table``: every record of one
  (day, chunk) unit, in ``RECORD_SCHEMA``, sorted by ``start_ts_ms``.
- ``cells_table(population) -> pyarrow.Table``: ``cell_id, lat, lon, rat`` for cells.csv;
  ``cells_csv(population) -> bytes``: that file's bytes, formatted without pyarrow.

Building the population and planning units need numpy alone: ``generate_unit`` and
``RECORD_SCHEMA`` (pyarrow) load on first use, so the generator's parent process, which
only builds the population, never imports pyarrow for them.
"""
from .cells import cells_csv, cells_table
from .population import Population, build_population
from .schema import CSV_HEADER, EVENT_TYPES, RECORD_COLUMNS
from .units import Unit, plan_units, unit_seed_sequence

__all__ = ["CSV_HEADER", "EVENT_TYPES", "RECORD_COLUMNS", "RECORD_SCHEMA", "Population",
           "Unit", "build_population", "cells_csv", "cells_table", "generate_unit", "plan_units",
           "unit_seed_sequence"]


def __getattr__(name):
    if name == "generate_unit":
        from .records import generate_unit
        return generate_unit
    if name == "RECORD_SCHEMA":
        from .schema import RECORD_SCHEMA
        return RECORD_SCHEMA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
