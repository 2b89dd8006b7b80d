"""cdrexp._git: the one git helper."""
import pytest

from cdrexp._git import GitError, git, git_ok, git_or_none


def test_git_answers_and_fails_in_one_line(tmp_path):
    git(tmp_path, "init", "-q")
    assert git(tmp_path, "rev-parse", "--is-inside-work-tree") == "true"
    assert git_ok(tmp_path, "rev-parse", "--git-dir")
    with pytest.raises(GitError) as err:
        git(tmp_path, "rev-parse", "--verify", "nope^{commit}")
    assert str(err.value).startswith("git rev-parse --verify nope^{commit}: ")
    assert "\n" not in str(err.value)
    assert not git_ok(tmp_path, "rev-parse", "--verify", "nope^{commit}")


def test_git_or_none_outside_a_repository(tmp_path):
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_or_none(outside, "rev-parse", "--show-toplevel") is None
    git(tmp_path, "init", "-q")
    assert git_or_none(tmp_path, "status", "--porcelain") == ""       # clean, not None
