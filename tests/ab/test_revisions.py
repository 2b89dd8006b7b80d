"""Revisions: resolving, the working tree as a side, temporary worktrees removed on every
way out."""
import pytest

from cdrexp.ab._revisions import (WORKING_TREE, RevisionError, checkout, repo_root, resolve,
                                  sides, snapshot, working_tree_side)

from .ab_repo import commit_all, git


def test_resolve_gives_full_shas_and_rejects_bad_revisions(tiny_repo):
    repo, first, second = tiny_repo
    assert resolve(repo, "HEAD") == second
    assert resolve(repo, "HEAD~1") == first
    assert resolve(repo, first[:8]) == first
    for bad in ("HEAD~5", "no-such-branch", "--all", ""):
        with pytest.raises(RevisionError, match="bad revision"):
            resolve(repo, bad)


def test_repo_root_needs_a_repository(tmp_path, tiny_repo):
    repo, _, _ = tiny_repo
    (repo / "sub").mkdir()
    assert repo_root(repo / "sub") == repo.resolve()
    (tmp_path / "plain").mkdir()
    with pytest.raises(RevisionError, match="not inside a git repository"):
        repo_root(tmp_path / "plain")
    with pytest.raises(RevisionError, match="no such directory"):
        repo_root(tmp_path / "missing")


def test_working_tree_side_is_head_and_says_when_it_is_dirty(tiny_repo):
    repo, _, second = tiny_repo
    side = working_tree_side(repo, repo.parent / "snap")
    assert (side.sha, side.dirty, side.rev, side.root) == \
        (second, False, WORKING_TREE, repo.parent / "snap")
    (repo / "a.txt").write_text("3\n")
    assert working_tree_side(repo, repo).dirty
    assert working_tree_side(repo, repo).short == second[:10] + "+dirty"


def test_checkout_holds_the_revision_and_is_removed_after(tiny_repo, tmp_path):
    repo, first, _ = tiny_repo
    where = tmp_path / "wt"
    with checkout(repo, first, where) as path:
        assert (path / "a.txt").read_text() == "1\n"
        assert str(where) in git(repo, "worktree", "list")
    assert not where.exists()
    assert str(where) not in git(repo, "worktree", "list")


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_checkout_is_removed_when_interrupted(tiny_repo, tmp_path, exc):
    repo, first, _ = tiny_repo
    where = tmp_path / "wt"
    with pytest.raises(exc):
        with checkout(repo, first, where):
            raise exc()
    assert not where.exists()
    assert str(where) not in git(repo, "worktree", "list")


def test_sides_resolve_both_revisions_before_checking_anything_out(tiny_repo, tmp_path):
    repo, first, second = tiny_repo
    with pytest.raises(RevisionError, match="'nope'"):
        with sides(repo, "HEAD~1", "nope", tmp_path):
            pass
    assert git(repo, "worktree", "list").count("\n") == 0     # only the main one
    with sides(repo, "HEAD~1", "HEAD", tmp_path) as (base, cand):
        assert (base.sha, cand.sha) == (first, second)
        assert (base.root / "a.txt").read_text() == "1\n"
        assert (cand.root / "a.txt").read_text() == "2\n"
    assert git(repo, "worktree", "list").count("\n") == 0


def test_the_working_tree_is_snapshotted_like_the_base(tiny_repo, tmp_path):
    """Uncommitted changes, untracked files and deletions are in the candidate's
    checkout, which lies beside the base's at a path of the same length; the user's
    index, branch and stash are untouched; ignored files stay out."""
    repo, first, second = tiny_repo
    (repo / ".gitignore").write_text("mlflow.db\noutputs/\n")
    commit_all(repo, "ignore")
    head = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("3\n")                   # changed, not staged
    (repo / "new.py").write_text("x = 1\n")              # untracked
    (repo / "mlflow.db").write_text("runs")              # ignored
    (repo / "staged.txt").write_text("s\n")
    git(repo, "add", "staged.txt")
    status_before = git(repo, "status", "--porcelain")
    with sides(repo, "HEAD~1", None, tmp_path) as (base, cand):
        assert cand.rev == WORKING_TREE and cand.sha == head and cand.dirty
        assert cand.root != repo and len(str(cand.root)) == len(str(base.root))
        assert cand.root.parent == base.root.parent
        assert (cand.root / "a.txt").read_text() == "3\n"
        assert (cand.root / "new.py").read_text() == "x = 1\n"
        assert (cand.root / "staged.txt").is_file()
        assert not (cand.root / "mlflow.db").exists()
        assert (base.root / "a.txt").read_text() == "2\n"
    assert git(repo, "status", "--porcelain") == status_before
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "stash", "list") == ""
    assert git(repo, "worktree", "list").count("\n") == 0


def test_a_clean_working_tree_is_head_itself(tiny_repo, tmp_path):
    repo, _, second = tiny_repo
    assert snapshot(repo, tmp_path) == second
    (repo / "a.txt").unlink()
    snap = snapshot(repo, tmp_path)
    assert snap != second and git(repo, "rev-parse", f"{snap}^") == second
    assert "a.txt" not in git(repo, "ls-tree", "--name-only", snap)
