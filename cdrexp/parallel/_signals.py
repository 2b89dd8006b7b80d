"""SIGINT and SIGTERM in the parent: turn both into one exception, so cleanup runs.

A terminal's Ctrl-C raises ``KeyboardInterrupt``; a ``kill`` (SIGTERM) would end the
process on the spot, skipping every ``finally`` (shared memory, workers, temp files).
``SignalGuard`` makes both raise ``Interrupted``, a ``KeyboardInterrupt`` that names the
signal, and restores the previous handlers when the run is over.

Interrupts are idempotent: the first signal stops the process, later ones must not cut
its cleanup short (marking runs KILLED, a sweep's summary) with a second exception and a
traceback. ``install_stop_handlers`` (the CLI's, for the whole command) raise only for
the first signal of the process, whichever handler caught that one; later ones are noted
once on stderr and otherwise ignored, up to the process's exit.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Optional

_stopping: Optional[int] = None     # the signal that is stopping this process, if any
_say_again = True                   # install_stop_handlers' note on a later signal


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGINT or SIGTERM); ``signum`` says which."""

    def __init__(self, signum: int, message: str = ""):
        self.signum = signum
        super().__init__(message or f"{signal.Signals(signum).name} received")

    @property
    def signame(self) -> str:
        return signal.Signals(self.signum).name


HANDLED = (signal.SIGINT, signal.SIGTERM)


class SignalGuard:
    """Context manager: SIGINT/SIGTERM raise ``Interrupted`` once; ``quiet()`` for cleanup.

    Only the main thread can own signal handlers; elsewhere the guard does nothing (a
    Ctrl-C then reaches the main thread, which is where it belongs).
    """

    def __init__(self):
        self._previous: dict[int, object] = {}
        self.received: int | None = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._raise)
        return self

    def _raise(self, signum, frame):
        global _stopping
        if self.received is None:
            self.received = signum
            _stopping = _stopping or signum
            raise Interrupted(signum)
        # a second signal while unwinding: keep cleaning up

    def _note(self, signum, frame):
        self.received = self.received or signum

    def quiet(self) -> None:
        """From here on signals are noted, not raised: cleanup must not be cut short."""
        for sig in self._previous:
            signal.signal(sig, self._note)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False


def _stop(signum, frame):
    global _stopping
    if _stopping is None:
        _stopping = signum
        raise Interrupted(signum)
    if not _say_again:
        return
    # os.write, not print: a handler may run in the middle of another print
    os.write(2, f"cdrexp: {signal.Signals(signum).name} again: still cleaning up after "
                f"{signal.Signals(_stopping).name}, please wait\n".encode())
    signal.signal(signum, _ignore)      # said once; from now on silent


def _ignore(signum, frame):
    pass


def install_stop_handlers(say_again: bool = True) -> dict:
    """SIGINT and SIGTERM raise ``Interrupted`` for the first signal of the process and
    are ignored afterwards (``say_again``: with a note on stderr, once); returns the
    previous handlers for ``restore_handlers``."""
    global _stopping, _say_again
    _stopping, _say_again = None, say_again
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _stop) for sig in HANDLED}


_PR_SET_PDEATHSIG = 1


def sigterm_when_parent_dies(parent: int) -> bool:
    """Have the kernel send this process SIGTERM when ``parent`` (its parent now) dies,
    even by SIGKILL (Linux's ``PR_SET_PDEATHSIG``; elsewhere nothing is set up and the
    caller's pipe or ``finally`` has to do). False when the parent already died."""
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM,
                                                   0, 0, 0)
        except (OSError, AttributeError):
            pass        # no prctl: the caller's other ways remain
    return os.getppid() == parent       # it may have died before prctl took effect


def restore_handlers(previous: dict) -> None:
    """The handlers from before ``install_stop_handlers``; after an interrupt, though,
    SIGINT and SIGTERM stay ignored: the command is over and its process about to exit,
    and one more Ctrl-C must not turn that exit into a KeyboardInterrupt."""
    for sig, handler in previous.items():
        signal.signal(sig, signal.SIG_IGN if _stopping is not None else handler)
