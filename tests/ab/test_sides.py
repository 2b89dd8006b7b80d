"""Issue 18 through the command line, on a fake cdrexp whose child records how it ran:
the working tree and a commit of the same code run from equivalent places (the A/A
bias removed by construction), ``--aa``, a hanging side stopped by its timeout with its
log kept, a tracking failure that keeps the verdict, each side's own packages, and the
bisect's default budget with an undecided step."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cdrexp.ab.cli import main
from cdrexp.tracking import names as N

from .ab_repo import git
from .fake_repo import build_wheel, fake_repo, probes, write_fake

FAST = ["--fail-on-regression", "1000", "--min-pairs", "2", "--max-pairs", "2",
        "--max-seconds", "300", "subs=1000", "workers=1"]


@pytest.fixture
def probe(tmp_path, monkeypatch):
    path = tmp_path / "probe.jsonl"
    monkeypatch.setenv("CDREXP_TEST_PROBE", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def _runs_of(records: list[dict]) -> dict[str, list[dict]]:
    by_root: dict[str, list[dict]] = {}
    for r in records:
        by_root.setdefault(r["root"], []).append(r)
    return by_root


def test_working_tree_and_the_same_code_as_a_commit_run_from_equivalent_places(
        tmp_path, probe, capsys):
    """The README's first example on a comment-only change: the candidate (the working
    tree) and the base (HEAD) differ in nothing Python sees but one path character."""
    repo, _ = fake_repo(tmp_path, [{}])
    (repo / "mlflow.db").write_text("an earlier run's store")          # ignored files
    (repo / "outputs").mkdir()
    write_fake(repo, comment="# a comment-only change, not committed\n")
    assert main(["HEAD", "--repo", str(repo), "--no-tracking", *FAST]) == 0
    out = capsys.readouterr()
    assert "OK: the candidate is not slower" in out.out
    runs = _runs_of(probes(probe))
    assert len(runs) == 2 and str(repo) not in runs   # neither side runs in the checkout
    (a_root, a), (b_root, b) = sorted(runs.items())
    assert len(a) == len(b) == 3                       # warm-up and two measured runs
    assert len(a_root) == len(b_root) and Path(a_root).parent == Path(b_root).parent
    for ra, rb in zip(a, b):
        assert ra["sys_path"] == rb["sys_path"]        # the same sys.path, root aside
        assert ra["pyc"] and rb["pyc"]                 # both compiled alike
        assert ra["python"] == rb["python"]
        assert len(ra["cwd_name"]) == len(rb["cwd_name"])
    # cpu / wall: a hash seed per process, not one fixed seed for good
    assert len({r["hash"] for r in a + b}) > 1
    assert "packages: both sides: this environment" in out.err
    assert git(repo, "worktree", "list").count("\n") == 0


def test_aa_reports_ratio_interval_and_what_a_gate_would_have_said(tmp_path, probe,
                                                                    capsys):
    repo, (sha,) = fake_repo(tmp_path, [{}])
    assert main(["--aa", "--repo", str(repo), "--no-tracking", *FAST]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("cdrexp-ab: A/A (the same code on both sides): cpu ratio ")
    assert "a gate at +1000 % would have said OK (exit 0)" in out
    runs = _runs_of(probes(probe))
    assert len(runs) == 2
    assert main(["--aa", sha[:8], "--repo", str(repo), "--no-tracking", *FAST]) == 0


def test_a_hanging_side_is_stopped_by_the_timeout_and_its_log_kept(tmp_path, probe,
                                                                   capsys):
    repo, _ = fake_repo(tmp_path, [{}, {"behaviour": "hang"}])
    code = main(["HEAD~1", "HEAD", "--repo", str(repo), "--no-tracking", "--run-timeout",
                 "5", *FAST])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("cdrexp-ab: error: could not compare: candidate HEAD")
    assert "a run took longer than 5 s and was stopped" in err
    kept = Path(err.rsplit("(log: ", 1)[1].rstrip(")"))
    assert kept.is_file() and kept.is_relative_to(tmp_path / "outputs" / "ab")
    assert git(repo, "worktree", "list").count("\n") == 0


def test_a_tracking_failure_is_a_warning_and_the_verdict_stands(tmp_path, probe, capsys,
                                                               monkeypatch):
    from cdrexp.ab import _tracking

    def broken(self, result):
        raise RuntimeError("database is locked")
    monkeypatch.setattr(_tracking.MlflowObserver, "finished", broken)
    repo, _ = fake_repo(tmp_path, [{}, {}])
    assert main(["HEAD~1", "HEAD", "--repo", str(repo), *FAST]) == 0
    out = capsys.readouterr()
    assert "warning: tracking failed (finished): RuntimeError: database is locked" in out.err
    assert "OK: the candidate is not slower" in out.out
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    statuses = {r.info.status for r in client.search_runs([exp.experiment_id])}
    assert statuses == {"FAILED"}                      # closed, not left RUNNING


@pytest.fixture
def offline_index(tmp_path, monkeypatch):
    """A local wheel as the only package source, for uv and for pip; environments
    cached under tmp_path."""
    wheels = tmp_path / "wheels"
    build_wheel(wheels)
    for var, value in {"CDREXP_ENV_CACHE": tmp_path / "envs", "UV_FIND_LINKS": wheels,
                       "UV_OFFLINE": "1", "UV_NO_INDEX": "1",
                       "UV_CACHE_DIR": tmp_path / "uv-cache", "PIP_FIND_LINKS": wheels,
                       "PIP_NO_INDEX": "1"}.items():
        monkeypatch.setenv(var, str(value))
    return tmp_path / "envs"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("builder", ["uv", "venv+pip"])
def test_each_side_runs_with_the_packages_its_revision_declares(builder, tmp_path, probe,
                                                                capsys, offline_index,
                                                                monkeypatch):
    if builder == "uv":
        from cdrexp.profilers import Unavailable, find_tool
        try:
            find_tool("uv")
        except Unavailable as exc:
            pytest.skip(f"uv: {exc}")
    else:                   # no uv: the fallback (an unusable override hides it)
        monkeypatch.setenv("CDREXP_UV_BIN", str(tmp_path / "no-uv"))
    repo, _ = fake_repo(tmp_path, [{}, {"behaviour": "import:cdrexp_tinydep",
                                        "deps": ("cdrexp_tinydep",)}])
    argv = ["HEAD~1", "HEAD", "--repo", str(repo), "--no-tracking", *FAST]
    assert main(argv) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "packages:" in ln)
    assert "base: env " in line and "no packages" in line
    assert "candidate: env " in line and "cdrexp_tinydep" in line and "built in" in line
    assert line.count(f"({builder}), built in") == 2
    runs = _runs_of(probes(probe))
    base = next(r for r in runs.values() if r[0]["behaviour"] == "ok")
    cand = next(r for r in runs.values() if r[0]["behaviour"] != "ok")
    assert Path(base[0]["prefix"]).parent == Path(cand[0]["prefix"]).parent == offline_index
    assert base[0]["prefix"] != cand[0]["prefix"]
    assert Path(cand[0]["imported"]).is_relative_to(cand[0]["prefix"])
    # the second gate builds nothing: the same declarations share the cached envs
    probe.unlink()
    assert main(argv) == 0
    line = next(ln for ln in capsys.readouterr().err.splitlines() if "packages:" in ln)
    assert "built in" not in line and line.count("cached") == 2
    assert {r[0]["prefix"] for r in _runs_of(probes(probe)).values()} == \
        {base[0]["prefix"], cand[0]["prefix"]}


def test_env_plan_same_declaration_shares_this_environment(tmp_path):
    from cdrexp.ab._envs import env_key, plan
    repo, _ = fake_repo(tmp_path, [{"deps": ("numpy>=1.26",)}])
    assert plan(repo, repo) is None
    assert plan(repo, repo, base_extra=("numpy<2",)) == (("numpy>=1.26", "numpy<2"),
                                                         ("numpy>=1.26",))
    assert env_key(["a", "b"]) == env_key(["b", "a"]) != env_key(["a"])


# ---- bisect: the default budget, an undecided step -----------------------------------

@pytest.mark.parametrize("failure", [None, "crash"])
def test_bisect_with_the_default_budget_and_an_undecided_step(failure, tmp_path, capsys,
                                                              monkeypatch):
    """No --max-pairs: the retry doubles the default budget (no TypeError); undecided
    twice is exit 2 and one line; the parent run is ended either way."""
    from cdrexp.ab import _bisect
    from cdrexp.ab._run import ABResult

    budgets = []

    def undecided(base, candidate, overrides, settings, repo, observer, job, **kw):
        budgets.append((settings.pairs_budget, settings.max_seconds))
        if failure:
            raise TypeError("a bug in a step")
        return ABResult(None, None, job, settings, settings.check())
    monkeypatch.setattr(_bisect, "run_ab", undecided)
    monkeypatch.chdir(tmp_path)
    repo, shas = fake_repo(tmp_path, [{}, {}, {}])
    code = main(["--bisect", shas[0], shas[-1], "--repo", str(repo), "subs=1000"])
    out, err = capsys.readouterr()
    assert code == 2
    if failure:
        assert budgets == [(40, 600.0)]
        assert err.strip().splitlines()[-1] == \
            "cdrexp-ab --bisect: error: TypeError: a bug in a step"
        expected = "FAILED"
    else:
        assert budgets == [(40, 600.0), (80, 1200.0)]
        last = out.strip().splitlines()[-1]
        assert last.startswith("cdrexp-ab --bisect: undecidable: ") and "\n" not in last
        expected = "FINISHED"
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
    parents = [r for r in client.search_runs([exp.experiment_id])
               if r.data.tags.get(N.TAG_KIND) == N.KIND_BISECT]
    assert [p.info.status for p in parents] == [expected]


def test_bad_deps_and_aa_misuse_are_one_line(tmp_path, capsys, monkeypatch):
    repo, _ = fake_repo(tmp_path, [{}])
    monkeypatch.chdir(tmp_path)
    for argv, message in ((["HEAD", "--base-deps", " "], "--base-deps: ' ' is not a req"),
                          (["--aa", "HEAD", "HEAD~1"], "--aa [REV] compares REV with"),
                          (["HEAD", "--run-timeout", "-1"], "--run-timeout: must be > 0")):
        assert main([*argv, "--repo", str(repo)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, err
    assert not (tmp_path / "mlflow.db").exists()
    assert os.listdir(tmp_path) == ["repo"]
