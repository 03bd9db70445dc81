"""The KPI formulas (docs/KPIS.md). Each function's docstring *is* its definition.

Every formula takes a :class:`~kpireport.kpis.engine.Context` (dataset, scope,
intervals) and returns a ``(intervals, scope ids + 1)`` float array — the last
column collects unattributed rows — or a pair ``(values, notes)`` where notes
is an object array of the same shape (``None`` = no note).

Each formula is written once as SQL (DuckDB dialect) and run through
:mod:`kpireport.kpis.relational` on the dataset's engine: embedded DuckDB by
default, or the database of ``CrmData.engine``. Only aggregates per interval
and scope key come back; what remains in Python is arithmetic on those small
arrays (ratios, growth, CLV's 12-month windows) and the sellers' pro-rata
monthly cost over the small ``sellers`` table.

Rules shared by all formulas
----------------------------
* A row belongs to period P iff ``P.start <= timestamp < P.end``.
* Team and seller attribution go through the row's ``seller_id`` and the
  seller's **current** ``team`` in the ``sellers`` table: a seller who changed
  team has all their history attributed to their current team (the contract
  has no team history). Rows without a (known) seller count for the
  organisation and the customer scope only.
* Customer attribution goes through the row's ``company_id``.
* A ratio with a zero denominator is NaN, never 0 or inf.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpireport.constants import DealStatus, Scope, Table
from kpireport.kpis import relational as rel
from kpireport.kpis.engine import (
    NAT,
    NS_PER_DAY,
    Context,
    ratio,
)
from kpireport.periods import Period

Result = np.ndarray | tuple[np.ndarray, np.ndarray]

#: CLV lifetime cap (months)
MAX_LIFETIME_MONTHS = 120.0


# ------------------------------------------------------------------ helpers
WON = rel.text_is("r.status", DealStatus.WON)
LOST = rel.text_is("r.status", DealStatus.LOST)
OPEN = rel.text_is("r.status", DealStatus.OPEN)
COUNT = "COUNT(*)"


def _sum(column: str) -> str:
    """SQL: the exact sum of ``column`` (:func:`rel.exact_sum`, ``NULL`` counts as 0)."""
    return rel.exact_sum(column)


def _one(ctx: Context, table: str, time: str, measure: str = COUNT, **kw: object) -> np.ndarray:
    """One aggregate of ``table`` per (interval, result column), see :func:`rel.aggregate`."""
    return rel.aggregate(ctx, table, {"v": measure}, time=time, **kw)["v"]


ACTIVITY_TYPES = ("meeting", "quote", "call")


def _activity(ctx: Context, kind: str) -> np.ndarray:
    """Activities of one type per (interval, column): one scan serves every type."""
    res = rel.aggregate(
        ctx,
        Table.ACTIVITIES,
        {"n": COUNT},
        time="occurred_at",
        where=f"LOWER(TRIM(r.type)) IN ({', '.join(map(rel.quote, ACTIVITY_TYPES))})",
        group="LOWER(TRIM(r.type))",
        groups=ACTIVITY_TYPES,
    )
    return res[kind]["n"]


def _closed(ctx: Context) -> dict[str, dict[str, np.ndarray]]:
    """Won and lost deals by ``closed_at``: count, value and cycle days (one scan).

    ``_closed(ctx)["won"]["n"]`` is the number of won deals per (interval,
    column), ``["v"]`` the sum of their ``value``, ``["d"]`` the sum of their
    cycle days (summed exactly in seconds, then divided).
    """
    res = rel.aggregate(
        ctx,
        Table.DEALS,
        {"n": COUNT, "v": _sum("r.value"), "d": _sum(rel.cycle_seconds())},
        time="closed_at",
        where=f"({WON} OR {LOST})",
        group="LOWER(TRIM(r.status))",
        groups=(DealStatus.WON, DealStatus.LOST),
    )
    for part in res.values():
        part["d"] = part["d"] / 86400.0
    return res


# ------------------------------------------------------------------- leads
def new_leads(ctx: Context) -> Result:
    """Number of leads whose ``created_at`` falls in P, attributed to the lead's seller."""
    return _one(ctx, Table.LEADS, "created_at")


def sql(ctx: Context) -> Result:
    """Number of leads whose ``qualified_at`` falls in P (sales-qualified leads), attributed to the lead's seller."""
    return _one(ctx, Table.LEADS, "qualified_at")


def _typical_cycle(ctx: Context) -> float:
    med = rel.scalar(
        ctx,
        f"SELECT MEDIAN({rel.cycle_days()}) FROM deals r "
        f"WHERE {WON} AND {rel.before_cutoff('r.closed_at', ctx.cutoff)}",
    )
    return np.nan if med is None else float(med)


def lead_conversion(ctx: Context) -> Result:
    """Share of the leads created in P that became a won deal (lead cohort view).

    Numerator: leads created in P that at least one deal with status ``won``
    and ``closed_at`` before the cut-off (``as_of`` + 1 day, or the end of the
    data) refers to through ``deals.lead_id``. Denominator: leads created in P.
    Attributed to the lead's seller. A cohort is marked *immature* in the note
    when the time from the end of P to the cut-off is shorter than the typical
    (median) sales cycle of won deals: its conversion will still grow.
    """
    won_leads = (
        f"SELECT DISTINCT r.lead_id FROM deals r WHERE {WON} AND r.lead_id IS NOT NULL "
        f"AND {rel.before_cutoff('r.closed_at', ctx.cutoff)}"
    )
    leads = (
        "(SELECT l.*, CASE WHEN cv.lead_id IS NULL THEN 0 ELSE 1 END AS converted "
        f"FROM leads l LEFT JOIN ({won_leads}) cv ON cv.lead_id = l.lead_id)"
    )
    res = rel.aggregate(
        ctx,
        Table.LEADS,
        {"num": "SUM(r.converted)", "den": COUNT},
        time="created_at",
        relation=leads,
    )
    notes = ctx.cell_notes()
    typical = _typical_cycle(ctx)
    if not np.isnan(typical):
        age = (ctx.cutoff - ctx.ends.astype("float64")) / NS_PER_DAY
        young = age < typical
        notes[young, :] = (
            f"immature cohort: younger than the typical sales cycle ({typical:.0f} days)"
        )
    return ratio(res["num"], res["den"]), notes


def new_organisations(ctx: Context) -> Result:
    """Number of distinct ``org_number``s whose first lead or deal ever falls in P.

    The first record is the earliest ``created_at`` over the leads and deals of
    every company with that ``org_number`` (a lead wins a tie with a deal,
    then the smaller id). It is attributed to that first record's seller.
    Records without a company are ignored.
    """
    parts = []
    if ctx.prep.has(Table.LEADS):
        parts.append(
            "SELECT created_at, seller_id, company_id, 0 AS kind, lead_id AS rid FROM leads"
        )
    parts.append("SELECT created_at, seller_id, company_id, 1 AS kind, deal_id AS rid FROM deals")
    union = " UNION ALL ".join(parts)
    # only the orgs with a record inside the requested span can be new in it
    # (a small semi-join); for those: earliest instant per org (hash aggregate),
    # then the tie-break among the few records at that instant (window)
    lo, hi = rel.ts(ctx.starts.min()), rel.ts(ctx.ends.max())
    first = (
        f"(WITH u AS (SELECT * FROM ({union}) u WHERE u.created_at IS NOT NULL), "
        "cand AS (SELECT DISTINCT c.org_number AS org FROM u "
        "JOIN companies c ON c.company_id = u.company_id "
        f"WHERE u.created_at >= {lo} AND u.created_at < {hi} AND c.org_number IS NOT NULL), "
        "cc AS (SELECT c.company_id, c.org_number AS org FROM companies c "
        "JOIN cand ON cand.org = c.org_number), "
        "x AS (SELECT u.created_at, u.seller_id, u.kind, u.rid, cc.org FROM u "
        "JOIN cc ON cc.company_id = u.company_id), "
        "m AS (SELECT org, MIN(created_at) AS t0 FROM x GROUP BY org), "
        "f AS (SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.org ORDER BY x.kind, x.rid) AS rn "
        "FROM x JOIN m ON m.org = x.org AND m.t0 = x.created_at) "
        "SELECT created_at, seller_id FROM f WHERE rn = 1)"
    )
    return _one(ctx, Table.DEALS, "created_at", relation=first)


# ------------------------------------------------------------------- deals
def deals_won(ctx: Context) -> Result:
    """Number of deals with status ``won`` whose ``closed_at`` falls in P."""
    return _closed(ctx)[DealStatus.WON]["n"]


def deals_lost(ctx: Context) -> Result:
    """Number of deals with status ``lost`` whose ``closed_at`` falls in P."""
    return _closed(ctx)[DealStatus.LOST]["n"]


def won_value(ctx: Context) -> Result:
    """Sum of ``value`` of the deals won in P (by ``closed_at``): order intake."""
    return _closed(ctx)[DealStatus.WON]["v"]


def hit_rate(ctx: Context) -> Result:
    """Deals won in P ÷ deals closed (won + lost) in P, both by ``closed_at``."""
    res = _closed(ctx)
    won = res[DealStatus.WON]["n"]
    return ratio(won, won + res[DealStatus.LOST]["n"])


def avg_deal_value(ctx: Context) -> Result:
    """Mean ``value`` of the deals won in P (by ``closed_at``)."""
    won = _closed(ctx)[DealStatus.WON]
    return ratio(won["v"], won["n"])


def sales_cycle_days(ctx: Context) -> Result:
    """Mean number of days from ``created_at`` to ``closed_at`` of the deals won in P."""
    won = _closed(ctx)[DealStatus.WON]
    return ratio(won["d"], won["n"])


def sales_cycle_days_median(ctx: Context) -> Result:
    """Median number of days from ``created_at`` to ``closed_at`` of the deals won in P."""
    return _one(
        ctx, Table.DEALS, "closed_at", f"MEDIAN({rel.cycle_days()})", where=WON, fill=np.nan
    )


def new_customers(ctx: Context) -> Result:
    """Number of companies whose first won deal ever (earliest ``closed_at``) falls in P.

    Attributed to the seller of that first won deal (ties: the smaller deal id).
    """
    first = (
        "(SELECT * FROM (SELECT d.*, ROW_NUMBER() OVER "
        "(PARTITION BY d.company_id ORDER BY d.closed_at, d.deal_id) AS rn FROM deals d "
        f"WHERE {rel.text_is('d.status', DealStatus.WON)} AND d.closed_at IS NOT NULL "
        "AND d.company_id IS NOT NULL) x WHERE x.rn = 1)"
    )
    return _one(ctx, Table.DEALS, "closed_at", relation=first)


def _open_at_end(ctx: Context, weight: str) -> np.ndarray:
    """Sum ``weight`` of deals open at each interval end (snapshot)."""
    lo, hi = rel.ts(ctx.ends.min()), rel.ts(ctx.ends.max())
    if not rel.day_aligned(ctx.starts, ctx.ends):
        on = f"r.created_at < iv.e AND ({OPEN} OR r.closed_at >= iv.e)"
        where = f"r.created_at < {hi} AND ({OPEN} OR r.closed_at >= {lo})"
        return _one(ctx, Table.DEALS, "created_at", _sum(weight), join=on, where=where)
    # midnight ends: deals summed per (created day, closed day or open, seller,
    # company) first; "created < E" and "closed >= E" hold for the day as for the instant
    days = (
        "(SELECT DATE_TRUNC('day', r.created_at) AS created_at, "
        f"CASE WHEN {OPEN} THEN 1 ELSE 0 END AS is_open, "
        "DATE_TRUNC('day', r.closed_at) AS closed_at, r.seller_id, r.company_id, "
        f"{_sum(weight)} AS w FROM deals r "
        f"WHERE r.created_at < {hi} AND ({OPEN} OR r.closed_at >= {lo}) "
        "GROUP BY 1, 2, 3, 4, 5)"
    )
    on = "r.created_at < iv.e AND (r.is_open = 1 OR r.closed_at >= iv.e)"
    return _one(ctx, Table.DEALS, "created_at", "SUM(r.w)", join=on, relation=days)


def pipeline_value(ctx: Context) -> Result:
    """Sum of ``value`` of the deals open at the end of P (snapshot).

    A deal is open at instant E when ``created_at < E`` and either its status
    is ``open`` or it closed later (``closed_at >= E``): past pipelines are
    reconstructed from the close dates.
    """
    return _open_at_end(ctx, "r.value")


def weighted_pipeline(ctx: Context) -> Result:
    """Sum of ``value`` × ``probability`` of the deals open at the end of P (snapshot).

    Same snapshot rule as ``pipeline_value``; a deal without a probability
    contributes 0.
    """
    return _open_at_end(ctx, "r.value * r.probability")


# -------------------------------------------------------------- activities
def meetings_booked(ctx: Context) -> Result:
    """Number of activities of type ``meeting`` whose ``occurred_at`` falls in P."""
    return _activity(ctx, "meeting")


def quotes_sent(ctx: Context) -> Result:
    """Number of activities of type ``quote`` whose ``occurred_at`` falls in P."""
    return _activity(ctx, "quote")


def calls_made(ctx: Context) -> Result:
    """Number of activities of type ``call`` whose ``occurred_at`` falls in P."""
    return _activity(ctx, "call")


# ----------------------------------------------------------------- revenue
def revenue(ctx: Context) -> Result:
    """Sum of ``revenue.amount`` dated in P (credit notes are negative and reduce it).

    Attributed to the invoice's seller (rows without a seller count for the
    organisation and the customer only) and to its company for the customer scope.
    """
    return _one(ctx, Table.REVENUE, "date", _sum("r.amount"))


def _cut_like(
    period_start: pd.Timestamp, period_end: pd.Timestamp, base: Period, cut_end: int, yearly: bool
) -> int:
    """End of a comparison period cut "to the same day" as the evaluated one."""
    full_end = pd.Timestamp(base.end).value
    if cut_end >= full_end:
        return period_end.value
    if yearly:
        end = (pd.Timestamp(cut_end) - pd.DateOffset(years=1)).value
    else:
        end = period_start.value + (cut_end - pd.Timestamp(base.start).value)
    return int(min(max(end, period_start.value), period_end.value))


def comparison_bounds(
    periods: list[Period], starts: np.ndarray, ends: np.ndarray, which: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Current and comparison intervals of a growth KPI.

    Parameters
    ----------
    periods
        The full calendar periods (navigation).
    starts, ends
        The evaluated intervals (periods cut at ``as_of``).
    which
        ``mom`` (previous period), ``yoy`` (same period last year) or ``ytd``
        (1 January to the end of the interval, against the same span a year
        earlier).

    Returns
    -------
    cur_starts, cur_ends, base_starts, base_ends, undefined
        ``undefined`` marks spans that have no previous period.
    """
    cur_s = starts.copy()
    b_s = np.zeros(len(starts), dtype=np.int64)
    b_e = np.zeros(len(starts), dtype=np.int64)
    undefined = np.zeros(len(starts), dtype=bool)
    for i, (p, e) in enumerate(zip(periods, ends, strict=True)):
        if which == "ytd":
            year = (pd.Timestamp(int(e)) - pd.Timedelta(1)).year
            ys = pd.Timestamp(year=year, month=1, day=1)
            cur_s[i] = ys.value
            b_s[i] = (ys - pd.DateOffset(years=1)).value
            b_e[i] = max((pd.Timestamp(int(e)) - pd.DateOffset(years=1)).value, b_s[i])
        elif p.is_span:
            undefined[i] = True
        else:
            q = p.previous() if which == "mom" else p.last_year()
            yearly = which == "yoy" and p.grain not in ("week", "day")
            b_s[i] = q.start.value
            b_e[i] = _cut_like(q.start, q.end, p, int(e), yearly)
    return cur_s, ends, b_s, b_e, undefined


def growth_notes(base: np.ndarray, notes: np.ndarray) -> np.ndarray:
    """Explain NaN growth: ``new`` (no base revenue) or a negative base."""
    empty = notes == None  # noqa: E711 - element-wise on an object array
    notes[(base == 0) & empty] = "new: no revenue in the comparison period"
    notes[(base < 0) & empty] = "no comparable base: negative revenue in the comparison period"
    return notes


def growth(cur: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``cur / base - 1`` where the base revenue is positive, else NaN."""
    return np.where(base > 0, ratio(cur, base) - 1.0, np.nan)


def _growth(ctx: Context, which: str) -> Result:
    cs, ce, bs, be, undefined = comparison_bounds(list(ctx.periods), ctx.starts, ctx.ends, which)
    notes = ctx.cell_notes()
    notes[undefined, :] = "no previous period for a span"
    cur = revenue(ctx.with_intervals(cs, ce))
    base = revenue(ctx.with_intervals(bs, be))
    out = growth(cur, base)
    out[undefined, :] = np.nan
    return out, growth_notes(base, notes)


def revenue_growth_mom(ctx: Context) -> Result:
    """Revenue of P ÷ revenue of the period before − 1.

    When P is cut at ``as_of`` ("to date"), the previous period is cut after the
    same number of days. NaN (note ``new``) when the previous revenue is zero,
    NaN when it is negative.
    """
    return _growth(ctx, "mom")


def revenue_growth_yoy(ctx: Context) -> Result:
    """Revenue of P ÷ revenue of the same period one year earlier − 1.

    When P is cut at ``as_of``, last year's period is cut at the same calendar
    day one year earlier (weeks and days: after the same number of days). NaN
    (note ``new``) when last year's revenue is zero, NaN when it is negative.
    """
    return _growth(ctx, "yoy")


def revenue_growth_ytd(ctx: Context) -> Result:
    """Revenue from 1 January to the end of P ÷ the same span one year earlier − 1.

    Like for like: when P is cut at ``as_of`` the span ends "to the same day"
    (``as_of`` one year earlier). NaN (note ``new``) when last year's span has
    no revenue, NaN when it is negative.
    """
    return _growth(ctx, "ytd")


def _seller_cost(ctx: Context) -> np.ndarray:
    """``(intervals, sellers)`` pro-rata ``monthly_cost`` of each seller."""
    prep = ctx.prep
    sellers = prep.frame(Table.SELLERS)
    if "monthly_cost" not in sellers:
        return np.zeros((len(ctx.starts), len(prep.seller_ids)))
    m = np.nan_to_num(prep.floats(Table.SELLERS, "monthly_cost"), nan=0.0)
    lo, hi = prep.seller_bounds()
    a = np.maximum(ctx.starts[:, None], lo[None, :])
    b = np.minimum(ctx.ends[:, None], hi[None, :])
    (mb, fb), (ma, fa) = _month_index(b), _month_index(a)
    months = (mb - ma).astype("float64") + (fb - fa)  # whole months kept exact
    return m[None, :] * np.maximum(months, 0.0)


def _month_index(ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Months since 1970 as (whole months, elapsed share of the current month)."""
    t = ns.astype("datetime64[ns]")
    month = t.astype("datetime64[M]")
    start = month.astype("datetime64[ns]")
    nxt = (month + 1).astype("datetime64[ns]")
    frac = (t - start).astype("float64") / (nxt - start).astype("float64")
    return month.astype(np.int64), frac


def costs(ctx: Context) -> Result:
    """Sales and marketing costs in P.

    Cost rows dated in P plus every seller's ``monthly_cost`` pro rata: each
    calendar month costs ``monthly_cost`` × (days of that month inside both P
    and the seller's active span ``active_from``..``active_to``) ÷ (days in
    the month). Organisation: every cost row and every seller. Team: the cost
    rows tagged with that team plus its sellers. Seller: its own cost only.
    """
    # cost rows carry a team tag, never a seller: at seller scope they are unattributed
    out = _one(ctx, Table.COSTS, "date", _sum("r.amount"))
    np.add.at(out, (slice(None), _seller_columns(ctx)), _seller_cost(ctx))
    return out


def _seller_columns(ctx: Context) -> np.ndarray:
    """Result column of each seller of the (small) ``sellers`` dimension."""
    prep = ctx.prep
    n = len(prep.seller_ids)
    if ctx.scope == Scope.ORGANISATION:
        codes = np.zeros(n, dtype=np.int64)
    elif ctx.scope == Scope.SELLER:
        codes = np.arange(n, dtype=np.int64)
    elif ctx.scope == Scope.TEAM:
        codes = prep.seller_team
    else:
        codes = np.full(n, -1, dtype=np.int64)
    if ctx.select is not None:
        codes = np.where(codes == ctx.select, 0, -1)
    return np.where(codes < 0, ctx.scope_width - 1, codes)


def cac(ctx: Context) -> Result:
    """Customer acquisition cost: ``costs`` in P ÷ ``new_customers`` in P.

    See ``costs`` for which costs a scope carries and ``new_customers`` for
    the attribution of a new customer (the seller of its first won deal).
    """
    return ratio(costs(ctx), new_customers(ctx))


def clv(ctx: Context) -> Result:
    """Customer lifetime value over the 12 calendar months ending with P.

    Window: the 12 calendar months ending with the month that contains P's last
    day (data up to the cut-off). A customer is *active* in a month when its
    net revenue in that month (for the scope) is > 0.
    ``clv = r × gross_margin × min(1 / churn, 120)`` where ``r`` is the net
    revenue of the window ÷ the number of active customer-months, and
    ``churn`` is the mean over the window's consecutive month pairs of
    (customers active in a month but not in the next ÷ customers active in
    the month). ``gross_margin`` comes from the source settings (default 1).
    Zero churn gives the 120-month cap; no active customer gives NaN.
    """
    # per (scope key, company, month) net revenue, then per (scope key, month):
    # revenue, active customers and customers active but not in the next month
    key, joins, select_id = rel.scope_key(ctx, Table.REVENUE)
    month = "DATE_TRUNC('month', r.date)"
    last = (ctx.ends - 1).astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    # only the months some window reads: 11 before the first last month .. the last one
    lo_ts = np.datetime64(int(last.min()) - 11, "M").astype("datetime64[ns]").view("i8")
    hi_ts = np.datetime64(int(last.max()) + 1, "M").astype("datetime64[ns]").view("i8")
    cells = (
        f"SELECT {key} AS k, r.company_id AS co, {month} AS mo, "
        f"{_sum('r.amount')} AS net FROM revenue r{joins} "
        f"WHERE r.company_id IS NOT NULL AND {rel.before_cutoff('r.date', ctx.cutoff)} "
        f"AND r.date >= {rel.ts(lo_ts)} AND r.date < {rel.ts(hi_ts)} "
        "GROUP BY 1, 2, 3"
    )
    rows = rel.fetch(
        ctx,
        f"WITH c AS ({cells}) SELECT c.k, c.mo, {rel.as_double('SUM(c.net)')}, "
        "SUM(CASE WHEN c.net > 0 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN c.net > 0 AND n.co IS NULL THEN 1 ELSE 0 END) "
        "FROM c LEFT JOIN c n ON n.k IS NOT DISTINCT FROM c.k AND n.co = c.co "
        "AND n.mo = c.mo + INTERVAL 1 MONTH AND n.net > 0 GROUP BY 1, 2",
    )
    width = ctx.width
    if rows:
        keys, months, rev_v, act_v, churn_v = (list(c) for c in zip(*rows, strict=True))
        codes = rel.result_columns(ctx, keys, [None] * len(keys), select_id)
        month = np.array([(m.year - 1970) * 12 + m.month - 1 for m in months], dtype=np.int64)
    else:
        codes = month = np.zeros(0, dtype=np.int64)
        rev_v = act_v = churn_v = []
    base = int(min(month.min() if len(month) else last.min(), last.min() - 11))
    top = int(max(month.max() if len(month) else last.max(), last.max()))
    n_m = top - base + 2  # one spare month so that m + 1 always exists
    cell = codes * n_m + (month - base)

    def grid(values: list) -> np.ndarray:
        w = np.array([0.0 if v is None else float(v) for v in values])
        out = np.zeros((width * n_m, 1))
        rel.add_cells(out, cell, np.zeros_like(cell), w)  # independent of the row order
        return out.reshape(width, n_m)

    rev, act, churned = grid(rev_v), grid(act_v), grid(churn_v)
    rate = ratio(churned, act)  # (width, n_m), NaN where no active customer

    def window(arr: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        cum = np.concatenate([np.zeros((arr.shape[0], 1)), np.cumsum(arr, axis=1)], axis=1)
        return (cum[:, hi] - cum[:, lo]).T  # (intervals, width)

    k = last - base
    lo = np.maximum(k - 11, 0)
    r = ratio(window(rev, lo, k + 1), window(act, lo, k + 1))
    # a month cut short by as_of cannot tell who churned in it: drop its pair
    month_start = ctx.ends.astype("datetime64[ns]").astype("datetime64[M]").astype("datetime64[ns]")
    k_pairs = np.where(month_start.view("i8") == ctx.ends, k, k - 1)
    valid = ~np.isnan(rate)
    churn = ratio(
        window(np.where(valid, rate, 0.0), lo, np.maximum(k_pairs, lo)),
        window(valid.astype("float64"), lo, np.maximum(k_pairs, lo)),
    )
    life = np.minimum(ratio(np.ones_like(churn), churn), MAX_LIFETIME_MONTHS)
    life = np.where(churn == 0, MAX_LIFETIME_MONTHS, life)
    margin = ctx.settings.get("gross_margin")
    margin = 1.0 if margin is None else float(margin)
    out = r * margin * life
    notes = ctx.cell_notes()
    notes[(life >= MAX_LIFETIME_MONTHS) & ~np.isnan(out)] = "lifetime capped at 120 months"
    return out, notes


# ------------------------------------------------------------------ prospects and CLV drivers
#: days in an average month (customer tenure)
DAYS_PER_MONTH = 365.25 / 12


def prospect_hit_rate(ctx: Context) -> Result:
    """Deals won in P ÷ distinct prospects that had a sales activity in P.

    A prospect is the company of an activity (``activities.company_id``, or
    the company of its ``deal_id`` when the activity names none); every
    activity type counts. A team counts a company once even when several of
    its sellers worked on it. Activities without a company are not counted.
    """
    won = _closed(ctx)[DealStatus.WON]["n"]
    own = "a.company_id" if rel.has_column(ctx, Table.ACTIVITIES, "company_id") else "NULL"
    via, joins = "NULL", ""
    if rel.has_column(ctx, Table.ACTIVITIES, "deal_id") and rel.has_column(
        ctx, Table.DEALS, "company_id"
    ):
        via, joins = "d.company_id", " LEFT JOIN deals d ON d.deal_id = a.deal_id"
    if not len(ctx.starts):
        return ratio(won, np.zeros_like(won))
    lo, hi = rel.ts(ctx.starts.min()), rel.ts(ctx.ends.max())
    # midnight bounds: one row per (day, seller, own company, prospect) is enough
    day = rel.day_aligned(ctx.starts, ctx.ends)
    t = "DATE_TRUNC('day', a.occurred_at)" if day else "a.occurred_at"
    worked = (
        f"(SELECT {'DISTINCT ' if day else ''}{t} AS occurred_at, a.seller_id, "
        f"{own} AS company_id, COALESCE({own}, {via}) AS prospect FROM activities a{joins} "
        f"WHERE a.occurred_at >= {lo} AND a.occurred_at < {hi})"
    )
    prospects = rel.aggregate(
        ctx,
        Table.ACTIVITIES,
        {"n": "COUNT(DISTINCT r.prospect)"},
        time="occurred_at",
        where="r.prospect IS NOT NULL",
        relation=worked,
        fill=np.nan,  # distinct counts: no per-day pre-aggregation, one group per column
    )["n"]
    return ratio(won, np.nan_to_num(prospects, nan=0.0))


def _active_customers(ctx: Context, product: bool) -> str:
    """SQL: the ``(i, k, co[, p], a)`` cells with positive net revenue in interval ``i``.

    ``k`` is the scope key, ``co`` the company, ``p`` the ``product`` (one
    product of its own when missing) and ``a`` the cell's net revenue. Rows
    are summed per day first when every bound is a midnight.
    """
    key, joins, _ = rel.scope_key(ctx, Table.REVENUE)
    t = "DATE_TRUNC('day', r.date)" if rel.day_aligned(ctx.starts, ctx.ends) else "r.date"
    has_product = product and rel.has_column(ctx, Table.REVENUE, "product")
    p = ", r.product AS p" if has_product else ""
    pd_ = ", d.p" if has_product else ""
    n = 4 if has_product else 3
    return (
        f"WITH {rel.values(ctx.starts, ctx.ends)}, "
        f"d AS (SELECT {t} AS t, {key} AS k, r.company_id AS co{p}, {_sum('r.amount')} AS a "
        f"FROM revenue r{joins} WHERE r.company_id IS NOT NULL "
        f"AND r.date >= {rel.ts(ctx.starts.min())} AND r.date < {rel.ts(ctx.ends.max())} "
        f"GROUP BY {', '.join(map(str, range(1, n + 1)))}), "
        f"x AS (SELECT iv.i, d.k, d.co{pd_}, SUM(d.a) AS a FROM d "
        "JOIN iv ON d.t >= iv.s AND d.t < iv.e "
        f"GROUP BY {', '.join(map(str, range(1, n + 1)))} HAVING SUM(d.a) > 0)"
    )


def _per_column(ctx: Context, sql: str) -> list[np.ndarray]:
    """Run ``sql`` (columns ``i, k, measures…``); each measure as an ``(intervals, width)`` sum."""
    cols = rel.fetch_columns(ctx, sql)
    n_m = max(len(cols) - 2, 0)
    out = [np.zeros((len(ctx.starts), ctx.width)) for _ in range(n_m)]
    if not len(cols) or not len(cols[0]):
        return out
    _, _, select_id = rel.scope_key(ctx, Table.REVENUE)
    i = cols[0].astype(np.int64)
    col = rel.result_columns(ctx, cols[1], [None] * len(cols[1]), select_id)
    for j in range(n_m):
        rel.add_cells(out[j], i, col, np.nan_to_num(cols[2 + j], nan=0.0))
    return out


def products_per_customer(ctx: Context) -> Result:
    """Distinct products per customer in P.

    The number of (customer, ``product``) pairs with positive net revenue in
    P ÷ the number of customers with positive net revenue in P. A credit note
    lowers its product's net revenue; invoices without a product are one
    product of their own.
    """
    rel.no_split(ctx, Table.REVENUE)
    if not len(ctx.starts):
        return np.zeros((0, ctx.width))
    count = " SELECT i, k, COUNT(*) FROM x GROUP BY 1, 2"
    pairs = _per_column(ctx, _active_customers(ctx, True) + count)
    customers = _per_column(ctx, _active_customers(ctx, False) + count)
    return ratio(pairs[0], customers[0])


def customer_tenure_months(ctx: Context) -> Result:
    """Mean months since the first invoice of the customers with positive net revenue in P.

    A customer's tenure runs from the ``date`` of its first ``revenue`` row
    ever (any seller, up to the cut-off) to the end of P (cut at the
    cut-off), in months of 365.25 / 12 days.
    """
    rel.no_split(ctx, Table.REVENUE)
    if not len(ctx.starts):
        return np.zeros((0, ctx.width))
    first = (
        "f AS (SELECT r.company_id AS co, MIN(r.date) AS t0 FROM revenue r "
        f"WHERE r.company_id IS NOT NULL AND {rel.before_cutoff('r.date', ctx.cutoff)} "
        "GROUP BY 1)"
    )
    # seconds from the epoch to each first invoice, summed per cell: the mean
    # tenure is then (end of P - mean first invoice)
    n, since = _per_column(
        ctx,
        f"{_active_customers(ctx, False)}, {first} SELECT x.i, x.k, COUNT(*), "
        f"{rel.as_double(_sum(f'EXTRACT(EPOCH FROM (f.t0 - {rel.ts(0)}))'))} "
        "FROM x JOIN f ON f.co = x.co "
        "GROUP BY 1, 2",
    )
    end = np.minimum(ctx.ends, ctx.cutoff) if ctx.cutoff != NAT else ctx.ends
    end_s = (end.astype("float64") / 1e9)[:, None]
    seconds = ratio(end_s * n - since, n)
    return seconds / (NS_PER_DAY / 1e9) / DAYS_PER_MONTH
