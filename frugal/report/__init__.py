"""Aggregate run directories into a comparison: ``runs.csv``, ``report.md``, ``pareto.png`` and
``curves.png``. Data flows one way: collect → compare → table / plots."""

from frugal.report.collect import Run, Skipped, load_runs
from frugal.report.compare import Comparison, compare

__all__ = ["Comparison", "Run", "Skipped", "compare", "load_runs"]
