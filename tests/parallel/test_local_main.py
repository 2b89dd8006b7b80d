"""``generate()`` across worker processes from every kind of ``__main__`` a user has.

multiprocessing re-imports the parent's ``__main__`` in each new process unless told
otherwise; LocalExecutor keeps it out (local._main_hidden). Each case runs a small
script (4 units, workers=2, so the shared-memory pool runs) in its own interpreter and
checks that it finished, that its output is complete, and that its body ran exactly once
(a worker that re-ran the script would append to RAN_FILE again).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 120
# no `if __name__ == "__main__"` guard, on purpose
SCRIPT = textwrap.dedent("""\
    import json, os
    with open(os.environ["RAN_FILE"], "a") as f:
        f.write("ran\\n")
    from cdrexp import generate
    from cdrexp.config import GeneratorConfig, ModelConfig
    stats = generate(GeneratorConfig(subs=2000, workers=2, out=os.environ["OUT"],
                                     model=ModelConfig(chunk_size=500)))
    print("RESULT", json.dumps({"workers": stats.workers, "files": stats.files,
                                "rows": sum(stats.rows_by_type.values())}))
    """)
# A notebook kernel: a launcher started with `-m` that runs each cell in a fresh
# `__main__` without __file__ (as IPython's kernel does); re-importing the launcher
# in a worker would start another "kernel".
KERNEL = textwrap.dedent("""\
    import sys, types
    print("kernel started", flush=True)
    user_main = types.ModuleType("__main__")
    user_main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = user_main
    cell = open(sys.argv[1]).read()
    exec(compile(cell, "<cell 1>", "exec"), user_main.__dict__)
    """)


def _command(how: str, tmp_path: Path) -> tuple[list[str], dict]:
    py = sys.executable
    if how == "stdin":
        return [py, "-"], {"input": SCRIPT}
    if how == "dash_c":
        return [py, "-c", SCRIPT], {}
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    if how == "unguarded_script":
        return [py, str(script)], {}
    (tmp_path / "fake_kernel.py").write_text(KERNEL)
    return [py, "-m", "fake_kernel", str(script)], {}


@pytest.mark.parametrize("how", ["stdin", "dash_c", "unguarded_script", "notebook"])
def test_generate_with_workers_from_any_main(tmp_path, how):
    cmd, extra = _command(how, tmp_path)
    ran = tmp_path / "ran.txt"
    env = dict(os.environ, RAN_FILE=str(ran), OUT=str(tmp_path / "out"),
               PYTHONPATH=os.pathsep.join(
                   [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S, **extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert ran.read_text() == "ran\n", "the script's body ran more than once"
    if how == "notebook":
        assert proc.stdout.count("kernel started") == 1
    assert "RESULT " in proc.stdout, (proc.stdout[-2000:], proc.stderr[-2000:])
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["workers"] == 2 and result["rows"] > 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    chunks = {f["path"].rsplit("_", 2)[1] for f in manifest["files"]
              if f["kind"] == "data"}
    assert chunks == {"c00000", "c00001", "c00002", "c00003"}       # every unit wrote
    assert manifest["rows"] == result["rows"]


def test_workers_run_the_parents_cdrexp_not_one_in_the_current_directory(tmp_path):
    """A decoy cdrexp package in the current directory (as when a benchmark runs an old
    revision with the working tree as its directory): the parent imports the real one
    (its script's directory and PYTHONPATH come first for it), and so must the workers,
    though the forkserver runs as `python -c`, which puts the current directory first."""
    decoy = tmp_path / "cwd" / "cdrexp"
    decoy.mkdir(parents=True)
    marker = tmp_path / "decoy-imported"
    (decoy / "__init__.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nraise ImportError('the decoy cdrexp')\n")
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    real_root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, RAN_FILE=str(tmp_path / "ran.txt"), OUT=str(tmp_path / "out"),
               PYTHONPATH=str(real_root))
    env.pop("PYTHONSAFEPATH", None)
    proc = subprocess.run([sys.executable, str(script)], cwd=decoy.parent, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not marker.exists(), "a worker imported the cdrexp of the current directory"
    assert json.loads(proc.stdout.split("RESULT ", 1)[1])["workers"] == 2


def test_unguarded_script_with_its_own_dask_cluster(tmp_path):
    """executor=dask without an address starts a LocalCluster, whose nannies start their
    workers with multiprocessing: they must not re-run the script either."""
    pytest.importorskip("distributed")
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT.replace(
        "model=ModelConfig(chunk_size=500))",
        "model=ModelConfig(chunk_size=500),\n"
        "                                 executor=ExecutorConfig(name='dask'))").replace(
        "from cdrexp.config import GeneratorConfig, ModelConfig",
        "from cdrexp.config import ExecutorConfig, GeneratorConfig, ModelConfig"))
    ran = tmp_path / "ran.txt"
    env = dict(os.environ, RAN_FILE=str(ran), OUT=str(tmp_path / "out"))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ran.read_text() == "ran\n", "the script's body ran more than once"
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert result["workers"] == 2 and result["rows"] > 0
