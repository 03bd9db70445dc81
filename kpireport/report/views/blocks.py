"""Shared building blocks of the report views: numbers, formatting, cards, goal tables, curves.

Used by the report modules of :mod:`kpireport.report.views` (and the
dashboard); a block returns HTML (:class:`kpireport.plots.Html`), a figure, or a
:class:`~kpireport.report.views.base.Section` shared by several reports
(:func:`track_record_section`).

Design decisions
----------------
* **Like-for-like comparisons.** When the report period is still running at
  ``as_of``, "vs previous period" and "vs last year" compare with the same
  number of elapsed days of those periods, never a part with a whole.
* **Goals are evaluated at** ``min(as_of, last day of the period)`` for the
  report period and at ``as_of`` for the running quarter that contains it, so a
  monthly pack for last month also shows where this quarter is heading.
* **No data is a section, not a crash.** A scope or period without any
  activity gives an explicit "No data for this period" section.
* **Forecast cone of the development curve.** The simulated distribution of
  the period total (:func:`kpireport.forecasting.period_total_distribution`) is
  spread over the remaining days in proportion to elapsed days: the cone
  starts at the actual on ``as_of`` and opens to the simulated quantiles at
  period end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kpireport import i18n
from kpireport.constants import Scope
from kpireport.i18n import fmt_percent, fmt_value, kpi_label
from kpireport.periods import Period, _day, containing, parse_period
from kpireport.report.views.base import Section, _esc, _Prose, no_data, vt

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

#: KPIs compared side by side per team in the management pack (and the explore overview)
TEAM_COLUMNS = (
    "won_value",
    "deals_won",
    "hit_rate",
    "avg_deal_value",
    "sales_cycle_days",
    "pipeline_value",
)
#: KPIs whose goals get a development curve, in order of preference
HEADLINE_KPIS = ("won_value", "revenue", "deals_won")
#: class attribute of number cells (right-aligned by the stylesheet)
NUM = ' class="num"'
#: KPIs that have no previous/last-year comparison on a card (point-in-time stocks)
STOCK_KPIS = frozenset({"pipeline_value", "weighted_pipeline"})


# ------------------------------------------------------------------ numbers
def _eval_day(p: Period, as_of: Any) -> pd.Timestamp:
    """``as_of`` cut to the period's last day (a past period is evaluated as complete)."""
    return min(_day(as_of), p.last_day)


def _running(p: Period, as_of: Any) -> bool:
    day = _day(as_of)
    return bool(p.start <= day < p.last_day)


def _comparison_periods(p: Period, as_of: Any) -> tuple[Period, Period]:
    """Previous period and same period last year, cut to the same elapsed days when ``p`` runs."""
    prev, ly = p.previous(), p.last_year()
    if _running(p, as_of):
        elapsed = _day(as_of) - p.start
        prev = prev.to_date(min(prev.start + elapsed, prev.last_day))
        ly = ly.to_date(min(ly.start + elapsed, ly.last_day))
    return prev, ly


def _scope_kpis(
    data: CrmData,
    periods: Sequence[Period],
    scope: str,
    scope_id: str | None,
    kpis: Sequence[str],
    as_of: Any,
) -> pd.DataFrame:
    """``compute_kpis`` for one scope id (tidy), empty when the scope is unknown."""
    from kpireport.kpis import compute_kpis
    from kpireport.kpis.compute import resolve_kpis

    usable = [k.name for k in resolve_kpis(list(kpis), Scope(scope))] if kpis else None
    df = compute_kpis(data, list(periods), by=scope, kpis=usable, as_of=as_of)
    if scope != Scope.ORGANISATION:
        df = df[df["scope_id"].astype("str") == str(scope_id)]
    return df.reset_index(drop=True)


def _value(df: pd.DataFrame, kpi: str, period: str) -> float:
    m = df[(df["kpi"] == kpi) & (df["period"] == period)]
    if m.empty:
        return float("nan")
    v = m["value"].iloc[0]
    return float(v) if v is not None and not pd.isna(v) else float("nan")


def _change(cur: float, base: float) -> float:
    if not (np.isfinite(cur) and np.isfinite(base)) or base == 0:
        return float("nan")
    return cur / base - 1.0


def _kdef(kpi: str) -> Any:
    from kpireport.kpis import get_kpi

    return get_kpi(kpi)


def _goals_for(
    data: CrmData, scope: str, scope_ids: Iterable[str] | None, labels: Iterable[str]
) -> pd.DataFrame:
    """The goal rows of a scope for the given period labels (possibly empty)."""
    goals = data.tables.get("goals")
    if goals is None or len(goals) == 0:
        return pd.DataFrame()
    g = goals[(goals["scope"] == scope) & goals["period"].isin(list(labels))]
    if scope_ids is not None:
        g = g[g["scope_id"].astype("str").isin([str(s) for s in scope_ids])]
    return g.reset_index(drop=True)


def _evaluate(
    data: CrmData, goals: pd.DataFrame, p: Period, quarter: Period | None, as_of: Any
) -> pd.DataFrame:
    """Evaluate report-period goals at the period's end (or as_of) and quarter goals at as_of."""
    from kpireport.goals import evaluate_goals
    from kpireport.goals.evaluate import RESULT_COLUMNS

    frames = []
    if len(goals):
        own = goals[goals["period"] == p.label]
        if len(own):
            frames.append(evaluate_goals(data, own, as_of=_eval_day(p, as_of)))
        if quarter is not None and quarter.label != p.label:
            q = goals[goals["period"] == quarter.label]
            if len(q):
                frames.append(evaluate_goals(data, q, as_of=_eval_day(quarter, as_of)))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _running_quarter(p: Period, as_of: Any) -> Period | None:
    """The quarter containing ``as_of`` when it overlaps or follows ``p`` (for "where are we heading")."""
    q = containing(_day(as_of), "quarter")
    return q if q.start <= p.end and q.end > p.start else None


# ------------------------------------------------------------------ formatting
def _fmt(kpi: str, value: Any, language: str, currency: str) -> str:
    unit = str(_kdef(kpi).unit) if kpi else "count"
    if unit == "count":
        return i18n.fmt_number(value, language, decimals=0)
    if unit == "currency":
        return _money(value, language, currency)
    return fmt_value(value, unit, currency, language)


def _money(value: Any, language: str, currency: str) -> str:
    """Whole currency units: a sales director does not read cents."""
    return i18n.fmt_currency(value, currency, language, decimals=0)


def _pct(value: Any, language: str, signed: bool = False) -> str:
    return fmt_percent(value, language, decimals=0, signed=signed)


def _chance(prob: float, language: str) -> str:
    if prob >= 0.65:
        return vt("likely", language)
    if prob >= 0.35:
        return vt("possible", language)
    return vt("unlikely", language)


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["kpi", "scope", "scope_id", "period", "value"]
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=cols)
    return df[cols].reset_index(drop=True)


# ------------------------------------------------------------------ building blocks
def kpi_card_block(
    data: CrmData, p: Period, scope: str, scope_id: str | None, kpis: Sequence[str], as_of: Any,
    goals: pd.DataFrame, language: str,
) -> tuple[str, pd.DataFrame]:  # fmt: skip
    """KPI cards (value, vs previous period, vs last year, vs goal) and the tidy numbers shown."""

    prev, ly = _comparison_periods(p, as_of)
    df = _scope_kpis(data, [p, prev, ly], scope, scope_id, kpis, as_of)
    here = pd.to_numeric(df.loc[df["period"] == p.label, "value"], errors="coerce")
    if df.empty or not (here.fillna(0) != 0).any():  # nothing happened: say so, never show zeros
        return no_data(language), _tidy(None)
    cards = []
    for kpi in kpis:
        if kpi not in set(df["kpi"]):
            continue
        kdef = _kdef(kpi)
        cur = _value(df, kpi, p.label)
        card: dict[str, Any] = {"label": kpi_label(kpi, language), "value": cur, "unit": str(kdef.unit),
                                "better": str(kdef.better)}  # fmt: skip
        if str(kdef.unit) == "currency":
            card["value"] = round(cur) if np.isfinite(cur) else cur
        if str(kdef.unit) == "percent":  # a rate changes in percentage points
            card["delta_kind"] = "points"
            card["delta_prev"] = cur - _value(df, kpi, prev.label)
            card["delta_ly"] = cur - _value(df, kpi, ly.label)
        elif kpi not in STOCK_KPIS:
            card["delta_prev"] = _change(cur, _value(df, kpi, prev.label))
            card["delta_ly"] = _change(cur, _value(df, kpi, ly.label))
        g = goals[(goals["kpi"] == kpi) & (goals["period"] == p.label)] if len(goals) else goals
        if len(g):
            row = g.iloc[0]
            if np.isfinite(row["actual"]) and row["target"]:
                card["goal_pct"] = float(row["actual"]) / float(row["target"])
            card["status"] = str(row["status"])
        card["_category"] = kdef.category
        cards.append(card)
    shown = df[df["period"] == p.label]
    return grouped_cards(cards, language, data.currency), _tidy(shown)


#: the order report cards show the KPI categories in (the result a reader looks for first)
CARD_CATEGORIES = ("result", "activity", "efficiency")


def grouped_cards(cards: list[dict], language: str, currency: str) -> str:
    """KPI cards grouped by the registry category of their KPI, each group labelled
    (Results, Activity, Efficiency); one group is shown without a label."""
    from kpireport.plots import Html, kpi_cards

    groups: dict[str, list[dict]] = {}
    for card in cards:
        groups.setdefault(card.pop("_category", "result"), []).append(card)
    if len(groups) <= 1:
        return kpi_cards([c for g in groups.values() for c in g], language, currency=currency)
    parts = []
    for cat in CARD_CATEGORIES:
        if cat in groups:
            label = _esc(i18n.t(f"category.{cat}", language))
            parts.append(
                f'<div class="card-group"><p class="card-group-label">{label}</p>'
                f"{kpi_cards(groups[cat], language, currency=currency)}</div>"
            )
    return Html("".join(parts))


def goal_table(goals: pd.DataFrame, language: str, currency: str, *, who: bool = False) -> str:
    """Goals with target, actual, expected by now, forecast (80 % range), probability and status.

    Columns that would be empty for every row (no forecast for finished
    goals, one period for all rows, no pace in a side-by-side table) are left
    out, so the table fits an A4 page without cramped, wrapped numbers.
    """
    from kpireport.plots import Html, status_badge

    if goals is None or len(goals) == 0:
        return Html(f'<p class="no-data">{_esc(i18n.t("sentence.no_goals", language))}</p>')
    t = i18n.t

    def has(col: str) -> bool:
        return bool(pd.to_numeric(goals[col], errors="coerce").notna().any())

    cols: list[tuple[str, str]] = []  # (key, header)
    if who:
        cols.append(("who", t("col.team", language)))
    cols.append(("goal", t("col.goal", language)))
    if goals["period"].nunique() > 1:
        cols.append(("period", t("col.period", language)))
    cols += [("target", t("col.target", language)), ("actual", t("col.actual", language))]
    if has("expected") and not who:
        cols.append(("expected", t("col.pace", language)))
    if has("forecast"):
        cols += [
            ("forecast", t("col.forecast", language)),
            ("range", t("col.forecast_range", language)),
        ]
    if has("probability"):
        cols.append(("probability", t("col.probability", language)))
    cols.append(("status", t("col.status", language)))
    numeric = {"target", "actual", "expected", "forecast", "range", "probability"}
    out = ['<table class="kpi-table report-table goal-table"><thead><tr>']
    for key, head in cols:
        out.append(f"<th{NUM if key in numeric else ''}>{_esc(head)}</th>")
    out.append("</tr></thead><tbody>")
    for _, r in goals.iterrows():
        kpi = str(r["kpi"])
        label = kpi_label(kpi, language)
        if str(r.get("direction")) == "at_most":
            label = f"{label} (≤)"
        f = lambda v, k=kpi: _fmt(k, v, language, currency)  # noqa: E731
        rng = (
            f"{f(r['lo_80'])}\u00a0– {f(r['hi_80'])}"  # wraps after the dash, never before it
            if not i18n.is_missing(r.get("lo_80")) and not i18n.is_missing(r.get("hi_80"))
            else i18n.MISSING
        )
        target = _esc(f(r["target"]))
        growth = growth_text(r, language)
        if growth:
            target += f'<br><span class="growth">{_esc(growth)}</span>'
        values = {
            "who": _esc(r["scope_id"]), "goal": _esc(label),
            "period": _esc(i18n.fmt_period(r["period"], language)),
            "target": target, "actual": _esc(f(r["actual"])),
            "expected": _esc(f(r["expected"])), "forecast": _esc(f(r["forecast"])), "range": _esc(rng),
            "probability": _esc(_pct(r["probability"], language)),
            "status": status_badge(str(r["status"]), language),
        }  # fmt: skip
        out.append("<tr>")
        for key, _ in cols:
            cls = ' class="num range"' if key == "range" else (NUM if key in numeric else "")
            out.append(f"<td{cls}>{values[key]}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append(goal_remarks(goals, language, currency))
    return Html("".join(out))


#: lint flags a goal table explains under the table (the rest is the Goal quality section's)
REMARK_FLAGS = ("inactive_owner", "undercommitted", "overcommitted")


def growth_text(row: pd.Series, language: str) -> str:
    """``"+14 % vs Q4 2025"`` for a growth goal (``"+2 pp vs …"`` for a rate), else ``""``."""
    g = row.get("growth")
    if i18n.is_missing(g) or i18n.is_missing(row.get("baseline_period")):
        return ""
    if str(row.get("growth_unit")) == "pp":
        points = i18n.fmt_number(float(g) * 100, language, decimals=1 if float(g) * 100 % 1 else 0)
        text = ("+" if g > 0 else "") + points + "\u00a0pp"
    else:
        text = fmt_percent(
            g, language, decimals=1 if round(float(g) * 100, 1) % 1 else 0, signed=True
        )
    period = i18n.fmt_period(row["baseline_period"], language)
    return i18n.t("goal.growth_vs", language, growth=text, period=period)


def goal_remarks(goals: pd.DataFrame, language: str, currency: str) -> str:
    """One line per goal with a flag of :data:`REMARK_FLAGS` ("Order intake, Bo: the seller is
    not active in the goal's period."), as a paragraph under the goal table; ``""`` if none."""
    if goals is None or len(goals) == 0 or "lint" not in goals:
        return ""
    lines = []
    for _, r in goals.iterrows():
        flags = [f for f in str(r.get("lint") or "").split(",") if f in REMARK_FLAGS]
        for flag in flags:
            gap = abs(float(r["commit_gap"])) if "commit_gap" in r else float("nan")
            gap_text = (
                _fmt(str(r["kpi"]), gap, language, currency) if not i18n.is_missing(gap) else ""
            )
            who = f", {r['scope_id']}" if not i18n.is_missing(r.get("scope_id")) else ""
            what = f"{kpi_label(str(r['kpi']), language)}{who} ({i18n.fmt_period(r['period'], language)})"
            lines.append(f"{_esc(what)}: {_esc(i18n.t(f'lint.{flag}', language, gap=gap_text))}.")
    if not lines:
        return ""
    head = _esc(i18n.t("heading.remarks", language))
    return f'<p class="goal-remarks"><strong>{head}:</strong><br>' + "<br>".join(lines) + "</p>"


def _goal_kpis(goals: pd.DataFrame) -> pd.DataFrame:
    """Goal actuals as tidy KPI rows (the goal table's numbers)."""
    if goals is None or len(goals) == 0:
        return _tidy(None)
    df = goals[["kpi", "scope", "scope_id", "period", "actual"]].rename(columns={"actual": "value"})
    return _tidy(df)


def _headline(goals: pd.DataFrame, period: str) -> pd.Series | None:
    if goals is None or len(goals) == 0:
        return None
    for kpi in HEADLINE_KPIS:
        m = goals[(goals["kpi"] == kpi) & (goals["period"] == period)]
        if len(m):
            return m.iloc[0]
    return None


def goal_sentence(row: pd.Series, scope_name: str, language: str, currency: str) -> str:
    """One sentence on a goal, e.g. "Mid-Market reached 62 % of its order intake goal; ...".

    A running goal gets its probability in words and numbers ("it is likely
    (78 %) to make it"); a finished one says achieved, or how far short.
    """
    kpi = kpi_label(str(row["kpi"]), language, in_sentence=True)
    period = i18n.fmt_period(row["period"], language)
    target, actual = (
        float(row["target"]),
        float(row["actual"]) if np.isfinite(row["actual"]) else 0.0,
    )
    pct = _pct(actual / target if target else float("nan"), language)
    prob = row.get("probability")
    if str(row["status"]) in ("achieved", "missed") or i18n.is_missing(prob):
        if actual >= target:
            return vt(
                "final_sentence_hit", language, scope=scope_name, pct=pct, kpi=kpi, period=period
            )
        gap = _fmt(str(row["kpi"]), target - actual, language, currency)
        return vt(
            "final_sentence_miss",
            language,
            scope=scope_name,
            pct=pct,
            kpi=kpi,
            period=period,
            gap=gap,
        )
    return vt(
        "pace_sentence", language, scope=scope_name, pct=pct, kpi=kpi,
        chance=_chance(float(prob), language), prob=_pct(prob, language), period=period,
    )  # fmt: skip


def development_curve_figure(
    data: CrmData, row: pd.Series, scope: str, scope_id: str | None, as_of: Any, language: str,
    title: str | None = None,
) -> Any:  # fmt: skip
    """The development curve of one goal: cumulative actual vs linear and seasonal pace vs forecast cone."""
    from kpireport.forecasting import period_total_distribution
    from kpireport.kpis import cumulative_curve, kpi_series
    from kpireport.plots import development_curve

    kpi = str(row["kpi"])
    p = parse_period(str(row["period"]))
    day = _eval_day(p, as_of)
    sid = None if scope == Scope.ORGANISATION else scope_id
    cum = cumulative_curve(data, kpi, p, scope=scope, scope_id=sid, as_of=day)
    target = float(row["target"])
    n = p.days
    linear = pd.Series(target * np.arange(1, n + 1) / n, index=p.days_index())
    seasonal = None
    ly = p.last_year()
    ly_cum = cumulative_curve(data, kpi, ly, scope=scope, scope_id=sid, as_of=ly.last_day)
    total = float(ly_cum.iloc[-1]) if len(ly_cum) else float("nan")
    if np.isfinite(total) and total > 0:
        frac = np.linspace(0, 1, len(ly_cum))
        share = np.interp(np.linspace(0, 1, n), frac, ly_cum.to_numpy() / total)
        seasonal = pd.Series(target * share, index=p.days_index())
    cone = None
    if day < p.last_day:
        daily = kpi_series(
            data,
            kpi,
            scope,
            sid,
            grain="day",
            start=(day - pd.Timedelta(days=730)).date(),
            end=day.date(),
            as_of=day,
        )
        totals = period_total_distribution(daily, p.start, p.end, day, n_paths=1000, seed=0)
        actual = float(cum.loc[day]) if day in cum.index and np.isfinite(cum.loc[day]) else 0.0
        rest_days = pd.date_range(day, p.last_day, freq="D")
        w = np.linspace(0, 1, len(rest_days))
        q = {c: v for c, v in zip(
            ("mean", "lo_80", "hi_80", "lo_95", "hi_95"),
            (totals.mean(), *np.quantile(totals, [0.1, 0.9, 0.025, 0.975])), strict=True)}  # fmt: skip
        cone = pd.DataFrame({c: actual + w * (v - actual) for c, v in q.items()}, index=rest_days)
    return development_curve(
        cum, target=target, linear_pace=linear, seasonal_pace=seasonal, forecast_cone=cone,
        as_of=day, unit=str(_kdef(kpi).unit), currency=data.currency, kpi=kpi,
        title=title, language=language,
    )  # fmt: skip


def _team_sellers(data: CrmData, team: str) -> pd.DataFrame:
    s = data.tables["sellers"]
    return s[s["team"].astype("str") == str(team)]


def _funnel_counts(
    data: CrmData, p: Period, scope: str, scope_id: str | None, as_of: Any, kpis: pd.DataFrame
) -> pd.Series:
    """Leads → SQL → deals created → won in ``p`` for the scope."""
    end = min(p.end, _day(as_of) + pd.Timedelta(days=1))
    return pd.Series(
        {
            "leads": _value(kpis, "new_leads", p.label),
            "sql": _value(kpis, "sql", p.label),
            "deals": float(_deals_created(data, p.start, end, scope, scope_id)),
            "won": _value(kpis, "deals_won", p.label),
        }
    )


def _deals_created(data: Any, start: Any, end: Any, scope: str, scope_id: str | None) -> int:
    """Deals created in ``[start, end)`` by the scope (a team: its sellers' current team).

    One query on the KPI engine counts every id of the scope at once (the
    statement is the same for every report of a run, so the run's KPI cube
    answers it and no kernel reads the deals table); the same rows as
    :func:`kpireport.goals.evaluate.deals_in_scope`.
    """
    from kpireport.kpis.engine import prepared
    from kpireport.kpis.relational import ts

    when = f"created_at >= {ts(pd.Timestamp(start).value)} AND created_at < {ts(pd.Timestamp(end).value)}"
    prep = prepared(data)
    if scope == Scope.TEAM:  # a deal counts for every team its seller id is listed in
        sql = (
            "SELECT s.team, COUNT(*) FROM deals d JOIN (SELECT DISTINCT seller_id, team FROM "
            f"sellers) s ON d.seller_id = s.seller_id WHERE d.{when} GROUP BY 1"
        )
    elif scope in (Scope.SELLER, Scope.CUSTOMER):
        key = "seller_id" if scope == Scope.SELLER else "company_id"
        sql = f"SELECT {key}, COUNT(*) FROM deals WHERE {when} GROUP BY 1"
    else:
        return int(prep.query(f"SELECT COUNT(*) FROM deals WHERE {when}")[0][0])
    counts = {str(k): int(n) for k, n in prep.query(sql) if k is not None}
    return counts.get(str(scope_id), 0)


def _open_pipeline(
    data: CrmData, scope: str, scope_id: str | None, as_of: Any, language: str = "en"
) -> pd.DataFrame:
    """Deals open on ``as_of`` (``stage``, ``value``, ``probability``, ``closed_later``).

    Deals closed since have no stage or probability on that day
    (:func:`kpireport.goals.evaluate.open_deals_at`): they are grouped under
    "Stage unknown" with an unknown weighted value, never under their
    closing stage; a stage missing from the data shows as "–".
    """
    from kpireport.goals.evaluate import open_deals_at

    d = open_deals_at(data, _day(as_of), Scope(scope), scope_id)
    if d.empty:
        return d
    stage = d["stage"].astype("str").where(d["stage"].notna(), i18n.MISSING)
    stage = stage.where(~d["closed_later"], i18n.t("stage.unknown", language))
    d = d.assign(stage=stage)
    order = d.groupby("stage")["probability"].mean().sort_values().index
    d["stage"] = pd.Categorical(d["stage"], categories=list(order), ordered=True)
    d = d.sort_values("stage", kind="stable")
    d["stage"] = d["stage"].astype("str")
    return d[["stage", "value", "probability", "closed_later"]]


def _activity_need(
    data: CrmData, row: pd.Series, scope: str, scope_id: str | None, scope_name: str, as_of: Any, language: str,
) -> tuple[list[Any], pd.DataFrame]:  # fmt: skip
    """Reverse funnel of the headline goal: what is still needed next to what was done."""
    from kpireport.goals import reverse_funnel

    kpi = str(row["kpi"])
    p = parse_period(str(row["period"]))
    period_name = i18n.fmt_period(p.label, language)
    kname = kpi_label(kpi, language, in_sentence=True)
    remaining = float(row["target"]) - (float(row["actual"]) if np.isfinite(row["actual"]) else 0.0)
    if remaining <= 0:
        return [
            _Prose(vt("need_done", language, scope=scope_name, kpi=kname, period=period_name))
        ], _tidy(None)
    day = _eval_day(p, as_of)
    need = reverse_funnel(
        data, kpi, remaining, scope, None if scope == Scope.ORGANISATION else scope_id, day
    )
    done = _scope_kpis(data, [p.to_date(day + pd.Timedelta(days=1)) if day < p.last_day else p], scope, scope_id,
                       ["deals_won", "deals_lost", "new_leads", "meetings_booked", "quotes_sent"], day)  # fmt: skip

    def d(k: str) -> float:
        m = done[done["kpi"] == k]
        return float(m["value"].iloc[0]) if len(m) else float("nan")

    rows = [
        ("need.deals", need.get("deals_needed"), d("deals_won")),
        ("need.opportunities", need.get("opportunities_needed"), d("deals_won") + d("deals_lost")),
        ("need.leads", need.get("leads_needed"), d("new_leads")),
        ("need.meetings", need.get("meetings_needed"), d("meetings_booked")),
        ("need.quotes", need.get("quotes_needed"), d("quotes_sent")),
    ]
    table = pd.DataFrame(
        {
            vt("col.activity", language): [vt(k, language) for k, _, _ in rows],
            vt("col.needed", language): [float(n) if n is not None else np.nan for _, n, _ in rows],
            vt("col.done", language, period=period_name): [x for _, _, x in rows],
        }
    )
    from kpireport.plots import html_table

    fmt0 = {c: (lambda v: i18n.fmt_number(v, language, decimals=0)) for c in table.columns[1:]}
    n = {k: need.get(f"{k}_needed") for k in ("deals", "leads", "meetings", "quotes")}
    sentence = vt(
        "need_sentence", language, kpi=kname, period=period_name, scope=scope_name,
        **{k: i18n.fmt_number(v, language, decimals=0) for k, v in n.items()},
    )  # fmt: skip
    tidy = pd.DataFrame(
        {"kpi": ["deals_needed", "leads_needed", "meetings_needed", "quotes_needed"], "scope": scope,
         "scope_id": scope_id, "period": p.label, "value": [n["deals"], n["leads"], n["meetings"], n["quotes"]]}
    )  # fmt: skip
    return [_Prose(sentence), html_table(table, fmt0, language)], tidy


def _seller_names(data: CrmData) -> dict[str, str]:
    s = data.tables["sellers"]
    return dict(zip(s["seller_id"].astype("str"), s["name"].astype("str"), strict=True))


def _refuse_unknown(data: CrmData, scope: str, scope_id: str) -> None:
    """Raise for a team/seller the data does not have (a typo), with the nearest valid ones.

    A team that exists but has no sellers keeps its "No data" report.
    """
    import difflib

    from kpireport.errors import KpiError

    sellers = data.tables.get("sellers")
    if sellers is None or not len(sellers):
        return
    column = "team" if scope == Scope.TEAM else "seller_id"
    known = sorted({str(x) for x in sellers[column].dropna()})
    if str(scope_id) in known:
        return
    near = difflib.get_close_matches(str(scope_id), known, n=3, cutoff=0.6)
    if scope == Scope.TEAM:
        folded = {k.casefold().replace("-", " "): k for k in known}
        hit = folded.get(str(scope_id).casefold().replace("-", " "))
        near = [hit] if hit and hit not in near else near
    hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else "."
    raise KpiError(
        f"The {scope} '{scope_id}' is not in the data{hint} Valid: "
        + ", ".join(known[:12])
        + (" ..." if len(known) > 12 else "")
        + "."
    )


#: the series a track record leads with (its sentence), in order of preference
TRACK_HEADLINE = (("won_value", "month"), ("revenue", "month"), ("won_value", "quarter"))
#: grains in the order a track record lists them
GRAIN_ORDER = {"month": 0, "quarter": 1, "week": 2, "year": 3, "span": 4, "day": 5}


def _streak_text(streak: int, language: str) -> str:
    if abs(int(streak)) == 1:
        return i18n.t("track.hit_one" if streak > 0 else "track.miss_one", language)
    key = "track.hit_streak" if streak > 0 else "track.miss_streak"
    return i18n.t(key, language, k=abs(int(streak)))


def track_record_section(
    data: CrmData, scope: str, scope_id: str, as_of: Any, language: str
) -> Section:
    """The last 12 finished goals of each (KPI, grain) series of a seller or team.

    A sentence on the headline series ("8 of the last 12 monthly order intake
    goals reached; 3 in a row") and a table: one row per series with a strip
    of ✓ (reached) / ✗ (missed), oldest first, the count reached and the
    streak (:func:`kpireport.goals.goal_history`).
    """
    from kpireport.goals import goal_history
    from kpireport.goals.history import track_record
    from kpireport.plots import Html

    # may continue on the next page: a scorecard then stays on two pages
    sec = Section("track_record", i18n.t("heading.track_record", language), keep_together=False)
    day = _day(as_of)
    tr = track_record(goal_history(data, scope, scope_id, as_of=day))
    if tr.empty:
        sec.sentence(i18n.t("track.none", language))
        return sec
    tr = tr.assign(_g=tr["grain"].map(GRAIN_ORDER).fillna(9)).sort_values(["_g", "kpi"])
    for kpi, grain in TRACK_HEADLINE:
        m = tr[(tr["kpi"] == kpi) & (tr["grain"] == grain)]
        if len(m):
            r = m.iloc[0]
            sec.sentence(
                i18n.t(
                    "track.sentence",
                    language,
                    reached=r["reached_count"],
                    n=r["count"],
                    grain=i18n.t(f"grain.{grain}", language),
                    kpi=kpi_label(kpi, language, in_sentence=True),
                    streak=_streak_text(r["streak"], language),
                )  # fmt: skip
            )
            break
    t = i18n.t
    out = ['<table class="kpi-table report-table goal-table track-table"><thead><tr>']
    for h, cls in ((t("col.goal", language), ""), (t("col.record", language), ""),
                   (t("col.reached", language), NUM), (t("col.streak", language), "")):  # fmt: skip
        out.append(f"<th{cls}>{_esc(h)}</th>")
    out.append("</tr></thead><tbody>")
    for _, r in tr.iterrows():
        label = t("track.goal", language, kpi=kpi_label(str(r["kpi"]), language),
                  grain=t(f"grain_label.{r['grain']}", language))  # fmt: skip
        marks = []
        for period, reached, att in r["outcomes"]:
            tip = f"{i18n.fmt_period(period, language)}: {_pct(att, language)}"
            cls, mark = ("tr-hit", "✓") if reached else ("tr-miss", "✗")
            marks.append(f'<span class="{cls}" title="{_esc(tip)}">{mark}</span>')
        reached = t("track.reached_of", language, reached=r["reached_count"], n=r["count"])
        cells = [(_esc(label), ""), ('<span class="tr-strip">' + "".join(marks) + "</span>", ""),
                 (_esc(reached), NUM), (_esc(_streak_text(r["streak"], language)), "")]  # fmt: skip
        out.append("<tr>" + "".join(f"<td{c}>{v}</td>" for v, c in cells) + "</tr>")
    out.append("</tbody></table>")
    sec.add(Html("".join(out)))
    return sec
