"""The typed config schema: the single source of truth for every key.

Hydra composes YAML from ``cdrexp/conf`` and merges it onto these dataclasses, so a key
that is not declared here is rejected and every declared key has its default here.
``GeneratorConfig`` is what the generator needs; ``ExperimentConfig`` adds what the
runner needs on top (repeats, profiler, tracking).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

RATS = ("WCDMA", "LTE", "NR")
OUTPUT_FORMATS = ("csv", "csv_gz", "csv_zst", "parquet", "none")
PROFILERS = ("none", "pyspy", "memray", "cprofile", "perf")
EXECUTORS = ("local", "dask")
# gzip implementations for csv_gz, the default first; each writes standard gzip members
GZIP_BACKENDS = ("isal", "libdeflate", "zlib")
CHECKSUMS = ("xxh128", "blake3", "sha256")
GZIP_BACKEND_MODULES = {"isal": "isal", "libdeflate": "deflate", "zlib": "zlib"}
# output.compression_level, per format (csv_gz: per gzip backend): (lowest, highest,
# what null means). Higher = smaller files, more CPU. One scale per codec: ISA-L's
# igzip levels 0-3, libdeflate's 1-12 (1-9 as zlib's, 10-12 slower and smaller), zlib's
# 1-9 (gzip -1..-9), zstd's 1-22. Defaults: ISA-L 1 is 14x zlib 6's speed here at
# 0.88x its ratio (the bound is 0.85x); see docs/generator.md for the figures.
COMPRESSION_LEVELS = {
    ("csv_gz", "isal"): (0, 3, 1),
    ("csv_gz", "libdeflate"): (1, 12, 6),
    ("csv_gz", "zlib"): (1, 9, 6),
    ("csv_zst", None): (1, 22, 1),
    ("parquet", None): (1, 22, 1),
}

WEEKDAY_PROFILE = [0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 1.2, 1.4, 1.3, 1.2,
                   1.1, 1.0, 1.1, 1.2, 1.3, 1.5, 1.6, 1.4, 1.2, 1.0, 0.7, 0.5]
WEEKEND_PROFILE = [0.2, 0.15, 0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.2,
                   1.3, 1.2, 1.1, 1.0, 1.1, 1.3, 1.4, 1.3, 1.2, 1.0, 0.6, 0.4]
SEASONALITY = [0.95, 0.90, 1.00, 1.05, 1.10, 1.15, 1.20, 1.15, 1.05, 1.00, 0.95, 1.00]


@dataclass
class RatShares:
    WCDMA: float = 0.3
    LTE: float = 0.5
    NR: float = 0.2


@dataclass
class CallDispositions:
    ANSWERED: float = 0.82
    NO_ANSWER: float = 0.12
    BUSY: float = 0.04
    FAILED: float = 0.015
    CONGESTION: float = 0.005


@dataclass
class DurationQuantiles:
    p50: float = 75.0
    p90: float = 240.0


@dataclass
class SmsStatusShares:
    SENT: float = 0.10
    DELIVERED: float = 0.88
    FAILED: float = 0.02


@dataclass
class ApnShares:
    internet: float = 0.8
    ims: float = 0.1
    mms: float = 0.1


@dataclass
class RatProfile:
    downlink_mean: float = 4_000_000.0
    downlink_sd: float = 2_000_000.0
    uplink_ratio_min: float = 0.10
    uplink_ratio_max: float = 0.30
    duration_mean: float = 300.0
    duration_sd: float = 180.0


@dataclass
class DataRatProfiles:
    WCDMA: RatProfile = field(default_factory=lambda: RatProfile(
        1_000_000.0, 600_000.0, 0.08, 0.25, 420.0, 240.0))
    LTE: RatProfile = field(default_factory=lambda: RatProfile(
        4_000_000.0, 2_000_000.0, 0.10, 0.30, 300.0, 180.0))
    NR: RatProfile = field(default_factory=lambda: RatProfile(
        12_000_000.0, 8_000_000.0, 0.10, 0.35, 240.0, 180.0))


@dataclass
class ModelConfig:
    """Every key of the CDR model (docs/model.md), with its defaults."""
    # identities (section 1)
    prefixes: List[int] = field(default_factory=lambda: [31612, 31613, 31620, 31621])
    mccmnc_pool: List[int] = field(default_factory=lambda: [20408, 20416, 20420])
    activity_sigma: float = 0.0
    contacts_mean: float = 30.0
    imei_daily_change_prob: float = 0.02
    # cell catalog (section 2)
    cells: int = 2000
    center_lat: float = 52.37
    center_lon: float = 4.895
    radius_km: float = 50.0
    cell_rat_shares: RatShares = field(default_factory=RatShares)
    home_cell_share: float = 0.7
    # volumes and time (section 3)
    avg_calls_per_user: float = 3.5
    avg_sms_per_user: float = 5.2
    avg_data_sessions_per_user: float = 12.0
    diurnal_weekday: List[float] = field(default_factory=lambda: list(WEEKDAY_PROFILE))
    diurnal_weekend: List[float] = field(default_factory=lambda: list(WEEKEND_PROFILE))
    seasonality: List[float] = field(default_factory=lambda: list(SEASONALITY))
    special_days: Dict[str, float] = field(default_factory=dict)
    tz_name: str = "Europe/Amsterdam"
    # CALL
    mo_share_call: float = 0.5
    interconnect_share: float = 0.15
    offnet_prefixes: List[int] = field(default_factory=lambda: [4915, 4917, 3361, 4479])
    call_dispositions: CallDispositions = field(default_factory=CallDispositions)
    call_duration_quantiles: DurationQuantiles = field(default_factory=DurationQuantiles)
    mirror_onnet_calls: bool = False
    # SMS
    mo_share_sms: float = 0.5
    sms_status: SmsStatusShares = field(default_factory=SmsStatusShares)
    sms_segments: List[float] = field(default_factory=lambda: [0.85, 0.13, 0.02])
    # DATA
    data_pgw_share: float = 0.5
    data_rat_shares: RatShares = field(default_factory=RatShares)
    data_rat_profiles: DataRatProfiles = field(default_factory=DataRatProfiles)
    apn_shares: ApnShares = field(default_factory=ApnShares)
    # work units (section 6): changes the random streams, so it is part of the model
    # 10,000 measured best on 2 cores: 20,000 ran 20 % slower per unit with two workers
    # (memory bandwidth) and balances worse; a worker holds ~45 MB of events per unit
    chunk_size: int = 10_000


@dataclass
class OutputConfig:
    format: str = "csv"
    rotate_bytes: int = 100_000_000
    # None = the format's default level (COMPRESSION_LEVELS); must be None for csv, none
    compression_level: Optional[int] = None
    # csv_gz only: which DEFLATE implementation writes the gzip members
    gzip_backend: str = "isal"
    # data files bypass the page cache (O_DIRECT) where the filesystem allows it
    direct_io: bool = True
    # manifest checksum of every file: xxh128 (xxhsum -H2), blake3 (b3sum) or sha256
    checksum: str = "xxh128"

    def level_range(self) -> Optional[Tuple[int, int, int]]:
        """(lowest, highest, default) level of this format, None if it has no level."""
        backend = self.gzip_backend if self.format == "csv_gz" else None
        return COMPRESSION_LEVELS.get((self.format, backend))

    def level(self) -> Optional[int]:
        """The level the writer uses: ``compression_level`` or the format's default."""
        levels = self.level_range()
        if levels is None or self.compression_level is not None:
            return self.compression_level
        return levels[2]


@dataclass
class ExecutorConfig:
    name: str = "local"
    # dask only: None starts a LocalCluster with `workers` processes
    address: Optional[str] = None
    # dask only: how often a failed unit is retried by the engine
    retries: int = 2


@dataclass
class GeneratorConfig:
    """What one generation needs: the model, how much of it, and where it goes."""
    subs: int = 10_000
    days: int = 1
    start: str = "2025-01-01"
    seed: int = 42
    # 0 = all usable cores
    workers: int = 0
    out: str = "cdr_out"
    model: ModelConfig = field(default_factory=ModelConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


@dataclass
class ProfilerConfig:
    name: str = "none"
    # py-spy: samples per second
    rate: int = 100
    native: bool = False
    idle: bool = False
    # cProfile: how many functions the readable top list shows
    top_n: int = 40
    # perf: events asked of `perf stat` (hardware ones only where the kernel allows)
    events: List[str] = field(default_factory=lambda: [
        "task-clock", "context-switches", "cpu-migrations", "page-faults",
        "cycles", "instructions", "cache-references", "cache-misses",
        "branches", "branch-misses"])
    # perf: also sample call stacks (`perf record -e cpu-clock -g`, a second profiled run):
    # perf_report.txt, a flamegraph of kernel, C/C++ and interpreter frames
    sample: bool = True
    # perf record: samples per second and CPU (-F; odd, so not in step with timers)
    freq: int = 999


@dataclass
class TrackingConfig:
    # None = MLflow's local default store in the directory the command ran from
    uri: Optional[str] = None
    experiment_name: str = "cdrexp"
    # MLflow's own background sampling of CPU/memory during the run
    system_metrics: bool = False


@dataclass
class ExperimentConfig(GeneratorConfig):
    """One Hydra job: a generation measured `repeats` times after `warmup` runs."""
    description: str = "cdrexp experiment"
    repeats: int = 3
    warmup: int = 1
    # keep the generated files of the last repeat (false: delete them after measuring)
    keep_output: bool = True
    # start more worker processes than the cap allows (4 per usable core, and what the
    # available memory holds): for measuring oversubscription on purpose
    oversubscribe: bool = False
    # refuse a run whose estimated memory or output exceeds what this machine has
    # available (config/_budget.py); false: run it anyway
    check_resources: bool = True
    profiler: ProfilerConfig = field(default_factory=ProfilerConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
