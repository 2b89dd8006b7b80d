import sys

import pytest

from cdrexp.config import ConfigError, ExperimentConfig, GeneratorConfig, to_config


def test_defaults_are_valid(tmp_path):
    cfg = to_config({"out": str(tmp_path)})
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.model.avg_calls_per_user == 3.5


@pytest.mark.parametrize("raw, key", [
    ({"model": {"avg_calls_per_user": -1}}, "model.avg_calls_per_user"),
    ({"model": {"call_dispositions": {"ANSWERED": 0.5}}}, "model.call_dispositions"),
    ({"model": {"diurnal_weekday": [1.0] * 23}}, "model.diurnal_weekday"),
    ({"model": {"tz_name": "Mars/Olympus"}}, "model.tz_name"),
    ({"subs": 40_000_001}, "subs"),
    ({"subs": -1}, "subs"),
    ({"days": 0}, "days"),
    ({"start": "2025-13-01"}, "start"),
    ({"workers": -3}, "workers"),
    ({"model": {"offnet_prefixes": [3161]}}, "model.offnet_prefixes"),
    ({"model": {"cell_rat_shares": {"WCDMA": 0.5, "LTE": 0.5, "NR": 0.0}}},
     "model.cell_rat_shares.NR"),
    ({"output": {"format": "xml"}}, "output.format"),
    ({"output": {"format": "csv_gz", "compression_level": 4}}, "output.compression_level"),
    ({"output": {"format": "csv_gz", "compression_level": -1}}, "output.compression_level"),
    ({"output": {"format": "csv_gz", "gzip_backend": "zlib", "compression_level": 10}},
     "output.compression_level"),
    ({"output": {"format": "csv_gz", "gzip_backend": "libdeflate",
                 "compression_level": 13}}, "output.compression_level"),
    ({"output": {"format": "csv_zst", "compression_level": 23}}, "output.compression_level"),
    ({"output": {"format": "parquet", "compression_level": 0}}, "output.compression_level"),
    ({"output": {"format": "csv", "compression_level": 3}}, "output.compression_level"),
    ({"output": {"format": "csv_gz", "gzip_backend": "brotli"}}, "output.gzip_backend"),
    ({"output": {"checksum": "md5"}}, "output.checksum"),
    ({"output": {"direct_io": "sometimes"}}, "output.direct_io"),
    ({"subs": "abc"}, "subs"),
    ({"nonesuch": 1}, "nonesuch"),
])
def test_bad_values_name_the_key(raw, key, tmp_path):
    raw = {"out": str(tmp_path), **raw}
    with pytest.raises(ConfigError) as err:
        to_config(raw, GeneratorConfig)
    msg = str(err.value)
    assert msg.startswith(key), msg
    assert "\n" not in msg


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_out_is_rejected(tmp_path, where):
    if where == "under_a_file":
        (tmp_path / "f").write_text("x")
        out = str(tmp_path / "f" / "x")
    else:  # not writable even for root, which CI runs as
        out = "/proc/cdrexp-out"
    with pytest.raises(ConfigError, match="^out:"):
        to_config({"out": out}, GeneratorConfig)


# ---- dates of the whole run (start .. start + days - 1) --------------------------------

@pytest.mark.parametrize("start, days, key, text", [
    ("2025-01-01", 3_000_000, "days", "3000000 days from 2025-01-01 run past 9999-12-30"),
    ("9999-12-31", 2, "start", "must be between 0001-01-02 and 9999-12-30"),
    ("9999-12-30", 2, "days", "at most 1 days from this start"),
    ("0001-01-01", 1, "start", "must be between 0001-01-02 and 9999-12-30"),
])
def test_dates_of_the_whole_run_are_checked(start, days, key, text, tmp_path):
    with pytest.raises(ConfigError) as err:
        to_config({"out": str(tmp_path), "start": start, "days": days}, GeneratorConfig)
    assert str(err.value).startswith(f"{key}: ") and text in str(err.value), err.value


@pytest.mark.parametrize("start, days", [("0001-01-02", 1), ("9999-12-30", 1),
                                         ("9999-12-01", 30)])
def test_dates_at_the_edges_are_accepted(start, days, tmp_path):
    cfg = to_config({"out": str(tmp_path), "start": start, "days": days}, GeneratorConfig)
    assert (cfg.start, cfg.days) == (start, days)


# ---- the worker cap ----------------------------------------------------------------------

def _exp(tmp_path, **kw):
    return to_config({"out": str(tmp_path), **kw})


GB = 10**9


def test_workers_beyond_four_per_core_are_refused_with_the_way_out(tmp_path):
    from cdrexp.config import check_worker_cap
    cfg = _exp(tmp_path, subs=20_000, workers=10_000, model={"chunk_size": 1})
    with pytest.raises(ConfigError) as err:
        check_worker_cap(cfg, usable_cores=2, available_bytes=100 * GB)
    msg = str(err.value)
    assert msg.startswith("workers: 10000 worker processes (of 20000 units)"), msg
    assert "8 by cores" in msg and "oversubscribe=true" in msg
    check_worker_cap(cfg, usable_cores=2500, available_bytes=10_000 * GB)   # fits there
    lifted = _exp(tmp_path, subs=20_000, workers=10_000, model={"chunk_size": 1},
                  oversubscribe=True)
    check_worker_cap(lifted, usable_cores=2, available_bytes=1 * GB)


def test_workers_are_capped_by_memory(tmp_path):
    from cdrexp.config import check_worker_cap
    cfg = _exp(tmp_path, subs=1_000_000, workers=20)       # 100 units of 10,000
    # ~97 MB per worker (config.FOOTPRINT): 1 GB holds 10
    with pytest.raises(ConfigError, match=r"10 by memory \(1.0 GB available, ~97 MB each\)"):
        check_worker_cap(cfg, usable_cores=64, available_bytes=1 * GB)
    check_worker_cap(cfg, usable_cores=64, available_bytes=2 * GB)


def test_workers_beyond_the_units_are_not_an_error(tmp_path):
    """Only as many processes as units start: workers=64 for 2 units starts 2."""
    from cdrexp.config import check_worker_cap
    cfg = _exp(tmp_path, subs=20_000, workers=64)
    check_worker_cap(cfg, usable_cores=1, available_bytes=1 * GB)


def test_a_remote_dask_cluster_is_not_capped_by_this_machine(tmp_path):
    from cdrexp.config import check_worker_cap
    cfg = _exp(tmp_path, subs=20_000, workers=1000, model={"chunk_size": 1},
               executor={"name": "dask", "address": "tcp://sched:8786"})
    check_worker_cap(cfg, usable_cores=2, available_bytes=1 * GB)


@pytest.mark.parametrize("backend, module", [("isal", "isal"), ("libdeflate", "deflate")])
def test_a_gzip_backend_that_is_not_installed_is_named(tmp_path, monkeypatch, backend,
                                                       module):
    monkeypatch.setitem(sys.modules, module, None)      # what find_spec sees as absent
    raw = {"out": str(tmp_path), "output": {"format": "csv_gz", "gzip_backend": backend}}
    with pytest.raises(ConfigError, match=rf"^output.gzip_backend: '{backend}' is not "
                                          rf"installed \(its Python package is '{module}'\)"):
        to_config(raw, GeneratorConfig)
    # only csv_gz needs it
    to_config({**raw, "output": {"format": "csv", "gzip_backend": backend}}, GeneratorConfig)


def test_the_message_gives_the_range_of_the_backend(tmp_path):
    raw = {"out": str(tmp_path), "output": {"format": "csv_gz", "compression_level": 6}}
    with pytest.raises(ConfigError) as err:
        to_config(raw, GeneratorConfig)
    assert str(err.value) == ("output.compression_level: must be in [0, 3] for csv_gz "
                              "with gzip_backend isal, got 6")


@pytest.mark.parametrize("key, value", [("rate", 0), ("freq", 0), ("freq", 20_000)])
def test_profiler_sampling_rates_are_bounded(key, value, tmp_path):
    with pytest.raises(ConfigError) as err:
        to_config({"out": str(tmp_path), "profiler": {"name": "perf", key: value}})
    assert str(err.value).startswith(f"profiler.{key}: must be in [1, 10000] Hz")


# ---- every float finite, and within what the generator honours (issue 22) --------------

@pytest.mark.parametrize("model, key", [
    ({"avg_calls_per_user": float("inf")}, "model.avg_calls_per_user"),
    ({"activity_sigma": float("nan")}, "model.activity_sigma"),
    ({"call_duration_quantiles": {"p90": float("inf")}},
     "model.call_duration_quantiles.p90"),
    ({"data_rat_profiles": {"NR": {"duration_sd": float("-inf")}}},
     "model.data_rat_profiles.NR.duration_sd"),
    ({"seasonality": [1.0] * 11 + [float("inf")]}, "model.seasonality"),
    ({"special_days": {"2025-01-01": float("inf")}}, "model.special_days.2025-01-01"),
    ({"center_lat": float("nan")}, "model.center_lat"),
])
def test_a_float_that_is_not_finite_is_named(tmp_path, model, key):
    with pytest.raises(ConfigError) as err:
        to_config({"out": str(tmp_path), "model": model})
    assert str(err.value).startswith(f"{key}: must be a finite number"), err.value


@pytest.mark.parametrize("model, key, text", [
    ({"avg_sms_per_user": 1e300}, "model.avg_sms_per_user", "must be in [0, 1_000_000]"),
    ({"contacts_mean": 1e7}, "model.contacts_mean", "must be in [0, 1_000_000]"),
    ({"call_duration_quantiles": {"p50": 0.0}}, "model.call_duration_quantiles.p50",
     "must be in (0, 3_600]"),
    ({"data_rat_profiles": {"LTE": {"downlink_mean": 1e15}}},
     "model.data_rat_profiles.LTE.downlink_mean", "must be in [0, 1e+12]"),
])
def test_a_float_beyond_its_range_is_named(tmp_path, model, key, text):
    with pytest.raises(ConfigError) as err:
        to_config({"out": str(tmp_path), "model": model})
    assert str(err.value).startswith(f"{key}: {text}"), err.value


def test_the_edges_of_the_ranges_are_accepted(tmp_path):
    cfg = to_config({"out": str(tmp_path), "model": {
        "activity_sigma": 5.0, "avg_data_sessions_per_user": 1e6,
        "call_duration_quantiles": {"p50": 3600.0, "p90": 86400.0}}})
    assert cfg.model.call_duration_quantiles.p90 == 86400.0


def test_the_ranges_are_documented():
    """docs/configuration.md's table of ranges says what FLOAT_RANGES holds."""
    from pathlib import Path
    from cdrexp.config import FLOAT_RANGES
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for key, allowed in FLOAT_RANGES.items():
        assert f"| `{key}` | {allowed} |" in doc, key
