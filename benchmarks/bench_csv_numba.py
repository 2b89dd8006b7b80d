"""Issue 19 (CSV CPU): a numba-compiled CSV formatter against polars' CSV writer.

Not a test: a script that measures and prints. It builds one real unit's ``Records``
(the last unit of ``--subs`` subscribers, 1 day: ~197k records at 200k), then formats it
slice by slice (``--slice-rows``, plain CSV's 16,384 by default) with

- ``cdrexp.writers._csv_text.CsvText`` (main d7e3d3d: polars' ``write_csv`` from an
  ``Enum``/masked frame; ``POLARS_MAX_THREADS=1``),
- ``NumbaCsvText`` below: the numba kernel ``write_lines`` (``@njit(nogil=True,
  cache=True)``, one explicit signature) after a per-slice copy of the columns into one
  int64 array,

checks that every slice is byte-identical, and prints CPU ns per record
(``time.process_time``, one thread, sides alternating, medians of ``--rounds``), the
kernel's and the copy's shares, then what each formatter costs a fresh process
(``--procs`` of each, medians): CPU seconds and PSS added by importing it and formatting
a first slice, numba with its cache (what every run pays) and with an empty one (what
the first run on a machine pays: the kernel is compiled).

    python benchmarks/bench_csv_numba.py
    python benchmarks/bench_csv_numba.py --rounds 7 --procs 5

Result (2026-12-05, branch numbafmt; numba 0.68.1, llvmlite 0.50.0, polars 2.1.0,
numpy 2.4.6; 2 cores shared, load 4.2-4.3), byte-identical on every slice:

    CPU ns/record, one thread    polars 392   numba 145 (x0.37: copy to int64 23,
                                                         kernel 129)
    fresh process: import + a first slice, CPU s / PSS MB added (numpy loaded)
        polars 0.18 s / 31 MB; numba cached 0.68 s / 101 MB; numba, empty cache
        (compiles) 1.13 s / 108 MB

(numba's modules as pip installs them, bytecode compiled: without .pyc files the
cached case took 1.8 s.) Loading numba's cached code pulls in ``scipy.linalg`` too
(numba's BLAS check, scipy being installed). The kernel passes the formatter half of
the decision rule (<= 0.5x polars), but in the generator, with the forkserver
preloading numba instead of polars (``benchmarks/bench_lean.py --base <main d7e3d3d>
--cases c200k idle --rounds 3``, load 4.2-4.5), the tree's CPU went down by 14 % at
200k csv and its peak PSS up by 36 %:

    c200k  head (numba) 3.35 CPU-s 367 MB   base (polars) 3.88 CPU-s 270 MB
    idle   head (numba) 1.32 CPU-s 211 MB   base (polars) 0.96 CPU-s  99 MB

so numba in the process was not integrated (rule: CPU -15 % or better, PSS not
higher). The same compiled code as a shared library (a ``cfunc`` whose object code is
emitted with a PIC target machine, numba's runtime symbols stubbed, linked with ``cc``,
loaded with ``ctypes``) costs 0.3 ms and 0.02 MB to load, at the same speed (146 ns a
record against polars' 380, byte-identical): see ``cdrexp/writers/_csv_kernel.py``.
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
from llvmlite import ir  # noqa: E402,F401
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

# ---- the kernel (was cdrexp/writers/_csv_kernel.py on this branch) ----------------------
# The text is written backwards, from the end of the buffer: the last line's newline
# first, each field's digits from the last one, four at a time from a table. So no field's
# width has to be known before it is written, and each store is a fixed size: a field's
# last (leftmost) four digits and a word are stored whole, right-aligned, and the bytes
# they put left of the field are overwritten by the fields written next. The buffer holds
# room for them in front of the first line (``pad``); the text is its tail.

# "0000", "0001", ..., "9999": four digits per lookup, as one uint32 each (the bytes in
# memory order: a little-endian store puts them in place)
DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(),
                        np.uint32).copy()
_SEP, _NEWLINE, _MINUS = 59, 10, 45


def word_table(words: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``write_lines``' ``words`` and ``lengths`` for these words."""
    lanes = max([(len(w) + 7) // 8 for w in words] + [1])
    table = np.zeros((max(len(words), 1), 8 * lanes), np.uint8)
    for i, w in enumerate(words):
        table[i, table.shape[1] - len(w):] = np.frombuffer(w, np.uint8)
    return table.view(np.uint64), np.array([len(w) for w in words] or [0], np.int64)


def pad(words: np.ndarray) -> int:
    """Bytes a buffer needs in front of its text: what the first field of the first
    line may store left of itself (a word's row or four digits)."""
    return max(8 * words.shape[1], 4)


@intrinsic
def _store(typingctx, out, at, value):
    """``value``'s bytes into uint8 array ``out`` from ``at`` on, unaligned: one store."""
    def codegen(context, builder, sig, args):
        arr, index, val = args
        data = context.make_array(sig.args[0])(context, builder, arr).data
        ptr = builder.bitcast(builder.gep(data, [index]),
                              context.get_value_type(sig.args[2]).as_pointer())
        builder.store(val, ptr, align=1)
        return context.get_dummy_value()
    return types.void(out, at, value), codegen


# the one signature, given: the machine code is loaded (or compiled) when this module is
# imported, so the forkserver that preloads it holds it once for all its workers
@njit("uint64(int64[:, ::1], bool_[:, ::1], int64[::1], int64[::1], uint64[:, ::1], "
      "int64[::1], uint8[::1])", nogil=True, cache=True, boundscheck=False)
def write_lines(values, valid, mask_of, word_of, words, lengths, out):
    """Write the lines of ``values`` (int64, a row of ``values`` per column, an item per
    line) at the end of ``out`` (uint8); return where the text starts.

    Column ``c`` is null where ``valid[mask_of[c]]`` is False (``mask_of[c] < 0``: never
    null); it holds words when ``word_of[c] >= 0``: value ``v`` stands for the last
    ``lengths[word_of[c] + v]`` bytes of ``words[word_of[c] + v]`` (two uint64: a
    ``WORD_SLOT``-byte slot)."""
    digits = DIGITS4
    lanes = words.shape[1]
    ncols, n = values.shape
    # unsigned positions: numba checks no wraparound for them
    pos = np.uint64(out.size)
    one, four = np.uint64(1), np.uint64(4)
    for r in range(n - 1, -1, -1):
        pos -= one
        out[pos] = _NEWLINE
        for c in range(ncols - 1, -1, -1):
            m = mask_of[c]
            if m < 0 or valid[m, r]:
                v = values[c, r]
                w = word_of[c]
                if w >= 0:
                    k = np.uint64(w + v)
                    at = pos - np.uint64(8 * lanes)
                    for j in range(lanes):
                        _store(out, at + np.uint64(8 * j), words[k, j])
                    pos -= np.uint64(lengths[k])
                else:
                    if v < 0:       # the magnitude as uint64 (int64's min included)
                        u = np.uint64(-(v + 1)) + one
                    else:
                        u = np.uint64(v)
                    while u >= np.uint64(10_000):
                        q = u // np.uint64(10_000)
                        pos -= four
                        _store(out, pos, digits[u - q * np.uint64(10_000)])
                        u = q
                    # the last 1-4 digits: four stored, the width kept
                    _store(out, pos - four, digits[u])
                    pos -= (one + np.uint64(u >= np.uint64(10)) + np.uint64(u >= np.uint64(100))
                            + np.uint64(u >= np.uint64(1000)))
                    if v < 0:
                        pos -= one
                        out[pos] = _MINUS
            if c:
                pos -= one
                out[pos] = _SEP
    return pos


class NumbaCsvText:
    """``CsvText``'s interface and bytes from ``write_lines``. Per slice, the columns are
    copied into one int64 array (one compiled function serves every column type); the
    unit's columns themselves are not copied."""

    def __init__(self, records):
        from cdrexp.writers._csv_text import line_bound
        self.bound = line_bound(records)
        self.num_rows = records.num_rows
        self._columns = list(records.values.values())
        names = list(records.values)
        # columns share masks: each is copied once a slice; a mask with no null is left out
        self._masks, mask_at = [], {}
        self._mask_of = np.full(len(names), -1, np.int64)
        for c, name in enumerate(names):
            valid = records.valid.get(name)
            if valid is not None and not valid.all():
                if id(valid) not in mask_at:
                    mask_at[id(valid)] = len(self._masks)
                    self._masks.append(valid)
                self._mask_of[c] = mask_at[id(valid)]
        self._word_of = np.full(len(names), -1, np.int64)
        words = []
        for c, name in enumerate(names):
            if name in records.words:
                self._word_of[c] = len(words)
                words += [w.encode() for w in records.words[name]]
        self._words, self._lengths = word_table(words)
        self._pad = pad(self._words)

    def text(self, start: int = 0, rows: int | None = None) -> np.ndarray:
        stop = self.num_rows if rows is None else min(self.num_rows, start + rows)
        n = max(stop - start, 0)
        values = np.empty((len(self._columns), n), np.int64)
        for c, column in enumerate(self._columns):
            values[c] = column[start:stop]
        valid = np.empty((len(self._masks), n), np.bool_)
        for m, mask in enumerate(self._masks):
            valid[m] = mask[start:stop]
        out = np.empty(self._pad + n * self.bound, np.uint8)
        at = write_lines(values, valid, self._mask_of, self._word_of, self._words,
                         self._lengths, out)
        return out[at:]



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


def kernel_share(csv, num_rows: int, batch: int) -> tuple[float, float]:
    """CPU ns per record of ``CsvText.text``'s two steps: the copy into int64, the kernel."""
    copy = kernel = 0.0
    for s in range(0, num_rows, batch):
        t0 = time.process_time()
        stop = min(num_rows, s + batch)
        values = np.empty((len(csv._columns), stop - s), np.int64)
        for c, column in enumerate(csv._columns):
            values[c] = column[s:stop]
        valid = np.empty((len(csv._masks), stop - s), np.bool_)
        for m, mask in enumerate(csv._masks):
            valid[m] = mask[s:stop]
        out = np.empty(csv._pad + (stop - s) * csv.bound, np.uint8)
        t1 = time.process_time()
        write_lines(values, valid, csv._mask_of, csv._word_of, csv._words,
                                csv._lengths, out)
        t2 = time.process_time()
        copy, kernel = copy + t1 - t0, kernel + t2 - t1
    return copy / num_rows * 1e9, kernel / num_rows * 1e9


# run in a fresh interpreter: what importing a formatter and formatting a first slice
# adds to a process that has numpy (CPU s, PSS MB)
_PROBE = """
import json, sys, time
import numpy as np
def pss():
    with open('/proc/self/smaps_rollup') as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith('Pss:')) / 1024
sys.path.insert(0, {root!r})
from cdrexp.model import Records
rec = Records({{'a': np.arange(1000, dtype=np.int64), 'b': np.zeros(1000, np.int8)}},
              words={{'b': ('x',)}})
p0, t0 = pss(), time.process_time()
if {side!r} == 'polars':
    from cdrexp.writers._csv_text import CsvText as Text
else:
    sys.path.insert(0, {bench!r})
    from bench_csv_numba import NumbaCsvText as Text
Text(rec).text(0, 1000)
print(json.dumps([time.process_time() - t0, pss() - p0]))
"""


def process_cost(side: str, env: dict) -> tuple[float, float]:
    code = _PROBE.format(root=str(HERE), side=side, bench=str(HERE / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, check=True).stdout
    return tuple(json.loads(out.splitlines()[-1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subs", type=int, default=200_000)
    ap.add_argument("--slice-rows", type=int, default=16_384)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--procs", type=int, default=3, help="fresh processes per import case")
    a = ap.parse_args(argv)
    # the allocator a worker runs with (docs/parallel.md)
    from cdrexp.parallel._alloc import keep_freed_memory, polars_allocator_env
    os.environ.update(polars_allocator_env())
    kept = keep_freed_memory()
    from cdrexp.writers._csv_text import CsvText
    records = real_unit(a.subs)
    n, batch = records.num_rows, a.slice_rows
    sides = {"polars (main's CsvText)": CsvText(records), "numba (NumbaCsvText)":
             NumbaCsvText(records)}
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
    shares = [kernel_share(sides["numba (NumbaCsvText)"], n, batch) for _ in range(a.rounds)]
    print(f"  of which: copy to int64 {statistics.median(s[0] for s in shares):.0f}, "
          f"kernel {statistics.median(s[1] for s in shares):.0f}")
    print(f"a fresh process (numpy loaded): import + a first 1,000-row slice, medians of "
          f"{a.procs}: CPU s, PSS MB added")
    with tempfile.TemporaryDirectory() as empty:
        cases = {"polars": ("polars", {}), "numba, cached": ("numba", {}),
                 "numba, empty cache (compiles)": ("numba", {"NUMBA_CACHE_DIR": empty})}
        costs = {label: [] for label in cases}
        for _ in range(a.procs):
            for label, (side, env) in cases.items():
                if "NUMBA_CACHE_DIR" in env:
                    for f in Path(empty).rglob("*"):
                        if f.is_file():
                            f.unlink()
                costs[label].append(process_cost(side, env))
    for label, c in costs.items():
        print(f"  {label:32}{statistics.median(x[0] for x in c):6.2f} s"
              f"{statistics.median(x[1] for x in c):7.1f} MB")
    print(f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
