"""Bad command lines: exit 2, one line naming the problem, nothing run, nothing created.

Every case runs in a fresh empty directory through ``cdrexp.cli.main.main``, the function
``python -m cdrexp`` calls, in this process (each Python start is ~0.7 s of CPU: 60 of
them were a minute of the suite's); ``END_TO_END`` cases, one per kind of check, also run
as ``python -m cdrexp`` processes, as a user would, for the exit code and the one line
on the real stderr.
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
    # issue 14: the whole run's dates, before the run starts
    (["days=3000000"], "days: 3000000 days from 2025-01-01 run past 9999-12-30"),
    (["start=9999-12-31", "days=2"], "start: must be between 0001-01-02 and 9999-12-30"),
    (["start=0001-01-01"], "start: must be between 0001-01-02 and 9999-12-30"),
    # issue 14: what Hydra's lexer cannot read, said in terms of the command line
    (["description=héllo"], "description=héllo: 'é' is allowed only in a quoted value: "
                            "write description='héllo'"),
    (["sübs=1"], "sübs=1: 'ü' in a key: keys are ASCII names"),
    # issue 22: values that are not finite, or beyond what the generator can honour
    (["model.avg_calls_per_user=inf"], "model.avg_calls_per_user: must be a finite number"),
    (["model.avg_calls_per_user=1e300"],
     "model.avg_calls_per_user: must be in [0, 1_000_000] (per day), got 1e+300"),
    (["model.avg_sms_per_user=inf"], "model.avg_sms_per_user: must be a finite number"),
    (["model.activity_sigma=inf"], "model.activity_sigma: must be a finite number"),
    (["model.activity_sigma=20"], "model.activity_sigma: must be in [0, 5]"),
    (["model.contacts_mean=inf"], "model.contacts_mean: must be a finite number"),
    (["model.call_duration_quantiles.p90=inf"],
     "model.call_duration_quantiles.p90: must be a finite number"),
    (["model.call_duration_quantiles.p50=1e9"],
     "model.call_duration_quantiles.p50: must be in (0, 3_600]"),
    (["model.data_rat_profiles.LTE.downlink_mean=nan"],
     "model.data_rat_profiles.LTE.downlink_mean: must be a finite number"),
    (["model.diurnal_weekday=[" + ",".join(["1.0"] * 23) + ",inf]"],
     "model.diurnal_weekday: must be a finite number"),
    # issue 22: names longer than a file name, numbers longer than Python converts
    (["+experiment=" + "a" * 255], "experiment: a name of 255 characters is too long"),
    (["model." + "k" * 255 + "=1"], "a name of 255 characters is too long"),
    (["subs=" + "9" * 5000], "subs: a number of 5000 digits is out of range"),
    (["out=/tmp/" + "o" * 300], "a name in it is 300 bytes long, more than 255"),
    (["-m", "subs=1," + "9" * 5000], "subs: a number of 5000 digits is out of range"),
    # issue 22: the run's estimated memory and output against this machine
    (["subs=100000", "model.avg_data_sessions_per_user=100000"],
     "subs: the run needs ~"),
    (["subs=1000000", "days=3000"], "out: the run writes ~"),
    (["-m", "subs=１０,20"], "'１' is allowed only in a quoted value"),
    # issue 14: the worker cap (20,000 units of one subscriber)
    (["subs=20000", "model.chunk_size=1", "workers=10000"],
     "workers: 10000 worker processes (of 20000 units) is more than this machine holds"),
    # issue 14: the tracking store, checked before anything is created
    (["tracking.uri=ftp://x"], "tracking.uri: MLflow cannot track to 'ftp://x'"),
    (["tracking.uri=http://127.0.0.1:9"], "tracking store http://127.0.0.1:9 (tracking.uri)"),
]


# one case of each kind of check, run as a process too: the argument parser, a value,
# the lexer, a sweep's job, the machine (a directory not writable), the tracking store
END_TO_END = ["--nonesuch", "subs=abc", "description=héllo", "-m subs=1000,-5",
              "out=/proc/cdrexp-out", "tracking.uri=http://127.0.0.1:9"]


def _run(args, cwd):
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "cdrexp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _args(i, a_file):
    return [a.format(a_file=a_file) for a in CASES[i][0]]


@pytest.fixture(scope="module")
def a_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("file") / "plain_file"
    path.write_text("not a directory\n")
    return path


def _assert_refused(i, returncode, stdout, stderr, cwd):
    expected = CASES[i][1]
    lines = stderr.splitlines()
    assert returncode == 2, (returncode, stderr)
    assert len(lines) == 1, stderr
    assert lines[0].startswith("cdrexp: error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in stderr + stdout
    assert stdout == ""
    # nothing created: no Hydra run directory, no tracking store, no data
    assert sorted(os.listdir(cwd)) == []


@pytest.mark.parametrize("i", range(len(CASES)),
                         ids=[" ".join(a) for a, _ in CASES])
def test_bad_command_line(i, a_file, tmp_path, monkeypatch, capsys):
    from cdrexp.cli.main import main
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = main(_args(i, a_file))
    out, err = capsys.readouterr()
    _assert_refused(i, code, out, err, cwd)


@pytest.fixture(scope="module")
def processes(tmp_path_factory, a_file):
    """The END_TO_END cases as ``python -m cdrexp``, each in its own empty directory, a
    few at a time."""
    jobs = []
    for i in [n for n, (a, _) in enumerate(CASES) if " ".join(a) in END_TO_END]:
        jobs.append((i, tmp_path_factory.mktemp(f"case{i}")))
    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(lambda j: (j[0], (_run(_args(j[0], a_file), j[1]), j[1])),
                             jobs))


@pytest.mark.parametrize("case", END_TO_END)
def test_bad_command_line_as_a_process(processes, case):
    (i,) = [n for n, (a, _) in enumerate(CASES) if " ".join(a) == case]
    proc, cwd = processes[i]
    _assert_refused(i, proc.returncode, proc.stdout, proc.stderr, cwd)


def _unwritable_dir(tmp_path):
    """A directory this process cannot write in: a read-only one, or (as root, who
    writes anywhere chmod allows) /proc."""
    ro = tmp_path / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    for candidate in (ro, "/proc"):
        try:
            open(os.path.join(candidate, "probe"), "w").close()
        except OSError:
            return str(candidate)
        os.unlink(os.path.join(candidate, "probe"))
    pytest.skip("no directory here refuses writes")


@pytest.mark.parametrize("args", [["subs=100", "out={tmp}/data"], ["-m", "subs=100,200"]],
                         ids=["run with out elsewhere", "sweep"])
def test_a_read_only_working_directory_is_one_line(tmp_path, args):
    """Hydra creates outputs/ (multirun/) there first: a traceback, or with -m minutes of
    retries, before the change."""
    cwd = _unwritable_dir(tmp_path)

    def listing():     # /proc's entries of processes come and go
        return sorted(n for n in os.listdir(cwd) if not n.isdigit())

    before = listing()
    proc = _run([a.format(tmp=tmp_path) for a in args], cwd)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith(f"cdrexp: error: working directory {cwd} is not writable")
    assert "run it from a writable directory" in lines[0]
    assert listing() == before
    assert not (tmp_path / "data").exists()


def test_a_directory_where_the_store_should_be_is_one_line(tmp_path):
    (tmp_path / "mlflow.db").mkdir()
    proc = _run(["subs=100"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        f"cdrexp: error: tracking store sqlite:///{tmp_path}/mlflow.db: {tmp_path}/mlflow.db "
        "is not a file (a SQLite database file is needed there)"]
    assert sorted(os.listdir(tmp_path)) == ["mlflow.db"]


def test_check_resources_false_lets_a_run_that_does_not_fit_through(tmp_path, monkeypatch):
    """The way out the refusal names (issue 22): the command line is accepted."""
    from cdrexp.cli.precheck import check_command_line
    monkeypatch.chdir(tmp_path)
    args = ["subs=100000", "model.avg_data_sessions_per_user=100000", "workers=2"]
    with pytest.raises(Exception, match="the run needs ~"):
        check_command_line(args)
    (cfg,) = check_command_line(args + ["check_resources=false"])
    assert cfg.check_resources is False and cfg.model.avg_data_sessions_per_user == 100000


def test_a_refused_command_imports_no_heavy_library(tmp_path):
    """Bad input is refused before any work: neither `cdrexp` nor `cdrexp.compare` imports
    MLflow, scipy, pandas or pyarrow (seconds of CPU) to say so."""
    code = """if True:
        import contextlib, io, sys
        from cdrexp.cli.main import main
        from cdrexp.compare.cli import main as compare_main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            codes = [main(["subs=abc"]), main(["--nonesuch"])]
            try:
                codes.append(compare_main(["--nonesuch"]))
            except SystemExit as exc:   # argparse's exit, as under python -m
                codes.append(exc.code)
        heavy = sorted(m for m in ("mlflow", "scipy", "pandas", "pyarrow") if m in sys.modules)
        print(codes, heavy)
        """
    import cdrexp
    here = os.path.dirname(os.path.dirname(cdrexp.__file__))   # this checkout's cdrexp
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": here})
    assert proc.stdout.split("\n")[0] == "[2, 2, 2] []", proc.stdout + proc.stderr
