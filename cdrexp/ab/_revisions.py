"""The two codes of an A/B: git revisions checked out in temporary worktrees.

A revision is checked out with ``git worktree add --detach`` into a scratch directory
and removed (``git worktree remove --force``, then ``prune``) on every way out,
Ctrl-C included. The candidate may instead be the working tree itself, uncommitted
changes and untracked files included: nothing is checked out for it.
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, Optional

from ._measure import Side

WORKING_TREE = "working tree"


class RevisionError(Exception):
    """A repository or revision that cannot be used; ``str()`` is the line to show."""


def _git(repo: Path, *args: str, check: bool = True) -> str:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise RevisionError("git is not installed") from None
    if check and proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise RevisionError(f"git {' '.join(args)}: {msg}")
    return proc.stdout.strip() if proc.returncode == 0 else ""


def repo_root(path: Path) -> Path:
    """The top directory of the git repository holding ``path``."""
    if not Path(path).is_dir():
        raise RevisionError(f"{path}: no such directory")
    top = _git(Path(path), "rev-parse", "--show-toplevel", check=False)
    if not top:
        raise RevisionError(f"{Path(path).resolve()} is not inside a git repository")
    return Path(top)


def resolve(repo: Path, rev: str) -> str:
    """The full sha of commit ``rev``."""
    if rev.startswith("-"):
        raise RevisionError(f"bad revision {rev!r}")
    sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if not sha:
        hint = ""
        if _git(repo, "rev-parse", "--is-shallow-repository", check=False) == "true":
            hint = " (this clone is shallow: fetch more history, e.g. git fetch --deepen=1)"
        raise RevisionError(f"bad revision {rev!r}: not a commit of {repo}{hint}")
    return sha


def working_tree_side(repo: Path) -> Side:
    """The candidate as the files are now: HEAD's sha, dirty if anything differs."""
    sha = resolve(repo, "HEAD")
    try:
        status = _git(repo, "status", "--porcelain")
    except RevisionError as exc:
        raise RevisionError(f"cannot read the working tree of {repo}: {exc}") from None
    return Side("candidate", WORKING_TREE, sha, repo, dirty=bool(status))


@contextlib.contextmanager
def checkout(repo: Path, sha: str, where: Path) -> Iterator[Path]:
    """``sha`` checked out (detached) at ``where`` for the duration of the block."""
    try:
        _git(repo, "worktree", "add", "--detach", "--force", str(where), sha)
    except BaseException:
        _remove(repo, where)
        raise
    try:
        yield where
    finally:
        _remove(repo, where)


def _remove(repo: Path, where: Path) -> None:
    _git(repo, "worktree", "remove", "--force", str(where), check=False)
    if where.exists():
        shutil.rmtree(where, ignore_errors=True)
    _git(repo, "worktree", "prune", check=False)


@contextlib.contextmanager
def sides(repo: Path, base_rev: str, candidate_rev: Optional[str], scratch: Path
          ) -> Iterator[tuple[Side, Side]]:
    """Both sides, checked out where needed (the revisions are resolved first, so a bad
    one fails before anything is checked out)."""
    base_sha = resolve(repo, base_rev)
    cand_sha = resolve(repo, candidate_rev) if candidate_rev else None
    working = working_tree_side(repo) if candidate_rev is None else None
    with contextlib.ExitStack() as stack:
        base_root = stack.enter_context(checkout(repo, base_sha, scratch / "base"))
        base = Side("base", base_rev, base_sha, base_root)
        if working is not None:
            candidate = working
        else:
            cand_root = stack.enter_context(checkout(repo, cand_sha, scratch / "candidate"))
            candidate = Side("candidate", candidate_rev, cand_sha, cand_root)
        yield base, candidate
