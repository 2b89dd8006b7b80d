"""The checks against this machine: the run's estimated memory and output size."""
import pytest

from cdrexp.config import FOOTPRINT, ConfigError, check_resources, estimate, to_config
from cdrexp.config._budget import day_factors, records_per_sub_day

GB = 10**9


def _exp(tmp_path, **kw):
    return to_config({"out": str(tmp_path), **kw})


def test_the_issue_case_is_refused_with_the_figures(tmp_path):
    cfg = _exp(tmp_path, subs=100_000, workers=2,
               model={"avg_data_sessions_per_user": 100_000})
    with pytest.raises(ConfigError) as err:
        check_resources(cfg, available_bytes=64 * GB, free_disk_bytes=10**15)
    msg = str(err.value)
    # 100,000 subscribers x ~100,000 records a day, ~160 B each in a worker's unit
    assert msg.startswith("subs: the run needs ~"), msg
    assert "GB of memory" in msg and "64.0 GB available" in msg
    assert "check_resources=false" in msg


def test_the_output_is_checked_against_the_free_disk(tmp_path):
    cfg = _exp(tmp_path, subs=1_000_000, days=30)
    est = estimate(cfg)
    # 1M subscribers x 30 days x ~20 records, ~180 B each: ~100 GB of csv
    assert 80 * GB < est.output_bytes < 150 * GB
    with pytest.raises(ConfigError, match=r"^out: the run writes ~.* GB \(.* records as "
                                          r"csv\), .* has 50.0 GB free"):
        check_resources(cfg, available_bytes=64 * GB, free_disk_bytes=50 * GB)
    check_resources(cfg, available_bytes=64 * GB, free_disk_bytes=200 * GB)


def test_a_profiled_run_needs_room_for_two_outputs(tmp_path):
    plain = estimate(_exp(tmp_path, subs=10_000))
    profiled = estimate(_exp(tmp_path, subs=10_000, profiler={"name": "pyspy"}))
    assert profiled.output_bytes == pytest.approx(2 * plain.output_bytes)


def test_check_resources_false_runs_anyway(tmp_path):
    cfg = _exp(tmp_path, subs=100_000, model={"avg_data_sessions_per_user": 100_000},
               check_resources=False)
    check_resources(cfg, available_bytes=1 * GB, free_disk_bytes=1)


def test_a_default_run_fits_a_small_machine(tmp_path):
    """The estimate must not refuse what runs: the default job in 1 GB of memory."""
    cfg = _exp(tmp_path, workers=2)
    assert estimate(cfg).memory_bytes < 1 * GB
    check_resources(cfg, available_bytes=1 * GB, free_disk_bytes=1 * GB)


def test_memory_grows_with_the_workers_and_the_rates(tmp_path):
    one = estimate(_exp(tmp_path, subs=100_000, workers=1)).memory_bytes
    two = estimate(_exp(tmp_path, subs=100_000, workers=2)).memory_bytes
    busy = estimate(_exp(tmp_path, subs=100_000, workers=2,
                         model={"avg_data_sessions_per_user": 120})).memory_bytes
    assert one < two < busy
    # the worker's base is not counted for a serial run
    assert two - one > FOOTPRINT.worker_bytes


def test_records_follow_the_model(tmp_path):
    m = _exp(tmp_path).model
    assert records_per_sub_day(m) == pytest.approx(3.5 + 5.2 + 12.0)
    # January to March 2025: 31 x 0.95 + 28 x 0.90 + 31 x 1.00 days of volume
    total, busiest = day_factors(m, "2025-01-01", 90)
    assert total == pytest.approx(31 * 0.95 + 28 * 0.90 + 31 * 1.00)
    assert busiest == 1.00
    m.special_days = {"2025-02-14": 3.0}
    total2, busiest2 = day_factors(m, "2025-01-01", 90)
    assert total2 == pytest.approx(total + 0.90 * 2.0) and busiest2 == pytest.approx(2.7)


def test_millions_of_days_are_estimated_at_once(tmp_path):
    total, _ = day_factors(_exp(tmp_path).model, "0001-01-02", 3_000_000)
    assert 2_900_000 < total < 3_200_000
