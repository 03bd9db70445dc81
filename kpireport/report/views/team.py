"""The team report: one team, one period, one section function each.

A notebook (``kpireport/resources/notebooks/team_report.py``) builds the
context once and shows one section per cell::

    from kpireport.report.views import load_data, show, team as report

    ctx = report.context(load_data(source, as_of), team, period, as_of, language)
    show(report.summary(ctx))
    show(report.development(ctx))

Replacing a section is replacing one cell: any function taking the
:class:`TeamContext` and returning a :class:`~kpireport.report.views.base.Section`
(docs/REPORTS.md, "Customising a report").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from kpireport import i18n
from kpireport.constants import Scope
from kpireport.i18n import check_language, kpi_label
from kpireport.periods import Period, _day, parse_period
from kpireport.report.views.base import ReportContext, ReportView, Section, no_data, vt
from kpireport.report.views.blocks import (
    _activity_need,
    _evaluate,
    _funnel_counts,
    _goal_kpis,
    _goals_for,
    _headline,
    _open_pipeline,
    _refuse_unknown,
    _running_quarter,
    _scope_kpis,
    _seller_names,
    _team_sellers,
    _tidy,
    development_curve_figure,
    goal_sentence,
    goal_table,
    kpi_card_block,
    track_record_section,
)

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

#: KPIs on the team report's cards, in order
TEAM_CARD_KPIS = (
    "won_value", "deals_won", "hit_rate", "avg_deal_value",
    "new_leads", "meetings_booked", "sales_cycle_days", "pipeline_value",
)  # fmt: skip
#: the sections of the team report, in order (names of this module's section functions)
SECTIONS = (
    "summary", "development", "goals", "funnel", "leaderboard", "activity", "pipeline",
    "track_record",
)  # fmt: skip


@dataclass
class TeamContext(ReportContext):
    """The team report's context: the team and its evaluated goals (report period and running quarter)."""

    team: str = ""
    #: False when the data has no seller in this team (every section but the summary is empty)
    known: bool = True
    quarter: Period | None = None
    goals: pd.DataFrame | None = None
    #: headline goal rows (:data:`~kpireport.report.views.blocks.HEADLINE_KPIS`) of the period and quarter
    head: pd.Series | None = None
    qhead: pd.Series | None = None


def context(data: CrmData, team: str, period: str, as_of: str, language: str = "en") -> TeamContext:
    """Everything the team report's sections share, computed once.

    Raises
    ------
    kpireport.errors.KpiError
        When ``team`` is not a team of the data (with the nearest names).
    """
    lang = check_language(language)
    p = parse_period(period, as_of)
    if _team_sellers(data, team).empty:
        _refuse_unknown(data, Scope.TEAM, team)
        return TeamContext(data, p, as_of, lang, team=team, known=False)
    quarter = _running_quarter(p, as_of)
    labels = [p.label] + ([quarter.label] if quarter else [])
    goals = _evaluate(data, _goals_for(data, Scope.TEAM, [team], labels), p, quarter, as_of)
    head = _headline(goals, p.label)
    qhead = (
        _headline(goals, quarter.label)
        if quarter is not None and quarter.label != p.label
        else None
    )
    return TeamContext(data, p, as_of, lang, team=team, quarter=quarter, goals=goals, head=head,
                       qhead=qhead)  # fmt: skip


def summary(ctx: TeamContext) -> Section:
    """Sentences on the headline goals (period and running quarter) and the KPI cards."""
    lang = ctx.language
    s = Section("summary", vt("summary", lang))
    if not ctx.known:
        s.add(no_data(lang)).sentence(vt("unknown_scope", lang, scope=ctx.team))
        return s
    cards, shown = kpi_card_block(ctx.data, ctx.period, Scope.TEAM, ctx.team, TEAM_CARD_KPIS,
                                  ctx.as_of, ctx.goals, lang)  # fmt: skip
    for row in (ctx.head, ctx.qhead):
        if row is not None:
            s.sentence(goal_sentence(row, ctx.team, lang, ctx.currency))
    s.add(cards)
    s.kpis = shown
    return s


def development(ctx: TeamContext) -> Section | None:
    """Development curves of the headline goal of the period and of the running quarter."""
    if not ctx.known:
        return None
    lang = ctx.language
    dev = Section("development", i18n.t("heading.development_curve", lang))
    if ctx.head is None and ctx.qhead is None:
        dev.sentence(vt("no_headline_goal", lang))
    for row in (ctx.head, ctx.qhead):
        if row is not None:
            dev.add(development_curve_figure(
                ctx.data, row, Scope.TEAM, ctx.team, ctx.as_of, lang,
                title=f"{kpi_label(str(row['kpi']), lang)} · {i18n.fmt_period(row['period'], lang)}"))  # fmt: skip
    if ctx.qhead is not None:
        dev.sentence(vt("ytd_curve_note", lang))
    return dev


def goals(ctx: TeamContext) -> Section | None:
    """The team's goals: target, actual, pace, forecast, probability, status."""
    if not ctx.known:
        return None
    s = Section("goals", i18n.t("heading.goals", ctx.language))
    s.add(goal_table(ctx.goals, ctx.language, ctx.currency))
    s.kpis = _goal_kpis(ctx.goals)
    return s


def funnel(ctx: TeamContext) -> Section | None:
    """Leads → SQL → deals created → won in the period."""
    from kpireport.plots import funnel as funnel_chart

    if not ctx.known:
        return None
    lang, p = ctx.language, ctx.period
    kp = _scope_kpis(
        ctx.data, [p], Scope.TEAM, ctx.team, ["new_leads", "sql", "deals_won"], ctx.as_of
    )
    s = Section("funnel", i18n.t("heading.funnel", lang))
    s.sentence(vt("funnel_note", lang, period=i18n.fmt_period(p.label, lang)))
    counts = _funnel_counts(ctx.data, p, Scope.TEAM, ctx.team, ctx.as_of, kp)
    s.add(funnel_chart(counts, language=lang, title=""))
    return s


def leaderboard(ctx: TeamContext) -> Section | None:
    """The team's sellers ranked by won value in the period."""
    from kpireport.kpis import compute_kpis
    from kpireport.plots import leaderboard as leaderboard_chart

    if not ctx.known:
        return None
    lang = ctx.language
    sellers = _team_sellers(ctx.data, ctx.team)
    lb = compute_kpis(ctx.data, [ctx.period], by=Scope.SELLER, kpis=["won_value"], as_of=ctx.as_of)
    lb = lb[lb["scope_id"].isin(sellers["seller_id"])].copy()
    lb["name"] = lb["scope_id"].map(_seller_names(ctx.data))
    s = Section("leaderboard", i18n.t("heading.seller_leaderboard", lang))
    s.add(leaderboard_chart(lb, value_col="value", label_col="name", unit="currency",
                            currency=ctx.currency, kpi="won_value", title="", language=lang))  # fmt: skip
    s.kpis = _tidy(lb)
    return s


def activity(ctx: TeamContext) -> Section | None:
    """What the headline goal still needs (reverse funnel) next to what was done."""
    if not ctx.known:
        return None
    lang, head, qhead = ctx.language, ctx.head, ctx.qhead
    s = Section("activity", i18n.t("heading.activity_vs_need", lang))
    need_row = (
        qhead if qhead is not None and str(qhead["status"]) not in ("achieved", "missed") else head
    )
    if need_row is not None and str(need_row["kpi"]) in ("won_value", "revenue", "deals_won"):
        blocks, tidy = _activity_need(ctx.data, need_row, Scope.TEAM, ctx.team, ctx.team,
                                      ctx.as_of, lang)  # fmt: skip
        for b in blocks:
            s.add(b)
        s.kpis = tidy
    else:
        s.sentence(vt("no_headline_goal", lang))
    return s


def pipeline(ctx: TeamContext) -> Section | None:
    """The team's open pipeline by stage on ``as_of``."""
    from kpireport.plots import pipeline_by_stage

    if not ctx.known:
        return None
    lang, day = ctx.language, _day(ctx.as_of)
    s = Section("pipeline", i18n.t("heading.pipeline", lang))
    s.sentence(vt("pipeline_asof", lang, date=i18n.fmt_date(day, lang),
                  period=i18n.fmt_period(ctx.period.label, lang)))  # fmt: skip
    pipe = _open_pipeline(ctx.data, Scope.TEAM, ctx.team, ctx.as_of, lang)
    if len(pipe) and pipe["closed_later"].any():
        s.sentence(vt("pipeline_unknown", lang, date=i18n.fmt_date(day, lang)))
    s.add(pipeline_by_stage(pipe, currency=ctx.currency, title="", language=lang))
    return s


def track_record(ctx: TeamContext) -> Section | None:
    """The last 12 finished goals of each of the team's goal series."""
    if not ctx.known:
        return None
    return track_record_section(ctx.data, Scope.TEAM, ctx.team, ctx.as_of, ctx.language)


def view(ctx: TeamContext) -> ReportView:
    """Every section of the team report, in order (:data:`SECTIONS`)."""
    funcs = {name: globals()[name] for name in SECTIONS}
    return ReportView.of(
        i18n.t("report.team_report", ctx.language), ctx.language, [f(ctx) for f in funcs.values()]
    )


def team_report_view(
    data: CrmData, team: str, period: str, as_of: str, language: str = "en"
) -> ReportView:
    """Everything the team report shows for one team and one period.

    Sections: ``summary`` (sentences and KPI cards), ``development`` (curve of
    the headline goal, and of the running quarter), ``goals``, ``funnel``,
    ``leaderboard``, ``activity`` (reverse funnel), ``pipeline``,
    ``track_record``.
    """
    return view(context(data, team, period, as_of, language))
