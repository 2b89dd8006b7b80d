"""End to end through a real (temporary) MLflow store: verdicts, gate exit codes, ids,
unreachable stores, trends, export and plot."""
import csv
import subprocess
import sys

import numpy as np
import pytest

from cdrexp.compare._analysis import EXPORT_COLUMNS
from cdrexp.compare.cli import main

from compare_synthetic import HOUR_MS, job_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(synth_store, scenarios, capsys):
    """Call the CLI in-process on an experiment of the synthetic store."""
    def _run(exp: str, *args: str, uri: str | None = None):
        code = main(["--tracking-uri", uri or synth_store.uri, "--experiment", exp, *args])
        out, err = capsys.readouterr()
        return code, out, err
    return _run


def _verdicts(out: str) -> dict[str, str]:
    """Configuration label -> verdict, from the comparison table."""
    found = {}
    for line in out.splitlines():
        for label in ("subs=1000 ", "subs=10000 "):
            if label in line:
                found[label.strip()] = next(v for v in ("SLOWER", "FASTER", "OK")
                                            if f" {v} " in f" {line} ")
    return found


def test_injected_slowdown_is_slower_and_fails_the_gate(run):
    code, out, err = run("slowdown", "--compare", "--fail-on-regression", "10")
    assert code == 1
    assert _verdicts(out) == {"subs=1000": "SLOWER", "subs=10000": "OK"}
    assert "REGRESSION: subs=1000 workers=1 csv" in err
    assert "1111111 -> 2222222" in out          # commits differ: both shown short


def test_slowdown_beyond_the_gate_threshold_passes(run):
    code, out, _ = run("slowdown", "--compare", "--fail-on-regression", "60")
    assert code == 0
    # one threshold everywhere: the gate's is the table's
    assert _verdicts(out) == {"subs=1000": "OK", "subs=10000": "OK"}
    assert "matched at threshold 60%" in out and "threshold 5%" not in out
    assert "gate: no configuration slower by more than 60%" in out


def test_a_threshold_that_disagrees_with_the_gate_is_refused(run):
    with pytest.raises(SystemExit) as exc:
        run("slowdown", "--threshold", "5", "--fail-on-regression", "10")
    assert exc.value.code == 2


def test_the_same_commit_on_both_sides_is_drift_not_a_finding(synth_store, run):
    """Two sweeps of the same commit and config, the second 80 % slower (a loaded
    machine): no FASTER/SLOWER, the gate does not fail, and cdrexp.ab is named."""
    rng = np.random.default_rng(5)
    exp = synth_store.experiment("drift")
    synth_store.add_sweep(exp, {1000: 0.5, 10000: 2.0}, start_ms=0, rng=rng)
    synth_store.add_sweep(exp, {1000: 0.9, 10000: 3.6}, start_ms=HOUR_MS, rng=rng)
    code, out, err = run("drift", "--compare", "--fail-on-regression", "10")
    assert code == 0, err
    assert "SLOWER" not in out and "FASTER" not in out and "REGRESSION" not in err
    assert out.count("DRIFT") >= 3 and "matched at threshold 10%: 2 DRIFT" in out
    assert "machine's drift" in out and "python -m cdrexp.ab" in out
    assert "(2 of 2 ran the same code on both sides: not judged)" in out
    code, out, _ = run("drift", "--trends")
    assert code == 0 and "drift (same commit)" in out and "slower" not in out


def test_faster_run_is_faster_and_passes_the_gate(run):
    code, out, _ = run("speedup", "--compare", "--fail-on-regression", "10")
    assert code == 0
    assert _verdicts(out) == {"subs=1000": "FASTER", "subs=10000": "OK"}


def test_pure_noise_through_the_store_is_ok(run):
    code, out, _ = run("noise", "--compare", "--fail-on-regression", "10")
    assert code == 0
    assert _verdicts(out) == {"subs=1000": "OK", "subs=10000": "OK"}
    assert "@90%" in out                        # the interval is shown with its level


def test_compare_named_ids_prefixes_and_parent_run_ids(run, scenarios):
    sc = scenarios["slowdown"]
    (prev_sweep, prev_parent), (cur_sweep, _) = sc["prev"], sc["cur"]
    code, out, _ = run("slowdown", "--compare", prev_parent, cur_sweep[:6])
    assert code == 0 and _verdicts(out)["subs=1000"] == "SLOWER"
    # reversed order: the current sweep is now "previous", so the change is a speed-up
    code, out, _ = run("slowdown", "--compare", cur_sweep, prev_sweep)
    assert _verdicts(out)["subs=1000"] == "FASTER"


def test_two_named_runs_with_different_configs_are_compared(run, scenarios):
    a, b = scenarios["alone"]["runs"]
    code, out, _ = run("alone", "--compare", a, b)
    assert code == 0
    assert "configs differ" in out and "FASTER" in out


def test_latest_shows_the_newest_sweep_and_its_system(run, scenarios):
    code, out, _ = run("noise", "--latest")
    assert code == 0
    assert scenarios["noise"]["cur"][0] in out      # newest sweep, not the failed run
    assert "Synthetic CPU 9000" in out and "2 usable / 4 logical" in out
    assert "subs=10000 workers=1 csv" in out
    # default action is --latest
    assert run("noise")[1] == out


def test_trends_show_every_run_and_the_direction(run):
    code, out, _ = run("trend", "--trends")
    assert code == 0
    lines = [ln for ln in out.splitlines() if "2026-01-01" in ln]
    assert len(lines) == 3
    assert "slower" in lines[2] and "slower" not in lines[1]
    assert "first to last +" in out


def test_export_csv_columns_and_rows(run, tmp_path):
    target = tmp_path / "results.csv"
    code, out, _ = run("slowdown", "--export-csv", str(target))
    assert code == 0 and "4 rows written" in out
    with open(target, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == EXPORT_COLUMNS
    assert [r["subscribers"] for r in rows] == ["1000", "10000", "1000", "10000"]
    first = rows[0]
    assert first["workers"] == "1" and first["output_format"] == "csv"
    assert float(first["throughput_subs_per_sec"]) == pytest.approx(
        1000 / float(first["elapsed_seconds"]), rel=1e-4)
    # the runner's peak_pss_mb is in 10^6 bytes (100.0 in the synthetic runs)
    assert int(first["max_memory_bytes"]) == 100 * 10**6
    assert first["git_commit"] == "1" * 40 and first["timestamp"].startswith("2026-01-01")
    assert not list(tmp_path.glob(".results*"))         # no temporary file left


@pytest.mark.parametrize("option, name", [("--export-csv", "x.csv"), ("--plot", "x.png")])
def test_a_missing_directory_is_one_line_and_not_created(run, tmp_path, option, name):
    """Issue 22: the directory was created (and the file written) before."""
    target = tmp_path / "nonexistent" / "dir" / name
    code, out, err = run("trend", option, str(target))
    assert code == 2
    assert err.splitlines() == [f"cdrexp-compare: error: cannot write {target}: "
                                f"{target.parent} is not a directory (create it first)"]
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_exported_files_honour_the_umask(run, tmp_path, umask, mode):
    """Issue 22: they were 0600 whatever the umask (a private temporary file renamed)."""
    import os
    old = os.umask(umask)
    try:
        code, _, _ = run("trend", "--export-csv", str(tmp_path / "r.csv"),
                         "--plot", str(tmp_path / "r.png"))
    finally:
        os.umask(old)
    assert code == 0
    for name in ("r.csv", "r.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_diff_profile_of_a_job_run_says_what_it_is(run, scenarios):
    """Issue 22: one id of a normal run said 'unknown run id'."""
    job = scenarios["alone"]["runs"][0]
    code, _, err = run("alone", "--diff-profile", job)
    assert code == 2
    assert err.splitlines() == [
        f"cdrexp-compare: error: {job!r} is a job run (python -m cdrexp), not an A/B run: "
        "--diff-profile takes two profiled job runs (A B), or one A/B parent run "
        "(python -m cdrexp.ab)"]


def test_ctrl_c_exits_130_as_the_other_tools(run, monkeypatch):
    from cdrexp.compare import _analysis

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(_analysis, "trends", interrupted)
    code, _, err = run("trend", "--trends")
    assert code == 130
    assert err.splitlines() == ["cdrexp-compare: error: interrupted"]


def test_plot_is_a_png(run, tmp_path):
    target = tmp_path / "trend.png"
    code, _, _ = run("trend", "--plot", str(target))
    assert code == 0
    data = target.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000


@pytest.mark.parametrize("exp, args, message", [
    ("empty", ["--latest"], "no finished cdrexp runs"),
    ("empty", ["--compare"], "no finished cdrexp runs"),
    ("slowdown", ["--compare", "nosuchid", "alsonot"], "unknown run or sweep id 'nosuchid'"),
    ("nosuchexperiment", ["--latest"], "no experiment 'nosuchexperiment'"),
])
def test_cannot_answer_exits_2_with_one_line(run, exp, args, message):
    code, _, err = run(exp, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["--compare", "only-one"], ["--threshold", "abc"],
                                  ["--fail-on-regression", "-3"]])
def test_bad_arguments_exit_2(run, args):
    with pytest.raises(SystemExit) as exc:
        run("trend", *args)
    assert exc.value.code == 2


def test_one_group_only_says_what_to_run_instead(synth_store, run):
    """A first day: nothing to compare is not an error; only a gate cannot pass."""
    exp = synth_store.experiment("single")
    synth_store.add_job(exp, job_config(1000), [1.0, 1.1, 0.9], start_ms=0)
    code, out, err = run("single", "--compare")
    assert code == 0 and err == ""
    assert "nothing to compare yet" in out and "python -m cdrexp.ab HEAD~1" in out
    code, _, err = run("single", "--compare", "--fail-on-regression", "10")
    assert code == 2 and "gate cannot decide: nothing to compare yet" in err


@pytest.mark.parametrize("uri_kind", ["missing_dir", "garbage_scheme", "not_a_db"])
def test_unreachable_store_exits_2_and_creates_nothing(run, tmp_path, uri_kind):
    missing = tmp_path / "no" / "such" / "dir"
    if uri_kind == "missing_dir":
        uri = f"sqlite:///{missing / 'mlflow.db'}"
    elif uri_kind == "garbage_scheme":
        uri = "garbage://nowhere"
    else:
        junk = tmp_path / "mlflow.db"
        junk.write_text("this is not a database\n" * 100)
        uri = f"sqlite:///{junk}"
    code, out, err = run("slowdown", "--latest", uri=uri)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "no").exists()


def test_python_dash_m_gate_end_to_end(synth_store):
    proc = subprocess.run([sys.executable, "-m", "cdrexp.compare", "--tracking-uri",
                           synth_store.uri, "--experiment", "slowdown", "--compare",
                           "--fail-on-regression", "10"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "SLOWER" in proc.stdout and "REGRESSION" in proc.stderr


def test_default_store_is_mlflow_db_in_the_working_directory(synth_store, scenarios,
                                                              monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(synth_store.root)
    assert main(["--experiment", "noise", "--latest"]) == 0
    assert scenarios["noise"]["cur"][0] in capsys.readouterr().out
    # the environment variable wins over the working directory
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere/mlflow.db")
    assert main(["--experiment", "noise", "--latest"]) == 2
    assert "elsewhere/mlflow.db" in capsys.readouterr().err
    assert not (synth_store.root / "elsewhere").exists()


def _gate_pair(synth_store, name: str, prev: list[float], cur: list[float], *,
               prev_steps: bool = True, extra_prev=None, extra_cur=None) -> None:
    """An experiment with two lone runs of subs=1000 (and optionally of subs=10000)."""
    exp = synth_store.experiment(name)
    synth_store.add_job(exp, job_config(1000), prev, start_ms=0, wall_steps=prev_steps,
                        sweep_id=f"{name}-a" if extra_prev else None)
    if extra_prev:
        synth_store.add_job(exp, job_config(10000), extra_prev, start_ms=1000,
                            sweep_id=f"{name}-a")
    # another commit: the same code on both sides would be drift, not judged
    synth_store.add_job(exp, job_config(1000), cur, start_ms=HOUR_MS, commit="b" * 40,
                        sweep_id=f"{name}-b" if extra_cur else None)
    if extra_cur:
        synth_store.add_job(exp, job_config(10000), extra_cur, start_ms=HOUR_MS + 1000,
                            sweep_id=f"{name}-b", commit="b" * 40)


@pytest.mark.parametrize("name, prev, cur, prev_steps, why", [
    # 2 vs 2 repeats: the widest interval covers 67 %, whatever the change
    ("gate_two", [1.0, 1.02], [2.0, 2.05], True, "2 vs 2 repeats"),
    # an older run that logged its median only: 1 sample against 3
    ("gate_median", [1.0, 1.01, 0.99], [1.0, 1.02, 0.98], False, "logged only its median"),
])
def test_gate_that_cannot_decide_exits_2_never_0(synth_store, run, name, prev, cur,
                                                  prev_steps, why):
    """In-process (test_python_dash_m_gate_end_to_end runs the gate as a process)."""
    _gate_pair(synth_store, name, prev, cur, prev_steps=prev_steps)
    code, out, err = run(name, "--compare", "--fail-on-regression", "10")
    assert code == 2, out + err
    assert "no configuration slower" not in out
    assert "UNDECIDED: subs=1000 workers=1 csv: " in err and why in err
    assert "gate cannot decide" in err and "Traceback" not in err


def test_decided_regression_wins_over_an_undecided_configuration(synth_store, run):
    # subs=1000: 2 vs 2 (undecidable); subs=10000: 3 vs 3, twice as slow (decided)
    _gate_pair(synth_store, "gate_mixed", [1.0, 1.02], [1.0, 1.01],
               extra_prev=[2.0, 2.02, 1.98], extra_cur=[4.0, 4.1, 3.9])
    code, out, err = run("gate_mixed", "--compare", "--fail-on-regression", "10")
    assert code == 1
    assert "REGRESSION: subs=10000" in err and "UNDECIDED: subs=1000 " in err
