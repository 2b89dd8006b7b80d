"""``hydra/launcher=slurm``: submitit's SLURM launcher, with a sweep that outlives a killed job.

(Here, not in ``cdrexp``: Hydra instantiates launchers only from the ``hydra_plugins``
namespace package, which it scans at start-up, so this module imports little.)

hydra-submitit-launcher submits the sweep as a job array and returns the jobs' results
in order, raising at the first job that did not finish: a job SLURM cancelled (scancel,
time limit, preemption) would end the whole sweep there, its MLflow run left RUNNING,
and the summary would be written while later jobs still run. Here:

- in the SLURM job, SIGTERM (what SLURM sends before SIGKILL) stops the run like Ctrl-C
  does locally: the run is marked KILLED, tagged with the reason, its workers cleaned up
  (submitit itself ignores SIGTERM, which would leave the run RUNNING after the SIGKILL);
- in the submitting process, every job is waited for; a job that did not finish is that
  job's failure: one line naming it and SLURM's state, counted so the command exits 1,
  its run marked KILLED (or, for a job that never started, a KILLED run created in the
  sweep), so the parent run, the summary table and the children are a local sweep's.
"""
from __future__ import annotations

import signal
import socket
from typing import Any, Sequence

from hydra.core.utils import JobReturn, JobStatus
try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import \
        SlurmLauncher as _SubmititSlurmLauncher
except ImportError:     # not installed: then the preset's submitit_slurm is not found either,
    from hydra.plugins.launcher import Launcher as _SubmititSlurmLauncher  # and says so

from cdrexp.tracking import names as N

KILLED_BY_SLURM = "killed by SLURM (SIGTERM: scancel, time limit or preemption)"


def _stop_on_sigterm() -> None:
    from cdrexp.parallel import Interrupted

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # one is enough: clean up now
        raise Interrupted(signum, KILLED_BY_SLURM)

    signal.signal(signal.SIGTERM, handler)


class SlurmLauncher(_SubmititSlurmLauncher):
    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        # runs inside the SLURM job, after submitit installed its handlers
        _stop_on_sigterm()
        return super().__call__(*args, **kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        jobs_seen: list = []
        original = submitit.AutoExecutor.map_array

        def map_array(executor, fn, *iterables):
            jobs = original(executor, fn, *iterables)
            jobs_seen.extend(jobs)
            return jobs

        # the parent's launch submits and then collects with results()[0], which raises at
        # the first failed job: keep its submission, do the collecting here
        submitit.AutoExecutor.map_array = map_array
        try:
            super().launch(job_overrides, initial_job_idx)
        except Exception:
            if not jobs_seen:
                raise           # nothing was submitted: sbatch itself failed
        finally:
            submitit.AutoExecutor.map_array = original
        returns = []
        for offset, job in enumerate(jobs_seen):
            try:
                returns.append(job.results()[0])
            except Exception as exc:    # cancelled, timed out, node failure, killed
                returns.append(self._job_failed(initial_job_idx + offset,
                                                job_overrides[offset], job, exc))
        return returns

    def _job_failed(self, num: int, overrides: Sequence[str], job, exc) -> JobReturn:
        from cdrexp.cli import display
        from cdrexp.cli.job import report_failure

        state = _slurm_state(job)
        error = f"SLURM job {job.job_id} ended {state}"
        if KILLED_BY_SLURM in str(exc) or state.startswith(("CANCELLED", "TIMEOUT",
                                                               "PREEMPTED")):
            error = f"{KILLED_BY_SLURM}: {error}"
        display.err.print(f"cdrexp: error: job #{num} failed: {error}", markup=False,
                          highlight=False, soft_wrap=True)
        report_failure(error)
        try:
            self._mark_run(num, overrides, error)
        except Exception as mark_exc:   # the store is failing: the line above stands
            display.err.print(f"cdrexp: warning: job #{num}: its run could not be marked "
                              f"KILLED: {type(mark_exc).__name__}", markup=False,
                              highlight=False)
        ret = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
        ret.return_value = None     # like a local job that failed: reported, not raised
        return ret

    def _mark_run(self, num: int, overrides: Sequence[str], error: str) -> None:
        """The job's run marked KILLED with the reason; created if the job never ran."""
        from cdrexp.cli.sweep import find_parent_run, sweep_id_of
        from cdrexp.tracking.store import TrackingStore

        cfg = self.config
        tracking = cfg.get("tracking") or {}
        store = TrackingStore(tracking.get("uri"), cfg.hydra.runtime.cwd,
                              tracking.get("experiment_name") or N.DEFAULT_EXPERIMENT)
        sweep_id = sweep_id_of(cfg.hydra)
        if not sweep_id:
            return
        runs = store.call("search_runs", [store.experiment_id],
                          filter_string=f"tags.`{N.TAG_SWEEP_ID}` = '{sweep_id}' and "
                                        f"tags.`{N.TAG_JOB_NUM}` = '{num}' and "
                                        f"tags.`{N.TAG_KIND}` = '{N.KIND_JOB}'")
        if runs:
            run_id = runs[0].info.run_id
            if runs[0].info.status == "KILLED":
                # the job marked itself on SIGTERM (its executor's own signal guard may
                # have said only "SIGTERM received"): the reason is SLURM's
                store.set_tags(run_id, {N.TAG_ERROR: error})
                return
            if runs[0].info.status != "RUNNING":
                return          # it finished or failed on its own
        else:
            parent = find_parent_run(store, sweep_id)
            tags = {N.TAG_KIND: N.KIND_JOB, N.TAG_SWEEP_ID: sweep_id, N.TAG_JOB_NUM: num,
                    N.TAG_HOST: socket.gethostname(), "overrides": " ".join(overrides)}
            if parent:
                tags[N.TAG_MLFLOW_PARENT] = parent
            run_id = store.create_run(f"#{num} {' '.join(overrides)}", tags)
        store.set_tags(run_id, {N.TAG_ERROR: error})
        store.end_run(run_id, "KILLED")


def _slurm_state(job) -> str:
    try:
        return str(job.watcher.get_state(job.job_id, mode="force"))
    except Exception:
        return "UNKNOWN"

