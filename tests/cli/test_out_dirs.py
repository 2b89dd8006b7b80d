"""What a run leaves in ``out`` beside an earlier one's, through the command line (issue
22): a killed multi-day run's stale days, and day directories that are symbolic links."""
import os
import subprocess
import sys

import pytest

TINY = ["repeats=1", "warmup=0", "workers=1", "subs=300", "model.cells=50"]


def cdrexp(cwd, *args):
    return subprocess.run([sys.executable, "-m", "cdrexp", *TINY, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=240)


@pytest.mark.slow
def test_a_killed_runs_later_days_do_not_survive_a_shorter_run(tmp_path):
    out = tmp_path / "data"
    # what a 3-day run killed before its manifest leaves: parts of days 2 and 3
    for day in ("2025-01-02", "2025-01-03"):
        (out / day).mkdir(parents=True)
        (out / day / f"cdr_{day}_c00000_p000.csv").write_text("x\n")
        (out / day / f".cdr_{day}_c00000_p001.csv.tmp-123-abcd").write_text("x\n")
    (out / "2025-01-03" / "notes.txt").write_text("the user's\n")    # not ours: kept
    proc = cdrexp(tmp_path, f"out={out}", "days=1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["2025-01-01", "2025-01-03", "cells.csv",
                                       "manifest.json"]
    assert os.listdir(out / "2025-01-03") == ["notes.txt"]


def test_a_symlinked_day_directory_is_refused_before_any_work(tmp_path):
    out, target = tmp_path / "data", tmp_path / "elsewhere"
    out.mkdir()
    target.mkdir()
    precious = target / "cdr_2025-01-01_c00000_p000.csv"
    precious.write_text("not cdrexp's to delete\n")
    (out / "2025-01-01").symlink_to(target)
    proc = cdrexp(tmp_path, f"out={out}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        f"cdrexp: error: out: {out}/2025-01-01 is a symbolic link; cdrexp writes and "
        "clears its day directories itself and would delete files in the link's target: "
        "remove the link or choose another out"]
    assert precious.read_text() == "not cdrexp's to delete\n"
    assert sorted(os.listdir(tmp_path)) == ["data", "elsewhere"]    # nothing created


def test_a_foreign_manifest_is_refused_before_any_work(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "manifest.json").write_text('{"generator": "someone else"}\n')
    proc = cdrexp(tmp_path, f"out={out}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        f"cdrexp: error: out: {out}/manifest.json exists but was not written by cdrexp; "
        "remove it or choose another out"]
    assert sorted(os.listdir(tmp_path)) == ["data"]
