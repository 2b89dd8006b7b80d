"""Checks of a config against this machine: a writable ``out``, the worker cap, and
whether the run's memory and output fit, all before any work.

The memory and output estimates are linear models whose constants were measured (see
``Footprint``); they refuse runs that clearly cannot fit, with the figures, and leave
the close calls to the run. ``check_resources=false`` (``oversubscribe=true`` for the
worker cap) runs anyway.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Optional

from ._errors import ConfigError, fail
from ._schema import ExperimentConfig, GeneratorConfig, ModelConfig

# The worker cap (oversubscribe=true lifts it): worker processes beyond this many
# per usable core only contend, and each needs its own memory.
WORKERS_PER_CORE = 4


@dataclass(frozen=True)
class Footprint:
    """What one run costs, per subscriber and per record: measured, not derived.

    How: ``benchmarks/bench_budget.py`` runs ``python -m cdrexp`` (1 repeat, csv unless
    said) and prints the peak PSS of the generator's process tree plus the runner's own
    PSS (both are on the machine) next to this estimate, and bytes per record from the
    runs' own metrics. Measured at cdrexp e127407 (workers forked from the generator
    process), 2026-12-05, 2 cores, load average 1-2, one run each:

    ===============================================================  =======  ========
    run (default model: 20.7 records per subscriber and day)         peak MB  estimate
    ===============================================================  =======  ========
    subs=20000 workers=1 (serial: the unit runs in the generator)        298       330
    subs=100000 workers=1                                                294       331
    subs=100000 workers=2                                                337       481
    subs=200000 workers=2                                                338       483
    subs=1000000 workers=2                                               345       499
    subs=50000 workers=2 avg_data_sessions_per_user=48                   421       583
    subs=20000 chunk_size=20000 avg_data_sessions_per_user=200           747       895
    the same, parquet                                                    754       895
    subs=200000 workers=2 parquet                                        416       483
    subs=100000 workers=2 chunk_size=50000 parquet                       642       717
    ===============================================================  =======  ========

    What they say: the runner ~234 MB and the generator process ~25-50 MB; the
    population 8 B per subscriber (bench_lean, 1M to 100M); a worker ~10 MB waiting, a
    CSV worker ~40 MB and a Parquet one ~80 MB at a default unit's peak (207,000
    records); ~120 B per record at 4M-record units, ~145 for Parquet at 1M. The
    constants below keep the estimate 11-45 % above every measured peak (before the
    workers were forked: 360 MB, 100 MB and 160 B, 30-80 % above), so the check refuses
    only runs that clearly do not fit. Bytes per record (20k subscribers): csv
    172.5-175.4, csv_gz 47.2, csv_zst 39.6, parquet 21.5-25.8. Re-run the script after a
    change to the model, the executors or the writers, and update these.
    """
    # the runner's process (Python, MLflow, Hydra) and the generator process (numpy, the
    # model, the writers) before generating
    parent_bytes: int = 300_000_000
    # what grows with the subscribers: the population's 8 B (the MSISDNs; 30 B before,
    # when 200k -> 1M added 70 B per subscriber to the runner's tree). The generator's
    # tree grew by ~8 B per subscriber from 1M to 100M (bench_lean, output=none); with a
    # margin for the runner
    population_bytes_per_sub: int = 20
    # one worker process besides its unit's records: ~10 MB PSS waiting (forked), and
    # what a unit adds that does not grow with it (the CSV slices and staging buffer,
    # Parquet's encoder and allocator pool)
    worker_bytes: int = 60_000_000
    # a unit's records while it generates and writes them (in a worker, or in the
    # generator process when the run is serial): ~120 B measured at 4M-record units,
    # ~145 for Parquet at 1M
    unit_bytes_per_record: int = 150
    # output bytes per record, per format (the default model's mix of CALL/SMS/DATA)
    bytes_per_record: tuple = (("csv", 180), ("csv_gz", 50), ("csv_zst", 42),
                               ("parquet", 28), ("none", 0))

    def record_bytes(self, fmt: str) -> int:
        return dict(self.bytes_per_record).get(fmt, 180)


FOOTPRINT = Footprint()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask; all of them off Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_cores = usable_cores     # for the functions whose parameter has its name


def resolved_workers(cfg: GeneratorConfig) -> int:
    """``workers`` with 0 meaning every core this process may run on."""
    return cfg.workers if cfg.workers > 0 else usable_cores()


def check_writable(key: str, path: str) -> None:
    """``path`` is (or can be created as) a directory this process can write in."""
    p = os.path.abspath(os.path.expanduser(path))
    probe = _existing_ancestor(p)
    if os.path.exists(p) and not os.path.isdir(p):
        fail(key, f"{path!r} exists and is not a directory")
    if not os.path.isdir(probe):
        fail(key, f"{path!r} is not writable: {probe} is not a directory")
    try:
        name_max = os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    for part in p.split(os.sep):
        if len(os.fsencode(part)) > name_max:
            fail(key, f"{_short(path)} is not a usable path: a name in it is "
                      f"{len(os.fsencode(part))} bytes long, more than {name_max}")
    try:  # try it: os.access says yes to root even where writing fails (/proc, ro mounts)
        tempfile.TemporaryFile(dir=probe).close()
    except OSError as exc:
        fail(key, f"{path!r} is not writable ({probe}: {exc.strerror or exc})")


def _short(path: str, keep: int = 80) -> str:
    return repr(path if len(path) <= keep else path[:keep] + "...")


def _existing_ancestor(path: str) -> str:
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe


def _units(cfg: GeneratorConfig) -> int:
    return cfg.days * -(-cfg.subs // cfg.model.chunk_size)


def check_worker_cap(cfg: ExperimentConfig, usable_cores: int | None = None,
                     available_bytes: int | None = None, *, by_memory: bool = True) -> None:
    """The worker processes the run would start fit this machine: at most
    ``WORKERS_PER_CORE`` per usable core and no more than the available memory holds.

    Only as many workers as there are units ever start, so ``workers`` beyond that is
    not an error. Lifted by ``oversubscribe=true``; not checked for a remote Dask cluster
    (``executor.address``), whose machines are not this one.
    """
    if cfg.oversubscribe or cfg.executor.address:
        return
    units = _units(cfg)
    workers = min(resolved_workers(cfg), units)
    if workers <= 1:
        return
    usable = _cores() if usable_cores is None else usable_cores
    if available_bytes is None:
        available_bytes = _available_memory()
    per_worker = _worker_bytes(cfg)
    by_cores = WORKERS_PER_CORE * usable
    fit = max(1, int(available_bytes // per_worker))
    by_memory = by_memory and getattr(cfg, "check_resources", True)
    if workers > (min(by_cores, fit) if by_memory else by_cores):
        fail("workers", f"{workers} worker processes (of {units} units) is more than this "
                        f"machine holds: {by_cores} by cores ({WORKERS_PER_CORE} x "
                        f"{usable} usable), {fit} by memory "
                        f"({available_bytes / 1e9:.1f} GB available, ~"
                        f"{per_worker / 1e6:.0f} MB each); lower it, or add "
                        f"oversubscribe=true to start them anyway")


# ---- memory and output size -------------------------------------------------------------

def day_factors(m: ModelConfig, start: str, days: int) -> tuple[float, float]:
    """(sum, max) over the run's days of seasonality x special day: the volume of the
    whole run and of its busiest day, in days at the model's average rates."""
    first = dt.date.fromisoformat(start)
    # whole months at a time: days=3,000,000 must not cost seconds
    total, busiest, day = 0.0, 0.0, 0
    while day < days:
        date = first + dt.timedelta(days=day)
        in_month = min(days - day, _days_left_in_month(date))
        factor = float(m.seasonality[date.month - 1])
        total += factor * in_month
        busiest = max(busiest, factor)
        day += in_month
    for key, special in m.special_days.items():
        date = dt.date.fromisoformat(str(key))
        offset = (date - first).days
        if 0 <= offset < days:
            factor = float(m.seasonality[date.month - 1])
            total += factor * (float(special) - 1.0)
            busiest = max(busiest, factor * float(special))
    return total, busiest


def _days_left_in_month(date: dt.date) -> int:
    nxt = (date.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return (nxt - date).days


def records_per_sub_day(m: ModelConfig) -> float:
    """Records per subscriber on a day of volume factor 1 (mirrored on-net calls add
    the counterparty's record)."""
    calls = m.avg_calls_per_user
    if m.mirror_onnet_calls:
        calls *= 2 - m.interconnect_share
    return calls + m.avg_sms_per_user + m.avg_data_sessions_per_user


@dataclass(frozen=True)
class Estimate:
    memory_bytes: float        # peak PSS of the process tree
    output_bytes: float        # what one run writes (twice with a profiled run)
    records: float


def _worker_bytes(cfg: GeneratorConfig, busiest: float | None = None,
                  fp: Footprint = FOOTPRINT) -> float:
    if busiest is None:
        busiest = max(float(v) for v in cfg.model.seasonality) * max(
            [1.0] + [float(v) for v in cfg.model.special_days.values()])
    unit_records = min(cfg.model.chunk_size, cfg.subs) * \
        records_per_sub_day(cfg.model) * busiest
    return fp.worker_bytes + fp.unit_bytes_per_record * unit_records


def estimate(cfg: ExperimentConfig, fp: Footprint = FOOTPRINT) -> Estimate:
    total_days, busiest = day_factors(cfg.model, cfg.start, cfg.days)
    records = cfg.subs * records_per_sub_day(cfg.model) * total_days
    workers = min(resolved_workers(cfg), _units(cfg))
    memory = fp.parent_bytes + fp.population_bytes_per_sub * cfg.subs
    if cfg.executor.address is not None:
        pass                            # a remote cluster's workers are not this machine's
    elif workers <= 1:                  # serial: the unit runs in the runner
        memory += _worker_bytes(cfg, busiest, fp) - fp.worker_bytes
    else:
        memory += workers * _worker_bytes(cfg, busiest, fp)
    copies = 2 if getattr(cfg.profiler, "name", "none") != "none" else 1
    return Estimate(memory, records * fp.record_bytes(cfg.output.format) * copies, records)


def _available_memory() -> int:
    import psutil
    return psutil.virtual_memory().available


def check_resources(cfg: ExperimentConfig, available_bytes: Optional[int] = None,
                    free_disk_bytes: Optional[int] = None) -> None:
    """Refuse, before any work, a run whose estimated memory exceeds what is available,
    or whose output exceeds the free space at a local ``out``. Lifted by
    ``check_resources=false``."""
    if not cfg.check_resources:
        return
    est = estimate(cfg)
    way_out = ("lower subs, days or the model's rates, or add check_resources=false to "
               "run anyway")
    if available_bytes is None:
        available_bytes = _available_memory()
    if est.memory_bytes > available_bytes:
        raise ConfigError(f"subs: the run needs ~{_gb(est.memory_bytes)} of memory "
                          f"({est.records:,.0f} records), this machine has "
                          f"{_gb(available_bytes)} available; {way_out}")
    if "://" in cfg.out:
        return
    if free_disk_bytes is None:
        free_disk_bytes = shutil.disk_usage(_existing_ancestor(
            os.path.abspath(os.path.expanduser(cfg.out)))).free
    if est.output_bytes > free_disk_bytes:
        raise ConfigError(f"out: the run writes ~{_gb(est.output_bytes)} "
                          f"({est.records:,.0f} records as {cfg.output.format}), "
                          f"{cfg.out} has {_gb(free_disk_bytes)} free; {way_out}")


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n < 1e12 else f"{n / 1e12:,.1f} TB"
