"""run_profiler's contract, the same for every profiler: a child that fails is reported as
status "failed" in one line naming the cause, never raised (perf: see test_perf.py, which
also covers a machine without perf)."""
import pytest

from profiler_helpers import broken_child, profile


@pytest.mark.parametrize("name", ["pyspy", "memray", "cprofile"])
def test_failing_child_is_reported_in_one_line(tmp_path, name):
    res = profile(tmp_path, name, child_cmd=broken_child(tmp_path))
    assert res.status == "failed"
    assert "missing.yaml" in res.message and "\n" not in res.message
