"""``generate_records``: every record of one (day, chunk) unit, as numpy columns
(``Records``); ``generate_unit``: the same as an Arrow table.

Per subscriber and type the counts are Poisson(mean_type x activity_i x day_factor). The
unit draws them the equivalent way that needs no sort: the total is Poisson with the
summed rate; each record independently belongs to subscriber i with probability
proportional to activity_i and is of a type with probability proportional to its mean
(Poisson splitting gives back exactly the independent per-(subscriber, type) Poisson
counts). Start times, i.i.d. from the day's profile, are drawn already sorted, and
records are built directly in time order; type-specific fields are computed per type and
scattered into place.
"""
from __future__ import annotations

import numpy as np

from ..config import GeneratorConfig
from . import _identity as ident
from ._clock import day_factor, start_times
from ._events import (MT, call_fields, categorical, counterparties, fill_data,
                      sms_fields, voice_cells)
from ._columns import Records
from .population import Population
from .schema import CAUSES, RECORD_COLUMNS, RECORD_TYPES, WORDS
from .units import Unit, unit_seed_sequence

CALL, SMS, DATA = 0, 1, 2
_RT_VOICE = np.int8(RECORD_TYPES.index("mscVoiceRecord"))
_CAUSE_NORMAL = np.int8(CAUSES.index("normalRelease"))


def todays_imeis(seed: int, population: Population, idx: np.ndarray, day_index: int,
                 change_prob: float) -> np.ndarray:
    """The IMEI each subscriber ``idx`` holds on ``day_index`` (changes persist).

    Computed, not looked up: the day-0 IMEI is ``imeis(seed, i, 0)``, and keeping it in
    the population cost 8 of its 38 bytes per subscriber (0.8 GB at 100M) to save one
    hash per subscriber of the unit (~10,000 against ~200,000 records)."""
    version = ident.device_versions(seed, idx, day_index, change_prob)
    return ident.imeis(seed, idx, version)


def _record_owners(rng, unit: Unit, activity: np.ndarray, rate: float) -> np.ndarray:
    """Chunk-local subscriber of each record, in random (= time) order."""
    if activity.size and activity.min() == activity.max():   # activity_sigma = 0
        n = rng.poisson(rate * float(activity[0]) * unit.n_subs)
        return rng.integers(0, unit.n_subs, n)
    counts = rng.poisson(rate * activity.astype(np.float64))
    owners = np.repeat(np.arange(unit.n_subs, dtype=np.int64), counts)
    rng.shuffle(owners)
    return owners


def _below_share(u: np.ndarray, first: np.ndarray, share_first: float,
                 share_other: float) -> np.ndarray:
    """``u < where(first, share_first, share_other)``: the same comparisons, without a
    per-element branch."""
    if share_first == share_other:          # the defaults (0.5 and 0.5): one comparison
        return u < share_first
    out = u < share_first
    out &= first
    out |= (u < share_other) & ~first
    return out


class _Layout:
    """Where the unit's n drawn records go in the output: in place, or (mirrored calls)
    each on-net call followed by a slot for the counterparty's own record."""

    def __init__(self, n: int, mirrored: np.ndarray):
        self.size = n + mirrored.size
        self.place = None
        self.mirror_at = mirrored            # empty unless calls are mirrored
        if mirrored.size:
            shift = np.zeros(n, dtype=np.int64)
            shift[mirrored] = 1
            self.place = np.arange(n, dtype=np.int64) + np.cumsum(shift) - shift
            self.mirror_at = self.place.take(mirrored) + 1

    def at(self, positions: np.ndarray) -> np.ndarray:
        return positions if self.place is None else self.place.take(positions)

    def spread(self, values: np.ndarray, mirror_values) -> np.ndarray:
        if self.place is None:
            return values
        out = np.empty(self.size, dtype=values.dtype)
        out[self.place] = values
        out[self.mirror_at] = mirror_values
        return out


def generate_unit(cfg: GeneratorConfig, population: Population, unit: Unit):
    """The unit's records as a ``pyarrow.Table`` in ``RECORD_SCHEMA``."""
    return generate_records(cfg, population, unit).to_arrow()


def generate_records(cfg: GeneratorConfig, population: Population, unit: Unit) -> Records:
    m, seed = cfg.model, cfg.seed
    rng = np.random.Generator(np.random.SFC64(unit_seed_sequence(seed, unit.date, unit.chunk)))
    means = np.array([m.avg_calls_per_user, m.avg_sms_per_user,
                      m.avg_data_sessions_per_user]) * day_factor(m, unit.date)
    # the chunk's own subscribers' values, computed (~2 ms for 10,000): only the MSISDNs
    # are stored (population.py)
    mine = population.subscribers(unit.first_sub, unit.n_subs)
    owner = _record_owners(rng, unit, mine.activity, float(means.sum()))
    n = owner.size
    etype = categorical(rng.random(n), means) if means.sum() > 0 else owner.astype(np.int8)
    start_s, tz_offset = start_times(rng, n, m, unit.date)
    chunk = np.arange(unit.first_sub, unit.first_sub + unit.n_subs, dtype=np.int64)
    imei = todays_imeis(seed, population, chunk, unit.day_index,
                        m.imei_daily_change_prob).take(owner)

    # CALL and SMS share direction, counterparty and cell rules
    voice = np.flatnonzero(etype != DATA)
    # gathers by .take: ~35 % faster than fancy indexing (numpy 2.4, no AVX-512)
    voice_owner = owner.take(voice)
    voice_served = voice_owner + unit.first_sub          # global subscriber index
    is_call = etype.take(voice) == CALL
    mo = _below_share(rng.random(voice.size), is_call, m.mo_share_call, m.mo_share_sms)
    party = counterparties(rng, m, population, voice_served, mine.n_contacts.take(voice_owner))

    mirrored, other = np.empty(0, np.int64), np.empty(0, np.int64)
    if m.mirror_onnet_calls:
        on_call = is_call[party.onnet]
        mirrored = voice[np.compress(on_call, party.onnet)]
        other = np.compress(on_call, party.index)
    layout = _Layout(n, mirrored)
    size = layout.size
    # np.empty where every value shown is written: msisdn_dst (voice records) and the
    # DATA byte counts are null elsewhere, and a null's value is never read (Records);
    # zeroing them was ~4.7 MB of memset per 197k-record unit
    cols = {
        "msisdn_src": np.empty(size, np.int64), "msisdn_dst": np.empty(size, np.int64),
        "direction": np.zeros(size, np.int8), "duration_sec": np.empty(size, np.int32),
        # filled, not scattered: a record is a call unless SMS or DATA overwrite it, and
        # every DATA record closes normally
        "cell_id": np.empty(size, np.int32), "record_type": np.full(size, _RT_VOICE, np.int8),
        "cause_for_record_closing": np.full(size, _CAUSE_NORMAL, np.int8),
        "sms_segments": np.zeros(size, np.int8), "sms_status": np.zeros(size, np.int8),
        "data_bytes_in": np.empty(size, np.int64), "data_bytes_out": np.empty(size, np.int64),
        "apn": np.zeros(size, np.int8),
        "rat": np.zeros(size, np.int8),
    }

    at = layout.at(voice)
    me = mine.msisdn.take(voice_owner)
    swap = me - party.number              # where(mo, me, number) and its mirror, exactly
    swap *= mo
    cols["msisdn_src"][at] = party.number + swap
    me -= swap
    cols["msisdn_dst"][at] = me
    cols["direction"][at] = (~mo).view(np.int8)     # MO = 0, MT = 1 (_events)
    cols["cell_id"][at] = voice_cells(rng, m, mine.home_cell.take(voice_owner),
                                      population.cells)

    # np.compress, not voice[is_call]: a boolean subscript branches per element
    # (measured 6x slower on these random masks)
    at = layout.at(np.compress(is_call, voice))
    call = call_fields(rng, m, at.size)
    cols["duration_sec"][at] = call.duration
    cols["cause_for_record_closing"][at] = call.cause

    sms_of_voice = np.flatnonzero(~is_call)       # once for both selections
    at = layout.at(voice.take(sms_of_voice))
    sms = sms_fields(rng, m, mo.take(sms_of_voice))
    cols["duration_sec"][at] = sms.duration
    cols["record_type"][at] = sms.record_type
    cols["cause_for_record_closing"][at] = sms.cause
    cols["sms_segments"][at] = sms.segments
    cols["sms_status"][at] = sms.status
    # the voice part's arrays go before the DATA part and the Arrow assembly (the unit's
    # peak): ~4 MB of a 10,000-subscriber unit
    del voice, voice_owner, voice_served, is_call, mo, party, me, swap, sms_of_voice, call, sms

    sessions = np.flatnonzero(etype == DATA)
    at = layout.at(sessions)
    data_owner = owner.take(sessions)
    cols["msisdn_src"][at] = mine.msisdn.take(data_owner)
    fill_data(rng, m, cols, at, mine.home_cell.take(data_owner), population)
    del sessions, data_owner, at

    if mirrored.size:
        _fill_mirrored_calls(rng, cfg, population, cols, layout.mirror_at, other)
    cols["event_type"] = layout.spread(etype, np.int8(CALL))
    cols["start_s"] = layout.spread(start_s, start_s.take(mirrored))
    cols["tz_offset_min"] = layout.spread(tz_offset, tz_offset.take(mirrored))
    # the counterparties of mirrored calls are anyone: their values are computed
    other_mccmnc = population.mccmnc_of(other)
    cols["mccmnc"] = layout.spread(mine.mccmnc.take(owner), other_mccmnc)
    cols["imsi"] = layout.spread(mine.imsi.take(owner),
                                 population.imsi_of(other, other_mccmnc))
    cols["imei"] = layout.spread(imei, todays_imeis(seed, population, other, unit.day_index,
                                                    m.imei_daily_change_prob))
    cols["cell_id"] += 1                                  # 0-based index -> cell id
    return _records(cols, m.tz_name)


def _fill_mirrored_calls(rng, cfg, population, cols, mirror_at, other):
    """The counterparty's own record of an on-net call, in the slot right after it (same
    start time, so time order holds): the same call seen from the other side, opposite
    direction, at the counterparty's cell (its imsi/imei/mccmnc are computed from ``other``)."""
    original = mirror_at - 1
    for name in ("msisdn_src", "msisdn_dst", "duration_sec", "record_type",
                 "cause_for_record_closing"):
        cols[name][mirror_at] = cols[name].take(original)
    cols["direction"][mirror_at] = np.int8(MT) - cols["direction"].take(original)
    cols["cell_id"][mirror_at] = voice_cells(rng, cfg.model, population.home_cell_of(other),
                                             population.cells)


def _records(cols: dict, tz_name: str) -> Records:
    etype = cols["event_type"]
    n = etype.size
    is_sms, is_data = etype == SMS, etype == DATA
    start_ms = cols["start_s"]            # this function's own: scaled in place
    start_ms *= 1000
    end_ms = cols["duration_sec"].astype(np.int64)
    end_ms *= 1000
    end_ms += start_ms
    values = {
        "event_type": etype, "start_ts_ms": start_ms, "end_ts_ms": end_ms,
        "tz_name": np.zeros(n, np.int8),
    }
    # a DATA record's duration is its data_duration_sec (null elsewhere): one buffer
    values["data_duration_sec"] = cols["duration_sec"]
    values.update((name, cols[name]) for name in RECORD_COLUMNS if name not in values)
    valid = {"msisdn_dst": ~is_data, "sms_segments": is_sms, "sms_status": is_sms}
    valid.update((name, is_data) for name in ("data_bytes_in", "data_bytes_out",
                                              "data_duration_sec", "apn", "rat"))
    return Records({name: values[name] for name in RECORD_COLUMNS}, valid,
                   {**WORDS, "tz_name": (tz_name,)})
