"""The value checks of a typed config: every key's value on its own and against the others.

Every check raises ``ConfigError`` whose message starts with the dotted key it is about,
so the CLI can print it as the one line a user sees. Converting raw config to the typed
objects is ``_convert``'s job; what this machine can hold (cores, memory, disk, a
writable ``out``) is ``_budget``'s.

Every float key must be finite, and the keys in ``FLOAT_RANGES`` within the range the
generator honours (docs/configuration.md lists them; a test keeps the two in step).
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import importlib.util
import math
import re
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Iterable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._schema import (CHECKSUMS, EXECUTORS, GZIP_BACKEND_MODULES, GZIP_BACKENDS,
                      OUTPUT_FORMATS, PROFILERS, RATS, ExperimentConfig, GeneratorConfig, ModelConfig,
                      OutputConfig)
from ._budget import check_writable
from ._errors import fail

PROB_TOL = 1e-6
# The dates a run may cover: a day's records are converted to UTC and back, which reaches
# up to a day beyond the local date, and Python's dates end at years 1 and 9999.
FIRST_DATE, LAST_DATE = dt.date(1, 1, 2), dt.date(9999, 12, 30)


@dataclass(frozen=True)
class Range:
    """``low <= value <= high`` (``low < value`` when ``low_open``)."""
    low: float
    high: float
    low_open: bool = False
    why: str = ""

    def holds(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}]"


def _num(x: float) -> str:
    return f"{x:,.0f}".replace(",", "_") if x == int(x) and abs(x) < 1e7 else f"{x:g}"


# What the generator can honour, per float key (``*``: any RAT). Every other float key
# must still be finite; probabilities and shares have their own checks (in [0, 1], sum 1).
FLOAT_RANGES: dict[str, Range] = {
    # a subscriber's activity multiplier is exp(sigma Z - sigma^2 / 2) in float32: beyond
    # ~13 it underflows to 0 for everyone; 5 already gives a median of 0.0000037
    "model.activity_sigma": Range(0, 5, why="lognormal sigma of activity"),
    # contacts are capped at subs - 1 anyway; the cap keeps the harmonic table small
    "model.contacts_mean": Range(0, 1_000_000, why="mean contacts per subscriber"),
    "model.radius_km": Range(0, 20_000, why="half the Earth's circumference"),
    # records per subscriber and day: numpy's Poisson sampler takes rates up to ~1e18,
    # the memory and disk checks refuse sizes this machine cannot hold
    "model.avg_calls_per_user": Range(0, 1_000_000, why="per day"),
    "model.avg_sms_per_user": Range(0, 1_000_000, why="per day"),
    "model.avg_data_sessions_per_user": Range(0, 1_000_000, why="per day"),
    "model.diurnal_weekday": Range(0, 1_000_000, why="relative weights"),
    "model.diurnal_weekend": Range(0, 1_000_000, why="relative weights"),
    "model.seasonality": Range(0, 1_000, why="volume factor per month"),
    "model.special_days.*": Range(0, 1_000, why="volume factor of the day"),
    # talk time is lognormal(p50, sigma <= 2) seconds in int32: p50 <= 1 h keeps even
    # a 6-sigma call below 2^31 s
    "model.call_duration_quantiles.p50": Range(0, 3_600, low_open=True, why="seconds"),
    "model.call_duration_quantiles.p90": Range(0, 86_400, low_open=True,
                                               why="seconds, and > p50"),
    # DATA sessions: duration normal(mean, sd) in int32 seconds, bytes in int64
    "model.data_rat_profiles.*.duration_mean": Range(0, 86_400, why="seconds"),
    "model.data_rat_profiles.*.duration_sd": Range(0, 86_400, why="seconds"),
    "model.data_rat_profiles.*.downlink_mean": Range(0, 1e12, why="bytes"),
    "model.data_rat_profiles.*.downlink_sd": Range(0, 1e12, why="bytes"),
    "model.data_rat_profiles.*.uplink_ratio_min": Range(0, 100, why="uplink / downlink"),
    "model.data_rat_profiles.*.uplink_ratio_max": Range(0, 100, why="uplink / downlink"),
}


def _float_leaves(obj: Any, key: str) -> Iterator[tuple[str, str, float]]:
    """(key, key pattern with list indices dropped, value) of every float in ``obj``."""
    if is_dataclass(obj):
        for f in fields(obj):
            yield from _float_leaves(getattr(obj, f.name), f"{key}.{f.name}".lstrip("."))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _float_leaves(v, f"{key}.{k}")
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _float_leaves(v, key)
    elif isinstance(obj, float):
        yield key, key, obj


def check_floats(cfg: Any, key: str = "") -> None:
    """Every float of ``cfg`` is finite, and within ``FLOAT_RANGES`` where listed."""
    for name, _, value in _float_leaves(cfg, key):
        if not math.isfinite(value):
            _fail(name, f"must be a finite number, got {value!r}")
        for pattern, allowed in FLOAT_RANGES.items():
            if fnmatch.fnmatchcase(name, pattern) and not allowed.holds(value):
                _fail(name, f"must be in {allowed} ({allowed.why}), got {value!r}")


_fail = fail


def _check_prob(key: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        _fail(key, f"must be a probability in [0, 1], got {value!r}")


def _check_shares(key: str, obj: Any) -> None:
    values = {f.name: getattr(obj, f.name) for f in fields(obj)} if is_dataclass(obj) \
        else dict(enumerate(obj))
    for name, v in values.items():
        if not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
            _fail(f"{key}.{name}", f"must be a non-negative number, got {v!r}")
    total = sum(values.values())
    if abs(total - 1.0) > PROB_TOL:
        _fail(key, f"probabilities must sum to 1, they sum to {total:.6g}")


def _check_positive(key: str, value: float, *, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or (isinstance(value, float) and math.isnan(value)):
        bound = ">= 0" if allow_zero else "> 0"
        _fail(key, f"must be {bound}, got {value!r}")


def _digits(n: int) -> int:
    return len(str(n))


def parse_date(key: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        _fail(key, f"must be a date YYYY-MM-DD, got {value!r}")


def validate_model(m: ModelConfig, subs: int | None = None, key: str = "model") -> None:
    check_floats(m, key)
    # identities
    if not m.prefixes:
        _fail(f"{key}.prefixes", "must not be empty")
    if len(set(m.prefixes)) != len(m.prefixes):
        _fail(f"{key}.prefixes", "must not repeat a prefix")
    for p in m.prefixes:
        if p <= 0:
            _fail(f"{key}.prefixes", f"must be positive numbers, got {p}")
    if len({_digits(p) for p in m.prefixes}) != 1:
        _fail(f"{key}.prefixes", "must all have the same number of digits")
    if subs is not None and subs > len(m.prefixes) * 10**7:
        _fail("subs", f"{subs} subscribers do not fit in {len(m.prefixes)} prefixes "
                      f"x 10^7 numbers ({len(m.prefixes) * 10**7}); add model.prefixes")
    if not m.mccmnc_pool:
        _fail(f"{key}.mccmnc_pool", "must not be empty")
    for v in m.mccmnc_pool:
        if not 10_000 <= v <= 999_999:
            _fail(f"{key}.mccmnc_pool", f"must be 5- or 6-digit MCC+MNC codes, got {v}")
    if not m.offnet_prefixes:
        _fail(f"{key}.offnet_prefixes", "must not be empty")
    for p in m.offnet_prefixes:
        if p <= 0:
            _fail(f"{key}.offnet_prefixes", f"must be positive numbers, got {p}")
        for q in m.prefixes:
            a, b = str(p), str(q)
            if a.startswith(b) or b.startswith(a):
                _fail(f"{key}.offnet_prefixes", f"{p} overlaps on-net prefix {q}")
    _check_positive(f"{key}.activity_sigma", m.activity_sigma, allow_zero=True)
    _check_positive(f"{key}.contacts_mean", m.contacts_mean, allow_zero=True)
    _check_prob(f"{key}.imei_daily_change_prob", m.imei_daily_change_prob)
    # cells
    if m.cells < 1:
        _fail(f"{key}.cells", f"must be >= 1, got {m.cells}")
    if not -90 <= m.center_lat <= 90:
        _fail(f"{key}.center_lat", f"must be in [-90, 90], got {m.center_lat}")
    if not -180 <= m.center_lon <= 180:
        _fail(f"{key}.center_lon", f"must be in [-180, 180], got {m.center_lon}")
    _check_positive(f"{key}.radius_km", m.radius_km, allow_zero=True)
    _check_shares(f"{key}.cell_rat_shares", m.cell_rat_shares)
    _check_prob(f"{key}.home_cell_share", m.home_cell_share)
    # volumes and time
    for name in ("avg_calls_per_user", "avg_sms_per_user", "avg_data_sessions_per_user"):
        _check_positive(f"{key}.{name}", getattr(m, name), allow_zero=True)
    for name, n in (("diurnal_weekday", 24), ("diurnal_weekend", 24), ("seasonality", 12)):
        values = getattr(m, name)
        if len(values) != n:
            _fail(f"{key}.{name}", f"must have {n} values, got {len(values)}")
        for v in values:
            _check_positive(f"{key}.{name}", v, allow_zero=True)
    for name in ("diurnal_weekday", "diurnal_weekend"):
        if sum(getattr(m, name)) <= 0:
            _fail(f"{key}.{name}", "must have a positive sum")
    for day, factor in m.special_days.items():
        parse_date(f"{key}.special_days", day)
        _check_positive(f"{key}.special_days.{day}", factor, allow_zero=True)
    try:
        ZoneInfo(m.tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(f"{key}.tz_name", f"unknown time zone {m.tz_name!r} (use an IANA name such "
                                "as Europe/Amsterdam)")
    # CALL / SMS / DATA
    _check_prob(f"{key}.mo_share_call", m.mo_share_call)
    _check_prob(f"{key}.interconnect_share", m.interconnect_share)
    _check_shares(f"{key}.call_dispositions", m.call_dispositions)
    q = m.call_duration_quantiles
    _check_positive(f"{key}.call_duration_quantiles.p50", q.p50)
    if not q.p90 > q.p50:
        _fail(f"{key}.call_duration_quantiles.p90", f"must be > p50 ({q.p50}), got {q.p90}")
    _check_prob(f"{key}.mo_share_sms", m.mo_share_sms)
    _check_shares(f"{key}.sms_status", m.sms_status)
    if len(m.sms_segments) != 3:
        _fail(f"{key}.sms_segments", f"must have 3 values (1, 2, 3 segments), got "
                                     f"{len(m.sms_segments)}")
    _check_shares(f"{key}.sms_segments", m.sms_segments)
    _check_prob(f"{key}.data_pgw_share", m.data_pgw_share)
    _check_shares(f"{key}.data_rat_shares", m.data_rat_shares)
    for rat in RATS:
        p = getattr(m.data_rat_profiles, rat)
        k = f"{key}.data_rat_profiles.{rat}"
        _check_positive(f"{k}.downlink_mean", p.downlink_mean, allow_zero=True)
        _check_positive(f"{k}.downlink_sd", p.downlink_sd, allow_zero=True)
        _check_positive(f"{k}.duration_mean", p.duration_mean, allow_zero=True)
        _check_positive(f"{k}.duration_sd", p.duration_sd, allow_zero=True)
        _check_positive(f"{k}.uplink_ratio_min", p.uplink_ratio_min, allow_zero=True)
        if p.uplink_ratio_max < p.uplink_ratio_min:
            _fail(f"{k}.uplink_ratio_max", "must be >= uplink_ratio_min")
    _check_shares(f"{key}.apn_shares", m.apn_shares)
    if m.chunk_size < 1:
        _fail(f"{key}.chunk_size", f"must be >= 1, got {m.chunk_size}")
    for rat in RATS:
        if getattr(m.data_rat_shares, rat) > 0 and getattr(m.cell_rat_shares, rat) == 0:
            _fail(f"{key}.cell_rat_shares.{rat}",
                  f"is 0 but data_rat_shares.{rat} > 0: DATA records of {rat} need cells")
    for rat, n_cells in zip(RATS, rat_cell_counts(m.cells, m.cell_rat_shares)):
        if getattr(m.data_rat_shares, rat) > 0 and n_cells == 0:
            _fail(f"{key}.cells", f"{m.cells} cells leave no {rat} cell (cell_rat_shares."
                                  f"{rat} = {getattr(m.cell_rat_shares, rat)}) but "
                                  f"data_rat_shares.{rat} > 0: DATA records of {rat} "
                                  "need cells")


def validate_generator(cfg: GeneratorConfig) -> None:
    if cfg.subs < 1:
        _fail("subs", f"must be >= 1, got {cfg.subs}")
    if cfg.days < 1:
        _fail("days", f"must be >= 1, got {cfg.days}")
    _check_dates(cfg)
    if cfg.seed < 0:
        _fail("seed", f"must be >= 0, got {cfg.seed}")
    if cfg.workers < 0:
        _fail("workers", f"must be >= 0 (0 = all cores), got {cfg.workers}")
    if not cfg.out:
        _fail("out", "must not be empty")
    if "://" not in cfg.out:
        check_writable("out", cfg.out)
    else:   # where the URL is reachable from (client, Dask workers) shows when writing
        _check_fsspec_url("out", cfg.out)
    validate_output(cfg.output)
    _one_of("executor.name", cfg.executor.name, EXECUTORS)
    if cfg.executor.retries < 0:
        _fail("executor.retries", f"must be >= 0, got {cfg.executor.retries}")
    address = cfg.executor.address
    if address is not None and not _DASK_ADDRESS.match(str(address)):
        _fail("executor.address", f"expected a Dask scheduler address such as "
                                  f"tcp://HOST:8786, got {address!r}")
    validate_model(cfg.model, cfg.subs)


def _check_dates(cfg: GeneratorConfig) -> None:
    """Every date of the run, start to start + days - 1, within [FIRST_DATE, LAST_DATE]."""
    start = parse_date("start", cfg.start)
    if not FIRST_DATE <= start <= LAST_DATE:
        _fail("start", f"must be between {FIRST_DATE} and {LAST_DATE}, got {cfg.start}")
    most = (LAST_DATE - start).days + 1
    if cfg.days > most:
        _fail("days", f"{cfg.days} days from {start} run past {LAST_DATE}, the last date "
                      f"supported; at most {most} days from this start")


def validate_output(out: OutputConfig) -> None:
    _one_of("output.format", out.format, OUTPUT_FORMATS)
    if out.rotate_bytes < 1000:
        _fail("output.rotate_bytes", f"must be >= 1000, got {out.rotate_bytes}")
    _one_of("output.gzip_backend", out.gzip_backend, GZIP_BACKENDS)
    _one_of("output.checksum", out.checksum, CHECKSUMS)
    if out.format == "csv_gz" and importlib.util.find_spec(
            GZIP_BACKEND_MODULES[out.gzip_backend]) is None:
        _fail("output.gzip_backend", f"{out.gzip_backend!r} is not installed (its Python "
                                     f"package is {GZIP_BACKEND_MODULES[out.gzip_backend]!r});"
                                     f" install it or choose another of "
                                     f"{', '.join(GZIP_BACKENDS)}")
    level, levels = out.compression_level, out.level_range()
    if level is None:
        return
    if levels is None:
        _fail("output.compression_level", f"{out.format} has no compression level; "
                                          f"leave it null, got {level!r}")
    low, high, _ = levels
    if not low <= level <= high:
        codec = f"{out.format} with gzip_backend {out.gzip_backend}" \
            if out.format == "csv_gz" else out.format
        _fail("output.compression_level", f"must be in [{low}, {high}] for {codec}, "
                                          f"got {level!r}")


_DASK_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\S+$")


def _check_fsspec_url(key: str, url: str) -> None:
    """The URL's protocols (``s3``, ``simplecache::s3``...) are known to fsspec and their
    packages (s3fs, gcsfs, adlfs...) installed."""
    import fsspec

    for protocol in url.split("://", 1)[0].split("::"):
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            _fail(key, f"unknown fsspec protocol {protocol!r} in {url!r}")
        except ImportError as exc:
            _fail(key, f"{url!r} needs a package that is not installed: {exc}")


def _one_of(key: str, value: str, allowed: Iterable[str]) -> None:
    if value not in allowed:
        _fail(key, f"unknown value {value!r}; choose one of {', '.join(allowed)}")


def validate(cfg: GeneratorConfig) -> None:
    check_floats(cfg.output, "output")
    validate_generator(cfg)
    if isinstance(cfg, ExperimentConfig):
        if cfg.repeats < 1:
            _fail("repeats", f"must be >= 1, got {cfg.repeats}")
        if cfg.warmup < 0:
            _fail("warmup", f"must be >= 0, got {cfg.warmup}")
        _one_of("profiler.name", cfg.profiler.name, PROFILERS)
        if not 1 <= cfg.profiler.rate <= 10_000:
            _fail("profiler.rate", f"must be in [1, 10000] Hz, got {cfg.profiler.rate}")
        if not 1 <= cfg.profiler.freq <= 10_000:
            _fail("profiler.freq", f"must be in [1, 10000] Hz, got {cfg.profiler.freq}")
        if cfg.profiler.top_n < 1:
            _fail("profiler.top_n", f"must be >= 1, got {cfg.profiler.top_n}")


def rat_cell_counts(cells: int, shares) -> list[int]:
    """Cells per RAT (in ``RATS`` order): largest-remainder quotas summing to ``cells``."""
    weights = [float(getattr(shares, rat)) for rat in RATS]
    exact = [cells * w / sum(weights) for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(RATS)), key=lambda r: (-(exact[r] - counts[r]), r))
    for r in by_remainder[:cells - sum(counts)]:
        counts[r] += 1
    return counts
