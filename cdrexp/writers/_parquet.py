"""Parquet parts: the record table as is (22 columns, integer types, nulls, dictionaries).

Rotation must follow the same ``rotate_bytes`` as CSV, which is an uncompressed CSV size.
Formatting the records as CSV only to measure them would cost as much as writing CSV, so
a part holds ``ceil((rotate_bytes - header) / line)`` rows, ``line`` being the mean CSV line
length of an evenly strided sample of the unit (``SAMPLE_ROWS`` rows; their lengths are
computed by ``line_lengths``, exactly what formatting them would give).
The unit's ``uncompressed_bytes`` is that same estimate of its CSV size.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pyarrow.parquet as pq

from ..model import Records, as_records
from ..stats import FileInfo
from ._csv import HEADER
from ._csv_text import line_lengths
from ._part import PartFile

SAMPLE_ROWS = 1000
CODEC = "zstd"          # takes a level (snappy does not); its default level 1 is in the schema
# min/max statistics only for the sort key (time-range pruning works part by part and
# page by page); on every column they cost ~10 % of the encoding time for little use
STATISTICS = ["start_ts_ms", "end_ts_ms"]


def csv_line_bytes(records: Records) -> float:
    """Mean CSV line length of the records, measured on a strided sample."""
    n = records.num_rows
    if n == 0:
        return 1.0
    idx = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_ROWS)).astype(np.int64))
    return max(float(line_lengths(records, idx).sum()) / idx.size, 1.0)


class ParquetPartWriter:
    def __init__(self, fs, name_of, rotate_bytes: int, level: int, checksum: str):
        self.fs, self.name_of, self.rotate = fs, name_of, rotate_bytes
        self.checksum = checksum
        self.level = level
        self.files: list[FileInfo] = []
        self.uncompressed = 0
        self.format_s = 0.0     # encoding + compression inside pyarrow
        self.compress_s = 0.0   # (part of format_s; not separable for Parquet)
        self.write_s = 0.0
        self._part: PartFile | None = None

    def write_table(self, data) -> None:
        """Write ``data`` (``Records``, or a ``pyarrow.Table`` of them)."""
        t0 = time.perf_counter()
        records = as_records(data)
        line = csv_line_bytes(records)
        table = records.to_arrow()
        self.format_s += time.perf_counter() - t0
        per_part = max(1, math.ceil((self.rotate - len(HEADER)) / line))
        starts = range(0, table.num_rows, per_part) if table.num_rows else [0]
        for start in starts:
            piece = table.slice(start, per_part)
            t0 = time.perf_counter()
            self._part = part = PartFile(self.fs, self.name_of(len(self.files)),
                                              self.checksum)
            pq.write_table(piece, part, compression=CODEC, compression_level=self.level,
                           write_statistics=STATISTICS)
            self.files.append(part.commit(piece.num_rows))
            self._part = None
            self.write_s += part.write_s
            self.format_s += time.perf_counter() - t0 - part.write_s
            self.uncompressed += len(HEADER) + round(piece.num_rows * line)

    # the two steps of ``writers.start_writing``: a Parquet unit is written whole at the
    # first (pyarrow writes each part through ``PartFile`` as it encodes it)
    begin = write_table

    def end(self) -> None:
        pass

    def abort(self) -> None:
        if self._part is not None:
            self._part.discard()
            self._part = None
