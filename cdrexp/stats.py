"""Statistics that travel back from work units and out of a whole generation.

Small, picklable, JSON-able: only these cross process boundaries, never records.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass
class FileInfo:
    path: str           # relative to the output root, e.g. 2025-01-01/cdr_..._p000.csv
    rows: int
    bytes: int          # size on disk
    checksum: str       # hex digest, of the run's output.checksum algorithm


@dataclass
class UnitResult:
    day_index: int
    chunk: int
    date: str                                   # YYYY-MM-DD
    rows_by_type: dict[str, int] = field(default_factory=dict)
    files: list[FileInfo] = field(default_factory=list)
    uncompressed_bytes: int = 0
    generation_s: float = 0.0                   # model: events and records
    formatting_s: float = 0.0                   # records -> bytes (incl. compression)
    writing_s: float = 0.0                      # bytes -> disk, checksum, rename
    process: str = ""                           # "host:pid" of the process that ran it

    @property
    def rows(self) -> int:
        return sum(self.rows_by_type.values())


@dataclass
class Progress:
    units_done: int
    units_total: int
    rows_written: int


@dataclass
class GenerationStats:
    subs: int
    days: int
    workers: int                                # processes that ran units (workers_used)
    output_format: str
    rows_by_type: dict[str, int]
    bytes_written: int                          # on disk, all files incl. cells.csv
    uncompressed_bytes: int
    files: int
    wall_s: float
    # phase times: population is wall time in the parent; the others are summed over
    # units (so CPU-seconds across workers, comparable between worker counts)
    population_s: float
    generation_s: float
    formatting_s: float
    writing_s: float
    out: str = ""
    # a remote Dask cluster's workers that ran the units, as they measured themselves
    # (parallel._dask_usage.ClusterUsage, or its to_dict() once read back by from_dict);
    # None when every process was this one's child
    cluster: Optional[object] = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return sum(self.rows_by_type.values())

    def to_dict(self) -> dict:
        d = asdict(dataclasses.replace(self, cluster=None))
        d["rows"] = self.rows
        c = self.cluster
        d["cluster"] = c if c is None or isinstance(c, dict) else c.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GenerationStats":
        """The inverse of ``to_dict`` (the cluster's usage stays its summary dict)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})
