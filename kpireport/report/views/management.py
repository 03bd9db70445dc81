"""The management pack: the organisation and every team, one section function each.

A notebook (``kpireport/resources/notebooks/management_pack.py``) builds the
context once and shows one section per cell::

    from kpireport.report.views import load_data, management as report, show

    ctx = report.context(load_data(source, as_of), period, as_of, language, history=history)
    show(report.summary(ctx))
    show(report.attainment(ctx))

Sections: ``summary`` (goal counts, headline sentence, organisation cards),
``attainment`` (goal attainment chart), ``teams`` (teams side by side),
``risks`` (goals at risk or off track), ``forecast`` (the running quarter, the
order-intake forecast and last month's forecast graded) and ``goal_quality``
(docs/REPORTS.md, "Customising a report").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kpireport import i18n
from kpireport.constants import Scope
from kpireport.i18n import check_language, kpi_label
from kpireport.periods import Period, _day, parse_period
from kpireport.report.views.base import ReportContext, ReportView, Section, _esc, no_data, vt
from kpireport.report.views.blocks import (
    HEADLINE_KPIS,
    NUM,
    TEAM_COLUMNS,
    _eval_day,
    _evaluate,
    _fmt,
    _goal_kpis,
    _goals_for,
    _headline,
    _kdef,
    _pct,
    _running_quarter,
    _tidy,
    development_curve_figure,
    goal_sentence,
    goal_table,
    kpi_card_block,
)

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

log = logging.getLogger("kpireport")

ORG_CARD_KPIS = (
    "won_value", "revenue", "deals_won", "hit_rate",
    "new_leads", "new_customers", "weighted_pipeline", "cac",
)  # fmt: skip
#: the sections of the management pack, in order (names of this module's section functions)
SECTIONS = ("summary", "attainment", "teams", "risks", "forecast", "goal_quality")
#: KPIs of the goal attainment chart
ATTAINMENT_KPIS = ("won_value", "revenue", "deals_won", "new_leads", "meetings_booked")
#: KPIs of the teams' goal table
TEAM_GOAL_KPIS = ("won_value", "deals_won", "meetings_booked")


@dataclass
class ManagementContext(ReportContext):
    """The pack's context: the teams, and every organisation and team goal evaluated once."""

    teams: list[str] = field(default_factory=list)
    quarter: Period | None = None
    #: evaluated organisation and team goals of the report period and the running quarter
    goals: pd.DataFrame | None = None
    #: the run history database (``history.sqlite``, or its folder); ``None``: no grading
    history: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def month_goals(self) -> pd.DataFrame:
        """The evaluated goals of the report period itself."""
        return self.goals[self.goals["period"] == self.period.label]


def context(
    data: CrmData, period: str, as_of: str, language: str = "en", history: str | None = None
) -> ManagementContext:
    """Everything the pack's sections share, computed once.

    ``history`` is the run history (``history.sqlite`` or the output folder
    holding it; the ``history`` notebook parameter that ``kpireport run``
    passes). With it, the forecast section grades last month's published
    forecast for this period; without it, or when the file does not exist
    (yet), there is no grading.
    """
    lang = check_language(language)
    p = parse_period(period, as_of)
    teams = sorted({str(t) for t in data.tables["sellers"]["team"].dropna()})
    quarter = _running_quarter(p, as_of)
    labels = [p.label] + ([quarter.label] if quarter else [])
    org_goals = _goals_for(data, Scope.ORGANISATION, None, labels)
    team_goals = _goals_for(data, Scope.TEAM, teams, labels)
    all_goals = (
        pd.concat([x for x in (org_goals, team_goals) if len(x)], ignore_index=True)
        if len(org_goals) or len(team_goals)
        else pd.DataFrame()
    )
    ev = _evaluate(data, all_goals, p, quarter, as_of)
    return ManagementContext(data, p, as_of, lang, teams=teams, quarter=quarter, goals=ev,
                             history=history or None)  # fmt: skip


def _org_cards(ctx: ManagementContext) -> tuple[str, pd.DataFrame]:
    """The organisation's KPI cards and the tidy numbers they show (computed once)."""
    if "org_cards" not in ctx._cache:
        ev = ctx.goals
        ctx._cache["org_cards"] = kpi_card_block(
            ctx.data, ctx.period, Scope.ORGANISATION, None, ORG_CARD_KPIS, ctx.as_of,
            ev[ev["scope"] == Scope.ORGANISATION], ctx.language,
        )  # fmt: skip
    return ctx._cache["org_cards"]


def _team_kpis(ctx: ManagementContext) -> pd.DataFrame:
    """:data:`TEAM_COLUMNS` for every team in the period (tidy, computed once)."""
    from kpireport.kpis import compute_kpis

    if "team_kpis" not in ctx._cache:
        tk = compute_kpis(ctx.data, [ctx.period], by=Scope.TEAM, kpis=list(TEAM_COLUMNS),
                          as_of=ctx.as_of)  # fmt: skip
        ctx._cache["team_kpis"] = tk[tk["scope_id"].isin(ctx.teams)]
    return ctx._cache["team_kpis"]


def _who(goals: pd.DataFrame, language: str) -> pd.Series:
    """The goals' ``scope_id`` with "Organisation" for organisation goals (for ``who=True`` tables)."""
    return goals["scope_id"].where(
        goals["scope"] != Scope.ORGANISATION, i18n.t("scope.organisation", language)
    )


def summary(ctx: ManagementContext) -> Section:
    """How many goals are achieved / on track / at risk, the headline goal, the organisation's cards."""
    lang, p, ev = ctx.language, ctx.period, ctx.goals
    cards, shown = _org_cards(ctx)
    s = Section("summary", vt("summary", lang))
    month_goals = ctx.month_goals
    if len(month_goals):
        counts = month_goals["status"].value_counts()
    if len(month_goals) and not counts.get("on_track", 0) and not counts.get("at_risk", 0):
        # a finished period: "0 on track, 0 at risk and 13 off track" reads as a
        # running forecast; say achieved / missed like the badges do
        s.sentence(vt(
            "goals_closed", lang, achieved=int(counts.get("achieved", 0)), total=len(month_goals),
            period=i18n.fmt_period(p.label, lang),
            missed=int(counts.get("missed", 0) + counts.get("off_track", 0))))  # fmt: skip
    elif len(month_goals):
        s.sentence(i18n.t(
            "sentence.goals_summary", lang, achieved=int(counts.get("achieved", 0)), total=len(month_goals),
            on_track=int(counts.get("on_track", 0)), at_risk=int(counts.get("at_risk", 0)),
            off_track=int(counts.get("off_track", 0) + counts.get("missed", 0))))  # fmt: skip
    head = _headline(ev[ev["scope"] == Scope.ORGANISATION], p.label)
    if head is not None:
        s.sentence(goal_sentence(head, ctx.data.organisation, lang, ctx.currency))
    s.add(cards)
    s.kpis = shown
    return s


def attainment(ctx: ManagementContext) -> Section:
    """Attainment (forecast, or actual when finished, over target) of the period's main goals."""
    from kpireport.plots import goal_overview

    lang = ctx.language
    month_goals = ctx.month_goals
    s = Section("attainment", i18n.t("heading.goal_attainment", lang))
    if len(month_goals):
        g = month_goals[month_goals["kpi"].isin(list(ATTAINMENT_KPIS))].copy()
        g["label"] = [
            f"{kpi_label(k, lang)} · {i18n.t('scope.organisation', lang) if sc == Scope.ORGANISATION else sid}"
            for k, sc, sid in zip(g["kpi"], g["scope"], g["scope_id"], strict=True)
        ]
        fc = pd.to_numeric(g["forecast"], errors="coerce")
        g["attainment"] = (
            fc.where(fc.notna(), pd.to_numeric(g["actual"], errors="coerce")) / g["target"]
        )
        if len(g) < len(month_goals):
            s.sentence(vt("goal_chart_note", lang))
        s.add(goal_overview(g.drop(columns=["forecast"]), title="", language=lang))
    else:
        s.sentence(i18n.t("sentence.no_goals", lang))
    s.kpis = _goal_kpis(ctx.goals)  # every goal's actual: the pack's goal numbers
    return s


def teams(ctx: ManagementContext) -> Section:
    """The teams side by side (:data:`TEAM_COLUMNS`, won-value attainment) and their goals."""
    from kpireport.plots import html_table

    lang, p, ev, cur = ctx.language, ctx.period, ctx.goals, ctx.currency
    s = Section("teams", i18n.t("heading.teams", lang), page_break=True)
    tk = _team_kpis(ctx)
    s.kpis = _tidy(tk)
    if tk.empty:
        s.add(no_data(lang))
        return s
    wide = tk.pivot_table(
        index="scope_id", columns="kpi", values="value", aggfunc="first", dropna=False
    )
    wide = wide.reindex(columns=[k for k in TEAM_COLUMNS if k in wide.columns]).reset_index()
    gg = ev[
        (ev["scope"] == Scope.TEAM) & (ev["kpi"] == "won_value") & (ev["period"] == p.label)
    ].set_index("scope_id")
    wide["attainment"] = wide["scope_id"].map(
        lambda sid: (
            (gg.loc[sid, "actual"] / gg.loc[sid, "target"])
            if sid in gg.index and gg.loc[sid, "target"]
            else np.nan
        )
    )
    headers = {
        "scope_id": i18n.t("col.team", lang),
        "attainment": f"{kpi_label('won_value', lang)} · {i18n.t('col.attainment', lang)}",
    }
    headers.update({k: kpi_label(k, lang) for k in TEAM_COLUMNS})
    fm = {k: (lambda v, k=k: _fmt(k, v, lang, cur)) for k in TEAM_COLUMNS}
    fm["attainment"] = lambda v: _pct(v, lang)
    s.sentence(vt("teams_intro", lang, period=i18n.fmt_period(p.label, lang)))
    s.add(html_table(wide, fm, lang, columns=headers))
    tgoals = ev[(ev["scope"] == Scope.TEAM) & (ev["period"] == p.label)]
    if len(tgoals):
        tgoals = tgoals.sort_values(["scope_id", "kpi"])
        s.add(goal_table(tgoals[tgoals["kpi"].isin(list(TEAM_GOAL_KPIS))], lang, cur, who=True))
    return s


def risks(ctx: ManagementContext) -> Section:
    """Goals at risk or off track, and missed headline goals, worst first."""
    lang, ev = ctx.language, ctx.goals
    s = Section("risks", i18n.t("heading.risks", lang), keep_together=False)
    risky = ev[
        ev["status"].isin(["at_risk", "off_track"])
        | ((ev["status"] == "missed") & ev["kpi"].isin(HEADLINE_KPIS))
    ]
    if risky.empty:
        s.sentence(i18n.t("sentence.no_risks", lang))
        return s
    s.sentence(vt("risks_intro", lang, n=len(risky)))
    order = {"off_track": 0, "at_risk": 1, "missed": 2}
    risky = (
        risky.assign(_o=risky["status"].map(order))
        .sort_values(["_o", "scope_id", "kpi"])
        .drop(columns="_o")
    )
    s.add(goal_table(risky.assign(scope_id=_who(risky, lang)), lang, ctx.currency, who=True))
    return s


def forecast(ctx: ManagementContext) -> Section:
    """The running quarter's goals and curve, last month's forecast graded, the order-intake trend
    with its forecast (whose next month is recorded, so next month's pack can grade it)."""
    from kpireport.forecasting import forecast as forecast_series
    from kpireport.kpis import kpi_series
    from kpireport.plots import kpi_trend

    lang, p, ev, quarter, cur = ctx.language, ctx.period, ctx.goals, ctx.quarter, ctx.currency
    s = Section("forecast", i18n.t("heading.quarter_forecast", lang), page_break=True)
    qg = ev[(ev["period"] == quarter.label)] if quarter is not None else ev.iloc[0:0]
    if len(qg):
        s.sentence(vt("quarter_intro", lang, period=i18n.fmt_period(quarter.label, lang),
                      date=i18n.fmt_date(ctx.as_of, lang)))  # fmt: skip
        s.add(goal_table(qg.assign(scope_id=_who(qg, lang)), lang, cur, who=True))
        qhead = _headline(qg[qg["scope"] == Scope.ORGANISATION], quarter.label)
        if qhead is not None:
            s.add(development_curve_figure(
                ctx.data, qhead, Scope.ORGANISATION, None, ctx.as_of, lang,
                title=f"{kpi_label(str(qhead['kpi']), lang)} · {i18n.fmt_period(quarter.label, lang)}"))  # fmt: skip
    else:
        s.sentence(i18n.t("sentence.no_goals", lang))
    end = _eval_day(p, ctx.as_of)
    series = kpi_series(ctx.data, "won_value", grain="month", start=(p.start - pd.DateOffset(months=35)).date(),
                        end=p.start.date(), as_of=end)  # fmt: skip
    fc = forecast_series(series, 3) if len(series) >= 6 else None
    shown = [_org_cards(ctx)[1], _goal_kpis(ev), _tidy(_team_kpis(ctx))]
    graded = _graded_forecast(ctx.history, p, shown, lang, cur)
    if graded:
        s.sentence(graded)
    s.add(kpi_trend(series.iloc[-18:], forecast=fc, unit="currency", currency=cur, kpi="won_value",
                    title=vt("trend_org", lang), language=lang))  # fmt: skip
    if fc is not None and len(fc):
        nxt = fc.iloc[0]
        s.kpis = pd.DataFrame([{
            "kpi": "won_value", "scope": Scope.ORGANISATION.value, "scope_id": None, "period": p.next().label,
            "value": np.nan, **{c: float(nxt[c]) for c in ("mean", "lo_80", "hi_80", "lo_95", "hi_95")},
        }]).rename(columns={"mean": "forecast"})  # fmt: skip
    return s


def goal_quality(ctx: ManagementContext) -> Section:
    """The SMART check of the running and coming goals (:func:`goal_quality_section`)."""
    return goal_quality_section(ctx.data, ctx.as_of, ctx.language, ctx.currency)


def view(ctx: ManagementContext) -> ReportView:
    """Every section of the pack, in report order (:data:`SECTIONS`)."""
    funcs = [globals()[name] for name in SECTIONS]
    return ReportView.of(i18n.t("report.management_pack", ctx.language), ctx.language,
                         [f(ctx) for f in funcs])  # fmt: skip


def management_pack_view(
    data: CrmData, period: str, as_of: str, language: str = "en", history: str | None = None
) -> ReportView:
    """The organisation and every team: attainment overview, teams side by side, risks, quarter forecast.

    With ``history`` (the run history ``history.sqlite``, or the output folder
    holding it), the forecast section opens with how last month's published
    forecast for this period compares with the actual ("last month we
    forecast … ; the actual is …"), and the forecast of next month's order
    intake is recorded so that next month's pack can grade it (convention of
    :mod:`kpireport.history.snapshots`).
    """
    return view(context(data, period, as_of, language, history=history))


#: goals the Goal quality section checks: these scopes, periods starting within this many days
QUALITY_SCOPES = (Scope.ORGANISATION, Scope.TEAM)
QUALITY_HORIZON_DAYS = 62


def _quality_goals(data: CrmData, as_of: Any) -> pd.DataFrame:
    """Organisation and team goals of a month, quarter or span that run at ``as_of`` or
    start within :data:`QUALITY_HORIZON_DAYS` (the goals still worth discussing)."""
    goals = data.tables.get("goals")
    if goals is None or len(goals) == 0:
        return pd.DataFrame()
    g = goals[goals["scope"].isin(QUALITY_SCOPES)]
    day = _day(as_of)
    keep = []  # on its last day a goal's result is known: nothing left to discuss
    for label in g["period"]:
        try:
            q = parse_period(label)
        except Exception:  # noqa: BLE001 - an invalid label is the data contract's finding
            keep.append(False)
            continue
        keep.append(
            (q.grain in ("month", "quarter") or q.is_date_span)
            and q.last_day > day
            and q.start <= day + pd.Timedelta(days=QUALITY_HORIZON_DAYS)
        )
    return g[np.array(keep, dtype=bool)].reset_index(drop=True)


def goal_quality_section(data: CrmData, as_of: Any, language: str, currency: str) -> Section:
    """The SMART check of the running and coming organisation and team goals.

    One row per goal flagged unrealistic or unambitious (R), not agreed (A),
    or under-/overcommitted (its child goals add up to less/more), with the
    chance of reaching it and, for R, the growth it asks against last year's
    and the history's (see :func:`kpireport.goals.check_goals`).
    """
    from kpireport.goals import check_goals
    from kpireport.plots import Html

    sec = Section("goal_quality", i18n.t("heading.goal_quality", language), keep_together=False)
    goals = _quality_goals(data, as_of)
    if goals.empty:
        sec.sentence(i18n.t("sentence.no_goals", language))
        return sec
    checked = check_goals(data, goals, as_of=_day(as_of))
    rows = []
    for _, r in checked.iterrows():
        remarks = []
        lint = str(r["lint"] or "").split(",")
        if r["R"] == "fail" and np.isfinite(r["probability"]):
            key = "unrealistic" if r["probability"] < 0.5 else "unambitious"
            text = i18n.t(f"quality.{key}", language)  # the chance has its own column
            rate = str(r["growth_unit"]) == "pp" or _kdef(str(r["kpi"])).unit in ("percent",)
            gfmt = (
                (lambda x: i18n.fmt_number(x * 100, language, decimals=1) + "\u00a0pp")
                if rate
                else (lambda x: _pct(x, language, signed=True))
            )
            if np.isfinite(r["asked_growth"]):
                text += ": " + i18n.t("quality.asks", language, growth=gfmt(r["asked_growth"]))
            if np.isfinite(r["past_growth_min"]):
                n = int(r["past_growth_years"])
                lo, hi = gfmt(r["past_growth_min"]), gfmt(r["past_growth_max"])
                text += "; " + (
                    i18n.t("quality.history", language, n=n, lo=lo, hi=hi)
                    if n > 1
                    else i18n.t("quality.history_one", language, lo=lo)
                )
            if np.isfinite(r["goal_raise"]):
                text += "; " + i18n.t("quality.raised", language, growth=gfmt(r["goal_raise"]))
            remarks.append(text)
        if r["A"] == "fail":
            remarks.append(i18n.t("quality.not_agreed", language))
        for flag in ("undercommitted", "overcommitted"):
            if flag in lint:
                gap = float(r["commit_gap"])
                below = Scope.TEAM if r["scope"] == Scope.ORGANISATION else Scope.SELLER
                remarks.append(
                    i18n.t(
                        f"quality.{flag}_{below}",
                        language,
                        gap=_fmt(str(r["kpi"]), abs(gap), language, currency),
                    )
                )
        if remarks:
            rows.append((r, "; ".join(remarks)))
    if not rows:
        sec.sentence(i18n.t("quality.all_good", language, total=len(checked)))
        return sec
    sec.sentence(i18n.t("quality.intro", language, n=len(rows), total=len(checked)))
    t = i18n.t
    head = [t("col.goal", language), t("col.team", language), t("col.period", language),
            t("col.target", language), t("col.chance", language), t("col.remark", language)]  # fmt: skip
    out = ['<table class="kpi-table report-table goal-table quality-table"><thead><tr>']
    out += [f"<th{NUM if i in (3, 4) else ''}>{_esc(h)}</th>" for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for r, remark in rows:
        who = (
            t("scope.organisation", language) if r["scope"] == Scope.ORGANISATION else r["scope_id"]
        )
        target = _fmt(str(r["kpi"]), r["target"], language, currency)
        cells = [
            _esc(kpi_label(str(r["kpi"]), language)), _esc(who),
            _esc(i18n.fmt_period(r["period"], language)), _esc(target),
            _esc(_pct(r["probability"], language)), _esc(remark),
        ]  # fmt: skip
        out.append("<tr>")
        out += [f"<td{NUM if i in (3, 4) else ''}>{c}</td>" for i, c in enumerate(cells)]
        out.append("</tr>")
    out.append("</tbody></table>")
    sec.add(Html("".join(out)))
    return sec


def _graded_forecast(
    history: str | None, p: Period, frames: list, lang: str, cur: str
) -> str | None:
    """ "Last month we forecast €X (80 %: a–b) for October; the actual is €Y, inside the range." or None."""
    if not history:
        return None
    from kpireport.history.snapshots import previous_forecast_vs_actual
    from kpireport.history.store import db_path

    db = db_path(history)  # the database, or the folder holding it: no walking up
    if not db.is_file():
        return None

    actuals = pd.concat([_tidy(f) for f in frames if len(f)], ignore_index=True)
    try:
        fva = previous_forecast_vs_actual(db, p.label, kpis=["won_value"], actuals=actuals)
    except Exception as exc:  # an unreadable history must not sink the pack
        log.warning("no forecast-vs-actual for %s: %s", p.label, exc)
        return None
    fva = fva[(fva["scope"] == Scope.ORGANISATION) & fva["actual"].notna()]
    if fva.empty:
        return None
    r = fva.iloc[0]
    money = lambda x: i18n.fmt_currency(float(x), cur, lang, decimals=0)  # noqa: E731
    inside = bool(r["lo_80"] <= r["actual"] <= r["hi_80"])
    return vt("graded_" + ("in" if inside else "out"), lang, period=i18n.fmt_period(p.label, lang),
              forecast=money(r["forecast"]), lo=money(r["lo_80"]), hi=money(r["hi_80"]),
              actual=money(r["actual"]))  # fmt: skip
