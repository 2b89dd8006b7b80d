"""``--diff-profile A B`` through a real (temporary) MLflow store: the grown function
first, the files logged on B's run, and one line with exit 2 where it cannot answer."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cdrexp.compare.cli import main
from cdrexp.tracking import names

from compare_synthetic import T0_MS, HOUR_MS, job_config, noisy_samples

sys.path.insert(0, str(Path(__file__).parents[1] / "profilers"))
from profiler_helpers import write_profile  # noqa: E402


@pytest.fixture(scope="module")
def runs(synth_store, tmp_path_factory):
    s, rng = synth_store, np.random.default_rng(5)
    tmp = tmp_path_factory.mktemp("profiles")
    exp = s.experiment("profiles")

    def job(i: int, profiler: str, weights=None, workers: int = 1) -> str:
        run_id = s.add_job(exp, job_config(1000, workers=workers), noisy_samples(rng, 1.0),
                           start_ms=T0_MS + i * HOUR_MS)
        s.client.set_tag(run_id, names.TAG_PROFILER, profiler)
        if weights:
            s.client.set_tag(run_id, names.TAG_PROFILER_STATUS, "ok")
            d = tmp / str(i)
            d.mkdir()
            write_profile(d / "profile.speedscope.json", 100 * (i + 1), weights)
            s.client.log_artifact(run_id, str(d / "profile.speedscope.json"),
                                  names.A_PROFILE_DIR)
        return run_id

    out = {"exp": exp,
           "a": job(0, "pyspy", {"parse": 40, "planted": 20, "write": 40}),
           "b": job(1, "pyspy", {"parse": 80, "planted": 160, "write": 80}),
           "none": job(2, "none"),
           "perf": job(3, "perf", {"parse": 1, "planted": 1}),
           "other_config": job(4, "pyspy", {"parse": 10, "planted": 30}, workers=2)}
    return out


@pytest.fixture
def cli(synth_store, runs, capsys):
    def _run(*args: str):
        code = main(["--tracking-uri", synth_store.uri, "--experiment", "profiles",
                     "--diff-profile", *args])
        out, err = capsys.readouterr()
        return code, out, err
    return _run


def _download(synth_store, run_id: str, tmp_path) -> Path:
    return Path(synth_store.client.download_artifacts(run_id, "profile_diff", str(tmp_path)))


def test_ranks_the_grown_function_first_and_logs_on_b(cli, runs, synth_store, tmp_path):
    code, out, err = cli(runs["a"], runs["b"][:10])        # a unique prefix works
    assert code == 0, err
    assert err == ""
    first_row = next(ln for ln in out.splitlines() if "(cdrexp/" in ln)
    assert "planted (cdrexp/model/records.py)" in first_row and "+30.00 pts" in first_row
    files = _download(synth_store, runs["b"], tmp_path)
    assert {p.name for p in files.iterdir()} == {"diff_flamegraph.svg", "functions.txt",
                                                 "functions.csv", "diff.json"}
    rows = list(csv.DictReader((files / "functions.csv").open()))
    assert rows[0]["function"] == "planted" and float(rows[0]["self_change_pts"]) == 30
    meta = json.loads((files / "diff.json").read_text())
    assert meta["a"]["run_id"] == runs["a"] and meta["b"]["run_id"] == runs["b"]
    assert meta["warnings"] == []
    text = (files / "functions.txt").read_text()
    assert "planted (cdrexp/model/records.py)" in text and "\x1b[" not in text
    assert "planted (cdrexp/model/records.py)" in (files / "diff_flamegraph.svg").read_text()
    # nothing was logged on A
    a_artifacts = [f.path for f in synth_store.client.list_artifacts(runs["a"])]
    assert "profile_diff" not in a_artifacts


def test_different_configurations_warn_and_still_diff(cli, runs):
    code, out, err = cli(runs["a"], runs["other_config"])
    assert code == 0
    assert err.count("\n") == 1 and "warning: the runs have different configurations" in err
    assert "planted" in out


@pytest.mark.parametrize("which, expect", [
    ("none", "has no sampled profile: it ran with profiler=none"),
    ("unknown", "unknown run id 'ffffffffffff'"),
    ("perf", "was profiled with pyspy, run"),
])
def test_cannot_answer_in_one_line_exit_2(cli, runs, which, expect):
    other = "ffffffffffff" if which == "unknown" else runs[which]
    code, out, err = cli(runs["a"], other)
    assert code == 2
    assert expect in err and err.count("\n") == 1, err
    assert out == ""


def test_a_run_whose_profile_is_missing_says_so(cli, runs, synth_store):
    # profiler=pyspy was asked, but it was unavailable: no profile artifact
    rid = synth_store.add_job(runs["exp"], job_config(1000), [1.0, 1.1, 1.0],
                              start_ms=T0_MS + 9 * HOUR_MS)
    synth_store.client.set_tag(rid, names.TAG_PROFILER, "pyspy")
    synth_store.client.set_tag(rid, names.TAG_PROFILER_STATUS, "unavailable: no ptrace")
    code, _, err = cli(rid, runs["b"])
    assert code == 2
    assert "has no profile/profile.speedscope.json (profiler unavailable: no ptrace)" in err


def test_one_id_must_be_an_ab_run_and_three_are_refused(cli, runs):
    code, _, err = cli(runs["a"])               # a job run, not an A/B's parent
    assert code == 2 and "is a job run (python -m cdrexp), not an A/B run" in err
    code, _, err = cli("f" * 32)                # no run at all
    assert code == 2 and "one id must be an A/B's parent run" in err
    code, _, err = cli(runs["a"], runs["b"], runs["b"])
    assert code == 2 and "two run ids (A B) or one A/B run, got 3" in err


def test_kernel_frames_keep_their_brackets_in_the_tables():
    from rich.console import Console

    from cdrexp.compare._profile_diff import tables
    from cdrexp.profilers._diff import FunctionShare, ProfileDiff
    f = FunctionShare("clear_page_erms", "[kernel.kallsyms]", 0.03, 0.08, 0.03, 0.08)
    console = Console(record=True, width=200)
    for t in tables(ProfileDiff([f], {}, {}, 1, 1), 5):
        console.print(t)
    assert "clear_page_erms ([kernel.kallsyms])" in console.export_text()
