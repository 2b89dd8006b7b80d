"""The A/B loop's pieces that need no git: settings, side-by-side runs stopped together."""
import pytest

from cdrexp.ab._measure import _RUNNING, SideFailed
from cdrexp.ab._run import ABSettings, _run_both
from cdrexp.ab import SettingsError

from .test_measure import fake_side, run_fake


@pytest.mark.parametrize("settings, message", [
    (ABSettings(metric="cycles"), "--metric: 'cycles' is not one of wall, cpu, instructions"),
    (ABSettings(threshold_pct=float("nan")), "--fail-on-regression: must be a percentage"),
    (ABSettings(max_seconds=0), "--max-seconds: must be > 0"),
    (ABSettings(min_pairs=1), "min_pairs must be >= 2"),
    (ABSettings(confidence=1.5), "confidence must be in (0, 1)"),
])
def test_bad_settings_are_usage_errors(settings, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings.check()


class FakeRunner:
    def __init__(self, side, tmp_path, mode):
        self.side, self.tmp_path, self.mode, self.error = side, tmp_path, mode, None

    def run(self, counted=True, timeout=None):
        try:
            return run_fake(self.side, self.tmp_path, self.mode, timeout=timeout)
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


def test_the_schedule_is_cut_to_the_pairs_the_budget_holds():
    from cdrexp.ab._run import _fit_schedule
    settings = ABSettings(max_pairs=40, min_pairs=4)
    rule = settings.check()
    fitted = _fit_schedule(rule, settings, warm_up_s=10.0, remaining_s=125.0)
    assert fitted.schedule == (4, 6, 8, 11, 12)
    assert fitted.look_level == pytest.approx(1 - 0.05 / 5)     # 5 looks, not 9
    # never below min_pairs; never above what was asked; instructions left alone
    assert _fit_schedule(rule, settings, 100.0, 50.0).max_pairs == 4
    assert _fit_schedule(rule, settings, 0.5, 1000.0).max_pairs == 40
    counted = ABSettings(metric="instructions")
    assert _fit_schedule(rule, counted, 10.0, 20.0) is rule


def test_instruction_counts_get_a_short_schedule_by_default():
    assert ABSettings(metric="instructions").check().schedule == (4, 6, 8)
    assert ABSettings(metric="cpu").check().schedule[-1] == 40
    assert ABSettings(metric="instructions", max_pairs=12).check().schedule[-1] == 12


def test_a_run_past_the_budget_is_stopped_there_and_the_pair_dropped(tmp_path):
    import time
    from cdrexp.ab._run import _BudgetSpent
    slow = FakeRunner(fake_side(tmp_path, "base"), tmp_path, "sleep")
    t0 = time.monotonic()
    with pytest.raises(_BudgetSpent):
        _run_both({"base": slow, "candidate": slow}, ("base", "candidate"),
                  concurrently=False, timeout=100, deadline=time.monotonic() + 1)
    assert time.monotonic() - t0 < 60          # not the 120 s the run sleeps
    assert not _RUNNING


def test_the_run_timeout_comes_from_the_warm_up_unless_given():
    from cdrexp.ab._run import MIN_TIMEOUT_S, TIMEOUT_FACTOR, run_timeout
    assert run_timeout(ABSettings(), 100.0) == TIMEOUT_FACTOR * 100.0
    assert run_timeout(ABSettings(), 0.1) == MIN_TIMEOUT_S
    assert run_timeout(ABSettings(run_timeout=7), 100.0) == 7
    assert run_timeout(ABSettings(metric="instructions"), 1.0) is None
    with pytest.raises(SettingsError, match="--run-timeout: must be > 0"):
        ABSettings(run_timeout=0).check()
