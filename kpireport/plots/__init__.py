"""Charts, KPI cards and tables for the reports, with one consistent theme.

Every chart function takes plain pandas objects and returns a
:class:`matplotlib.figure.Figure` (a :class:`~kpireport.plots.theme.ReportFigure`
that displays itself in Jupyter). Importing this package has no global side
effects; call :func:`use_theme` to style your own matplotlib/seaborn plots the
same way.
"""

from __future__ import annotations

from kpireport.plots.cards import Html, html_table, kpi_cards, status_badge
from kpireport.plots.charts import (
    development_curve,
    funnel,
    goal_overview,
    growth_bars,
    kpi_trend,
    leaderboard,
    pipeline_by_stage,
    yoy_months,
)
from kpireport.plots.theme import empty_figure, to_png, use_theme

__all__ = [
    "Html",
    "development_curve",
    "empty_figure",
    "funnel",
    "goal_overview",
    "growth_bars",
    "html_table",
    "kpi_cards",
    "kpi_trend",
    "leaderboard",
    "pipeline_by_stage",
    "status_badge",
    "to_png",
    "use_theme",
    "yoy_months",
]
