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
