"""``main``'s handling of interrupts, in this process with a stand-in for the Hydra app.

Real signals go through the handlers ``main`` installs; the runs are stand-ins, so what
is tested is what main says and does about them, deterministically.
"""
import os
import signal
import time

import pytest

from cdrexp.cli import main as main_mod, sweep


@pytest.fixture
def app(tmp_path, monkeypatch):
    """main() on a tiny valid command line whose Hydra app is ``app.body``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(main_mod, "prepare_tracking", lambda configs, base_dir: None)

    class App:
        body = staticmethod(lambda outcomes: None)

        def run(self):
            try:
                return main_mod.main(["subs=100", "repeats=1", "warmup=0"])
            except KeyboardInterrupt:
                pytest.fail("a signal escaped main()")

    a = App()
    # the Hydra app of main's Outcomes: a.body(outcomes) stands in for its jobs
    monkeypatch.setattr(main_mod, "_hydra_app",
                        lambda outcomes: lambda: a.body(outcomes))
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield a
    for sig, handler in saved.items():     # main leaves them ignored after a stop
        signal.signal(sig, handler)


def _signal_self(sig):
    os.kill(os.getpid(), sig)
    time.sleep(0.5)         # the handler runs here; an exception would end the sleep


def test_sigterm_after_every_run_finished_does_not_say_killed(app, capsys):
    def body(outcomes):
        outcomes.ended.extend([("a" * 32, "FINISHED"), ("b" * 32, "FINISHED")])
        _signal_self(signal.SIGTERM)
        pytest.fail("SIGTERM did not stop the command")

    app.body = body
    assert app.run() == 128 + signal.SIGTERM
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "cdrexp: interrupted (SIGTERM); no run was in progress; 2 runs FINISHED"


def test_the_line_names_the_run_marked_killed_and_the_sweep(app, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "finish_active_sweep", lambda status: "p" * 32)

    def body(outcomes):
        outcomes.ended.extend([("a" * 32, "FINISHED"), ("b" * 32, "KILLED")])
        raise KeyboardInterrupt

    app.body = body
    assert app.run() == 128 + signal.SIGINT
    assert capsys.readouterr().err.splitlines() == [
        f"cdrexp: interrupted (SIGINT); run {'b' * 32} marked KILLED; 1 earlier run "
        f"FINISHED; sweep parent run {'p' * 32} marked KILLED"]


def test_a_second_ctrl_c_during_cleanup_does_not_cut_it_short(app, capfd, monkeypatch):
    """Issue 14: the second Ctrl-C landed while the sweep summary drew its plots and
    ~90 lines of traceback followed. Now it is noted once and the cleanup finishes."""
    cleaned = []

    def finish_active_sweep(status):
        _signal_self(signal.SIGINT)         # the user presses Ctrl-C again
        _signal_self(signal.SIGTERM)        # and then tries kill
        cleaned.append(status)
        return None

    monkeypatch.setattr(sweep, "finish_active_sweep", finish_active_sweep)

    def body(outcomes):
        _signal_self(signal.SIGINT)
        pytest.fail("SIGINT did not stop the command")

    app.body = body
    assert app.run() == 128 + signal.SIGINT
    assert cleaned == ["KILLED"]
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [
        "cdrexp: SIGINT again: still cleaning up after SIGINT, please wait",
        "cdrexp: SIGTERM again: still cleaning up after SIGINT, please wait",
        "cdrexp: interrupted (SIGINT); no run was started"]
    # stopped: up to the process's exit, one more signal is ignored by the OS
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_handlers_are_restored_after_a_command_that_was_not_interrupted(app):
    before = signal.getsignal(signal.SIGINT)
    assert app.run() == 0
    assert signal.getsignal(signal.SIGINT) is before
