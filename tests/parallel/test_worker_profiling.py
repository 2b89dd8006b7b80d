"""worker_profiling: profiling started inside worker processes, from an environment variable."""
from __future__ import annotations

import os
import pstats
import subprocess
import sys

import pytest

from cdrexp.parallel import worker_profiling


def _run(code: str, spec: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop(worker_profiling.ENV_VAR, None)
    if spec is not None:
        env[worker_profiling.ENV_VAR] = spec
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)


WORK = """
import numpy as np
from cdrexp.parallel import worker_profiling
def run_unit():
    return float(np.sort(np.random.default_rng(1).random(2_000_000))[0])
"""


def test_unset_means_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(worker_profiling.ENV_VAR, raising=False)
    stop = worker_profiling.start()
    stop()
    assert not list(tmp_path.iterdir())


def test_cprofile_writes_worker_pstats_on_stop(tmp_path):
    out = _run(WORK + "stop = worker_profiling.start()\nrun_unit()\nassert worker_profiling.start() is "
               "stop\nstop()\nstop()\nprint('ok')", f"cprofile:{tmp_path}")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
    files = list(tmp_path.glob("worker-*.pstats"))
    assert len(files) == 1                         # a second start() joined the first
    funcs = {f for (_, _, f) in pstats.Stats(str(files[0])).stats}
    assert "run_unit" in funcs


def test_memray_tracker_sees_the_worker_allocations(tmp_path):
    import memray
    out = _run(WORK + "stop = worker_profiling.start()\nrun_unit()\nstop()", f"memray:{tmp_path}")
    assert out.returncode == 0, out.stderr
    files = list(tmp_path.glob("worker-*.bin"))
    assert len(files) == 1
    meta = memray.FileReader(str(files[0])).metadata
    assert meta.peak_memory >= 16_000_000          # the 2M float64 array and its sort copy


@pytest.mark.parametrize("kind,suffix", [("cprofile", ".pstats"), ("memray", ".bin")])
def test_multiprocessing_worker_that_never_calls_stop_still_saves(tmp_path, kind, suffix):
    """A forkserver worker leaving through multiprocessing runs the registered stop."""
    code = ("import multiprocessing as mp\nfrom cdrexp.parallel import worker_profiling\n"
            "if __name__ == '__main__':\n"
            "    p = mp.get_context('forkserver').Process(target=worker_profiling.start)\n"
            "    p.start(); p.join(); assert p.exitcode == 0, p.exitcode")
    out = _run(code, f"{kind}:{tmp_path}")
    assert out.returncode == 0, out.stderr
    assert len(list(tmp_path.glob(f"worker-*{suffix}"))) == 1


def test_bad_spec_prints_one_line_and_the_worker_goes_on(tmp_path):
    out = _run("from cdrexp.parallel import worker_profiling\nstop = worker_profiling.start()\n"
               "stop()\nprint('ran')", "nonsuch:/tmp")
    assert out.returncode == 0 and "ran" in out.stdout
    assert out.stderr.count("\n") == 1 and worker_profiling.ENV_VAR in out.stderr


def test_worker_file_does_not_clobber(tmp_path):
    first = worker_profiling.worker_file(tmp_path, ".bin")
    first.write_text("x")
    second = worker_profiling.worker_file(tmp_path, ".bin")
    assert second != first and second.name.startswith(f"worker-{os.getpid()}-")


def test_profilers_without_worker_hook_clear_an_inherited_switch():
    from cdrexp.profilers._common import child_env

    env = child_env({"PATH": "/bin", worker_profiling.ENV_VAR: "cprofile:/tmp/stale"})
    assert worker_profiling.ENV_VAR not in env and env["PATH"] == "/bin"
    env = child_env({worker_profiling.ENV_VAR: "cprofile:/tmp/stale"},
                    **{worker_profiling.ENV_VAR: "memray:/tmp/new"})
    assert env[worker_profiling.ENV_VAR] == "memray:/tmp/new"
