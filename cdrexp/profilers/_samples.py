"""Reading py-spy's speedscope file: collapsed stacks and the top functions.

py-spy writes one speedscope profile per (process, thread); each sample is a list of
frame indices, root first, starting with the process lineage frames
(``process PID:"cmdline"``) that ``--subprocesses`` adds, and a weight in seconds.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_PROCESS = re.compile(r'^process (\d+):"(.*)"$', re.S)


@dataclass
class Frame:
    name: str
    file: str
    line: int
    pid: int | None = None          # set on the process frames

    @property
    def label(self) -> str:
        if self.pid is not None:
            return self.name
        if not self.file:
            return self.name
        return f"{self.name} ({self.file}:{self.line})" if self.line else \
            f"{self.name} ({self.file})"

    @property
    def function(self) -> tuple[str, str]:
        """What the top list groups by: the function, whatever line it was on."""
        return self.name, self.file


@dataclass
class Samples:
    frames: list[Frame]
    stacks: list[tuple[tuple[int, ...], float]]      # (frame indices root first, seconds)
    processes: dict[int, dict] = field(default_factory=dict)   # pid -> cmd, samples, s

    @property
    def n_samples(self) -> int:
        return len(self.stacks)

    @property
    def seconds(self) -> float:
        return sum(w for _, w in self.stacks)


def short_path(path: str) -> str:
    """site-packages/numpy/x.py -> numpy/x.py; .../lib/python3.11/x.py -> x.py."""
    for marker in ("site-packages/", "dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    m = re.search(r"/lib/python3\.\d+/(.*)$", path)
    if m:
        return m.group(1)
    # the package's own files: from its root, the *last* directory named cdrexp (a clone
    # of the repository is itself called cdrexp: /home/u/cdrexp/cdrexp/model/x.py)
    m = re.search(r"(?:^|/)(cdrexp/(?:(?!cdrexp/)[^/]+/)*[^/]+)$", path)
    return m.group(1) if m else path


def short_cmd(cmd: str, width: int = 90) -> str:
    cmd = re.sub(r"\S*/(python[\d.]*)\b", r"\1", cmd)
    return cmd if len(cmd) <= width else cmd[:width - 3] + "..."


def load_speedscope(path: Path) -> Samples:
    doc = json.loads(Path(path).read_text())
    frames = []
    for f in doc["shared"]["frames"]:
        m = _PROCESS.match(f.get("name", ""))
        if m:
            frames.append(Frame(f"process {m.group(1)}: {short_cmd(m.group(2))}", "", 0,
                                pid=int(m.group(1))))
        else:
            frames.append(Frame(f.get("name", "?"), short_path(f.get("file") or ""),
                                int(f.get("line") or 0)))
    stacks: list[tuple[tuple[int, ...], float]] = []
    processes: dict[int, dict] = {}
    for prof in doc.get("profiles", []):
        weights = prof.get("weights") or [1.0] * len(prof.get("samples", []))
        pid = _profile_pid(prof.get("name", ""))
        for sample, w in zip(prof.get("samples", []), weights):
            stack = tuple(sample)
            stacks.append((stack, float(w)))
            own = [frames[i].pid for i in stack if frames[i].pid is not None]
            p = own[-1] if own else pid
            info = processes.setdefault(p, {"samples": 0, "seconds": 0.0, "cmd": "",
                                            "parent": own[-2] if len(own) > 1 else None})
            info["samples"] += 1
            info["seconds"] += float(w)
            if own and not info["cmd"]:
                info["cmd"] = frames[[i for i in stack if frames[i].pid == p][0]].name
    return Samples(frames, stacks, processes)


def _profile_pid(name: str) -> int:
    m = re.match(r"Process (\d+)", name)
    return int(m.group(1)) if m else -1


def collapsed(samples: Samples) -> Counter:
    """Stack (tuple of frame labels, root first) -> seconds: flamegraph input."""
    out: Counter = Counter()
    for stack, w in samples.stacks:
        out[tuple(samples.frames[i].label for i in stack)] += w
    return out


def top_functions(samples: Samples) -> list[dict]:
    """Per function: self seconds (it was the innermost frame) and total seconds (it was
    anywhere on the stack, counted once per sample even when recursive)."""
    self_s: Counter = Counter()
    total_s: Counter = Counter()
    for stack, w in samples.stacks:
        funcs = [samples.frames[i].function for i in stack if samples.frames[i].pid is None]
        if not funcs:
            continue
        self_s[funcs[-1]] += w
        for fn in set(funcs):
            total_s[fn] += w
    return [{"function": name, "file": file, "self_s": self_s[(name, file)],
             "total_s": total_s[(name, file)]} for name, file in total_s]


def top_text(samples: Samples, n: int = 40, title: str = "") -> str:
    """The readable summary: processes, then top functions by self and by total time."""
    total = samples.seconds or 1.0
    lines = [title] if title else []
    lines.append(f"{samples.n_samples} samples, {samples.seconds:.2f} s sampled "
                 f"across {len(samples.processes)} processes")
    lines += ["", f"  {'pid':>8} {'parent':>8} {'role':<16} {'samples':>8} {'share':>7}  "
                  "command"]
    roles = process_roles(samples)
    for pid, info in sorted(samples.processes.items(), key=lambda kv: -kv[1]["seconds"]):
        parent = info.get("parent") or "-"
        lines.append(f"  {pid:>8} {parent:>8} {roles.get(pid, '?'):<16} {info['samples']:>8} "
                     f"{100 * info['seconds'] / total:6.1f}%  {info['cmd'].split(': ', 1)[-1]}")
    funcs = top_functions(samples)
    for key, heading in (("self_s", "self time (the function itself was running)"),
                         ("total_s", "total time (the function or what it called)")):
        lines += ["", f"Top {n} functions by {heading}",
                  f"  {'self %':>7} {'self s':>8} {'total %':>8} {'total s':>8}  function"]
        for row in sorted(funcs, key=lambda r: -r[key])[:n]:
            lines.append(f"  {100 * row['self_s'] / total:6.1f}% {row['self_s']:8.2f} "
                         f"{100 * row['total_s'] / total:7.1f}% {row['total_s']:8.2f}  "
                         f"{row['function']}  ({row['file']})")
    return "\n".join(lines) + "\n"


WORKER_FUNCTIONS = {"worker_main", "run_unit", "start_unit", "generate_records",
                    "generate_unit"}
WORKER_NAME = "cdrexp-worker"       # parallel._worker.WORKER_NAME (profilers sit above it)


def process_roles(samples: Samples) -> dict[int, str]:
    """A guess at what each process was, for the reader of top.txt."""
    funcs = functions_by_process(samples)
    lineages = _lineages(samples)
    roles = {}
    for pid, info in samples.processes.items():
        cmd = info.get("cmd", "")
        lineage = lineages.get(pid, (pid,))
        # a forked worker names itself (perf sees only that name, py-spy its parent's
        # command line and its frames)
        if funcs.get(pid, set()) & WORKER_FUNCTIONS or WORKER_NAME in cmd:
            roles[pid] = "worker"
        elif info.get("parent") is None:
            roles[pid] = "main"
        elif "forkserver" in cmd:
            roles[pid] = "forkserver"
        elif "resource_tracker" in cmd:
            roles[pid] = "resource tracker"
        # perf knows only the command's name ("python"): the tree tells what the
        # forkserver's children are
        elif len(lineage) >= 3:
            roles[pid] = "worker"
        elif any(pid in other[:-1] for other in lineages.values()):
            roles[pid] = "forkserver"
        else:
            roles[pid] = "process"
    return roles


def _lineages(samples: Samples) -> dict[int, tuple[int, ...]]:
    """pid -> the pids from the root process down to it, as its samples show them."""
    out = {}
    for stack, _ in samples.stacks:
        pids = tuple(samples.frames[i].pid for i in stack if samples.frames[i].pid is not None)
        if pids:
            out[pids[-1]] = pids
    return out


def functions_by_process(samples: Samples) -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for stack, _ in samples.stacks:
        pids = [samples.frames[i].pid for i in stack if samples.frames[i].pid is not None]
        if pids:
            out[pids[-1]].update(samples.frames[i].name for i in stack
                                 if samples.frames[i].pid is None)
    return dict(out)


# ---- the generation apart from interpreter start-up and imports --------------------
# A profile of a short run is mostly start-up: the interpreter, ~1 s of imports in the
# runner, the forkserver and every worker (62 % of the samples at 50,000 subscribers
# here). The default views show the generation; the rest goes to files of its own.
IMPORT_FUNCTIONS = {"_find_and_load", "_handle_fromlist", "_gcd_import", "import_module"}
# where the work starts: the generation in the runner's process, a unit in a worker
WORK_FUNCTIONS = {("generate", "cdrexp/generation.py"),
                  ("worker_main", "cdrexp/parallel/_worker.py"),
                  ("run_unit", "cdrexp/parallel/work.py"),
                  ("start_unit", "cdrexp/parallel/work.py")}
THREAD_ROOT = "Thread._bootstrap"       # threads are started by the work (writers, Dask)


def is_import(frame: Frame) -> bool:
    return frame.name in IMPORT_FUNCTIONS and "importlib" in frame.file


def sample_is_work(samples: Samples, stack: tuple[int, ...]) -> bool:
    """The sample is the generation's: under a work function, or in a thread the work
    started, and not importing a module."""
    frames = [samples.frames[i] for i in stack if samples.frames[i].pid is None]
    if not frames or any(is_import(f) for f in frames):
        return False
    return frames[0].name == THREAD_ROOT or \
        any((f.name, f.file) in WORK_FUNCTIONS for f in frames)


def _subset(samples: Samples, stacks: list) -> Samples:
    """The same frames and processes with only ``stacks``; per-process counts redone."""
    processes = {pid: dict(info, samples=0, seconds=0.0)
                 for pid, info in samples.processes.items()}
    for stack, w in stacks:
        own = [samples.frames[i].pid for i in stack if samples.frames[i].pid is not None]
        info = processes.get(own[-1] if own else -1)
        if info is not None:
            info["samples"] += 1
            info["seconds"] += w
    return Samples(samples.frames, stacks,
                   {pid: info for pid, info in processes.items() if info["samples"]})


def split_startup(samples: Samples) -> tuple[Samples, Samples]:
    """(the generation's samples, the rest: interpreter start-up, imports, teardown)."""
    work, rest = [], []
    for stack, w in samples.stacks:
        (work if sample_is_work(samples, stack) else rest).append((stack, w))
    return _subset(samples, work), _subset(samples, rest)


def import_share(samples: Samples) -> float:
    """Share of the samples (by time) spent importing modules."""
    total = samples.seconds
    imports = sum(w for stack, w in samples.stacks
                  if any(is_import(samples.frames[i]) for i in stack))
    return imports / total if total else 0.0
