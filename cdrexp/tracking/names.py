"""Names shared by what writes MLflow runs (the runner) and what reads them (compare).

Change a name here and both sides follow; the tests of both import these.
"""
from __future__ import annotations

import hashlib
import json

DEFAULT_EXPERIMENT = "cdrexp"

# tags
TAG_KIND = "cdrexp.kind"                # "job" (one Hydra job) or "sweep" (a sweep's parent)
TAG_SWEEP_ID = "cdrexp.sweep_id"        # shared by a sweep's jobs and its parent run
TAG_JOB_NUM = "cdrexp.job_num"          # Hydra job number within the sweep
TAG_CONFIG_KEY = "cdrexp.config_key"    # config_key() of the job: what compare matches on
TAG_CONFIG_LABEL = "cdrexp.config_label"  # short human label, e.g. "subs=1000 workers=2 csv"
TAG_GIT_COMMIT = "git_commit"
TAG_GIT_BRANCH = "git_branch"
TAG_GIT_DIRTY = "git_dirty"
TAG_HOST = "host"
TAG_PROFILER = "profiler"
TAG_PROFILER_STATUS = "profiler_status"  # ok / unavailable: <why> / failed: <why>

# metrics
M_SUBS_PER_S = "subs_per_s"
M_RECORDS_PER_S = "records_per_s"
M_MB_PER_S = "mb_per_s"
M_WALL_MEDIAN = "wall_s_median"
M_WALL_MIN = "wall_s_min"
M_WALL_MAX = "wall_s_max"
M_WALL_STDDEV = "wall_s_stddev"
M_WALL_STEPS = "wall_s"                 # one step per measured repeat: compare's samples
M_CPU_UTIL = "cpu_utilization"
M_PEAK_PSS = "peak_pss_mb"
M_PEAK_RSS = "peak_rss_mb"
M_ROWS = "rows"
M_BYTES = "bytes_written"

# artifacts
A_SYSTEM_INFO = "system_info.json"
A_BENCHMARK_RESULTS = "benchmark_results.json"
A_RESOLVED_CONFIG = "config_resolved.yaml"

# config keys that describe how a job was run, not what it measured
RUN_SPECIFIC_KEYS = ("out", "repeats", "warmup", "keep_output", "profiler", "tracking",
                     "description")


def config_key(config: dict) -> str:
    """Stable id of a job's configuration: the resolved config minus run-specific keys."""
    kept = {k: v for k, v in config.items() if k not in RUN_SPECIFIC_KEYS}
    blob = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
