"""Hydra's and OmegaConf's multi-line errors, and Python's own, as one line naming the key.

The patterns match the wording of the Hydra and OmegaConf versions in
``KNOWN_HYDRA_VERSIONS`` (tests/cli/test_hydra_messages.py pins them, so an upgrade that
changes a message shows as a failing test, not as a worse message).
"""
from __future__ import annotations

import errno
import os
import re
from typing import Sequence

from hydra.errors import MissingConfigException
from omegaconf.errors import OmegaConfBaseException

from ..config import ConfigError

KNOWN_HYDRA_VERSIONS = ("1.3.8",)
# Python refuses to convert an integer of more digits than this (sys.int_info)
_INT_DIGITS = re.compile(r"\d{4000,}")


_CONVERT = re.compile(r"Value '(.*)' of type '(\w+)' could not be converted to (\w+)")
_NOT_IN = re.compile(r"Key '(.+?)' (?:is )?not in")
_MISSING_OPTION = re.compile(r"Could not find '(.+)/([^/']+)'")
_LOAD_FAIL = re.compile(r"Could not load '(.+)/([^/']+)'")
_NO_MATCH = re.compile(r"Could not override '(.+?)'\. No match in the defaults list")
_AMBIGUOUS = re.compile(r"Ambiguous value for argument '([^=]+)=(.*)'")
_PARSE = re.compile(r"Error parsing override '(.*)'")
_LEXER = re.compile(r"LexerNoViableAltException: (.*)")
_MISSING_VALUE = re.compile(r"Missing mandatory value: ?(.*)")

_ARTICLE = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false",
            "String": "a string"}


def describe_error(exc: BaseException) -> str:
    """One line, ``<key>: <problem>``, for the errors composing or validating can raise."""
    if isinstance(exc, ConfigError):
        return _rephrase(str(exc))
    text = str(exc)
    m = _MISSING_OPTION.search(text) or _LOAD_FAIL.search(text)
    if isinstance(exc, MissingConfigException) and m:
        group, option = m.group(1), m.group(2)
        choices = _available_options(text)
        return (f"{group}: unknown option {option!r}"
                + (f"; choose one of {', '.join(choices)}" if choices else ""))
    if m := _NO_MATCH.search(text):
        key = m.group(1)
        return f"{key}: not in the defaults list; add it with +{key}=<option>"
    if m := _AMBIGUOUS.search(text):
        return (f"{m.group(1)}: {m.group(2)!r} is several values; add -m to sweep over "
                f"them, or write a list as [a,b]")
    if m := _LEXER.match(text):
        return _unparsable(m.group(1))
    if m := _PARSE.search(text):
        return (f"{m.group(1)}: not a valid override (key=value; see "
                f"https://hydra.cc/docs/advanced/override_grammar/basic/)")
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None) or getattr(cause, "key", None)
        first = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        return _rephrase(f"{key}: {first}" if key else first)
    return _rephrase(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)


def _unparsable(override: str) -> str:
    """Hydra's lexer stops at a character it has no rule for; the usual one is non-ASCII,
    which the grammar accepts only inside quotes."""
    key, _, value = override.partition("=")
    odd = next((c for c in override if not c.isascii()), None)
    if odd is None:
        return (f"{override}: not a valid override (key=value; see "
                f"https://hydra.cc/docs/advanced/override_grammar/basic/)")
    if odd in key:
        return (f"{override}: {odd!r} in a key: keys are ASCII names (python -m cdrexp "
                f"--cfg job lists every key)")
    return (f"{override}: {odd!r} is allowed only in a quoted value: write "
            f"{key}='{value}'")


def _available_options(text: str) -> list[str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Available options in"):
            options = []
            for x in lines[i + 1:]:
                if not x.startswith("\t"):
                    break
                options.append(x.strip())
            return options
    return []


def _rephrase(line: str) -> str:
    """OmegaConf's wording, said in terms of the command line."""
    key, sep, msg = line.partition(": ")
    if not sep:
        return line
    if m := _CONVERT.search(msg):
        value, kind = m.group(1), m.group(3)
        return f"{key}: must be {_ARTICLE.get(kind, kind.lower())}, got {value!r}"
    if _NOT_IN.search(msg):
        return f"{key}: unknown key (python -m cdrexp --cfg job lists every key)"
    if m := _MISSING_VALUE.search(msg):
        return f"{key}: needs a value"
    return f"{key}: {msg}"


def describe_os_error(exc: OSError, overrides: Sequence[str]) -> str | None:
    """Hydra looks an override's key or option up as a file: a name longer than the
    filesystem allows fails there (ENAMETOOLONG). None for other OS errors."""
    if exc.errno != errno.ENAMETOOLONG:
        return None
    name = os.path.basename(str(exc.filename or ""))
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        for part in re.split(r"[./@=]", f"{key}={value}"):
            if len(part) > 200 and (not name or part[:100] in name or name[:100] in part):
                return (f"{_short(key)}: a name of {len(part)} characters is too long for "
                        f"a config key or option (python -m cdrexp --cfg job lists every "
                        f"key, --help every option)")
    return None


def describe_value_error(exc: ValueError, overrides: Sequence[str]) -> str | None:
    """Python's int() refuses a number of more than 4300 digits before Hydra can say
    which override held it. None for other value errors (a bug's: left to show)."""
    if "integer string conversion" not in str(exc):
        return None
    for override in overrides:
        key, _, value = override.partition("=")
        if m := _INT_DIGITS.search(value):
            return (f"{_short(key.lstrip('+~'))}: a number of {len(m.group(0))} digits is "
                    f"out of range")
    return None


def _short(text: str, keep: int = 60) -> str:
    return text if len(text) <= keep else f"{text[:keep]}... ({len(text)} characters)"
