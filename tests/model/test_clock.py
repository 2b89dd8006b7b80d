"""Start times: diurnal profile, local -> UTC with DST, sorted without a sort."""
import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import stats

from cdrexp.config import ModelConfig
from cdrexp.model._clock import day_clock, day_factor, sorted_local_seconds
from model_helpers import P_FLOOR, day_table

AMS = ZoneInfo("Europe/Amsterdam")


def local_times(table):
    start = table["start_ts_ms"].to_numpy()
    offset = table["tz_offset_min"].to_numpy().astype(np.int64)
    return start, offset, start // 1000 + offset * 60


@pytest.mark.parametrize("date", ["2025-03-30", "2025-10-26", "2025-01-06", "2024-06-15"])
def test_day_clock_matches_zoneinfo(date):
    day = dt.date.fromisoformat(date)
    clock = day_clock("Europe/Amsterdam", day)
    for sec in range(0, 86_400, 97):
        naive = dt.datetime.combine(day, dt.time(0)) + dt.timedelta(seconds=sec)
        instant = int(naive.replace(tzinfo=AMS, fold=0).timestamp())
        assert clock.utc_second[sec] == instant
        offset = dt.datetime.fromtimestamp(instant, AMS).utcoffset().total_seconds() // 60
        assert clock.offset_min[sec] == offset


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize("date", ["2025-03-30", "2025-10-26", "2025-04-06", "2025-01-06"])
def test_day_clock_convert_equals_the_lookup(zone, date):
    """``convert`` (runs of equal shift) gives what the per-second tables give."""
    clock = day_clock(zone, dt.date.fromisoformat(date))
    local = np.sort(np.random.default_rng(3).integers(0, 86_400, 50_000)).astype(np.int32)
    local[:3], local[-3:] = 0, 86_399          # both ends of the day
    utc, offset = clock.convert(local)
    assert utc.dtype == np.int64 and offset.dtype == np.int16
    np.testing.assert_array_equal(utc, clock.utc_second[local])
    np.testing.assert_array_equal(offset, clock.offset_min[local])
    assert clock.run_shift.size >= 1


def test_sorted_local_seconds_follow_the_profile():
    rng = np.random.default_rng(1)
    share = np.asarray(ModelConfig().diurnal_weekday)
    share = share / share.sum()
    sec = sorted_local_seconds(rng, 200_000, share)
    assert np.all(np.diff(sec) >= 0)
    assert sec.min() >= 0 and sec.max() < 86_400
    observed = np.bincount(sec // 3600, minlength=24)
    assert stats.chisquare(observed, share * sec.size).pvalue > P_FLOOR
    # second within the hour: uniform (60 bins of a minute)
    minute = np.bincount((sec % 3600) // 60, minlength=60)
    assert stats.chisquare(minute).pvalue > P_FLOOR


def test_zero_share_hours_get_no_records():
    share = np.zeros(24)
    share[[3, 10]] = 0.5
    sec = sorted_local_seconds(np.random.default_rng(2), 10_000, share)
    assert set(np.unique(sec // 3600).tolist()) == {3, 10}


@pytest.mark.parametrize("date, weekend", [("2025-01-06", False), ("2025-01-11", True)])
def test_hour_of_day_shares_match_the_profile(default_cfg, default_population, date, weekend):
    table = day_table(default_cfg, default_population, date)
    _, offset, local = local_times(table)
    assert set(offset.tolist()) == {60}
    m = default_cfg.model
    share = np.asarray(m.diurnal_weekend if weekend else m.diurnal_weekday)
    hours = np.bincount((local % 86_400) // 3600, minlength=24)
    assert stats.chisquare(hours, share / share.sum() * hours.sum()).pvalue > P_FLOOR


def test_spring_forward_day(default_cfg, default_population):
    table = day_table(default_cfg, default_population, "2025-03-30")   # 02:00 -> 03:00
    start, offset, local = local_times(table)
    assert np.all(start % 1000 == 0)
    assert set(offset.tolist()) == {60, 120}
    local_dt = [dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(s)) for s in local]
    assert all(t.date() == dt.date(2025, 3, 30) for t in local_dt)
    assert not any(t.hour == 2 for t in local_dt)                 # nothing in the gap
    # before 03:00 local the offset is +60, from 03:00 on +120
    hours = np.array([t.hour for t in local_dt])
    assert np.all(offset[hours < 2] == 60) and np.all(offset[hours >= 3] == 120)
    # the gap hour's share moved forward into 03:xx (binomial bound on its count)
    share = np.asarray(default_cfg.model.diurnal_weekend)
    share = share / share.sum()
    p3 = share[2] + share[3]
    n3 = int(np.sum(hours == 3))
    assert stats.binomtest(n3, hours.size, p3).pvalue > P_FLOOR
    # each chunk is in UTC order (the gap draws were re-sorted)
    for chunk in table.to_batches():
        assert np.all(np.diff(chunk["start_ts_ms"].to_numpy()) >= 0)


def test_fall_back_day(default_cfg, default_population):
    table = day_table(default_cfg, default_population, "2025-10-26")   # 03:00 -> 02:00
    start, offset, local = local_times(table)
    assert np.all(start % 1000 == 0)
    assert set(offset.tolist()) == {60, 120}
    hours = (local % 86_400) // 3600
    assert np.all(local // 86_400 == local[0] // 86_400)          # one local date
    assert np.all(offset[hours == 2] == 120)                      # first occurrence
    assert np.all(offset[hours < 2] == 120) and np.all(offset[hours >= 3] == 60)
    # the second 02:00-03:00 (UTC 01:00-02:00) is never used
    utc_hour = (start // 1000 - 1761436800) // 3600               # UTC midnight 10-26
    assert not np.any(utc_hour == 1)


def test_day_factor_combines_season_and_special_days():
    m = ModelConfig(special_days={"2025-07-04": 2.0})
    assert day_factor(m, dt.date(2025, 7, 4)) == pytest.approx(1.2 * 2.0)
    assert day_factor(m, dt.date(2025, 7, 5)) == pytest.approx(1.2)
    assert day_factor(m, dt.date(2025, 2, 1)) == pytest.approx(0.9)
