"""memray around a real 2-worker generation: one capture, flamegraph and stats per process."""
from __future__ import annotations

import pytest

from profiler_helpers import SEED_KEYS, load_json, profile


@pytest.fixture(scope="module")
def result(module_tmp):
    return profile(module_tmp, "memray")


def test_profile_ok_with_a_flamegraph_and_stats_per_process(result):
    assert result.status == "ok", result.message
    d = result.artifact_dir
    procs = sorted(p.stem for p in (d / "memray_raw").glob("*.bin"))
    assert "parent" in procs
    assert len([p for p in procs if p.startswith("worker-")]) == 2    # workers=2
    for proc in procs:
        html = (d / f"memray-flamegraph-{proc}.html").read_text()
        assert "<html" in html.lower() and len(html) > 10_000
        stats = (d / f"memray-stats-{proc}.txt").read_text()
        assert "Peak memory usage" in stats


def test_peak_heap_metrics(result):
    m = result.metrics
    assert m["peak_heap_mb"] > 0
    assert m["peak_heap_mb"] == max(m["peak_heap_mb_parent"], m["peak_heap_mb_worker_max"])
    assert m["peak_heap_mb_sum"] > m["peak_heap_mb"]          # three processes, all > 0
    assert m["memray_processes"] == 3
    # a worker builds Arrow tables of its units: with Arrow on the system allocator
    # memray sees them, well above the few MB of an idle interpreter
    assert m["peak_heap_mb_worker_max"] > 5
    # MB of 10^6 bytes, the unit of every *_mb metric (it was 2^20 once)
    import memray
    parent = memray.FileReader(str(result.artifact_dir / "memray_raw" / "parent.bin"))
    assert m["peak_heap_mb_parent"] == pytest.approx(parent.metadata.peak_memory / 1e6)
    meta = load_json(result.artifact_dir / "metadata.json")
    for key in SEED_KEYS:
        assert meta[key] is not None, key
    assert meta["arrow_memory_pool"] == "system"
    assert len(meta["processes"]) == 3 and meta["errors"] == []
    summary = (result.artifact_dir / "memray_summary.txt").read_text()
    assert "parent" in summary and summary.count("worker-") == 2


def test_missing_memray_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("CDREXP_MEMRAY_BIN", str(tmp_path / "no-such-memray"))
    res = profile(tmp_path, "memray")
    assert res.status == "unavailable"
    assert "CDREXP_MEMRAY_BIN" in res.message and "\n" not in res.message

