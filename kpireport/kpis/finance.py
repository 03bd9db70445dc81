"""Finance comparisons: revenue MoM, YoY and like-for-like YTD per scope (docs/KPIS.md, docs/ARCHITECTURE.md).

Design decisions
----------------
* One row per scope id (the same ids as :func:`~kpireport.kpis.compute_kpis`:
  every team; sellers active in P or with revenue in any compared span;
  customers with revenue in any compared span).
* "To date": P is cut at the known end (the end of ``as_of`` or of the
  data's last day, whichever is earlier;
  :func:`~kpireport.kpis.compute.known_end`, docs/KPIS.md); the previous
  period is cut after the same number of days, last year's period and last
  year's YTD at the same calendar day one year earlier (weeks and days: after
  the same number of days) — like for like. A P that starts after the known
  end has NaN revenue and growth (unknown, not zero).
* **New scopes.** Growth is only defined against a positive base. A zero base
  gives NaN growth (shown "–"), never +inf; a scope with no revenue in either
  prior-year span (same period last year and YTD last year) is flagged
  ``new``. ``comparable`` is True when both prior-year bases are positive,
  i.e. YoY and YTD growth are both meaningful.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from kpireport.constants import Scope, Table
from kpireport.data.model import CrmData
from kpireport.kpis.compute import (
    DateLike,
    PeriodLike,
    cut_intervals,
    evaluate,
    period_status,
    resolve_periods,
    resolve_scope,
)
from kpireport.kpis.definitions import comparison_bounds, growth
from kpireport.kpis.engine import UNATTRIBUTED, prepared
from kpireport.kpis.registry import get_kpi
from kpireport.periods import Period

#: columns of :func:`growth_table`, in order
GROWTH_COLUMNS = (
    "scope",
    "scope_id",
    "period",
    "revenue",
    "revenue_prev",
    "growth_mom",
    "revenue_ly",
    "growth_yoy",
    "revenue_ytd",
    "revenue_ytd_ly",
    "growth_ytd",
    "comparable",
    "new",
)


def growth_table(
    data: CrmData,
    period: PeriodLike | Iterable[PeriodLike],
    by: str | Scope = Scope.ORGANISATION,
    as_of: DateLike | None = None,
    *,
    unattributed: bool = False,
) -> pd.DataFrame:
    """Revenue growth per scope id: MoM, YoY and YTD against the same span last year.

    Parameters
    ----------
    data
        The canonical dataset (needs the ``revenue`` table).
    period
        A period or a list of them: a label or relative name (docs/PERIODS.md;
        relative names need ``as_of``), a Period, a pandas Period, a date or
        Timestamp (that day) or an int year. Several periods give their rows
        one after the other, in the order given.
    by
        Scope of the rows.
    as_of
        Cuts P "to date" and the comparison spans to the same day.
    unattributed
        Add an ``(unattributed)`` row for revenue without a seller/company.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GROWTH_COLUMNS`; growth values are fractions
        (0.05 = +5 %).
    """
    scope = resolve_scope(by)
    frames = [
        _growth_one(data, p, scope, as_of, unattributed) for p in resolve_periods(period, as_of)
    ]
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    out.attrs["has_revenue"] = frames[0].attrs["has_revenue"]
    return out


def _growth_one(
    data: CrmData, p: Period, scope: Scope, as_of: DateLike | None, unattributed: bool
) -> pd.DataFrame:
    """:func:`growth_table` of one period."""
    periods = [p]
    prep = prepared(data)
    starts, ends = cut_intervals(periods, as_of, prep)
    rev = get_kpi("revenue")

    def rev_over(s: np.ndarray, e: np.ndarray) -> np.ndarray:
        return evaluate(data, rev, scope, periods, s, e, as_of)[0][0]

    cur = rev_over(starts, ends)
    _, _, ps, pe, _ = comparison_bounds(periods, starts, ends, "mom")
    _, _, ls, le, _ = comparison_bounds(periods, starts, ends, "yoy")
    ys, ye, yls, yle, _ = comparison_bounds(periods, starts, ends, "ytd")
    prev = rev_over(ps, pe) if not p.is_span else np.full_like(cur, np.nan)
    ly = rev_over(ls, le) if not p.is_span else np.full_like(cur, np.nan)
    ytd, ytd_ly = rev_over(ys, ye), rev_over(yls, yle)
    ids = np.append(prep.scope_ids(scope).to_numpy(dtype=object), UNATTRIBUTED)
    df = pd.DataFrame(
        {
            "scope": str(scope),
            "scope_id": pd.array(ids, dtype="str"),
            "period": p.label,
            "revenue": cur,
            "revenue_prev": prev,
            "growth_mom": growth(cur, prev),
            "revenue_ly": ly,
            "growth_yoy": growth(cur, ly),
            "revenue_ytd": ytd,
            "revenue_ytd_ly": ytd_ly,
            "growth_ytd": growth(ytd, ytd_ly),
        }
    )
    df["comparable"] = (df["revenue_ly"] > 0) & (df["revenue_ytd_ly"] > 0)
    df["new"] = (df["revenue_ly"].fillna(0) == 0) & (df["revenue_ytd_ly"] == 0)
    width = len(ids)
    keep = np.zeros(width, dtype=bool)
    money = df[["revenue", "revenue_prev", "revenue_ly", "revenue_ytd", "revenue_ytd_ly"]].fillna(0)
    has_data = (money != 0).any(axis=1).to_numpy()
    if scope in (Scope.ORGANISATION, Scope.TEAM):
        keep[: width - 1] = True
    else:
        keep[: width - 1] = has_data[: width - 1]
        if scope == Scope.SELLER:
            keep[: width - 1] |= prep.seller_active(starts, ends)[0]
    keep[width - 1] = unattributed and scope != Scope.ORGANISATION
    if period_status(prep, periods, as_of)[0][0]:  # after the data / as_of: unknown, not 0
        df.loc[:, "revenue":"growth_ytd"] = np.nan
        df["comparable"] = False
        df["new"] = False
    out = df.loc[keep].reset_index(drop=True)
    out.attrs["has_revenue"] = prep.has(Table.REVENUE)
    return out
