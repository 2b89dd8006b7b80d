"""Sizes of the micro-benchmarks' inputs: one default work unit."""
import datetime as dt

from cdrexp.config import ModelConfig

CHUNK_SUBS = ModelConfig().chunk_size           # 20,000 subscribers: one default unit
RECORDS = 400_000                               # about one default unit's records (20.7 each)
MONDAY = dt.date(2025, 1, 6)
