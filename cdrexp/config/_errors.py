"""The one error type of config checks."""
from __future__ import annotations


class ConfigError(ValueError):
    """A bad config value; ``str()`` is one line naming the key."""


def fail(key: str, msg: str) -> None:
    raise ConfigError(f"{key}: {msg}")
