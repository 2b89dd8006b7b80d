"""A fake population and unit function, to test the executors' machinery on its own.

Workers import this module by name, so it lives next to the tests (on sys.path).
"""
from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field

import numpy as np

from cdrexp.model.units import Unit
from cdrexp.stats import FileInfo, UnitResult


@dataclass
class FakeCfg:
    out: str
    n_units: int = 8
    chunk: int = 1000
    line_sleep: float = 0.0      # seconds between written lines: a unit takes 10x this
    fail_chunk: int = -1         # this chunk raises ValueError
    exit_chunk: int = -1         # this chunk calls os._exit(3)
    slow_chunk: int = -1         # this chunk sleeps slow_s first
    slow_s: float = 0.0
    extra: dict = field(default_factory=dict)


def fake_population(subs: int = 8000) -> dict:
    rng = np.random.default_rng(1)
    return {"msisdn": rng.integers(0, 10**11, subs, dtype=np.int64),
            "home_cell": rng.integers(1, 2000, subs, dtype=np.int32),
            "activity": rng.random(subs, dtype=np.float32),
            "empty": np.zeros(0, dtype=np.int16)}


def fake_units(cfg: FakeCfg) -> list[Unit]:
    d = dt.date(2025, 1, 1)
    return [Unit(0, c, d, c * cfg.chunk, cfg.chunk) for c in range(cfg.n_units)]


FOOTER = "END\n"


def _fake_generate(cfg: FakeCfg, population: dict, unit: Unit) -> int:
    """A fake unit's "generation": its faults, then a checksum of its population slice."""
    if unit.chunk == cfg.fail_chunk:
        raise ValueError(f"fake failure in chunk {unit.chunk}")
    if unit.chunk == cfg.exit_chunk:
        os._exit(3)
    if unit.chunk == cfg.slow_chunk:
        time.sleep(cfg.slow_s)
    sl = slice(unit.first_sub, unit.first_sub + unit.n_subs)
    return int(population["msisdn"][sl].sum() % 1_000_003
               + population["home_cell"][sl].sum())


def fake_unit(cfg: FakeCfg, population: dict, unit: Unit) -> UnitResult:
    """Checksums the unit's slice of the population into a file, temp name then rename."""
    return fake_start(cfg, population, unit).finish()


def fake_unit_two_step(cfg: FakeCfg, population: dict, unit: Unit) -> UnitResult:
    """``fake_unit`` with a two-step form (``.start``), as ``work.run_unit`` has."""
    return fake_unit(cfg, population, unit)


class FakePending:
    """A fake unit's file written but for its footer, under its temporary name."""

    def __init__(self, tmp: str, final: str, result: UnitResult):
        self.tmp, self.final, self.result = tmp, final, result

    def finish(self) -> UnitResult:
        with open(self.tmp, "a") as fh:
            fh.write(f"finished={time.time()!r}\n")
            fh.write(FOOTER)
        os.replace(self.tmp, self.final)
        info = self.result.files[0]
        self.result.files = [FileInfo(info.path, info.rows, os.path.getsize(self.final), "")]
        return self.result

    def abort(self) -> None:
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def fake_start(cfg: FakeCfg, population: dict, unit: Unit, before_writing=None):
    """Its "generation" (the faults, the checksum), ``before_writing()``, then its lines
    written slowly; the footer and the rename wait for ``finish()``."""
    generated = time.time()
    checksum = _fake_generate(cfg, population, unit)
    if before_writing is not None:
        before_writing()
    name = f"unit_{unit.chunk:05d}.txt"
    final = os.path.join(cfg.out, name)
    tmp = final + ".tmp"
    try:
        with open(tmp, "w") as fh:
            for i in range(10):
                fh.write(f"{unit.name};{i};{checksum}\n")
                fh.flush()
                if cfg.line_sleep:
                    time.sleep(cfg.line_sleep)
            fh.write(f"pid={os.getpid()};writeable={population['msisdn'].flags.writeable};"
                     f"generated={generated!r}\n")
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return FakePending(tmp, final, UnitResult(
        unit.day_index, unit.chunk, unit.date.isoformat(),
        rows_by_type={"CHECK": checksum, "LINES": 10},
        files=[FileInfo(name, 10, 0, "")]))


fake_unit_two_step.start = fake_start


def read_unit_file(path: str) -> dict:
    """The fields a fake unit wrote: lines, pid, writeable flag, whether it is complete,
    when it was generated and finished."""
    with open(path) as fh:
        lines = fh.readlines()
    meta = dict(kv.split("=") for kv in lines[10].strip().split(";")) if len(lines) > 10 else {}
    done = lines[11].strip().split("=")[1] if len(lines) == 13 else None
    return {"lines": lines, "pid": int(meta.get("pid", -1)), "writeable": meta.get("writeable"),
            "complete": len(lines) == 13 and lines[-1] == FOOTER,
            "generated": float(meta["generated"]) if "generated" in meta else None,
            "finished": float(done) if done else None}


def fake_discard(cfg: FakeCfg, unit: Unit) -> None:
    """What a killed fake unit leaves: its temp file (its final file is never partial)."""
    tmp = os.path.join(cfg.out, f"unit_{unit.chunk:05d}.txt.tmp")
    if os.path.exists(tmp):
        os.unlink(tmp)
