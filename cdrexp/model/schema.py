"""The record layout of cdr-model.md section 4: 22 columns, in order, with Arrow types.

The model builds one ``pyarrow.Table`` with exactly this schema per work unit; the
writers format it. Text columns with few values are dictionary-encoded (cheap to build,
native in Parquet, decoded by the CSV writer). Empty fields are nulls.
"""
import pyarrow as pa

_dict = pa.dictionary(pa.int8(), pa.string())

RECORD_SCHEMA = pa.schema([
    ("event_type", _dict),              # CALL / SMS / DATA
    ("msisdn_src", pa.int64()),
    ("msisdn_dst", pa.int64()),         # null for DATA
    ("direction", _dict),               # MO / MT
    ("start_ts_ms", pa.int64()),        # UTC epoch ms, multiple of 1000
    ("end_ts_ms", pa.int64()),
    ("tz_name", _dict),
    ("tz_offset_min", pa.int16()),
    ("duration_sec", pa.int32()),
    ("mccmnc", pa.int32()),
    ("imsi", pa.int64()),
    ("imei", pa.int64()),
    ("cell_id", pa.int32()),
    ("record_type", _dict),
    ("cause_for_record_closing", _dict),
    ("sms_segments", pa.int8()),        # SMS only
    ("sms_status", _dict),              # SMS only
    ("data_bytes_in", pa.int64()),      # DATA only (uplink)
    ("data_bytes_out", pa.int64()),     # DATA only (downlink)
    ("data_duration_sec", pa.int32()),  # DATA only
    ("apn", _dict),                     # DATA only
    ("rat", _dict),                     # DATA only
])

RECORD_COLUMNS = tuple(RECORD_SCHEMA.names)
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
