"""kpireport: B2B sales KPIs, SMART goal follow-up and forecasts from CRM data.

The names an analyst needs in a notebook are re-exported here; everything else
lives in the stage sub-packages (``data``, ``kpis``, ``goals``, ``forecast``,
``plots``, ``report``, ``cli``). Imports are lazy so that ``import kpireport``
stays fast inside report kernels.
"""

from __future__ import annotations

import importlib
from typing import Any

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
    "forecast": "kpireport.forecast",
    "backtest": "kpireport.forecast",
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


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kpireport' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API, so ``dir()`` and Jupyter's Tab completion list the lazy exports."""
    return sorted(__all__)
