"""The CSV kernel: the compiled loop that writes CSV lines (integers and dictionary words,
nulls as empty fields, ``;`` between fields, ``\\n`` after each line), and its build into
a shared library.

numba compiles ``write_lines``; ``build`` emits its machine code as an object file and
links it into a shared library with the C compiler (``cc``). ``_csv_kernel`` runs this
file as a script, in its own process, when its library is missing, and loads the library
with ctypes: the processes that generate never load numba or LLVM (in a process, numba
cost ~0.7 CPU-s and ~100 MB PSS to import and to load its cached code: 4x polars'
import, measured by benchmarks/bench_csv_numba.py). When the library cannot be built,
``_csv_kernel`` imports this module and numba compiles ``write_lines`` in the process.

The text is written backwards, from the end of the buffer: the last line's newline
first, each field's digits from the last one, four at a time from a table. So no field's
width has to be known before it is written, and each store is a fixed size: a field's
last (leftmost) four digits and a word are stored whole, right-aligned, and the bytes
they put left of the field are overwritten by the fields written next. The buffer holds
room for them in front of the first line (``_csv_kernel.pad``); the text is its tail.

    python cdrexp/writers/_csv_build.py OUT.so      # builds the library (numba, cc)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

# the library's one exported function
SYMBOL = "cdrexp_csv_write_lines"

# "0000", "0001", ..., "9999": four digits per lookup, as one uint32 each (the bytes in
# memory order: a little-endian store puts them in place)
DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(),
                        np.uint32).copy()
_SEP, _NEWLINE, _MINUS = 59, 10, 45


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


@njit(nogil=True, boundscheck=False)
def write_lines(values, valid, mask_of, word_of, words, lengths, out):
    """Write the lines of ``values`` (int64, a row of ``values`` per column, an item per
    line) at the end of ``out`` (uint8); return where the text starts. ``out`` holds
    ``_csv_kernel.pad(words)`` bytes more than the text.

    Column ``c`` is null where ``valid[mask_of[c]]`` is False (``mask_of[c] < 0``: never
    null); it holds words when ``word_of[c] >= 0``: value ``v`` stands for the last
    ``lengths[word_of[c] + v]`` bytes of row ``word_of[c] + v`` of ``words`` (uint64:
    each word right-aligned in its row's bytes)."""
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


_P, _I = types.CPointer, types.int64


@cfunc(types.uint64(_P(types.int64), _I, _I, _P(types.bool_), _I, _P(types.int64),
                    _P(types.int64), _P(types.uint64), _I, _I, _P(types.int64),
                    _P(types.uint8), _I), nogil=True)
def _c_write_lines(values, ncols, n, valid, nmasks, mask_of, word_of, words, nwords,
                   lanes, lengths, out, size):
    """``write_lines`` over raw pointers: C-contiguous arrays, their shapes given."""
    return write_lines(carray(values, (ncols, n)), carray(valid, (nmasks, n)),
                       carray(mask_of, (ncols,)), carray(word_of, (ncols,)),
                       carray(words, (nwords, lanes)), carray(lengths, (nwords,)),
                       carray(out, (size,)))


def build(path: str) -> None:
    """The shared library exporting ``SYMBOL`` (``_c_write_lines``) at ``path``
    (written under a temporary name, then renamed: never half a library at ``path``)."""
    import llvmlite.binding as llvm
    from llvmlite import ir

    module = llvm.parse_assembly(_c_write_lines.inspect_llvm())
    module.get_function(_c_write_lines.native_name).name = SYMBOL
    # numba's runtime (exceptions, the GIL, reference counts) is not in the library:
    # only error paths call it, and this kernel has none (no bounds checks, no raise,
    # no allocation). A stub for each keeps the library loadable without numba.
    stubs = ir.Module(name="numba_runtime_stubs")
    stubs.triple = module.triple
    for fn in module.functions:
        if fn.is_declaration and fn.name.startswith(("numba_", "NRT_")):
            body = ir.Function(stubs, ir.FunctionType(ir.VoidType(), []), fn.name)
            ir.IRBuilder(body.append_basic_block()).unreachable()
    module.link_in(llvm.parse_assembly(str(stubs)))
    # position-independent, generic x86-64/arm64 code: a library any process of this
    # machine type can map (numba's own target machine is neither)
    machine = llvm.Target.from_triple(module.triple).create_target_machine(
        opt=3, reloc="pic", codemodel="default")
    folder = os.path.dirname(os.path.abspath(path))
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        obj = os.path.join(tmp, "kernel.o")
        with open(obj, "wb") as fh:
            fh.write(machine.emit_object(module))
        lib = os.path.join(tmp, "kernel.so")
        subprocess.run([os.environ.get("CC", "cc"), "-shared", "-o", lib, obj], check=True,
                       capture_output=True)
        os.replace(lib, path)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python _csv_build.py OUT.so")
    try:
        build(sys.argv[1])
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        sys.exit(f"cannot build the CSV kernel: {exc} {detail.decode(errors='replace')}")
