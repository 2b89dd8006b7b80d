"""Schema conversion: raw config (dict / DictConfig / dataclass) to typed config objects
and back. The value checks are ``_validate``'s, the checks against this machine
``_budget``'s.

OmegaConf loads on first use: the generator's forkserver and workers import this package
for the config classes alone, and OmegaConf (with its YAML and ANTLR parsers) cost them
~90 ms of CPU and ~12 MB each."""
from __future__ import annotations

from typing import Any

from ._schema import ExperimentConfig
from ._errors import ConfigError
from ._validate import validate


def to_config(raw: Any, schema: type = ExperimentConfig, *, validate_all: bool = True):
    """Merge ``raw`` (dict, DictConfig or dataclass) onto ``schema`` and validate it."""
    if isinstance(raw, schema):
        cfg = raw
    else:
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
        try:
            base = OmegaConf.structured(schema)
            merged = OmegaConf.merge(base, raw if raw is not None else {})
            cfg = OmegaConf.to_object(merged)
        except OmegaConfBaseException as exc:
            raise ConfigError(omegaconf_message(exc)) from None
        except ValueError as exc:
            # Python's own int() refuses a value of more than 4300 digits before
            # OmegaConf can say which key it was converting
            raise ConfigError(_too_long_message(raw, exc)) from None
    if validate_all:
        validate(cfg)
    return cfg


def omegaconf_message(exc) -> str:
    """``<key>: <first line>`` of an OmegaConf error."""
    key = getattr(exc, "full_key", None) or getattr(exc, "key", None)
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{key}: {msg}" if key else msg


def _too_long_message(raw: Any, exc: ValueError) -> str:
    """Name the key whose value is a number too long to convert (the one ValueError
    OmegaConf lets through)."""
    from omegaconf import DictConfig, OmegaConf
    if isinstance(raw, DictConfig):
        raw = OmegaConf.to_container(raw, resolve=False)
    for key, value in _leaves(raw):
        text = str(value)
        if len(text) > 100 and text.lstrip("+-").isdigit():
            return f"{key}: a number of {len(text)} digits is out of range"
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    raise ConfigError(first) from None


def _leaves(obj: Any, prefix: str = ""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), obj


def config_to_dict(cfg: Any) -> dict:
    """Plain-dict form of a config object (for logging and for child processes)."""
    from omegaconf import DictConfig, OmegaConf
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
