"""The KPI formulas (docs/KPIS.md). Each function's docstring *is* its definition.

Every formula takes a :class:`~kpireport.kpis.engine.Context` (dataset, scope,
intervals) and returns a ``(intervals, scope ids + 1)`` float array — the last
column collects unattributed rows — or a pair ``(values, notes)`` where notes
is an object array of the same shape (``None`` = no note).

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

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpireport.constants import DealStatus, Table
from kpireport.kpis.engine import (
    NAT,
    NEVER,
    NS_PER_DAY,
    Context,
    Events,
    arrow_strings,
    interval_index,
    ratio,
)
from kpireport.periods import Period

Result = np.ndarray | tuple[np.ndarray, np.ndarray]

#: CLV lifetime cap (months)
MAX_LIFETIME_MONTHS = 120.0


# ------------------------------------------------------------------ helpers
def _status(ctx: Context, status: DealStatus) -> np.ndarray:
    return ctx.prep.text_equals(Table.DEALS, "status", status)


def _won(ctx: Context) -> np.ndarray:
    return _status(ctx, DealStatus.WON)


def _activity(ctx: Context, kind: str) -> np.ndarray:
    return ctx.prep.text_equals(Table.ACTIVITIES, "type", kind)


def _cycle_days(ctx: Context) -> np.ndarray:
    prep = ctx.prep

    def build() -> np.ndarray:
        c = prep.times(Table.DEALS, "closed_at").astype("float64")
        s = prep.times(Table.DEALS, "created_at").astype("float64")
        return (c - s) / NS_PER_DAY

    return prep.memo(("cycle",), build)


def _first(
    t: np.ndarray,
    group: np.ndarray,
    tiebreak: list[np.ndarray],
    ids: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Positions of the earliest row per ``group``.

    Ties on ``t`` are broken by the ``tiebreak`` keys in order, then by the
    smallest id (``ids(positions)`` returns the ids of those rows; it is only
    called for the few rows that still tie), so the result does not depend
    on row order.
    """
    pos = np.flatnonzero((group >= 0) & (t != NAT))
    keys = [k[pos] for k in reversed(tiebreak)] + [t[pos], group[pos]]
    srt = pos[np.lexsort(keys)]  # np.lexsort sorts by the last key first
    n = len(srt)
    if n == 0:
        return srt
    g = group[srt]
    starts = np.ones(n, dtype=bool)
    starts[1:] = g[1:] != g[:-1]
    same = np.zeros(n, dtype=bool)  # row ties with the previous row of its group
    same[1:] = ~starts[1:] & (t[srt][1:] == t[srt][:-1])
    for k in tiebreak:
        same[1:] &= k[srt][1:] == k[srt][:-1]
    run = np.cumsum(~same)  # runs of mutually tied rows
    first_rows = np.flatnonzero(starts)
    winners = srt[first_rows]
    tied_first = np.flatnonzero(same[np.minimum(first_rows + 1, n - 1)] & (first_rows + 1 < n))
    if len(tied_first):
        runs = run[first_rows[tied_first]]
        rows = np.flatnonzero(np.isin(run, runs))
        cand = pd.DataFrame({"run": run[rows], "id": ids(srt[rows]), "pos": srt[rows]})
        best = cand.sort_values(["run", "id"]).drop_duplicates("run")
        winners[tied_first] = best["pos"].to_numpy()
    return winners


# ------------------------------------------------------------------- leads
def new_leads(ctx: Context) -> Result:
    """Number of leads whose ``created_at`` falls in P, attributed to the lead's seller."""
    return ctx.sums(Table.LEADS, "created_at")


def sql(ctx: Context) -> Result:
    """Number of leads whose ``qualified_at`` falls in P (sales-qualified leads), attributed to the lead's seller."""
    return ctx.sums(Table.LEADS, "qualified_at")


def _converted_leads(ctx: Context) -> np.ndarray:
    prep = ctx.prep

    def build() -> np.ndarray:
        deals = prep.frame(Table.DEALS)
        closed = prep.times(Table.DEALS, "closed_at")
        ok = _won(ctx) & (closed != NAT) & (closed < ctx.cutoff)
        won_leads = arrow_strings(deals["lead_id"]).filter(pa.array(ok)).drop_null()
        leads = arrow_strings(prep.frame(Table.LEADS)["lead_id"])
        return (
            pc.is_in(leads, value_set=won_leads.combine_chunks())
            .fill_null(False)
            .to_numpy(zero_copy_only=False)
        )

    return prep.memo(("converted", ctx.cutoff), build)


def _typical_cycle(ctx: Context) -> float:
    closed = ctx.prep.times(Table.DEALS, "closed_at")
    ok = _won(ctx) & (closed != NAT) & (closed < ctx.cutoff)
    cyc = _cycle_days(ctx)[ok]
    return float(np.median(cyc)) if len(cyc) else np.nan


def lead_conversion(ctx: Context) -> Result:
    """Share of the leads created in P that became a won deal (lead cohort view).

    Numerator: leads created in P that at least one deal with status ``won``
    and ``closed_at`` before the cut-off (``as_of`` + 1 day, or the end of the
    data) refers to through ``deals.lead_id``. Denominator: leads created in P.
    Attributed to the lead's seller. A cohort is marked *immature* in the note
    when the time from the end of P to the cut-off is shorter than the typical
    (median) sales cycle of won deals: its conversion will still grow.
    """
    num = ctx.sums(Table.LEADS, "created_at", mask=_converted_leads(ctx))
    den = ctx.sums(Table.LEADS, "created_at")
    notes = ctx.cell_notes()
    typical = _typical_cycle(ctx)
    if not np.isnan(typical):
        age = (ctx.cutoff - ctx.ends.astype("float64")) / NS_PER_DAY
        young = age < typical
        notes[young, :] = (
            f"immature cohort: younger than the typical sales cycle ({typical:.0f} days)"
        )
    return ratio(num, den), notes


def new_organisations(ctx: Context) -> Result:
    """Number of distinct ``org_number``s whose first lead or deal ever falls in P.

    The first record is the earliest ``created_at`` over the leads and deals of
    every company with that ``org_number`` (a lead wins a tie with a deal,
    then the smaller id). It is attributed to that first record's seller.
    Records without a company are ignored.
    """
    prep = ctx.prep

    def build() -> tuple[np.ndarray, Events]:
        comp = prep.frame(Table.COMPANIES)
        enc = pc.dictionary_encode(arrow_strings(comp["org_number"])).combine_chunks()
        org_codes = enc.indices.fill_null(-1).to_numpy().astype(np.int64)
        # company codes shared by companies, leads and deals only (cheaper than
        # the customer-scope encoding of every table)
        ids_index, codes = prep._company_encoding((Table.COMPANIES, Table.LEADS, Table.DEALS))
        cust_to_org = np.full(len(ids_index), -1, dtype=np.int64)
        ci = codes[Table.COMPANIES]
        cust_to_org[ci[ci >= 0]] = org_codes[ci >= 0]
        ts, sellers, orgs, kinds, tables = [], [], [], [], []
        for kind, table in ((0, Table.LEADS), (1, Table.DEALS)):
            if not prep.has(table):
                continue
            company = codes[table]
            ts.append(prep.times(table, "created_at"))
            sellers.append(prep.seller_codes(table))
            orgs.append(np.where(company >= 0, cust_to_org[np.maximum(company, 0)], -1))
            kinds.append(np.full(len(company), kind, dtype=np.int64))
            tables.append(table)
        t = np.concatenate(ts)
        sizes = np.cumsum([0, *map(len, ts)])

        def ids(positions: np.ndarray) -> np.ndarray:
            out = np.empty(len(positions), dtype=object)
            for i, table in enumerate(tables):
                sel = (positions >= sizes[i]) & (positions < sizes[i + 1])
                col = "lead_id" if table == Table.LEADS else "deal_id"
                out[sel] = (
                    prep.frame(table)[col].iloc[positions[sel] - sizes[i]].astype("str").to_numpy()
                )
            return out

        first = _first(t, np.concatenate(orgs), [np.concatenate(kinds)], ids)
        seller = np.concatenate(sellers)[first]
        return t[first], Events(seller, np.full(len(first), -1, dtype=np.int64))

    t, ev = prep.memo(("first_org",), build)
    return ctx.event_sums(t, ev)


# ------------------------------------------------------------------- deals
def deals_won(ctx: Context) -> Result:
    """Number of deals with status ``won`` whose ``closed_at`` falls in P."""
    return ctx.sums(Table.DEALS, "closed_at", mask=_won(ctx))


def deals_lost(ctx: Context) -> Result:
    """Number of deals with status ``lost`` whose ``closed_at`` falls in P."""
    return ctx.sums(Table.DEALS, "closed_at", mask=_status(ctx, DealStatus.LOST))


def won_value(ctx: Context) -> Result:
    """Sum of ``value`` of the deals won in P (by ``closed_at``): order intake."""
    return ctx.sums(Table.DEALS, "closed_at", "value", mask=_won(ctx))


def hit_rate(ctx: Context) -> Result:
    """Deals won in P ÷ deals closed (won + lost) in P, both by ``closed_at``."""
    won = ctx.sums(Table.DEALS, "closed_at", mask=_won(ctx))
    closed = ctx.sums(Table.DEALS, "closed_at", mask=_won(ctx) | _status(ctx, DealStatus.LOST))
    return ratio(won, closed)


def avg_deal_value(ctx: Context) -> Result:
    """Mean ``value`` of the deals won in P (by ``closed_at``)."""
    won = _won(ctx)
    return ratio(
        ctx.sums(Table.DEALS, "closed_at", "value", mask=won),
        ctx.sums(Table.DEALS, "closed_at", mask=won),
    )


def sales_cycle_days(ctx: Context) -> Result:
    """Mean number of days from ``created_at`` to ``closed_at`` of the deals won in P."""
    won = _won(ctx)
    return ratio(
        ctx.sums(Table.DEALS, "closed_at", mask=won, weights=_cycle_days(ctx)),
        ctx.sums(Table.DEALS, "closed_at", mask=won),
    )


def sales_cycle_days_median(ctx: Context) -> Result:
    """Median number of days from ``created_at`` to ``closed_at`` of the deals won in P."""
    won = np.flatnonzero(_won(ctx))
    t = ctx.prep.times(Table.DEALS, "closed_at")[won]
    codes = ctx.codes(ctx.prep.events(Table.DEALS).take(won))
    codes = np.where(codes < 0, ctx.width - 1, codes)
    cyc = _cycle_days(ctx)[won]
    out = np.full((len(ctx.starts), ctx.width), np.nan)
    parts = interval_index(t, ctx.starts, ctx.ends)
    rows = np.concatenate([np.full(len(p), i, dtype=np.int64) for i, p in enumerate(parts)] or [[]])
    pos = np.concatenate(parts or [np.array([], dtype=np.int64)]).astype(np.int64)
    if len(pos):
        med = pd.Series(cyc[pos]).groupby([rows, codes[pos]]).median()
        r = med.index.get_level_values(0).to_numpy()
        c = med.index.get_level_values(1).to_numpy()
        out[r, c] = med.to_numpy()
    return out


def _new_customer_events(ctx: Context) -> tuple[np.ndarray, Events]:
    prep = ctx.prep

    def build() -> tuple[np.ndarray, Events]:
        t = np.where(_won(ctx), prep.times(Table.DEALS, "closed_at"), NAT)
        company = prep.local_codes(Table.DEALS, "company_id")
        deal_ids = prep.frame(Table.DEALS)["deal_id"]

        def ids(positions: np.ndarray) -> np.ndarray:
            return deal_ids.iloc[positions].astype("str").to_numpy()

        first = _first(t, company, [], ids)
        return t[first], Events(prep=prep, table=Table.DEALS, mask=first)

    return prep.memo(("first_won",), build)


def new_customers(ctx: Context) -> Result:
    """Number of companies whose first won deal ever (earliest ``closed_at``) falls in P.

    Attributed to the seller of that first won deal (ties: the smaller deal id).
    """
    t, ev = _new_customer_events(ctx)
    return ctx.event_sums(t, ev)


def _open_at_end(ctx: Context, weights: np.ndarray) -> np.ndarray:
    """Sum ``weights`` of deals open at each interval end (snapshot)."""
    prep = ctx.prep
    created = prep.times(Table.DEALS, "created_at")
    closed = prep.times(Table.DEALS, "closed_at")
    is_open = _status(ctx, DealStatus.OPEN)
    until = np.where(is_open, NEVER, closed)  # open at E iff created < E <= until
    ends = np.unique(ctx.ends)
    lo = np.searchsorted(ends, created, side="right")
    hi = np.searchsorted(ends, until, side="right")
    ok = (lo < hi) & (created != NAT)
    width = ctx.width
    codes = ctx.codes(prep.events(Table.DEALS))
    codes = np.where(codes < 0, width - 1, codes)[ok]
    w = np.nan_to_num(weights[ok], nan=0.0)
    size = (len(ends) + 1) * width
    diff = np.bincount(lo[ok] * width + codes, weights=w, minlength=size) - np.bincount(
        hi[ok] * width + codes, weights=w, minlength=size
    )
    level = np.cumsum(diff.reshape(len(ends) + 1, width), axis=0)
    return level[np.searchsorted(ends, ctx.ends)]


def pipeline_value(ctx: Context) -> Result:
    """Sum of ``value`` of the deals open at the end of P (snapshot).

    A deal is open at instant E when ``created_at < E`` and either its status
    is ``open`` or it closed later (``closed_at >= E``): past pipelines are
    reconstructed from the close dates.
    """
    return _open_at_end(ctx, ctx.prep.floats(Table.DEALS, "value"))


def weighted_pipeline(ctx: Context) -> Result:
    """Sum of ``value`` × ``probability`` of the deals open at the end of P (snapshot).

    Same snapshot rule as ``pipeline_value``; a deal without a probability
    contributes 0.
    """
    prep = ctx.prep
    w = prep.floats(Table.DEALS, "value") * prep.floats(Table.DEALS, "probability")
    return _open_at_end(ctx, w)


# -------------------------------------------------------------- activities
def meetings_booked(ctx: Context) -> Result:
    """Number of activities of type ``meeting`` whose ``occurred_at`` falls in P."""
    return ctx.sums(Table.ACTIVITIES, "occurred_at", mask=_activity(ctx, "meeting"))


def quotes_sent(ctx: Context) -> Result:
    """Number of activities of type ``quote`` whose ``occurred_at`` falls in P."""
    return ctx.sums(Table.ACTIVITIES, "occurred_at", mask=_activity(ctx, "quote"))


def calls_made(ctx: Context) -> Result:
    """Number of activities of type ``call`` whose ``occurred_at`` falls in P."""
    return ctx.sums(Table.ACTIVITIES, "occurred_at", mask=_activity(ctx, "call"))


# ----------------------------------------------------------------- revenue
def revenue(ctx: Context) -> Result:
    """Sum of ``revenue.amount`` dated in P (credit notes are negative and reduce it).

    Attributed to the invoice's seller (rows without a seller count for the
    organisation and the customer only) and to its company for the customer scope.
    """
    return ctx.sums(Table.REVENUE, "date", "amount")


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
    prep = ctx.prep
    # cost rows carry a team tag, never a seller: at seller scope they are unattributed
    out = ctx.sums(Table.COSTS, "date", "amount")
    per_seller = _seller_cost(ctx)
    codes = ctx.codes(Events(np.arange(len(prep.seller_ids)), np.full(len(prep.seller_ids), -1)))
    codes = np.where(codes < 0, ctx.width - 1, codes)
    np.add.at(out, (slice(None), codes), per_seller)
    return out


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
    prep = ctx.prep
    t = prep.times(Table.REVENUE, "date")
    amount = np.nan_to_num(prep.floats(Table.REVENUE, "amount"), nan=0.0)
    ev = prep.events(Table.REVENUE)
    company = prep.local_codes(Table.REVENUE, "company_id")
    keep = (t != NAT) & (t < ctx.cutoff) & (company >= 0)
    width = ctx.width
    codes = ctx.codes(ev)
    codes = np.where(codes < 0, width - 1, codes)[keep]
    month = t[keep].astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    last = (ctx.ends - 1).astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    base = int(min(month.min() if len(month) else last.min(), last.min() - 11))
    top = int(max(month.max() if len(month) else last.max(), last.max()))
    n_m = top - base + 2  # one spare month so that m + 1 always exists
    m = month - base
    comp = company[keep]
    n_c = int(company.max(initial=0)) + 1
    key = (codes * n_c + comp) * n_m + m
    order = np.argsort(key, kind="stable")
    sk = key[order]
    head = np.ones(len(sk), dtype=bool)
    head[1:] = sk[1:] != sk[:-1]
    cell_keys = sk[head]
    cell_sums = (
        np.add.reduceat(amount[keep][order], np.flatnonzero(head)) if len(sk) else np.zeros(0)
    )
    rev = np.bincount(codes * n_m + m, weights=amount[keep], minlength=width * n_m).reshape(
        width, n_m
    )
    active_keys = cell_keys[cell_sums > 0]
    a_cell = active_keys % n_m + (active_keys // (n_c * n_m)) * n_m
    act = np.bincount(a_cell, minlength=width * n_m).reshape(width, n_m).astype("float64")
    nxt = np.searchsorted(active_keys, active_keys + 1)
    stays = (nxt < len(active_keys)) & (
        active_keys[np.minimum(nxt, len(active_keys) - 1)] == active_keys + 1
    )
    churned = (
        np.bincount(a_cell[~stays], minlength=width * n_m).reshape(width, n_m).astype("float64")
    )
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
