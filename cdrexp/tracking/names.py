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
TAG_ERROR = "cdrexp.error"              # one line: why a FAILED / KILLED run ended
TAG_OUTPUT_FORMAT = "output_format"
TAG_EXECUTOR = "executor"
# the process that opened the run (every run cdrexp starts): a later command on the same
# host marks a run left RUNNING by a process that is gone KILLED (tracking/_orphans.py)
TAG_OWNER_HOST = "cdrexp.owner.host"
TAG_OWNER_PID = "cdrexp.owner.pid"
TAG_OWNER_STARTED = "cdrexp.owner.started"   # the process's start time (epoch s): pid reuse
KIND_JOB = "job"
KIND_SWEEP = "sweep"
# the A/B gate (python -m cdrexp.ab): one parent run, one child run per side
KIND_AB = "ab"
KIND_AB_SIDE = "ab_side"
TAG_AB_SIDE = "cdrexp.ab.side"          # "base" or "candidate" (child runs)
TAG_AB_REV = "cdrexp.ab.rev"            # the revision as given ("HEAD~1", "working tree")
TAG_AB_BASE_COMMIT = "cdrexp.ab.base_commit"
TAG_AB_CANDIDATE_COMMIT = "cdrexp.ab.candidate_commit"
TAG_AB_METRIC = "cdrexp.ab.metric"      # wall / cpu / instructions
TAG_AB_VERDICT = "cdrexp.ab.verdict"    # slower / not slower / undecided
# the bisect (python -m cdrexp.ab --bisect GOOD BAD): one parent run, each step's A/B
# runs below it
KIND_BISECT = "bisect"
TAG_BISECT_GOOD = "cdrexp.bisect.good"
TAG_BISECT_BAD = "cdrexp.bisect.bad"
TAG_BISECT_STEP = "cdrexp.bisect.step"  # on a step's A/B parent run: its number
TAG_BISECT_STATUS = "cdrexp.bisect.status"  # found / bad is not slower / undecidable
TAG_BISECT_FIRST_BAD = "cdrexp.bisect.first_bad"
TAG_BISECT_FIRST_BAD_SUBJECT = "cdrexp.bisect.first_bad_subject"
# MLflow's own tags, shown by its UI
TAG_MLFLOW_PARENT = "mlflow.parentRunId"
TAG_MLFLOW_RUN_NAME = "mlflow.runName"
TAG_MLFLOW_NOTE = "mlflow.note.content"
TAG_MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"

# metrics; every "mb" in a name is a megabyte of MB bytes (SI: peak_pss_mb, mb_per_s)
MB = 1_000_000
M_SUBS_PER_S = "subs_per_s"
M_RECORDS_PER_S = "records_per_s"
M_MB_PER_S = "mb_per_s"
M_WALL_MEDIAN = "wall_s_median"
M_WALL_MIN = "wall_s_min"
M_WALL_MAX = "wall_s_max"
M_WALL_STDDEV = "wall_s_stddev"
M_WALL_SPREAD = "wall_s_spread"         # (max - min) / median of the repeats' wall times
M_WALL_STEPS = "wall_s"                 # one step per measured repeat: compare's samples
M_CPU_UTIL = "cpu_utilization"         # cpu_s / (wall_s * usable cores), 0..1
M_CPU_CORES_BUSY = "cpu_cores_busy"     # cpu_s / wall_s: cores kept busy on average
M_CPU_S = "cpu_s_median"                # user+sys of the process tree, median repeat
M_PEAK_PSS = "peak_pss_mb"
M_PEAK_PSS_MIN = "peak_pss_mb_min"      # the lowest repeat's peak (peak_pss_mb: the highest)
M_PEAK_RSS = "peak_rss_mb"
# the generator's process tree (cli.repeats and its workers; a forkserver and resource
# tracker when it uses one) is what peak_pss_mb, peak_rss_mb, cpu_s_median and the rest measure
M_BASELINE_PSS = "baseline_pss_mb"      # PSS of that tree before a run: its imports
M_RUNNER_PSS = "runner_pss_mb"          # the job's own process (MLflow, Hydra), outside it
# a remote Dask cluster: cpu_s_median and peak_pss_mb add the workers that ran the units
# (measured on the workers) to the generator's process tree, whose own share these are
M_CLIENT_CPU_S = "client_cpu_s"         # median repeat
M_CLIENT_PEAK_PSS = "client_peak_pss_mb"  # highest repeat
M_ROWS = "rows"
M_BYTES = "bytes_written"
M_UNCOMPRESSED_BYTES = "uncompressed_bytes"
M_FILES = "files"
M_WORKERS = "workers_used"              # worker processes the executor really ran
M_REPEATS = "repeats"
# phase times (median over repeats): population is parent wall time, the others are
# summed over work units (CPU-seconds across workers)
M_PHASE_POPULATION = "phase_population_s"
M_PHASE_GENERATION = "phase_generation_s"
M_PHASE_FORMATTING = "phase_formatting_s"
M_PHASE_WRITING = "phase_writing_s"
M_SPEEDUP = "speedup"                   # sweep summary: wall at the fewest workers / wall
M_EFFICIENCY = "parallel_efficiency"    # speedup / (workers / fewest workers)
# A/B parent run: the verdict as its exit code (0 not slower, 1 slower, 2 undecided),
# the candidate/base ratio (geometric mean over pairs) and its interval, the pairs used,
# and one step per pair of the per-pair ratio
M_AB_EXIT_CODE = "ab_exit_code"
M_AB_RATIO = "ab_ratio"
M_AB_RATIO_LOW = "ab_ratio_low"
M_AB_RATIO_HIGH = "ab_ratio_high"
M_AB_LEVEL = "ab_interval_level"
M_AB_THRESHOLD = "ab_threshold_pct"
M_AB_PAIRS = "ab_pairs"
M_AB_PAIR_RATIO = "ab_pair_ratio"
M_AB_SECONDS = "ab_seconds"
# A/B child runs: one step per measured run, and the medians
M_AB_RUN = "ab_run_"                    # + wall_s / cpu_s / instructions / peak_pss_mb
M_AB_MEDIAN = "ab_median_"              # + the same
# bisect parent run: one step per A/B of its ratio; the first bad commit's ratio
M_BISECT_STEP_RATIO = "bisect_step_ratio"
M_BISECT_STEPS = "bisect_steps"
M_BISECT_EXIT_CODE = "bisect_exit_code"   # 0 found, 1 BAD not slower, 2 undecidable
M_BISECT_RATIO = "bisect_first_bad_ratio"
M_BISECT_RATIO_LOW = "bisect_first_bad_ratio_low"
M_BISECT_RATIO_HIGH = "bisect_first_bad_ratio_high"

# artifacts
A_SYSTEM_INFO = "system_info.json"
A_BENCHMARK_RESULTS = "benchmark_results.json"
A_RESOLVED_CONFIG = "config_resolved.yaml"
A_HYDRA_DIR = ".hydra"                  # Hydra's config.yaml, hydra.yaml, overrides.yaml
A_DAY_SUMMARIES = "day_summaries"       # <date>.json: the generator's per-day summary
A_PROFILE_DIR = "profile"
A_SWEEP_DIR = "sweep_summary"           # parent run: jobs.csv, jobs.md, *.png
A_SWEEP_TABLE_CSV = "jobs.csv"
A_SWEEP_TABLE_MD = "jobs.md"
A_AB_PLOT = "ab_pairs.png"              # per-pair ratios in run order and the interval
A_AB_RESULT = "ab_result.json"          # every measurement, the settings, the decision
A_BISECT_STEPS_CSV = "bisect_steps.csv"  # every step of a bisect
A_BISECT_STEPS_TXT = "bisect_steps.txt"
A_BISECT_RESULT = "bisect_result.json"

# config keys that describe how a job was run, not what it measured
RUN_SPECIFIC_KEYS = ("out", "repeats", "warmup", "keep_output", "profiler", "tracking",
                     "description", "oversubscribe", "check_resources")


def config_key(config: dict) -> str:
    """Stable id of a job's configuration: the resolved config minus run-specific keys."""
    kept = {k: v for k, v in config.items() if k not in RUN_SPECIFIC_KEYS}
    blob = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
