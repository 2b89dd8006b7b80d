"""Issue 19 (CSV CPU): a numba-compiled CSV formatter against polars' CSV writer.

Not a test: a script that measures and prints. It builds one real unit's ``Records``
(the last unit of ``--subs`` subscribers, 1 day: ~197k records at 200k), then formats it
slice by slice (``--slice-rows``, plain CSV's 16,384 by default) with

- ``PolarsCsvText`` below: main d7e3d3d's ``CsvText`` (polars' ``write_csv`` from an
  ``Enum``/masked frame; ``POLARS_MAX_THREADS=1``),
- ``cdrexp.writers._csv_text.CsvText``: the numba-compiled kernel
  (``_csv_build.write_rows``; until 2026-12-05 ``write_lines``, after a per-slice copy
  of the columns into one int64 array) loaded as a shared library with ctypes,
- ``InProcessCsvText`` below: the same kernel compiled by numba in this process (what a
  machine without a C compiler runs),

checks that every slice is byte-identical, and prints CPU ns per record
(``time.process_time``, one thread, sides alternating, medians of ``--rounds``), the
copy's and the kernel's shares, then what each costs a fresh process (``--procs`` of
each, medians): CPU seconds and PSS added by importing it and formatting a first slice;
and what building the library costs (a machine's first CSV run pays it once).

    python benchmarks/bench_csv_numba.py
    python benchmarks/bench_csv_numba.py --rounds 7 --procs 5

Result (2026-12-05, branch numbafmt; numba 0.68.1, llvmlite 0.50.0, polars 2.1.0,
numpy 2.4.6, Python 3.11; 2 cores shared, load 0.8), byte-identical on every slice:

    CPU ns/record, one thread   polars 413   library 159 (x0.39: copy 26, kernel 138)
                                numba in the process 149 (x0.36)
    fresh process, import + a first slice:  polars 0.196 CPU-s / 33.3 MB PSS
        library (ctypes) 0.035 s / 3.2 MB   numba in the process 1.29 s / 110 MB
    building the library (numba + cc, its own process): 1.69 CPU-s, 1.70 s wall

The library's code was generic x86-64 (portable across the machines that may share an
install), ~7 % slower than numba's host-tuned code; with the forward kernel (2026-12-05)
1.17x slower (142 against 121 ns/record), so it is now compiled for the CPU's flags,
which its name holds (125 against 121; the kernel before it, generic: 135-137). A first design kept numba in the
process (``@njit(cache=True)``, preloaded by the forkserver): importing numba and
loading its cached code cost 0.68 CPU-s and 101 MB PSS (it loads ``scipy.linalg`` for
its BLAS check), and ``bench_lean.py --cases c200k idle`` (load 4.2-4.5) gave the tree
0.86x main's CPU-s at 200k csv but 1.36x its peak PSS (367 against 270 MB): below the
decision rule (CPU -15 % or better, PSS not higher). With the library (load 1.4):

    c200k  library 2.91 CPU-s 240 MB PSS   main d7e3d3d (polars) 3.76 CPU-s 277 MB
    idle   library 0.67 CPU-s  73 MB PSS   main d7e3d3d (polars) 0.91 CPU-s 114 MB

and with plain CSV's slices cut to 8,192 rows as well (load 2.4-2.9):

    c200k  library 2.96 CPU-s 180 MB PSS   main d7e3d3d (polars) 3.93 CPU-s 262 MB
    idle   library 0.76 CPU-s  57 MB PSS   main d7e3d3d (polars) 0.99 CPU-s 136 MB
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")        # one thread, as the decision rule says
HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
class PolarsCsvText:
    """main d7e3d3d's ``CsvText``: polars writes the text (an ``Enum`` column per word
    column, masked columns through ``when``)."""

    def __init__(self, records):
        import polars as pl

        from cdrexp.writers._csv_text import line_bound
        self.bound = line_bound(records)
        series = []
        for name, values in records.values.items():
            if name in records.words:
                words = list(records.words[name])
                codes = pl.Series(values.astype(np.uint32, copy=False))
                series.append(pl.Series(name, words, dtype=pl.Enum(words)).gather(codes))
            else:
                series.append(pl.Series(name, values))
        frame = pl.DataFrame(series)
        masks = {id(v): v for v in records.valid.values()}
        shown = {key: pl.Series(v) for key, v in masks.items() if not v.all()}
        masked = [(name, shown[id(v)]) for name, v in records.valid.items()
                  if id(v) in shown]
        if masked:
            frame = frame.with_columns(pl.when(valid).then(pl.col(name)).alias(name)
                                       for name, valid in masked)
        self._frame = frame

    def text(self, start: int = 0, rows: int | None = None) -> np.ndarray:
        import io
        sink = io.BytesIO()
        self._frame.slice(start, rows).write_csv(
            sink, include_header=False, separator=";", quote_style="never", null_value="",
            line_terminator="\n")
        return np.frombuffer(sink.getbuffer(), np.uint8)


class InProcessCsvText:
    """``CsvText`` with the kernel compiled by numba in this process (``_csv_build``'s
    kernel unrolled for the records' layout, or its generic ``write_rows``, called
    directly: what a process without the library runs)."""

    def __init__(self, records):
        from cdrexp.writers import _csv_build, _csv_kernel
        from cdrexp.writers._csv_text import CsvText
        self.csv = CsvText(records)
        i = self.csv._columns.specialised
        self.kernel = None if i is None else _csv_build.specialise(_csv_kernel.LAYOUTS[i])[0]
        self.generic = _csv_build.write_rows

    def text(self, start: int = 0, rows: int | None = None) -> np.ndarray:
        csv, c = self.csv, self.csv._columns
        stop = csv.num_rows if rows is None else min(csv.num_rows, start + rows)
        out = np.empty(max(stop - start, 0) * csv.bound + csv.slack, np.uint8)
        state = np.zeros(2, np.int64)
        if self.kernel is not None:
            end = self.kernel(c.columns, c.column_masks, c.word_of, c.words, c.lengths,
                              start, stop, out, 0, out.size, state)
        else:
            end = self.generic(c.columns, c.kinds, c.masks, c.mask_of, c.word_of, c.words,
                               c.lengths, start, stop, out, 0, out.size, state)
        return out[:end]


def generic_csv_text(records):
    """The library's ``CsvText`` held to its generic loop (no unrolled layout fits)."""
    from cdrexp.writers import _csv_kernel
    from cdrexp.writers._csv_text import CsvText
    layouts = _csv_kernel.LAYOUTS[:]
    _csv_kernel.LAYOUTS.clear()
    try:
        return CsvText(records)
    finally:
        _csv_kernel.LAYOUTS.extend(layouts)


def real_unit(subs: int):
    from cdrexp.config import GeneratorConfig
    from cdrexp.model import build_population, plan_units
    from cdrexp.model.records import generate_records
    cfg = GeneratorConfig(subs=subs, days=1, seed=42, workers=1)
    return generate_records(cfg, build_population(cfg), plan_units(cfg)[-1])


def per_record(obj, num_rows: int, batch: int) -> float:
    t0 = time.process_time()
    for s in range(0, num_rows, batch):
        obj.text(s, batch)
    return (time.process_time() - t0) / num_rows * 1e9


def kernel_share(csv, num_rows: int, batch: int) -> float:
    """CPU ns per record of the kernel alone, into one reused buffer (since 2026-12-05
    it reads the columns where they are: no copy into int64 before it)."""
    out = np.empty(batch * csv.bound + csv.slack, np.uint8)
    t0 = time.process_time()
    for s in range(0, num_rows, batch):
        csv._columns.write_rows(s, s + batch, out, 0, out.size)
    return (time.process_time() - t0) / num_rows * 1e9


# run in a fresh interpreter: what importing a formatter and formatting a first slice
# adds to a process that has numpy and cdrexp.model (CPU s, PSS MB)
_PROBE = """
import json, sys, time
import numpy as np
def pss():
    with open('/proc/self/smaps_rollup') as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith('Pss:')) / 1024
sys.path[:0] = [{root!r}, {bench!r}]
from cdrexp.model import Records
rec = Records({{'a': np.arange(1000, dtype=np.int64), 'b': np.zeros(1000, np.int8)}},
              words={{'b': ('x',)}})
p0, t0 = pss(), time.process_time()
if {side!r} == 'polars':
    from bench_csv_numba import PolarsCsvText as Text
elif {side!r} == 'library':
    from cdrexp.writers._csv_text import CsvText as Text
else:
    from bench_csv_numba import InProcessCsvText as Text
Text(rec).text(0, 1000)
print(json.dumps([time.process_time() - t0, pss() - p0]))
"""


def process_cost(side: str) -> tuple[float, float]:
    code = _PROBE.format(root=str(HERE), side=side, bench=str(HERE / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return tuple(json.loads(out.splitlines()[-1]))


def build_cost() -> tuple[float, float]:
    """CPU s and wall s of building the library (what a machine's first run pays)."""
    from cdrexp.writers import _csv_kernel
    with tempfile.TemporaryDirectory() as tmp:
        before, w0 = os.times(), time.perf_counter()
        subprocess.run([sys.executable, "-I", str(_csv_kernel.BUILD),
                        str(Path(tmp) / "k.so"), json.dumps(_csv_kernel.LAYOUTS)], check=True)
        after = os.times()
    return (after.children_user + after.children_system - before.children_user
            - before.children_system), time.perf_counter() - w0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", type=int, default=200_000)
    ap.add_argument("--slice-rows", type=int, default=16_384)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--procs", type=int, default=3, help="fresh processes per import case")
    a = ap.parse_args(argv)
    # the allocators a worker ran with at d7e3d3d (docs/parallel.md): glibc's thresholds
    # raised, and polars' jemalloc keeping its freed pages (read when polars loads)
    os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:-1,muzzy_decay_ms:-1")
    try:
        import polars  # noqa: F401
    except ImportError:
        print("polars is the baseline here: pip install polars (cdrexp itself no longer "
              "needs it)", file=sys.stderr)
        return 2
    from cdrexp.parallel._alloc import keep_freed_memory
    kept = keep_freed_memory()
    from cdrexp.writers._csv_text import CsvText
    records = real_unit(a.subs)
    n, batch = records.num_rows, a.slice_rows
    sides = {"polars (main's CsvText)": PolarsCsvText(records),
             "library (CsvText)": CsvText(records),
             "library, generic loop": generic_csv_text(records),
             "numba in the process": InProcessCsvText(records)}
    ref = sides["polars (main's CsvText)"]
    for s in range(0, n, batch):
        want = ref.text(s, batch).tobytes()
        for label, obj in sides.items():
            if obj.text(s, batch).tobytes() != want:
                print(f"{label}: slice at {s} differs from polars'")
                return 1
    times = {label: [] for label in sides}
    for _ in range(a.rounds):
        for label, obj in sides.items():
            times[label].append(per_record(obj, n, batch))
    base = statistics.median(times["polars (main's CsvText)"])
    import numba
    import polars
    print(f"{n} records (last unit of subs={a.subs}), slices of {batch}, byte-identical; "
          f"CPU ns per record, one thread, medians of {a.rounds}; polars {polars.__version__}, "
          f"numba {numba.__version__}; worker allocator settings {'on' if kept else 'OFF'}; "
          f"load {os.getloadavg()[0]:.2f}")
    for label, t in times.items():
        print(f"  {label:26}{statistics.median(t):8.0f}  x{statistics.median(t) / base:.2f}"
              f"   (min {min(t):.0f})")
    for label in ("library (CsvText)", "library, generic loop"):
        shares = [kernel_share(sides[label], n, batch) for _ in range(a.rounds)]
        print(f"  {label}: kernel alone {statistics.median(shares):.0f}")
    print(f"a fresh process (numpy loaded): import + a first 1,000-row slice, medians of "
          f"{a.procs}: CPU s, PSS MB added")
    cases = {"polars": "polars", "library (ctypes)": "library",
             "numba in the process (compiles)": "numba"}
    costs = {label: [] for label in cases}
    builds = []
    for _ in range(a.procs):
        for label, side in cases.items():
            costs[label].append(process_cost(side))
        builds.append(build_cost())
    for label, c in costs.items():
        print(f"  {label:34}{statistics.median(x[0] for x in c):6.3f} s"
              f"{statistics.median(x[1] for x in c):7.1f} MB")
    print(f"building the library (numba + cc, its own process): "
          f"{statistics.median(b[0] for b in builds):.2f} CPU s, "
          f"{statistics.median(b[1] for b in builds):.2f} s wall")
    print(f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
