"""The team stack for the tests marked ``team``: deploy/local/up.sh, started once per session.

These tests run with ``pytest -m team`` (``.ci/run`` does, after deploy/local/install.sh);
a plain ``pytest`` skips them, saying how to run them, because starting the stack costs a
minute or more. A component up.sh reports missing (a package not installed, no root for
SLURM) skips the tests that need it, with up.sh's line as the reason. What this session
started is stopped at its end (deploy/local/down.sh); a stack that was up before is left.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UP, DOWN = REPO / "deploy" / "local" / "up.sh", REPO / "deploy" / "local" / "down.sh"


def pytest_collection_modifyitems(config, items):
    if "team" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="team-stack test (PostgreSQL, S3, MLflow server, SLURM): "
                                   "run with `pytest -m team` after deploy/local/install.sh")
    for item in items:
        if "team" in item.keywords:
            item.add_marker(skip)


class Stack:
    def __init__(self, env: dict, missing: dict, log: str):
        self.env, self.missing, self.log = env, missing, log

    def require(self, *parts: str) -> None:
        for part in parts:
            if part in self.missing:
                pytest.skip(f"stack part {part!r} missing: {self.missing[part]}")

    @property
    def tracking_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def password(self) -> str:
        return self.env["MLFLOW_TRACKING_PASSWORD"]

    @property
    def bucket(self) -> str:
        return self.env["CDREXP_STACK_BUCKET"]

    def secrets(self) -> list[str]:
        """Every credential the stack handed out: none may show in any output."""
        names = ("MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY")
        pg = re.search(r"://[^:]+:([^@]+)@", self.env.get("CDREXP_STACK_PG_URI", ""))
        return [self.env[n] for n in names if n in self.env] + ([pg.group(1)] if pg else [])

    def run(self, args, cwd, timeout=600, env=None, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, env={**self.env, **(env or {})},
                              **kw)


def _alive_records(stack_dir: Path) -> set:
    return {p.name for p in (stack_dir / "pids").glob("*.pid")} if stack_dir.is_dir() else set()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if sys.platform != "linux":
        pytest.skip("the local team stack runs on Linux only")
    env = dict(os.environ, CDREXP_PYTHON=sys.executable)
    stack_dir = os.environ.get("CDREXP_STACK_DIR") or (  # up.sh's default (_common.sh)
        "/tmp/cdrexp-stack-root" if os.getuid() == 0 else
        os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                     "cdrexp-stack"))
    before = _alive_records(Path(stack_dir))
    proc = subprocess.run(["bash", str(UP)], capture_output=True, text=True, env=env,
                          timeout=900)
    exports = dict(re.findall(r"^export (\w+)=(.*)$", proc.stdout, re.M))
    exports = {k: shlex.split(v)[0] if v else "" for k, v in exports.items()}
    missing = {}
    for line in proc.stderr.splitlines():
        if m := re.match(r"cdrexp-stack: (?:missing|FAILED): (\w+)\b(.*)", line):
            missing.setdefault(m.group(1), line.split(": ", 1)[1])
    if proc.returncode not in (0, 3) and not exports:
        pytest.fail(f"deploy/local/up.sh failed ({proc.returncode}): {proc.stderr[-2000:]}")
    stack_path = Path(exports.get("CDREXP_STACK_DIR", stack_dir))
    full = dict(os.environ, **exports)
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        full.pop(name, None)
    yield Stack(full, missing, proc.stderr)
    if _alive_records(stack_path) - before and not os.environ.get("CDREXP_STACK_KEEP"):
        subprocess.run(["bash", str(DOWN)], env=dict(env, CDREXP_STACK_DIR=str(stack_path)),
                       capture_output=True, timeout=300)
