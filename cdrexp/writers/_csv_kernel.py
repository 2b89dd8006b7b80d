"""The CSV kernel (``_csv_build.write_rows``, compiled by numba) loaded as a shared
library with ctypes: ~0.3 ms and ~0.02 MB a process, where importing numba and loading
its cached code cost ~0.7 CPU-s and ~100 MB (benchmarks/bench_csv_numba.py). ctypes
releases the GIL for the call, so the CSV writer's threads keep overlapping.

The library is built once per install, kernel version and CPU (its instruction-set
flags: the code is compiled for them), by ``_csv_build.py`` run as a script in its own
process (numba + LLVM + the C compiler: ~1.5 CPU-s), into
``__pycache__`` beside this module or, when that is read-only, into the user's cache
(``$XDG_CACHE_HOME/cdrexp``, ``~/.cache/cdrexp``). A name holds the hash of
``_csv_build.py``: an edited kernel is a new library. When no library can be built (no C
compiler), numba compiles the kernel in this process instead (a warning says so).
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

BUILD = Path(__file__).with_name("_csv_build.py")
# a column's kind for the kernel: its item size in bytes, negative when unsigned (uint64
# has none: the kernel widens every value to int64)
KINDS = {np.dtype(t): k for t, k in ((np.int64, 8), (np.int32, 4), (np.int16, 2),
                                     (np.int8, 1), (np.uint32, -4), (np.uint16, -2),
                                     (np.uint8, -1), (np.bool_, -1))}


def _lanes(words) -> int:
    """The 8-byte lanes the longest of ``words`` fills (at least one)."""
    return max([(len(w) + 7) // 8 for w in words] + [1])


def record_layout() -> list[tuple[int, bool, int]]:
    """The generator's records (``model.schema``) as a layout of the kernel's columns:
    (kind, may be null, lanes of its longest word; 0 for integers) per column."""
    from ..model.schema import COLUMN_TYPES, NULLABLE, TZ_NAME_BYTES, WORDS

    kinds = {"dict": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8}
    layout = []
    for name, kind in COLUMN_TYPES.items():
        lanes = 0
        if kind == "dict":
            lanes = _lanes([b"." * TZ_NAME_BYTES] if name == "tz_name"
                           else [w.encode() for w in WORDS[name]])
        layout.append((kinds[kind], name in NULLABLE, lanes))
    return layout


# the layouts the library holds an unrolled kernel for (``_csv_build.specialise``)
LAYOUTS = [record_layout()]


def word_table(words: list[bytes], lanes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``write_rows``' ``words`` (each word left-aligned in a row of uint64, at least
    ``lanes`` of them) and ``lengths`` for these words."""
    lanes = max(lanes, _lanes(words))
    table = np.zeros((max(len(words), 1), 8 * lanes), np.uint8)
    for i, w in enumerate(words):
        table[i, :len(w)] = np.frombuffer(w, np.uint8)
    return table.view(np.uint64), np.array([len(w) for w in words] or [0], np.int64)


def slack(words: np.ndarray) -> int:
    """Bytes a buffer needs past its text: what the last field may store beyond its end
    (a row of the word table, or four digits)."""
    return max(8 * words.shape[1], 4)


def cpu_flags() -> str:
    """The CPU's instruction-set flags (Linux's /proc/cpuinfo; "" where unknown): the
    library is compiled for them."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return ""


def library_name() -> str:
    where = f"{platform.machine()} {sys.implementation.cache_tag} {cpu_flags()}".encode()
    key = hashlib.sha256(BUILD.read_bytes() + where + json.dumps(LAYOUTS).encode()
                         ).hexdigest()[:16]
    return f"csv_kernel-{key}.so"


def cache_dirs() -> list[Path]:
    """Where the library is looked for and built, in order."""
    dirs = [BUILD.parent / "__pycache__"]
    try:
        dirs.append(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                    / "cdrexp")
    except RuntimeError:        # no home directory: the package's __pycache__ only
        pass
    return dirs


def _build(path: Path) -> str | None:
    """Build the library at ``path``; None, or why it could not be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # -I: the build imports numba and nothing of the caller's sys.path or cwd
        proc = subprocess.run([sys.executable, "-I", str(BUILD), str(path),
                               json.dumps(LAYOUTS)],
                              capture_output=True, text=True)
    except OSError as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


def _c_function():
    """The kernel's C functions (ctypes): the generic one and one per ``LAYOUTS``, from
    the library (built if missing) or, when none can be built, compiled by numba in this
    process."""
    name, why = library_name(), []
    paths = [folder / name for folder in cache_dirs()]
    built = next((p for p in paths if p.exists()), None)
    if built is None:
        for path in paths:
            problem = _build(path)
            if problem is None:
                built = path
                break
            why.append(f"{path.parent}: {problem}")
    if built is not None:
        lib = ctypes.CDLL(str(built))
        return lib.cdrexp_csv_write_rows, [getattr(lib, f"cdrexp_csv_write_rows_{i}")
                                           for i in range(len(LAYOUTS))]
    warnings.warn("the CSV kernel's library could not be built (" + "; ".join(why) +
                  "): numba compiles it in this process", RuntimeWarning, stacklevel=3)
    # the generic loop only: compiling the unrolled one too would cost every process
    # another ~2.5 CPU-s, what formatting 50M records saves
    from . import _csv_build
    return _csv_build._c_write_rows.ctypes, []


_P, _I = ctypes.c_void_p, ctypes.c_int64
_FUNCTION, _SPECIALISED = _c_function()
_FUNCTION.restype = ctypes.c_uint64
_FUNCTION.argtypes = [_P, _P, _I, _P, _I, _P, _P, _P, _I, _I, _P, _I, _I, _P, _I, _I, _I,
                      _P]
for _f in _SPECIALISED:
    _f.restype = ctypes.c_uint64
    _f.argtypes = [_P, _P, _P, _P, _I, _I, _P, _I, _I, _P, _I, _I, _I, _P]


class Columns:
    """What ``write_rows`` reads, checked once: the columns' addresses and kinds, the
    masks' addresses and which column uses which, the word table. It keeps the arrays
    (C-contiguous, copied only if they were not) alive while the kernel reads them."""

    def __init__(self, columns: list[np.ndarray], masks: list[np.ndarray],
                 mask_of: np.ndarray, word_of: np.ndarray, words: list[bytes]):
        self.num_rows = columns[0].size if columns else 0
        self._arrays = [np.ascontiguousarray(c) for c in columns] + \
            [np.ascontiguousarray(m, np.bool_) for m in masks]
        if any(a.size != self.num_rows for a in self._arrays):
            raise ValueError("write_rows: columns and masks of different lengths")
        try:
            self.kinds = np.array([KINDS[c.dtype] for c in columns], np.int64)
        except KeyError as exc:
            raise TypeError(f"write_rows: no CSV kind for {exc.args[0]}") from None
        self.columns = np.array([a.ctypes.data for a in self._arrays[:len(columns)]],
                                np.int64)
        self.masks = np.array([a.ctypes.data for a in self._arrays[len(columns):]] or [0],
                              np.int64)
        self.mask_of = np.ascontiguousarray(mask_of, np.int64)
        self.word_of = np.ascontiguousarray(word_of, np.int64)
        if self.mask_of.size != len(columns) or self.word_of.size != len(columns) \
                or int(self.mask_of.max(initial=-1)) >= len(masks):
            raise ValueError("write_rows: shapes do not match")
        # the unrolled kernel of the first layout these columns fit (else the generic
        # loop): same kinds and nullable columns, no word wider than its lanes
        layout = self.layout(words)
        self.specialised = next(
            (i for i, fit in enumerate(LAYOUTS[:len(_SPECIALISED)])
             if len(fit) == len(layout) and all(
                k == fk and m == fm and (l == 0) == (fl == 0) and l <= fl
                for (k, m, l), (fk, fm, fl) in zip(layout, fit))), None)
        lanes = 1 if self.specialised is None else \
            max(fl for _, _, fl in LAYOUTS[self.specialised])
        self.words, self.lengths = word_table(words, lanes)
        self.slack = slack(self.words)
        # the specialised kernel takes each column's own mask (0: never null)
        self.column_masks = np.where(self.mask_of >= 0, self.masks[self.mask_of], 0)

    def layout(self, words: list[bytes]) -> list[tuple[int, bool, int]]:
        """These columns' (kind, may be null, lanes of the longest word; 0 for integers):
        a word column's words run from its ``word_of`` to the next column's."""
        starts = sorted({int(w) for w in self.word_of if w >= 0} | {len(words)})
        ends = dict(zip(starts, starts[1:]))
        return [(int(k), bool(m >= 0),
                 0 if w < 0 else _lanes(words[w:ends.get(int(w), w)]))
                for k, m, w in zip(self.kinds, self.mask_of, self.word_of)]

    def write_rows(self, start: int, stop: int, out: np.ndarray, at: int,
                   limit: int) -> tuple[int, int]:
        """``_csv_build.write_rows`` into ``out`` (uint8, C-contiguous) from ``at``:
        (the next row, where the text ends). ``out`` must hold ``slack`` bytes past
        the furthest the text can reach; the caller sizes it (``line_bound``)."""
        if out.dtype != np.uint8 or out.ndim != 1 or not out.flags.c_contiguous \
                or not out.flags.writeable:
            raise TypeError(f"write_rows: want a writable C-contiguous uint8 buffer, "
                            f"got {out.dtype} {out.shape}")
        start, stop = max(0, start), min(stop, self.num_rows)
        state = np.zeros(2, np.int64)
        if self.specialised is not None:
            _SPECIALISED[self.specialised](
                self.columns.ctypes.data, self.column_masks.ctypes.data,
                self.word_of.ctypes.data, self.words.ctypes.data, self.words.shape[0],
                self.words.shape[1], self.lengths.ctypes.data, start, max(start, stop),
                out.ctypes.data, out.size, at, limit, state.ctypes.data)
            return int(state[0]), int(state[1])
        _FUNCTION(self.columns.ctypes.data, self.kinds.ctypes.data, self.columns.size,
                  self.masks.ctypes.data, self.masks.size, self.mask_of.ctypes.data,
                  self.word_of.ctypes.data, self.words.ctypes.data, self.words.shape[0],
                  self.words.shape[1], self.lengths.ctypes.data, start, max(start, stop),
                  out.ctypes.data, out.size, at, limit, state.ctypes.data)
        return int(state[0]), int(state[1])
