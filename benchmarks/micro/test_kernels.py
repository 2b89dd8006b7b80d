"""Micro-benchmarks of the model's kernels (the seed's criterion suite, in pytest-benchmark).

Each benchmark calls the model's own function and checks its output's shape, so a broken
kernel fails here rather than timing nonsense. Where the seed had a kernel that is not a
separate function here, the nearest function is benchmarked (noted per test):

- Poisson counts: the model draws a unit's records by Poisson splitting
  (``records._record_owners``), not one Poisson count per subscriber and type.
- Hour-of-day sampling: start times are drawn already sorted
  (``_clock.sorted_local_seconds``; ``start_times`` adds the local -> UTC conversion).

Save a baseline and compare (see docs/comparing.md):

    python -m pytest benchmarks/micro --benchmark-autosave
    python -m pytest benchmarks/micro --benchmark-compare --benchmark-compare-fail=mean:10%
"""
import numpy as np
import pytest

from cdrexp.model import _clock, _events, _identity, cells
from cdrexp.model.records import _record_owners
from cdrexp.writers._csv_text import format_csv

from kernel_sizes import CHUNK_SUBS, MONDAY, RECORDS

IDX = np.arange(CHUNK_SUBS, dtype=np.int64)


@pytest.mark.benchmark(group="lognormal")
def test_lognormal_params_from_quantiles(benchmark, model):
    mu, sigma = benchmark(_events.talk_lognormal, model)
    assert mu == pytest.approx(np.log(75.0))
    assert 0.2 <= sigma <= 2.0


@pytest.mark.benchmark(group="poisson")
@pytest.mark.parametrize("activity_sigma", [0.0, 0.5], ids=["uniform", "lognormal"])
def test_poisson_counts_of_a_unit(benchmark, rng, unit, population, activity_sigma):
    """Nearest function: ``_record_owners`` (Poisson splitting over the unit's subscribers);
    with activity_sigma > 0 it draws one Poisson count per subscriber, then repeats and
    shuffles."""
    activity = population.subscribers(unit.first_sub, unit.n_subs).activity
    if activity_sigma:
        activity = rng.lognormal(-0.5 * activity_sigma ** 2, activity_sigma,
                                 unit.n_subs).astype(np.float32)
    rate = 20.7
    owners = benchmark(_record_owners, rng, unit, activity, rate)
    # total count: mean rate x n; variance n (rate + rate^2 var(activity)), 6 sd allowed
    var_activity = np.exp(activity_sigma ** 2) - 1
    sd = np.sqrt(unit.n_subs * (rate + rate ** 2 * var_activity))
    assert abs(owners.size - rate * unit.n_subs) < 6 * sd
    assert owners.max() < unit.n_subs


@pytest.mark.benchmark(group="durations")
def test_call_durations(benchmark, rng, model):
    n = RECORDS // 6                             # CALL is about 17 % of the records
    fields = benchmark(_events.call_fields, rng, model, n)
    assert fields.duration.size == n and fields.duration.min() >= 1


@pytest.mark.benchmark(group="durations")
def test_data_session_fields(benchmark, rng, model, population):
    """``fill_data``: RAT, cell, duration, volumes, APN of DATA records, written in place."""
    n = RECORDS * 58 // 100                      # DATA is about 58 % of the records
    home = population.home_cell[rng.integers(0, population.subs, n)]
    sessions = np.arange(n, dtype=np.int64)
    cols = {name: np.zeros(n, dtype) for name, dtype in (
        ("cell_id", np.int32), ("duration_sec", np.int32), ("data_duration_sec", np.int32),
        ("data_bytes_out", np.int64), ("data_bytes_in", np.int64), ("rat", np.int8),
        ("apn", np.int8), ("record_type", np.int8))}
    benchmark(_events.fill_data, rng, model, cols, sessions, home, population)
    assert cols["duration_sec"].min() >= 5 and cols["data_bytes_in"].min() >= 1000


@pytest.mark.benchmark(group="hour-of-day")
def test_hour_of_day_sampling_sorted(benchmark, rng, model):
    """Nearest function: ``sorted_local_seconds`` draws the unit's start seconds sorted."""
    profile = _clock.diurnal_profile(model, MONDAY)
    seconds = benchmark(_clock.sorted_local_seconds, rng, RECORDS, profile)
    assert seconds.size == RECORDS and np.all(np.diff(seconds) >= 0)


@pytest.mark.benchmark(group="hour-of-day")
def test_start_times_with_time_zone(benchmark, rng, model):
    utc, offset = benchmark(_clock.start_times, rng, RECORDS, model, MONDAY)
    assert utc.size == RECORDS and set(np.unique(offset)) == {60}


@pytest.mark.benchmark(group="identity")
def test_msisdns(benchmark, model):
    numbers = benchmark(_identity.msisdns, 7, model.prefixes, IDX)
    assert np.unique(numbers).size == IDX.size


@pytest.mark.benchmark(group="identity")
def test_imsis(benchmark, model):
    mccmnc = _identity.mccmnc_codes(7, model.mccmnc_pool, IDX)
    imsi = benchmark(_identity.imsis, 7, mccmnc, IDX)
    assert np.unique(imsi).size == IDX.size


@pytest.mark.benchmark(group="identity")
def test_imeis_with_luhn(benchmark):
    imei = benchmark(_identity.imeis, 7, IDX, 0)
    assert imei.size == IDX.size and imei.min() >= 10 ** 14


@pytest.mark.benchmark(group="identity")
def test_luhn_check_digit(benchmark):
    body = 35_000_000_000_000 + IDX * 7_919
    digits = benchmark(_identity.luhn_check_digit, body)
    assert digits.min() >= 0 and digits.max() <= 9


@pytest.mark.benchmark(group="identity")
def test_counterparties_of_calls(benchmark, rng, model, population):
    n = RECORDS * 42 // 100                      # CALL + SMS
    served = rng.integers(0, population.subs, n)
    k = population.n_contacts.take(served)
    party = benchmark(_events.counterparties, rng, model, population, served, k)
    assert party.number.size == n


@pytest.mark.benchmark(group="cells")
@pytest.mark.parametrize("n_cells", [2_000, 200_000])
def test_cell_placement(benchmark, model, n_cells):
    m = type(model)(**{**model.__dict__, "cells": n_cells})
    catalog = benchmark(cells.build_cells, m, 7)
    assert catalog.size == n_cells


@pytest.mark.benchmark(group="cells")
def test_cell_choice_of_calls(benchmark, rng, model, population):
    n = RECORDS * 42 // 100
    home = population.home_cell[rng.integers(0, population.subs, n)]
    cell = benchmark(_events.voice_cells, rng, model, home, population.cells)
    assert cell.size == n and cell.max() < population.cells


@pytest.mark.benchmark(group="csv")
def test_csv_formatting_of_a_chunk(benchmark, unit_table):
    text = benchmark(format_csv, unit_table)
    assert text.size > 100 * unit_table.num_rows
