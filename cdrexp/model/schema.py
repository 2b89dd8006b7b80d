"""The record layout of cdr-model.md section 4: 22 columns, in order, with Arrow types.

The model builds one ``pyarrow.Table`` with exactly this schema per work unit; the
writers format it. Text columns with few values are dictionary-encoded (cheap to build,
native in Parquet, decoded by the CSV writer). Empty fields are nulls.

The names below need no pyarrow; ``RECORD_SCHEMA`` is built on first use, so that the
process that only builds the population and plans units (the generator's parent) does
not import pyarrow (module ``__getattr__``, PEP 562).
"""
# (name, Arrow type name); "dict" = dictionary<int8, string>
_COLUMNS = (
    ("event_type", "dict"),             # CALL / SMS / DATA
    ("msisdn_src", "int64"),
    ("msisdn_dst", "int64"),            # null for DATA
    ("direction", "dict"),              # MO / MT
    ("start_ts_ms", "int64"),           # UTC epoch ms, multiple of 1000
    ("end_ts_ms", "int64"),
    ("tz_name", "dict"),
    ("tz_offset_min", "int16"),
    ("duration_sec", "int32"),
    ("mccmnc", "int32"),
    ("imsi", "int64"),
    ("imei", "int64"),
    ("cell_id", "int32"),
    ("record_type", "dict"),
    ("cause_for_record_closing", "dict"),
    ("sms_segments", "int8"),           # SMS only
    ("sms_status", "dict"),             # SMS only
    ("data_bytes_in", "int64"),         # DATA only (uplink)
    ("data_bytes_out", "int64"),        # DATA only (downlink)
    ("data_duration_sec", "int32"),     # DATA only
    ("apn", "dict"),                    # DATA only
    ("rat", "dict"),                    # DATA only
)

RECORD_COLUMNS = tuple(name for name, _ in _COLUMNS)
COLUMN_TYPES = dict(_COLUMNS)
CSV_HEADER = ";".join(RECORD_COLUMNS) + "\n"
EVENT_TYPES = ("CALL", "SMS", "DATA")

# The dictionaries of the dictionary-encoded columns (index = the int8 code).
DIRECTIONS = ("MO", "MT")
RECORD_TYPES = ("mscVoiceRecord", "sgsnSMORecord", "sgsnSMTRecord", "sgsnPDPRecord",
                "pgwRecord")
CAUSES = ("normalRelease", "noAnswer", "busy", "failure", "deliverySuccess",
          "deliveryFailure")
SMS_STATUSES = ("SENT", "DELIVERED", "FAILED")
APNS = ("internet", "ims", "mms")
DATA_RATS = ("WCDMA", "LTE", "NR")

# the words of each dictionary column (tz_name's one word is the configured zone's name;
# IANA's names are at most 32 bytes) and the columns that can be null
WORDS = {
    "event_type": EVENT_TYPES, "direction": DIRECTIONS, "record_type": RECORD_TYPES,
    "cause_for_record_closing": CAUSES, "sms_status": SMS_STATUSES, "apn": APNS,
    "rat": DATA_RATS,
}
TZ_NAME_BYTES = 32
NULLABLE = ("msisdn_dst", "sms_segments", "sms_status", "data_bytes_in", "data_bytes_out",
            "data_duration_sec", "apn", "rat")

_SCHEMA = None


def __getattr__(name):
    global _SCHEMA
    if name != "RECORD_SCHEMA":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _SCHEMA is None:
        import pyarrow as pa

        types = {"dict": pa.dictionary(pa.int8(), pa.string()), "int8": pa.int8(),
                 "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64()}
        _SCHEMA = pa.schema([(name, types[kind]) for name, kind in _COLUMNS])
    return _SCHEMA
