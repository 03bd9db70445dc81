"""``attainment(data, goal, as_of)``: one goal's follow-up, for notebooks and the CLI.

A thin wrapper over :func:`kpireport.goals.evaluate_goals`, which evaluates
goals in batches (one KPI computation per scope, one daily history per KPI
and scope); evaluating one goal is the batch of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from kpireport.data.model import CrmData
from kpireport.errors import GoalError


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
