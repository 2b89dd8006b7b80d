"""Folding ``perf script`` output into a speedscope document, the format py-spy writes.

With it, a perf profile goes through the same code as a py-spy one: ``load_speedscope``,
the flamegraph, ``top.txt`` and the differential view; speedscope.app opens it too.

Input: ``perf script -F comm,pid,tid,period,event,ip,sym,dso --show-task-events``: a
header line per sample (``python  5717/5717  1001001 cpu-clock:``), its call chain leaf
first (``\tffffffff815a889f filemap_fault ([kernel.kallsyms])``), a blank line; and the
task events (``PERF_RECORD_FORK(child_pid:child_tid):(parent_pid:parent_tid)``,
``PERF_RECORD_COMM``) from which each process's parent and name come. Every stack starts
with the process lineage (``process PID:"comm"`` frames, as ``py-spy --subprocesses``
writes them), the call chain follows root first.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable

from ._samples import short_path

SCRIPT_FIELDS = "comm,pid,tid,period,event,ip,sym,dso"
_SAMPLE = re.compile(r"^(.+?)\s+(\d+)/(\d+)\s+(\d+)\s+(\S+):\s*$")
_TASK = re.compile(r"^(.+?)\s+(\d+)/(\d+)\s+PERF_RECORD_(FORK|COMM|EXIT)(.*)$")
_FORK = re.compile(r"\((\d+):(\d+)\):\((\d+):(\d+)\)")
_COMM = re.compile(r":\s*(.+?):(\d+)/(\d+)\s*$")
_CALL = re.compile(r"^\s+[0-9a-fA-F]+\s+(.*?)\s+\(([^()]*)\)\s*$")
NS_PER_S = 1e9


def _dso(path: str) -> str:
    """``.../site-packages/pyarrow/libarrow.so.2500`` -> ``pyarrow/libarrow.so.2500``;
    ``/usr/lib/x86_64-linux-gnu/libc.so.6`` -> ``libc.so.6``; ``[kernel.kallsyms]`` kept."""
    if path.startswith("["):
        return path
    short = short_path(path)
    return short if short != path else os.path.basename(path)


@dataclass
class _Folder:
    frames: list[dict] = field(default_factory=list)
    index: dict[tuple, int] = field(default_factory=dict)
    parent: dict[int, int] = field(default_factory=dict)       # pid -> parent pid
    comm: dict[int, str] = field(default_factory=dict)         # pid -> its name
    # (pid, tid) -> (stacks of call frame indices root first, weights in seconds)
    threads: dict[tuple[int, int], tuple[list, list]] = field(default_factory=dict)

    def frame(self, key: tuple, doc: dict) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.frames)
            self.frames.append(doc)
        return i

    def call_frame(self, sym: str, dso: str) -> int:
        file = _dso(dso)
        return self.frame(("call", sym, file), {"name": sym, "file": file, "line": 0})

    def task_event(self, kind: str, pid: int, tid: int, comm: str, rest: str) -> None:
        if kind == "FORK":
            m = _FORK.search(rest)
            if m and m.group(1) == m.group(2) and m.group(1) != m.group(3):
                child, parent = int(m.group(1)), int(m.group(3))  # a process, not a thread
                self.parent.setdefault(child, parent)
                self.comm.setdefault(child, self.comm.get(parent, comm))
        elif kind == "COMM":
            m = _COMM.search(rest)
            if m and m.group(2) == m.group(3):       # the process's own name, not a thread's
                self.comm[int(m.group(2))] = m.group(1).strip()

    def lineage(self, pid: int) -> list[int]:
        chain, seen = [pid], {pid}
        while pid in self.parent and self.parent[pid] not in seen:
            pid = self.parent[pid]
            chain.append(pid)
            seen.add(pid)
        return chain[::-1]

    def document(self, name: str) -> dict:
        """The speedscope document: the process frames prepended to every stack."""
        profiles = []
        for (pid, tid), (stacks, weights) in sorted(self.threads.items()):
            roots = [self.frame(("process", p), {
                "name": f'process {p}:"{self.comm.get(p, "?")}"', "file": "", "line": 0})
                for p in self.lineage(pid)]
            profiles.append({
                "type": "sampled", "name": f"Process {pid} Thread {tid}",
                "unit": "seconds", "startValue": 0.0, "endValue": sum(weights),
                "samples": [roots + s for s in stacks], "weights": weights})
        return {"$schema": "https://www.speedscope.app/file-format-schema.json",
                "name": name, "exporter": "cdrexp (perf script)", "activeProfileIndex": 0,
                "shared": {"frames": self.frames}, "profiles": profiles}


def fold(lines: Iterable[str], name: str = "perf") -> dict:
    """``perf script`` lines -> a speedscope document (see the module's docstring)."""
    folder = _Folder()
    current: tuple[int, int, float] | None = None       # pid, tid, seconds
    chain: list[int] = []

    def finish() -> None:
        if current is not None:
            pid, tid, seconds = current
            stacks, weights = folder.threads.setdefault((pid, tid), ([], []))
            stacks.append(chain[::-1])
            weights.append(seconds)

    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if line[0].isspace():
            m = _CALL.match(line)
            if m and current is not None:
                i = folder.call_frame(m.group(1) or "[unknown]", m.group(2))
                # unwinding through code without frame pointers reads garbage: a run of
                # [unknown] frames (often a hundred) says no more than one
                if not (chain and chain[-1] == i and m.group(1) == "[unknown]"):
                    chain.append(i)
            continue
        m = _SAMPLE.match(line)
        if m:
            finish()
            comm, pid, tid = m.group(1).strip(), int(m.group(2)), int(m.group(3))
            folder.comm.setdefault(pid, comm)
            current, chain = (pid, tid, int(m.group(4)) / NS_PER_S), []
            continue
        m = _TASK.match(line)
        if m:
            finish()
            current, chain = None, []
            folder.task_event(m.group(4), int(m.group(2)), int(m.group(3)),
                              m.group(1).strip(), m.group(5))
    finish()
    return folder.document(name)
