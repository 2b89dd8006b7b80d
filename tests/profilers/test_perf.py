"""perf stat of the process tree: counters parsed, unsupported ones listed, never zero."""
from __future__ import annotations

import shutil

import pytest

from cdrexp.profilers.perf import derived, metric_name, parse_csv

from profiler_helpers import broken_child, load_json, profile

CSV = """# started on Fri Nov 27 13:50:59 2026

1977.89,msec,task-clock,1977889381,100.00,1.754,CPUs utilized
244,,context-switches,1977907068,100.00,123.364,/sec
18263,,page-faults,1977937573,100.00,9.234,K/sec
<not supported>,,cycles,0,100.00,,
<not counted>,,instructions,0,100.00,,
2000,,cache-references,1000,100.00,,
50,,cache-misses,1000,100.00,,
"""


def test_parse_csv_keeps_counted_and_lists_the_rest():
    counted, missing = parse_csv(CSV)
    assert counted == {"task-clock": 1977.89, "context-switches": 244.0,
                       "page-faults": 18263.0, "cache-references": 2000.0,
                       "cache-misses": 50.0}
    assert missing == ["cycles", "instructions"]
    metrics = {metric_name(k): v for k, v in counted.items()}
    assert set(metrics) == {"task_clock_ms", "context_switches", "page_faults",
                            "cache_references", "cache_misses"}
    d = derived(metrics, wall_s=2.0)
    assert d["cache_miss_rate"] == pytest.approx(0.025)
    assert d["cpus_utilized"] == pytest.approx(1977.89 / 1000 / 2.0)
    assert "ipc" not in d                       # no cycles: no IPC, not a made-up one
    assert derived({"instructions": 3e9, "cycles": 2e9}, 1.0)["ipc"] == pytest.approx(1.5)


@pytest.fixture(scope="module")
def result(module_tmp):
    return profile(module_tmp, "perf")


def test_counts_the_tree(result):
    if shutil.which("perf") is None:       # the machine has no perf: the degraded path
        assert result.status == "unavailable" and "perf" in result.message
        return
    assert result.status == "ok", result.message
    m = result.metrics
    assert m["task_clock_ms"] > 0 and m["page_faults"] > 0 and m["context_switches"] > 0
    report = load_json(result.artifact_dir / "perf_counters.json")
    assert set(report["counters"]) | set(report["not_supported"]) == set(
        report["events_asked"])
    for event in report["not_supported"]:
        assert metric_name(event) not in m        # never logged as a zero
        assert event in result.message
    if "instructions" in report["counters"] and "cycles" in report["counters"]:
        assert m["ipc"] > 0
    assert (result.artifact_dir / "perf.txt").read_text().startswith("counter")


def test_missing_perf_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("CDREXP_PERF_BIN", str(tmp_path / "no-such-perf"))
    res = profile(tmp_path, "perf")
    assert res.status == "unavailable"
    assert "CDREXP_PERF_BIN" in res.message and "\n" not in res.message


def test_kernel_refusing_perf_events_is_unavailable(tmp_path, monkeypatch):
    fake = tmp_path / "perf"
    fake.write_text("#!/bin/sh\necho 'Error: Access to performance monitoring and observability"
                    " operations is limited. Consider adjusting /proc/sys/kernel/"
                    "perf_event_paranoid setting' >&2\nexit 255\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CDREXP_PERF_BIN", str(fake))
    res = profile(tmp_path, "perf")
    assert res.status == "unavailable"
    assert "perf_event_paranoid" in res.message and "\n" not in res.message


@pytest.mark.skipif(shutil.which("perf") is None, reason="needs perf to reject the event")
def test_unknown_event_fails_in_one_line(tmp_path):
    res = profile(tmp_path, "perf", events=["task-clock", "no-such-event"])
    assert res.status == "failed"
    assert "no-such-event" in res.message and "\n" not in res.message


def test_failing_child_is_reported(tmp_path):
    res = profile(tmp_path, "perf", child_cmd=broken_child(tmp_path))
    if shutil.which("perf") is None:
        assert res.status == "unavailable"
        return
    assert res.status == "failed"
    assert "missing.yaml" in res.message and "\n" not in res.message
