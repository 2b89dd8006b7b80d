"""CPU time and memory of a remote Dask cluster's workers, measured on the workers.

The runner measures its own process tree (``tracking.measure``); with
``executor.address`` the units run in processes outside that tree, possibly on other
machines. So each worker measures itself while a run's units execute, the way the runner
measures its tree: CPU seconds (user + sys) of the worker process and its children, and
a ``TreeMemorySampler`` of that tree with its peaks per ``memory.BIN_S`` seconds of
wall-clock time. At the end the client keeps the workers that ran units, adds their CPU
seconds, and adds their timelines bin by bin (``memory.peak_of_sum``: the peak of the
sum over processes, as locally). The client's own tree is added by the runner and kept
apart as its share.

The workers run these functions through ``client.run`` (``start`` before the units are
submitted, ``stop`` after the last result), so cdrexp must be importable there, as it
must for the units themselves. Bins are keyed by each host's clock: hosts whose clocks
differ by much less than a bin (NTP) are summed at the right instants.
"""
from __future__ import annotations

import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import Optional

from ..config import usable_cores
from .cpu import TreeCpu
from .memory import (BIN_S, SAMPLE_INTERVAL_S, Timeline, TreeMemorySampler, peak_of_sum,
                     sum_timelines)
from .work import process_id

# token of a run -> (sampler, CPU clock) in this worker process
_running: dict[str, tuple] = {}
_lock = threading.Lock()


@dataclass
class WorkerUsage:
    """What one worker process used between ``start`` and ``stop``."""
    process: str            # host:pid, as in UnitResult.process
    host: str
    cores: int              # usable cores of its machine
    cpu_s: float
    peak_pss_bytes: int
    bins: Timeline = field(repr=False)


@dataclass
class ClusterUsage:
    """The workers that ran a run's units, summed."""
    cpu_s: float
    peak_pss_bytes: int     # peak over time of the sum over the workers
    peak_rss_bytes: int
    peak_uss_bytes: int
    members: list[str]      # host:pid of each worker process measured
    hosts: dict[str, int]   # host -> usable cores
    bins: Timeline = field(repr=False)

    @property
    def processes(self) -> int:
        return len(self.members)

    def cores_with(self, host: str, cores: int) -> int:
        """Usable cores of the workers' machines and the client's, each counted once."""
        return sum({**self.hosts, host: max(cores, self.hosts.get(host, 0))}.values())

    def to_dict(self) -> dict:
        return {"cpu_s": self.cpu_s, "peak_pss_bytes": self.peak_pss_bytes,
                "peak_rss_bytes": self.peak_rss_bytes, "members": self.members,
                "hosts": self.hosts}


def start(token: str) -> str:
    """On a worker: begin measuring this process's tree for the run ``token``."""
    sampler = TreeMemorySampler(interval=SAMPLE_INTERVAL_S, bin_s=BIN_S).start()
    with _lock:
        _running[token] = (sampler, TreeCpu())
    return process_id()


def stop(token: str) -> Optional[WorkerUsage]:
    """On a worker: end the run's measurement and return it (None if it never began)."""
    with _lock:
        sampler, cpu = _running.pop(token, (None, None))
    if sampler is None:
        return None
    sampler.stop()
    return WorkerUsage(process=process_id(), host=socket.gethostname(),
                       cores=usable_cores(), cpu_s=cpu.elapsed(),
                       peak_pss_bytes=sampler.peak_pss, bins=sampler.bins)


def begin(client, token: str) -> None:
    client.run(start, token, on_error="return")


def collect(client, token: str, ran: set[str]) -> Optional[ClusterUsage]:
    """Stop every worker's measurement; sum those of the processes in ``ran`` (the
    workers that ran units) outside this process's tree. None when there are none (a
    warning names workers that ran units but did not answer)."""
    answers = client.run(stop, token, on_error="return")
    # workers this process started itself (a cluster of its own, joined by address) are
    # in its tree, which the runner measures already: counting them here would be twice
    mine = _own_descendants()
    ran = ran - mine
    usages = [u for u in answers.values() if isinstance(u, WorkerUsage) and u.process in ran]
    missing = ran - {u.process for u in usages}
    if missing:
        print(f"cdrexp: warning: {len(missing)} Dask worker(s) that ran units could not be "
              f"measured (gone?): {', '.join(sorted(missing))}; CPU and memory figures "
              "leave them out", file=sys.stderr)
    if not usages:
        return None
    bins = sum_timelines([u.bins for u in usages])
    pss, rss, uss = peak_of_sum([bins])
    hosts: dict[str, int] = {}
    for u in usages:
        hosts[u.host] = max(u.cores, hosts.get(u.host, 0))
    return ClusterUsage(cpu_s=sum(u.cpu_s for u in usages), peak_pss_bytes=pss,
                        peak_rss_bytes=rss, peak_uss_bytes=uss,
                        members=sorted(u.process for u in usages),
                        hosts=hosts, bins=bins)


def _own_descendants() -> set[str]:
    import psutil

    host = socket.gethostname()
    try:
        return {f"{host}:{p.pid}" for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()
