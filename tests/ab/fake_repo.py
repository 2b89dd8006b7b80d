"""A scratch repository holding a *fake* cdrexp: its ``cdrexp.cli.child`` does no
generation but records where and how it ran (one JSON line per run in
``$CDREXP_TEST_PROBE``), so the A/B's set-up of each side is checked in seconds.

The child's behaviour is chosen per commit by ``cdrexp/BEHAVIOUR``: ``ok``, ``hang``
(the second run of the side, the first measured one, sleeps), ``import:NAME`` (imports
package NAME, which only the side's environment may have)."""
from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

from .ab_repo import commit_all, git

CHILD = '''
import importlib, json, os, sys, time
import cdrexp, cdrexp.cli

here = os.path.dirname(os.path.abspath(cdrexp.__file__))
root = os.path.dirname(here)
behaviour = open(os.path.join(here, "BEHAVIOUR")).read().strip()
record = {
    "root": root,
    "cwd_name": os.path.basename(os.getcwd()),
    "sys_path": [p.replace(root, "<ROOT>") for p in sys.path[1:]],
    "pyc": all(os.path.isfile(m.__spec__.cached) for m in (cdrexp, cdrexp.cli)),
    "hash": hash("cdrexp"),
    "python": sys.executable,
    "prefix": sys.prefix,
    "behaviour": behaviour,
}
if behaviour.startswith("import:"):
    name = behaviour.split(":", 1)[1]
    record["imported"] = importlib.import_module(name).__file__
probe = os.environ.get("CDREXP_TEST_PROBE")
if probe:
    with open(probe, "a") as fh:
        fh.write(json.dumps(record) + "\\n")
if behaviour == "hang" and os.path.exists("run002.log"):
    time.sleep(600)
end = time.process_time() + 0.05          # a little CPU, so that ratios are defined
while time.process_time() < end:
    pass
'''

PYPROJECT = '''[project]
name = "cdrexp"
version = "0.0.0"
dependencies = {deps}
'''


def write_fake(repo: Path, behaviour: str = "ok", deps: tuple[str, ...] = (),
               comment: str = "") -> None:
    pkg = repo / "cdrexp"
    (pkg / "cli").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(f'"""A fake cdrexp for the A/B tests."""\n{comment}')
    (pkg / "cli" / "__init__.py").write_text("")
    (pkg / "cli" / "child.py").write_text(CHILD)
    (pkg / "BEHAVIOUR").write_text(behaviour + "\n")
    (repo / "pyproject.toml").write_text(PYPROJECT.format(deps=json.dumps(list(deps))))
    (repo / ".gitignore").write_text("mlflow.db\nmlflow.db.lock\noutputs/\n")


def fake_repo(tmp_path: Path, commits: list[dict], name: str = "repo") -> tuple[Path,
                                                                                list[str]]:
    """A repository with one commit per ``write_fake`` keyword set, oldest first."""
    repo = tmp_path / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    shas = []
    for i, kw in enumerate(commits):
        write_fake(repo, **{"comment": f"# version {i}\n", **kw})
        shas.append(commit_all(repo, f"commit {i}"))
    return repo, shas


def probes(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] \
        if path.exists() else []


def build_wheel(where: Path, name: str = "cdrexp_tinydep", version: str = "1.0") -> Path:
    """A pure-Python wheel of one module, written by hand (no build tool, no network)."""
    where.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}"
    files = {
        f"{name}.py": "VALUE = 42\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\n"
                                      f"Version: {version}\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: cdrexp-tests\n"
                                   "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest())
        record.append(f"{path},sha256={digest.rstrip(b'=').decode()},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = where / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel
