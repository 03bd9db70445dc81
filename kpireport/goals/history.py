"""Track record: how a seller's or team's goals went, period after period (docs/GOALS.md).

Design decisions
----------------
* **Finished goals only.** A goal counts once its period is over at
  ``as_of`` (its last day is before ``as_of``): achieved or missed is then
  final. Goals are evaluated with :func:`~kpireport.goals.evaluate_goals`
  (no forecast), so attainment and status are the follow-up's own.
* **Series are (KPI, grain).** Monthly order-intake goals and quarterly
  order-intake goals are two records; date-span goals form one series
  (grain ``span``). Each keeps its last ``n`` goals (default 12).
* **Attainment** is actual ÷ target for ``at_least`` goals and target ÷
  actual for ``at_most`` goals (a cost 10 % under its ceiling is 111 %), so
  ≥ 100 % always means reached.
* **Streak** counts the latest outcomes that are the same: ``+3`` three
  reached in a row, ``-2`` two missed in a row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kpireport.constants import Direction, Scope
from kpireport.data.model import CrmData
from kpireport.errors import GoalError, parse_choice
from kpireport.periods import _day, parse_period

HISTORY_COLUMNS = (
    "scope", "scope_id", "kpi", "grain", "goal_id", "period", "target", "actual", "direction",
    "attainment", "reached", "streak", "reached_count", "count", "hit_ratio",
)  # fmt: skip


def goal_history(
    data: CrmData,
    scope: str | Scope,
    scope_id: str | None = None,
    kpi: str | None = None,
    as_of: Any = None,
    *,
    n: int = 12,
    goals: Any = None,
) -> pd.DataFrame:
    """The last ``n`` finished goals of every (KPI, grain) series of a scope id.

    Parameters
    ----------
    data
        The canonical dataset.
    scope, scope_id
        Whose record (``scope_id`` None: every id of the scope).
    kpi
        Only this KPI.
    as_of
        The day of the record. Required.
    n
        Goals per series.
    goals
        Goals as :func:`~kpireport.goals.load_goals` accepts them (default:
        the source's goals table).

    Returns
    -------
    pandas.DataFrame
        One row per goal, oldest first within a series, columns
        :data:`HISTORY_COLUMNS`; ``streak``, ``reached_count``, ``count`` and
        ``hit_ratio`` describe the whole series (same on each of its rows).
    """
    from kpireport.goals import evaluate_goals, load_goals

    if as_of is None:
        raise GoalError("goal_history needs an as_of date.", hint="Pass as_of='YYYY-MM-DD'.")
    asof = _day(as_of)
    scope = parse_choice(Scope, scope, "scope", GoalError)
    g = load_goals(data, goals)
    g = g[g["scope"] == scope.value]
    if scope_id is not None:
        g = g[g["scope_id"].astype(str) == str(scope_id)]
    if kpi is not None:
        g = g[g["kpi"] == kpi]
    if g.empty:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    periods = {p: parse_period(p) for p in pd.unique(g["period"])}
    done = np.array([periods[p].last_day < asof for p in g["period"]], dtype=bool)
    g = g[done].copy()
    if g.empty:
        return pd.DataFrame(columns=list(HISTORY_COLUMNS))
    g["_grain"] = ["span" if periods[p].is_span else str(periods[p].grain) for p in g["period"]]
    g["_start"] = [periods[p].start for p in g["period"]]
    g = g.sort_values(["scope_id", "kpi", "_grain", "_start"])
    g = g.groupby(["scope_id", "kpi", "_grain"], dropna=False, sort=False).tail(n)
    ev = evaluate_goals(data, g.drop(columns=["_grain", "_start"]), as_of=asof, forecast=False)
    ev.index = g.index
    out = pd.DataFrame(
        {
            "scope": ev["scope"],
            "scope_id": ev["scope_id"],
            "kpi": ev["kpi"],
            "grain": g["_grain"],
            "goal_id": ev["goal_id"],
            "period": ev["period"],
            "target": ev["target"].astype(float),
            "actual": ev["actual"].astype(float),
            "direction": ev["direction"],
        }
    )
    at_least = (out["direction"] == Direction.AT_LEAST).to_numpy()
    t, a = out["target"].to_numpy(float), out["actual"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        att = np.where(at_least, a / t, t / a)
    out["attainment"] = np.where(np.isfinite(att), att, np.nan)
    out["reached"] = (ev["status"] == "achieved").to_numpy()
    keys = ["scope_id", "kpi", "grain"]
    grouped = out.groupby(keys, dropna=False, sort=False)["reached"]
    out["reached_count"] = grouped.transform("sum").astype(int)
    out["count"] = grouped.transform("size").astype(int)
    out["hit_ratio"] = out["reached_count"] / out["count"]
    out["streak"] = grouped.transform(_streak).astype(int)
    return out.loc[:, list(HISTORY_COLUMNS)].reset_index(drop=True)


def _streak(reached: pd.Series) -> int:
    """``+k``: the last k reached; ``-k``: the last k missed."""
    values = reached.to_numpy(bool)
    if len(values) == 0:
        return 0
    last = values[-1]
    k = 0
    for v in values[::-1]:
        if v != last:
            break
        k += 1
    return k if last else -k


def track_record(history: pd.DataFrame) -> pd.DataFrame:
    """One row per series of :func:`goal_history`: ``scope_id, kpi, grain, reached_count,
    count, hit_ratio, streak, outcomes`` (a list of ``(period, reached, attainment)``)."""
    if history.empty:
        return pd.DataFrame(
            columns=[
                "scope_id",
                "kpi",
                "grain",
                "reached_count",
                "count",
                "hit_ratio",
                "streak",
                "outcomes",
            ]  # fmt: skip
        )
    rows = []
    for (sid, kpi, grain), sub in history.groupby(
        ["scope_id", "kpi", "grain"], dropna=False, sort=False
    ):
        last = sub.iloc[-1]
        rows.append(
            {
                "scope_id": sid, "kpi": kpi, "grain": grain,
                "reached_count": int(last["reached_count"]), "count": int(last["count"]),
                "hit_ratio": float(last["hit_ratio"]), "streak": int(last["streak"]),
                "outcomes": list(zip(sub["period"], sub["reached"], sub["attainment"], strict=True)),
            }
        )  # fmt: skip
    return pd.DataFrame(rows)
