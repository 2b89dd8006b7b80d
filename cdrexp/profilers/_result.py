"""What a profiler returns, and the unit its memory figures use: kept apart from
``__init__`` so that the profiler modules import it without a circle through the package."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

# 10^6 bytes, like every *_mb metric of the runner (cdrexp.tracking.names.MB): a profiler
# does not depend on the tracking package for one constant
MB = 1_000_000


@dataclass
class ProfileResult:
    profiler: str
    status: str                      # "ok" | "unavailable" | "failed" | "skipped"
    message: str = ""                # one line: what was produced, or why not
    artifact_dir: Optional[Path] = None
    metrics: dict[str, float] = field(default_factory=dict)
