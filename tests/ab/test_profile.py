"""``cdrexp.ab ... profiler=pyspy``: after a decided verdict, one profiled run per side
and their differential profile; nothing when undecided; the verdict never depends on it."""
from __future__ import annotations

import csv
import subprocess
import sys
from types import SimpleNamespace

import pytest

from cdrexp.ab._profile import ProfilingObserver
from cdrexp.ab._stats import NOT_SLOWER, SLOWER, UNDECIDED
from cdrexp.profilers._common import find_tool

from .planted_repo import planted_repo


class Recorder:
    def __init__(self):
        self.events = []

    def started(self, result):
        self.events.append("started")

    def paired(self, result, pair):
        self.events.append("paired")

    def finished(self, result):
        self.events.append("finished")

    def end(self, status, error=None):
        self.events.append(f"end {status}")


@pytest.mark.parametrize("verdict, profiles", [(UNDECIDED, False), (SLOWER, True),
                                               (NOT_SLOWER, True)])
def test_profiles_only_after_a_decided_verdict_and_passes_events_on(verdict, profiles,
                                                                    tmp_path):
    inner, said, calls = Recorder(), [], []
    obs = ProfilingObserver(inner, tmp_path, said.append)
    obs.profile = calls.append
    result = SimpleNamespace(verdict=verdict)
    obs.started(result)
    obs.paired(result, None)
    obs.finished(result)
    obs.end("KILLED", "x")
    assert inner.events == ["started", "paired", "finished", "end KILLED"]
    assert bool(calls) == profiles


def test_a_failing_profile_is_one_line_and_the_ab_still_finishes(tmp_path):
    inner, said = Recorder(), []
    obs = ProfilingObserver(inner, tmp_path, said.append)

    def broken(result):
        raise OSError("disk full\nsecond line")
    obs.profile = broken
    obs.finished(SimpleNamespace(verdict=SLOWER))
    assert said == ["profile: OSError: disk full"]
    assert inner.events == ["finished"]


@pytest.mark.slow
@pytest.mark.timeout(900)       # an A/B and two profiled runs, on a shared machine
def test_ab_with_pyspy_diffs_the_sides_and_finds_the_planted_function(tmp_path):
    try:
        find_tool("py-spy")
    except Exception as exc:
        pytest.skip(f"py-spy: {exc}")
    repo, good, history = planted_repo(tmp_path, commits=1, planted_at=1)
    store = tmp_path / "mlflow.db"
    proc = subprocess.run(
        [sys.executable, "-m", "cdrexp.ab", good, history[0], "--repo", str(repo),
         "subs=1000", "workers=1", "model.chunk_size=1000", "profiler=pyspy",
         "profiler.rate=200", f"tracking.uri=sqlite:///{store}",
         "--fail-on-regression", "50", "--min-pairs", "3", "--max-pairs", "8",
         "--max-seconds", "240"],   # 3 pairs decide the 2.5x planted slowdown at 50 %
        capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 1, proc.stderr[-2000:]          # SLOWER, as planted
    if "no differential profile" in proc.stderr:
        pytest.skip(f"py-spy could not profile here: {proc.stderr[-300:]}")
    diffs = list(tmp_path.glob("outputs/ab/*/*/profile_diff"))
    assert len(diffs) == 1, proc.stderr
    rows = list(csv.DictReader((diffs[0] / "functions.csv").open()))
    assert rows[0]["function"] == "planted_slowdown", rows[:3]
    assert float(rows[0]["self_change_pts"]) > 20
    for side in ("base", "candidate"):
        assert (diffs[0].parent / side / "profile" / "flamegraph.svg").is_file()

    from mlflow.tracking import MlflowClient
    from cdrexp.tracking import names as N
    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name(N.DEFAULT_EXPERIMENT)
                               .experiment_id])
    parent = next(r for r in runs if r.data.tags.get(N.TAG_KIND) == N.KIND_AB)
    assert "profile_diff" in [f.path for f in client.list_artifacts(parent.info.run_id)]
    sides = [r for r in runs if r.data.tags.get(N.TAG_KIND) == N.KIND_AB_SIDE]
    for r in sides:
        assert r.data.tags[N.TAG_PROFILER_STATUS] == "ok"
        assert "profile" in [f.path for f in client.list_artifacts(r.info.run_id)]

    # the same diff again from the store, by the A/B's parent run alone
    again = subprocess.run([sys.executable, "-m", "cdrexp.compare", "--tracking-uri",
                            f"sqlite:///{store}", "--diff-profile",
                            parent.info.run_id[:10]], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    first = next(ln for ln in again.stdout.splitlines() if "pts" in ln)
    assert "planted_slowdown" in first


@pytest.mark.parametrize("profiler", ["memray", "cprofile"])
def test_a_profiler_without_cpu_samples_is_refused_before_any_work(profiler, tiny_repo,
                                                                   tmp_path, capsys,
                                                                   monkeypatch):
    from cdrexp.ab.cli import main
    repo, _, _ = tiny_repo
    monkeypatch.chdir(tmp_path)
    assert main(["HEAD~1", f"profiler={profiler}", "--repo", str(repo)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"cdrexp-ab: error: profiler={profiler}: the A/B profiles its sides "
                   "with pyspy or perf (CPU samples, compared as shares)")
    assert not (tmp_path / "mlflow.db").exists()
