"""The two codes of an A/B: each in a scratch git worktree of its own.

A revision is checked out with ``git worktree add --detach`` into a scratch directory
and removed (``git worktree remove --force``, then ``prune``) on every way out,
Ctrl-C included.

The candidate may be the working tree, uncommitted changes and untracked (not ignored)
files included. It is not run from the user's checkout, but *snapshotted*: its files
are written to a commit object (through a temporary index, so the user's index, stash
and branches are untouched) and that commit is checked out like the base. Running one
side from the user's checkout and the other from a fresh worktree measured the same
code ~7-9 % apart (issue 18): the two directories differ in what Python finds there
(bytecode caches written or stale, a different path, an editable install's finders,
whatever else lies in the checkout). Two fresh worktrees of the same kind, at paths of
the same length, differ in nothing but the code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
from pathlib import Path
from typing import Iterator, Optional

from .._git import GitError, git
from ._measure import Side

WORKING_TREE = "working tree"
# a snapshot commit needs an author; the user's identity may not be configured
_IDENTITY = {"GIT_AUTHOR_NAME": "cdrexp-ab", "GIT_AUTHOR_EMAIL": "cdrexp-ab@localhost",
             "GIT_COMMITTER_NAME": "cdrexp-ab", "GIT_COMMITTER_EMAIL": "cdrexp-ab@localhost"}


class RevisionError(Exception):
    """A repository or revision that cannot be used; ``str()`` is the line to show."""


def _git(repo: Path, *args: str, env: Optional[dict] = None) -> str:
    try:
        return git(repo, *args, env=env)
    except GitError as exc:
        raise RevisionError(str(exc)) from None


def _git_or_empty(repo: Path, *args: str) -> str:
    try:
        return git(repo, *args)
    except GitError:
        return ""


def repo_root(path: Path) -> Path:
    """The top directory of the git repository holding ``path``."""
    if not Path(path).is_dir():
        raise RevisionError(f"{path}: no such directory")
    top = _git_or_empty(Path(path), "rev-parse", "--show-toplevel")
    if not top:
        raise RevisionError(f"{Path(path).resolve()} is not inside a git repository")
    return Path(top)


def resolve(repo: Path, rev: str) -> str:
    """The full sha of commit ``rev``."""
    if rev.startswith("-"):
        raise RevisionError(f"bad revision {rev!r}")
    sha = _git_or_empty(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not sha:
        hint = ""
        if _git_or_empty(repo, "rev-parse", "--is-shallow-repository") == "true":
            hint = " (this clone is shallow: fetch more history, e.g. git fetch --deepen=1)"
        raise RevisionError(f"bad revision {rev!r}: not a commit of {repo}{hint}")
    return sha


def subject(repo: Path, sha: str) -> str:
    return _git_or_empty(repo, "log", "-1", "--format=%s", sha)


def working_tree_side(repo: Path, root: Path) -> Side:
    """The candidate as the files are now: HEAD's sha, dirty if anything differs;
    ``root`` is where its snapshot will be checked out."""
    sha = resolve(repo, "HEAD")
    try:
        status = _git(repo, "status", "--porcelain")
    except RevisionError as exc:
        raise RevisionError(f"cannot read the working tree of {repo}: {exc}") from None
    return Side("candidate", WORKING_TREE, sha, root, dirty=bool(status))


def snapshot(repo: Path, scratch: Path) -> str:
    """A commit (child of HEAD, on no branch) holding the working tree's files as they
    are: tracked files with their changes, untracked files not ignored, deletions.
    HEAD itself when nothing differs."""
    index = scratch / "snapshot.index"
    real_index = Path(_git(repo, "rev-parse", "--path-format=absolute", "--git-path",
                           "index"))
    if real_index.is_file():          # a copy: its stat cache spares re-hashing every file
        shutil.copyfile(real_index, index)
    env = {"GIT_INDEX_FILE": str(index), **_IDENTITY}
    try:
        if not real_index.is_file():
            _git(repo, "read-tree", "HEAD", env=env)
        _git(repo, "add", "--all", "--", ".", env=env)
        tree = _git(repo, "write-tree", env=env)
        head = resolve(repo, "HEAD")
        if tree == _git(repo, "rev-parse", f"{head}^{{tree}}"):
            return head
        return _git(repo, "commit-tree", tree, "-p", head, "-m",
                    "cdrexp-ab: snapshot of the working tree", env=env)
    finally:
        index.unlink(missing_ok=True)


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
    _git_or_empty(repo, "worktree", "remove", "--force", str(where))
    if where.exists():
        shutil.rmtree(where, ignore_errors=True)
    _git_or_empty(repo, "worktree", "prune")


def side_dirs(scratch: Path) -> tuple[Path, Path]:
    """Where the two sides are checked out: siblings, names of the same length, so
    that the paths Python sees (in sys.path, in every code object) differ in one
    character only."""
    return scratch / "side-a", scratch / "side-b"


@contextlib.contextmanager
def sides(repo: Path, base_rev: Optional[str], candidate_rev: Optional[str], scratch: Path
          ) -> Iterator[tuple[Side, Side]]:
    """Both sides, each checked out in a scratch worktree (the revisions are resolved
    first, so a bad one fails before anything is checked out); a revision None is a
    snapshot of the working tree (both None: the same snapshot twice, an A/A)."""
    base_sha = resolve(repo, base_rev) if base_rev else None
    cand_sha = resolve(repo, candidate_rev) if candidate_rev else None
    base_dir, cand_dir = side_dirs(scratch)
    with contextlib.ExitStack() as stack:
        if base_rev is None or candidate_rev is None:
            working = working_tree_side(repo, cand_dir)
            snap = snapshot(repo, scratch)
        if cand_sha is None:
            candidate, cand_sha = working, snap
        else:
            candidate = Side("candidate", candidate_rev, cand_sha, cand_dir)
        if base_sha is None:
            base, base_sha = dataclasses.replace(working, label="base", root=base_dir), snap
        else:
            base = Side("base", base_rev, base_sha, base_dir)
        stack.enter_context(checkout(repo, base_sha, base_dir))
        stack.enter_context(checkout(repo, cand_sha, cand_dir))
        yield base, candidate


def prepare_bytecode(root: Path, python: str, env: dict) -> None:
    """Compile the checkout's Python files to bytecode, as an installed package has
    them: both sides alike, whether or not PYTHONDONTWRITEBYTECODE is set (with it, a
    checkout without ``__pycache__`` compiles every module in every run)."""
    import subprocess
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(root / "cdrexp")],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL, cwd=str(root))


__all__ = ["RevisionError", "WORKING_TREE", "checkout", "prepare_bytecode", "repo_root",
           "resolve", "side_dirs", "sides", "snapshot", "subject", "working_tree_side"]
