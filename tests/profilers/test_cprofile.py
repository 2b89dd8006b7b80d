"""cProfile around a real 2-worker generation: pstats per process, readable tops."""
from __future__ import annotations

import pstats

import pytest

from profiler_helpers import profile


@pytest.fixture(scope="module")
def result(module_tmp):
    return profile(module_tmp, "cprofile", top_n=25)


def _functions(stats: pstats.Stats) -> set[str]:
    return {func for (_file, _line, func) in stats.stats}


def test_pstats_of_parent_and_workers_load(result):
    assert result.status == "ok", result.message
    raw = result.artifact_dir / "pstats"
    parent = pstats.Stats(str(raw / "parent.pstats"))
    assert "generate" in _functions(parent)            # cdrexp.generation.generate
    workers = sorted(raw.glob("worker-*.pstats"))
    assert len(workers) == 2                           # workers=2
    for w in workers:
        funcs = _functions(pstats.Stats(str(w)))
        assert {"start_unit", "generate_records"} <= funcs, w.name
    assert not list(raw.glob("*.tmp"))


def test_readable_tops_and_merged_view(result):
    d = result.artifact_dir
    for f in d.glob("cprofile-top-worker-*.txt"):
        text = f.read_text()
        assert "Ordered by: cumulative time" in text and "(start_unit)" in text
    merged = (d / "cprofile-top-merged.txt").read_text()
    assert "Ordered by: cumulative time" in merged and "Ordered by: internal time" in merged
    assert "List reduced from" in merged and "to 25 due to restriction" in merged
    st = pstats.Stats(str(d / "merged.pstats"))
    assert {"generate", "start_unit"} <= _functions(st)
    assert result.metrics["cprofile_processes"] == 3
    assert result.metrics["cprofile_calls"] == st.total_calls

