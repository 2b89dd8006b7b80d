"""The A/B loop's pieces that need no git: settings, side-by-side runs stopped together."""
import pytest

from cdrexp.ab._measure import _RUNNING, SideFailed
from cdrexp.ab._run import ABSettings, _run_both
from cdrexp.cli.precheck import UsageError

from .test_measure import fake_side, run_fake


@pytest.mark.parametrize("settings, message", [
    (ABSettings(metric="cycles"), "--metric: 'cycles' is not one of wall, cpu, instructions"),
    (ABSettings(threshold_pct=float("nan")), "--fail-on-regression: must be a percentage"),
    (ABSettings(max_seconds=0), "--max-seconds: must be > 0"),
    (ABSettings(min_pairs=1), "min_pairs must be >= 2"),
    (ABSettings(confidence=1.5), "confidence must be in (0, 1)"),
])
def test_bad_settings_are_usage_errors(settings, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings.check()


class FakeRunner:
    def __init__(self, side, tmp_path, mode):
        self.side, self.tmp_path, self.mode, self.error = side, tmp_path, mode, None

    def run(self, counted=True):
        try:
            return run_fake(self.side, self.tmp_path, self.mode)
        except SideFailed as exc:
            self.error = exc
            raise


def test_a_failing_side_stops_the_run_beside_it(tmp_path):
    slow = FakeRunner(fake_side(tmp_path, "base"), tmp_path, "sleep")
    failing = FakeRunner(fake_side(tmp_path, "candidate"), tmp_path, "fail")
    with pytest.raises(SideFailed, match="candidate .* failed"):
        _run_both({"base": slow, "candidate": failing}, ("base", "candidate"),
                  concurrently=True)
    # the sleeping run was stopped by SIGTERM, not waited for
    assert slow.error is not None and "(exit -15)" in str(slow.error)
    assert not _RUNNING
