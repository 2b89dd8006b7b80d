"""CSV parts (plain, gzip, zstd): pyarrow formats, this module cuts parts and compresses.

The unit's table is formatted in slices of ``BATCH_ROWS`` rows into memory; each
formatted slice is cut at a newline where the current part reaches ``rotate_bytes``
(uncompressed, header included), so a part ends on the line that makes it reach the
limit: ``rotate_bytes <= size < rotate_bytes + one line``.

Compression is one-shot per written block with ``pyarrow.Codec`` (which takes a level,
unlike ``pyarrow.CompressedOutputStream``). A file is then a sequence of gzip members or
zstd frames: valid by both formats' specs and read whole by gzip/zstd, Python's gzip and
pyarrow.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..model.schema import CSV_HEADER
from ..stats import FileInfo
from ._part import PartFile

# ~12 MB of text per slice at ~190 bytes a line: large enough that per-call overhead
# vanishes, small enough that a worker's buffers stay far below its event arrays
BATCH_ROWS = 65_536
_NEWLINE = 10
HEADER = CSV_HEADER.encode()
_WRITE_OPTIONS = pacsv.WriteOptions(include_header=False, delimiter=";",
                                    quoting_style="none", batch_size=8192)

# None = the compression library's own default (zlib 6, zstd 3), not Arrow's (gzip 9,
# which is several times slower for a few percent)
CODECS = {"csv": None, "csv_gz": "gzip", "csv_zst": "zstd"}
DEFAULT_LEVELS = {"gzip": 6, "zstd": 3}
EXTENSIONS = {"csv": ".csv", "csv_gz": ".csv.gz", "csv_zst": ".csv.zst"}


def format_csv(table: pa.Table) -> pa.Buffer:
    """Records as ``;``-separated lines, no header, nulls as empty fields, no quotes."""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, _WRITE_OPTIONS)
    return sink.getvalue()


class _CsvPart:
    """A part file being filled: uncompressed size and row count, optional codec. The
    header goes out with the first block, so a compressed part has no header-only frame."""

    def __init__(self, fs, rel: str, codec: pa.Codec | None):
        self.file = PartFile(fs, rel)
        self.codec = codec
        self.size = len(HEADER)     # uncompressed bytes, header included
        self.rows = 0
        self.compress_s = 0.0
        self._header_pending = True

    def add(self, lines, rows: int) -> None:
        pieces = [HEADER, lines] if self._header_pending else [lines]
        self._header_pending = False
        self.size += memoryview(lines).nbytes
        self.rows += rows
        if self.codec is None:
            for p in pieces:
                self.file.write(p)
            return
        t0 = time.perf_counter()
        block = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        out = self.codec.compress(block, asbytes=False)
        self.compress_s += time.perf_counter() - t0
        self.file.write(out)

    def commit(self) -> FileInfo:
        if self._header_pending:
            self.add(b"", 0)
        return self.file.commit(self.rows)


def _cut(text: np.ndarray, pos: int, room: int) -> int:
    """End (exclusive) of the line holding byte ``pos + room - 1``: where a part that has
    ``room`` bytes left before the limit must end."""
    i = pos + max(room, 1) - 1
    step = 4096
    while True:
        hits = np.flatnonzero(text[i:i + step] == _NEWLINE)
        if hits.size:
            return i + int(hits[0]) + 1
        i += step


class CsvPartWriter:
    """Writes one unit's records as rotated CSV parts; ``name_of(part)`` gives each path."""

    def __init__(self, fs, name_of, fmt: str, rotate_bytes: int, level: int | None):
        self.fs, self.name_of, self.rotate = fs, name_of, rotate_bytes
        codec = CODECS[fmt]
        self.codec = None if codec is None else pa.Codec(
            codec, compression_level=DEFAULT_LEVELS[codec] if level is None else level)
        self.files: list[FileInfo] = []
        self.uncompressed = 0
        self.format_s = 0.0     # pyarrow's CSV formatting
        self.compress_s = 0.0   # codec time of closed parts
        self.write_s = 0.0      # hashing + writing + rename of closed parts
        self._part: _CsvPart | None = None

    def write_table(self, table: pa.Table) -> None:
        """Format slice i+1 while a writer thread cuts, compresses, hashes and writes
        slice i (pyarrow, the codecs, hashlib and write(2) all release the GIL). At most
        two formatted slices exist at a time."""
        with ThreadPoolExecutor(1, thread_name_prefix="cdrexp-writer") as pool:
            pending = None
            try:
                for start in range(0, table.num_rows, BATCH_ROWS):
                    piece = table.slice(start, BATCH_ROWS)
                    t0 = time.perf_counter()
                    text = format_csv(piece)
                    self.format_s += time.perf_counter() - t0
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(self._add, text, piece.num_rows)
                if pending is not None:
                    pending, last = None, pending
                    last.result()
            finally:
                if pending is not None:     # failing: let the writer stop before abort()
                    wait([pending])
        if self._part is None and not self.files:   # no records: a header-only file
            self._open()
        if self._part is not None:
            self._close()

    def _open(self) -> _CsvPart:
        self._part = _CsvPart(self.fs, self.name_of(len(self.files)), self.codec)
        return self._part

    def _close(self) -> None:
        part = self._part
        self.files.append(part.commit())
        self._part = None
        self.uncompressed += part.size
        self.compress_s += part.compress_s
        self.write_s += part.file.write_s

    def _add(self, text: pa.Buffer, rows: int) -> None:
        view = memoryview(text)
        n, pos = len(view), 0
        arr = None
        while pos < n:
            part = self._part or self._open()
            room = self.rotate - part.size
            if n - pos < room:
                part.add(view[pos:], rows)
                return
            if arr is None:
                arr = np.frombuffer(text, dtype=np.uint8)
            end = _cut(arr, pos, room)
            head_rows = int(np.count_nonzero(arr[pos:end] == _NEWLINE))
            part.add(view[pos:end], head_rows)
            rows -= head_rows
            pos = end
            self._close()

    def abort(self) -> None:
        if self._part is not None:
            self._part.file.discard()
            self._part = None
