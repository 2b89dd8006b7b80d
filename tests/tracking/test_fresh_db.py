"""A new SQLite store copied from the cached migrated template is the store MLflow builds."""
import sqlite3
from pathlib import Path

import pytest

from cdrexp.tracking import _fresh_db as F
from cdrexp.tracking.store import DB_FILE, TrackingStore


def _schema(db) -> list:
    """Every table, index and trigger, each definition as its sorted lines: MLflow's own
    migrations write a table's constraints in an order that varies from one process to
    the next (a set's hash order), so two stores MLflow builds differ in that alone."""
    def lines(sql):
        return sorted(line.strip().rstrip(",") for line in (sql or "").splitlines())
    with sqlite3.connect(db) as c:
        return sorted((kind, name, table, lines(sql)) for kind, name, table, sql in
                      c.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def _rows(db, base) -> dict:
    with sqlite3.connect(db) as c:
        exps = [(i, n, loc.replace(str(base), "<base>"), stage) for i, n, loc, stage in
                c.execute("SELECT experiment_id, name, artifact_location, lifecycle_stage "
                          "FROM experiments ORDER BY experiment_id")]
        return {"experiments": exps,
                "alembic": c.execute("SELECT * FROM alembic_version").fetchall(),
                "workspaces": c.execute("SELECT name FROM workspaces").fetchall()}


@pytest.mark.slow       # MLflow's migrations run twice (~3 s each)
def test_seeded_store_equals_the_store_mlflow_builds(tmp_path, monkeypatch):
    # the reference: the cache is unusable (a file where the directory would be), so
    # seeding falls back and MLflow migrates the new store itself
    blocked = tmp_path / "not_a_dir"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    (tmp_path / "ref").mkdir()
    ref = TrackingStore(None, str(tmp_path / "ref"), "exp")
    ref.create_run("r", {})
    assert not list(tmp_path.glob("**/mlflow-*.db"))

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("a", "b"):         # "a" builds the template, "b" only copies it
        (tmp_path / name).mkdir()
        store = TrackingStore(None, str(tmp_path / name), "exp")
        store.create_run("r", {})
        db = tmp_path / name / DB_FILE
        assert _schema(db) == _schema(tmp_path / "ref" / DB_FILE)
        assert _rows(db, tmp_path / name) == _rows(tmp_path / "ref" / DB_FILE,
                                                   tmp_path / "ref")
    templates = list((tmp_path / "cache" / "cdrexp").iterdir())
    assert len(templates) == 1 and templates[0].name.startswith("mlflow-")
    # the template holds no experiment: the Default one would point into the cache
    with sqlite3.connect(templates[0]) as c:
        assert c.execute("SELECT count(*) FROM experiments").fetchone() == (0,)


def test_an_existing_store_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"someone's data")
    assert not F.seed_sqlite_store(db)
    assert db.read_bytes() == b"someone's data"
    assert not (tmp_path / "cache").exists()       # nothing built for nothing


def test_a_relative_path_is_left_to_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert not F.seed_sqlite_store(Path("relative.db"))
    assert not (tmp_path / "cache").exists()


def test_missing_directory_is_left_to_mlflow(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert not F.seed_sqlite_store(tmp_path / "no" / "such" / "dir" / "mlflow.db")
    assert not (tmp_path / "no").exists()
