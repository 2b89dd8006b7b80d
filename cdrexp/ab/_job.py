"""The job both sides run: the runner's own overrides, composed and validated once.

The overrides (``subs=200000 output=csv``, presets such as ``model=small_test``) go
through the runner's precheck (Hydra's composition onto the typed schema, then the
schema's validation), so a bad one is one line and exit 2 before anything is checked
out. Each side's child then gets a config file with only the generator keys that
*differ from the schema's defaults* (and ``out``): each side fills in the rest with its
own defaults. So the A/B compares what the same command line does on the two codes, a
changed default included, and a key the candidate added at its default does not make
the base fail. A non-default key the base does not know does: it is reported as that
side's failure.
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf

from ..cli.precheck import UsageError, check_command_line
from ..config import ExperimentConfig, GeneratorConfig, config_to_dict
from ._errors import SettingsError


def compose_job(overrides: Sequence[str], metric: str) -> ExperimentConfig:
    """Validate the overrides; raise ``SettingsError`` (one line) on the first problem."""
    try:
        return _compose(overrides, metric)
    except UsageError as exc:      # the runner's command-line error, as the A/B's own
        raise SettingsError(str(exc)) from None


def _compose(overrides: Sequence[str], metric: str) -> ExperimentConfig:
    for o in overrides:
        if o.startswith("-"):
            raise SettingsError(f"{o}: the A/B runs one job; only key=value overrides "
                             f"are accepted here")
    configs = check_command_line(list(overrides))
    if not configs or len(configs) != 1:
        raise SettingsError("the A/B runs exactly one job; no sweeps")
    cfg = configs[0]
    if metric == "instructions":
        if cfg.workers not in (0, 1):
            raise SettingsError(f"workers: --metric instructions counts one process; use "
                             f"workers=1 (got {cfg.workers})")
        if cfg.executor.name != "local":
            raise SettingsError("executor: --metric instructions needs executor=local")
        cfg.workers = 1
    return cfg


def _differences(value: dict, default: dict) -> dict:
    out = {}
    for key, v in value.items():
        d = default.get(key)
        if isinstance(v, dict) and isinstance(d, dict):
            sub = _differences(v, d)
            if sub:
                out[key] = sub
        elif v != d or key not in default:
            out[key] = v
    return out


def side_config(cfg: ExperimentConfig, out_dir: Path) -> dict:
    """The generator keys of ``cfg`` that differ from the defaults, and ``out``."""
    generator_keys = {f.name for f in fields(GeneratorConfig)}
    value = {k: v for k, v in config_to_dict(cfg).items() if k in generator_keys}
    default = config_to_dict(GeneratorConfig())
    changed = _differences(value, default)
    changed.pop("out", None)
    return {**changed, "out": str(out_dir)}


def write_side_config(cfg: ExperimentConfig, out_dir: Path, path: Path) -> Path:
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(side_config(cfg, out_dir))))
    return path
