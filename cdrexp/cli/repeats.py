"""``python -m cdrexp.cli.repeats --config resolved.yaml --warmup W --repeats R --events-fd N``:
a job's warm-ups and measured repeats, in one lean process of their own.

The job (``cli.job``, with MLflow and Hydra imported: ~300 MB PSS and 2+ CPU-s) starts
this process once per job, so what a repeat measures is the generator's own process
tree (this process and its workers, forked from it; or a forkserver's, and its resource
tracker, when forking is not safe: ``parallel._fork``), as ``cdrexp.ab`` measures it, and
not the runner's imports. Warm-ups and repeats share this process, so a forkserver
started by the first run serves the later ones.

It reads the resolved config as ``cli.child`` does (PyYAML, ``config.from_plain``; no
OmegaConf), imports neither MLflow, Hydra, pandas, scipy nor matplotlib, and tells the
job what happens as JSON lines on file descriptor N (``EVENT_*`` below): a run's start,
its progress, each measured repeat's ``Measurement`` and ``GenerationStats``, or the
one line saying why it failed. Exit codes: 0 done, 1 failed (said as an event), 2 a bad
config, 128 + signal when stopped by SIGINT / SIGTERM (quietly: the job says it).
A job that dies takes this process with it (``PR_SET_PDEATHSIG``: SIGTERM, which stops
the workers and releases the shared memory as a Ctrl-C does).
"""
from __future__ import annotations

import signal

if __name__ == "__main__":
    # a signal while the imports below run (a third of a second) is noted, and acted on
    # as soon as main() has installed the real handlers: no KeyboardInterrupt traceback
    # (hence the imports after this block)
    _early: list[int] = []
    for _sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_sig, lambda signum, frame: _early.append(signum))

import json
import os
import sys
import threading
import traceback
from dataclasses import asdict, dataclass
from typing import Callable

from ..config import ConfigError, GeneratorConfig
from ..parallel import (Interrupted, install_stop_handlers, restore_handlers,
                        sigterm_when_parent_dies)
from ..stats import GenerationStats, Progress
from ..tracking.measure import Measurement, measure
from ..usage import one_line

MODULE = "cdrexp.cli.repeats"
# the events, one JSON object a line, each with "event" set to one of these
EVENT_RUN = "run"           # a generation starts: {"description"}
EVENT_PROGRESS = "progress"  # {"units_done", "units_total", "rows_written"}
EVENT_REPEAT = "repeat"     # a measured repeat ended: {"index", "measurement", "stats"}
EVENT_ERROR = "error"       # it failed: {"message": one line, "traceback"}
EXIT_FAILED, EXIT_CONFIG = 1, 2


@dataclass
class Repeat:
    measurement: Measurement
    stats: GenerationStats

    def to_event(self, index: int) -> dict:
        return {"event": EVENT_REPEAT, "index": index,
                "measurement": self.measurement.to_dict(), "stats": self.stats.to_dict()}

    @classmethod
    def from_event(cls, event: dict) -> "Repeat":
        return cls(Measurement(**event["measurement"]),
                   GenerationStats.from_dict(event["stats"]))


def run_repeats(cfg: GeneratorConfig, warmup: int, repeats: int,
                emit: Callable[[dict], None] = lambda event: None) -> list[Repeat]:
    """``warmup`` unmeasured runs, then ``repeats`` measured ones, in this process. Each
    run replaces the previous run's files in ``out``, deleted before the timer starts (at
    10M subscribers that is ~35 GB of unlinks, no part of a generation)."""
    from ..generation import generate
    from ..writers import clear_output

    def run(description: str) -> GenerationStats:
        emit({"event": EVENT_RUN, "description": description})
        return generate(cfg, lambda p: emit({"event": EVENT_PROGRESS, **asdict(p)}))

    for i in range(warmup):
        run(f"warm-up {i + 1}/{warmup}")
    done = []
    for i in range(repeats):
        clear_output(cfg)
        # a remote Dask cluster's workers measured themselves: added to this tree's
        stats, m = measure(lambda: run(f"repeat {i + 1}/{repeats}"),
                           remote=lambda s: s.cluster)
        done.append(Repeat(m, stats))
        emit(done[-1].to_event(i))
    return done


def progress_of(event: dict) -> Progress:
    return Progress(event["units_done"], event["units_total"], event["rows_written"])


def main(argv=None) -> int:
    import argparse
    from .child import load_config

    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    ap.add_argument("--config", required=True, help="a resolved config YAML")
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--events-fd", type=int, required=True,
                    help="write the events here, one JSON object a line")
    ap.add_argument("--parent", type=int, help="the job's pid: exit when it does")
    args = ap.parse_args(argv)
    os.set_inheritable(args.events_fd, False)   # for this process alone, not its children
    events = os.fdopen(args.events_fd, "w", buffering=1)
    lock = threading.Lock()     # progress may be reported from an executor's thread

    def emit(event: dict) -> None:
        try:
            with lock:
                events.write(json.dumps(event) + "\n")
        except OSError:
            pass    # the job is gone: its death signal stops this process

    # a signal from here on stops the run cleanly; a second one is ignored, and quietly
    # (after a terminal's Ctrl-C the job forwards the signal it got too)
    previous = install_stop_handlers(say_again=False)
    try:
        if globals().get("_early"):
            raise Interrupted(_early[0])
        # the job's death (even by SIGKILL) SIGTERMs this process: it then stops as after
        # a Ctrl-C
        if args.parent and not sigterm_when_parent_dies(args.parent):
            raise Interrupted(signal.SIGTERM)
        try:
            cfg = load_config(args.config)      # the job checked it: this only re-checks
        except ConfigError as exc:
            emit({"event": EVENT_ERROR, "message": f"config error: {exc}", "traceback": ""})
            return EXIT_CONFIG
        run_repeats(cfg, args.warmup, args.repeats, emit)
        return 0
    except Interrupted as exc:
        return 128 + exc.signum
    except Exception as exc:    # the job reports it: one line, the traceback in its dir
        emit({"event": EVENT_ERROR, "message": one_line(exc),
              "traceback": traceback.format_exc()})
        return EXIT_FAILED
    finally:
        try:
            events.close()
        except OSError:
            pass        # the job is gone
        restore_handlers(previous)


if __name__ == "__main__":
    sys.exit(main())
