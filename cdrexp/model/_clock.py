"""Start times of a day's records: the diurnal profile, local time to UTC, volume factor.

Records of a unit are exchangeable, so instead of drawing a time per record and sorting,
the unit draws its n start times directly in sorted order (n sorted uniforms from the
normalised cumulative sum of n + 1 exponentials, pushed through the profile's piecewise
uniform inverse CDF): O(n), no sort.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from ..config import ModelConfig


@dataclass(frozen=True)
class DayClock:
    """Local second of one calendar date -> UTC epoch second and UTC offset (minutes)."""
    utc_second: np.ndarray    # int64[86400]
    offset_min: np.ndarray    # int16[86400], the zone's offset at that UTC instant
    monotone: bool            # False on a spring-forward day: the gap folds onto later times
    # the day as runs of local seconds [start[j], start[j + 1]) on which
    # utc_second = local + shift[j] and offset_min = offset[j] (one run on most days)
    run_start: np.ndarray     # int64[runs + 1], 0 ... 86400
    run_shift: np.ndarray     # int64[runs]
    run_offset: np.ndarray    # int16[runs]

    def convert(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(utc_second[local], offset_min[local])`` for SORTED local seconds, by runs:
        one add per run instead of two gathers per record."""
        bounds = np.searchsorted(local, self.run_start)
        utc = np.empty(local.size, dtype=np.int64)
        offset = np.empty(local.size, dtype=np.int16)
        for j in range(self.run_shift.size):
            a, b = bounds[j], bounds[j + 1]
            if a < b:
                np.add(local[a:b], self.run_shift[j], out=utc[a:b])
                offset[a:b] = self.run_offset[j]
        return utc, offset


@lru_cache(maxsize=8)
def day_clock(tz_name: str, date: dt.date) -> DayClock:
    """Built with zoneinfo once per local minute (offsets change on minute boundaries).

    A local time in a spring-forward gap takes the offset from before the transition
    (``fold=0``), which moves it forward by the gap; an ambiguous time takes ``fold=0``,
    its first occurrence.
    """
    zone = ZoneInfo(tz_name)
    midnight = dt.datetime.combine(date, dt.time(0))
    utc_minute = np.empty(1440, dtype=np.int64)
    offset_minute = np.empty(1440, dtype=np.int16)
    for minute in range(1440):
        local = (midnight + dt.timedelta(minutes=minute)).replace(tzinfo=zone, fold=0)
        instant = int(local.timestamp())
        utc_minute[minute] = instant
        at_instant = dt.datetime.fromtimestamp(instant, zone).utcoffset()
        offset_minute[minute] = round(at_instant.total_seconds() / 60)
    utc_second = (np.repeat(utc_minute, 60) + np.tile(np.arange(60, dtype=np.int64), 1440))
    offset_min = np.repeat(offset_minute, 60)
    shift = utc_second - np.arange(utc_second.size, dtype=np.int64)
    starts = np.flatnonzero((np.diff(shift) != 0) | (np.diff(offset_min) != 0)) + 1
    run_start = np.concatenate(([0], starts, [utc_second.size])).astype(np.int64)
    return DayClock(utc_second, offset_min, bool(np.all(np.diff(utc_second) >= 0)),
                    run_start, shift[run_start[:-1]], offset_min[run_start[:-1]])


def day_factor(m: ModelConfig, date: dt.date) -> float:
    """seasonality[month] x special_days[date]: scales the day's volume."""
    special = {dt.date.fromisoformat(str(k)): float(v) for k, v in m.special_days.items()}
    return float(m.seasonality[date.month - 1]) * special.get(date, 1.0)


def diurnal_profile(m: ModelConfig, date: dt.date) -> np.ndarray:
    """The 24 hour shares of the local date (weekday or weekend), summing to 1."""
    values = m.diurnal_weekend if date.weekday() >= 5 else m.diurnal_weekday
    p = np.asarray(values, dtype=np.float64)
    return p / p.sum()


def sorted_local_seconds(rng: np.random.Generator, n: int,
                         hour_share: np.ndarray) -> np.ndarray:
    """n i.i.d. local seconds-of-day (hour by ``hour_share``, second uniform), sorted."""
    spacing = rng.standard_exponential(n + 1)
    np.cumsum(spacing, out=spacing)
    u = spacing[:-1]
    u /= spacing[-1]                  # n sorted uniforms in (0, 1)
    cdf = np.concatenate(([0.0], np.cumsum(hour_share)))
    cdf /= cdf[-1]     # exactly 1 from the last non-zero hour on: no draw lands after it
    # Python numbers for the per-hour steps (numpy scalars cost more per call; the
    # float64 arithmetic is the same)
    bounds = np.searchsorted(u, cdf, side="left").tolist()
    edge = cdf.tolist()
    hours = [(hour, bounds[hour], bounds[hour + 1]) for hour in range(24)
             if bounds[hour] < bounds[hour + 1]]
    for hour, a, b in hours:          # u becomes the second within its hour, in place
        within = u[a:b]
        within -= edge[hour]
        within *= 3600.0 / (edge[hour + 1] - edge[hour])
    # elementwise steps once over the whole day rather than once per hour (np.clip's
    # Python wrapper alone cost ~13 us a call)
    np.clip(u, 0, 3599, out=u)
    seconds = u.astype(np.int32)      # the cast truncates
    for hour, a, b in hours:
        seconds[a:b] += hour * 3600
    return seconds


def start_times(rng: np.random.Generator, n: int, m: ModelConfig, date: dt.date):
    """Sorted UTC start seconds (int64) and the zone offset at each (int16 minutes)."""
    local = sorted_local_seconds(rng, n, diurnal_profile(m, date))
    clock = day_clock(m.tz_name, date)
    utc, offset = clock.convert(local)
    if not clock.monotone:   # gap times land after early post-gap ones: re-sort that day
        order = np.argsort(utc, kind="stable")
        utc, offset = utc[order], offset[order]
    return utc, offset
