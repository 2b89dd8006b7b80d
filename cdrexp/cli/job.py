"""One Hydra job: validate, record the system, measure, log everything to one MLflow run.

A job that fails is logged FAILED with the reason (tag ``cdrexp.error``), reported in one
line, and noted in the command's ``Outcomes`` so that ``main`` exits non-zero; a sweep
goes on with its next job. Ctrl-C or SIGTERM marks the run KILLED and stops everything.
"""
from __future__ import annotations

import contextlib
import socket
import sys
import traceback
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ..config import ExperimentConfig, config_to_dict, to_config
from ..tracking import names as N
from ..tracking import owner_tags
from ..tracking.results import (benchmark_results, config_label, flatten, headline,
                                job_metrics, throughput_unit)
from ..tracking.store import TrackingStore, mask_secrets
from ..tracking.system import collect_system_info
from ..tracking.ui import browse_hint
from ..usage import one_line
from . import benchmark, display
from .sweep import find_parent_run, sweep_id_of

@dataclass
class Outcomes:
    """What became of the jobs one command ran in this process: ``main`` makes it, each
    job adds to it, and ``main`` reads it for its exit code and its last line."""
    failed: list[str] = field(default_factory=list)     # one line per failed job
    ended: list[tuple[str, str]] = field(default_factory=list)  # (run id, status marked)


# the command's Outcomes, for jobs whose failure run_job cannot report itself: a launcher
# in this process collects jobs that ran (or were killed) elsewhere, e.g. on SLURM
_reporting: ContextVar[Optional[Outcomes]] = ContextVar("cdrexp_outcomes", default=None)


@contextlib.contextmanager
def reporting_to(outcomes: Outcomes):
    """While the command's Hydra app runs: ``report_failure`` adds to ``outcomes``."""
    token = _reporting.set(outcomes)
    try:
        yield outcomes
    finally:
        _reporting.reset(token)


def report_failure(line: str) -> None:
    """A job that failed out of run_job's sight (its launcher says so): it counts in the
    command's exit code like a job that failed here."""
    outcomes = _reporting.get()
    if outcomes is not None:
        outcomes.failed.append(line)


@dataclass
class JobContext:
    """Where and as what Hydra runs this job."""
    base_dir: str                       # the directory the command ran from
    output_dir: Path                    # the job's Hydra directory
    num: Optional[int] = None           # job number in a sweep, None for a single run
    overrides: list[str] = field(default_factory=list)
    choices: dict = field(default_factory=dict)
    sweep_id: Optional[str] = None      # in a sweep: the command's id (sweep.py)

    @classmethod
    def from_hydra(cls) -> "JobContext":
        hc = HydraConfig.get()
        multirun = hc.mode == RunMode.MULTIRUN
        return cls(base_dir=hc.runtime.cwd, output_dir=Path(hc.runtime.output_dir),
                   num=hc.job.num if multirun else None,
                   overrides=list(hc.overrides.task),
                   choices=OmegaConf.to_container(hc.runtime.choices),
                   sweep_id=(sweep_id_of(hc) or str(Path(hc.sweep.dir).resolve()))
                   if multirun else None)


def run_job(cfg: DictConfig, outcomes: Outcomes) -> Optional[dict]:
    """The Hydra task function's body; returns the job's metrics (None if it failed)."""
    ctx = JobContext.from_hydra()
    display.quiet_mlflow()
    exp: ExperimentConfig = to_config(OmegaConf.to_container(cfg, resolve=True))
    label = config_label(exp, ctx.choices)
    resolved = config_to_dict(exp)
    try:
        store = TrackingStore(exp.tracking.uri, ctx.base_dir, exp.tracking.experiment_name)
        system = collect_system_info()
        parent = find_parent_run(store, ctx.sweep_id) if ctx.sweep_id else None
        run_id = store.create_run(_run_name(ctx, label),
                                  _tags(exp, ctx, parent, system, label, resolved))
    except Exception as exc:    # no run to mark: the store itself is unusable
        _report_failure(ctx, outcomes, f"tracking store {exp.tracking.uri or ctx.base_dir}: "
                                       f"{one_line(exc)}")
        return None
    status, error = "FAILED", None
    monitor = _start_system_metrics(exp, store, run_id)
    try:
        metrics, profiler_line = _measure_and_log(exp, ctx, store, run_id, system, label,
                                                  resolved)
        status = "FINISHED"
        display.out.print(display.job_table(label, metrics, run_id, status, profiler_line,
                                            exp.days))
        return metrics
    except KeyboardInterrupt as exc:
        status, error = "KILLED", f"interrupted ({exc or 'Ctrl-C'})"
        raise
    except Exception as exc:
        interrupt = interrupt_behind(exc)
        if interrupt is not None:
            status, error = "KILLED", f"interrupted ({str(interrupt) or 'Ctrl-C'})"
            raise interrupt from None
        # the generator process's failure is its own one line already
        error = str(exc) if isinstance(exc, benchmark.GeneratorFailed) else one_line(exc)
        _report_failure(ctx, outcomes, error)
        return None
    finally:
        if monitor is not None:
            monitor.finish()
        try:
            if error:
                store.set_tags(run_id, {N.TAG_ERROR: error})
                _log_hydra_dir(store, run_id, ctx)
            store.end_run(run_id, status)
            outcomes.ended.append((run_id, status))
        except Exception as exc:  # the store itself is failing: say so, keep the cause
            print(mask_secrets(f"cdrexp: warning: could not mark run {run_id} {status}: "
                               f"{exc}"), file=sys.stderr)
        else:
            if status != "KILLED":
                display.print_hint(browse_hint(store.uri, store.base_dir,
                                               store.experiment_id, run_id))


def interrupt_behind(exc: BaseException) -> Optional[KeyboardInterrupt]:
    """The interrupt ``exc`` was raised while handling, if any. A signal's exception
    that lands inside a library's cleanup can come out as that cleanup's own error:
    OmegaConf's ``flag_override`` turned a third of the interrupts raised inside
    ``OmegaConf.structured`` into an ``AttributeError`` (a SLURM job cancelled while it
    wrote its config was then a plain failure, not KILLED)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
    return None


def _report_failure(ctx: JobContext, outcomes: Outcomes, error: str) -> None:
    """One line on the terminal, the traceback in the job's directory (and its run)."""
    where = f"job #{ctx.num}" if ctx.num is not None else "run"
    error = mask_secrets(error)     # a store's or a bucket's URI may carry a password
    display.err.print(f"cdrexp: error: {where} failed: {error}", markup=False,
                      highlight=False, soft_wrap=True)
    try:
        (ctx.output_dir / "error.txt").write_text(traceback.format_exc())
    except OSError:
        pass
    outcomes.failed.append(error)


def _run_name(ctx: JobContext, label: str) -> str:
    return f"#{ctx.num} {label}" if ctx.num is not None else label


def _tags(exp, ctx, parent_run_id: Optional[str], system, label, resolved) -> dict:
    git = system["git"]
    tags = {
        N.TAG_KIND: N.KIND_JOB,
        N.TAG_CONFIG_KEY: N.config_key(resolved),
        N.TAG_CONFIG_LABEL: label,
        N.TAG_GIT_COMMIT: git["commit"] or "unknown",
        N.TAG_GIT_BRANCH: git["branch"] or "unknown",
        N.TAG_GIT_DIRTY: "unknown" if git["dirty"] is None else str(git["dirty"]).lower(),
        N.TAG_HOST: socket.gethostname(),
        N.TAG_PROFILER: exp.profiler.name,
        N.TAG_OUTPUT_FORMAT: exp.output.format,
        N.TAG_EXECUTOR: exp.executor.name,
        N.TAG_MLFLOW_GIT_COMMIT: git["commit"],
        "hydra_output_dir": str(ctx.output_dir),
        "overrides": " ".join(ctx.overrides),
        **owner_tags(),
    }
    if ctx.sweep_id is not None:
        tags[N.TAG_SWEEP_ID] = ctx.sweep_id
        tags[N.TAG_JOB_NUM] = ctx.num
        if parent_run_id:
            tags[N.TAG_MLFLOW_PARENT] = parent_run_id
    return tags


def _start_system_metrics(exp, store: TrackingStore, run_id: str):
    if not exp.tracking.system_metrics:
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    monitor = SystemMetricsMonitor(run_id, sampling_interval=1, tracking_uri=store.uri)
    monitor.start()
    return monitor


def _log_hydra_dir(store: TrackingStore, run_id: str, ctx: JobContext) -> None:
    hydra_dir = ctx.output_dir / ".hydra"
    if hydra_dir.is_dir():
        store.log_artifacts(run_id, hydra_dir, N.A_HYDRA_DIR)
    err = ctx.output_dir / "error.txt"
    if err.is_file():
        store.log_artifact(run_id, err)


def _measure_and_log(exp: ExperimentConfig, ctx: JobContext, store: TrackingStore,
                     run_id: str, system: dict, label: str, resolved: dict
                     ) -> tuple[dict, Optional[str]]:
    """Everything between opening the run and closing it; returns the metrics and the
    profiler's one-line outcome (None without a profiler)."""
    params = flatten(resolved)
    params.update({f"choice.{k}": v for k, v in ctx.choices.items()
                   if not k.startswith("hydra/") and v is not None})
    store.log_params(run_id, params)
    store.log_dict(run_id, system, N.A_SYSTEM_INFO)
    store.log_text(run_id, OmegaConf.to_yaml(OmegaConf.create(resolved)), N.A_RESOLVED_CONFIG)
    _log_hydra_dir(store, run_id, ctx)

    def on_repeat(i: int, rep: benchmark.Repeat) -> None:
        store.log_metrics(run_id, {N.M_WALL_STEPS: rep.measurement.wall_s}, step=i)

    repeats = benchmark.run_repeats(exp, ctx.output_dir, on_repeat)
    measurements = [r.measurement for r in repeats]
    stats = [r.stats for r in repeats]
    metrics = job_metrics(exp, measurements, stats, system["cpu"]["usable_cores"])
    # logged at once: what follows (artifacts, removing the output, profiling) may fail,
    # and must not lose the measured figures
    store.log_metrics(run_id, metrics)
    store.log_params(run_id, {"workers_used": stats[-1].workers})
    for summary in benchmark.day_summaries(exp.out):
        store.log_artifact(run_id, summary, f"{N.A_DAY_SUMMARIES}/{summary.parent.name}")
    manifest = Path(exp.out) / benchmark.MANIFEST
    if benchmark.is_local(exp.out) and manifest.is_file():
        store.log_artifact(run_id, manifest)
    elif not benchmark.is_local(exp.out) and exp.output.format != "none":
        _log_url_manifest(store, run_id, exp.out)
    if not exp.keep_output:
        benchmark.remove_output(exp.out)

    extra = {"mlflow_run_id": run_id, "config_key": N.config_key(resolved),
             "git_commit": system["git"]["commit"], "host": system["host"],
             "sweep_job": ctx.num, "overrides": ctx.overrides, "out": exp.out,
             "output_kept": exp.keep_output}
    profiler_line = None
    if exp.profiler.name != "none":
        context = {"subscribers": exp.subs, "days": exp.days, "start_date": exp.start,
                   "workers": exp.workers, "output_format": exp.output.format,
                   "git_commit": system["git"]["commit"],
                   "git_branch": system["git"]["branch"], "mlflow_run_id": run_id}
        result = benchmark.run_profile(exp, ctx.output_dir, context)
        status = result.status if result.status == "ok" else \
            f"{result.status}: {result.message}"
        store.set_tags(run_id, {N.TAG_PROFILER_STATUS: status})
        if result.status != "ok":
            display.err.print(f"cdrexp: profiler {exp.profiler.name} {status}",
                              markup=False, highlight=False, soft_wrap=True)
        if result.artifact_dir and Path(result.artifact_dir).is_dir() and \
                any(Path(result.artifact_dir).iterdir()):
            store.log_artifacts(run_id, result.artifact_dir, N.A_PROFILE_DIR)
        profiled = {k: float(v) for k, v in result.metrics.items()}
        store.log_metrics(run_id, profiled)
        metrics.update(profiled)
        extra["profiler"] = {"name": exp.profiler.name, "status": result.status,
                             "message": result.message, "metrics": result.metrics}
        profiler_line = status + (f" ({result.message})" if result.status == "ok"
                                  and result.message else "")
    results = benchmark_results(exp, label, metrics, measurements, stats, extra)
    results_file = ctx.output_dir / N.A_BENCHMARK_RESULTS
    results_file.write_text(_json(results))
    store.log_artifact(run_id, results_file)
    store.set_tags(run_id, {N.TAG_MLFLOW_NOTE: _note(label, metrics, exp)})
    # the headline figures in the run's name: the title of its page in MLflow's UI
    store.call("set_tag", run_id, N.TAG_MLFLOW_RUN_NAME,
               f"{_run_name(ctx, label)}: {headline(metrics, exp.days)}")
    return metrics, profiler_line


def _log_url_manifest(store: TrackingStore, run_id: str, out: str) -> None:
    """An ``s3://...`` run's manifest.json, read back from the bucket, as an artifact."""
    import fsspec
    with fsspec.open(f"{out.rstrip('/')}/{benchmark.MANIFEST}", "rb") as fh:
        store.log_text(run_id, fh.read().decode(), benchmark.MANIFEST)


def _json(obj) -> str:
    import json
    return json.dumps(obj, indent=2, default=str) + "\n"


def _note(label: str, m: dict, exp: ExperimentConfig) -> str:
    """The run's description in the MLflow UI: the headline figures as markdown."""
    return (f"**{exp.description}**: {label}\n\n"
            f"| wall s (median) | {throughput_unit(exp.days)} | records/s | MB/s | peak PSS MB | CPU util |\n"
            f"|---|---|---|---|---|---|\n"
            f"| {m[N.M_WALL_MEDIAN]:.3f} ± {m[N.M_WALL_STDDEV]:.3f} | "
            f"{m[N.M_SUBS_PER_S]:,.0f} | {m[N.M_RECORDS_PER_S]:,.0f} | "
            f"{m[N.M_MB_PER_S]:,.1f} | {m[N.M_PEAK_PSS]:,.1f} | {m[N.M_CPU_UTIL]:.0%} |\n")
