"""``python -m cdrexp`` / ``cdrexp``: the Hydra app that runs measured experiments.

Exit codes: 0 all jobs finished; 1 a job failed (each said why in one line); 2 a bad
command line or config, or a tracking store that cannot be used (one line, nothing run);
130 / 143 stopped by Ctrl-C / SIGTERM (the run in progress is marked KILLED; the last
line says what became of the runs). A second signal does not interrupt the cleanup.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Optional, Sequence

import hydra
from omegaconf import DictConfig

from ..conf import CONFIG_NAME
from .precheck import HYDRA_VERSION_BASE, UsageError, check_command_line, prepare_outputs, \
    prepare_tracking

PROG = "cdrexp"
EXIT_FAILED, EXIT_USAGE = 1, 2


def _hydra_app(outcomes):
    """The Hydra app whose jobs report to ``outcomes`` (``job.Outcomes``)."""
    @hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://cdrexp.conf",
                config_name=CONFIG_NAME)
    def app(cfg: DictConfig) -> Optional[dict]:
        from .job import run_job
        return run_job(cfg, outcomes)
    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..tracking.store import strip_leaky_env
    strip_leaky_env()
    try:
        configs = check_command_line(argv)
        if configs:
            prepare_outputs(configs)    # a URL out: before the store is created
            prepare_tracking(configs, os.getcwd())
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from ..parallel import install_stop_handlers, restore_handlers
    from . import job, sweep
    outcomes = job.Outcomes()
    # SIGTERM unwinds like Ctrl-C (runs marked KILLED, workers cleaned up); a second
    # signal does not interrupt that cleanup
    previous = install_stop_handlers()
    old_argv = sys.argv
    sys.argv = [PROG] + argv
    try:
        with job.reporting_to(outcomes):
            _hydra_app(outcomes)()
    except KeyboardInterrupt as exc:
        parent = sweep.finish_active_sweep("KILLED")
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"{PROG}: interrupted ({signal.Signals(signum).name}); "
              f"{_outcome(outcomes.ended, parent)}", file=sys.stderr)
        return 128 + int(signum)
    except SystemExit as exc:   # Hydra exits 1 on errors it reports itself
        sweep.finish_active_sweep("FAILED")
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    finally:
        sys.argv = old_argv
        restore_handlers(previous)
    sweep.finish_active_sweep("FAILED")   # only if on_multirun_end did not run
    return EXIT_FAILED if outcomes.failed else 0


def _outcome(ended: list[tuple[str, str]], sweep_parent: Optional[str]) -> str:
    """What became of the runs of this command, for the line after an interrupt."""
    killed = [run_id for run_id, status in ended if status == "KILLED"]
    others: dict[str, int] = {}
    for _, status in ended:
        if status != "KILLED":
            others[status] = others.get(status, 0) + 1
    parts = []
    if killed:
        parts.append(f"run {', '.join(killed)} marked KILLED")
    elif ended:
        parts.append("no run was in progress")
    else:
        parts.append("no run was started")
    if others:
        parts.append(", ".join(f"{n} {'earlier ' if killed else ''}run{'s' * (n > 1)} "
                               f"{status}" for status, n in sorted(others.items())))
    if sweep_parent:
        parts.append(f"sweep parent run {sweep_parent} marked KILLED")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
