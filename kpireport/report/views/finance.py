"""The finance growth report: revenue growth of the organisation, its teams and top customers.

A notebook (``kpireport/resources/notebooks/finance_growth.py``) builds the
context once and shows one section per cell::

    from kpireport.report.views import finance as report, load_data, show

    ctx = report.context(load_data(source, as_of), period, as_of, language, top_n=top_n)
    show(report.summary(ctx))

Sections: ``summary`` (revenue MoM, YoY and like-for-like YTD, customer
lifetime value), ``teams``, ``customers`` (the top ``top_n``) and ``seasonal``
(docs/REPORTS.md, "Customising a report").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from kpireport import i18n
from kpireport.constants import Scope
from kpireport.i18n import check_language, fmt_percent, kpi_label
from kpireport.periods import parse_period
from kpireport.report.views.base import ReportContext, ReportView, Section, no_data, vt
from kpireport.report.views.blocks import _eval_day, _money, _pct, kpi_card_block

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

#: the finance report's customer-value cards: CLV beside its drivers
CLV_CARD_KPIS = ("clv", "products_per_customer", "customer_tenure_months")
#: the sections of the finance growth report, in order (names of this module's section functions)
SECTIONS = ("summary", "teams", "customers", "seasonal")
#: growth-table columns shown, in order
GROWTH_COLUMNS = ("scope_id", "revenue", "growth_mom", "growth_yoy", "revenue_ytd",
                  "revenue_ytd_ly", "growth_ytd")  # fmt: skip


@dataclass
class FinanceContext(ReportContext):
    """The finance report's context: whether there is revenue, the evaluation day, ``top_n``."""

    top_n: int = 10
    #: False when the data has no revenue (only the summary shows, saying so)
    has_revenue: bool = True

    @property
    def day(self) -> pd.Timestamp:
        """``as_of`` cut to the period's last day."""
        return _eval_day(self.period, self.as_of)


def context(
    data: CrmData, period: str, as_of: str, language: str = "en", top_n: int = 10
) -> FinanceContext:
    """Everything the report's sections share."""
    lang = check_language(language)
    p = parse_period(period, as_of)
    rev = data.tables.get("revenue")
    return FinanceContext(data, p, as_of, lang, top_n=top_n,
                          has_revenue=rev is not None and len(rev) > 0)  # fmt: skip


def _columns(ctx: FinanceContext, first: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and formatters of the growth tables (``first``: the header of the id column)."""
    lang, cur = ctx.language, ctx.currency
    cols = {
        "scope_id": first, "revenue": kpi_label("revenue", lang), "growth_mom": vt("col.growth_mom", lang),
        "growth_yoy": vt("col.growth_yoy", lang), "revenue_ytd": vt("col.revenue_ytd", lang),
        "revenue_ytd_ly": vt("col.revenue_ytd_ly", lang), "growth_ytd": vt("col.growth_ytd", lang),
    }  # fmt: skip
    fm = {c: (lambda v: _money(v, lang, cur)) for c in ("revenue", "revenue_ytd", "revenue_ytd_ly")}
    # one decimal, like the bar labels of the chart above the table ("+0.6%", not "+1%")
    fm.update(
        {
            c: (lambda v: fmt_percent(v, lang, decimals=1, signed=True))
            for c in ("growth_mom", "growth_yoy", "growth_ytd")
        }
    )
    return cols, fm


def summary(ctx: FinanceContext) -> Section:
    """Revenue of the period with MoM, YoY and YTD growth, and customer lifetime value cards."""
    from kpireport.kpis import growth_table
    from kpireport.plots import kpi_cards

    lang, p, cur = ctx.language, ctx.period, ctx.currency
    s = Section("summary", vt("summary", lang))
    if not ctx.has_revenue:
        s.add(no_data(lang))
        return s
    org = growth_table(ctx.data, p, by=Scope.ORGANISATION, as_of=ctx.day)
    org = org[org["scope"] == Scope.ORGANISATION].iloc[:1]
    frames = []
    if len(org):
        r = org.iloc[0]
        s.sentence(vt(
            "growth_org", lang, period=i18n.fmt_period(p.label, lang), value=_money(r["revenue"], lang, cur),
            mom=_pct(r["growth_mom"], lang, True), yoy=_pct(r["growth_yoy"], lang, True),
            ytd=_pct(r["growth_ytd"], lang, True)))  # fmt: skip
        s.add(kpi_cards([
            {"label": kpi_label("revenue", lang), "value": round(r["revenue"]), "unit": "currency",
             "delta_prev": r["growth_mom"], "delta_ly": r["growth_yoy"], "better": "higher"},
            {"label": vt("col.revenue_ytd", lang), "value": round(r["revenue_ytd"]), "unit": "currency",
             "delta_ly": r["growth_ytd"], "better": "higher"},
        ], lang, cur))  # fmt: skip
        frames.append(pd.DataFrame({
            "kpi": ["revenue", "revenue_growth_mom", "revenue_growth_yoy", "revenue_growth_ytd"],
            "scope": Scope.ORGANISATION.value, "scope_id": None, "period": p.label,
            "value": [r["revenue"], r["growth_mom"], r["growth_yoy"], r["growth_ytd"]]}))  # fmt: skip
    # customer lifetime value and its drivers (how many products, how long a customer stays)
    clv_cards, clv_shown = kpi_card_block(ctx.data, p, Scope.ORGANISATION, None, CLV_CARD_KPIS,
                                          ctx.as_of, pd.DataFrame(), lang)  # fmt: skip
    s.add(clv_cards)
    frames.append(clv_shown)
    frames = [f for f in frames if len(f)]
    s.kpis = pd.concat(frames, ignore_index=True) if frames else None
    return s


def teams(ctx: FinanceContext) -> Section | None:
    """Revenue growth by team: bars and a table."""
    from kpireport.kpis import growth_table
    from kpireport.plots import growth_bars, html_table

    if not ctx.has_revenue:
        return None
    lang, p = ctx.language, ctx.period
    cols, fm = _columns(ctx, i18n.t("col.team", lang))
    t = growth_table(ctx.data, p, by=Scope.TEAM, as_of=ctx.day)
    t = t[t["scope_id"] != "(unattributed)"] if "(unattributed)" in set(t["scope_id"]) else t
    s = Section("teams", vt("growth_by_team", lang))
    if t.empty:
        s.add(no_data(lang))
        return s
    s.add(growth_bars(t.rename(columns={"scope_id": "team"}), label_col="team",
                      columns=["growth_mom", "growth_yoy", "growth_ytd"], title="", language=lang))  # fmt: skip
    s.add(html_table(t[list(GROWTH_COLUMNS)], fm, lang, columns=cols))
    s.kpis = pd.concat(
        [
            pd.DataFrame(
                {
                    "kpi": k,
                    "scope": Scope.TEAM.value,
                    "scope_id": t["scope_id"].to_numpy(),
                    "period": p.label,
                    "value": t[c].to_numpy(),
                }
            )  # fmt: skip
            for k, c in (
                ("revenue", "revenue"),
                ("revenue_growth_mom", "growth_mom"),
                ("revenue_growth_yoy", "growth_yoy"),
                ("revenue_growth_ytd", "growth_ytd"),
            )
        ],  # fmt: skip
        ignore_index=True,
    )
    return s


def customers(ctx: FinanceContext) -> Section | None:
    """The top customers by year-to-date revenue, with their growth."""
    from kpireport.kpis import growth_table
    from kpireport.plots import html_table

    if not ctx.has_revenue:
        return None
    lang, p = ctx.language, ctx.period
    cols, fm = _columns(ctx, i18n.t("col.customer", lang))
    # kept together: the heading and intro must not be left alone at the foot of a page
    s = Section("customers", i18n.t("heading.top_customers", lang))
    cust = growth_table(ctx.data, p, by=Scope.CUSTOMER, as_of=ctx.day)
    cust = (
        cust[cust["scope_id"] != "(unattributed)"]
        .sort_values("revenue_ytd", ascending=False)
        .head(ctx.top_n)
    )
    if cust.empty:
        s.add(no_data(lang))
        return s
    comp = ctx.data.tables.get("companies")
    names = (
        dict(zip(comp["company_id"].astype("str"), comp["name"].astype("str"), strict=True))
        if comp is not None
        else {}
    )
    cust = cust.assign(scope_id=[names.get(str(c), str(c)) for c in cust["scope_id"]])
    s.sentence(vt("top_customers_intro", lang, n=len(cust)))
    s.add(html_table(cust[list(GROWTH_COLUMNS)], fm, lang, columns=cols))
    s.kpis = pd.DataFrame({"kpi": "revenue", "scope": Scope.CUSTOMER.value,
                           "scope_id": cust["scope_id"].to_numpy(), "period": p.label,
                           "value": cust["revenue"].to_numpy()})  # fmt: skip
    return s


def seasonal(ctx: FinanceContext) -> Section | None:
    """Monthly revenue of this year next to last year's."""
    from kpireport.kpis import kpi_series
    from kpireport.plots import yoy_months

    if not ctx.has_revenue:
        return None
    lang, p, day = ctx.language, ctx.period, ctx.day
    s = Section("seasonal", i18n.t("heading.seasonal_view", lang))
    year = p.start.year
    this = kpi_series(
        ctx.data, "revenue", grain="month", start=f"{year}-01", end=p.last_day.date(), as_of=day
    )
    last = kpi_series(
        ctx.data, "revenue", grain="month", start=f"{year - 1}-01", end=f"{year - 1}-12", as_of=day
    )
    s.add(yoy_months(this, last, currency=ctx.currency, title="", language=lang))
    return s


def view(ctx: FinanceContext) -> ReportView:
    """Every section of the report, in order (:data:`SECTIONS`)."""
    funcs = [globals()[name] for name in SECTIONS]
    return ReportView.of(i18n.t("report.finance_growth", ctx.language), ctx.language,
                         [f(ctx) for f in funcs])  # fmt: skip


def finance_growth_view(
    data: CrmData, period: str, as_of: str, language: str = "en", top_n: int = 10
) -> ReportView:
    """Revenue MoM, YoY and like-for-like YTD, by team and for the top customers, and the seasonal view."""
    return view(context(data, period, as_of, language, top_n=top_n))
