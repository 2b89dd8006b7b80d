"""Config objects from plain data (a resolved config's YAML), without OmegaConf.

``python -m cdrexp.cli.child`` reads a config the runner has resolved and validated, and
runs one generation. OmegaConf and its parsers were ~90 ms of CPU and ~12 MB of that
process (whose memory is part of every measured generation), to convert data that is
already of the right types. This checks each value against the schema's annotation
instead: nested dataclasses, ``Optional``, ``List`` and ``Dict``, ints (never bools),
floats (ints accepted, and numeric strings: PyYAML reads ``1e-5`` as one), strings,
bools. A value of the wrong type or a key the schema lacks is a ``ConfigError`` naming
the key.
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Mapping

from ._errors import ConfigError


@functools.lru_cache(maxsize=None)
def _hints(schema: type) -> dict:
    return typing.get_type_hints(schema)


def _fail(key: str, want: str, value: Any):
    raise ConfigError(f"{key}: expected {want}, got {type(value).__name__} {value!r}")


def _convert(value: Any, hint: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            _fail(key, f"a mapping for {hint.__name__}", value)
        return from_plain(value, hint, prefix=f"{key}.")
    if origin is typing.Union:          # Optional[X]
        if value is None:
            return None
        return _convert(value, next(a for a in args if a is not type(None)), key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            _fail(key, "a list", value)
        return [_convert(v, args[0], f"{key}.{i}") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            _fail(key, "a mapping", value)
        return {str(k): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:                # PyYAML reads 1e-5 (no dot) as a string; OmegaConf took it
            return float(value)
        except ValueError:
            _fail(key, "float", value)
    if hint in (int, float, str, bool):
        if type(value) is not hint:
            _fail(key, hint.__name__, value)
        return value
    if hint is Any:
        return value
    raise TypeError(f"{key}: no plain conversion for {hint!r}")


def from_plain(raw: Mapping, schema: type, *, prefix: str = ""):
    """An instance of the dataclass ``schema`` from ``raw``; absent keys keep their
    defaults. Values are checked, not validated: see ``validate``."""
    hints = _hints(schema)
    names = {f.name for f in dataclasses.fields(schema) if f.init}
    unknown = sorted(set(map(str, raw)) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: not a key of {schema.__name__}")
    return schema(**{k: _convert(v, hints[k], f"{prefix}{k}") for k, v in raw.items()})
