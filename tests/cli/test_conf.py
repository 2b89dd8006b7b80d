"""The Hydra configs: defaults, presets and sweeps compose onto the schema as documented.

``check_command_line`` composes exactly what ``python -m cdrexp`` would run (Hydra's own
loader and sweeper expansion), so these tests read the jobs' configs from it.
"""
import os
import tomllib
from pathlib import Path

import pytest

from cdrexp.cli.precheck import check_command_line
from cdrexp.config import ModelConfig, OUTPUT_FORMATS, PROFILERS, ProfilerConfig

ROOT = Path(__file__).resolve().parents[2]
SCALING_LADDER = [1_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert os.listdir(tmp_path) == []       # composing creates nothing


def test_default_run(in_tmp):
    (cfg,) = check_command_line([])
    assert (cfg.subs, cfg.days, cfg.repeats, cfg.warmup, cfg.workers) == (10_000, 1, 3, 1, 0)
    assert cfg.output.format == "csv" and cfg.profiler.name == "none"
    assert cfg.executor.name == "local"
    # data inside the job's Hydra directory under the current directory
    assert cfg.out.startswith(str(in_tmp / "outputs")) and cfg.out.endswith("cdr_out")


def test_default_model_is_the_schema_default():
    (cfg,) = check_command_line([])
    assert cfg.model == ModelConfig()


@pytest.mark.parametrize("preset", ["small_test", "medium_production", "large_scale"])
def test_model_presets_are_valid_and_differ_from_default(preset):
    (cfg,) = check_command_line([f"model={preset}"])
    assert cfg.model != ModelConfig()
    assert cfg.model.avg_calls_per_user == ModelConfig().avg_calls_per_user


# The 10M-subscriber configs below are composed, never run: check_resources=false keeps the
# pre-check's disk and memory estimate (tests/cli/test_bad_input.py tests it) from refusing
# them on a machine with less than ~36 GB free (a full run here failed them at 26 GB free)
NOT_RUN = "check_resources=false"


def test_large_scale_holds_ten_million_subscribers():
    (cfg,) = check_command_line(["model=large_scale", "subs=10000000", NOT_RUN])
    assert len(cfg.model.prefixes) * 10**7 >= 10_000_000


@pytest.mark.parametrize("fmt", OUTPUT_FORMATS)
def test_output_options(fmt):
    (cfg,) = check_command_line([f"output={fmt}"])
    assert cfg.output.format == fmt


@pytest.mark.parametrize("name", PROFILERS)
def test_profiler_options(name):
    (cfg,) = check_command_line([f"profiler={name}"])
    assert cfg.profiler.name == name
    defaults = ProfilerConfig()
    # the YAML files name their options but keep the schema's values
    for key in ("rate", "native", "idle", "top_n", "events", "sample", "freq"):
        assert getattr(cfg.profiler, key) == getattr(defaults, key)


def test_sweep_of_the_issue_has_six_jobs():
    cfgs = check_command_line(["-m", "subs=1000,10000,100000", "workers=1,2"])
    assert [(c.subs, c.workers) for c in cfgs] == [
        (s, w) for s in (1000, 10000, 100000) for w in (1, 2)]
    # every job has its own data directory
    assert len({c.out for c in cfgs}) == 6


def test_scaling_preset_is_the_seed_ladder():
    cfgs = check_command_line(["-m", "+experiment=scaling", NOT_RUN])
    assert [c.subs for c in cfgs] == SCALING_LADDER
    assert all(c.days == 1 and not c.keep_output for c in cfgs)


def test_scaling_preset_combines_with_command_line_sweeps():
    cfgs = check_command_line(["-m", "+experiment=scaling", "workers=1,2", NOT_RUN])
    assert len(cfgs) == 16


def test_workers_preset():
    cfgs = check_command_line(["-m", "+experiment=workers"])
    assert [c.workers for c in cfgs] == [1, 2, 4]
    assert len({c.subs for c in cfgs}) == 1


def test_ci_preset_is_tiny():
    cfgs = check_command_line(["-m", "+experiment=ci"])
    assert 2 <= len(cfgs) <= 6
    assert all(c.subs <= 10_000 and c.repeats >= 3 for c in cfgs)


def test_help_and_info_are_left_to_hydra():
    assert check_command_line(["--help"]) is None
    assert check_command_line(["--info", "defaults"]) is None


def test_console_script_is_the_cli_entry():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["cdrexp"].split(":")
    import importlib
    assert callable(getattr(importlib.import_module(module), func))


def test_commands_in_the_same_second_get_their_own_directories(in_tmp):
    """Hydra's default was outputs/<date>/<HH-MM-SS>: two runs started in the same second
    shared it (and overwrote each other's data). Each command now adds its own id."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    with initialize_config_module("cdrexp.conf", version_base="1.3"):
        first = compose("config", return_hydra_config=True)
        second = compose("config", return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", [], run_mode=RunMode.MULTIRUN)
        str(master.hydra.sweep.dir)     # as the launcher does before composing the jobs
        jobs = [loader.load_sweep_config(master, [f"subs={n}"]) for n in (1000, 2000)]
    runs = [c.hydra.run.dir for c in (first, second)]
    sweeps = [c.hydra.sweep.dir for c in (first, second)]
    assert runs[0] != runs[1] and sweeps[0] != sweeps[1]
    assert runs[0].startswith("outputs/") and sweeps[0].startswith("multirun/")
    # within one command the id is stable: every job of a sweep shares the sweep's
    # directory and its command id, which ties the jobs to their parent run
    assert first.hydra.run.dir == runs[0]
    ids = [c.hydra.job.env_set.CDREXP_COMMAND_ID for c in jobs + [master]]
    assert len(set(ids)) == 1 and ids[0] != first.hydra.job.env_set.CDREXP_COMMAND_ID
    assert {c.hydra.sweep.dir for c in [master] + jobs} == {master.hydra.sweep.dir}
