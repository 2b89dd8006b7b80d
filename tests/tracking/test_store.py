"""Where the tracking store lives, and surviving SQLite contention."""
import importlib.util
import os
import socket
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


# ---- one rule for where the store is: tracking.uri, else $MLFLOW_TRACKING_URI, else ./mlflow.db

def test_the_environment_is_the_fallback_and_the_config_wins(tmp_path):
    env = {"MLFLOW_TRACKING_URI": "sqlite:///from_env.db"}
    assert S.resolve_tracking_uri(None, str(tmp_path), env) == \
        f"sqlite:///{tmp_path}/from_env.db"
    assert S.resolve_tracking_uri("sqlite:///cfg.db", str(tmp_path), env) == \
        f"sqlite:///{tmp_path}/cfg.db"
    assert S.resolve_tracking_uri(None, str(tmp_path), {}) == f"sqlite:///{tmp_path}/mlflow.db"


def test_runner_and_compare_read_the_same_store(tmp_path, monkeypatch):
    """The runner's TrackingStore and compare's reader resolve by the same function."""
    from cdrexp.compare._store import tracking_uri
    monkeypatch.chdir(tmp_path)
    for env in ("sqlite:///env.db", "relative_dir", None):
        if env:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
        else:
            monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        runner = S.resolve_tracking_uri(None, str(tmp_path))
        assert tracking_uri(None) == runner
        assert runner.endswith(env.split("/")[-1] if env else "mlflow.db")


# ---- the store is checked, and a new one created, before any run -------------------------

def test_an_unsupported_scheme_is_refused_before_anything_is_created(tmp_path):
    with pytest.raises(S.StoreUnusable) as err:
        S.check_store("ftp://x", str(tmp_path))
    assert str(err.value).startswith("tracking.uri: MLflow cannot track to 'ftp://x'")
    assert "sqlite" in str(err.value) and "http" in str(err.value)
    assert os.listdir(tmp_path) == []


def test_a_directory_in_place_of_the_database_is_named(tmp_path):
    (tmp_path / "mlflow.db").mkdir()
    with pytest.raises(S.StoreUnusable) as err:
        S.check_store(None, str(tmp_path))
    assert f"{tmp_path}/mlflow.db is not a file" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    (tmp_path / "mlflow.db").write_bytes(b"not a database at all, " * 100)
    with pytest.raises(S.StoreUnusable, match="is not a usable SQLite database"):
        S.check_store(None, str(tmp_path))


def test_a_tracking_server_that_does_not_answer_is_named(tmp_path):
    """Nothing listens on port 9 (discard): one try, no minutes of retries."""
    knobs = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    before = {k: os.environ.get(k) for k in knobs}
    with pytest.raises(S.StoreUnusable) as err:
        S.check_store("http://127.0.0.1:9", str(tmp_path))
    assert str(err.value) == ("tracking store http://127.0.0.1:9 (tracking.uri): cannot "
                              "reach it: Connection refused")
    assert "\n" not in str(err.value)
    # the probe's short timeouts do not stay in force for the runs
    assert {k: os.environ.get(k) for k in knobs} == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(30)        # MLflow alone retries a down database for ~100 s
def test_a_database_server_that_is_down_is_named_after_one_try(tmp_path):
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver (dev extra) is needed")
    uri = f"postgresql+psycopg2://cdrexp:secret@127.0.0.1:{_free_port()}/runs"
    with pytest.raises(S.StoreUnusable) as err:
        S.check_store(uri, str(tmp_path))
    text = str(err.value)
    assert text.startswith(f"tracking store {uri.replace('secret', '***')} (tracking.uri): "
                           "cannot connect: ")
    assert "Connection refused" in text and "secret" not in text and "\n" not in text
    assert os.listdir(tmp_path) == []


def test_a_database_driver_that_is_not_installed_is_named(tmp_path):
    uri = "postgresql+pg8000://u:pw@127.0.0.1:5432/runs"
    if importlib.util.find_spec("pg8000"):
        pytest.skip("pg8000 is installed here")
    with pytest.raises(S.StoreUnusable, match=r"its database driver is not installed "
                                              r"\(No module named 'pg8000'\)"):
        S.check_store(uri, str(tmp_path))


def test_check_store_creates_the_store_and_the_experiment(tmp_path):
    store = S.check_store(None, str(tmp_path), "made")
    assert (tmp_path / "mlflow.db").is_file()
    assert store.call("get_experiment_by_name", "made") is not None


FIRST_USE = textwrap.dedent("""
    import os, sys, time
    from cdrexp.tracking.store import TrackingStore
    open(os.path.join(sys.argv[1], f"ready{sys.argv[2]}"), "w").close()
    go = os.path.join(sys.argv[1], "go")
    while not os.path.exists(go):       # every process imported: start together
        time.sleep(0.01)
    store = TrackingStore(None, sys.argv[1], "first-use")
    run_id = store.create_run(f"w{sys.argv[2]}", {"w": sys.argv[2]})
    store.end_run(run_id)
""")


@pytest.mark.slow
def test_processes_opening_a_new_store_together_all_land(tmp_path):
    """Issue 14: runs started at once in a new directory raced MLflow's schema migration
    (a lost run, a stray _alembic_tmp_ table). The first one creates it under the lock."""
    import sqlite3
    import time
    n = 4
    procs = [subprocess.Popen([sys.executable, "-c", FIRST_USE, str(tmp_path), str(w)],
                              stderr=subprocess.PIPE, text=True) for w in range(n)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready*"))) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").write_text("")
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [e[-800:] for e in errors]
    store = S.TrackingStore(None, str(tmp_path), "first-use")
    runs = store.call("search_runs", [store.experiment_id], max_results=100)
    assert sorted(r.info.run_name for r in runs) == [f"w{w}" for w in range(n)]
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        tables = [t for (t,) in db.execute("select name from sqlite_master where type='table'")]
    assert not [t for t in tables if t.startswith("_alembic_tmp")], tables
