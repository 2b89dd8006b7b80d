"""A scratch git repository of cdrexp with a slowdown planted in one commit."""
from __future__ import annotations

import shutil
from pathlib import Path

import cdrexp

from .ab_repo import commit_all, git

SUBJECT = "plant a slowdown in planted_slowdown"
PLANTED = '''"""Planted by the tests: real extra work at every import of cdrexp."""


def planted_slowdown(n=25_000_000):
    s = 0
    for i in range(n):
        s += i * i
    return s
'''


def planted_repo(tmp_path: Path, commits: int, planted_at: int
                 ) -> tuple[Path, str, list[str]]:
    """cdrexp's package in a new repository: GOOD, then ``commits`` commits; the
    ``planted_at``-th (from 1) plants the slowdown: every process that imports cdrexp
    loops ~2 s more, about 2.5x a small run. Returns (repo, GOOD, the commits)."""
    repo = tmp_path / "scratch"
    shutil.copytree(Path(cdrexp.__file__).parent, repo / "cdrexp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q", "-b", "main")
    good = commit_all(repo, "cdrexp as it is")
    history = []
    for i in range(1, commits + 1):
        (repo / "NOTES.txt").write_text(f"change {i}\n")
        if i == planted_at:
            (repo / "cdrexp" / "_planted.py").write_text(PLANTED)
            init = repo / "cdrexp" / "__init__.py"
            init.write_text(init.read_text() + "\nfrom ._planted import planted_slowdown"
                                               "\nplanted_slowdown()\n")
            history.append(commit_all(repo, SUBJECT))
        else:
            history.append(commit_all(repo, f"change {i}"))
    return repo, good, history
