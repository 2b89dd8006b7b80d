"""The sweep summary: speedup and efficiency, table, plots."""
from types import SimpleNamespace

import pytest

from cdrexp.tracking import names as N
from cdrexp.tracking.summary import (COLUMNS, LARGE_SPREAD, _plot_lines, _rate_band,
                                     _apart, _series, _speedup_band, add_speedup, job_rows,
                                     speedup_noise, to_csv, to_markdown, write_plots)


def fake_run(job, subs, workers, wall, status="FINISHED", used=None, spread=0.04):
    """A job whose repeats ran from wall * (1 - spread/2) to wall * (1 + spread/2)."""
    metrics = {N.M_WALL_MEDIAN: wall, N.M_WALL_MIN: wall * (1 - spread / 2),
               N.M_WALL_MAX: wall * (1 + spread / 2), N.M_WALL_STDDEV: 0.01, N.M_SUBS_PER_S: subs / wall,
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


def test_no_speedup_for_a_job_that_ran_on_fewer_workers_than_asked():
    """workers=2 on a one-unit job ran serially (workers_used 1): no parallel speedup
    to credit, none shown, and the note says why."""
    rows = job_rows([fake_run(0, 1000, 1, 1.0), fake_run(1, 1000, 2, 0.9, used=1),
                     fake_run(2, 1000, 4, 0.6, used=2)])
    assert [r["workers_used"] for r in rows] == [1, 1, 2]
    assert rows[1].get(N.M_SPEEDUP) is None and rows[1].get(N.M_EFFICIENCY) is None
    assert rows[1]["note"] == "1 of 2 workers ran: no speedup"
    assert rows[2].get(N.M_SPEEDUP) is None and "2 of 4" in rows[2]["note"]
    assert rows[0][N.M_SPEEDUP] == pytest.approx(1.0) and rows[0]["note"] == ""


def test_a_speedup_inside_the_repeats_spread_is_marked_noise():
    # 1.0 s vs 0.95 s with 20 % spreads: the repeats overlap, the "speedup" is noise
    rows = job_rows([fake_run(0, 1000, 1, 1.0, spread=0.2),
                     fake_run(1, 1000, 2, 0.95, spread=0.2),
                     fake_run(2, 2000, 1, 2.0, spread=0.02),
                     fake_run(3, 2000, 2, 1.2, spread=0.02)])
    assert speedup_noise(rows[1]) and rows[1]["note"].startswith("noise: speedup 0.")
    assert not speedup_noise(rows[3]) and rows[3]["note"] == ""
    assert not speedup_noise(rows[0])                 # the base itself
    md = to_markdown(rows)
    assert "noise: speedup" in md


def test_plots_keep_jobs_short_of_workers_off_the_lines():
    rows = job_rows([fake_run(0, 1000, 1, 1.0), fake_run(1, 1000, 2, 0.9, used=1),
                     fake_run(2, 5000, 1, 4.0), fake_run(3, 5000, 2, 2.2)])
    lines = _series(rows, "subs", "workers_used", N.M_SUBS_PER_S, _rate_band)
    # one point per subs on the workers_used=1 line: no zigzag through job #1
    assert [p[0] for p in lines[1]] == [1000, 5000]
    assert _apart(rows, "subs", N.M_SUBS_PER_S) == [(1000, pytest.approx(1000 / 0.9))]


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


def test_spread_column_and_noisy_jobs_are_marked():
    rows = job_rows([fake_run(0, 1000, 1, 1.0, spread=0.04),
                     fake_run(1, 1000, 2, 0.5, spread=0.30)])
    # computed from min / max / median for runs that did not log wall_s_spread
    assert [r[N.M_WALL_SPREAD] for r in rows] == [pytest.approx(0.04), pytest.approx(0.30)]
    assert N.M_WALL_SPREAD in to_csv(rows).splitlines()[0].split(",")
    md = to_markdown(rows).splitlines()
    assert "| 4.0% |" in md[2] and "| 30.0% ! |" in md[3]
    assert any(f"more than {LARGE_SPREAD:.0%}" in line for line in md)


def test_plotted_points_carry_the_repeats_range_and_noisy_ones_are_flagged():
    rows = job_rows([fake_run(0, 1000, 1, 1.0, spread=0.04),
                     fake_run(1, 1000, 2, 0.5, spread=0.30)])
    thr = _series(rows, "workers_used", "subs", N.M_SUBS_PER_S, _rate_band)[1000]
    (x1, y1, lo1, hi1, noisy1), (x2, y2, lo2, hi2, noisy2) = thr
    # throughput over the repeats: work / slowest wall .. work / fastest wall
    assert (lo2, hi2) == (pytest.approx(1000 / 0.575), pytest.approx(1000 / 0.425))
    assert lo1 < y1 < hi1 and not noisy1 and noisy2
    speed = _series(rows, "workers_used", "subs", N.M_SPEEDUP, _speedup_band)[1000]
    # speedup range: fastest base / slowest job .. slowest base / fastest job
    assert speed[1][2:4] == (pytest.approx(0.98 / 0.575), pytest.approx(1.02 / 0.425))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    fig, ax = plt.subplots()
    _plot_lines(ax, {1000: thr}, "subs")
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segments = bars.lines[2][0].get_segments()
    assert [tuple(seg[:, 1]) for seg in segments] == [
        (pytest.approx(lo1), pytest.approx(hi1)), (pytest.approx(lo2), pytest.approx(hi2))]
    rings = [c for c in ax.collections if c.get_label().startswith("noise")]
    assert len(rings) == 1 and rings[0].get_offsets().tolist() == [[x2, y2]]
    plt.close(fig)
