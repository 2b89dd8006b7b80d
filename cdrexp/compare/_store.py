"""Reading the runner's MLflow runs: jobs, grouped into sweeps, with their repeat samples.

Read only: a store that does not exist is reported, never created (MLflow's SQL store
would otherwise create the database file, and its directories, on first contact).
Every failure of the store surfaces as ``StoreError`` with a one-line message.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

from cdrexp.tracking import names
from cdrexp.tracking.store import StoreUnusable, check_location, mask_secrets, \
    quick_network, resolve_tracking_uri, retry_locked
from cdrexp.usage import one_line

# a remote server that is down should fail in seconds, not after minutes of retries
READ_TIMEOUT_S = 15

FINISHED = "FINISHED"


class StoreError(Exception):
    """The store cannot answer: unreachable, empty, or the asked-for id is unknown.
    Its message never carries a credential (``mask_secrets``)."""

    def __init__(self, message: str = ""):
        super().__init__(mask_secrets(message))


@dataclass(frozen=True)
class JobRun:
    """One Hydra job: one configuration measured ``repeats`` times."""
    run_id: str
    start_ms: int
    status: str
    group_id: str            # its sweep id, or its own run id when it ran alone
    config_key: str
    label: str
    git_commit: Optional[str]
    host: Optional[str]
    params: dict = field(repr=False)
    metrics: dict = field(repr=False)
    tags: dict = field(repr=False)

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.start_ms / 1000, tz=timezone.utc)

    def metric(self, key: str) -> Optional[float]:
        return self.metrics.get(key)

    def param(self, key: str) -> Optional[str]:
        return self.params.get(key)

    @property
    def short_commit(self) -> str:
        return (self.git_commit or "?")[:7]


@dataclass
class RunGroup:
    """A sweep's jobs (or one job that ran alone), newest-first ordering by start."""
    group_id: str
    is_sweep: bool
    jobs: list[JobRun]
    parent_run_id: Optional[str] = None

    @property
    def start_ms(self) -> int:
        return min(j.start_ms for j in self.jobs)

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.start_ms / 1000, tz=timezone.utc)

    @property
    def commits(self) -> list[str]:
        return sorted({j.short_commit for j in self.jobs})

    def by_config(self) -> dict[str, JobRun]:
        """config_key -> job; if a configuration ran twice, the later job wins."""
        out: dict[str, JobRun] = {}
        for job in sorted(self.jobs, key=lambda j: j.start_ms):
            out[job.config_key] = job
        return out


def tracking_uri(given: Optional[str] = None) -> str:
    """The store to read, by the runner's own rule (``resolve_tracking_uri``): ``given``,
    else $MLFLOW_TRACKING_URI, else ./mlflow.db, relative to the working directory."""
    return resolve_tracking_uri(given, os.getcwd())


def _check_exists(uri: str) -> None:
    """Refuse local stores that are not there (MLflow would create them)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = unquote(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else ""
        if path and path != ":memory:" and not Path(path).is_file():
            raise StoreError(f"no MLflow store at {path} (run an experiment there first, "
                             "or pass --tracking-uri)")
    elif parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme == "file" else uri
        if not Path(path).is_dir():
            raise StoreError(f"no MLflow store at {path} (run an experiment there first, "
                             "or pass --tracking-uri)")


class Store:
    """The jobs of one experiment, loaded once; samples and artifacts fetched on demand."""

    def __init__(self, uri: str, experiment: str = names.DEFAULT_EXPERIMENT):
        self.uri = uri
        self.experiment = experiment
        _check_exists(uri)
        try:    # a server that is down or refuses the password: seconds, one line (MLflow
            check_location(uri, os.getcwd())    # retries a SQL server for ~100 s)
        except StoreUnusable as exc:
            raise StoreError(str(exc)) from None
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        try:
            from mlflow.tracking import MlflowClient
            with quick_network(READ_TIMEOUT_S):
                self._client = MlflowClient(tracking_uri=uri)
            exp = self._call("get_experiment_by_name", experiment)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot read MLflow store {uri}: {one_line(exc, 300)}") from None
        if exp is None:
            raise StoreError(f"no experiment {experiment!r} in MLflow store {uri}")
        self._exp_id = exp.experiment_id
        self._samples: dict[str, tuple[float, ...]] = {}
        self._median_only: set[str] = set()     # runs without per-repeat wall times
        self.jobs: list[JobRun] = []
        self.sweep_parents: dict[str, str] = {}     # parent run id -> sweep id
        self._load()

    def _call(self, method: str, *args, **kwargs):
        """A client call with one try and a short timeout (set for the call only: the
        process's environment is the caller's)."""
        try:
            with quick_network(READ_TIMEOUT_S):
                return retry_locked(getattr(self._client, method), *args, **kwargs)
        except Exception as exc:
            raise StoreError(f"cannot read MLflow store {self.uri}: {one_line(exc, 300)}") \
                from None

    def _search(self, kind: str):
        page_token = None
        while True:
            page = self._call("search_runs", [self._exp_id],
                              filter_string=f"tags.`{names.TAG_KIND}` = '{kind}'",
                              max_results=1000, order_by=["attributes.start_time DESC"],
                              page_token=page_token)
            yield from page
            page_token = page.token
            if not page_token:
                return

    def _load(self) -> None:
        for run in self._search(names.KIND_SWEEP):
            sweep_id = run.data.tags.get(names.TAG_SWEEP_ID)
            if sweep_id:
                self.sweep_parents[run.info.run_id] = sweep_id
        for run in self._search(names.KIND_JOB):
            tags = run.data.tags
            key = tags.get(names.TAG_CONFIG_KEY)
            if not key:
                continue        # not written by the runner: nothing to match it on
            self.jobs.append(JobRun(
                run_id=run.info.run_id, start_ms=int(run.info.start_time or 0),
                status=run.info.status,
                group_id=tags.get(names.TAG_SWEEP_ID) or run.info.run_id,
                config_key=key,
                label=tags.get(names.TAG_CONFIG_LABEL) or run.info.run_name or key,
                git_commit=tags.get(names.TAG_GIT_COMMIT),
                host=tags.get(names.TAG_HOST),
                params=dict(run.data.params), metrics=dict(run.data.metrics),
                tags=dict(tags)))
        self.jobs.sort(key=lambda j: j.start_ms)

    # ---------------------------------------------------------------- groups
    def finished_jobs(self) -> list[JobRun]:
        """Jobs that completed (measured), oldest first."""
        return [j for j in self.jobs if j.status == FINISHED]

    def groups(self) -> list[RunGroup]:
        """Finished jobs grouped by sweep (a job that ran alone is its own group),
        oldest group first."""
        by_id: dict[str, list[JobRun]] = {}
        for job in self.finished_jobs():
            by_id.setdefault(job.group_id, []).append(job)
        parents = {sweep: run for run, sweep in self.sweep_parents.items()}
        out = [RunGroup(gid, gid in parents or gid != jobs[0].run_id, jobs, parents.get(gid))
               for gid, jobs in by_id.items()]
        return sorted(out, key=lambda g: g.start_ms)

    def require_groups(self) -> list[RunGroup]:
        groups = self.groups()
        if not groups:
            raise StoreError(f"no finished cdrexp runs in experiment {self.experiment!r} "
                             f"of {self.uri}")
        return groups

    def group(self, ident: str) -> RunGroup:
        """The group a user-given id names: a sweep id, a sweep's parent run id, or a job's
        run id (that job alone); unique prefixes of these are accepted."""
        groups = {g.group_id: g for g in self.groups()}
        jobs = {j.run_id: j for j in self.jobs}
        candidates: dict[str, RunGroup | JobRun | None] = {}
        for gid, g in groups.items():
            candidates[gid] = g
        for run_id, sweep_id in self.sweep_parents.items():
            candidates[run_id] = groups.get(sweep_id)
        for run_id, job in jobs.items():
            candidates.setdefault(run_id, job)
        hits = [k for k in candidates if k == ident] or \
            [k for k in candidates if k.startswith(ident)]
        if not hits:
            raise StoreError(f"unknown run or sweep id {ident!r} in experiment "
                             f"{self.experiment!r}")
        if len({id(candidates[k]) for k in hits}) > 1:
            raise StoreError(f"id prefix {ident!r} is ambiguous: "
                             f"{', '.join(sorted(hits)[:4])}")
        found = candidates[hits[0]]
        if found is None:
            raise StoreError(f"sweep {ident!r} has no finished job")
        if isinstance(found, JobRun):
            if found.status != FINISHED:
                raise StoreError(f"run {found.run_id} did not finish "
                                 f"(status {found.status}): nothing was measured")
            return RunGroup(found.run_id, False, [found])
        return found

    def jobs_by_config(self) -> dict[str, list[JobRun]]:
        """Every finished job of each configuration, oldest first."""
        out: dict[str, list[JobRun]] = {}
        for job in self.finished_jobs():
            out.setdefault(job.config_key, []).append(job)
        return out

    # ---------------------------------------------------------------- per run data
    def samples(self, job: JobRun) -> tuple[float, ...]:
        """The wall time of each measured repeat; the median alone if none were logged."""
        if job.run_id not in self._samples:
            history = self._call("get_metric_history", job.run_id, names.M_WALL_STEPS)
            values = tuple(m.value for m in sorted(history, key=lambda m: m.step))
            if not values and job.metric(names.M_WALL_MEDIAN) is not None:
                values = (job.metric(names.M_WALL_MEDIAN),)
                self._median_only.add(job.run_id)
            self._samples[job.run_id] = values
        return self._samples[job.run_id]

    def median_only(self, job: JobRun) -> bool:
        """True when the run logged its median wall time but not its repeats."""
        self.samples(job)
        return job.run_id in self._median_only

    def system_info(self, group: RunGroup) -> dict:
        """The group's system_info.json (first job that has one, then the parent run);
        an empty dict when none was logged or it cannot be read."""
        run_ids = [j.run_id for j in group.jobs] + \
            ([group.parent_run_id] if group.parent_run_id else [])
        for run_id in run_ids[:3]:
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    with quick_network(READ_TIMEOUT_S):
                        path = self._client.download_artifacts(run_id, names.A_SYSTEM_INFO,
                                                               tmp)
                    with open(path) as fh:
                        return json.load(fh)
                except Exception:   # absent or unreadable: the tags will do
                    continue
        return {}

    def job(self, ident: str) -> JobRun:
        """The job run a user-given id (or unique prefix) names, finished or not."""
        hits = [j for j in self.jobs if j.run_id == ident] or \
            [j for j in self.jobs if j.run_id.startswith(ident)]
        if not hits:
            if any(i.startswith(ident) for pair in self.sweep_parents.items() for i in pair):
                raise StoreError(f"{ident!r} is a sweep, not one run: give a run id of "
                                 "one of its jobs")
            raise StoreError(f"unknown run id {ident!r} in experiment "
                             f"{self.experiment!r}")
        if len(hits) > 1:
            raise StoreError(f"id prefix {ident!r} is ambiguous: "
                             f"{', '.join(sorted(j.run_id for j in hits)[:4])}")
        return hits[0]

    def artifact(self, run_id: str, path: str, dst_dir: str) -> Optional[Path]:
        """Download one artifact of a run into ``dst_dir``; None when it is absent."""
        try:
            with quick_network(READ_TIMEOUT_S):
                return Path(self._client.download_artifacts(run_id, path, dst_dir))
        except Exception:   # absent (MLflow raises several types for that) or unreadable
            return None

    def ab_sides(self, ident: str) -> tuple[str, dict]:
        """An A/B parent run (``python -m cdrexp.ab``) by id or unique prefix, and its side
        runs: (parent run id, {"base": run, "candidate": run}) as MLflow ``Run``s."""
        parents = [r.info.run_id for r in self._search(names.KIND_AB)]
        hits = [p for p in parents if p == ident] or [p for p in parents
                                                      if p.startswith(ident)]
        if not hits:
            raise StoreError(f"unknown run id {ident!r} in experiment {self.experiment!r}: "
                             "one id must be an A/B's parent run (python -m cdrexp.ab)")
        if len(hits) > 1:
            raise StoreError(f"id prefix {ident!r} is ambiguous: {', '.join(hits[:4])}")
        sides = {r.data.tags.get(names.TAG_AB_SIDE): r
                 for r in self._search(names.KIND_AB_SIDE)
                 if r.data.tags.get(names.TAG_MLFLOW_PARENT) == hits[0]}
        return hits[0], sides
