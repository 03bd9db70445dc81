"""Calibration of goal-attainment probabilities on a scope's own history (issue 4 §4).

Design decisions
----------------
* No second backtest engine: :func:`backtest_goals` only builds the scope's
  daily series of the KPI (:func:`kpireport.kpis.kpi_series` at day grain, up
  to ``as_of``) and hands it to
  :func:`kpireport.forecasting.backtest_attainment`, which replays past periods
  at several elapsed shares with manager-style targets and scores the
  probabilities of the method :func:`~kpireport.goals.evaluate_goals` uses
  (``profile``) against the run-rate baseline (``run_rate``: pace
  extrapolation with a normal band) by the Brier score and a reliability
  table.
* Only additive KPIs can be calibrated this way (a ratio's period value is
  not a sum of days); asking for another raises :class:`GoalError`.
* The series ends at the last complete day ``as_of``; replayed periods must be
  complete by then, so the current period is never scored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from kpireport.constants import Scope
from kpireport.data.model import CrmData
from kpireport.errors import GoalError
from kpireport.periods import _day

DateLike = dt.date | pd.Timestamp | str


def backtest_goals(
    data: CrmData,
    kpi: str,
    scope: str | Scope = Scope.ORGANISATION,
    scope_id: str | None = None,
    grain: str = "month",
    elapsed: Sequence[float] = (0.25, 0.5, 0.75),
    as_of: DateLike | None = None,
    *,
    targets: str = "trailing",
    n_paths: int = 1000,
    seed: int = 0,
    min_history_periods: int = 6,
    max_periods: int | None = None,
):
    """Brier score and reliability of goal probabilities vs the run-rate baseline.

    Parameters
    ----------
    data
        The canonical dataset.
    kpi
        An additive KPI (``won_value``, ``meetings_booked``, ...).
    scope, scope_id
        Whose history is replayed.
    grain
        Goal period grain: ``month``, ``quarter`` or ``week``.
    elapsed
        Shares of the period elapsed at the replayed as-of dates.
    as_of
        Last day of data to use (required).
    targets, n_paths, seed, min_history_periods, max_periods
        Passed to :func:`kpireport.forecasting.backtest_attainment`.

    Returns
    -------
    kpireport.forecasting.attainment.AttainmentBacktest
        ``brier`` (index ``method, elapsed``; columns ``brier, n``),
        ``reliability`` (predicted vs observed per probability bin and method)
        and ``detail`` (one row per replayed period, share, method and target).

    Raises
    ------
    GoalError
        Without ``as_of``, or for a non-additive KPI.
    """
    from kpireport.forecasting import backtest_attainment
    from kpireport.kpis import get_kpi, kpi_series

    if as_of is None:
        raise GoalError("backtest_goals needs an as_of date.", hint="Pass as_of='YYYY-MM-DD'.")
    kdef = get_kpi(kpi)
    if not kdef.additive:
        raise GoalError(
            f"The KPI '{kdef.name}' is not additive: its attainment cannot be replayed day by day.",
            hint="Calibrate an additive KPI such as won_value, deals_won or meetings_booked.",
        )
    asof = _day(as_of)
    daily = kpi_series(data, kdef.name, scope, scope_id, grain="day", end=asof, as_of=asof)
    daily = daily.fillna(0.0)
    return backtest_attainment(
        daily,
        grain=grain,
        elapsed=elapsed,
        targets=targets,
        methods=("profile", "run_rate"),
        n_paths=n_paths,
        seed=seed,
        min_history_periods=min_history_periods,
        max_periods=max_periods,
    )
