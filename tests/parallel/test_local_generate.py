"""LocalExecutor with the real generator: determinism across worker counts, and faults hitting
``python -m cdrexp.cli.child`` mid-run."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from omegaconf import OmegaConf

from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig, config_to_dict
from cdrexp.generation import generate
from cdrexp.model import CSV_HEADER
from cdrexp.parallel import LocalExecutor
from cdrexp.parallel.memory import is_worker

GONE_WITHIN_S = 20.0
N_COLUMNS = 22


def manifest_files(out: Path) -> dict[str, str]:
    """path -> checksum of every file the manifest lists."""
    manifest = json.loads((out / "manifest.json").read_text())
    return {f["path"]: f[manifest["checksum"]] for f in manifest["files"]}


def test_parent_holds_the_population_once_during_a_run(tmp_path):
    """While workers run, the caller's population points into the shared segment (its
    private arrays freed); afterwards it owns equal private copies again."""
    import numpy as np

    from cdrexp.model import build_population, plan_units
    from cdrexp.writers import prepare_output

    cfg = GeneratorConfig(subs=4000, workers=2, out=str(tmp_path / "o"),
                          model=ModelConfig(chunk_size=1000))
    pop = build_population(cfg)
    before = {k: v.copy() for k, v in pop.arrays().items()}
    prepare_output(cfg, pop)
    owned_during = []
    LocalExecutor(2).run(cfg, pop, plan_units(cfg),
                         on_progress=lambda p: owned_during.append(pop.msisdn.flags.owndata))
    assert owned_during and not any(owned_during)
    assert pop.msisdn.flags.owndata
    for k, v in pop.arrays().items():
        np.testing.assert_array_equal(v, before[k])


def test_output_is_byte_identical_for_any_worker_count(tmp_path):
    base = dict(subs=4000, days=2, start="2025-03-30", seed=11,
                model=ModelConfig(chunk_size=500))          # 8 chunks x 2 days
    manifests = {}
    for workers in (1, 2, 3, 8):
        out = tmp_path / f"w{workers}"
        cfg = GeneratorConfig(workers=workers, out=str(out), **base)
        stats = generate(cfg)
        assert stats.workers == workers
        manifests[workers] = manifest_files(out)
    assert len(manifests[1]) >= 16
    for workers in (2, 3, 8):
        assert manifests[workers] == manifests[1], f"workers={workers} differs from 1"


def test_workers_used_counts_the_processes_that_ran_units(tmp_path):
    """A pool of 2 given one unit runs it in the calling process: 1 process, not 2
    (the sweep's speedup and efficiency divide by this)."""
    base = dict(days=1, seed=5, workers=2, model=ModelConfig(chunk_size=1000),
                output=OutputConfig(format="none"))
    one_unit = generate(GeneratorConfig(subs=800, out=str(tmp_path / "a"), **base))
    assert one_unit.workers == 1
    three_units = generate(GeneratorConfig(subs=3000, out=str(tmp_path / "b"), **base))
    assert three_units.workers == 2


def test_local_executor_reports_progress_of_the_real_generator(tmp_path):
    cfg = GeneratorConfig(subs=3000, days=1, seed=3, workers=2, out=str(tmp_path / "o"),
                          model=ModelConfig(chunk_size=1000),
                          output=OutputConfig(format="none"))
    seen = []
    stats = generate(cfg, on_progress=seen.append, executor=LocalExecutor(2))
    assert [p.units_done for p in seen] == [1, 2, 3]
    assert seen[-1].rows_written == stats.rows > 0


# ---- faults through the real child command ----------------------------------------------

def segments_of(pid: int) -> list[str]:
    return [f for f in os.listdir("/dev/shm") if f.startswith(f"cdrexp_{pid}_")]


def final_parts(out: Path) -> list[Path]:
    return [p for p in out.glob("*/cdr_*") if not p.name.startswith(".")]


def chunk_of(part: Path) -> int:
    return int(re.search(r"_c(\d{5})_p\d{3}", part.name).group(1))


def whole_csv_rows(path: Path) -> int:
    """Rows of a complete part: the header, then only whole 22-column lines."""
    data = path.read_bytes()
    assert data.endswith(b"\n"), f"{path} ends mid-line"
    lines = data.split(b"\n")[:-1]
    assert lines[0].decode() == CSV_HEADER.rstrip("\n")
    assert all(line.count(b";") == N_COLUMNS - 1 for line in lines[1:]), path
    return len(lines) - 1


class ChildRun:
    """``python -m cdrexp.cli.child`` on a config big enough to be stopped mid-run."""

    def __init__(self, tmp_path: Path):
        self.out = tmp_path / "out"
        cfg = GeneratorConfig(subs=600_000, days=1, seed=5, workers=2, out=str(self.out),
                              model=ModelConfig(chunk_size=20_000),
                              output=OutputConfig(format="csv", rotate_bytes=4_000_000))
        cfg_file = tmp_path / "cfg.yaml"
        OmegaConf.save(config_to_dict(cfg), cfg_file)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cdrexp.cli.child", "--config", str(cfg_file)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.ps = psutil.Process(self.proc.pid)

    def wait_for_a_finished_unit(self, timeout: float = 120.0) -> None:
        """Until parts of 3 chunks exist: with 2 workers, at least one unit is complete."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"run ended early: {self.proc.stderr.read()}")
            if len({chunk_of(p) for p in final_parts(self.out)}) >= 3:
                return
            time.sleep(0.05)
        raise AssertionError("no unit finished in time")

    def workers(self) -> list[psutil.Process]:
        return [p for p in self.ps.children(recursive=True) if is_worker(p)]

    def finish(self) -> tuple[int, str]:
        procs = self.ps.children(recursive=True)
        _, err = self.proc.communicate(timeout=120)
        _, alive = psutil.wait_procs(procs, timeout=GONE_WITHIN_S)
        assert not alive, f"still running after the run ended: {alive}"
        return self.proc.returncode, err

    def assert_nothing_incomplete(self, err: str) -> None:
        assert segments_of(self.proc.pid) == []
        assert "leaked shared_memory" not in err and "resource_tracker" not in err
        assert not (self.out / "manifest.json").exists()     # an interrupted run has none
        rows: dict[int, int] = {}
        for p in final_parts(self.out):
            rows[chunk_of(p)] = rows.get(chunk_of(p), 0) + whole_csv_rows(p)
        assert rows, "the units completed before the fault were lost"
        # only whole units remain: a chunk's rows are Poisson totals (sd ~ 0.2 %); one
        # missing part (~27,000 rows of 4 MB) would be ~7 % short
        expected = 20_000 * 20.7 * 0.95          # January seasonality
        for chunk, n in rows.items():
            assert abs(n / expected - 1) < 0.04, f"chunk {chunk}: {n} rows, not a whole unit"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_child_stopped_by_signal(tmp_path, how):
    run = ChildRun(tmp_path)
    run.wait_for_a_finished_unit()
    assert len(run.workers()) == 2
    if how == "ctrl-c":
        os.killpg(run.proc.pid, signal.SIGINT)
    else:
        os.kill(run.proc.pid, signal.SIGTERM)
    rc, err = run.finish()
    name = "SIGINT" if how == "ctrl-c" else "SIGTERM"
    assert rc != 0
    assert re.search(rf"{name} received: run stopped, workers ended, shared memory "
                     r"released; \d+ of 30 units were complete", err), err
    run.assert_nothing_incomplete(err)
    assert not list(run.out.glob("*/.*tmp*"))


@pytest.mark.slow
def test_child_with_a_killed_worker(tmp_path):
    run = ChildRun(tmp_path)
    run.wait_for_a_finished_unit()
    victim = run.workers()[0]
    victim.send_signal(signal.SIGKILL)
    rc, err = run.finish()
    assert rc != 0
    assert re.search(rf"worker pid {victim.pid} died \(signal 9, SIGKILL\) while running "
                     r"unit 2025-01-01/c000\d\d", err), err
    run.assert_nothing_incomplete(err)
    assert not list(run.out.glob("*/.*tmp*"))       # the parent removed the victim's


@pytest.mark.slow
def test_how_workers_start(tmp_path):
    """A run of one unit starts no worker machinery (the default run: 10,000 subscribers,
    one day). Several units of CSV, or of Parquet (whose pyarrow starts jemalloc's
    thread, which is fork-safe): workers forked from this process, no forkserver. From a
    process running a thread of its own: workers from the forkserver."""
    script = (
        "import sys, threading, psutil\n"
        "from cdrexp.generation import generate\n"
        "from cdrexp.config import GeneratorConfig, ModelConfig, OutputConfig\n"
        "from cdrexp.parallel import LocalExecutor, preload_for\n"
        "for i, arg in enumerate(sys.argv[1:]):\n"
        "    fmt, subs, thread = arg.split(':')\n"
        "    if thread == 'thread':\n"
        "        threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "    ex = LocalExecutor(2, preload=preload_for(fmt))\n"
        "    generate(GeneratorConfig(subs=int(subs), workers=2, out=f'o{i}',\n"
        "                             output=OutputConfig(format=fmt),\n"
        "                             model=ModelConfig(chunk_size=1000)), executor=ex)\n"
        "    print(ex.last_start_method, sum('forkserver' in ' '.join(c.cmdline())\n"
        "                                   for c in psutil.Process().children()))\n")
    proc = subprocess.run([sys.executable, "-c", script, "csv:1000:-", "csv:3000:-",
                           "parquet:3000:-", "csv:3000:thread"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["None 0", "fork 0", "fork 0", "forkserver 1"]
    assert proc.stderr == ""


@pytest.mark.slow
def test_child_on_a_disk_that_fills(tmp_path, small_disk):
    """A real 96 MB ext4 filesystem fills mid-run, while workers hold two units each
    (the last writes of one, the generation of the next): the run ends non-zero naming
    the full disk (not a write that failed after it), the units complete before it are
    kept whole, and no partial unit, temporary file or shared memory is left."""
    out = small_disk(96) / "out"
    # ~34 MB of csv per unit of 10,000 subscribers: the first two units fit, so the one
    # of them that ends first is complete before the disk is full (the other may lose
    # its room to the next unit of the first one's worker)
    cfg = GeneratorConfig(subs=60_000, days=1, seed=5, workers=2, out=str(out),
                          output=OutputConfig(format="csv", rotate_bytes=4_000_000))
    cfg_file = tmp_path / "cfg.yaml"
    OmegaConf.save(config_to_dict(cfg), cfg_file)
    proc = subprocess.Popen([sys.executable, "-m", "cdrexp.cli.child", "--config",
                             str(cfg_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "No space left on device" in err and str(out) in err, err
    assert segments_of(proc.pid) == []
    assert not list(out.glob("*/.*tmp*"))
    rows: dict[int, int] = {}
    for p in final_parts(out):
        rows[chunk_of(p)] = rows.get(chunk_of(p), 0) + whole_csv_rows(p)
    expected = 10_000 * 20.7 * 0.95          # a whole unit (see ChildRun)
    assert rows and set(rows) <= {0, 1, 2, 3}, rows
    for chunk, n in rows.items():
        assert abs(n / expected - 1) < 0.04, f"chunk {chunk}: {n} rows, not a whole unit"
