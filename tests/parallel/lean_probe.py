"""A unit function for the lean-imports tests: the real unit, then a note of what the
worker process has imported (written next to the output, one file per worker)."""
from __future__ import annotations

import gc
import json
import os
import sys

from cdrexp.parallel import run_unit

# never needed to generate: the runner's (MLflow, Hydra), plotting, dataframes, Dask
HEAVY = ("mlflow", "hydra", "omegaconf", "matplotlib", "pandas", "scipy", "dask",
         "distributed", "sqlalchemy", "psutil", "rich")


def probe_unit(cfg, population, unit):
    result = run_unit(cfg, population, unit)
    note = {"heavy": sorted(m for m in HEAVY if m in sys.modules),
            "frozen": gc.get_freeze_count(), "gc_enabled": gc.isenabled(),
            "polars": "polars" in sys.modules, "numba": "numba" in sys.modules,
            "kernel": "cdrexp.writers._csv_kernel" in sys.modules, "pyarrow": "pyarrow" in sys.modules,
            "jemalloc": os.environ.get("_RJEM_MALLOC_CONF")}
    with open(os.path.join(cfg.out, f".probe-{os.getpid()}.json"), "w") as fh:
        json.dump(note, fh)
    return result
