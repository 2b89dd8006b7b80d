"""A sweep (``-m``) as a group in MLflow: a parent run, and a summary when it ends.

``SweepCallback`` (configured under ``hydra.callbacks`` in conf/config.yaml) opens the
parent run when the sweep starts, tagged with the sweep id: the command's id
``CDREXP_COMMAND_ID`` (``hydra.job.env_set``, the same in every job of one command and
different for every command). Each job finds its parent run in the store by that tag
(also in another process, with another launcher), never by the sweep's directory, which
another command could share. When the sweep ends the callback logs the summary (table of
every job, plots) to the parent run and closes it. A sweep that stops early (a failed
job, Ctrl-C) is summarised and closed by ``main`` through ``finish_active_sweep``.
"""
from __future__ import annotations

import datetime as dt
import socket
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ..tracking import names as N
from ..tracking import owner_tags
from ..tracking.store import TrackingStore
from ..tracking.system import git_info
from ..tracking.ui import browse_hint, share_sweep_view

COMMAND_ID = "CDREXP_COMMAND_ID"


@dataclass
class SweepState:
    sweep_id: str
    parent_run_id: Optional[str]
    sweep_dir: str
    title: str


def sweep_id_of(hydra_cfg) -> Optional[str]:
    """The sweep id of the command whose Hydra config (``cfg.hydra``) this is."""
    env = hydra_cfg.job.get("env_set") or {}
    return env.get(COMMAND_ID) or None


def find_parent_run(store: TrackingStore, sweep_id: str) -> Optional[str]:
    """The parent run the callback opened for ``sweep_id`` (None without the callback)."""
    runs = store.call("search_runs", [store.experiment_id],
                      filter_string=f"tags.`{N.TAG_SWEEP_ID}` = '{sweep_id}' "
                                    f"and tags.`{N.TAG_KIND}` = '{N.KIND_SWEEP}'",
                      max_results=1)
    return runs[0].info.run_id if runs else None


_active: Optional["SweepCallback"] = None


class SweepCallback(Callback):
    def __init__(self) -> None:
        self.state: Optional[SweepState] = None
        self.store: Optional[TrackingStore] = None
        self.failed_jobs = 0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _active
        from .display import quiet_mlflow
        quiet_mlflow()
        hc = config.hydra
        base_dir = hc.runtime.cwd
        tracking = config.get("tracking") or {}
        self.store = TrackingStore(tracking.get("uri"), base_dir,
                                   tracking.get("experiment_name") or N.DEFAULT_EXPERIMENT)
        sweep_dir = Path(hc.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        task = list(hc.overrides.task)
        params = hc.sweeper.get("params")
        params = OmegaConf.to_container(params) if params is not None else {}
        title = "sweep " + " ".join([f"{k}={v}" for k, v in params.items()] + task)
        sweep_id = sweep_id_of(hc) or \
            dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        git = git_info()
        run_id = self.store.create_run(title, {
            N.TAG_KIND: N.KIND_SWEEP, N.TAG_SWEEP_ID: sweep_id,
            N.TAG_GIT_COMMIT: git["commit"] or "unknown",
            N.TAG_GIT_BRANCH: git["branch"] or "unknown", N.TAG_HOST: socket.gethostname(),
            N.TAG_MLFLOW_GIT_COMMIT: git["commit"], "hydra_sweep_dir": str(sweep_dir),
            "overrides": " ".join(task), **owner_tags()})
        self.store.log_params(run_id, {"sweep.overrides": " ".join(task) or "-",
                                       **{f"sweep.params.{k}": v for k, v in params.items()}})
        self.state = SweepState(sweep_id, run_id, str(sweep_dir), title)
        _active = self

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        # a job that failed returns None (run_job); one whose store failed has no run
        # for finish() to find, so it is counted here (jobs of this process only)
        from hydra.core.utils import JobStatus
        if job_return.status != JobStatus.COMPLETED or job_return.return_value is None:
            self.failed_jobs += 1

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.finish("FAILED" if self.failed_jobs else "FINISHED")

    def finish(self, status: str) -> None:
        """Log the summary of the jobs that ran to the parent run and close it."""
        global _active
        if self.state is None or self.store is None:
            return
        state, store, self.state = self.state, self.store, None
        _active = None
        from . import display
        from ..tracking.summary import job_rows, to_csv, to_markdown, to_note, write_plots
        try:
            # inside the try: the parent run is closed even if the store fails here
            runs = store.call("search_runs", [store.experiment_id],
                              filter_string=f"tags.`{N.TAG_SWEEP_ID}` = '{state.sweep_id}' "
                                            f"and tags.`{N.TAG_KIND}` = '{N.KIND_JOB}'",
                              max_results=10_000)
            rows = job_rows(runs)
            if status == "FINISHED" and any(r["status"] != "FINISHED" for r in rows):
                status = "FAILED"       # e.g. a job failed in another launcher's process
            with tempfile.TemporaryDirectory(prefix="cdrexp-sweep-") as tmp:
                out = Path(tmp) / N.A_SWEEP_DIR
                out.mkdir()
                (out / N.A_SWEEP_TABLE_CSV).write_text(to_csv(rows))
                (out / N.A_SWEEP_TABLE_MD).write_text(to_markdown(rows, state.title))
                write_plots(rows, out, state.title)
                store.log_artifacts(state.parent_run_id, out, N.A_SWEEP_DIR)
                # a copy next to Hydra's multirun.yaml, for reading without MLflow
                local = Path(state.sweep_dir) / N.A_SWEEP_DIR
                local.mkdir(parents=True, exist_ok=True)
                for f in out.iterdir():
                    (local / f.name).write_bytes(f.read_bytes())
            for r in rows:
                if r.get(N.M_SPEEDUP) is not None:
                    store.log_metrics(r["run_id"], {N.M_SPEEDUP: r[N.M_SPEEDUP],
                                                    N.M_EFFICIENCY: r[N.M_EFFICIENCY]})
            finished = [r for r in rows if r["status"] == "FINISHED"]
            store.log_metrics(state.parent_run_id, {
                "jobs": len(rows), "jobs_finished": len(finished),
                "jobs_failed": len(rows) - len(finished),
                "best_subs_per_s": max((r[N.M_SUBS_PER_S] or 0 for r in finished),
                                       default=0.0)})
            store.set_tags(state.parent_run_id,
                           {N.TAG_MLFLOW_NOTE: to_note(rows, state.title)})
            display.out.print(display.sweep_table(
                f"{state.title}  (MLflow parent run {state.parent_run_id}, "
                f"summary in {Path(state.sweep_dir) / N.A_SWEEP_DIR})", rows))
        except BaseException:
            if status == "FINISHED":
                status = "FAILED"       # its summary could not be made
            raise
        finally:
            store.end_run(state.parent_run_id, status)
        display.print_hint(browse_hint(
            store.uri, store.base_dir, store.experiment_id,
            search_filter=f"tags.`{N.TAG_SWEEP_ID}` = '{state.sweep_id}'",
            view_key=share_sweep_view(store, state.sweep_id)))


def finish_active_sweep(status: str) -> Optional[str]:
    """Close a sweep that did not reach on_multirun_end (a job raised, Ctrl-C); returns
    the parent run's id if there was one to close."""
    if _active is None or _active.state is None:
        return None
    parent = _active.state.parent_run_id
    try:
        _active.finish(status)
    except Exception as exc:
        print(f"cdrexp: warning: could not close the sweep's parent run: {exc}",
              file=sys.stderr)
    return parent
