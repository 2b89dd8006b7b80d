"""The A/B in MLflow: parent and child runs, tags, metrics, the plot, the result file,
written from a synthetic A/B (no measuring)."""
import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from cdrexp.ab._measure import RunMeasurement, Side
from cdrexp.ab._run import ABResult, ABSettings, Pair
from cdrexp.ab._stats import SLOWER
from cdrexp.ab._tracking import MlflowObserver
from cdrexp.config import ExperimentConfig
from cdrexp.tracking import names as N
from cdrexp.tracking.store import TrackingStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_result(n_pairs=6, slowdown=1.3, seed=0):
    rng = np.random.default_rng(seed)
    settings = ABSettings(threshold_pct=5, metric="cpu", max_pairs=10, min_pairs=4)
    result = ABResult(Side("base", "HEAD~1", "a" * 40, Path("/b")),
                      Side("candidate", "working tree", "b" * 40, Path("/c"), dirty=True),
                      ExperimentConfig(subs=2000), settings, settings.check())
    return result, [Pair(i, "base" if i % 2 == 0 else "candidate",
                         RunMeasurement("base", 2.0, c, 50_000_000),
                         RunMeasurement("candidate", 2.1, c * slowdown * np.exp(e), 51_000_000))
                    for i, (c, e) in enumerate(zip(rng.uniform(1, 1.2, n_pairs),
                                                   rng.normal(0, 0.03, n_pairs)))]


@pytest.fixture
def store(tmp_path):
    return TrackingStore(None, str(tmp_path), "ab-test")


def test_parent_and_child_runs_hold_the_verdict_and_each_sides_commit(store):
    result, pairs = synthetic_result()
    obs = MlflowObserver(store, ["subs=2000"])
    obs.started(result)
    for p in pairs:
        result.pairs.append(p)
        obs.paired(result, p)
    result.decision = result.rule.decide(np.log([p.ratio("cpu") for p in pairs]))
    result.stopped_by, result.seconds = "decided", 12.5
    assert result.verdict == SLOWER
    parent_id = obs.parent
    obs.finished(result)

    client = MlflowClient(store.uri)
    runs = client.search_runs([store.experiment_id])
    parent = client.get_run(parent_id)
    children = [r for r in runs if r.data.tags.get(N.TAG_MLFLOW_PARENT) == parent_id]
    assert len(runs) == 3 and parent.info.status == "FINISHED"
    t, m = parent.data.tags, parent.data.metrics
    assert t[N.TAG_KIND] == N.KIND_AB and t[N.TAG_AB_VERDICT] == SLOWER
    assert (t[N.TAG_AB_BASE_COMMIT], t[N.TAG_AB_CANDIDATE_COMMIT]) == ("a" * 40, "b" * 40)
    assert m[N.M_AB_EXIT_CODE] == 1 and m[N.M_AB_PAIRS] == 6
    assert m[N.M_AB_RATIO_LOW] > 1.05 and m[N.M_AB_RATIO_LOW] < m[N.M_AB_RATIO] < m[N.M_AB_RATIO_HIGH]
    steps = client.get_metric_history(parent_id, N.M_AB_PAIR_RATIO)
    assert [s.step for s in steps] == list(range(6))
    assert [s.value for s in steps] == pytest.approx([p.ratio("cpu") for p in pairs])
    sides = {r.data.tags[N.TAG_AB_SIDE]: r for r in children}
    assert sides["base"].data.tags[N.TAG_GIT_COMMIT] == "a" * 40
    assert sides["candidate"].data.tags[N.TAG_GIT_COMMIT] == "b" * 40
    assert sides["candidate"].data.tags[N.TAG_GIT_DIRTY] == "true"
    assert all(r.data.tags[N.TAG_KIND] == N.KIND_AB_SIDE and r.info.status == "FINISHED"
               for r in children)
    assert sides["base"].data.metrics[N.M_AB_MEDIAN + "wall_s"] == 2.0
    assert len(client.get_metric_history(sides["base"].info.run_id,
                                         N.M_AB_RUN + "cpu_s")) == 6

    arts = {a.path for a in client.list_artifacts(parent_id)}
    assert {N.A_AB_PLOT, N.A_AB_RESULT} <= arts
    local = Path(client.download_artifacts(parent_id, N.A_AB_PLOT))
    assert local.read_bytes()[:8] == PNG_MAGIC
    saved = json.loads(Path(client.download_artifacts(parent_id, N.A_AB_RESULT)).read_text())
    assert saved["verdict"] == SLOWER and len(saved["pairs"]) == 6
    assert saved["pairs"][1]["first"] == "candidate"


def test_an_interrupted_ab_marks_every_run_killed_with_the_reason(store):
    result, pairs = synthetic_result()
    obs = MlflowObserver(store, [])
    obs.started(result)
    result.pairs.append(pairs[0])
    obs.paired(result, pairs[0])
    parent_id = obs.parent
    obs.end("KILLED", "interrupted (SIGTERM)")
    client = MlflowClient(store.uri)
    runs = client.search_runs([store.experiment_id])
    assert {r.info.status for r in runs} == {"KILLED"} and len(runs) == 3
    assert client.get_run(parent_id).data.tags[N.TAG_ERROR] == "interrupted (SIGTERM)"
    obs.end("FAILED")                   # nothing left open: a second end does nothing


def test_a_killed_gates_runs_are_marked_killed_by_the_next_command(store):
    """The gate's runs carry their process (issue 22): a gate killed with -9 leaves them
    RUNNING, and the next command on the store (here: reconcile as it does) ends them."""
    import os

    from cdrexp.tracking import reconcile_orphans
    result, _ = synthetic_result()
    obs = MlflowObserver(store, ["subs=2000"])
    obs.started(result)
    client = MlflowClient(store.uri)
    runs = client.search_runs([store.experiment_id])
    assert len(runs) == 3
    assert {r.data.tags[N.TAG_OWNER_PID] for r in runs} == {str(os.getpid())}
    assert reconcile_orphans(client) is None            # this process is alive
    for r in runs:                                      # as if a process now gone had them
        client.set_tag(r.info.run_id, N.TAG_OWNER_PID, "999999999")
    assert "3 runs left RUNNING" in reconcile_orphans(client)
    assert {r.info.status for r in client.search_runs([store.experiment_id])} == {"KILLED"}
