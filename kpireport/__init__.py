"""kpireport: B2B sales KPIs, SMART goal follow-up and forecasts from CRM data.

The names an analyst needs in a notebook are re-exported here; everything else
lives in the stage sub-packages (``data``, ``kpis``, ``goals``, ``forecasting``,
``plots``, ``report``, ``cli``). Imports are lazy so that ``import kpireport``
stays fast inside report kernels.
"""

from __future__ import annotations

from kpireport._lazy import lazy_exports
from kpireport._version import __version__

_EXPORTS = {
    "load": "kpireport.data.load",
    "validate": "kpireport.goals.check",
    "CrmData": "kpireport.data.model",
    "compute_kpis": "kpireport.kpis",
    "kpi_series": "kpireport.kpis",
    "cumulative_curve": "kpireport.kpis",
    "list_kpis": "kpireport.kpis",
    "evaluate_goals": "kpireport.goals",
    "suggest_targets": "kpireport.goals",
    "goal_history": "kpireport.goals",
    "forecast": "kpireport.forecasting",
    "backtest": "kpireport.forecasting",
    "parse_period": "kpireport.periods",
    "Period": "kpireport.periods",
    "KpiReportError": "kpireport.errors",
    "growth_table": "kpireport.kpis",
    "use_theme": "kpireport.plots",
    "development_curve": "kpireport.plots",
    "kpi_trend": "kpireport.plots",
    "goal_overview": "kpireport.plots",
    "funnel": "kpireport.plots",
    "leaderboard": "kpireport.plots",
    "yoy_months": "kpireport.plots",
    "growth_bars": "kpireport.plots",
    "pivot_kpis": "kpireport.kpis",
}

__all__ = ["__version__", *_EXPORTS]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
