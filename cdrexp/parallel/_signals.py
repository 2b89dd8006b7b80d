"""SIGINT and SIGTERM in the parent: turn both into one exception, so cleanup runs.

A terminal's Ctrl-C raises ``KeyboardInterrupt``; a ``kill`` (SIGTERM) would end the
process on the spot, skipping every ``finally`` (shared memory, workers, temp files).
``SignalGuard`` makes both raise ``Interrupted``, a ``KeyboardInterrupt`` that names the
signal, and restores the previous handlers when the run is over.
"""
from __future__ import annotations

import signal
import threading


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
        if self.received is None:
            self.received = signum
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
