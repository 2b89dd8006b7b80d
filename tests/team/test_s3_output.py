"""out=s3://... on the stack's S3 server, every format: the bucket holds exactly what the
manifest lists (each object read back against its checksum), nothing under a final key
before it is complete, re-runs replace only cdrexp's own objects; Dask writes there too;
a missing bucket, refused credentials, a server gone mid-run are one line."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import xxhash

pytestmark = [pytest.mark.team, pytest.mark.slow]


def _s3(stack):
    import s3fs
    return s3fs.S3FileSystem(endpoint_url=stack.env["AWS_ENDPOINT_URL_S3"],
                             key=stack.env["AWS_ACCESS_KEY_ID"],
                             secret=stack.env["AWS_SECRET_ACCESS_KEY"],
                             skip_instance_cache=True)


def _generate(stack, monkeypatch, out, fmt, executor="local"):
    from cdrexp.config import ExecutorConfig, GeneratorConfig, OutputConfig
    from cdrexp.generation import generate
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3",
              "FSSPEC_S3_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(k, stack.env[k])
    import fsspec.config
    monkeypatch.setitem(fsspec.config.conf, "s3",
                        {"endpoint_url": stack.env["AWS_ENDPOINT_URL_S3"]})
    cfg = GeneratorConfig(subs=3000, days=2, workers=2, out=out,
                          output=OutputConfig(format=fmt, rotate_bytes=200_000),
                          executor=ExecutorConfig(name=executor))
    return generate(cfg)


def _check_bucket_matches_manifest(fs, root, extra=()):
    keys = sorted(p[len(root) + 1:] for p in fs.find(root))
    manifest = json.loads(fs.cat_file(f"{root}/manifest.json"))
    listed = sorted([f["path"] for f in manifest["files"]] + ["manifest.json", *extra])
    assert keys == listed
    for f in manifest["files"]:
        data = fs.cat_file(f"{root}/{f['path']}")
        assert len(data) == f["bytes"] and xxhash.xxh128(data).hexdigest() == f["xxh128"]
    return manifest


@pytest.mark.parametrize("fmt", ["csv", "csv_gz", "csv_zst", "parquet"])
def test_every_format_matches_its_manifest_and_reruns_keep_user_objects(
        stack, monkeypatch, fmt):
    stack.require("s3")
    root = f"{stack.bucket}/out/{uuid.uuid4().hex}"
    _generate(stack, monkeypatch, f"s3://{root}", fmt)
    fs = _s3(stack)
    first = _check_bucket_matches_manifest(fs, root)
    assert first["rows"] > 0 and any(f["kind"] == "data" for f in first["files"])
    # a user's objects beside and inside a day: a re-run replaces only cdrexp's own
    fs.pipe_file(f"{root}/notes.txt", b"mine")
    fs.pipe_file(f"{root}/2025-01-01/README", b"mine too")
    _generate(stack, monkeypatch, f"s3://{root}", fmt)
    _check_bucket_matches_manifest(fs, root, extra=("2025-01-01/README", "notes.txt"))
    assert fs.cat_file(f"{root}/notes.txt") == b"mine"


def test_dask_executor_writes_to_s3(stack, monkeypatch):
    stack.require("s3")
    root = f"{stack.bucket}/out/{uuid.uuid4().hex}"
    _generate(stack, monkeypatch, f"s3://{root}", "parquet", executor="dask")
    _check_bucket_matches_manifest(_s3(stack), root)


def test_missing_bucket_and_bad_credentials_are_one_line_before_work(stack, tmp_path):
    stack.require("s3")
    proc = stack.run(["-m", "cdrexp", "subs=1000", "out=s3://no-such-bucket-x/run"],
                     tmp_path, env={"MLFLOW_TRACKING_URI": ""})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "s3://no-such-bucket-x/run" in proc.stderr and "bucket does not exist" in proc.stderr
    secret = stack.env["AWS_SECRET_ACCESS_KEY"]
    proc = stack.run(["-m", "cdrexp", "subs=1000", f"out=s3://{stack.bucket}/run"], tmp_path,
                     env={"AWS_SECRET_ACCESS_KEY": "wrong" + secret,
                          "MLFLOW_TRACKING_URI": ""})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "signature" in proc.stderr.lower() and secret not in proc.stderr
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "mlflow.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(900)
def test_server_gone_mid_run_is_one_line_and_leaves_no_partial_object(stack, tmp_path):
    """A private S3 server (moto, no auth), stopped while the run writes to it."""
    stack.require("s3")
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    port = _free_port()
    server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL_S3": endpoint, "FSSPEC_S3_ENDPOINT_URL": endpoint,
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "MLFLOW_TRACKING_URI": ""}
    try:
        import s3fs
        for _ in range(100):
            try:
                fs = s3fs.S3FileSystem(endpoint_url=endpoint, key="k", secret="s",
                                       skip_instance_cache=True)
                fs.mkdir("gone")
                break
            except Exception:
                time.sleep(0.1)
        run = subprocess.Popen([sys.executable, "-m", "cdrexp", "subs=300000", "repeats=1",
                                "warmup=0", "output.format=csv_gz", "workers=1",
                                "out=s3://gone/run"], cwd=tmp_path,
                               env={**stack.env, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            if any("cdr_" in p for p in fs.find("gone/run", withdirs=False)):
                break
            time.sleep(0.2)
        complete = {}
        fs.invalidate_cache()
        for p in fs.find("gone/run"):
            if "/cdr_" in p and "/." not in p:
                try:
                    complete[p] = fs.cat_file(p)
                except FileNotFoundError:   # replaced meanwhile by the run's next part
                    pass
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        out, err = run.communicate(timeout=600)
    finally:
        if server.poll() is None:
            server.kill()
    assert run.returncode == 1, err[-2000:]
    errors = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert errors and errors[0].startswith("cdrexp: error:") and "s3://gone/run" in errors[0]
    import gzip
    for data in complete.values():      # every object under a final key was whole
        assert gzip.decompress(data).endswith(b"\n")
