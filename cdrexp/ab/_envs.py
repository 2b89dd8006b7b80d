"""The packages each side runs with: this environment, or a virtualenv per declaration.

A revision declares its packages in ``pyproject.toml`` (``[project] dependencies``).
When both sides declare the same (the usual code-only change), both run with the
interpreter running the A/B, whose site-packages then hold what both declare. When the
declarations differ (a commit that adds polars, upgrades numpy, or only edits
pyproject.toml; or ``--base-deps 'numpy<2'``), each side gets a virtualenv built from its
own declaration, so it is measured with its own packages, like asv's per-revision
environments. The side's cdrexp itself is never installed: its checkout is first on
PYTHONPATH (``_measure.side_env``).

Environments are cached by the hash of what they are built from (the declaration, the
Python version, the platform) under ``~/.cache/cdrexp/envs`` (``$CDREXP_ENV_CACHE``,
else ``$XDG_CACHE_HOME/cdrexp/envs``): the same declaration shares one, and the second
gate with it builds nothing. ``uv`` builds them when it is installed (seconds from its
cache), else ``venv`` and ``pip`` (a minute or more); both compile the bytecode, as the
environment running the A/B has it (pip compiles on install), so neither side pays
compilation per run. A build holds a lock (two gates at once build once), writes its log
next to it and marks the environment complete last: a half-built one is rebuilt.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..profilers import Unavailable, find_tool, last_line

COMPLETE = ".cdrexp-env.json"
THIS_ENV = "this environment"


class EnvError(Exception):
    """An environment that could not be built; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class SideEnv:
    """What one side's runs use: an interpreter, and a name for the verdict."""
    python: str
    name: str                         # "this environment" or "env 1a2b3c4d5e6f (uv)"
    requirements: tuple[str, ...] = ()
    built_s: float = 0.0              # seconds spent building it now (0: cached / none)

    def describe(self, other: Optional["SideEnv"] = None) -> str:
        """``env KEY (tool), built in N s | cached: REQUIREMENTS``; with ``other``, only
        the requirements the other side's environment lacks are named."""
        if self.name == THIS_ENV:
            return f"{THIS_ENV} ({sys.prefix})"
        state = f"built in {self.built_s:.0f} s" if self.built_s else "cached"
        own = [r for r in self.requirements
               if other is None or r not in other.requirements]
        shared = len(self.requirements) - len(own)
        if not self.requirements:
            what = "no packages"
        elif not own:
            what = f"its {shared} packages, all also on the other side"
        else:
            what = ", ".join(own) + (f" (+{shared} as the other side)" if shared else "")
        return f"{self.name}, {state}: {what}"


def current_env() -> SideEnv:
    return SideEnv(sys.executable, THIS_ENV)


def declared(root: Path) -> tuple[str, ...]:
    """``[project] dependencies`` of the checkout at ``root`` (() without a pyproject)."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return ()
    try:
        project = tomllib.loads(path.read_text()).get("project", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EnvError(f"{path}: not valid TOML: {exc}") from None
    return tuple(" ".join(str(d).split()) for d in project.get("dependencies", []))


def cache_dir() -> Path:
    if os.environ.get("CDREXP_ENV_CACHE"):
        return Path(os.environ["CDREXP_ENV_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "cdrexp" / "envs"


def env_key(requirements: Sequence[str]) -> str:
    """The cache key: what the environment is built from, and for which Python."""
    what = {"requirements": sorted(requirements), "python": sys.version,
            "implementation": sys.implementation.name,
            "platform": f"{sys.platform}-{platform.machine()}"}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def plan(base_root: Path, candidate_root: Path, base_extra: Sequence[str] = (),
         candidate_extra: Sequence[str] = ()) -> Optional[tuple[tuple[str, ...],
                                                                tuple[str, ...]]]:
    """Each side's requirements when they need environments of their own, else None
    (same declaration, no extra requirement: both run in this environment)."""
    base = declared(base_root) + tuple(base_extra)
    candidate = declared(candidate_root) + tuple(candidate_extra)
    if base == candidate and not base_extra and not candidate_extra:
        return None
    return base, candidate


def ensure_env(requirements: Sequence[str], cache: Optional[Path] = None,
               say: Callable[[str], None] = lambda line: None) -> SideEnv:
    """The cached environment for ``requirements``, built now if needed."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = env_key(requirements)
    where = cache / key
    with _locked(cache / f"{key}.lock"):
        marker = where / COMPLETE
        if marker.is_file():
            tool = json.loads(marker.read_text()).get("tool", "?")
            return SideEnv(str(where / "bin" / "python"), f"env {key} ({tool})",
                           tuple(requirements))
        shutil.rmtree(where, ignore_errors=True)          # a half-built one
        say(f"building environment {key} for: {', '.join(requirements) or 'no packages'}"
            f" (cached in {cache})")
        t0 = time.monotonic()
        log = cache / f"{key}.log"
        tool = _build(where, list(requirements), log)
        marker.write_text(json.dumps({"tool": tool, "requirements": list(requirements),
                                      "python": sys.version}, indent=2))
        return SideEnv(str(where / "bin" / "python"), f"env {key} ({tool})",
                       tuple(requirements), time.monotonic() - t0)


def _build(where: Path, requirements: list[str], log: Path) -> str:
    reqs = where.with_name(where.name + ".requirements.txt")
    reqs.write_text("".join(r + "\n" for r in requirements))
    try:
        uv = find_tool("uv")
    except Unavailable:
        uv = None
    if uv:
        steps = [[uv, "venv", "--quiet", "--python", sys.executable, str(where)]]
        if requirements:
            steps.append([uv, "pip", "install", "--python", str(where / "bin" / "python"),
                          "--compile-bytecode", "-r", str(reqs)])
    else:
        steps = [[sys.executable, "-m", "venv", str(where)]]
        if requirements:
            steps.append([str(where / "bin" / "python"), "-m", "pip", "install",
                          "--disable-pip-version-check", "-r", str(reqs)])
    with open(log, "wb") as fh:
        for cmd in steps:
            rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
            if rc != 0:
                shutil.rmtree(where, ignore_errors=True)
                text = log.read_bytes().decode("utf-8", "replace")
                raise EnvError(f"could not build the environment for "
                               f"{', '.join(requirements)}: {Path(cmd[0]).name} exit {rc}: "
                               f"{last_line(text)} (log: {log})")
    return "uv" if uv else "venv+pip"


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


__all__ = ["EnvError", "SideEnv", "THIS_ENV", "cache_dir", "current_env", "declared",
           "ensure_env", "env_key", "plan"]
