"""From measured repeats to metrics and the seed's benchmark_results.json."""
import pytest

from cdrexp.config import ExperimentConfig
from cdrexp.stats import GenerationStats
from cdrexp.tracking import names as N
from cdrexp.tracking.measure import Measurement
from cdrexp.tracking.results import benchmark_results, config_label, flatten, job_metrics


def stats(**kw):
    base = dict(subs=1000, days=2, workers=2, output_format="csv",
                rows_by_type={"CALL": 7000, "SMS": 10000, "DATA": 24000},
                bytes_written=8_000_000, uncompressed_bytes=8_000_000, files=3, wall_s=1.0,
                population_s=0.1, generation_s=0.5, formatting_s=0.3, writing_s=0.2)
    base.update(kw)
    return GenerationStats(**base)


@pytest.fixture
def measured():
    cfg = ExperimentConfig(subs=1000, days=2, workers=2, out="/tmp/x")
    ms = [Measurement(w, cpu, pss, pss + 10, pss // 2, 3)
          for w, cpu, pss in ((2.0, 3.0, 100_000_000), (1.0, 1.8, 300_000_000),
                              (4.0, 4.0, 200_000_000))]
    st = [stats(generation_s=g) for g in (0.4, 0.5, 0.9)]
    return cfg, ms, st


def test_metrics(measured):
    cfg, ms, st = measured
    m = job_metrics(cfg, ms, st, usable_cores=2)
    assert m[N.M_WALL_MEDIAN] == 2.0 and m[N.M_WALL_MIN] == 1.0 and m[N.M_WALL_MAX] == 4.0
    assert m[N.M_WALL_STDDEV] == pytest.approx(1.5275252, rel=1e-6)
    assert m[N.M_SUBS_PER_S] == pytest.approx(1000 * 2 / 2.0)     # subscriber-days / s
    assert m[N.M_RECORDS_PER_S] == pytest.approx(41000 / 2.0)
    assert m[N.M_MB_PER_S] == pytest.approx(8.0 / 2.0)
    assert m[N.M_CPU_CORES_BUSY] == pytest.approx(1.5)            # median of 1.5, 1.8, 1.0
    assert m[N.M_CPU_UTIL] == pytest.approx(0.75)
    assert m[N.M_PEAK_PSS] == pytest.approx(300.0)
    assert m[N.M_PEAK_PSS_MIN] == pytest.approx(100.0)
    assert m[N.M_WALL_SPREAD] == pytest.approx((4.0 - 1.0) / 2.0)   # (max - min) / median
    assert m[N.M_PHASE_GENERATION] == pytest.approx(0.5)
    assert m["rows_call"] == 7000 and m[N.M_ROWS] == 41000


def test_benchmark_results_has_the_seed_fields(measured):
    cfg, ms, st = measured
    m = job_metrics(cfg, ms, st, usable_cores=2)
    r = benchmark_results(cfg, "lbl", m, ms, st, {"mlflow_run_id": "r1"})
    assert r["subscribers"] == 1000 and r["days"] == 2
    assert r["elapsed_seconds"] == 2.0 and r["stddev_seconds"] == m[N.M_WALL_STDDEV]
    assert r["throughput_subs_per_sec"] == m[N.M_SUBS_PER_S]
    assert r["output_size_kb"] == pytest.approx(8_000_000 / 1024)
    assert r["max_memory_bytes"] == 300_000_000
    assert "lbl" in r["description"] and r["mlflow_run_id"] == "r1"
    assert len(r["repeat_measurements"]) == 3


def test_flatten_and_label():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == \
        {"a.b": 1, "a.c.d": [1, 2], "e": {}}
    cfg = ExperimentConfig(subs=5, workers=2, out="/tmp/x")
    assert config_label(cfg) == "subs=5 days=1 workers=2 csv"
    assert config_label(cfg, {"model": "small_test"}).endswith("model=small_test")
