"""The CSV kernel: the compiled loop that writes CSV lines (integers and dictionary words,
nulls as empty fields, ``;`` between fields, ``\\n`` after each line), and its build into
a shared library.

numba compiles ``write_rows``; ``build`` emits its machine code as an object file and
links it into a shared library with the C compiler (``cc``). ``_csv_kernel`` runs this
file as a script, in its own process, when its library is missing, and loads the library
with ctypes: the processes that generate never load numba or LLVM (in a process, numba
cost ~0.7 CPU-s and ~100 MB PSS to import and to load its cached code: 4x polars'
import, measured by benchmarks/bench_csv_numba.py). When the library cannot be built,
``_csv_kernel`` imports this module and numba compiles ``write_rows`` in the process.

The text is written forwards, into any buffer at any offset, so the CSV writer formats
straight into the buffers it hands to ``write(2)`` (``_csv``): a field's decimal width
comes from its bit length, then its digits are stored four at a time from a table, each
store a fixed size. A store may put bytes past the field's end (a word's whole 8-byte
lanes, a leading group's four bytes); the fields and lines written next overwrite them,
so the buffer holds ``_csv_kernel.slack`` bytes past the text. The columns are read in
their own types through their addresses: no copy of a slice into one dtype.

The library also holds the kernel unrolled for given layouts of columns (``specialise``;
the generator's record layout: ``_csv_kernel.LAYOUTS``), 0.59x the generic loop's CPU;
any other columns take the generic loop.

    python cdrexp/writers/_csv_build.py OUT.so [LAYOUTS_JSON]   # numba, cc
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.cpython.unsafe.numbers import leading_zeros
from numba.extending import intrinsic

# the library's one exported function
SYMBOL = "cdrexp_csv_write_rows"

# "0000", "0001", ..., "9999": four digits per lookup, as one uint32 each (the bytes in
# memory order: a little-endian store puts them in place)
DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(),
                        np.uint32).copy()
# a number's leading group, 1-4 digits left-aligned in its four bytes ("7   ")
LEAD4 = np.frombuffer("".join(f"{i:<4d}" for i in range(10_000)).encode(),
                      np.uint32).copy()
POW10 = np.array([10 ** i for i in range(20)], np.uint64)
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


def _loader(bits: int, signed: bool):
    """An intrinsic ``load(address, i)``: item ``i`` of the ``bits``-bit integers at
    ``address`` (an int64), widened to int64."""
    @intrinsic
    def load(typingctx, address, index):
        def codegen(context, builder, sig, args):
            kind = ir.IntType(bits)
            ptr = builder.gep(builder.inttoptr(args[0], kind.as_pointer()), [args[1]])
            value = builder.load(ptr, align=1)
            if bits == 64:
                return value
            return (builder.sext if signed else builder.zext)(value, ir.IntType(64))
        return types.int64(address, index), codegen
    return load


_i8, _i16, _i32, _i64 = (_loader(b, True) for b in (8, 16, 32, 64))
_u8, _u16, _u32 = (_loader(b, False) for b in (8, 16, 32))


@njit(nogil=True, boundscheck=False, inline="always")
def _value(address, kind, r):
    if kind == 8:
        return _i64(address, r)
    if kind == 4:
        return _i32(address, r)
    if kind == 2:
        return _i16(address, r)
    if kind == 1:
        return _i8(address, r)
    if kind == -4:
        return _u32(address, r)
    if kind == -2:
        return _u16(address, r)
    return _u8(address, r)


# The loop's text, from which numba compiles it: the generic loop (``write_rows``) and
# the loop unrolled for one layout of columns (``specialise``) write each field with the
# same lines. Unrolled, each column's load, null test and field are compiled with its
# kind, mask and word lanes known: no dispatch per field, and LLVM keeps each column's
# state in registers (74 against 126 ns a record for the generic loop on a real unit,
# bench_csv_numba.py).
_HEAD = """\
    digits, lead, pow10 = DIGITS4, LEAD4, POW10
    # unsigned positions: numba checks no wraparound for them
    pos, end_at = np.uint64(at), np.uint64(limit)
    one, four, group = np.uint64(1), np.uint64(4), np.uint64(10_000)
    n64, n1233, n12 = np.uint64(64), np.uint64(1233), np.uint64(12)
    r = start
    while r < stop:
"""
_TAIL = """\
        out[pos] = _NEWLINE
        pos += one
        r += 1
        if pos >= end_at:
            break
    state[0] = r
    state[1] = pos
    return pos
"""
_SEPARATOR = """\
out[pos] = _SEP
pos += one"""
_INT_FIELD = """\
v = {value}
if v < 0:       # the magnitude as uint64 (int64's min included)
    out[pos] = _MINUS
    pos += one
    u = np.uint64(-(v + 1)) + one
else:
    u = np.uint64(v)
# the width: ~log10 from the bit length, corrected by one comparison
t = ((n64 - np.uint64(leading_zeros(u | one))) * n1233) >> n12
end = pos + t + one - np.uint64((u | one) < pow10[t])
e, g = end, np.uint32(0)
while u >= group:
    q = u // group
    e -= four
    g = digits[u - q * group]
    _store(out, e, g)
    u = q
# the leading 1-4 digits; the bytes they put past themselves belong to the first full
# group, stored again
_store(out, pos, lead[u])
if e != end:
    _store(out, e, g)
pos = end"""
_WORD_FIELD = """\
k = {word} + {value}
{stores}
pos += np.uint64(lengths[k])"""
_LOADERS = {8: "_i64", 4: "_i32", 2: "_i16", 1: "_i8", -4: "_u32", -2: "_u16", -1: "_u8"}


def _indent(text: str, spaces: int) -> list[str]:
    return [" " * spaces + line for line in text.splitlines()]


def _compiled(source: str, name: str, doc: str):
    scope = dict(globals())
    exec(compile(source, f"<{name}>", "exec"), scope)
    fn = scope["write_rows"]
    fn.__doc__ = doc
    return njit(nogil=True, boundscheck=False)(fn)


def generic_source() -> str:
    """The source of ``write_rows``: any columns, each field's kind, mask and words read
    from the arguments."""
    body = ["for c in range(ncols):"]
    body += _indent("if c:\n" + "\n".join(_indent(_SEPARATOR, 4)), 4)
    body += _indent("""\
m = mask_of[c]
if m >= 0 and _u8(masks[m], r) == 0:
    continue
v = _value(columns[c], kinds[c], r)
w = word_of[c]
if w >= 0:""", 4)
    stores = ("for j in range(lanes):\n"
              "    _store(out, pos + np.uint64(8 * j), words[k, j])")
    body += _indent(_WORD_FIELD.format(word="w", value="v", stores=stores)
                    + "\ncontinue", 8)
    body += _indent(_INT_FIELD.format(value="v").replace("v = v\n", "", 1), 4)
    return ("def write_rows(columns, kinds, masks, mask_of, word_of, words, lengths, "
            "start, stop, out, at, limit, state):\n"
            "    lanes, ncols = words.shape[1], columns.size\n" + _HEAD
            + "\n".join(_indent("\n".join(body), 8)) + "\n" + _TAIL)


write_rows = _compiled(generic_source(), "write_rows", """\
Write the lines of rows ``start``, ``start + 1``, ... into uint8 array ``out`` from
    ``at`` on, up to row ``stop`` or to the first line ending at or past ``limit``
    (that line included); ``state`` (int64[2]) receives the next row and where the text
    ends, which is also returned. ``out`` must hold ``_csv_kernel.slack`` bytes past
    the furthest the text can reach (``limit`` plus a line, or every row's line).

    Column ``c`` is the integers of kind ``kinds[c]`` (``_csv_kernel.KINDS``) at address ``columns[c]``; it is null where
    the bool at ``masks[mask_of[c]]`` is False (``mask_of[c] < 0``: never null); it holds
    words when ``word_of[c] >= 0``: value ``v`` stands for the first
    ``lengths[word_of[c] + v]`` bytes of row ``word_of[c] + v`` of ``words`` (uint64:
    each word left-aligned in its row's bytes).""")


def specialised_source(layout) -> str:
    """The source of ``write_rows`` for one layout: a ``(kind, masked, lanes)`` per column
    (``lanes`` 0: integers; else words, each at most ``8 * lanes`` bytes). It takes
    ``write_rows``' arguments but ``kinds`` and ``mask_of``: ``masks[c]`` is column
    ``c``'s own mask (read when the layout says masked), and the word table holds at
    least the layout's widest lanes."""
    head = ["def write_rows(columns, masks, word_of, words, lengths, start, stop, out, at,"
            " limit, state):"]
    loop = []
    for c, (kind, masked, lanes) in enumerate(layout):
        head.append(f"    a{c} = columns[{c}]")
        indent = 8
        if c:
            loop += _indent(_SEPARATOR, indent)
        if masked:
            head.append(f"    m{c} = masks[{c}]")
            loop += _indent(f"if _u8(m{c}, r) != 0:", indent)
            indent += 4
        value = f"{_LOADERS[kind]}(a{c}, r)"
        if lanes:
            head.append(f"    w{c} = word_of[{c}]")
            stores = "\n".join(f"_store(out, pos + np.uint64({8 * j}), words[k, {j}])"
                               for j in range(lanes))
            field = _WORD_FIELD.format(word=f"w{c}", value=value, stores=stores)
        else:
            field = _INT_FIELD.format(value=value)
        loop += _indent(field, indent)
    return "\n".join(head) + "\n" + _HEAD + "\n".join(loop) + "\n" + _TAIL


_P, _I = types.CPointer, types.int64


@cfunc(types.uint64(_P(types.int64), _P(types.int64), _I, _P(types.int64), _I,
                    _P(types.int64), _P(types.int64), _P(types.uint64), _I, _I,
                    _P(types.int64), _I, _I, _P(types.uint8), _I, _I, _I, _P(types.int64)),
       nogil=True)
def _c_write_rows(columns, kinds, ncols, masks, nmasks, mask_of, word_of, words, nwords,
                  lanes, lengths, start, stop, out, size, at, limit, state):
    """``write_rows`` over raw pointers: C-contiguous arrays, their shapes given."""
    return write_rows(carray(columns, (ncols,)), carray(kinds, (ncols,)),
                      carray(masks, (nmasks,)), carray(mask_of, (ncols,)),
                      carray(word_of, (ncols,)), carray(words, (nwords, lanes)),
                      carray(lengths, (nwords,)), start, stop, carray(out, (size,)), at,
                      limit, carray(state, (2,)))




def specialise(layout):
    """``write_rows`` compiled for ``layout`` (``specialised_source``), and its C entry
    point over raw pointers."""
    kernel = _compiled(specialised_source(layout), f"write_rows {layout}",
                       "``write_rows`` unrolled for " + repr(layout))
    ncols = len(layout)

    @cfunc(types.uint64(_P(types.int64), _P(types.int64), _P(types.int64),
                        _P(types.uint64), _I, _I, _P(types.int64), _I, _I, _P(types.uint8),
                        _I, _I, _I, _P(types.int64)), nogil=True)
    def c_write_rows(columns, masks, word_of, words, nwords, lanes, lengths, start, stop,
                     out, size, at, limit, state):
        return kernel(carray(columns, (ncols,)), carray(masks, (ncols,)),
                      carray(word_of, (ncols,)), carray(words, (nwords, lanes)),
                      carray(lengths, (nwords,)), start, stop, carray(out, (size,)), at,
                      limit, carray(state, (2,)))
    return kernel, c_write_rows


def specialised_symbol(i: int) -> str:
    return f"{SYMBOL}_{i}"


def build(path: str, layouts=()) -> None:
    """The shared library at ``path`` exporting ``SYMBOL`` (``_c_write_rows``) and, for
    each of ``layouts``, ``specialised_symbol(i)`` (``specialise``); written under a
    temporary name, then renamed: never half a library at ``path``."""
    import llvmlite.binding as llvm

    module = llvm.parse_assembly(_c_write_rows.inspect_llvm())
    module.get_function(_c_write_rows.native_name).name = SYMBOL
    for i, layout in enumerate(layouts):
        _, entry = specialise(layout)
        more = llvm.parse_assembly(entry.inspect_llvm())
        more.get_function(entry.native_name).name = specialised_symbol(i)
        module.link_in(more)
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
    # position-independent code for this machine's CPU (its instruction set: the
    # library's name holds the CPU's flags, so a machine with other flags builds its own).
    # Generic x86-64 code (no LZCNT among others) took 1.17x the CPU of numba's
    # host-tuned code for the same kernel (bench_csv_numba.py: 142 against 121 ns/record)
    machine = llvm.Target.from_triple(module.triple).create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
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
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python _csv_build.py OUT.so [LAYOUTS_JSON]")
    try:
        build(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) == 3 else ())
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        sys.exit(f"cannot build the CSV kernel: {exc} {detail.decode(errors='replace')}")
