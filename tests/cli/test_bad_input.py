"""Bad command lines: exit 2, one line naming the problem, nothing run, nothing created.

Every case runs ``python -m cdrexp`` in a fresh empty directory, as a user would.
"""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

# (command line, text the one line must contain: the key or option it is about)
CASES = [
    (["subs=abc"], "subs: must be an integer"),
    (["subs=-1"], "subs: must be >= 1"),
    (["subs=1.5"], "subs: must be an integer"),
    (["subs=50000000"], "subs: 50000000 subscribers do not fit"),
    (["workers=-3"], "workers: must be >= 0"),
    (["days=0"], "days: must be >= 1"),
    (["repeats=0"], "repeats: must be >= 1"),
    (["warmup=-1"], "warmup: must be >= 0"),
    (["start=2025-13-01"], "start: must be a date"),
    (["model.tz_name=Mars/Olympus"], "model.tz_name: unknown time zone"),
    (["model.call_dispositions.ANSWERED=0.5"],
     "model.call_dispositions: probabilities must sum to 1"),
    (["model.diurnal_weekday=[" + ",".join(["1.0"] * 23) + "]"],
     "model.diurnal_weekday: must have 24 values, got 23"),
    (["model.sms_segments=[0.5,0.6,0.1]"], "model.sms_segments: probabilities must sum"),
    (["model.cells=many"], "model.cells: must be an integer"),
    (["profiler=nonesuch"], "profiler: unknown option 'nonesuch'"),
    (["output=xml"], "output: unknown option 'xml'"),
    (["output=csv_gz", "output.compression_level=9"],
     "output.compression_level: must be in [0, 3] for csv_gz with gzip_backend isal"),
    (["output=csv_gz", "output.gzip_backend=pigz"], "output.gzip_backend: unknown value"),
    (["model=nonesuch"], "model: unknown option 'nonesuch'"),
    (["+experiment=nonesuch"], "experiment: unknown option 'nonesuch'"),
    (["experiment=ci"], "experiment: not in the defaults list"),
    (["nonesuch=1"], "nonesuch: unknown key"),
    (["+nonesuch=1"], "nonesuch: unknown key"),
    (["model.nonesuch=1"], "model.nonesuch: unknown key"),
    (["out=/proc/cdrexp-out"], "out: '/proc/cdrexp-out' is not writable"),
    (["out={a_file}/x"], "is not writable"),
    (["subs=1000,2000"], "subs: '1000,2000' is several values; add -m"),
    (["subs=]"], "subs=]: not a valid override"),
    (["--nonesuch"], "unrecognized arguments: --nonesuch"),
    (["-m", "subs=1000,-5"], "subs: must be >= 1, got -5 (job #1: subs=-5)"),
    (["-m", "+experiment=ci", "days=0"], "days: must be >= 1, got 0 (job #0"),
]


def _run(args, cwd):
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "cdrexp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_at_least_fifteen_cases():
    assert len(CASES) >= 15


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case in its own empty directory, a few at a time (each is a Python start)."""
    a_file = tmp_path_factory.mktemp("file") / "plain_file"
    a_file.write_text("not a directory\n")
    jobs = []
    for i, (args, _) in enumerate(CASES):
        cwd = tmp_path_factory.mktemp(f"case{i}")
        jobs.append(([a.format(a_file=a_file) for a in args], cwd))
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda j: (_run(*j), j[1]), jobs))
    return done


@pytest.mark.parametrize("i", range(len(CASES)),
                         ids=[" ".join(a) for a, _ in CASES])
def test_bad_command_line(results, i):
    proc, cwd = results[i]
    expected = CASES[i][1]
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cdrexp: error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
    # nothing created: no Hydra run directory, no tracking store, no data
    assert sorted(os.listdir(cwd)) == []
