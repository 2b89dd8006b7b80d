"""CSV parts (plain, gzip, zstd): ``_csv_text`` formats, this module cuts parts and compresses.

The unit's records are formatted in slices of ``BATCH_ROWS`` rows into memory; each
formatted slice is cut at a newline where the current part reaches ``rotate_bytes``
(uncompressed, header included), so a part ends on the line that makes it reach the
limit: ``rotate_bytes <= size < rotate_bytes + one line``.

Compression is one-shot per written block: gzip members from the configured DEFLATE
implementation (``output.gzip_backend``: ISA-L by default, libdeflate or zlib), zstd
frames from ``pyarrow.Codec`` (which takes a level, unlike
``pyarrow.CompressedOutputStream``). A file is then a sequence of gzip members or zstd
frames: valid by both formats' specs and read whole by gzip/zstd, Python's gzip, pandas
and pyarrow. It also lets blocks compress in parallel (every codec here drops the GIL).

A pipeline keeps every stage busy (the compiled formatter, called through ctypes, the
codecs, the hash and write(2) all release the GIL):

    format slices (``threads`` threads) -> cut into parts (calling thread, cheap)
        -> compress blocks (same threads) -> hash + write, in order (one writer thread)

Every file operation runs on the writer thread, in submission order, so parts are opened,
filled and committed sequentially. At most about ``2 * threads + 2`` slices are held.
"""
from __future__ import annotations

import functools
import threading
import time
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ..config import OutputConfig
from ..model import CSV_HEADER, as_records
from ..stats import FileInfo
from ._csv_text import CsvText
from ._direct import STAGE_BYTES, give_back, take_buffer
from ._part import PartFile

# ~6 MB of text per slice at ~175 bytes a line: per-call overhead is negligible and the
# slices in flight stay small next to a worker's event arrays
BATCH_ROWS = 32_768
# Plain CSV: slices of at most this many rows. Nothing is compressed, so the slice size
# does not shape the output; smaller slices shrink the text in flight (2 x threads + 2
# slices of ~1.4 MB, plus each one's int64 copy of the columns). With polars each slice
# cost a call's overhead (CPU s of the tree at 200k, 2 workers: 4.28 / 4.41 / 4.68 at
# 32768 / 16384 / 8192 rows); the compiled kernel's is a few microseconds: at 200k,
# 2 workers (bench_lean.py c200k, 3 rounds, load 1.0-1.4), 8192 against 16384 rows took
# 0.97x the CPU-s at 0.81x the tree's peak PSS (183 against 225 MB), and 4096 against
# 8192 1.00x the CPU-s at 0.88x the PSS but 1.11x the wall time (load 1.4-2.3). Once the
# workers' threads shared one malloc arena (parallel/_alloc.py): 4096 against 8192 0.99x
# the CPU-s, 0.97x the wall, 0.93x the PSS (133 against 143 MB; 4 rounds, load 2.0-2.3);
# 2048 against 4096 1.07x the CPU-s for 0.95x the PSS.
# Compressed formats keep BATCH_ROWS: a slice is their block, so it fixes their bytes.
PLAIN_BATCH_ROWS = 4_096
_NEWLINE = 10
HEADER = CSV_HEADER.encode()
# plain CSV, one formatting thread (_write_plain): buffers in turn, one being formatted
# while the writer thread hashes and writes the other. A third bought nothing measurable
# while every unit waited for its last write before it ended, and cost each worker 2 MB
# (200k csv, 2 workers, tree peak 104 against 108 MB). More are added only while a
# device is slower than the formatter, up to RING_MOST: the worker then generates its
# next unit while they are written. 1M csv to disk, 2 workers, alternating runs: wall
# 6.26-6.30 s at most 2, 6.03-6.20 at 4, 6.06-6.12 at 6 (docs/parallel.md, issue 19's
# seventh round). With the buffers in huge pages the device keeps up better (eighth
# round): at most 3 against 4, 1M csv wall 3.56-4.20 against 3.68-3.99 s, tree peak
# 122 against 126 MB (200k: 114 against 118 MB, same wall); at most 2, 4.08-4.33 s
RING_BUFFERS = 2
RING_MOST = 3

EXTENSIONS = {"csv": ".csv", "csv_gz": ".csv.gz", "csv_zst": ".csv.zst"}
# ISA-L's match window: 4 KB, not DEFLATE's 32 KB. Rows in time order repeat the rows
# just before them; on cdrexp's CSV, levels 1-3 are then both ~20 % faster and ~4 %
# smaller (level 1: 598 against 499 MB/s, ratio 3.72 against 3.57; level 0 gets faster
# and larger). Any inflater reads it: the window only bounds match distances.
ISAL_HIST_BITS = 12


def gzip_compressor(backend: str, level: int):
    """``compress(data) -> one gzip member`` (header with mtime 0, so equal input gives
    equal bytes) from ``backend``, one of ``GZIP_BACKENDS``."""
    if backend == "isal":
        from isal import igzip_lib
        return functools.partial(igzip_lib.compress, level=level, flag=igzip_lib.COMP_GZIP,
                                 hist_bits=ISAL_HIST_BITS)
    if backend == "libdeflate":
        import deflate
        return functools.partial(deflate.gzip_compress, compresslevel=level)
    if backend == "zlib":
        return functools.partial(zlib.compress, level=level, wbits=31)
    raise ValueError(f"unknown gzip backend {backend!r}")


def _zstd_compressor(level: int):
    # Arrow's codec objects keep stream state: one per thread
    codecs = threading.local()

    def compress(data):
        codec = getattr(codecs, "codec", None)
        if codec is None:
            import pyarrow as pa    # only zstd needs Arrow in a CSV worker
            codec = codecs.codec = pa.Codec("zstd", compression_level=level)
        return codec.compress(data, asbytes=False)
    return compress


def block_compressor(output: OutputConfig):
    """``compress(data)`` for one block of ``output.format``; None for plain CSV."""
    if output.format == "csv_gz":
        return gzip_compressor(output.gzip_backend, output.level())
    if output.format == "csv_zst":
        return _zstd_compressor(output.level())
    return None


def _cut(text: np.ndarray, pos: int, room: int) -> int:
    """End (exclusive) of the line holding byte ``pos + room - 1``: where a part that has
    ``room`` bytes left before the limit must end."""
    i = pos + max(room, 1) - 1
    step = 4096
    while i < text.size:
        hits = np.flatnonzero(text[i:i + step] == _NEWLINE)
        if hits.size:
            return i + int(hits[0]) + 1
        i += step
    return text.size        # no newline after pos + room: the rest is one (last) line


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


class _Ring:
    """Page-aligned buffers in turn: ``take`` gives a free one, a new one while every
    buffer's write is under way, fewer than ``most`` exist and ``grow`` says so (the
    device is slower than the formatter: a deeper queue lets the worker generate its
    next unit while this one's last buffers go out), else waits for the oldest write
    (``sent``).
    Buffers outlive the writer (``_direct.take_buffer``, ``give_back``)."""

    def __init__(self, nbytes: int, count: int = RING_BUFFERS, most: int = RING_MOST):
        self.nbytes, self.most, self.count = nbytes, most, 0
        self._free: deque = deque()
        self._busy: deque = deque()     # (buffer, the future of its last write)
        while self.count < count:
            self._free.append(self._new())

    def _new(self) -> np.ndarray:
        """A spare buffer if one fits, else a new one; counted as this ring's."""
        self.count += 1
        return take_buffer(self.nbytes)

    def take(self, grow: bool = True, wait=Future.result) -> np.ndarray:
        """A free buffer; ``wait(future)`` waits for the oldest write (raising its error,
        or the error of a write before it)."""
        if not self._free:
            buf, future = self._busy[0]
            if grow and not future.done() and self.count < self.most:
                return self._new()
            self._busy.popleft()
            wait(future)
            self._free.append(buf)
        return self._free.popleft()

    def sent(self, buf: np.ndarray, future: Future) -> None:
        self._busy.append((buf, future))

    def release(self) -> None:
        """Back to the spares: only buffers no write may still read (after a failure,
        the busy ones are dropped; their memory goes when the last reference does)."""
        for buf in list(self._free) + [b for b, f in self._busy if f.done()]:
            give_back(buf)
        self._free.clear()
        self._busy.clear()


class CsvPartWriter:
    """Writes one unit's records as rotated CSV parts; ``name_of(part)`` gives each path.

    ``files`` lists the committed parts (also after a failure, so they can be removed);
    ``abort()`` drops the part being written.
    """

    def __init__(self, fs, name_of, output: OutputConfig, threads: int = 1):
        self.fs, self.name_of, self.rotate = fs, name_of, output.rotate_bytes
        self.checksum = output.checksum
        self._compressor = block_compressor(output)
        self.threads = max(1, threads)
        self.files: list[FileInfo] = []
        self.uncompressed = 0
        self.format_s = 0.0     # busy seconds in CSV formatting
        self.compress_s = 0.0   # busy seconds in the codec
        self.write_s = 0.0      # busy seconds hashing, writing, renaming
        # the current part as the calling thread plans it (sizes only)
        self._parts_opened = 0
        self._size: int | None = None      # None: no part open
        self._rows = 0
        self._header_pending = False
        # the current file, touched only on the writer thread
        self._file: PartFile | None = None
        self._w_failed = False
        self._pool: ThreadPoolExecutor | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._queued: deque[Future] = deque()
        self._ring: _Ring | None = None
        # the parts go to a device around the page cache (O_DIRECT): known once the
        # writer thread opened the first; only then may the ring grow (a copy into the
        # page cache or tmpfs is CPU work, which more buffers would not speed up)
        self.to_device = False

    # -- calling thread ------------------------------------------------------------------
    def write_table(self, data) -> None:
        """Write ``data`` (``Records``, or a ``pyarrow.Table`` of them)."""
        self.begin(data)
        self.end()

    def begin(self, data) -> None:
        """Format and write ``data``; the last writes of plain CSV formatted by one
        thread may still be under way when it returns: ``end`` waits for them and
        commits the last part. Between the two the caller may generate its next unit
        (``parallel/_worker.py``): the disk is kept busy meanwhile."""
        records = as_records(data)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="cdrexp-format")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="cdrexp-writer")
        ok = False
        try:
            if self._compressor is None and self.threads == 1:
                self._write_plain(records)
            else:
                self._write_slices(records)
            ok = True
        finally:
            if not ok:
                self._stop(ok)

    def end(self) -> None:
        """Wait for the writes ``begin`` left under way (raising their errors)."""
        ok = False
        try:
            self._drain(0)
            ok = True
        finally:
            self._stop(ok)

    def _stop(self, ok: bool) -> None:
        self._pool.shutdown(wait=True, cancel_futures=not ok)
        self._writer.shutdown(wait=True, cancel_futures=not ok)
        if self._ring is not None:
            self._ring.release()
            self._ring = None

    def _write_slices(self, records) -> None:
        """Slices formatted by the pool's threads (compressed formats, or plain CSV
        with several threads), then cut into parts and queued for the writer."""
        batch = BATCH_ROWS if self._compressor else min(BATCH_ROWS, PLAIN_BATCH_ROWS)
        starts = iter(range(0, records.num_rows, batch))
        t0 = time.perf_counter()
        csv = CsvText(records)
        self.format_s += time.perf_counter() - t0
        texts: deque[Future] = deque()
        sizes: deque[int] = deque()

        def format_next() -> None:
            start = next(starts, None)
            if start is not None:
                texts.append(self._pool.submit(_timed, csv.text, start, batch))
                sizes.append(min(batch, records.num_rows - start))

        for _ in range(self.threads):
            format_next()
        while texts:
            text, secs = texts.popleft().result()
            self.format_s += secs
            format_next()
            self._add(text, sizes.popleft())
            self._drain(2 * self.threads)
        if self._size is None and self._parts_opened == 0:
            self._open()                # no records: a header-only part
        if self._size is not None:
            self._close()
        self._drain(0)

    def _write_plain(self, records) -> None:
        """Plain CSV, one formatting thread: lines are formatted straight into page-
        aligned buffers of ``STAGE_BYTES`` (plus a line) that the writer thread hashes
        and writes whole, so ``O_DIRECT`` sends them to the device uncopied. What a
        buffer holds past ``STAGE_BYTES`` (part of a line) starts the next buffer.
        Returns with the last buffers' writes (and the last commit) under way."""
        t0 = time.perf_counter()
        csv = CsvText(records)
        ring = self._ring = _Ring(STAGE_BYTES + csv.bound + csv.slack)
        self.format_s += time.perf_counter() - t0
        row, n = 0, records.num_rows
        while True:
            # a new part: the header, then lines up to the part's limit
            self._open()
            buf, at = ring.take(self.to_device, self._wait_for), len(HEADER)
            buf[:at] = np.frombuffer(HEADER, np.uint8)
            part_bytes = 0          # of the part, before this buffer
            while True:
                part_left = self.rotate - part_bytes
                t0 = time.perf_counter()
                nxt, at = csv.write_rows(row, buf, at, min(STAGE_BYTES, part_left))
                self.format_s += time.perf_counter() - t0
                self._rows += nxt - row
                row = nxt
                if at >= part_left or row == n:
                    ring.sent(buf, self._queue(self._w_write, [buf[:at]]))
                    self._size = part_bytes + at
                    break
                # a full buffer (of this part): the line past its end goes first
                # into the next buffer
                ring.sent(buf, self._queue(self._w_write, [buf[:STAGE_BYTES]]))
                nxt_buf = ring.take(self.to_device, self._wait_for)
                nxt_buf[:at - STAGE_BYTES] = buf[STAGE_BYTES:at]
                buf, at = nxt_buf, at - STAGE_BYTES
                part_bytes += STAGE_BYTES
            self._header_pending = False
            self._close()
            if row == n:
                break

    def _drain(self, keep: int) -> None:
        """Wait until at most ``keep`` writer tasks are queued (raising their errors)."""
        while len(self._queued) > keep:
            self._queued.popleft().result()

    def _wait_for(self, future: Future) -> None:
        """Wait for one writer task, and for those queued before it first: the first
        error raised is the first that happened (a full disk, not "an earlier write of
        this unit failed")."""
        while self._queued:
            done = self._queued.popleft()
            done.result()
            if done is future:
                return
        future.result()

    def _queue(self, fn, *args) -> Future:
        future = self._writer.submit(self._w_run, fn, args)
        self._queued.append(future)
        return future

    def _open(self) -> None:
        rel = self.name_of(self._parts_opened)
        self._parts_opened += 1
        self._size, self._rows, self._header_pending = len(HEADER), 0, True
        self._queue(self._w_open, rel)

    def _close(self) -> None:
        if self._header_pending:
            self._block(b"", 0)
        self.uncompressed += self._size
        self._queue(self._w_commit, self._rows)
        self._size = None

    def _block(self, lines, rows: int) -> None:
        """Append lines to the open part; the header goes out with its first block, so a
        compressed part has no header-only frame."""
        pieces = [HEADER, lines] if self._header_pending else [lines]
        self._header_pending = False
        self._size += memoryview(lines).nbytes
        self._rows += rows
        if self._compressor is None:
            self._queue(self._w_write, pieces)
        else:
            self._queue(self._w_write_compressed, self._pool.submit(self._compress, pieces))

    def _add(self, text: np.ndarray, rows: int) -> None:
        view, arr = memoryview(text), text
        n, pos = len(view), 0
        while pos < n:
            if self._size is None:
                self._open()
            room = self.rotate - self._size
            if n - pos < room:
                self._block(view[pos:], rows)
                return
            end = _cut(arr, pos, room)
            head_rows = int(np.count_nonzero(arr[pos:end] == _NEWLINE))
            self._block(view[pos:end], head_rows)
            rows -= head_rows
            pos = end
            self._close()

    # -- pool threads --------------------------------------------------------------------
    def _compress(self, pieces: list):
        t0 = time.perf_counter()
        block = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return self._compressor(block), time.perf_counter() - t0

    # -- writer thread -------------------------------------------------------------------
    def _w_run(self, fn, args) -> None:
        """Once a writer task has failed, the tasks queued after it do nothing: a part
        that missed a block must never be committed under its final name."""
        if self._w_failed:
            raise RuntimeError("an earlier write of this unit failed")
        try:
            fn(*args)
        except BaseException:
            self._w_failed = True
            raise

    def _w_open(self, rel: str) -> None:
        self._file = PartFile(self.fs, rel, self.checksum)
        self.to_device = self._file.to_device

    def _w_write(self, pieces: list) -> None:
        for p in pieces:
            self._file.write(p)

    def _w_write_compressed(self, compressed: Future) -> None:
        out, secs = compressed.result()
        self.compress_s += secs
        self._file.write(out)

    def _w_commit(self, rows: int) -> None:
        f = self._file
        self.files.append(f.commit(rows))
        self.write_s += f.write_s
        self._file = None

    def abort(self) -> None:
        """After a failure (pools already stopped): drop the part being written."""
        if self._file is not None:
            self._file.discard()
            self._file = None
