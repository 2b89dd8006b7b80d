"""``generate_unit``: every record of one (day, chunk) unit as an Arrow table.

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
import pyarrow as pa

from ..config import GeneratorConfig
from . import _identity as ident
from ._clock import day_factor, start_times
from ._events import (MO, MT, call_fields, categorical, counterparties, fill_data,
                      sms_fields, voice_cells)
from .population import Population
from .schema import (APNS, CAUSES, DATA_RATS, DIRECTIONS, EVENT_TYPES, RECORD_SCHEMA,
                     RECORD_TYPES, SMS_STATUSES)
from .units import Unit, unit_seed_sequence

CALL, SMS, DATA = 0, 1, 2
_RT_VOICE = np.int8(RECORD_TYPES.index("mscVoiceRecord"))
_CAUSE_NORMAL = np.int8(CAUSES.index("normalRelease"))
_DICTIONARIES = {
    "event_type": pa.array(EVENT_TYPES), "direction": pa.array(DIRECTIONS),
    "record_type": pa.array(RECORD_TYPES), "cause_for_record_closing": pa.array(CAUSES),
    "sms_status": pa.array(SMS_STATUSES), "apn": pa.array(APNS), "rat": pa.array(DATA_RATS),
}


def todays_imeis(seed: int, population: Population, idx: np.ndarray, day_index: int,
                 change_prob: float) -> np.ndarray:
    """The IMEI each subscriber ``idx`` holds on ``day_index`` (changes persist)."""
    imei = population.imei[idx]
    version = ident.device_versions(seed, idx, day_index, change_prob)
    changed = np.flatnonzero(version > 0)
    if changed.size:
        imei[changed] = ident.imeis(seed, idx[changed], version[changed])
    return imei


def _record_owners(rng, unit: Unit, population: Population, rate: float) -> np.ndarray:
    """Chunk-local subscriber of each record, in random (= time) order."""
    activity = population.activity[unit.first_sub:unit.first_sub + unit.n_subs]
    if activity.size and activity.min() == activity.max():   # activity_sigma = 0
        n = rng.poisson(rate * float(activity[0]) * unit.n_subs)
        return rng.integers(0, unit.n_subs, n)
    counts = rng.poisson(rate * activity.astype(np.float64))
    owners = np.repeat(np.arange(unit.n_subs, dtype=np.int64), counts)
    rng.shuffle(owners)
    return owners


def generate_unit(cfg: GeneratorConfig, population: Population, unit: Unit) -> pa.Table:
    m, seed = cfg.model, cfg.seed
    rng = np.random.Generator(np.random.SFC64(unit_seed_sequence(seed, unit.date, unit.chunk)))
    means = np.array([m.avg_calls_per_user, m.avg_sms_per_user,
                      m.avg_data_sessions_per_user]) * day_factor(m, unit.date)
    owner = _record_owners(rng, unit, population, float(means.sum()))
    n = owner.size
    etype = categorical(rng.random(n), means) if means.sum() > 0 else owner.astype(np.int8)
    start_s, tz_offset = start_times(rng, n, m, unit.date)
    served = owner + unit.first_sub                      # global subscriber index

    cols = {
        "msisdn_src": population.msisdn[served], "msisdn_dst": np.zeros(n, np.int64),
        "direction": np.zeros(n, np.int8), "duration_sec": np.empty(n, np.int32),
        "cell_id": np.empty(n, np.int32), "record_type": np.empty(n, np.int8),
        "cause_for_record_closing": np.empty(n, np.int8),
        "sms_segments": np.zeros(n, np.int8), "sms_status": np.zeros(n, np.int8),
        "data_bytes_in": np.zeros(n, np.int64), "data_bytes_out": np.zeros(n, np.int64),
        "data_duration_sec": np.zeros(n, np.int32), "apn": np.zeros(n, np.int8),
        "rat": np.zeros(n, np.int8),
    }

    # CALL and SMS share direction, counterparty and cell rules
    voice = np.flatnonzero(etype != DATA)
    is_call = etype[voice] == CALL
    mo = rng.random(voice.size) < np.where(is_call, m.mo_share_call, m.mo_share_sms)
    party = counterparties(rng, m, seed, population, served[voice])
    me = cols["msisdn_src"][voice]
    cols["msisdn_src"][voice] = np.where(mo, me, party.number)
    cols["msisdn_dst"][voice] = np.where(mo, party.number, me)
    cols["direction"][voice] = np.where(mo, np.int8(MO), np.int8(MT))
    cols["cell_id"][voice] = voice_cells(rng, m, population.home_cell[served[voice]],
                                         population.cells)

    calls = voice[is_call]
    call = call_fields(rng, m, calls.size)
    cols["duration_sec"][calls] = call.duration
    cols["record_type"][calls] = _RT_VOICE
    cols["cause_for_record_closing"][calls] = call.cause

    texts = voice[~is_call]
    sms = sms_fields(rng, m, mo[~is_call])
    cols["duration_sec"][texts] = sms.duration
    cols["record_type"][texts] = sms.record_type
    cols["cause_for_record_closing"][texts] = sms.cause
    cols["sms_segments"][texts] = sms.segments
    cols["sms_status"][texts] = sms.status

    sessions = np.flatnonzero(etype == DATA)
    fill_data(rng, m, cols, sessions, population.home_cell[served[sessions]], population)
    cols["cause_for_record_closing"][sessions] = _CAUSE_NORMAL

    chunk = np.arange(unit.first_sub, unit.first_sub + unit.n_subs, dtype=np.int64)
    imei_today = todays_imeis(seed, population, chunk, unit.day_index,
                              m.imei_daily_change_prob)
    cols["imei"] = imei_today[owner]
    cols["event_type"] = etype
    cols["start_s"] = start_s
    cols["tz_offset_min"] = tz_offset
    cols["served"] = served

    if m.mirror_onnet_calls:
        cols = _with_mirrored_calls(rng, cfg, population, unit, cols, voice, is_call, party)
    cols["cell_id"] += 1                                  # 0-based index -> cell id
    return _to_table(cols, population, m.tz_name)


def _with_mirrored_calls(rng, cfg, population, unit, cols, voice, is_call, party):
    """Each on-net call also gets the counterparty's own record, right after it (same
    start time, so time order holds): opposite direction, its imsi/imei/mccmnc/cell."""
    m = cfg.model
    on_call = is_call[party.onnet]
    originals = voice[party.onnet[on_call]]               # ascending positions
    other = party.index[on_call]
    n, k = cols["event_type"].size, originals.size
    before = np.zeros(n, dtype=np.int64)
    before[originals] = 1
    new_pos = np.arange(n, dtype=np.int64) + np.cumsum(before) - before
    mirror_pos = new_pos[originals] + 1

    mirror = {name: col[originals] for name, col in cols.items()}
    mirror["direction"] = np.int8(MT) - mirror["direction"]
    mirror["served"] = other
    mirror["imei"] = todays_imeis(cfg.seed, population, other, unit.day_index,
                                  m.imei_daily_change_prob)
    mirror["cell_id"] = voice_cells(rng, m, population.home_cell[other], population.cells)
    out = {}
    for name, col in cols.items():
        merged = np.empty(n + k, dtype=col.dtype)
        merged[new_pos] = col
        merged[mirror_pos] = mirror[name]
        out[name] = merged
    return out


def _validity(mask: np.ndarray) -> tuple[pa.Buffer, int]:
    return pa.py_buffer(np.packbits(mask, bitorder="little")), int(mask.size - mask.sum())


def _array(values: np.ndarray, arrow_type, validity=None) -> pa.Array:
    if validity is None:
        return pa.Array.from_buffers(arrow_type, values.size, [None, pa.py_buffer(values)])
    bits, nulls = validity
    return pa.Array.from_buffers(arrow_type, values.size, [bits, pa.py_buffer(values)],
                                 null_count=nulls)


def _dict(name: str, codes: np.ndarray, validity=None, dictionary=None) -> pa.Array:
    indices = _array(codes, pa.int8(), validity)
    return pa.DictionaryArray.from_arrays(   # codes are in range by construction
        indices, dictionary if dictionary is not None else _DICTIONARIES[name], safe=False)


def _to_table(cols: dict, population: Population, tz_name: str) -> pa.Table:
    etype, served = cols["event_type"], cols["served"]
    n = etype.size
    is_sms, is_data = _validity(etype == SMS), _validity(etype == DATA)
    not_data = _validity(etype != DATA)
    start_ms = cols["start_s"] * 1000
    end_ms = start_ms + cols["duration_sec"].astype(np.int64) * 1000
    arrays = [
        _dict("event_type", etype),
        _array(cols["msisdn_src"], pa.int64()),
        _array(cols["msisdn_dst"], pa.int64(), not_data),
        _dict("direction", cols["direction"]),
        _array(start_ms, pa.int64()),
        _array(end_ms, pa.int64()),
        _dict("tz_name", np.zeros(n, np.int8), dictionary=pa.array([tz_name])),
        _array(cols["tz_offset_min"], pa.int16()),
        _array(cols["duration_sec"], pa.int32()),
        _array(population.mccmnc[served], pa.int32()),
        _array(population.imsi[served], pa.int64()),
        _array(cols["imei"], pa.int64()),
        _array(cols["cell_id"], pa.int32()),
        _dict("record_type", cols["record_type"]),
        _dict("cause_for_record_closing", cols["cause_for_record_closing"]),
        _array(cols["sms_segments"], pa.int8(), is_sms),
        _dict("sms_status", cols["sms_status"], is_sms),
        _array(cols["data_bytes_in"], pa.int64(), is_data),
        _array(cols["data_bytes_out"], pa.int64(), is_data),
        _array(cols["data_duration_sec"], pa.int32(), is_data),
        _dict("apn", cols["apn"], is_data),
        _dict("rat", cols["rat"], is_data),
    ]
    return pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA)
