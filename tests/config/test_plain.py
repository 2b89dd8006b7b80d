"""``config.from_plain``: the child's config reader without OmegaConf gives the same
config objects as ``to_config`` and names the key of a wrong value."""
import subprocess
import sys

import pytest
import yaml

from cdrexp.config import (ConfigError, ExperimentConfig, GeneratorConfig, config_to_dict,
                           from_plain, to_config)

OVERRIDES = [
    {},
    {"subs": 1234, "days": 3, "seed": 7, "workers": 2, "output": {"format": "csv_gz",
                                                                  "compression_level": 3}},
    {"model": {"prefixes": [31699], "activity_sigma": 0, "special_days": {"2025-01-02": 1.5},
               "call_dispositions": {"BUSY": 0.05, "ANSWERED": 0.81}}, "start": "2025-03-01"},
]


@pytest.mark.parametrize("overrides", OVERRIDES)
def test_a_resolved_config_reads_back_equal(overrides):
    """What the runner writes (``config_to_dict`` as YAML) reads back equal to the object
    it came from, through YAML's own types."""
    cfg = to_config(overrides, GeneratorConfig)
    text = yaml.safe_dump(config_to_dict(cfg))
    assert from_plain(yaml.safe_load(text), GeneratorConfig) == cfg


def test_a_runner_config_reads_back_equal():
    cfg = to_config({"subs": 99}, ExperimentConfig)
    assert from_plain(config_to_dict(cfg), ExperimentConfig) == cfg


@pytest.mark.parametrize("raw, key", [
    ({"subs": "many"}, "subs"),
    ({"subs": True}, "subs"),
    ({"model": {"prefixes": [31612, "x"]}}, "model.prefixes.1"),
    ({"model": {"call_dispositions": 3}}, "model.call_dispositions"),
    ({"model": {"contacts_mean": "many"}}, "model.contacts_mean"),
    ({"output": {"fromat": "csv"}}, "output.fromat"),
])
def test_a_wrong_value_or_key_names_the_key(raw, key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        from_plain(raw, GeneratorConfig)


def test_a_float_written_without_a_dot_is_a_float():
    cfg = from_plain({"model": {"imei_daily_change_prob": "1e-3"}}, GeneratorConfig)
    assert cfg.model.imei_daily_change_prob == 0.001


def test_the_child_reads_its_config_without_omegaconf(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config_to_dict(to_config({"subs": 10}, GeneratorConfig))))
    code = ("import sys; from cdrexp.cli.child import load_config; "
            f"c = load_config({str(cfg)!r}); "
            "print(c.subs, 'omegaconf' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["10", "False"]


def test_the_child_says_what_is_wrong_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("subs: [1\n")
    for path, words in ((bad, "not YAML"), (tmp_path / "none.yaml", "cannot read")):
        proc = subprocess.run([sys.executable, "-m", "cdrexp.cli.child", "--config",
                               str(path)], capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
