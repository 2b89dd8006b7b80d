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


def run_fake(side, tmp_path, mode, counter=None):
    work = tmp_path / f"work-{mode}"
    work.mkdir()
    out = work / "out"
    config = work / "config.yaml"
    config.write_text(f"out: {out}\nmode: {mode}\n")
    m = measure_run(side, config, out, work / "run.log", counter)
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


def test_side_env_puts_the_side_alone_on_the_path(tmp_path):
    side = fake_side(tmp_path)
    env = side_env(side, {"PYTHONPATH": "/elsewhere", "MLFLOW_RUN_ID": "x",
                          "CDREXP_WORKER_PROFILER": "pyspy", "HOME": "/h"})
    assert env["PYTHONPATH"] == str(side.root)
    assert env["PYTHONHASHSEED"] == "0"
    assert "MLFLOW_RUN_ID" not in env and "CDREXP_WORKER_PROFILER" not in env
    assert env["HOME"] == "/h"


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
