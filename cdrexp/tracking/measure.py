"""Measuring one generation: wall time, CPU time and peak memory of the process tree.

CPU time is user+sys of this process and of every descendant: ``getrusage`` gives this
process and the children it has reaped; children still alive at the end (a pool kept
between runs) are read with psutil, and whatever such processes had used before the
measurement started is subtracted. Memory is sampled by ``TreeMemorySampler`` (the sum
of PSS across the tree, so shared memory counts once; also the sum of RSS).
"""
from __future__ import annotations

import dataclasses
import socket
import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Optional, TypeVar

import psutil

from ..config import usable_cores
from ..parallel.cpu import TreeCpu
from ..parallel.memory import (BIN_S, SAMPLE_INTERVAL_S, TreeMemorySampler, peak_of_sum,
                               tree_memory)

if TYPE_CHECKING:
    from ..parallel.dask import ClusterUsage

T = TypeVar("T")


@dataclass
class Measurement:
    wall_s: float
    cpu_s: float                 # user + sys, whole process tree
    peak_pss_bytes: int          # max over samples of the sum of PSS over the tree
    peak_rss_bytes: int          # same for RSS (counts shared pages once per process)
    peak_uss_bytes: int
    max_processes: int
    # PSS of the tree just before the run: its processes' imports (and a forkserver kept
    # from an earlier run), so peak - baseline is what the generation added
    baseline_pss_bytes: int = 0
    # a run on a remote Dask cluster: the figures above add the workers' (measured on
    # the workers) to this process tree's, whose own share is kept here
    client_cpu_s: Optional[float] = None
    client_peak_pss_bytes: Optional[int] = None
    usable_cores: Optional[int] = None      # of every machine that took part
    # PSS of the runner process that started this tree from outside it (the job, with
    # MLflow and Hydra, that ran cli.repeats), at the end of the run; None in-process
    runner_pss_bytes: Optional[int] = None

    def to_dict(self) -> dict:
        return asdict(self)


def measure(fn: Callable[[], T], interval: float = SAMPLE_INTERVAL_S,
            remote: Optional[Callable[[T], Optional[ClusterUsage]]] = None
            ) -> tuple[T, Measurement]:
    """Run ``fn()`` and measure it; returns its result and the measurement.

    ``remote(result)``: the usage of processes outside this tree that ran the work (a
    remote Dask cluster's workers, measured by themselves), added to this tree's with
    this tree's own share kept apart as ``client_cpu_s`` / ``client_peak_pss_bytes``.
    """
    # the tree's first sample, which the peaks include: PSS shrinks when other processes
    # come to map the same libraries, and the samples during a short run alone once read
    # 4 KB under it (a CI run: peak below the baseline)
    before = tree_memory(psutil.Process())
    cpu = TreeCpu()
    sampler = TreeMemorySampler(interval=interval, bin_s=BIN_S)
    t0 = time.perf_counter()
    with sampler:
        result = fn()
    wall = time.perf_counter() - t0
    m = Measurement(
        wall_s=wall, cpu_s=cpu.elapsed(), peak_pss_bytes=max(sampler.peak_pss, before.pss),
        peak_rss_bytes=max(sampler.peak_rss, before.rss),
        peak_uss_bytes=max(sampler.peak_uss, before.uss),
        max_processes=max(sampler.max_processes, before.processes),
        baseline_pss_bytes=before.pss)
    cluster = remote(result) if remote else None
    if cluster is not None:
        pss, rss, uss = peak_of_sum([sampler.bins, cluster.bins])
        m = dataclasses.replace(
            m, cpu_s=m.cpu_s + cluster.cpu_s, peak_pss_bytes=pss, peak_rss_bytes=rss,
            peak_uss_bytes=uss, max_processes=m.max_processes + cluster.processes,
            client_cpu_s=m.cpu_s, client_peak_pss_bytes=m.peak_pss_bytes,
            usable_cores=cluster.cores_with(socket.gethostname(), usable_cores()))
    return result, m


def wall_summary(walls: list[float]) -> dict[str, float]:
    """Median, min, max, sample standard deviation (0 for one repeat) and spread."""
    median, low, high = statistics.median(walls), min(walls), max(walls)
    return {
        "median": median,
        "min": low,
        "max": high,
        "stddev": statistics.stdev(walls) if len(walls) > 1 else 0.0,
        "spread": relative_spread(low, high, median),
    }


def relative_spread(low: float, high: float, median: float) -> float:
    """The repeats' range relative to their median: 0.1 means max - min = 10 %."""
    return (high - low) / median if median else 0.0
