"""The sweep summary: speedup and efficiency, table, plots."""
from types import SimpleNamespace

import pytest

from cdrexp.tracking import names as N
from cdrexp.tracking.summary import (COLUMNS, add_speedup, job_rows, to_csv, to_markdown,
                                     write_plots)


def fake_run(job, subs, workers, wall, status="FINISHED", used=None):
    metrics = {N.M_WALL_MEDIAN: wall, N.M_WALL_STDDEV: 0.01, N.M_SUBS_PER_S: subs / wall,
               N.M_RECORDS_PER_S: 20 * subs / wall, N.M_MB_PER_S: 1.0,
               N.M_CPU_UTIL: 0.5, N.M_PEAK_PSS: 100.0 + subs / 1000, N.M_PEAK_RSS: 150.0,
               N.M_WORKERS: workers if used is None else used} \
        if status == "FINISHED" else {}
    return SimpleNamespace(
        info=SimpleNamespace(run_id=f"run{job}", status=status),
        data=SimpleNamespace(
            params={"subs": str(subs), "days": "1", "workers": str(workers),
                    "output.format": "csv", "executor.name": "local"},
            metrics=metrics,
            tags={N.TAG_JOB_NUM: str(job), "overrides": f"subs={subs} workers={workers}"}))


@pytest.fixture
def rows():
    runs = [fake_run(3, 2000, 2, 1.25), fake_run(0, 1000, 1, 1.0), fake_run(1, 1000, 2, 0.8),
            fake_run(2, 2000, 1, 2.0), fake_run(4, 3000, 1, 0, status="FAILED")]
    return job_rows(runs)


def test_rows_are_in_job_order(rows):
    assert [r["job"] for r in rows] == [0, 1, 2, 3, 4]


def test_speedup_and_efficiency_against_fewest_workers_of_the_same_config(rows):
    by_job = {r["job"]: r for r in rows}
    assert by_job[0][N.M_SPEEDUP] == pytest.approx(1.0)
    assert by_job[1][N.M_SPEEDUP] == pytest.approx(1.0 / 0.8)
    assert by_job[1][N.M_EFFICIENCY] == pytest.approx(1.25 / 2)
    assert by_job[3][N.M_SPEEDUP] == pytest.approx(2.0 / 1.25)
    assert by_job[3][N.M_EFFICIENCY] == pytest.approx(1.6 / 2)
    assert by_job[4].get(N.M_SPEEDUP) is None          # failed: nothing to compare


def test_speedup_ignores_the_workers_override_only():
    rows = [{"overrides": "subs=1 workers=1 output=csv", "workers_used": 1,
             N.M_WALL_MEDIAN: 2.0},
            {"overrides": "subs=1 workers=2 output=parquet", "workers_used": 2,
             N.M_WALL_MEDIAN: 1.0}]
    add_speedup(rows)
    assert rows[1][N.M_SPEEDUP] == 1.0                 # different format: own baseline


def test_speedup_and_efficiency_use_the_processes_that_ran_units():
    """workers=2 on a one-unit job ran serially (workers_used 1): no parallel speedup
    to credit, so its efficiency is its speedup, not half of it."""
    rows = job_rows([fake_run(0, 1000, 1, 1.0), fake_run(1, 1000, 2, 0.9, used=1)])
    assert [r["workers_used"] for r in rows] == [1, 1]
    assert rows[1][N.M_SPEEDUP] == pytest.approx(1 / 0.9)
    assert rows[1][N.M_EFFICIENCY] == pytest.approx(1 / 0.9)


def test_csv_and_markdown(rows):
    lines = to_csv(rows).splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 6
    md = to_markdown(rows, "sweep x")
    assert md.startswith("# sweep x") and md.count("\n| ") == 6


def test_plots_are_pngs(rows, tmp_path):
    files = write_plots(rows, tmp_path, "t")
    assert {f.name for f in files} == {"throughput_vs_subs.png", "memory_vs_subs.png",
                                       "throughput_vs_workers.png", "memory_vs_workers.png"}
    for f in files:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000
