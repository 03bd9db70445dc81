"""The seller scorecard: one seller, one period, one section function each.

A notebook (``kpireport/resources/notebooks/seller_scorecard.py``) builds the
context once and shows one section per cell::

    from kpireport.report.views import load_data, show, seller as report

    ctx = report.context(load_data(source, as_of), seller, period, as_of, language)
    show(report.summary(ctx))

(docs/REPORTS.md, "Customising a report").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from kpireport import i18n
from kpireport.constants import Scope
from kpireport.i18n import check_language
from kpireport.periods import parse_period
from kpireport.report.views.base import ReportContext, ReportView, Section, no_data, vt
from kpireport.report.views.blocks import (
    _eval_day,
    _evaluate,
    _goal_kpis,
    _goals_for,
    _headline,
    _refuse_unknown,
    _seller_names,
    goal_sentence,
    goal_table,
    kpi_card_block,
    track_record_section,
)

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

SELLER_CARD_KPIS = (
    "won_value", "deals_won", "hit_rate", "sales_cycle_days",
    "meetings_booked", "quotes_sent", "new_leads", "pipeline_value",
)  # fmt: skip
#: the sections of the seller scorecard, in order (names of this module's section functions)
SECTIONS = ("summary", "goals", "trend", "track_record")


@dataclass
class SellerContext(ReportContext):
    """The scorecard's context: the seller, their name and their evaluated goals."""

    seller: str = ""
    #: the seller's name; ``None`` when the data has no such seller (only the summary shows)
    name: str | None = None
    goals: pd.DataFrame | None = None


def context(
    data: CrmData, seller: str, period: str, as_of: str, language: str = "en"
) -> SellerContext:
    """Everything the scorecard's sections share, computed once.

    Raises
    ------
    kpireport.errors.KpiError
        When ``seller`` is not a seller id of the data (with the nearest ids).
    """
    lang = check_language(language)
    p = parse_period(period, as_of)
    name = _seller_names(data).get(str(seller))
    if name is None:
        _refuse_unknown(data, Scope.SELLER, seller)
        return SellerContext(data, p, as_of, lang, seller=seller)
    goals = _evaluate(data, _goals_for(data, Scope.SELLER, [seller], [p.label]), p, None, as_of)
    return SellerContext(data, p, as_of, lang, seller=seller, name=name, goals=goals)


def _mask_inactive(data: CrmData, seller: str, series: pd.Series) -> pd.Series:
    """Blank out the months before a seller joined and after they left.

    A seller who joined in June should not show a flat line of €0 for the
    months before; a seller who left shows no line at all (the chart then
    says "no data"), not zeros that read as a bad performance.
    """
    sellers = data.tables.get("sellers")
    if series is None or len(series) == 0 or sellers is None or "active_from" not in sellers:
        return series
    row = sellers[sellers["seller_id"].astype("str") == str(seller)]
    if row.empty:
        return series
    idx = pd.DatetimeIndex(series.index)
    keep = pd.Series(True, index=series.index)
    start = pd.to_datetime(row["active_from"].iloc[0])
    if pd.notna(start):
        # a month counts when the seller was active on any day of it
        keep &= (idx + pd.offsets.MonthEnd(0)) >= start.normalize()
    if "active_to" in row:
        stop = pd.to_datetime(row["active_to"].iloc[0])
        if pd.notna(stop):
            keep &= idx <= stop.normalize()
    return series.where(keep.to_numpy())


def summary(ctx: SellerContext) -> Section:
    """A sentence on the headline goal and the seller's KPI cards."""
    lang = ctx.language
    s = Section("summary", vt("summary", lang))
    if ctx.name is None:
        s.add(no_data(lang)).sentence(vt("unknown_scope", lang, scope=ctx.seller))
        return s
    cards, shown = kpi_card_block(ctx.data, ctx.period, Scope.SELLER, ctx.seller,
                                  SELLER_CARD_KPIS, ctx.as_of, ctx.goals, lang)  # fmt: skip
    head = _headline(ctx.goals, ctx.period.label)
    if head is not None:
        s.sentence(goal_sentence(head, ctx.name, lang, ctx.currency))
    s.add(cards)
    s.kpis = shown
    return s


def goals(ctx: SellerContext) -> Section | None:
    """The seller's (activity) goals."""
    if ctx.name is None:
        return None
    s = Section("goals", vt("activity_goals", ctx.language))
    s.add(goal_table(ctx.goals, ctx.language, ctx.currency))
    s.kpis = _goal_kpis(ctx.goals)
    return s


def trend(ctx: SellerContext) -> Section | None:
    """Won value and hit rate of the last 12 months (blank while the seller was not active)."""
    from kpireport.kpis import kpi_series
    from kpireport.plots import kpi_trend

    if ctx.name is None:
        return None
    lang, p, seller, data, as_of = ctx.language, ctx.period, ctx.seller, ctx.data, ctx.as_of
    start = (p.start - pd.DateOffset(months=11)).date()
    end = min(p.last_day, _eval_day(p, as_of)).date()
    s = Section("trend", i18n.t("heading.trend", lang))
    won = kpi_series(
        data, "won_value", Scope.SELLER, seller, grain="month", start=start, end=end, as_of=as_of
    )
    hr = kpi_series(
        data, "hit_rate", Scope.SELLER, seller, grain="month", start=start, end=end, as_of=as_of
    )
    won, hr = _mask_inactive(data, seller, won), _mask_inactive(data, seller, hr)
    s.add(kpi_trend(won, unit="currency", currency=data.currency, kpi="won_value",
                    title=vt("won_trend", lang), language=lang))  # fmt: skip
    s.add(kpi_trend(hr, unit="percent", kpi="hit_rate",
                    title=i18n.t("heading.hit_rate_trend", lang), language=lang))  # fmt: skip
    s.kpis = pd.DataFrame(
        {"kpi": ["hit_rate"] * len(hr), "scope": Scope.SELLER.value, "scope_id": seller,
         "period": [f"{d:%Y-%m}" for d in hr.index], "value": hr.to_numpy()}
    )  # fmt: skip
    return s


def track_record(ctx: SellerContext) -> Section | None:
    """The last 12 finished goals of each of the seller's goal series."""
    if ctx.name is None:
        return None
    return track_record_section(ctx.data, Scope.SELLER, ctx.seller, ctx.as_of, ctx.language)


def view(ctx: SellerContext) -> ReportView:
    """Every section of the scorecard, in report order (:data:`SECTIONS`)."""
    funcs = [globals()[name] for name in SECTIONS]
    return ReportView.of(i18n.t("report.seller_scorecard", ctx.language), ctx.language,
                         [f(ctx) for f in funcs])  # fmt: skip


def seller_scorecard_view(
    data: CrmData, seller: str, period: str, as_of: str, language: str = "en"
) -> ReportView:
    """One seller: KPI cards with goals, activity vs goals, won value and hit-rate trend, track record."""
    return view(context(data, seller, period, as_of, language))
