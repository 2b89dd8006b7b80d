"""The A/B's errors: programmatic callers (``run_ab``, ``run_bisect``) see only these."""


class ABError(Exception):
    """The comparison could not be made; ``str()`` is the one line to show."""


class SettingsError(ABError, ValueError):
    """A bad setting or job override, found before any work; ``str()`` is the line."""
