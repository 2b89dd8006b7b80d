"""The A/B in MLflow: one parent run (kind ``ab``), one child run per side.

The parent holds the verdict (its exit code as a metric, its text as a tag), the ratio
and its interval, the pairs used, one step per pair of the per-pair ratio, the plot of
those ratios in run order and ``ab_result.json`` (every measurement). Each child run is
tagged with its side's commit and holds one step per measured run (wall, CPU, peak PSS,
instructions when counted) and their medians. Runs are created when measuring starts and
written pair by pair, so an interrupted A/B keeps what it measured (marked KILLED).
"""
from __future__ import annotations

import os
import socket
import statistics
import tempfile
from pathlib import Path
from typing import Optional

from ..config import config_to_dict
from ..tracking import names as N
from ..tracking import owner_tags, say_orphans
from ..tracking.results import config_label, flatten
from ..tracking.store import StoreUnusable, TrackingStore, check_store
from ._measure import Side
from ._run import ABError, ABResult, Pair
from ._stats import UNDECIDED

SIDES = ("base", "candidate")


def open_store(tracking) -> TrackingStore:
    """The store an A/B or a bisect logs to, checked as the runner checks it (scheme, a
    server that answers, a usable SQLite file: seconds, not MLflow's minutes of retries)
    before any measurement; raises ``ABError`` with one line naming it."""
    from ..cli import display
    display.quiet_mlflow()
    try:
        store = check_store(tracking.uri, os.getcwd(), tracking.experiment_name)
    except StoreUnusable as exc:
        raise ABError(str(exc)) from None
    say_orphans(store.client, "cdrexp-ab")
    return store


def _run_figures(run) -> dict[str, float]:
    figures = {"wall_s": run.wall_s, "cpu_s": run.cpu_s}
    if run.peak_pss_bytes:
        figures["peak_pss_mb"] = run.peak_pss_bytes / N.MB
    if run.instructions is not None:
        figures["instructions"] = float(run.instructions)
    return figures


class MlflowObserver:
    """Logs an A/B as it runs (an ``Observer`` for ``run_ab``)."""

    def __init__(self, store: TrackingStore, overrides: list[str]):
        self.store = store
        self.overrides = overrides
        self.parent: Optional[str] = None
        self.children: dict[str, str] = {}

    def started(self, result: ABResult) -> None:
        s = result.settings
        label = config_label(result.config)
        common = {N.TAG_HOST: socket.gethostname(), N.TAG_AB_METRIC: s.metric,
                  N.TAG_CONFIG_LABEL: label,
                  N.TAG_CONFIG_KEY: N.config_key(config_to_dict(result.config)),
                  N.TAG_OUTPUT_FORMAT: result.config.output.format,
                  **owner_tags()}     # a killed gate's runs are marked KILLED later
        self.parent = self.store.create_run(
            f"ab {result.base.short} vs {result.candidate.short}: {label}",
            {**common, N.TAG_KIND: N.KIND_AB,
             N.TAG_AB_BASE_COMMIT: result.base.sha,
             N.TAG_AB_CANDIDATE_COMMIT: result.candidate.sha,
             N.TAG_GIT_DIRTY: str(result.candidate.dirty).lower(),
             "overrides": " ".join(self.overrides)})
        params = {f"job.{k}": v for k, v in flatten(config_to_dict(result.config)).items()}
        params.update({"metric": s.metric, "threshold_pct": s.threshold_pct,
                       "confidence": s.confidence, "min_pairs": s.min_pairs,
                       "max_pairs": s.pairs_budget, "max_seconds": s.max_seconds,
                       "look_schedule": " ".join(map(str, result.rule.schedule)),
                       "base_rev": result.base.rev, "candidate_rev": result.candidate.rev})
        self.store.log_params(self.parent, params)
        for side in (result.base, result.candidate):
            self.children[side.label] = self.store.create_run(
                f"{side.label} {side.rev} ({side.short})", {
                    **common, N.TAG_KIND: N.KIND_AB_SIDE, N.TAG_AB_SIDE: side.label,
                    N.TAG_AB_REV: side.rev, N.TAG_MLFLOW_PARENT: self.parent,
                    N.TAG_GIT_COMMIT: side.sha, N.TAG_MLFLOW_GIT_COMMIT: side.sha,
                    N.TAG_GIT_DIRTY: str(side.dirty).lower()})

    def paired(self, result: ABResult, pair: Pair) -> None:
        self.store.log_metrics(self.parent, {N.M_AB_PAIR_RATIO: pair.ratio(
            result.settings.metric)}, step=pair.index)
        for label in SIDES:
            run = getattr(pair, label)
            self.store.log_metrics(self.children[label], {
                N.M_AB_RUN + k: v for k, v in _run_figures(run).items()}, step=pair.index)

    def finished(self, result: ABResult) -> None:
        d = result.decision
        metrics = {N.M_AB_EXIT_CODE: result.exit_code, N.M_AB_PAIRS: len(result.pairs),
                   N.M_AB_THRESHOLD: result.settings.threshold_pct,
                   N.M_AB_SECONDS: result.seconds}
        if d is not None and d.interval is not None:
            metrics.update({N.M_AB_RATIO: d.interval.ratio, N.M_AB_RATIO_LOW: d.interval.low,
                            N.M_AB_RATIO_HIGH: d.interval.high,
                            N.M_AB_LEVEL: d.interval.level})
        self.store.log_metrics(self.parent, metrics)
        self.store.set_tags(self.parent, {N.TAG_AB_VERDICT: result.verdict,
                                          "stopped_by": result.stopped_by,
                                          N.TAG_MLFLOW_NOTE: result.summary()})
        for label in SIDES:
            runs = [getattr(p, label) for p in result.pairs]
            if runs:
                keys = _run_figures(runs[0]).keys()
                self.store.log_metrics(self.children[label], {
                    N.M_AB_MEDIAN + k: statistics.median(_run_figures(r)[k] for r in runs)
                    for k in keys})
        with tempfile.TemporaryDirectory(prefix="cdrexp-ab-log-") as tmp:
            if result.pairs:
                plot = plot_pairs(result, Path(tmp) / N.A_AB_PLOT)
                self.store.log_artifact(self.parent, plot)
            self.store.log_dict(self.parent, result_dict(result), N.A_AB_RESULT)
        self.end("FINISHED")

    def end(self, status: str, error: Optional[str] = None) -> None:
        """Close every run this observer opened (FAILED / KILLED with the reason)."""
        for run_id in [*self.children.values(), self.parent]:
            if run_id is None:
                continue
            if error:
                self.store.set_tags(run_id, {N.TAG_ERROR: error})
            self.store.end_run(run_id, status)
        self.parent, self.children = None, {}


def _side_dict(side: Side) -> dict:
    return {"rev": side.rev, "commit": side.sha, "dirty": side.dirty}


def result_dict(result: ABResult) -> dict:
    d = result.decision
    iv = d.interval if d else None
    return {
        "base": _side_dict(result.base), "candidate": _side_dict(result.candidate),
        "job": config_to_dict(result.config),
        "settings": vars(result.settings) | {"look_schedule": list(result.rule.schedule),
                                             "look_level": result.rule.look_level},
        "verdict": result.verdict, "exit_code": result.exit_code,
        "stopped_by": result.stopped_by, "seconds": result.seconds,
        "interval": None if iv is None else vars(iv),
        "pairs": [{"index": p.index, "first": p.first,
                   "ratio": p.ratio(result.settings.metric),
                   "base": p.base.to_dict(), "candidate": p.candidate.to_dict()}
                  for p in result.pairs],
    }


def plot_pairs(result: ABResult, path: Path) -> Path:
    """Per-pair ratios in run order (marker: who ran first), the geometric mean and its
    interval as a band, the threshold and 1.0 as lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = result.settings.metric
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for first, marker in (("base", "o"), ("candidate", "s")):
        pts = [(p.index + 1, p.ratio(metric)) for p in result.pairs if p.first == first]
        if pts:
            ax.plot(*zip(*pts), marker, label=f"{first} ran first", alpha=0.8)
    limit = 1 + result.settings.threshold_pct / 100
    ax.axhline(1.0, color="grey", lw=1)
    ax.axhline(limit, color="red", ls="--", lw=1,
               label=f"threshold +{result.settings.threshold_pct:g} %")
    iv = result.decision.interval if result.decision else None
    if iv is not None:
        ax.axhspan(iv.low, iv.high, color="tab:blue", alpha=0.15,
                   label=f"interval @{iv.level:.1%} (per look)")
        ax.axhline(iv.ratio, color="tab:blue", lw=1.5, label=f"ratio {iv.ratio:.3f}")
    ax.set_xlabel("pair (run order)")
    ax.set_ylabel(f"candidate / base ({metric})")
    verdict = result.verdict.upper() if result.verdict != UNDECIDED else "UNDECIDED"
    ax.set_title(f"{result.base.short} -> {result.candidate.short}: {verdict}")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
