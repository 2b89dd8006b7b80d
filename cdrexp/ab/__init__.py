"""Interleaved A/B of two revisions of cdrexp: ``python -m cdrexp.ab BASE [CANDIDATE]``.

``run_ab`` is the programmatic entry point (no CLI, no MLflow); an ``Observer`` is told
about the start, every pair and the end (``finished`` runs while both checkouts still
exist, so it can run each side once more, e.g. under a profiler, with ``side_env`` and
the side's config from ``write_side_config``); ``checkout`` gives a revision in a
temporary git worktree on its own; ``run_bisect`` finds the first commit slower than a
good one (``--bisect``). Each side runs from a scratch worktree (the working tree as a
snapshot) with its own packages when the two declare different ones (``_envs``).
"""
from ._bisect import BisectResult, run_bisect
from ._job import compose_job, write_side_config
from ._envs import EnvError, SideEnv
from ._errors import ABError, SettingsError
from ._measure import METRICS, RunMeasurement, RunTimedOut, Side, SideFailed, side_env
from ._revisions import RevisionError, checkout, repo_root, resolve, snapshot
from ._run import ABResult, ABSettings, Observer, Pair, run_ab
from ._stats import (NOT_SLOWER, SLOWER, UNDECIDED, Decision, Interval, StoppingRule,
                     ratio_interval)

__all__ = ["ABError", "ABResult", "ABSettings", "BisectResult", "Decision", "EnvError",
           "Interval", "METRICS", "NOT_SLOWER", "Observer", "Pair", "RevisionError",
           "RunMeasurement", "RunTimedOut", "SLOWER", "SettingsError", "Side", "SideEnv",
           "SideFailed", "StoppingRule", "UNDECIDED", "checkout", "compose_job",
           "ratio_interval", "repo_root", "resolve", "run_ab", "run_bisect", "side_env",
           "snapshot", "write_side_config"]
