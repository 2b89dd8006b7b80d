"""perf over the process tree: stat counters parsed, unsupported ones listed, never zero;
perf record's call stacks folded into speedscope, kernel and Arrow frames included."""
from __future__ import annotations

import json
import shutil

import pytest

from cdrexp.profilers._perf_script import fold
from cdrexp.profilers._samples import load_speedscope, process_roles, top_functions
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

# the CSV text is written by the compiled kernel (cdrexp/writers/_csv_kernel.py): the
# frames of its library, csv_kernel-<hash>.so
CSV_WRITER = "csv_kernel-"


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


SCRIPT = """perf-exec     0/0     PERF_RECORD_COMM: perf-exec:10/10
python  10/10  PERF_RECORD_COMM exec: python:10/10
python  10/10     1000000 cpu-clock: 
\tffffffff815a889f clear_page_erms ([kernel.kallsyms])
\tffffffff81000c82 asm_exc_page_fault ([kernel.kallsyms])
\t          1aecb1 _PyEval_EvalFrameDefault (/opt/lib/libpython3.11.so.1.0)

python  10/10  PERF_RECORD_FORK(10:11):(10:10)
python  10/10  PERF_RECORD_FORK(12:12):(10:10)
python  12/12  PERF_RECORD_FORK(13:13):(12:12)
python  13/13     3000000 cpu-clock: 
\t          3f2a10 arrow::csv::WriteCSV (/v/lib/python3.11/site-packages/pyarrow/libarrow.so.2500)
\t          1aecb1 _PyEval_EvalFrameDefault (/opt/lib/libpython3.11.so.1.0)
\t    7fc53a861860 [unknown] ([unknown])
\t    7fc53a861870 [unknown] ([unknown])
\t    7fc53a861880 [unknown] ([unknown])

python  10/11     1000000 cpu-clock: 
\t           f82ad read (/usr/lib/x86_64-linux-gnu/libc.so.6)

python  13/13  PERF_RECORD_EXIT(13:13):(12:12)
"""


def test_fold_perf_script_into_process_lineage_and_call_chains(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(fold(SCRIPT.splitlines(keepends=True))))
    s = load_speedscope(path)
    assert s.n_samples == 3 and s.seconds == pytest.approx(0.005)
    assert s.processes[13]["parent"] == 12 and s.processes[10]["parent"] is None
    assert process_roles(s) == {10: "main", 13: "worker"}
    rows = {r["function"]: r for r in top_functions(s)}
    assert rows["clear_page_erms"]["file"] == "[kernel.kallsyms]"
    assert rows["arrow::csv::WriteCSV"]["file"] == "pyarrow/libarrow.so.2500"
    assert rows["arrow::csv::WriteCSV"]["self_s"] == pytest.approx(0.003)
    assert rows["_PyEval_EvalFrameDefault"]["total_s"] == pytest.approx(0.004)
    assert rows["read"]["file"] == "libc.so.6"     # a thread of the main process
    worker = next(st for st, _ in s.stacks if len(st) > 4)
    labels = [s.frames[i].label for i in worker]
    assert labels[:3] == ['process 10: python', 'process 12: python', 'process 13: python']
    assert labels[3:] == ["[unknown] ([unknown])",      # root first; a run of them is one
                          "_PyEval_EvalFrameDefault (libpython3.11.so.1.0)",
                          "arrow::csv::WriteCSV (pyarrow/libarrow.so.2500)"]


@pytest.fixture(scope="module")
def result(module_tmp):
    return profile(module_tmp, "perf")          # the schema's freq, 999 Hz


def _sampled(result):
    if shutil.which("perf") is None:
        pytest.skip("perf is not installed")
    if "perf record" not in result.message or result.metrics.get("perf_samples") is None:
        pytest.skip(f"perf cannot record call stacks here: {result.message}")
    return load_speedscope(result.artifact_dir / "profile.speedscope.json")


@pytest.mark.slow
def test_perf_record_sees_kernel_and_csv_writer_frames_in_the_workers(result):
    """Kernel frames and the CSV writer's native ones (the compiled CSV kernel's)."""
    samples = _sampled(result)
    roles = process_roles(samples)
    assert list(roles.values()).count("worker") == 2, roles       # workers=2
    worker_frames = {samples.frames[i].label for stack, _ in samples.stacks
                     for i in stack if roles.get(_pid(samples, stack)) == "worker"}
    assert any("[kernel.kallsyms]" in f for f in worker_frames)
    assert any(CSV_WRITER in f for f in worker_frames), sorted(worker_frames)
    for name in ("perf_report.txt", "perf_flamegraph.svg", "top.txt", "perf.data"):
        assert (result.artifact_dir / name).stat().st_size > 0, name
    report = (result.artifact_dir / "perf_report.txt").read_text()
    assert "[kernel.kallsyms]" in report and CSV_WRITER in report
    svg = (result.artifact_dir / "perf_flamegraph.svg").read_text()
    assert "[kernel.kallsyms]" in svg and CSV_WRITER in svg
    assert 0 < result.metrics["perf_kernel_share"] < 1
    meta = load_json(result.artifact_dir / "metadata.json")
    assert meta["sampled"] == "ok" and meta["flamegraph_file"] == "perf_flamegraph.svg"


def _pid(samples, stack):
    pids = [samples.frames[i].pid for i in stack if samples.frames[i].pid is not None]
    return pids[-1] if pids else None


def test_counters_only_when_sampling_is_off(tmp_path):
    if shutil.which("perf") is None:
        pytest.skip("perf is not installed")
    res = profile(tmp_path, "perf", sample=False, events=["task-clock"])
    assert res.status == "ok", res.message
    assert not (res.artifact_dir / "perf.data").exists()
    assert "perf record" not in res.message and res.metrics["task_clock_ms"] > 0


def test_counts_the_tree(result):
    if shutil.which("perf") is None:       # the machine has no perf: the degraded path
        assert result.status == "unavailable" and "perf" in result.message
        pytest.skip("perf is not installed: only the degraded path was checked")
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
        pytest.skip("perf is not installed: only the degraded path was checked")
    assert res.status == "failed"
    assert "missing.yaml" in res.message and "\n" not in res.message


def test_differential_view_of_two_perf_profiles(tmp_path):
    """perf profiles diff like py-spy's: B spends 9 ms instead of 3 in Arrow's writer."""
    from cdrexp.profilers._diff import diff_profiles
    sides = {}
    for side, text in (("a", SCRIPT), ("b", SCRIPT.replace("13/13     3000000",
                                                           "13/13     9000000"))):
        path = tmp_path / f"{side}.json"
        path.write_text(json.dumps(fold(text.splitlines(keepends=True))))
        sides[side] = load_speedscope(path)
    first = diff_profiles(sides["a"], sides["b"]).changed_most("self", 5)[0]
    assert first.function == "arrow::csv::WriteCSV"
    assert first.self_a == pytest.approx(3 / 5) and first.self_b == pytest.approx(9 / 11)
