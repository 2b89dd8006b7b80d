"""The command line: bad input stops before any work with one line and exit 2; end to
end on a scratch copy of this repository with a planted slowdown (slow)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cdrexp.ab.cli import main
from cdrexp.tracking import names as N

from .ab_repo import commit_all, git

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, message", [
    ([], "BASE: a git revision is required"),
    (["HEAD", "subs=abc"], "subs: must be an integer, got 'abc'"),
    (["HEAD", "HEAD~1", "extra"], "'extra': expected BASE [CANDIDATE]"),
    (["HEAD", "--metric", "cycles"], "argument --metric: invalid choice: 'cycles'"),
    (["HEAD", "--fail-on-regression", "-3"], "--fail-on-regression: must be a percentage"),
    (["HEAD", "--max-pairs", "2", "--min-pairs", "4"], "max_pairs (2) must be >= min_pairs"),
    (["no-such-rev"], "bad revision 'no-such-rev'"),
    (["HEAD", "workers=2", "--metric", "instructions"], "workers: --metric instructions"),
])
def test_bad_command_lines_are_one_line_and_exit_2_before_any_work(
        argv, message, tiny_repo, tmp_path, capsys, monkeypatch):
    repo, _, _ = tiny_repo
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--repo", str(repo)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cdrexp-ab: error: ") and "\n" not in err
    assert message in err
    assert not (tmp_path / "mlflow.db").exists()
    assert git(repo, "worktree", "list").count("\n") == 0


@pytest.mark.parametrize("bisect", [False, True], ids=["ab", "bisect"])
def test_an_unusable_store_is_one_line_and_exit_2_in_seconds(bisect, tiny_repo, tmp_path,
                                                             capsys, monkeypatch):
    # mlflow.db a directory: MLflow alone retries for ~100 s and prints a warning per try
    repo, first, second = tiny_repo
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlflow.db").mkdir()
    argv = ["--bisect", first, second] if bisect else [first]
    assert main([*argv, "--repo", str(repo)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "error: tracking store" in err and "mlflow.db is not a file" in err
    assert git(repo, "worktree", "list").count("\n") == 0


def test_outside_a_repository_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["HEAD~1"]) == 2
    assert "is not inside a git repository" in capsys.readouterr().err


# ---- end to end on a scratch repository ------------------------------------------------

SLOWDOWN = '''
def _planted_slowdown():
    # a test's planted regression: two more CPU-seconds in every generation
    import time as _time
    end = _time.process_time() + 2.0
    while _time.process_time() < end:
        pass
'''


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory):
    """This repository's files in a new git repository: HEAD~1 as they are, HEAD with
    ``generate`` made 2 CPU-seconds slower."""
    repo = tmp_path_factory.mktemp("ab-e2e") / "repo"
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard",
                            "cdrexp", "pyproject.toml"], check=True, capture_output=True,
                           text=True).stdout.split()
    for f in files:
        if (ROOT / f).is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            (repo / f).write_bytes((ROOT / f).read_bytes())
    git(repo.parent, "init", "-q", str(repo))
    base = commit_all(repo, "base")
    gen = repo / "cdrexp" / "generation.py"
    text = gen.read_text()
    text = text.replace("\ndef generate(", SLOWDOWN + "\n\ndef generate(", 1)
    text = text.replace("    validate(cfg)\n", "    validate(cfg)\n    _planted_slowdown()\n", 1)
    assert "_planted_slowdown()\n" in text
    gen.write_text(text)
    candidate = commit_all(repo, "slower")
    return repo, base, candidate


def _cli(args, cwd, env_extra=None, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-m", "cdrexp.ab", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_planted_slowdown_is_slower_exit_1_and_logged(scratch_repo, tmp_path):
    repo, base, candidate = scratch_repo
    proc = _cli(["HEAD~1", "HEAD", "subs=2000", "workers=1", "--repo", str(repo),
                 "--fail-on-regression", "10", "--min-pairs", "3", "--max-pairs", "6",
                 "--max-seconds", "400"], cwd=tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err
    assert "cdrexp-ab: SLOWER: the candidate is slower by more than 10 %" in out
    assert git(repo, "worktree", "list").count("\n") == 0      # worktrees removed

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags[N.TAG_KIND] == N.KIND_AB]
    assert len(parents) == 1 and len(runs) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[N.TAG_AB_VERDICT] == "slower"
    assert parent.data.metrics[N.M_AB_EXIT_CODE] == 1
    assert parent.data.metrics[N.M_AB_RATIO_LOW] > 1.10
    assert 3 <= parent.data.metrics[N.M_AB_PAIRS] <= 6
    commits = {r.data.tags[N.TAG_AB_SIDE]: r.data.tags[N.TAG_GIT_COMMIT] for r in runs
               if r.data.tags[N.TAG_KIND] == N.KIND_AB_SIDE
               and r.data.tags[N.TAG_MLFLOW_PARENT] == parent.info.run_id}
    assert commits == {"base": base, "candidate": candidate}


@pytest.mark.slow
def test_sigterm_removes_the_worktree_and_marks_the_runs_killed(scratch_repo, tmp_path):
    repo, _, _ = scratch_repo
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = _cli(["HEAD~1", "subs=2000", "workers=1", "--repo", str(repo)], cwd=tmp_path,
                env_extra={"TMPDIR": str(scratch)})
    deadline = time.monotonic() + 300
    # the second run of a side is the first measured one: MLflow runs exist by then
    while not list(scratch.glob("cdrexp-ab-*/runs/*/run002.log")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted (SIGTERM); runs marked KILLED" in err
    assert git(repo, "worktree", "list").count("\n") == 0
    assert list(scratch.iterdir()) == []
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    assert {r.info.status for r in client.search_runs([exp.experiment_id])} == {"KILLED"}
