"""Peak memory of a process tree: the sum of PSS across a process and all its descendants.

RSS counts a shared page once per process that maps it, so summing RSS over workers that
share the population overstates memory by (workers - 1) populations. PSS (proportional set
size) divides each shared page among its mappers, so the sum over the tree counts it once.
Both sums are sampled in a background thread; processes that appear are picked up at the
next sample, processes that vanish (or cannot be read) are skipped.

PSS is not free: the kernel walks every resident page of a process to compute it
(/proc/PID/smaps_rollup), about 20 ms of CPU per sample for a 2-worker run at 1M
subscribers on a loaded 2-core machine. So the sampler waits at least ``interval`` between
samples and also long enough to keep its own CPU time below ``max_cpu_share`` of one core
(default 5 %): it does not slow down what it measures by more than that.

    with TreeMemorySampler(interval=0.05) as mem:
        generate(cfg)
    mem.peak_pss, mem.peak_rss      # bytes

Trees on several machines (a Dask cluster's workers) cannot be sampled at the same
instants. With ``bin_s`` each sampler also keeps its peaks per ``bin_s`` seconds of
wall-clock time; ``peak_of_sum`` adds such timelines bin by bin and takes the peak, so
memory across machines is summed the same way: peak of the sum, not sum of the peaks.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Optional

import psutil

from ._fork import mark_fork_safe, quiet_for_fork
from ._worker import WORKER_NAME

_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ProcessLookupError,
         FileNotFoundError)


@dataclass
class TreeMemory:
    """One sample: sums over the processes that could be read."""
    pss: int
    rss: int
    uss: int
    processes: int


def tree_memory(root: psutil.Process) -> TreeMemory:
    """Sum PSS, RSS and USS of ``root`` and its live descendants, right now."""
    try:
        procs = [root] + root.children(recursive=True)
    except _GONE:
        return TreeMemory(0, 0, 0, 0)
    pss = rss = uss = n = 0
    for p in procs:
        try:
            m = p.memory_full_info()
        except _GONE:
            continue        # exited between listing and reading: it holds nothing now
        pss += m.pss
        rss += m.rss
        uss += m.uss
        n += 1
    return TreeMemory(pss, rss, uss, n)


# bin of wall-clock time -> (PSS, RSS, USS) peaks in that bin, in bytes
Timeline = dict[int, tuple[int, int, int]]
# the bin width for timelines summed across machines: coarse enough to cover the
# sampler's longest wait and small clock offsets between hosts
BIN_S = 0.5
# the sampler's interval for a measured run (it may wait longer: max_cpu_share)
SAMPLE_INTERVAL_S = 0.05


def sum_timelines(timelines: list[Timeline]) -> Timeline:
    """The bin-by-bin sum of timelines (same ``bin_s``). Between two of its samples a
    tree holds what it held at the earlier one; before its first and after its last
    sample it holds nothing."""
    ends = [max(tl) if tl else -1 for tl in timelines]
    last: list[Optional[tuple[int, int, int]]] = [None] * len(timelines)
    total: Timeline = {}
    for key in sorted(set().union(*timelines)) if timelines else []:
        pss = rss = uss = 0
        for i, tl in enumerate(timelines):
            last[i] = tl.get(key, last[i])
            if last[i] is not None and key <= ends[i]:
                pss, rss, uss = pss + last[i][0], rss + last[i][1], uss + last[i][2]
        total[key] = (pss, rss, uss)
    return total


def peak_of_sum(timelines: list[Timeline]) -> tuple[int, int, int]:
    """Peak (PSS, RSS, USS) over time of the sum of timelines."""
    total = sum_timelines(timelines).values()
    if not total:
        return 0, 0, 0
    return tuple(max(v[i] for v in total) for i in range(3))


def is_worker(proc: psutil.Process) -> bool:
    """Whether ``proc`` is a ``LocalExecutor`` worker (a forked one shares its parent's
    command line: its name tells)."""
    try:
        return proc.name() == WORKER_NAME
    except psutil.Error:
        return False


class TreeMemorySampler:
    """Context manager sampling the tree of ``pid`` (default: this process) every
    ``interval`` seconds; ``peak_pss``, ``peak_rss``, ``peak_uss`` in bytes and
    ``max_processes`` after (or during) the block."""

    def __init__(self, pid: Optional[int] = None, interval: float = 0.05,
                 max_cpu_share: float = 0.05, bin_s: Optional[float] = None):
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        if not 0 < max_cpu_share <= 1:
            raise ValueError(f"max_cpu_share must be in (0, 1], got {max_cpu_share}")
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.max_cpu_share = max_cpu_share
        self.peak_pss = self.peak_rss = self.peak_uss = 0
        self.max_processes = 0
        self.samples = 0
        self.sampling_cpu_s = 0.0       # CPU time the sampling thread spent
        self.bin_s = bin_s
        self.bins: Timeline = {}        # with bin_s: peaks per bin of time.time()
        self._root = psutil.Process(self.pid)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def sample(self) -> TreeMemory:
        """Take one sample now and fold it into the peaks."""
        m = tree_memory(self._root)
        with self._lock:
            self.peak_pss = max(self.peak_pss, m.pss)
            self.peak_rss = max(self.peak_rss, m.rss)
            self.peak_uss = max(self.peak_uss, m.uss)
            self.max_processes = max(self.max_processes, m.processes)
            self.samples += 1
            if self.bin_s:
                key = int(time.time() // self.bin_s)
                old = self.bins.get(key, (0, 0, 0))
                self.bins[key] = (max(old[0], m.pss), max(old[1], m.rss), max(old[2], m.uss))
        return m

    def _loop(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            t0 = time.thread_time()
            with quiet_for_fork():      # a worker forked meanwhile inherits no held lock
                self.sample()
            cost = time.thread_time() - t0
            self.sampling_cpu_s += cost
            # cost / (cost + wait) <= max_cpu_share
            wait = max(self.interval, cost / self.max_cpu_share - cost)

    def start(self) -> "TreeMemorySampler":
        self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cdrexp-memory-sampler",
                                        daemon=True)
        mark_fork_safe(self._thread)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sample()

    def __enter__(self) -> "TreeMemorySampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def as_dict(self) -> dict:
        return {"peak_pss_bytes": self.peak_pss, "peak_rss_bytes": self.peak_rss,
                "peak_uss_bytes": self.peak_uss, "max_processes": self.max_processes,
                "samples": self.samples, "sampling_cpu_s": self.sampling_cpu_s}
