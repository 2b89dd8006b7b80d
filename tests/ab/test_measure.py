"""One measured run of a side, on fake sides whose ``cdrexp.cli.child`` does one known
thing: burn CPU in an orphaned grandchild, fail, or loop a given number of times."""
import textwrap

import pytest

from cdrexp.ab._measure import (Side, SideFailed, Unavailable, cachegrind_command,
                                check_side, measure_run, side_env)

FAKE_CHILD = textwrap.dedent('''
    import os, sys, time
    cfg = dict(line.split(": ", 1) for line in open(sys.argv[2]).read().splitlines())
    os.makedirs(cfg["out"], exist_ok=True)
    open(os.path.join(cfg["out"], "data.csv"), "w").write("x\\n")
    mode = cfg["mode"]
    if mode == "orphan":
        # a forkserver-like grandchild that outlives this process: burn 0.6 s of CPU
        if os.fork() == 0:
            if os.fork() == 0:
                while time.process_time() < 0.6:
                    pass
                os._exit(0)
            os._exit(0)
        os.wait()
    elif mode == "fail":
        print("progress...", flush=True)
        print("ValueError: boom in the generator", file=sys.stderr)
        sys.exit(3)
    elif mode == "sleep":
        time.sleep(120)
    elif mode == "stubborn":
        # ignores SIGTERM, and so does a grandchild: only the process group's SIGKILL
        # stops them
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            open(cfg["out"] + "-grandchild.pid", "w").write(str(os.getpid()))
            time.sleep(120)
            os._exit(0)
        print("started, now hanging", flush=True)
        time.sleep(120)
    elif mode.startswith("loop"):
        for _ in range(int(mode[4:])):
            pass
''')


def fake_side(tmp_path, label="base", child=FAKE_CHILD, init=""):
    root = tmp_path / f"side-{label}"
    (root / "cdrexp" / "cli").mkdir(parents=True)
    (root / "cdrexp" / "__init__.py").write_text(init)
    (root / "cdrexp" / "cli" / "__init__.py").write_text("")
    if child is not None:
        (root / "cdrexp" / "cli" / "child.py").write_text(child)
    return Side(label, "HEAD", "f" * 40, root)


def run_fake(side, tmp_path, mode, counter=None, timeout=None, keep=None):
    work = tmp_path / f"work-{mode}"
    work.mkdir(exist_ok=True)
    out = work / "out"
    config = work / "config.yaml"
    config.write_text(f"out: {out}\nmode: {mode}\n")
    m = measure_run(side, config, out, work / "run.log", counter, timeout, keep)
    assert not out.exists()                 # the output is deleted after each run
    return m


def test_cpu_of_orphaned_grandchildren_is_counted(tmp_path):
    side = fake_side(tmp_path)
    check_side(side)
    m = run_fake(side, tmp_path, "orphan")
    # the grandchild burnt 0.6 s after its parent exited: lost without the subreaper
    assert m.cpu_s >= 0.6
    assert m.value("cpu") == m.cpu_s and m.value("wall") == m.wall_s > 0
    with pytest.raises(ValueError, match="not counted under cachegrind"):
        m.value("instructions")


def test_a_failing_side_is_one_line_with_its_error(tmp_path):
    side = fake_side(tmp_path)
    with pytest.raises(SideFailed) as err:
        run_fake(side, tmp_path, "fail")
    line = str(err.value)
    assert "\n" not in line
    assert "base HEAD (ffffffffff) failed (exit 3): ValueError: boom in the generator" in line


def test_check_side_needs_the_child_module_and_an_importable_package(tmp_path):
    with pytest.raises(SideFailed, match="has no cdrexp/cli/child.py"):
        check_side(fake_side(tmp_path, "base", child=None))
    with pytest.raises(SideFailed, match="importing cdrexp failed: .*RuntimeError: broken"):
        check_side(fake_side(tmp_path, "candidate", init="raise RuntimeError('broken')"))


def test_a_hanging_run_is_stopped_at_its_timeout_with_all_its_processes(tmp_path,
                                                                         monkeypatch):
    import time
    from cdrexp.ab import _measure
    from cdrexp.ab._measure import RunTimedOut
    monkeypatch.setattr(_measure, "STOP_GRACE_S", 1.0)
    side = fake_side(tmp_path)
    keep = tmp_path / "kept"
    work = tmp_path / "work-stubborn"
    work.mkdir()
    pid_file = work / "out-grandchild.pid"
    t0 = time.monotonic()
    with pytest.raises(RunTimedOut) as err:
        run_fake(side, tmp_path, "stubborn", timeout=2.0, keep=keep)
    assert time.monotonic() - t0 < 60
    line = str(err.value)
    assert "\n" not in line and "took longer than 2 s and was stopped" in line
    kept = keep / "base-run.log"
    assert f"(log: {kept})" in line and "now hanging" in kept.read_text()
    assert not _measure._RUNNING
    # the grandchild, which ignored SIGTERM too, went with the run's process group
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    import os
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:                    # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_a_failing_runs_log_is_kept_where_the_message_says(tmp_path):
    side = fake_side(tmp_path)
    with pytest.raises(SideFailed) as err:
        run_fake(side, tmp_path, "fail", keep=tmp_path / "kept")
    kept = tmp_path / "kept" / "base-run.log"
    assert str(err.value).endswith(f"(log: {kept})")
    assert "boom in the generator" in kept.read_text()


def test_side_env_puts_the_side_alone_on_the_path(tmp_path):
    side = fake_side(tmp_path)
    given = {"PYTHONPATH": "/elsewhere", "MLFLOW_RUN_ID": "x", "PYTHONHASHSEED": "0",
             "CDREXP_WORKER_PROFILER": "pyspy", "HOME": "/h", "VIRTUAL_ENV": "/v"}
    env = side_env(side, given)
    assert env["PYTHONPATH"] == str(side.root)
    assert "MLFLOW_RUN_ID" not in env and "CDREXP_WORKER_PROFILER" not in env
    assert "VIRTUAL_ENV" not in env
    assert env["HOME"] == "/h"
    # cpu and wall: a random hash seed per process, even if the caller fixed one;
    # instructions: the same seed everywhere, so counts repeat
    assert "PYTHONHASHSEED" not in env
    assert side_env(side, given, fixed_hash_seed=True)["PYTHONHASHSEED"] == "0"


def test_hash_seed_differs_between_runs_of_cpu_and_is_fixed_for_instructions(tmp_path):
    import subprocess
    import sys
    side = fake_side(tmp_path)
    probe = [sys.executable, "-c", "print(hash('cdrexp'))"]

    def hashes(fixed):
        return {subprocess.run(probe, env=side_env(side, fixed_hash_seed=fixed),
                               capture_output=True, text=True).stdout for _ in range(4)}
    assert len(hashes(False)) > 1
    assert len(hashes(True)) == 1


@pytest.mark.slow
def test_instruction_counts_are_exact_enough_to_see_a_loop(tmp_path):
    try:
        counter = cachegrind_command()
    except Unavailable as exc:
        pytest.skip(str(exc))
    side = fake_side(tmp_path)
    counts = [run_fake(side, tmp_path, f"loop{n}", counter).instructions
              for n in (0, 300_000, 600_000)]
    one, two = counts[1] - counts[0], counts[2] - counts[0]
    assert one > 300_000                  # a Python loop step is many instructions
    assert two == pytest.approx(2 * one, rel=0.02)
