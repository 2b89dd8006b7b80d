"""Where the tracking store lives, and surviving SQLite contention."""
import os
import subprocess
import sys
import textwrap

import pytest

from cdrexp.tracking import store as S


def test_default_uri_is_an_absolute_sqlite_file_in_base_dir(tmp_path):
    assert S.resolve_tracking_uri(None, str(tmp_path)) == f"sqlite:///{tmp_path}/mlflow.db"


def test_relative_uris_are_made_absolute_against_base_dir(tmp_path):
    assert S.resolve_tracking_uri("sqlite:///x/t.db", str(tmp_path)) == \
        f"sqlite:///{tmp_path}/x/t.db"
    assert S.resolve_tracking_uri("store", str(tmp_path)) == (tmp_path / "store").as_uri()


@pytest.mark.parametrize("uri", ["sqlite:////abs/m.db", "http://127.0.0.1:5000",
                                 "postgresql://u@h/db", "file:///abs/mlruns"])
def test_absolute_and_remote_uris_are_kept(uri, tmp_path):
    assert S.resolve_tracking_uri(uri, str(tmp_path)) == uri


def test_child_env_drops_run_attaching_variables():
    env = S.child_env({"MLFLOW_RUN_ID": "abc", "MLFLOW_EXPERIMENT_ID": "3", "PATH": "/bin"})
    assert env == {"PATH": "/bin"}


def test_strip_leaky_env(monkeypatch):
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc")
    S.strip_leaky_env()
    assert "MLFLOW_RUN_ID" not in os.environ


def test_retry_locked_retries_only_lock_errors():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert S.retry_locked(flaky) == "ok" and len(calls) == 3

    def broken():
        calls.append(1)
        raise ValueError("no such table")

    calls.clear()
    with pytest.raises(ValueError):
        S.retry_locked(broken)
    assert len(calls) == 1


def test_retry_locked_gives_up_after_its_timeout():
    def locked():
        raise RuntimeError("database is locked")
    with pytest.raises(RuntimeError, match="locked"):
        S.retry_locked(locked, timeout=0.3)


def test_artifacts_go_under_base_dir_whatever_the_working_directory(tmp_path, monkeypatch):
    """A Hydra job may run in its own directory: the store must not follow it."""
    base, elsewhere = tmp_path / "base", tmp_path / "job_dir"
    base.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = S.TrackingStore(None, str(base), "t")
    run_id = store.create_run("r", {"a": 1})
    store.log_text(run_id, "hello", "x.txt")
    store.end_run(run_id)
    assert (base / "mlflow.db").is_file()
    assert list(base.glob("mlruns/*/*/artifacts/x.txt"))
    assert os.listdir(elsewhere) == []


WRITER = textwrap.dedent("""
    import sys
    from cdrexp.tracking.store import TrackingStore
    store = TrackingStore(None, sys.argv[1], "contention")
    for i in range(5):
        run_id = store.create_run(f"w{sys.argv[2]}-{i}", {"w": sys.argv[2]})
        store.log_params(run_id, {f"p{k}": k for k in range(20)})
        store.log_metrics(run_id, {f"m{k}": k for k in range(20)})
        store.end_run(run_id)
""")


def test_concurrent_writers_to_one_sqlite_store_all_succeed(tmp_path):
    S.TrackingStore(None, str(tmp_path), "contention").experiment_id  # schema created
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(w)],
                              stderr=subprocess.PIPE, text=True) for w in range(3)]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    store = S.TrackingStore(None, str(tmp_path), "contention")
    runs = store.call("search_runs", [store.experiment_id], max_results=1000)
    assert len(runs) == 15
    assert all(r.info.status == "FINISHED" and len(r.data.metrics) == 20 for r in runs)
