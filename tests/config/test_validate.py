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
