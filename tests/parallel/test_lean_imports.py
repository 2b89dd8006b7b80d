"""Issue 19: the generator's processes import only what generating needs.

Each check runs in a fresh interpreter (this test process has imported pandas and more
through other tests, and the forkserver is process-wide)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent       # this checkout's cdrexp, whatever the venv has installed


def run_python(code: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("fmt", ["csv", "none", "parquet"])
def test_units_in_real_workers_import_nothing_heavy(tmp_path, fmt):
    """Inside a real worker, after a real unit: no MLflow, Hydra, matplotlib, pandas...
    (pandas came in through ``pyarrow.array``'s pandas shim, ~40 MB per process), and the
    forkserver's heap was frozen before the worker was forked."""
    out = tmp_path / "out"
    run_python(f"""
        from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig
        from cdrexp.generation import generate
        from cdrexp.parallel import LocalExecutor, preload_for
        from lean_probe import probe_unit
        cfg = GeneratorConfig(subs=3000, workers=2, out={str(out)!r},
                              output=OutputConfig(format={fmt!r}),
                              model=ModelConfig(chunk_size=1000))
        generate(cfg, executor=LocalExecutor(2, unit_fn=probe_unit,
                                             preload=preload_for({fmt!r})))
    """, tmp_path)
    notes = [json.loads(p.read_text()) for p in out.glob(".probe-*.json")]
    assert notes, "no unit ran in a worker"
    for note in notes:
        assert note["heavy"] == [], note
        assert note["frozen"] > 10_000, note        # the preloaded modules' objects
        assert note["gc_enabled"], note             # paused only while preloading
        # no worker loads polars or numba: CSV is formatted by a compiled kernel loaded
        # as a shared library (numba builds it in a process of its own)
        assert not note["polars"] and not note["numba"], note
        # which only CSV loads: generation alone does not, nor Parquet, whose rotation
        # computes the lines' lengths instead of formatting a sample
        assert note["kernel"] == (fmt == "csv"), note
        # and only Parquet needs Arrow: CSV is formatted from the numpy columns
        assert note["pyarrow"] == (fmt == "parquet"), note


def test_the_generator_process_builds_the_population_without_arrow(tmp_path):
    """The parent only builds the population, plans units and writes cells.csv before
    the workers run: neither pyarrow nor polars nor pandas is loaded for that (the
    model's Arrow parts load on first use)."""
    out = run_python("""
        import sys
        import cdrexp.generation, cdrexp.parallel, cdrexp.writers
        from cdrexp.config import GeneratorConfig
        from cdrexp.model import build_population, plan_units
        from cdrexp.writers import prepare_output
        cfg = GeneratorConfig(subs=5000, out="out")
        prepare_output(cfg, build_population(cfg)), plan_units(cfg)   # cells.csv too
        print(sorted(m for m in ("pyarrow", "polars", "pandas") if m in sys.modules))
    """, tmp_path)
    assert out.strip() == "[]"


def test_cells_table_does_not_load_pandas(tmp_path):
    out = run_python("""
        import sys
        from cdrexp.config import GeneratorConfig
        from cdrexp.model import build_population, cells_table, generate_unit, plan_units
        cfg = GeneratorConfig(subs=2000)
        pop = build_population(cfg)
        cells_table(pop)
        generate_unit(cfg, pop, plan_units(cfg)[0])
        print("pandas" in sys.modules)
    """, tmp_path)
    assert out.strip() == "False"


def test_generate_builds_the_population_in_the_shared_segment(tmp_path, monkeypatch):
    """The per-subscriber arrays are built straight into the segment the workers map:
    no copy of them into shared memory (the parent held the population twice while
    copying: 2 x 38 bytes per subscriber at the peak), and the segments are gone after."""
    import os

    from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig
    from cdrexp.generation import generate
    from cdrexp.parallel import LocalExecutor, _shm

    copied: list[set] = []
    init = _shm.OwnedSegment.__init__

    def spy(self, arrays, *a, **k):
        copied.append(set(arrays))
        init(self, arrays, *a, **k)

    monkeypatch.setattr(_shm.OwnedSegment, "__init__", spy)
    cfg = GeneratorConfig(subs=3000, workers=2, out=str(tmp_path / "out"),
                          output=OutputConfig(format="none"),
                          model=ModelConfig(chunk_size=1000))
    before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    stats = generate(cfg, executor=LocalExecutor(2))
    assert stats.rows_by_type["DATA"] > 0
    assert len(copied) == 2                 # the blank segment, then the small arrays
    assert copied[0] == set()
    assert "msisdn" not in copied[1] and "cell_rat" in copied[1]
    if before or os.path.isdir("/dev/shm"):
        mine = f"cdrexp_{os.getpid()}_"     # other processes on the machine make theirs
        left = {n for n in set(os.listdir("/dev/shm")) - before if n.startswith(mine)}
        assert not left
