"""``python -m cdrexp`` / ``cdrexp``: the Hydra app that runs measured experiments.

Exit codes: 0 all jobs finished; 1 a job failed (each said why in one line); 2 a bad
command line or config (one line, nothing run, nothing created); 130 / 143 stopped by
Ctrl-C / SIGTERM (the MLflow runs are marked KILLED).
"""
from __future__ import annotations

import signal
import sys
from typing import Optional, Sequence

import hydra
from omegaconf import DictConfig

from ..conf import CONFIG_NAME
from .precheck import HYDRA_VERSION_BASE, UsageError, check_command_line

PROG = "cdrexp"
EXIT_FAILED, EXIT_USAGE = 1, 2


@hydra.main(version_base=HYDRA_VERSION_BASE, config_path="pkg://cdrexp.conf",
            config_name=CONFIG_NAME)
def _hydra_app(cfg: DictConfig) -> Optional[dict]:
    from .job import run_job
    return run_job(cfg)


def _terminate(signum, frame):
    # SIGTERM unwinds like Ctrl-C, so runs are marked KILLED and workers cleaned up
    from ..parallel._signals import Interrupted
    raise Interrupted(signum)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..tracking.store import strip_leaky_env
    strip_leaky_env()
    try:
        check_command_line(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from . import job, sweep
    job.FAILED_JOBS.clear()
    previous = signal.signal(signal.SIGTERM, _terminate)
    old_argv = sys.argv
    sys.argv = [PROG] + argv
    try:
        _hydra_app()
    except KeyboardInterrupt as exc:
        sweep.finish_active_sweep("KILLED")
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"{PROG}: interrupted ({signal.Signals(signum).name}); runs marked KILLED",
              file=sys.stderr)
        return 128 + int(signum)
    except SystemExit as exc:   # Hydra exits 1 on errors it reports itself
        sweep.finish_active_sweep("FAILED")
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    finally:
        sys.argv = old_argv
        signal.signal(signal.SIGTERM, previous)
    sweep.finish_active_sweep("FAILED")   # only if on_multirun_end did not run
    return EXIT_FAILED if job.FAILED_JOBS else 0


if __name__ == "__main__":
    sys.exit(main())
