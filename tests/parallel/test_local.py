"""LocalExecutor's machinery, in this process, with a fake population and unit function."""
from __future__ import annotations

import os
import signal

import psutil
import pytest
from parallel_fakes import (FakeCfg, fake_population, fake_unit, fake_unit_two_step,
                            fake_units, read_unit_file)

from cdrexp.parallel import ExecutionError, Interrupted, LocalExecutor, SerialExecutor
from cdrexp.parallel.local import RemoteTraceback


def our_segments() -> list[str]:
    return [f for f in os.listdir("/dev/shm") if f.startswith(f"cdrexp_{os.getpid()}_")]


def assert_workers_gone(ex: LocalExecutor) -> None:
    assert ex.worker_pids, "the executor never started a worker"
    alive = []
    for pid in ex.worker_pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert not alive, f"workers still running: {alive}"


@pytest.fixture
def cfg(tmp_path):
    return FakeCfg(out=str(tmp_path), n_units=8)


def run_local(cfg, workers, progress=None, pop=None):
    ex = LocalExecutor(workers, unit_fn=fake_unit)
    pop = fake_population(cfg.n_units * cfg.chunk) if pop is None else pop
    return ex, ex.run(cfg, pop, fake_units(cfg), progress)


def test_results_match_serial_in_unit_order(cfg, tmp_path):
    serial_cfg = FakeCfg(out=str(tmp_path / "serial"), n_units=8)
    os.makedirs(serial_cfg.out)
    pop = fake_population(8000)
    expected = SerialExecutor(unit_fn=fake_unit).run(serial_cfg, pop, fake_units(serial_cfg))
    ex, got = run_local(cfg, 3, pop=pop)
    assert [r.chunk for r in got] == list(range(8))
    # the checksums prove the workers read the same population through shared memory
    assert [r.rows_by_type for r in got] == [r.rows_by_type for r in expected]
    assert_workers_gone(ex)
    assert our_segments() == []


def test_two_step_units_overlap_the_next_units_generation(cfg, tmp_path):
    """A unit function with a two-step form: each worker gets its next unit while its
    current one's last writes go on, generates it, then finishes the current one. The
    results are the same as one at a time, every file is complete, and the progress
    counts each unit once, in order."""
    cfg.line_sleep = 0.01
    serial_cfg = FakeCfg(out=str(tmp_path / "serial"), n_units=8)
    os.makedirs(serial_cfg.out)
    pop = fake_population(8000)
    expected = SerialExecutor(unit_fn=fake_unit).run(serial_cfg, pop, fake_units(serial_cfg))
    seen = []
    ex = LocalExecutor(2, unit_fn=fake_unit_two_step)
    got = ex.run(cfg, pop, fake_units(cfg), lambda p: seen.append(p.units_done))
    assert [r.rows_by_type for r in got] == [r.rows_by_type for r in expected]
    assert seen == list(range(1, 9))
    infos = [read_unit_file(os.path.join(cfg.out, r.files[0].path)) for r in got]
    assert all(i["complete"] for i in infos)
    by_worker: dict[int, list] = {}
    for i in sorted(infos, key=lambda i: i["generated"]):
        by_worker.setdefault(i["pid"], []).append(i)
    pairs = [(a, b) for units in by_worker.values() for a, b in zip(units, units[1:])]
    assert len(pairs) >= 6
    # the next unit was generated before the one before it was finished
    assert all(b["generated"] < a["finished"] for a, b in pairs)
    assert_workers_gone(ex)
    assert our_segments() == []


def test_workers_see_read_only_views_and_each_writes_its_files(cfg):
    ex, results = run_local(cfg, 2)
    infos = [read_unit_file(os.path.join(cfg.out, r.files[0].path)) for r in results]
    assert all(i["complete"] for i in infos)
    assert {i["writeable"] for i in infos} == {"False"}
    assert {i["pid"] for i in infos} == set(ex.worker_pids)
    assert os.getpid() not in ex.worker_pids


def test_progress_counts_every_unit_and_rows(cfg):
    seen = []
    _, results = run_local(cfg, 2, progress=seen.append)
    assert [p.units_done for p in seen] == list(range(1, 9))
    assert {p.units_total for p in seen} == {8}
    assert seen[-1].rows_written == sum(r.rows for r in results)
    assert all(a.rows_written < b.rows_written for a, b in zip(seen, seen[1:]))


def test_a_free_worker_takes_the_next_unit(tmp_path):
    # unit 0 is slow: with dynamic hand-out the other worker does all the rest; a static
    # split (round robin or halves) would leave some of them queued behind unit 0
    cfg = FakeCfg(out=str(tmp_path), n_units=8, slow_chunk=0, slow_s=3.0)
    ex, results = run_local(cfg, 2)
    pids = [read_unit_file(os.path.join(cfg.out, r.files[0].path))["pid"] for r in results]
    assert pids[0] not in pids[1:]
    assert len(set(pids[1:])) == 1


def test_no_more_workers_than_units(tmp_path):
    cfg = FakeCfg(out=str(tmp_path), n_units=3)
    ex, results = run_local(cfg, 8)
    assert len(ex.worker_pids) == 3 and len(results) == 3


def test_a_single_unit_runs_in_this_process(tmp_path):
    cfg = FakeCfg(out=str(tmp_path), n_units=1)
    seen = []
    ex, results = run_local(cfg, 4, progress=seen.append)
    assert ex.worker_pids == [] and [r.chunk for r in results] == [0]
    assert read_unit_file(os.path.join(cfg.out, results[0].files[0].path))["pid"] == os.getpid()
    assert [p.units_done for p in seen] == [1]


def test_no_units_starts_nothing(cfg):
    ex = LocalExecutor(2, unit_fn=fake_unit)
    assert ex.run(cfg, fake_population(), []) == []
    assert ex.worker_pids == []


def test_a_failing_unit_is_named_and_everything_is_released(tmp_path):
    cfg = FakeCfg(out=str(tmp_path), n_units=8, fail_chunk=3)
    ex = LocalExecutor(2, unit_fn=fake_unit)
    with pytest.raises(ExecutionError, match=r"unit 2025-01-01/c00003 failed in worker pid "
                       r"\d+: ValueError: fake failure in chunk 3") as info:
        ex.run(cfg, fake_population(8000), fake_units(cfg))
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "fake_unit" in str(info.value.__cause__)      # the worker's own traceback
    assert_workers_gone(ex)
    assert our_segments() == []


def test_a_worker_that_exits_is_named_with_its_unit(tmp_path):
    cfg = FakeCfg(out=str(tmp_path), n_units=8, exit_chunk=5)
    ex = LocalExecutor(2, unit_fn=fake_unit)
    with pytest.raises(ExecutionError, match=r"worker pid \d+ exited with code 3 while "
                                             r"running unit 2025-01-01/c00005"):
        ex.run(cfg, fake_population(8000), fake_units(cfg))
    assert_workers_gone(ex)
    assert our_segments() == []


def test_an_exception_in_the_parent_stops_the_workers(cfg):
    def boom(progress):
        raise RuntimeError("progress display broke")
    ex = LocalExecutor(2, unit_fn=fake_unit)
    with pytest.raises(RuntimeError, match="progress display broke"):
        ex.run(cfg, fake_population(8000), fake_units(cfg), boom)
    assert_workers_gone(ex)
    assert our_segments() == []


def test_sigterm_becomes_interrupted_and_handlers_are_restored(tmp_path):
    cfg = FakeCfg(out=str(tmp_path), n_units=20, line_sleep=0.02)
    before = (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))

    def terminate_after_two(progress):
        if progress.units_done == 2:
            os.kill(os.getpid(), signal.SIGTERM)
    ex = LocalExecutor(2, unit_fn=fake_unit)
    with pytest.raises(Interrupted, match=r"SIGTERM received: .* 2 of 20 units") as info:
        ex.run(cfg, fake_population(20000), fake_units(cfg), terminate_after_two)
    assert info.value.signum == signal.SIGTERM
    assert isinstance(info.value, KeyboardInterrupt)     # runners treat it like Ctrl-C
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert_workers_gone(ex)
    assert our_segments() == []
    # the workers were stopped mid-unit: they removed their temp files, and every file
    # under a final name is whole
    names = os.listdir(cfg.out)
    assert not [n for n in names if n.endswith(".tmp")]
    assert all(read_unit_file(os.path.join(cfg.out, n))["complete"] for n in names)


def test_bad_worker_count():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        LocalExecutor(0)


def test_a_population_without_arrays_is_refused(cfg):
    with pytest.raises(TypeError, match="cannot share a list"):
        LocalExecutor(2, unit_fn=fake_unit).run(cfg, [1, 2], fake_units(cfg))
