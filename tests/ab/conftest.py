import pytest

from .ab_repo import commit_all, git


@pytest.fixture
def tiny_repo(tmp_path):
    """A git repository of two commits: a.txt = 1, then a.txt = 2."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.txt").write_text("1\n")
    first = commit_all(repo, "one")
    (repo / "a.txt").write_text("2\n")
    second = commit_all(repo, "two")
    return repo, first, second
