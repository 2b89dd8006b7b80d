"""One work unit, start to finish: generate its records, write its files, report stats."""
from __future__ import annotations

import os
import socket
import time

from ..config import GeneratorConfig, resolved_workers
from ..model import Unit
from ..stats import UnitResult


class ExecutionError(RuntimeError):
    """A run that could not complete; the message names the unit or the fault."""


def run_unit(cfg: GeneratorConfig, population, unit: Unit) -> UnitResult:
    return start_unit(cfg, population, unit).finish()


def start_unit(cfg: GeneratorConfig, population, unit: Unit, before_writing=None):
    """``run_unit`` in two steps, for a worker that keeps the disk busy: generate the
    records, call ``before_writing()`` (the worker finishes its previous unit there, whose
    last writes went on while these records were generated), format and write them;
    returns a ``PendingUnit`` whose ``finish()`` waits for the last writes and gives the
    ``UnitResult``."""
    from ..model import generate_records   # noqa: the model's heavy imports stay lazy
    from ..writers import start_writing, writer_threads

    t0 = time.perf_counter()
    records = generate_records(cfg, population, unit)
    gen_s = time.perf_counter() - t0
    if before_writing is not None:
        before_writing()
    pending = start_writing(records, cfg.output, cfg.out, unit,
                            threads=writer_threads(resolved_workers(cfg)))
    pending.result.generation_s = gen_s
    pending.result.process = process_id()
    return pending


# LocalExecutor's workers run a unit function's two-step form when it has one
run_unit.start = start_unit


def process_id() -> str:
    """This process among every machine's: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def discard_unit(cfg: GeneratorConfig, unit: Unit) -> list[str]:
    """Remove whatever a unit left behind when its process died mid-unit (SIGKILL, OOM):
    parts already renamed to final names and temporary files. A unit's files are all or
    nothing; a live writer does this itself, a killed one cannot. Returns the removed
    paths (relative to ``cfg.out``)."""
    import posixpath

    from ..writers import output_fs, part_name

    if cfg.output.format == "none":
        return []
    date = unit.date.isoformat()
    first = posixpath.basename(part_name(date, unit.chunk, 0, cfg.output.format))
    stem = first[:first.rindex("_p") + 2]           # cdr_<date>_c<chunk>_p
    fs = output_fs(cfg.out)
    if not fs.isdir(date):
        return []
    removed = []
    for name in fs.listdir(date):
        if name.startswith(stem) or name.startswith("." + stem):
            fs.remove(f"{date}/{name}")
            removed.append(f"{date}/{name}")
    return removed
