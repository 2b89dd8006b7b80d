"""Comparing cdrexp runs kept in MLflow: latest, compare, trends, export, plot, CI gate.

``python -m cdrexp.compare --help``; the statistics behind the verdicts are in
``_stats.compare_samples``.
"""
__all__ = ["Change", "Profiled", "compare_profiled", "compare_samples", "read_samples",
           "render_profile_diff"]

# the differential profile, for cdrexp.ab: imported on first use (it pulls in the
# profile readers and rich tables, which the statistics alone do not need)
_PROFILE_DIFF = {"Profiled": "Profiled", "compare_profiled": "compare_profiled",
                 "read_samples": "read_samples", "render_profile_diff": "render"}


# the statistics: scipy.stats, ~1 s of CPU to import, which `python -m cdrexp.compare`
# with a bad argument (cli.py parses first) must not spend
_STATS = {"Change": "Change", "compare_samples": "compare_samples"}


def __getattr__(name):
    if name in _STATS:
        from . import _stats
        return getattr(_stats, _STATS[name])
    if name in _PROFILE_DIFF:
        from . import _profile_diff
        return getattr(_profile_diff, _PROFILE_DIFF[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
