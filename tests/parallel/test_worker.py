"""The worker's end: who unlinks the population's segment."""
from __future__ import annotations

import multiprocessing

import numpy as np

from cdrexp.parallel._shm import OwnedSegment


def _unused_unit(cfg, population, unit):
    raise AssertionError("no unit is sent")


def _worker_recording_orphan_checks(conn, record: str) -> None:
    from cdrexp.parallel import _worker
    _worker._unlink_orphaned = lambda name: open(record, "a").write(name + "\n")
    _worker.worker_main(conn, None, _unused_unit, None, {})


def _end_worker(tmp_path, told_to_stop: bool) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    record = tmp_path / "orphan_checks.txt"
    with OwnedSegment({"msisdn": np.arange(10, dtype=np.int64)}) as segment:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_recording_orphan_checks, args=(child, str(record)))
        proc.start()
        child.close()
        parent.send(segment.spec)
        if told_to_stop:
            parent.send(None)
        parent.close()                  # otherwise: the runner is gone
        proc.join(60)
        assert proc.exitcode == 0
    return record.read_text().split() if record.exists() else []


def test_a_worker_told_to_stop_leaves_the_segment_to_its_runner(tmp_path):
    """The runner unlinks the segment itself; asking whether it still lives cost every
    worker ~10-25 ms at its exit (importing psutil), on the run's critical path."""
    assert _end_worker(tmp_path, told_to_stop=True) == []


def test_a_worker_whose_runner_is_gone_looks_after_the_segment(tmp_path):
    checked = _end_worker(tmp_path, told_to_stop=False)
    assert len(checked) == 1 and checked[0].startswith("cdrexp_")
