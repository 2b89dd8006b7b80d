"""What a job and a sweep keep when a step after measuring fails (issue 22's reading)."""
import pytest

from cdrexp.cli import benchmark, job, precheck
from cdrexp.cli.sweep import SweepCallback, SweepState
from cdrexp.config import config_to_dict, to_config
from cdrexp.tracking import names as N
from cdrexp.tracking.store import TrackingStore
from cdrexp.tracking.system import collect_system_info


def test_measured_figures_are_logged_before_anything_after_them_can_fail(tmp_path,
                                                                       monkeypatch):
    exp = to_config({"subs": 300, "workers": 1, "repeats": 2, "warmup": 0,
                     "keep_output": False, "out": str(tmp_path / "out"),
                     "model": {"cells": 50}})
    store = TrackingStore(None, str(tmp_path))
    run_id = store.create_run("job", {})
    ctx = job.JobContext(base_dir=str(tmp_path), output_dir=tmp_path / "job")
    ctx.output_dir.mkdir()

    def disk_gone(out):
        raise OSError("disk gone")
    monkeypatch.setattr(benchmark, "remove_output", disk_gone)
    with pytest.raises(OSError, match="disk gone"):
        job._measure_and_log(exp, ctx, store, run_id, collect_system_info(), "job",
                             config_to_dict(exp))
    metrics = store.client.get_run(run_id).data.metrics
    assert metrics[N.M_WALL_MEDIAN] > 0 and metrics[N.M_ROWS] > 0
    assert N.M_PEAK_PSS in metrics and N.M_SUBS_PER_S in metrics


class _FailingStore:
    """A store that cannot be searched any more (e.g. its server went away)."""
    experiment_id, uri, base_dir = "1", "sqlite:///nowhere.db", "/"

    def __init__(self):
        self.ended = []

    def call(self, method, *args, **kwargs):
        raise RuntimeError(f"{method}: the store went away")

    def end_run(self, run_id, status):
        self.ended.append((run_id, status))


def test_the_sweep_parent_is_closed_when_the_search_for_its_jobs_fails(tmp_path):
    callback = SweepCallback()
    callback.store = _FailingStore()
    callback.state = SweepState("sweep-1", "parent-run", str(tmp_path), "sweep subs=1,2")
    with pytest.raises(RuntimeError, match="the store went away"):
        callback.finish("FINISHED")
    assert callback.store.ended == [("parent-run", "FAILED")]


def test_a_bugs_value_error_is_not_a_usage_error(monkeypatch):
    """Only the command line's faults become one-line usage errors; a ValueError from a
    bug keeps its traceback."""
    def bug(raw):
        raise ValueError("a bug, not the user's input")
    monkeypatch.setattr(precheck, "to_config", bug)
    with pytest.raises(ValueError, match="a bug"):
        precheck.check_command_line(["subs=100"])


def test_a_failure_reported_by_a_launcher_counts_for_the_command_only_while_it_runs():
    """A launcher's job that failed on another host (SLURM) is added to the command's
    Outcomes, whose exit code it then sets; outside a command it goes nowhere."""
    from cdrexp.cli.job import Outcomes, report_failure, reporting_to
    outcomes = Outcomes()
    with reporting_to(outcomes):
        report_failure("killed by SLURM: SLURM job 7 ended CANCELLED")
    report_failure("after the command: dropped")
    assert outcomes.failed == ["killed by SLURM: SLURM job 7 ended CANCELLED"]


def _masked_interrupt(stop):
    """What OmegaConf's ``flag_override`` made of an interrupt raised inside it: its own
    cleanup failed while the interrupt unwound, so the cleanup's error came out."""
    try:
        try:
            raise stop
        finally:
            None._invalidate_flags_cache()      # noqa: the failing cleanup
    except AttributeError as exc:
        return exc


def test_an_interrupt_masked_by_a_librarys_cleanup_is_found_behind_it():
    import signal

    from cdrexp.parallel import Interrupted
    stop = Interrupted(signal.SIGTERM, "killed by SLURM")
    assert job.interrupt_behind(_masked_interrupt(stop)) is stop
    assert job.interrupt_behind(KeyError("a bug")) is None
    try:
        raise ValueError("a bug") from KeyError("its cause")
    except ValueError as exc:
        assert job.interrupt_behind(exc) is None


def test_a_job_interrupted_inside_a_library_ends_killed_not_failed(tmp_path, monkeypatch):
    """A SLURM job cancelled while OmegaConf wrote its config (CI, 2026-12-05): the job
    reported a plain failure and SLURM's cancel went unseen. The run must end KILLED and
    the interrupt go on, so the launcher counts the job as killed."""
    import signal

    from omegaconf import OmegaConf

    from cdrexp.parallel import Interrupted
    stop = Interrupted(signal.SIGTERM, "killed by SLURM")
    ctx = job.JobContext(base_dir=str(tmp_path), output_dir=tmp_path / "job")
    ctx.output_dir.mkdir()
    monkeypatch.setattr(job.JobContext, "from_hydra", classmethod(lambda cls: ctx))

    def interrupted(*args, **kwargs):
        raise _masked_interrupt(stop)
    monkeypatch.setattr(job, "_measure_and_log", interrupted)
    cfg = OmegaConf.create(config_to_dict(to_config(
        {"subs": 300, "workers": 1, "out": str(tmp_path / "out"),
         "tracking": {"system_metrics": False}})))
    outcomes = job.Outcomes()
    with pytest.raises(KeyboardInterrupt) as raised:
        job.run_job(cfg, outcomes)
    assert raised.value is stop
    assert [status for _, status in outcomes.ended] == ["KILLED"]
    assert not outcomes.failed
    run = TrackingStore(None, str(tmp_path)).client.get_run(outcomes.ended[0][0])
    assert run.info.status == "KILLED" and "killed by SLURM" in run.data.tags[N.TAG_ERROR]
