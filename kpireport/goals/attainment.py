"""``attainment(data, goal, as_of)``: one goal's follow-up, for notebooks and the CLI.

A thin wrapper over :func:`kpireport.goals.evaluate_goals`, which evaluates
goals in batches (one KPI computation per scope, one daily history per KPI
and scope); evaluating one goal is the batch of one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from kpireport.data.model import CrmData
from kpireport.errors import GoalError

log = logging.getLogger("kpireport")


def attainment(
    data: CrmData, goal: Mapping[str, Any] | pd.Series, as_of: Any, **kwargs: Any
) -> pd.Series:
    """Actual to date, pace, forecast at period end, 80 % interval, probability and status of one goal.

    Parameters
    ----------
    data
        The canonical dataset.
    goal
        A mapping with the ``goals`` contract fields (``kpi``, ``scope``,
        ``scope_id``, ``period``, ``target``; ``direction``, ``owner``,
        ``agreed_by`` optional).
    as_of
        The day of the follow-up (inclusive).
    **kwargs
        Passed to :func:`~kpireport.goals.evaluate_goals` (``n_paths``,
        ``seed``, ``forecast``).

    Returns
    -------
    pandas.Series
        One row of :func:`~kpireport.goals.evaluate_goals` (see
        :data:`~kpireport.goals.RESULT_COLUMNS`).
    """
    from kpireport.goals.evaluate import evaluate_goals

    if not isinstance(goal, Mapping | pd.Series):
        raise GoalError(f"A goal is a mapping of its fields, not {type(goal).__name__}.")
    result = evaluate_goals(data, [dict(goal)], as_of=as_of, **kwargs)
    return result.iloc[0]


def ratio_goal(
    hist: Any, row: Any, sid: str | None, period: Any, as_of: pd.Timestamp, n_paths: int, seed: int
) -> dict | None:
    """A ratio goal's forecast as a ratio of forecasts (docs/FORECASTING.md, "Ratio KPIs").

    The KPIs of :data:`~kpireport.forecast.ratio.RATIO_PARTS` (hit rate, mean
    deal value, mean sales cycle, CAC) are split into their additive
    numerator and denominator, whose daily histories the goal evaluation
    already holds (``hist``, one matrix per KPI and scope for every id); their
    complete months are forecast jointly and the period ratio is simulated
    (:func:`~kpireport.forecast.ratio.ratio_goal_forecast`). The numerator and
    denominator fits go through the forecast package's fit cache, so a series
    shared by several goals (deals won: hit rate, sales cycle, deal value of
    one scope) is fitted once; they use the combination's fast members (ETS
    and the classical Theta) to keep a goal table within its time budget.

    Returns
    -------
    dict or None
        The forecast columns of :func:`~kpireport.goals.evaluate_goals` plus
        ``totals`` (the simulated period ratios) and ``model``; ``None`` when
        the KPI is not a ratio of additive KPIs, a part is unavailable, or the
        history is too short (the caller then smooths the ratio itself).
    """
    from kpireport.constants import Direction
    from kpireport.errors import KpiReportError
    from kpireport.forecast.ratio import RATIO_PARTS, WON_CYCLE_DAYS, ratio_goal_forecast

    parts = RATIO_PARTS.get(str(row["kpi"]))
    if parts is None:
        return None
    scope = row["scope"]

    def daily(kpi: str) -> np.ndarray:
        if kpi == WON_CYCLE_DAYS:  # days summed over won deals = mean days x deals won
            mean_days = hist.daily("sales_cycle_days", scope, sid)
            return mean_days * hist.daily("deals_won", scope, sid)
        return hist.daily(kpi, scope, sid)

    inside = parts[0] in parts[1]  # hit rate: simulate won and lost, closed = won + lost
    others = [k for k in parts[1] if k != parts[0]] if inside else list(parts[1])
    try:
        num = daily(parts[0])
        den = sum((daily(k) for k in others), np.zeros(len(num)))
    except KpiReportError as exc:  # a part the data cannot compute (e.g. no costs table)
        log.debug("no ratio of forecasts for %s: %s", row["kpi"], exc)
        return None
    idx = pd.date_range(hist.first, as_of, freq="D")
    got = ratio_goal_forecast(
        pd.Series(num, idx), pd.Series(den, idx), period.start, period.end, as_of,
        float(row["target"]), row["direction"] == Direction.AT_LEAST,
        n_paths=n_paths, seed=seed, allow_slow=False, num_in_den=inside,
    )  # fmt: skip
    if got is None:
        return None
    got["totals"] = got.pop("paths")
    return got
