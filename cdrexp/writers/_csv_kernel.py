"""The CSV kernel (``_csv_build.write_lines``, compiled by numba) loaded as a shared
library with ctypes: ~0.3 ms and ~0.02 MB a process, where importing numba and loading
its cached code cost ~0.7 CPU-s and ~100 MB (benchmarks/bench_csv_numba.py). ctypes
releases the GIL for the call, so the CSV writer's threads keep overlapping.

The library is built once per install and kernel version, by ``_csv_build.py`` run as a
script in its own process (numba + LLVM + the C compiler: ~1.5 CPU-s), into
``__pycache__`` beside this module or, when that is read-only, into the user's cache
(``$XDG_CACHE_HOME/cdrexp``, ``~/.cache/cdrexp``). A name holds the hash of
``_csv_build.py``: an edited kernel is a new library. When no library can be built (no C
compiler), numba compiles the kernel in this process instead (a warning says so).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

BUILD = Path(__file__).with_name("_csv_build.py")


def word_table(words: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``write_lines``' ``words`` (each word right-aligned in a row of uint64) and
    ``lengths`` for these words."""
    lanes = max([(len(w) + 7) // 8 for w in words] + [1])
    table = np.zeros((max(len(words), 1), 8 * lanes), np.uint8)
    for i, w in enumerate(words):
        table[i, table.shape[1] - len(w):] = np.frombuffer(w, np.uint8)
    return table.view(np.uint64), np.array([len(w) for w in words] or [0], np.int64)


def pad(words: np.ndarray) -> int:
    """Bytes a buffer needs in front of its text: what the first field of the first
    line may store left of itself (a row of the word table, or four digits)."""
    return max(8 * words.shape[1], 4)


def library_name() -> str:
    where = f"{platform.machine()} {sys.implementation.cache_tag}".encode()
    key = hashlib.sha256(BUILD.read_bytes() + where).hexdigest()[:16]
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
        proc = subprocess.run([sys.executable, "-I", str(BUILD), str(path)],
                              capture_output=True, text=True)
    except OSError as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


def _c_function():
    """The kernel's C function (ctypes), from the library (built if missing) or, when
    none can be built, compiled by numba in this process."""
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
        return ctypes.CDLL(str(built)).cdrexp_csv_write_lines
    warnings.warn("the CSV kernel's library could not be built (" + "; ".join(why) +
                  "): numba compiles it in this process", RuntimeWarning, stacklevel=3)
    from . import _csv_build
    return _csv_build._c_write_lines.ctypes


_P, _I = ctypes.c_void_p, ctypes.c_int64
_FUNCTION = _c_function()
_FUNCTION.restype = ctypes.c_uint64
_FUNCTION.argtypes = [_P, _I, _I, _P, _I, _P, _P, _P, _I, _I, _P, _P, _I]


def write_lines(values: np.ndarray, valid: np.ndarray, mask_of: np.ndarray,
                word_of: np.ndarray, words: np.ndarray, lengths: np.ndarray,
                out: np.ndarray) -> int:
    """``_csv_build.write_lines`` (see there) on C-contiguous arrays of its types:
    ``values`` int64 (columns, lines), ``valid`` bool (masks, lines), ``mask_of`` and
    ``word_of`` int64 (columns), ``words`` uint64 (``word_table``), ``lengths`` int64,
    ``out`` uint8, ``pad(words)`` bytes longer than the text. The kernel reads and
    writes them unchecked: their types and shapes are checked here, the codes and the
    size of ``out`` by the caller (``CsvText``)."""
    ncols, n = values.shape
    args = ((values, np.int64, 2), (valid, np.bool_, 2), (mask_of, np.int64, 1),
            (word_of, np.int64, 1), (words, np.uint64, 2), (lengths, np.int64, 1),
            (out, np.uint8, 1))
    for arr, dtype, ndim in args:
        if arr.dtype != dtype or arr.ndim != ndim or not arr.flags.c_contiguous:
            raise TypeError(f"write_lines: want C-contiguous {ndim}-d {np.dtype(dtype)}, "
                            f"got {arr.dtype} {arr.shape}")
    if valid.shape[1] != n or mask_of.size != ncols or word_of.size != ncols \
            or lengths.size != words.shape[0] or int(mask_of.max(initial=-1)) >= valid.shape[0]:
        raise ValueError("write_lines: shapes do not match")
    return int(_FUNCTION(values.ctypes.data, ncols, n, valid.ctypes.data, valid.shape[0],
                         mask_of.ctypes.data, word_of.ctypes.data, words.ctypes.data,
                         words.shape[0], words.shape[1], lengths.ctypes.data,
                         out.ctypes.data, out.size))
