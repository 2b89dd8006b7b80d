"""The typed config schema of cdrexp and its checks.

``_schema``: the dataclasses (every key and default); ``_convert``: raw config to them and
back (``_plain``: from plain data, no OmegaConf); ``_validate``: the values; ``_budget``:
the values against this machine.
"""
from ._budget import (FOOTPRINT, Estimate, Footprint, check_resources, check_worker_cap,
                      check_writable, estimate, resolved_workers, usable_cores)
from ._convert import config_to_dict, to_config
from ._errors import ConfigError
from ._plain import from_plain
from ._schema import (CHECKSUMS, COMPRESSION_LEVELS, EXECUTORS, GZIP_BACKENDS,
                      OUTPUT_FORMATS, PROFILERS, RATS, ApnShares, CallDispositions,
                      DataRatProfiles, DurationQuantiles, ExecutorConfig,
                      ExperimentConfig, GeneratorConfig, ModelConfig, OutputConfig,
                      ProfilerConfig, RatProfile, RatShares, SmsStatusShares, TrackingConfig)
from ._validate import (FLOAT_RANGES, Range, parse_date, rat_cell_counts, validate,
                        validate_model)

__all__ = [
    "CHECKSUMS", "COMPRESSION_LEVELS", "EXECUTORS", "FLOAT_RANGES", "FOOTPRINT",
    "GZIP_BACKENDS", "OUTPUT_FORMATS", "PROFILERS", "RATS", "ApnShares",
    "CallDispositions", "ConfigError", "DataRatProfiles", "DurationQuantiles", "Estimate",
    "ExecutorConfig", "ExperimentConfig", "Footprint", "GeneratorConfig", "ModelConfig",
    "OutputConfig", "ProfilerConfig", "Range", "RatProfile", "RatShares",
    "SmsStatusShares", "TrackingConfig", "check_resources", "check_worker_cap",
    "check_writable", "config_to_dict", "estimate", "from_plain", "parse_date",
    "rat_cell_counts", "resolved_workers",
    "to_config", "usable_cores", "validate", "validate_model",
]
