"""Synthetic record tables in RECORD_SCHEMA, so the writers are tested apart from the model."""
import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from cdrexp.model.schema import RECORD_SCHEMA
from cdrexp.model.units import Unit

_DAY0_MS = 1_736_121_600_000    # 2025-01-06T00:00:00Z


def _dict(values, idx, valid=None):
    indices = pa.array(np.asarray(idx, dtype=np.int8),
                       mask=None if valid is None else ~valid)
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))


def _int(values, typ, valid=None):
    return pa.array(np.asarray(values), type=typ, mask=None if valid is None else ~valid)


def make_records(n: int, seed: int = 0) -> pa.Table:
    """``n`` plausible records, sorted by start time, with the model's null pattern."""
    rng = np.random.default_rng(seed)
    etype = rng.choice(3, n, p=[0.17, 0.25, 0.58])            # CALL, SMS, DATA
    call, sms, data = etype == 0, etype == 1, etype == 2
    start = np.sort(_DAY0_MS + rng.integers(0, 86_400, n) * 1000)
    dur = rng.integers(1, 3600, n)
    direction = np.where(data, 0, rng.integers(0, 2, n))
    rec_type = np.where(call, 0, np.where(sms, 1 + direction, 3 + rng.integers(0, 2, n)))
    cause = np.where(sms, 3 + rng.integers(0, 2, n), rng.integers(0, 3, n))
    down = rng.integers(2000, 30_000_000, n)
    cols = {
        "event_type": _dict(["CALL", "SMS", "DATA"], etype),
        "msisdn_src": _int(316_120_000_000 + rng.integers(0, 10**7, n), pa.int64()),
        "msisdn_dst": _int(316_130_000_000 + rng.integers(0, 10**7, n), pa.int64(), ~data),
        "direction": _dict(["MO", "MT"], direction),
        "start_ts_ms": _int(start, pa.int64()),
        "end_ts_ms": _int(start + dur * 1000, pa.int64()),
        "tz_name": _dict(["Europe/Amsterdam"], np.zeros(n)),
        "tz_offset_min": _int(np.full(n, 60), pa.int16()),
        "duration_sec": _int(dur, pa.int32()),
        "mccmnc": _int(rng.choice([20408, 20416, 20420], n), pa.int32()),
        "imsi": _int(204_080_000_000_000 + rng.integers(0, 10**10, n), pa.int64()),
        "imei": _int(356_789_012_345_670 + rng.integers(0, 10**6, n), pa.int64()),
        "cell_id": _int(rng.integers(1, 2001, n), pa.int32()),
        "record_type": _dict(["mscVoiceRecord", "sgsnSMORecord", "sgsnSMTRecord",
                              "sgsnPDPRecord", "pgwRecord"], rec_type),
        "cause_for_record_closing": _dict(["normalRelease", "noAnswer", "busy",
                                           "deliverySuccess", "deliveryFailure"], cause),
        "sms_segments": _int(rng.integers(1, 4, n), pa.int8(), sms),
        "sms_status": _dict(["SENT", "DELIVERED", "FAILED"], rng.integers(0, 3, n), sms),
        "data_bytes_in": _int(down // 5, pa.int64(), data),
        "data_bytes_out": _int(down, pa.int64(), data),
        "data_duration_sec": _int(dur, pa.int32(), data),
        "apn": _dict(["internet", "ims", "mms"], rng.integers(0, 3, n), data),
        "rat": _dict(["WCDMA", "LTE", "NR"], rng.integers(0, 3, n), data),
    }
    return pa.table(cols, schema=RECORD_SCHEMA)


@pytest.fixture
def records():
    return make_records


@pytest.fixture
def unit():
    return Unit(day_index=0, chunk=3, date=dt.date(2025, 1, 6), first_sub=3000, n_subs=1000)
