"""The CSV kernel (numba-compiled, loaded as a shared library): the text equals pyarrow's
CSV writer's (an independent reference) on random records with edge values, sliced
anyhow; the library is built where it can be, and numba compiles in the process when it
cannot."""
import os
import shutil
import threading

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from cdrexp.model import Records
from cdrexp.writers import _csv_kernel, _csv_text

INT_TYPES = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32)
WORDS = ("", "x", "MO", "deliveryFailure", "Europe/Amsterdam",
         "America/Argentina/Buenos_Aires")      # empty, short, 16 and 30 bytes


def reference(records: Records) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(records.to_arrow(), sink,
                    pacsv.WriteOptions(include_header=False, delimiter=";",
                                       quoting_style="none"))
    return sink.getvalue().to_pybytes()


def edge_records(n: int, seed: int) -> Records:
    """Every integer type with its min, max, 0, -1, powers of ten and random values;
    columns never null, sometimes null, always null; word columns likewise."""
    rng = np.random.default_rng(seed)
    values, valid, words = {}, {}, {}
    for t in INT_TYPES:
        info = np.iinfo(t)
        picks = [info.min, info.max, 0, 1, 9, 10] + [10 ** k for k in range(len(str(info.max)))
                                                     if 10 ** k <= info.max]
        picks += [-(10 ** k) for k in range(len(str(info.min)) - 1) if -(10 ** k) >= info.min]
        picks += [-1] if info.min < 0 else []
        col = rng.integers(info.min, info.max, n, dtype=t, endpoint=True)
        at = rng.integers(0, n, min(n, len(picks)))
        col[at] = np.array(picks[:at.size]).astype(t)
        name = np.dtype(t).name
        values[name] = col
        values[name + "_some_null"] = col[::-1].copy()
        valid[name + "_some_null"] = rng.random(n) < 0.5
        values[name + "_all_null"] = col.copy()
        valid[name + "_all_null"] = np.zeros(n, bool)
        values[name + "_mask_all_valid"] = col.copy()
        valid[name + "_mask_all_valid"] = np.ones(n, bool)
    values["word"] = rng.integers(0, len(WORDS), n).astype(np.int8)
    words["word"] = WORDS
    values["word_some_null"] = rng.integers(0, 2, n).astype(np.int8)
    words["word_some_null"] = ("DATA", "SMS")
    valid["word_some_null"] = valid["int8_some_null"]       # a shared mask
    values["word_all_null"] = np.zeros(n, np.int8)
    words["word_all_null"] = ("only",)
    valid["word_all_null"] = np.zeros(n, bool)
    return Records(values, valid, words)


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_text_equals_pyarrows_on_edge_values(n):
    records = edge_records(n, seed=n)
    want = reference(records)
    csv = _csv_text.CsvText(records)
    assert csv.text().tobytes() == want
    lines = want.split(b"\n")[:-1]
    for start, rows in [(0, 1), (n - 1, 1), (n // 3, n // 3 + 1), (0, n + 5), (n, 5),
                        (n + 3, 2), (1, 0)]:
        got = csv.text(start, rows).tobytes()
        part = lines[start:start + rows]
        assert got == b"".join(line + b"\n" for line in part), (start, rows)
    assert _csv_text.line_lengths(records).tolist() == [len(x) + 1 for x in lines]


def test_unaligned_slices_concatenate_to_the_whole_and_threads_share_one_csvtext():
    records = edge_records(5000, seed=3)
    csv = _csv_text.CsvText(records)
    whole = reference(records)
    for step in (1, 13, 97, 4096):
        assert b"".join(csv.text(s, step).tobytes() for s in range(0, 5000, step)) == whole
    got = [None] * 8

    def work(i):
        got[i] = b"".join(csv.text(s, 311).tobytes() for s in range(0, 5000, 311))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [whole] * 8


def test_no_columns_and_no_rows():
    assert _csv_text.CsvText(Records({"a": np.zeros(0, np.int64)})).text().size == 0
    empty = _csv_text.CsvText(edge_records(10, seed=1))
    assert empty.text(10, 100).size == 0 and empty.text(3, 0).size == 0


def test_codes_naming_no_word_are_refused():
    """The kernel reads the word table unchecked: CsvText checks the codes first (only
    where not null)."""
    bad = Records({"w": np.array([0, 2], np.int8)}, words={"w": ("a", "b")})
    with pytest.raises(ValueError, match="'w'"):
        _csv_text.CsvText(bad)
    masked = Records({"w": np.array([0, 2], np.int8)}, valid={"w": np.array([True, False])},
                     words={"w": ("a", "b")})
    assert _csv_text.CsvText(masked).text().tobytes() == b"a\n\n"
    negative = Records({"w": np.array([-1, 1], np.int8)}, valid={"w": np.array([True, True])},
                       words={"w": ("a", "b")})
    with pytest.raises(ValueError, match="codes -1..1"):
        _csv_text.CsvText(negative)


def test_uint64_is_refused():
    """uint64 values above int64's range would not survive the kernel's int64 copy."""
    with pytest.raises(TypeError, match="'u'"):
        _csv_text.CsvText(Records({"u": np.array([2 ** 63], np.uint64)}))


def test_columns_check_what_the_kernel_reads_unchecked():
    one = [np.arange(3, dtype=np.int32)]
    cols = _csv_kernel.Columns(one, [], np.full(1, -1), np.full(1, -1), [])
    out = np.zeros(20, np.uint8)
    assert cols.write_rows(0, 3, out, 0, 20) == (3, 6)
    assert out[:6].tobytes() == b"0\n1\n2\n"
    with pytest.raises(TypeError):          # no kind for floats
        _csv_kernel.Columns([np.zeros(3)], [], np.full(1, -1), np.full(1, -1), [])
    with pytest.raises(ValueError):         # a mask that is not there
        _csv_kernel.Columns(one, [], np.zeros(1), np.full(1, -1), [])
    with pytest.raises(ValueError):         # lengths differ
        _csv_kernel.Columns(one, [np.ones(2, bool)], np.zeros(1), np.full(1, -1), [])
    with pytest.raises(TypeError):          # a strided buffer
        cols.write_rows(0, 3, np.zeros(20, np.uint8)[::2], 0, 20)
    # strided columns are read as they are (copied once, contiguous)
    strided = _csv_kernel.Columns([np.arange(6, dtype=np.int64)[::2]], [], np.full(1, -1),
                                  np.full(1, -1), [])
    assert strided.write_rows(0, 3, out, 0, 20) == (3, 6) and out[:6].tobytes() == b"0\n2\n4\n"


def test_write_rows_stops_at_the_line_that_reaches_the_limit_and_resumes():
    """Into the caller's buffer at any offset: each call stops after the first line
    ending at or past ``limit``, the next call goes on from the row it reached, and the
    pieces are the whole text; bytes before ``at`` are never touched."""
    records = edge_records(500, seed=9)
    csv = _csv_text.CsvText(records)
    whole = reference(records)
    lines = whole.split(b"\n")[:-1]
    for at, step in [(0, 1), (3, 100), (4096, 777), (1, 10 ** 6)]:
        got, row = b"", 0
        while row < 500:
            out = np.full(at + step + csv.bound + csv.slack, 0xAB, np.uint8)
            nxt, end = csv.write_rows(row, out, at, at + step)
            assert nxt > row and out[:at].tobytes() == b"\xab" * at
            text = out[at:end].tobytes()
            assert text == b"".join(x + b"\n" for x in lines[row:nxt])
            # it stopped on the line that reached the limit, or at the last row
            assert nxt == 500 or (end >= at + step and end - len(lines[nxt - 1]) - 1 < at + step)
            got, row = got + text, nxt
        assert got == whole
    with pytest.raises(ValueError, match="cannot take"):
        csv.write_rows(0, np.zeros(100, np.uint8), 0, 100)


def _unbuildable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "cache"            # mkdir under a file fails, even as root


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) to link with")
def test_the_library_is_built_where_it_can_be_and_loaded(tmp_path, monkeypatch):
    """A missing library is built (numba in a process of its own, cc); an unwritable
    first place (a read-only install) falls through to the next (the user's cache)."""
    user = tmp_path / "user-cache"
    monkeypatch.setattr(_csv_kernel, "cache_dirs", lambda: [_unbuildable(tmp_path), user])
    fn, specialised = _csv_kernel._c_function()
    assert (user / _csv_kernel.library_name()).is_file()
    assert fn.__name__ == "cdrexp_csv_write_rows"
    assert [f.__name__ for f in specialised] == ["cdrexp_csv_write_rows_0"]
    assert _csv_kernel._c_function()[0].__name__ == fn.__name__     # found, not rebuilt


def test_without_a_library_numba_compiles_in_the_process(tmp_path, monkeypatch):
    records = edge_records(300, seed=5)
    monkeypatch.setattr(_csv_kernel, "cache_dirs", lambda: [_unbuildable(tmp_path)])
    with pytest.warns(RuntimeWarning, match="numba compiles it in this process"):
        fn, specialised = _csv_kernel._c_function()
    assert specialised == []        # the generic loop only (compiling costs each process)
    fn.restype, fn.argtypes = _csv_kernel._FUNCTION.restype, _csv_kernel._FUNCTION.argtypes
    monkeypatch.setattr(_csv_kernel, "_FUNCTION", fn)
    monkeypatch.setattr(_csv_kernel, "_SPECIALISED", specialised)
    assert _csv_text.CsvText(records).text().tobytes() == reference(records)
    cdr = record_layout_records(500, seed=5)
    csv = _csv_text.CsvText(cdr)
    assert csv._columns.specialised is None
    assert csv.text().tobytes() == reference(cdr)


def test_the_unrolled_kernel_compiled_by_numba_writes_the_same_text():
    """The unrolled loop as numba compiles it (what the library links), called
    directly: the same text as pyarrow's on edge values."""
    from cdrexp.writers import _csv_build
    records = record_layout_records(700, seed=8)
    c = _csv_text.CsvText(records)._columns
    kernel, _ = _csv_build.specialise(_csv_kernel.LAYOUTS[0])
    out = np.zeros(700 * 400, np.uint8)
    end = kernel(c.columns, c.column_masks, c.word_of, c.words, c.lengths, 0, 700, out, 0,
                 out.size - 1000, np.zeros(2, np.int64))
    assert out[:end].tobytes() == reference(records)


def test_the_library_is_named_for_the_cpus_flags(monkeypatch):
    """It is compiled for this CPU's instruction set: a machine with other flags (an
    install shared over NFS, a VM moved to another host) builds and loads its own."""
    assert _csv_kernel.cpu_flags() or not os.path.exists("/proc/cpuinfo")
    here = _csv_kernel.library_name()
    monkeypatch.setattr(_csv_kernel, "cpu_flags", lambda: "fpu sse2")
    assert _csv_kernel.library_name() != here


def record_layout_records(n: int, seed: int, tz_name: str = "Europe/Amsterdam") -> Records:
    """Records in the generator's layout (``model.schema``), with edge values: each
    integer column's type's min, max, 0, -1 and random values; each nullable column with
    a mask of its own (random, and in turn all null and all valid); every word."""
    from cdrexp.model.schema import COLUMN_TYPES, NULLABLE, WORDS as RECORD_WORDS
    rng = np.random.default_rng(seed)
    values, valid, words = {}, {}, {**RECORD_WORDS, "tz_name": (tz_name,)}
    for c, (name, kind) in enumerate(COLUMN_TYPES.items()):
        if kind == "dict":
            values[name] = rng.integers(0, len(words[name]), n).astype(np.int8)
        else:
            info = np.iinfo(kind)
            col = rng.integers(info.min, info.max, n, dtype=kind, endpoint=True)
            col[rng.integers(0, n, 4)] = np.array([info.min, info.max, 0, -1]).astype(kind)
            values[name] = col
        if name in NULLABLE:
            valid[name] = (rng.random(n) < 0.5, np.zeros(n, bool), np.ones(n, bool))[c % 3]
    return Records(values, valid, words)


@pytest.mark.parametrize("n", [1, 3, 2000])
def test_the_records_layout_takes_the_unrolled_kernel_and_writes_the_same_text(n):
    """The generator's records are written by the kernel unrolled for their layout
    (``LAYOUTS``): the same text as pyarrow's, with edge values, nulls anywhere, a 32-byte
    time zone (IANA's longest names), sliced anyhow and resumed at any limit."""
    for tz in ("Europe/Amsterdam", "America/Argentina/ComodRivadavia"):
        records = record_layout_records(n, seed=n, tz_name=tz)
        csv = _csv_text.CsvText(records)
        assert csv._columns.specialised == 0
        want = reference(records)
        assert csv.text().tobytes() == want
        lines = want.split(b"\n")[:-1]
        for start, rows in [(0, 1), (n - 1, 1), (n // 3, n // 3 + 1), (n, 5)]:
            assert csv.text(start, rows).tobytes() == b"".join(
                line + b"\n" for line in lines[start:start + rows])
        got, row, step = b"", 0, 333
        while row < n:
            out = np.full(step + csv.bound + csv.slack, 0xAB, np.uint8)
            row, end = csv.write_rows(row, out, 0, step)
            got += out[:end].tobytes()
        assert got == want


def test_columns_the_layout_does_not_fit_take_the_generic_loop():
    """A wider word than the layout's lanes (a 33-byte zone name), a column less, a
    nullable column without a mask: the generic loop writes them, the same text."""
    wide = record_layout_records(300, seed=1, tz_name="Z" * 33)
    narrow = record_layout_records(300, seed=2)
    del narrow.values["rat"], narrow.valid["rat"]
    unmasked = record_layout_records(300, seed=3)
    del unmasked.valid["msisdn_dst"]
    for records in (wide, narrow, unmasked):
        csv = _csv_text.CsvText(records)
        assert csv._columns.specialised is None
        assert csv.text().tobytes() == reference(records)


def test_a_real_unit_takes_the_unrolled_kernel():
    from cdrexp.config import GeneratorConfig
    from cdrexp.model import build_population, plan_units
    from cdrexp.model.records import generate_records
    cfg = GeneratorConfig(subs=1500, days=1, seed=3, workers=1)
    records = generate_records(cfg, build_population(cfg), plan_units(cfg)[0])
    csv = _csv_text.CsvText(records)
    assert csv._columns.specialised == 0
    assert csv.text().tobytes() == reference(records)
