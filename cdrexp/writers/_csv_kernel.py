"""The compiled loop that writes CSV lines: integers and dictionary words, nulls as
empty fields, ``;`` between fields, ``\\n`` after each line.

numba compiles it (``nogil``: the writer's threads format while others compress, hash and
write; ``cache``: the machine code is kept in ``__pycache__`` beside this module, so a
process loads it instead of compiling it again, and forked workers share the loaded code).

The text is written backwards, from the end of the buffer: the last line's newline
first, each field's digits from the last one, four at a time from a table. So no field's
width has to be known before it is written, and each store is a fixed size: a field's
last (leftmost) four digits and a word are stored whole, right-aligned, and the bytes
they put left of the field are overwritten by the fields written next. The buffer holds
room for them in front of the first line (``pad``); the text is its tail.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

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
