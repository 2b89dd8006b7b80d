"""Running git: the one helper every part of cdrexp uses (the A/B's checkouts, the
runner's system info, the profilers' metadata).

``git(repo, *args)`` returns stdout (stripped) and raises ``GitError`` (one line: the
command and git's last message); ``git_or_none`` is the best-effort form for information
that may be missing (a package installed from a wheel, no git at all).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path, None]


class GitError(Exception):
    """A git command that failed, or no git; ``str()`` is the one line to show."""


def git(repo: PathLike, *args: str, env: Optional[dict] = None,
        timeout: Optional[float] = None) -> str:
    """``git -C repo ARGS`` (``repo`` None: the current directory); its stdout, stripped.
    ``env``: variables added to this process's environment (e.g. GIT_INDEX_FILE)."""
    cmd = ["git", *(["-C", str(repo)] if repo is not None else []), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, timeout=timeout,
                              env=None if env is None else {**os.environ, **env})
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {' '.join(args)}: no answer in {timeout:g} s") from None
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise GitError(f"git {' '.join(args)}: {msg}")
    return proc.stdout.strip()


def git_or_none(repo: PathLike, *args: str, timeout: Optional[float] = 10) -> Optional[str]:
    """``git`` for information only: None when it fails ("" when it prints nothing)."""
    try:
        return git(repo, *args, timeout=timeout)
    except (GitError, OSError):
        return None


def git_ok(repo: PathLike, *args: str) -> bool:
    """Whether ``git ARGS`` exits 0 (a question such as ``merge-base --is-ancestor``)."""
    try:
        git(repo, *args)
        return True
    except GitError:
        return False


__all__ = ["GitError", "git", "git_ok", "git_or_none"]
