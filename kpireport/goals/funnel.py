"""Reverse funnel: what a goal still needs in leads, meetings, quotes and deals.

Design decision: the rates come from the scope's own last 12 complete months
before ``as_of`` (its hit rate, lead → won conversion, average deal value and
activities per won deal), so a team that converts better needs fewer leads.
Where a rate is undefined for the scope (no closed deals) the organisation's
rate is used and the row says so in ``basis``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kpireport.constants import Grain, Scope
from kpireport.data.model import CrmData
from kpireport.errors import GoalError, parse_choice
from kpireport.periods import Period, _day, containing

RATE_KPIS = (
    "avg_deal_value",
    "hit_rate",
    "lead_conversion",
    "deals_won",
    "meetings_booked",
    "quotes_sent",
)
VALUE_KPIS = frozenset({"won_value", "revenue"})
COUNT_KPIS = frozenset({"deals_won"})


def trailing_year(as_of) -> Period:
    """The 12 complete months before the month containing ``as_of``."""
    this_month = containing(_day(as_of), Grain.MONTH)
    start = this_month.start - pd.DateOffset(months=12)
    return Period(
        pd.Timestamp(start),
        this_month.start,
        Grain.DAY,
        f"12 months to {this_month.start.date()}",
        True,
    )


def funnel_rates(
    data: CrmData, scope: str | Scope, scope_id: str | None, as_of
) -> dict[str, float]:
    """The scope's conversion rates over the trailing 12 complete months."""
    from kpireport.kpis import compute_kpis

    scope = parse_choice(Scope, scope, "scope", GoalError)
    window = trailing_year(as_of)
    rates: dict[str, float] = {}
    for sc, sid in ((Scope(scope), scope_id), (Scope.ORGANISATION, None)):
        df = compute_kpis(data, [window], by=sc, kpis=list(RATE_KPIS), as_of=as_of)
        if sc != Scope.ORGANISATION:
            df = df[df["scope_id"] == sid]
        vals = df.set_index("kpi")["value"].to_dict()
        won = vals.get("deals_won", np.nan)
        got = {
            "avg_deal_value": vals.get("avg_deal_value", np.nan),
            "hit_rate": vals.get("hit_rate", np.nan),
            "lead_conversion": vals.get("lead_conversion", np.nan),
            "meetings_per_win": vals.get("meetings_booked", np.nan) / won if won else np.nan,
            "quotes_per_win": vals.get("quotes_sent", np.nan) / won if won else np.nan,
        }
        for k, v in got.items():
            if k not in rates and v is not None and np.isfinite(v) and v > 0:
                rates[k] = float(v)
                rates[f"{k}_basis"] = "scope" if sc == Scope(scope) else Scope.ORGANISATION.value
    return rates


def reverse_funnel(
    data: CrmData, kpi: str, remaining: float, scope: str | Scope, scope_id: str | None, as_of
) -> dict[str, float | str]:
    """How many more won deals, opportunities, leads, meetings and quotes a goal needs.

    Parameters
    ----------
    kpi
        The goal's KPI: ``won_value`` or ``revenue`` (value goals) or
        ``deals_won`` (count goal).
    remaining
        Target minus actual to date (nothing is needed when ≤ 0).

    Returns
    -------
    dict
        ``deals_needed`` (won deals), ``opportunities_needed`` (closed deals at
        the hit rate), ``leads_needed`` (at the lead → won conversion),
        ``meetings_needed``, ``quotes_needed`` (rounded up), and the rates used.
    """
    rates = funnel_rates(data, scope, scope_id, as_of)
    out: dict[str, float | str] = dict(rates)
    remaining = max(float(remaining), 0.0)
    if kpi in COUNT_KPIS:
        deals = remaining
    elif kpi in VALUE_KPIS and rates.get("avg_deal_value"):
        deals = remaining / rates["avg_deal_value"]
    else:
        deals = np.nan

    def need(x: float) -> float:
        return float(math.ceil(x - 1e-9)) if np.isfinite(x) else np.nan

    out["deals_needed"] = need(deals)
    out["opportunities_needed"] = (
        need(deals / rates["hit_rate"]) if rates.get("hit_rate") else np.nan
    )
    out["leads_needed"] = (
        need(deals / rates["lead_conversion"]) if rates.get("lead_conversion") else np.nan
    )
    out["meetings_needed"] = (
        need(deals * rates["meetings_per_win"]) if rates.get("meetings_per_win") else np.nan
    )
    out["quotes_needed"] = (
        need(deals * rates["quotes_per_win"]) if rates.get("quotes_per_win") else np.nan
    )
    return out
