"""The job both sides run: composed and validated by the runner's precheck, written for
each side as the keys that differ from the defaults."""
import pytest
from omegaconf import OmegaConf

from cdrexp.ab._job import compose_job, side_config, write_side_config
from cdrexp.ab import SettingsError
from cdrexp.config import GeneratorConfig, to_config


def test_defaults_give_only_out(tmp_path):
    cfg = compose_job([], "cpu")
    assert side_config(cfg, tmp_path / "o") == {"out": str(tmp_path / "o")}


def test_overrides_and_presets_are_written_as_differences(tmp_path):
    cfg = compose_job(["subs=20000", "output=parquet", "model=small_test", "workers=2"],
                      "wall")
    written = side_config(cfg, tmp_path / "o")
    assert written["subs"] == 20000 and written["workers"] == 2
    assert written["output"] == {"format": "parquet"}
    assert written["model"]                       # the preset's changed model keys
    assert "days" not in written and "seed" not in written
    # the side's child reads it back to exactly the composed generator config
    path = write_side_config(cfg, tmp_path / "o", tmp_path / "c.yaml")
    back = to_config(OmegaConf.load(path), GeneratorConfig)
    assert back.model == cfg.model and back.output == cfg.output and back.subs == 20000


@pytest.mark.parametrize("overrides, message", [
    (["subs=0"], "subs: must be >= 1, got 0"),
    (["subs=abc"], "subs: must be an integer"),
    (["nokey=1"], "nokey: unknown key"),
    (["subs=1,2"], "several values"),
    (["-m", "subs=1,2"], "-m: the A/B runs one job"),
])
def test_bad_overrides_are_one_line(overrides, message):
    with pytest.raises(SettingsError, match=message) as err:
        compose_job(overrides, "cpu")
    assert "\n" not in str(err.value)


def test_instructions_count_one_process():
    assert compose_job(["subs=5000"], "instructions").workers == 1
    assert compose_job(["workers=1"], "instructions").workers == 1
    with pytest.raises(SettingsError, match="workers: --metric instructions counts one"):
        compose_job(["workers=2"], "instructions")
    assert compose_job(["workers=2"], "cpu").workers == 2
