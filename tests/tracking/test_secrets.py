"""Credentials never shown (issue 22 item 5): the masking helper, the HTTP probe against a
live server with user:password in the URI, and what the store logs."""
import base64
import http.server
import os
import threading

import pytest

from cdrexp._secrets import mask_secrets, split_credentials
from cdrexp.tracking import store as S


@pytest.mark.parametrize("text, shown", [
    ("http://user:secret@127.0.0.1:5000", "http://user:***@127.0.0.1:5000"),
    ("https://u:p%40ss@h/x", "https://u:***@h/x"),
    ("tracking.uri=postgresql+psycopg2://u:pw@db:5432/mlflow?sslmode=require",
     "tracking.uri=postgresql+psycopg2://u:***@db:5432/mlflow?sslmode=require"),
    ("mysql://root:pw@h and ftp://a:b@c", "mysql://root:***@h and ftp://a:***@c"),
    ("postgresql://u@h/db?password=xyz&sslmode=x", "postgresql://u@h/db?password=***&sslmode=x"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("http://h:5000/#/x", "http://h:5000/#/x"),
])
def test_mask_secrets(text, shown):
    assert mask_secrets(text) == shown


def test_split_credentials_decodes():
    assert split_credentials("http://us%40er:s%3Acret@127.0.0.1:5000/p") == (
        "http://127.0.0.1:5000/p", "us@er", "s:cret")


@pytest.fixture
def basic_auth_server():
    """A live HTTP server that wants Basic auth (as `mlflow server --app-name basic-auth`)."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            ok = self.headers.get("Authorization") == \
                "Basic " + base64.b64encode(b"user:secret").decode()
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()


def test_http_probe_sends_user_password_as_basic_auth(basic_auth_server, tmp_path):
    port, seen = basic_auth_server
    uri = f"http://user:secret@127.0.0.1:{port}"
    assert S.check_location(uri, str(tmp_path)) == uri     # no "Name or service not known"
    assert seen == ["Basic " + base64.b64encode(b"user:secret").decode()]


def test_unreachable_store_message_masks_the_password(tmp_path):
    with pytest.raises(S.StoreUnusable) as err:
        S.check_location("http://user:secret@127.0.0.1:9", str(tmp_path))
    assert "secret" not in str(err.value) and "user:***@127.0.0.1:9" in str(err.value)


def test_store_logs_params_tags_and_texts_masked(tmp_path):
    store = S.TrackingStore(None, str(tmp_path))
    uri = "postgresql://u:hunter2@db/x"
    run_id = store.create_run(f"run {uri}", {"overrides": f"tracking.uri={uri}"})
    store.log_params(run_id, {"tracking.uri": uri})
    store.set_tags(run_id, {"note": uri})
    store.log_text(run_id, f"uri: {uri}\n", "config.yaml")
    store.log_dict(run_id, {"tracking": {"uri": uri}}, "info.json")
    (tmp_path / "hydra").mkdir()
    (tmp_path / "hydra" / "overrides.yaml").write_text(f"- tracking.uri={uri}\n")
    store.log_artifacts(run_id, tmp_path / "hydra", ".hydra")
    run = store.client.get_run(run_id)
    texts = [run.info.run_name, *run.data.params.values(), *run.data.tags.values()]
    for name in ("config.yaml", "info.json", ".hydra/overrides.yaml"):
        texts.append(open(store.client.download_artifacts(run_id, name,
                                                          str(tmp_path))).read())
    assert not any("hunter2" in t for t in texts)
    assert run.data.params["tracking.uri"] == "postgresql://u:***@db/x"
    # the file on disk is the user's: untouched
    assert "hunter2" in (tmp_path / "hydra" / "overrides.yaml").read_text()


def test_compare_store_leaves_the_environment_alone(tmp_path, monkeypatch):
    from cdrexp.compare._store import Store, StoreError
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with pytest.raises(StoreError) as err:
        Store("http://user:secret@127.0.0.1:9")
    assert "secret" not in str(err.value)
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
