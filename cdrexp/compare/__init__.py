"""Comparing cdrexp runs kept in MLflow: latest, compare, trends, export, plot, CI gate.

``python -m cdrexp.compare --help``; the statistics behind the verdicts are in
``_stats.compare_samples``.
"""
from ._stats import Change, compare_samples

__all__ = ["Change", "compare_samples"]
