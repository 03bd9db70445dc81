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

The package is ``kpireport.forecasting`` so that ``kpireport.forecast`` is
only ever the function (``from kpireport import forecast``): a package and a
function under one name made ``kpireport.forecast`` change meaning once the
package was imported (docs/FORECASTING.md).
"""

from kpireport.forecasting.attainment import (
    attainment_summary,
    backtest_attainment,
    deal_monte_carlo,
    period_total_distribution,
    run_rate_distribution,
    stage_win_rates,
)
from kpireport.forecasting.backtest import backtest
from kpireport.forecasting.models import ForecastModel, get_model, list_models, register
from kpireport.forecasting.select import clear_cache, forecast, forecast_many, simulate

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
