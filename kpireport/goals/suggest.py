"""Suggested targets: the target each scope id reaches with a chosen probability (docs/GOALS.md).

Design decisions
----------------
* **The same forecast as the follow-up.** The suggestion is the
  ``(1 − probability)`` quantile of the simulated period totals that
  :func:`~kpireport.goals.evaluate_goals` (with ``upcoming=True``) draws for
  a goal of that KPI, scope id and period (the ``probability`` quantile for
  KPIs where lower is better), so evaluating the suggested goal gives back
  the requested probability up to the rounding.
* **Rounded down** (up for ``at_most``) to a round unit (whole counts;
  amounts to about a thousandth, as cascades do), so the chance never falls
  below the one asked for; ``probability_achieved`` is the chance of the
  rounded target.
* **What it takes**: the reverse funnel of the whole target at the scope's
  own conversion rates (:func:`~kpireport.goals.reverse_funnel`: deals,
  opportunities, leads, meetings, quotes), for value and deal-count KPIs.
* **Growth** against the same period last year (percentage points for
  rates), so a suggestion can be argued about like any growth target.
* Scope ids are the teams or sellers active in the period (customers must be
  named with ``scope_ids``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from kpireport.constants import Direction, Scope
from kpireport.data.model import CrmData
from kpireport.errors import GoalError
from kpireport.goals.cascade import _active_sellers, round_unit
from kpireport.periods import _day, parse_period

SUGGEST_COLUMNS = (
    "kpi", "scope", "scope_id", "period", "target", "direction", "probability",
    "probability_achieved", "forecast", "lo_80", "hi_80", "last_year", "growth",
    "deals_needed", "opportunities_needed", "leads_needed", "meetings_needed", "quotes_needed",
)  # fmt: skip


def suggest_targets(
    data: CrmData,
    kpi: str,
    scope: str | Scope,
    period: str,
    probability: float = 0.6,
    as_of: Any = None,
    *,
    scope_ids: list[str] | None = None,
    n_paths: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Targets reached with ``probability``, per scope id, with what they take.

    Parameters
    ----------
    data
        The canonical dataset.
    kpi
        A registry KPI defined for ``scope``.
    scope
        ``organisation``, ``team``, ``seller`` or ``customer``.
    period
        The goals' period (a §4 label or a date span); not over at ``as_of``.
    probability
        The chance of reaching the target, strictly between 0 and 1.
    as_of
        The day the forecast starts from. Required.
    scope_ids
        Only these ids (default: every team or seller active in the period;
        required for customers).
    n_paths, seed
        Simulation size and seed (as :func:`~kpireport.goals.evaluate_goals`).

    Returns
    -------
    pandas.DataFrame
        One row per scope id with :data:`SUGGEST_COLUMNS`; ``target`` is NaN
        (and the funnel empty) where the KPI cannot be forecast for the id.

    Raises
    ------
    GoalError
        A probability outside (0, 1), an unknown KPI or scope, a period that
        is over, or a scope without ids.
    """
    from kpireport.goals.evaluate import _evaluate
    from kpireport.goals.funnel import VALUE_KPIS, reverse_funnel
    from kpireport.goals.values import _values
    from kpireport.kpis.registry import REGISTRY

    if as_of is None:
        raise GoalError("suggest_targets needs an as_of date.", hint="Pass as_of='YYYY-MM-DD'.")
    if not (isinstance(probability, int | float) and 0 < probability < 1):
        raise GoalError(f"The probability {probability!r} must lie strictly between 0 and 1.")
    asof = _day(as_of)
    scope = Scope(str(scope).lower()) if str(scope).lower() in set(Scope) else None
    if scope is None:
        raise GoalError("Unknown scope; use organisation, team, seller or customer.")
    if kpi not in REGISTRY:
        raise GoalError(f"Unknown KPI '{kpi}'.", hint="See kpireport kpis --list.")
    kdef = REGISTRY[kpi]
    p = parse_period(period)
    if p.last_day < asof:
        raise GoalError(f"The period {p.label} is over at {asof.date()}; suggest a later one.")
    if scope_ids is None:
        if scope == Scope.CUSTOMER:
            raise GoalError("Name the customers to suggest targets for (scope_ids / --scope-id).")
        if scope == Scope.ORGANISATION:
            scope_ids = [None]
        else:
            col = "team" if scope == Scope.TEAM else "seller_id"
            scope_ids = sorted(_active_sellers(data, p)[col].dropna().astype(str).unique())
    if not scope_ids:
        raise GoalError(f"No {scope} is active in {p.label}; there is nobody to set a goal for.")
    direction = Direction.AT_MOST.value if str(kdef.better) == "lower" else Direction.AT_LEAST.value
    goals = [
        {"kpi": kpi, "scope": str(scope), "scope_id": sid, "period": p.label, "target": 0,
         "direction": direction, "goal_id": f"S{i + 1}"}
        for i, sid in enumerate(scope_ids)
    ]  # fmt: skip
    totals: dict[int, np.ndarray] = {}
    ev = _evaluate(data, goals, asof, upcoming=True, n_paths=n_paths, seed=seed, totals=totals)
    ly = p.last_year()
    last = (
        _values(data, str(scope), [kpi], [ly], [s for s in scope_ids if s], asof)
        if ly.last_day <= asof
        else pd.Series(dtype=float)
    )
    rate = str(kdef.unit) == "percent"
    rows = []
    for i, sid in enumerate(scope_ids):
        r = ev.iloc[i]
        sims = totals.get(i)
        row: dict[str, Any] = {
            "kpi": kpi, "scope": str(scope), "scope_id": sid, "period": p.label,
            "direction": direction, "probability": float(probability),
            "forecast": r["forecast"], "lo_80": r["lo_80"], "hi_80": r["hi_80"],
        }  # fmt: skip
        target = np.nan
        if sims is not None and len(sims):
            sims = np.asarray(sims, float)
            at_least = direction == Direction.AT_LEAST
            q = float(np.quantile(sims, 1 - probability if at_least else probability))
            target = _round(q, kdef, at_least)
            row["probability_achieved"] = float(
                np.mean(sims >= target) if at_least else np.mean(sims <= target)
            )
        row["target"] = target
        prev = float(last.get((kpi, sid or "", ly.label), np.nan)) if len(last) else np.nan
        row["last_year"] = prev
        if np.isfinite(target) and np.isfinite(prev) and (rate or prev > 0):
            row["growth"] = target - prev if rate else target / prev - 1
        if np.isfinite(target) and (kpi in VALUE_KPIS or kpi == "deals_won"):
            f = reverse_funnel(data, kpi, target, scope, sid, asof)
            for k in ("deals_needed", "opportunities_needed", "leads_needed",
                      "meetings_needed", "quotes_needed"):  # fmt: skip
                row[k] = f.get(k, np.nan)
        rows.append(row)
    out = pd.DataFrame(rows).reindex(columns=list(SUGGEST_COLUMNS))
    out.attrs["as_of"] = str(asof.date())
    return out


def _round(q: float, kdef, at_least: bool) -> float:
    """Round a suggestion towards the safe side: down for at_least, up for at_most."""
    rate = str(kdef.unit) == "percent"
    step = 0.001 if rate else round_unit(abs(q), str(kdef.unit))
    f = math.floor if at_least else math.ceil
    return round(f(q / step + (1e-9 if at_least else -1e-9)) * step, 6)


def suggestions_yaml(df: pd.DataFrame, *, probability: float, as_of: str) -> str:
    """The suggestions as unagreed YAML goal items (for ``--write``)."""
    from kpireport.goals.cascade import cascade_yaml

    ok = df[df["target"].notna()]
    goals = pd.DataFrame(
        {
            "goal_id": [
                f"{k}-{s or 'org'}-{p}"
                for k, s, p in zip(ok["kpi"], ok["scope_id"], ok["period"], strict=True)
            ],
            "kpi": ok["kpi"],
            "scope": ok["scope"],
            "scope_id": ok["scope_id"],
            "period": ok["period"],
            "target": ok["target"],
            "direction": ok["direction"],
            "owner": None,
            "agreed_by": None,
        }
    )
    return cascade_yaml(
        goals, parent="kpireport goals suggest", by=f"probability {probability}", as_of=as_of
    ).replace("# cascaded from kpireport goals suggest by", "# suggested by kpireport with")
