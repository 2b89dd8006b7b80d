"""The typed config schema of cdrexp and its validation."""
from ._schema import (CHECKSUMS, COMPRESSION_LEVELS, EXECUTORS, GZIP_BACKENDS,
                      OUTPUT_FORMATS, PROFILERS, RATS, ApnShares, CallDispositions,
                      DataRatProfiles, DurationQuantiles, ExecutorConfig,
                      ExperimentConfig, GeneratorConfig, ModelConfig, OutputConfig,
                      ProfilerConfig, RatProfile, RatShares, SmsStatusShares, TrackingConfig)
from ._validate import (ConfigError, check_worker_cap, check_writable, config_to_dict,
                        parse_date, resolved_workers, to_config, validate, validate_model)

__all__ = [
    "CHECKSUMS", "COMPRESSION_LEVELS", "EXECUTORS", "GZIP_BACKENDS", "OUTPUT_FORMATS",
    "PROFILERS",
    "RATS", "ApnShares", "CallDispositions",
    "ConfigError", "DataRatProfiles", "DurationQuantiles", "ExecutorConfig",
    "ExperimentConfig", "GeneratorConfig", "ModelConfig", "OutputConfig", "ProfilerConfig",
    "RatProfile", "RatShares", "SmsStatusShares", "TrackingConfig", "check_worker_cap",
    "check_writable", "config_to_dict",
    "parse_date", "resolved_workers", "to_config", "validate", "validate_model",
]
