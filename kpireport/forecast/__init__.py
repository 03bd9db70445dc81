"""Forecasting (SPEC §6): trend/seasonal models with safe fallbacks, backtests, attainment.

Public API::

    forecast(y, horizon, levels=(80, 95))   -> DataFrame (mean, lo_80, hi_80, lo_95, hi_95)
    simulate(y, horizon, n_paths, seed)     -> ndarray (n_paths, horizon)
    backtest(y, horizon, origins, models)   -> DataFrame per model (MASE, sMAPE, coverage)
    forecast_many(series, horizon, jobs, pool) -> dict key -> forecast frame
    period_total_distribution(...), attainment_summary(...), run_rate_distribution(...),
    backtest_attainment(...), deal_monte_carlo(...), stage_win_rates(...)

Sub-modules: :mod:`.models` (model protocol + registry), :mod:`.select` (the
selector and the public functions), :mod:`.backtest`, :mod:`.attainment`.
"""

import sys
import types
from typing import Any

from kpireport.forecast.attainment import (
    attainment_summary,
    backtest_attainment,
    deal_monte_carlo,
    period_total_distribution,
    run_rate_distribution,
    stage_win_rates,
)
from kpireport.forecast.backtest import backtest
from kpireport.forecast.models import ForecastModel, get_model, list_models, register
from kpireport.forecast.select import clear_cache, forecast, forecast_many, simulate

__all__ = [
    "ForecastModel",
    "attainment_summary",
    "backtest",
    "backtest_attainment",
    "clear_cache",
    "deal_monte_carlo",
    "forecast",
    "forecast_many",
    "get_model",
    "list_models",
    "period_total_distribution",
    "register",
    "run_rate_distribution",
    "simulate",
    "stage_win_rates",
]


class _ForecastPackage(types.ModuleType):
    """This package, callable as :func:`forecast`.

    The package root re-exports ``kpireport.forecast`` as the function (STYLE:
    a small public API), but once this sub-package is imported Python binds
    ``kpireport.forecast`` to the package itself. Making the package callable
    keeps ``kpireport.forecast(y, 12)`` working either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return forecast(*args, **kwargs)


sys.modules[__name__].__class__ = _ForecastPackage
