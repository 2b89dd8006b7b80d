"""Issue 19 (lean generator): memory and CPU of a generation's whole process tree, this
checkout against a baseline checkout, alternating, in the same run.

Not a test: a script that measures and prints. Each case runs ``python -m
cdrexp.cli.child --config CASE.yaml`` (the generator alone, as ``cdrexp.ab`` runs it)
with ``PYTHONPATH`` pointing at one checkout, under ``cdrexp/ab/_reap.py`` (a child
subreaper, so the CPU time of the forkserver and the workers is counted too). The tree
below the wrapper (the generator process, its forkserver, its workers) is sampled every
``--interval`` s from ``/proc/PID/smaps_rollup``: the peak of the summed PSS, and the PSS
of each process at that peak.

    python benchmarks/bench_lean.py --base /tmp/base-checkout            # all cases
    python benchmarks/bench_lean.py --base /tmp/base --cases c200k idle --rounds 3
    python benchmarks/bench_lean.py --cases p100m --rounds 1 --timeline pss.tsv --out /big

Cases (1 day, defaults otherwise; out under ``--out``, deleted after each run):

- ``imports``: "memory before generating": the tree of a csv run with 2 workers
  (generator process, workers; resource tracker and forkserver in checkouts before
  they went), measured by the generator
  process itself once both workers wait at their first unit (``_lean_sleepy.py``):
  imports, population of 2,000 subscribers, nothing generated;
- ``idle``: 2 workers, 2 units of 1,000 subscribers, csv: the peak of a run whose units
  are tiny (what the first unit adds to each worker included);
- ``c200k``: 200k subscribers, csv, 2 workers (tree PSS and CPU seconds);
- ``n1m_w1`` / ``n1m_w2``: 1M, output=none, workers 1 / 2 (speedup, cores busy, subs/s);
- ``n10m`` / ``n100m``: 10M / 100M, none, 2 workers; ``c10m``: 10M csv, 2 workers;
- ``c200k_k5`` / ``n1m_w1_k5`` / ``n1m_w2_k5``: the same at ``model.chunk_size=5000`` (half
  the default unit: what smaller units save in memory and cost in CPU);
- ``c1m_disk``: 1M plain csv to ``--out`` (a disk), with ``dd oflag=direct`` (alone; as
  many streams as workers, alone; with every core kept busy; and as many streams as
  workers with the cores as busy as in the head's run: see ``dd_direct_mb_s``) and an
  ``O_DIRECT`` writer from buffers in huge pages (``huge_direct_mb_s``) measured in the
  same round, and each run's speed against them, round by round; ``p1m`` / ``p10m`` / ``p100m``: parquet, 2 workers.

Figures: wall s, CPU s (user + sys of the whole tree), cores busy (CPU s / wall s),
subs/s (subscribers / wall s), peak PSS MB (sum over the tree), bytes per subscriber
(peak PSS / subs). Medians over ``--rounds``; A and B alternate within each round.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
REAP = HERE / "cdrexp" / "ab" / "_reap.py"

_PREFIXES_100M = [31612, 31613, 31620, 31621, 31622, 31623, 31624, 31625, 31626, 31627,
                  31628, 31629]
CASES = {
    "imports": dict(subs=2_000, workers=2, fmt="csv", chunk_size=1_000, imports=True),
    "idle": dict(subs=2_000, workers=2, fmt="csv", chunk_size=1_000),
    "c200k": dict(subs=200_000, workers=2, fmt="csv"),
    "c200k_k5": dict(subs=200_000, workers=2, fmt="csv", chunk_size=5_000),
    "c10k": dict(subs=10_000, workers=2, fmt="csv"),
    "c10k_k5": dict(subs=10_000, workers=2, fmt="csv", chunk_size=5_000),
    "c1m": dict(subs=1_000_000, workers=2, fmt="csv"),
    "c1m_k5": dict(subs=1_000_000, workers=2, fmt="csv", chunk_size=5_000),
    "p1m_k5": dict(subs=1_000_000, workers=2, fmt="parquet", chunk_size=5_000),
    "n1m_w1_k5": dict(subs=1_000_000, workers=1, fmt="none", chunk_size=5_000),
    "n1m_w2_k5": dict(subs=1_000_000, workers=2, fmt="none", chunk_size=5_000),
    "n1m_w1": dict(subs=1_000_000, workers=1, fmt="none"),
    "n1m_w2": dict(subs=1_000_000, workers=2, fmt="none"),
    "n10m": dict(subs=10_000_000, workers=2, fmt="none"),
    "c10m": dict(subs=10_000_000, workers=2, fmt="csv"),
    "c1m_disk": dict(subs=1_000_000, workers=2, fmt="csv", dd=True),
    "p1m": dict(subs=1_000_000, workers=2, fmt="parquet"),
    "p10m": dict(subs=10_000_000, workers=2, fmt="parquet"),
    # 100M numbers need 10+ MSISDN prefixes (10^7 numbers each); 12 here
    "p100m": dict(subs=100_000_000, workers=2, fmt="parquet", prefixes=_PREFIXES_100M),
    "n100m": dict(subs=100_000_000, workers=2, fmt="none", prefixes=_PREFIXES_100M),
}


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (via /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            if fh.read().strip() == "cdrexp-worker":     # forked: the generator's cmdline
                return "worker"
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat") as fh:
            ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{ppid}/cmdline", "rb") as fh:
            if b"forkserver" in fh.read():
                return "worker"
        if "forkserver" in cmd:
            return "forkserver"
        if "resource_tracker" in cmd:
            return "tracker"
        return "generator" if "cdrexp.cli.child" in cmd else "worker"
    except OSError:
        return "?"


def bytes_under(root: Path) -> int:
    """Bytes of the files one level below ``root``'s directories, now: a writer renames
    and removes its temporary files meanwhile (a 100M run's sampler died of that)."""
    total = 0
    for d in root.glob("*"):
        try:
            entries = list(os.scandir(d)) if d.is_dir() else []
        except OSError:
            continue
        for e in entries:
            try:
                total += e.stat().st_size
            except OSError:
                pass
    return total


class Sampler(threading.Thread):
    """Peak of the summed PSS of ``root``'s descendants (``root`` itself excluded: it is
    the measuring wrapper), the per-process split at that peak, and a timeline."""

    def __init__(self, root: int, interval: float, live: str | None = None,
                 out: Path | None = None):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        # a long run: the timeline is appended to ``live`` as it goes, with the bytes
        # written under ``out`` every ~10 s, so a run stopped early still tells
        self.live, self.out, self._next_du = live, out, 0.0
        self.peak_kb, self.at_peak, self.timeline = 0, {}, []
        self.names: dict[int, str] = {}
        self._stop_event = threading.Event()
        self.t0 = time.perf_counter()

    def run(self):
        while not self._stop_event.is_set():
            started = time.perf_counter()
            per = {p: pss_kb(p) for p in descendants(self.root)}
            for p in per:
                if p not in self.names:
                    self.names[p] = comm(p)
            total = sum(per.values())
            t = time.perf_counter() - self.t0
            self.timeline.append((t, total, len(per)))
            if self.live:
                written = ""
                if self.out is not None and t >= self._next_du:
                    self._next_du = t + 10.0
                    written = str(bytes_under(self.out))
                with open(self.live, "a") as fh:
                    fh.write(f"{t:.1f}\t{total / 1024:.1f}\t{len(per)}\t{written}\n")
            if total > self.peak_kb:
                self.peak_kb, self.at_peak = total, per
            # reading smaps_rollup walks every page table: at 100M subscribers a sample
            # took tens of ms, and sampling every 0.05 s cost ~35 % of a core; at most
            # ~5 % of a core goes to sampling
            self._stop_event.wait(max(self.interval, 20 * (time.perf_counter() - started)))

    def stop(self):
        self._stop_event.set()
        self.join()


def write_config(path: Path, case: dict, out: Path) -> None:
    lines = [f"subs: {case['subs']}", f"workers: {case['workers']}", f"out: {out}",
             "output:", f"  format: {case['fmt']}"]
    model = [f"  {k}: {case[k]}" for k in ("chunk_size", "prefixes") if k in case]
    if model:
        lines += ["model:"] + model
    path.write_text("\n".join(lines) + "\n")


def run_once(python: str, checkout: Path, case: dict, out_root: Path, interval: float,
             live: str | None = None):
    work = Path(tempfile.mkdtemp(prefix="bench_lean_", dir=out_root))
    try:
        cfg, result = work / "case.yaml", work / "result.json"
        write_config(cfg, case, work / "out")
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        # the wrapper runs from the checkout's parent, so no other cdrexp is first on the path
        proc = subprocess.Popen([python, "-I", "-S", str(REAP), str(result), "--", python,
                                 "-m", "cdrexp.cli.child", "--config", str(cfg)],
                                env=env, cwd=str(work), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid, interval, live, work / "out")
        sampler.start()
        log = proc.communicate()[0]
        sampler.stop()
        fig = json.loads(result.read_text()) if result.exists() else {"returncode": -1}
        if proc.returncode or fig["returncode"]:
            raise RuntimeError(f"{checkout}: {case} failed:\n{log.decode()[-2000:]}")
        written = sum(f.stat().st_size for f in (work / "out").rglob("*") if f.is_file())
        split = {}
        for pid, kb in sampler.at_peak.items():
            split.setdefault(sampler.names.get(pid, "?"), []).append(round(kb / 1024))
        return {"wall_s": fig["wall_s"], "cpu_s": fig["cpu_s"],
                "cores_busy": fig["cpu_s"] / fig["wall_s"],
                "subs_s": case["subs"] / fig["wall_s"],
                "peak_pss_mb": sampler.peak_kb / 1024,
                "mb_s": written / 1e6 / fig["wall_s"],
                "bytes_per_sub": sampler.peak_kb * 1024 / case["subs"],
                "split_mb": split, "timeline": sampler.timeline}
    finally:
        shutil.rmtree(work, ignore_errors=True)


IMPORTS_SCRIPT = """
import os, sys, threading, time
sys.path.insert(0, {bench!r})
from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig
from cdrexp.generation import generate
from cdrexp.parallel import LocalExecutor
from _lean_sleepy import sleepy_unit

def tree():
    pids, todo = [], [os.getpid()]
    while todo:
        p = todo.pop(); pids.append(p)
        for t in os.listdir(f"/proc/{{p}}/task"):
            todo += [int(x) for x in open(f"/proc/{{p}}/task/{{t}}/children").read().split()]
    return pids

def pss(p):
    for line in open(f"/proc/{{p}}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])

def role(p):
    cmd = open(f"/proc/{{p}}/cmdline", "rb").read()
    forked = open(f"/proc/{{p}}/comm").read().strip() == "cdrexp-worker"  # this cmdline
    return ("generator" if p == os.getpid() else "worker" if forked
            else "tracker" if b"resource_tracker" in cmd
            else "forkserver" if b"forkserver" in cmd and p in children(os.getpid())
            else "worker")

def watch():
    while [role(p) for p in tree()].count("worker") < 2:
        time.sleep(0.05)
    time.sleep(1.0)             # the workers have attached the population and wait
    split = {{}}
    for p in tree():
        split.setdefault(role(p), []).append(round(pss(p) / 1024))
    print("IMPORTS_SPLIT", split, flush=True)
    print("IMPORTS_PSS_KB", sum(pss(p) for p in tree()), flush=True)

def children(pid):
    return [int(x) for t in os.listdir(f"/proc/{{pid}}/task")
            for x in open(f"/proc/{{pid}}/task/{{t}}/children").read().split()]

watcher = threading.Thread(target=watch, daemon=True)
try:    # it only reads /proc: a checkout that forks its workers may do so beside it
    from cdrexp.parallel._fork import mark_fork_safe
    mark_fork_safe(watcher)
except ImportError:
    pass
watcher.start()
cfg = GeneratorConfig(subs=2000, workers=2, out={out!r}, output=OutputConfig(format="csv"),
                      model=ModelConfig(chunk_size=1000))
generate(cfg, executor=LocalExecutor(2, unit_fn=sleepy_unit))
"""


def imports_pss_mb(python: str, checkout: Path, out_root: Path) -> float:
    work = Path(tempfile.mkdtemp(prefix="bench_lean_", dir=out_root))
    try:
        code = IMPORTS_SCRIPT.format(bench=str(HERE / "benchmarks"), out=str(work / "out"))
        env = {**os.environ, "PYTHONPATH": f"{checkout}{os.pathsep}{HERE / 'benchmarks'}"}
        out = subprocess.run([python, "-c", code], env=env, cwd=str(work), check=True,
                             capture_output=True, text=True).stdout
        print("  per process (MB):", out.split("IMPORTS_SPLIT")[1].splitlines()[0].strip())
        return int(out.split("IMPORTS_PSS_KB")[1].split()[0]) / 1024
    finally:
        shutil.rmtree(work, ignore_errors=True)


# a spinner busy ``duty`` of every 10 ms (the rest asleep)
_DUTY = ("import sys, time\nd = float(sys.argv[1])\nwhile True:\n    t = time.perf_counter()\n"
         "    while time.perf_counter() - t < d * 0.01:\n        pass\n"
         "    time.sleep((1 - d) * 0.01)\n")


def dd_direct_mb_s(out_root: Path, mb: int, busy: int = 0, duty: float = 1.0,
                   streams: int = 1) -> float:
    """The disk's own O_DIRECT write speed: ``dd`` of ``mb`` MB in 8 MB blocks (split
    over ``streams`` concurrent dd's, one file each), with ``busy`` cores kept busy
    meanwhile by spinning processes, each for ``duty`` of the time.

    Why: on this VM the host's disk emulation runs on the same physical cores as the
    guest, so the disk's speed depends on the guest's CPU load (dd alone 583-740 MB/s;
    with both cores spinning 384-486, the host's share shows as steal time). A generator
    can at most reach the figure at its own load: ``streams=2, busy=cores,
    duty=cores busy / cores`` is dd in the run's place, two writers as its workers."""
    targets = [out_root / f"bench_lean_dd{i}.bin" for i in range(streams)]
    # the spinners run at the normal policy even when this benchmark runs under a real-
    # time one (``chrt -f``, to keep other users' work off its measurements): they keep the
    # cores busy whenever dd waits for the disk, without starving dd
    spin = (["sh", "-c", "while :; do :; done"] if duty >= 1
            else [sys.executable, "-c", _DUTY, f"{duty:.3f}"])
    spinners = [subprocess.Popen(["chrt", "-o", "0", *spin]) for _ in range(busy)]
    count = max(1, mb // 8 // streams)
    try:
        time.sleep(0.2 if busy else 0)
        t0 = time.perf_counter()
        dds = [subprocess.Popen(["dd", "if=/dev/zero", f"of={t}", "bs=8M", f"count={count}",
                                 "oflag=direct"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for t in targets]
        if any(d.wait() for d in dds):
            raise RuntimeError("dd failed")
        return streams * count * 8 * 1.048576 / (time.perf_counter() - t0)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
        for t in targets:
            t.unlink(missing_ok=True)


def huge_direct_mb_s(out_root: Path, mb: int, streams: int = 1) -> float:
    """The disk's ``O_DIRECT`` write speed from buffers in huge pages: ``dd``'s buffer
    is in 4 KB pages, so each 2 MB of it is 512 segments for the device (this VM's
    virtio disk takes at most 254 a request); here ``streams`` threads each write 2 MB
    blocks from one buffer that starts on a 2 MB boundary, advised ``MADV_HUGEPAGE``
    (written here, not cdrexp's code, so the reference does not depend on it)."""
    import ctypes
    import mmap

    huge = 2 << 20
    count = max(1, mb // 2 // streams)
    targets = [out_root / f"bench_lean_huge{i}.bin" for i in range(streams)]

    def buffer():
        m = mmap.mmap(-1, 2 * huge, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        at = -ctypes.addressof(ctypes.c_char.from_buffer(m)) % huge
        m.madvise(mmap.MADV_HUGEPAGE, at, huge)
        m[at:at + huge] = b"x" * huge
        return m, memoryview(m)[at:at + huge]

    def write(path, view):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
        try:
            for _ in range(count):
                os.write(fd, view)
        finally:
            os.close(fd)

    buffers = [buffer() for _ in targets]
    threads = [threading.Thread(target=write, args=(t, v)) for t, (_, v) in
               zip(targets, buffers)]
    try:
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return streams * count * 2 * 1.048576 / (time.perf_counter() - t0)
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", help="baseline checkout (e.g. main 3e176c0 cloned)")
    ap.add_argument("--head", default=str(HERE), help="checkout under test (this one)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--cases", nargs="+", default=["idle", "c200k", "n1m_w1", "n1m_w2"],
                    choices=sorted(CASES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=tempfile.gettempdir(), help="where runs write")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--timeline", help="write the PSS timeline of the last run here (TSV)")
    ap.add_argument("--live", help="append every sample here as it is taken (TSV: t_s, "
                    "pss_mb, processes, bytes written every ~10 s)")
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args(argv)

    sides = [("head", Path(args.head))] + ([("base", Path(args.base))] if args.base else [])
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    runs: dict = {}
    last = None
    for rnd in range(args.rounds):
        for name in args.cases:
            case = CASES[name]
            order = sides if rnd % 2 == 0 else sides[::-1]
            if case.get("dd"):
                runs.setdefault((name, "dd"), []).append(
                    {"mb_s": dd_direct_mb_s(out_root, 2048)})
                runs.setdefault((name, "dd_streams"), []).append(
                    {"mb_s": dd_direct_mb_s(out_root, 2048, streams=case["workers"])})
                runs.setdefault((name, "dd_busy"), []).append(
                    {"mb_s": dd_direct_mb_s(out_root, 2048, busy=os.cpu_count() or 1)})
                runs.setdefault((name, "dd_huge"), []).append(
                    {"mb_s": huge_direct_mb_s(out_root, 2048, streams=case["workers"])})
            for side, checkout in order:
                if case.get("imports"):
                    mb = imports_pss_mb(args.python, checkout, out_root)
                    runs.setdefault((name, side), []).append(
                        {"peak_pss_mb": mb, "wall_s": 0, "cpu_s": 0, "cores_busy": 0,
                         "subs_s": 0, "bytes_per_sub": 0, "mb_s": 0})
                    print(f"round {rnd + 1} {name:9s} {side}: tree PSS {mb:.0f} MB "
                          f"(load {os.getloadavg()[0]:.1f})", flush=True)
                    continue
                r = run_once(args.python, checkout, case, out_root, args.interval,
                             args.live)
                runs.setdefault((name, side), []).append(r)
                last = r
                if case.get("dd") and side == "head":
                    cores = os.cpu_count() or 1
                    runs.setdefault((name, "dd_load"), []).append({"mb_s": dd_direct_mb_s(
                        out_root, 2048, busy=cores, duty=min(1.0, r["cores_busy"] / cores),
                        streams=case["workers"]), "cores": r["cores_busy"]})
                print(f"round {rnd + 1} {name:9s} {side}: {r['mb_s']:.0f} MB/s, "
                      f"wall {r['wall_s']:.2f} s, "
                      f"cpu {r['cpu_s']:.2f} s, peak PSS {r['peak_pss_mb']:.0f} MB "
                      f"{r['split_mb']}  (load {os.getloadavg()[0]:.1f})", flush=True)

    print(f"\nmedians of {args.rounds} rounds; load average now "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} cores")
    print(f"{'case':10s} {'side':5s} {'wall s':>7s} {'CPU s':>7s} {'cores':>6s} "
          f"{'subs/s':>9s} {'PSS MB':>7s} {'B/sub':>7s}")
    for (name, side), rs in runs.items():
        if side.startswith("dd"):
            each = ", ".join(f"{r['mb_s']:.0f}" for r in rs)
            streams = f"{CASES[name]['workers']} streams"
            what = {"dd": "alone", "dd_busy": "with every core spinning",
                    "dd_streams": f"{streams} alone",
                    "dd_huge": f"{streams} alone, buffers in huge pages"
                    }.get(side) or (
                f"{streams}, the cores as busy as in the head's run "
                f"({med(rs, 'cores'):.2f} cores)")
            tool = "O_DIRECT writer (python)" if side == "dd_huge" else "dd oflag=direct"
            print(f"{name:10s} {tool} {what}: {med(rs, 'mb_s'):.0f} MB/s ({each})")
            continue
        print(f"{name:10s} {side:5s} {med(rs, 'wall_s'):7.2f} {med(rs, 'cpu_s'):7.2f} "
              f"{med(rs, 'cores_busy'):6.2f} {med(rs, 'subs_s'):9.0f} "
              f"{med(rs, 'peak_pss_mb'):7.0f} {med(rs, 'bytes_per_sub'):7.0f} "
              f"{med(rs, 'mb_s'):7.0f} MB/s written")
    for name in args.cases:
        if (name, "dd") in runs:
            # per round: each run against the dd measured just before it
            for ref in ("dd", "dd_streams", "dd_load", "dd_huge"):
                ratios = [h["mb_s"] / d["mb_s"]
                          for h, d in zip(runs[(name, "head")], runs[(name, ref)])]
                print(f"{name:10s} head / {ref}: median {statistics.median(ratios):.0%} "
                      f"({', '.join(f'{x:.0%}' for x in ratios)})")
        if (name, "base") in runs:
            h, b = runs[(name, "head")], runs[(name, "base")]
            if CASES[name].get("imports"):
                print(f"{name:10s} head/base: PSS "
                      f"{med(h, 'peak_pss_mb') / med(b, 'peak_pss_mb'):.2f}x")
                continue
            print(f"{name:10s} head/base: CPU {med(h, 'cpu_s') / med(b, 'cpu_s'):.2f}x, "
                  f"PSS {med(h, 'peak_pss_mb') / med(b, 'peak_pss_mb'):.2f}x, "
                  f"wall {med(h, 'wall_s') / med(b, 'wall_s'):.2f}x")
    if args.timeline and last:
        with open(args.timeline, "w") as fh:
            fh.write("t_s\tpss_mb\tprocesses\n")
            for t, kb, n in last["timeline"]:
                fh.write(f"{t:.2f}\t{kb / 1024:.1f}\t{n}\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({f"{k[0]}/{k[1]}": [{x: y for x, y in r.items() if x != "timeline"}
                                          for r in v] for k, v in runs.items()}, fh,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
