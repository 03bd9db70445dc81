"""Presentation logic of the report notebooks: numbers → cards, tables, charts and sentences.

A report notebook is thin (docs/ARCHITECTURE.md, STYLE "thin notebooks"): its parameters
cell, one call to a ``*_view`` function of this module, and one
``view.show(name)`` per section. Everything a reader sees — which KPIs, which
comparisons, which goals, the sentences — is decided here, where it can be
imported, reused and tested.

Design decisions
----------------
* **A view is data.** ``team_report_view(...)`` etc. return a :class:`ReportView`:
  an ordered list of :class:`Section` objects (heading, prose, HTML blocks,
  figures) plus the tidy KPI table of the numbers shown (``view.kpis``), which
  the notebook hands to :func:`kpireport.report.record_kpis`.
* **One HTML output per section.** :meth:`ReportView.show` displays a section as
  a single ``<section>`` with its heading, sentences, tables and charts (PNG at
  :data:`CHART_DPI` dpi, embedded as ``data:`` URIs). A heading therefore never
  ends up alone at the bottom of a page (``break-inside: avoid`` on small
  sections, ``break-after: avoid`` on headings) and the report is
  self-contained.
* **Escaping.** CRM text (team, seller, company names) only reaches HTML
  through :func:`html.escape` or the escaping helpers of
  :mod:`kpireport.plots.cards`.
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

import base64
import html
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpireport import i18n
from kpireport.constants import Scope
from kpireport.i18n import check_language, fmt_percent, fmt_value, kpi_label
from kpireport.periods import Period, _day, containing, parse_period

log = logging.getLogger("kpireport")

#: resolution of the PNG charts embedded in reports (prints sharp on A4)
CHART_DPI = 150
#: KPIs on the team report's cards, in order
TEAM_CARD_KPIS = (
    "won_value", "deals_won", "hit_rate", "avg_deal_value",
    "new_leads", "meetings_booked", "sales_cycle_days", "pipeline_value",
)  # fmt: skip
SELLER_CARD_KPIS = (
    "won_value", "deals_won", "hit_rate", "sales_cycle_days",
    "meetings_booked", "quotes_sent", "new_leads", "pipeline_value",
)  # fmt: skip
ORG_CARD_KPIS = (
    "won_value", "revenue", "deals_won", "hit_rate",
    "new_leads", "new_customers", "weighted_pipeline", "cac",
)  # fmt: skip
#: the finance report's customer-value cards: CLV beside its drivers
CLV_CARD_KPIS = ("clv", "products_per_customer", "customer_tenure_months")
#: KPIs compared side by side per team in the management pack
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


def vt(key: str, language: str, **fmt: Any) -> str:
    """A report-view text (``view.*`` in :data:`kpireport.i18n.MESSAGES`), formatted with ``fmt``."""
    return i18n.t(f"view.{key}", language, **fmt)


def _esc(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


# ------------------------------------------------------------------ view model
@dataclass
class Section:
    """One part of a report: a heading, sentences, and HTML blocks or figures, in order."""

    name: str
    heading: str
    blocks: list[Any] = field(default_factory=list)
    page_break: bool = False
    keep_together: bool = True

    def add(self, block: Any) -> Section:
        """Append a block: an HTML string, a figure, or a sentence (wrapped in ``<p>``)."""
        self.blocks.append(block)
        return self

    def sentence(self, text: str) -> Section:
        """Append a generated sentence (plain text, escaped)."""
        self.blocks.append(_Prose(text))
        return self

    def to_html(self) -> str:
        """The section as one self-contained ``<section>`` element."""
        cls = "report-section"
        if self.page_break:
            cls += " page-break"
        if self.keep_together:
            cls += " avoid-break"
        parts = [f'<section class="{cls}" data-section="{_esc(self.name)}">']
        if self.heading:
            parts.append(f"<h2>{_esc(self.heading)}</h2>")
        for block in self.blocks:
            parts.append(_block_html(block))
        parts.append("</section>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        from kpireport.resources.styles import scoped

        return scoped(self.to_html())  # styled in JupyterLab as in the HTML/PDF


class _Prose(str):
    """A generated sentence (escaped when rendered)."""


def figure_html(fig: Any, alt: str = "") -> str:
    """A figure as ``<figure><img src="data:image/png;base64,…"></figure>`` at :data:`CHART_DPI`."""
    from kpireport.plots.theme import to_png

    data = base64.b64encode(to_png(fig, dpi=CHART_DPI)).decode("ascii")
    return (
        f'<figure class="chart"><img alt="{_esc(alt)}" '
        f'src="data:image/png;base64,{data}"/></figure>'
    )


def _block_html(block: Any) -> str:
    from kpireport.plots.cards import Html

    if isinstance(block, _Prose):
        return f'<p class="prose">{_esc(block)}</p>'
    if isinstance(block, Html):
        return str(block)  # markup without its notebook-only scoped styles
    if hasattr(block, "savefig"):
        title = ""
        try:
            title = block.axes[0].get_title() if block.axes else ""
        except Exception:  # noqa: BLE001 - alt text is best effort
            title = ""
        return figure_html(block, alt=title)
    if hasattr(block, "_repr_html_"):
        return str(block._repr_html_())
    return f'<p class="prose">{_esc(block)}</p>'


def no_data(language: str) -> str:
    """The explicit "No data for this period" paragraph."""
    from kpireport.plots import Html

    return Html(f'<p class="no-data">{_esc(i18n.t("heading.no_data", language))}</p>')


@dataclass
class ReportView:
    """What a report shows: ordered sections and the tidy KPI table of the numbers shown."""

    title: str
    language: str
    sections: list[Section] = field(default_factory=list)
    kpis: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["kpi", "scope", "scope_id", "period", "value"]
        )
    )

    def section(self, name: str) -> Section:
        """The section called ``name`` (raises ``KeyError`` listing the names)."""
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(f"no section '{name}'; sections: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        """Section names in report order."""
        return [s.name for s in self.sections]

    def show(self, *names: str) -> None:
        """Display these sections (all when no name is given) as HTML in the notebook."""
        from IPython.display import HTML, display

        from kpireport.resources.styles import scoped

        for s in (
            self.sections if not names else [self.section(n) for n in names if n in self.names]
        ):
            display(HTML(scoped(s.to_html())))

    def record(self) -> None:
        """Hand the numbers shown to the report runner (:func:`kpireport.report.record_kpis`)."""
        from kpireport.report.record import record_kpis

        if len(self.kpis):
            record_kpis(self.kpis)

    def to_html(self) -> str:
        """Every section, concatenated (for tests and previews)."""
        return "".join(s.to_html() for s in self.sections)


# ------------------------------------------------------------------ loading
def load_data(source: str | None, as_of: str | None = None) -> Any:
    """Load a report's ``source``: a run snapshot, any source, or ``"demo"``.

    ``"demo"`` (the notebooks' default, so each runs on its own in JupyterLab)
    gives the seeded demo data as of ``as_of``. There is no fallback: an empty
    ``source`` is an error, never the demo company.

    Raises
    ------
    kpireport.errors.SourceError
        When ``source`` is empty.
    """
    from kpireport.report.params import DEMO_SOURCE

    if source == DEMO_SOURCE:
        from kpireport.demo import DEFAULT_AS_OF, demo_data

        return demo_data(as_of=as_of or DEFAULT_AS_OF)
    if not source:
        from kpireport.errors import SourceError

        raise SourceError(
            "The report has no data source; set 'source' (a path, URL or source YAML, "
            f"or '{DEMO_SOURCE}' for the fictional demo company)."
        )
    from kpireport.report.snapshot import load_source

    return load_source(source)


def demo_source(folder: str | Path | None = None, as_of: str | None = None) -> Path:
    """Path of the demo source YAML for ``as_of``: :func:`kpireport.demo.demo_source`.

    ``folder`` defaults to a temporary folder keyed on ``as_of``, the seed, the
    scale and the kpireport version, so a folder written for another day is
    never reused.
    """
    from kpireport.demo import demo_source as _demo_source

    return _demo_source(folder, as_of)


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
    data: Any,
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
    if scope != "organisation":
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
    data: Any, scope: str, scope_ids: Iterable[str] | None, labels: Iterable[str]
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
    data: Any, goals: pd.DataFrame, p: Period, quarter: Period | None, as_of: Any
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
    data: Any, p: Period, scope: str, scope_id: str | None, kpis: Sequence[str], as_of: Any,
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
    data: Any, row: pd.Series, scope: str, scope_id: str | None, as_of: Any, language: str,
    title: str | None = None,
) -> Any:  # fmt: skip
    """The development curve of one goal: cumulative actual vs linear and seasonal pace vs forecast cone."""
    from kpireport.forecasting import period_total_distribution
    from kpireport.kpis import cumulative_curve, kpi_series
    from kpireport.plots import development_curve

    kpi = str(row["kpi"])
    p = parse_period(str(row["period"]))
    day = _eval_day(p, as_of)
    sid = None if scope == "organisation" else scope_id
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


def _team_sellers(data: Any, team: str) -> pd.DataFrame:
    s = data.tables["sellers"]
    return s[s["team"].astype("str") == str(team)]


def _funnel_counts(
    data: Any, p: Period, scope: str, scope_id: str | None, as_of: Any, kpis: pd.DataFrame
) -> pd.Series:
    """Leads → SQL → deals created → won in ``p`` for the scope."""
    from kpireport.goals.evaluate import deals_in_scope

    deals = data.tables["deals"]
    end = min(p.end, _day(as_of) + pd.Timedelta(days=1))
    d = deals[(deals["created_at"] >= p.start) & (deals["created_at"] < end)]
    d = deals_in_scope(data, d, scope, scope_id)
    return pd.Series(
        {
            "leads": _value(kpis, "new_leads", p.label),
            "sql": _value(kpis, "sql", p.label),
            "deals": float(len(d)),
            "won": _value(kpis, "deals_won", p.label),
        }
    )


def _open_pipeline(
    data: Any, scope: str, scope_id: str | None, as_of: Any, language: str = "en"
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
    data: Any, row: pd.Series, scope: str, scope_id: str | None, scope_name: str, as_of: Any, language: str,
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
        data, kpi, remaining, scope, None if scope == "organisation" else scope_id, day
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


def _seller_names(data: Any) -> dict[str, str]:
    s = data.tables["sellers"]
    return dict(zip(s["seller_id"].astype("str"), s["name"].astype("str"), strict=True))


# ------------------------------------------------------------------ team report
def _refuse_unknown(data: Any, scope: str, scope_id: str) -> None:
    """Raise for a team/seller the data does not have (a typo), with the nearest valid ones.

    A team that exists but has no sellers keeps its "No data" report.
    """
    import difflib

    from kpireport.errors import KpiError

    sellers = data.tables.get("sellers")
    if sellers is None or not len(sellers):
        return
    column = "team" if scope == "team" else "seller_id"
    known = sorted({str(x) for x in sellers[column].dropna()})
    if str(scope_id) in known:
        return
    near = difflib.get_close_matches(str(scope_id), known, n=3, cutoff=0.6)
    if scope == "team":
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


def team_report_view(
    data: Any, team: str, period: str, as_of: str, language: str = "en"
) -> ReportView:
    """Everything the team report shows for one team and one period.

    Sections: ``summary`` (sentences and KPI cards), ``development`` (curve of
    the headline goal, and of the running quarter), ``goals``, ``funnel``,
    ``leaderboard``, ``activity`` (reverse funnel), ``pipeline``.
    """
    from kpireport.plots import funnel, leaderboard, pipeline_by_stage

    lang = check_language(language)
    p = parse_period(period, as_of)
    view = ReportView(i18n.t("report.team_report", lang), lang)
    cur = data.currency
    if _team_sellers(data, team).empty:
        _refuse_unknown(data, "team", team)
        s = Section("summary", vt("summary", lang))
        s.add(no_data(lang)).sentence(vt("unknown_scope", lang, scope=team))
        view.sections.append(s)
        return view
    quarter = _running_quarter(p, as_of)
    labels = [p.label] + ([quarter.label] if quarter else [])
    goals = _evaluate(data, _goals_for(data, "team", [team], labels), p, quarter, as_of)
    cards, shown = kpi_card_block(data, p, "team", team, TEAM_CARD_KPIS, as_of, goals, lang)
    frames = [shown, _goal_kpis(goals)]

    summary = Section("summary", vt("summary", lang))
    head = _headline(goals, p.label)
    if head is not None:
        summary.sentence(goal_sentence(head, team, lang, cur))
    qhead = (
        _headline(goals, quarter.label)
        if quarter is not None and quarter.label != p.label
        else None
    )
    if qhead is not None:
        summary.sentence(goal_sentence(qhead, team, lang, cur))
    summary.add(cards)
    view.sections.append(summary)

    dev = Section("development", i18n.t("heading.development_curve", lang))
    if head is None and qhead is None:
        dev.sentence(vt("no_headline_goal", lang))
    for row in (head, qhead):
        if row is not None:
            dev.add(development_curve_figure(
                data, row, "team", team, as_of, lang,
                title=f"{kpi_label(str(row['kpi']), lang)} · {i18n.fmt_period(row['period'], lang)}"))  # fmt: skip
    if qhead is not None:
        dev.sentence(vt("ytd_curve_note", lang))
    view.sections.append(dev)

    gsec = Section("goals", i18n.t("heading.goals", lang))
    gsec.add(goal_table(goals, lang, cur))
    view.sections.append(gsec)

    kp = _scope_kpis(data, [p], "team", team, ["new_leads", "sql", "deals_won"], as_of)
    fsec = Section("funnel", i18n.t("heading.funnel", lang))
    fsec.sentence(vt("funnel_note", lang, period=i18n.fmt_period(p.label, lang)))
    counts = _funnel_counts(data, p, "team", team, as_of, kp)
    fsec.add(funnel(counts, language=lang, title=""))
    view.sections.append(fsec)

    from kpireport.kpis import compute_kpis

    sellers = _team_sellers(data, team)
    lb = compute_kpis(data, [p], by="seller", kpis=["won_value"], as_of=as_of)
    lb = lb[lb["scope_id"].isin(sellers["seller_id"])].copy()
    names = _seller_names(data)
    lb["name"] = lb["scope_id"].map(names)
    lsec = Section("leaderboard", i18n.t("heading.seller_leaderboard", lang))
    lsec.add(leaderboard(lb, value_col="value", label_col="name", unit="currency", currency=cur,
                         kpi="won_value", title="", language=lang))  # fmt: skip
    frames.append(_tidy(lb))
    view.sections.append(lsec)

    asec = Section("activity", i18n.t("heading.activity_vs_need", lang))
    need_row = (
        qhead if qhead is not None and str(qhead["status"]) not in ("achieved", "missed") else head
    )
    if need_row is not None and str(need_row["kpi"]) in ("won_value", "revenue", "deals_won"):
        blocks, tidy = _activity_need(data, need_row, "team", team, team, as_of, lang)
        for b in blocks:
            asec.add(b)
        frames.append(tidy)
    else:
        asec.sentence(vt("no_headline_goal", lang))
    view.sections.append(asec)

    psec = Section("pipeline", i18n.t("heading.pipeline", lang))
    psec.sentence(vt("pipeline_asof", lang, date=i18n.fmt_date(_day(as_of), lang),
                     period=i18n.fmt_period(p.label, lang)))  # fmt: skip
    pipe = _open_pipeline(data, "team", team, as_of, lang)
    if len(pipe) and pipe["closed_later"].any():
        psec.sentence(vt("pipeline_unknown", lang, date=i18n.fmt_date(_day(as_of), lang)))
    psec.add(pipeline_by_stage(pipe, currency=cur, title="", language=lang))
    view.sections.append(psec)
    view.sections.append(track_record_section(data, "team", team, as_of, lang))
    view.kpis = (
        pd.concat([f for f in frames if len(f)], ignore_index=True)
        if any(len(f) for f in frames)
        else _tidy(None)
    )
    return view


# ------------------------------------------------------------------ seller scorecard
def _mask_inactive(data: Any, seller: str, series: pd.Series) -> pd.Series:
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


def seller_scorecard_view(
    data: Any, seller: str, period: str, as_of: str, language: str = "en"
) -> ReportView:
    """One seller: KPI cards with goals, activity vs goals, won value and hit-rate trend."""
    from kpireport.kpis import kpi_series
    from kpireport.plots import kpi_trend

    lang = check_language(language)
    p = parse_period(period, as_of)
    view = ReportView(i18n.t("report.seller_scorecard", lang), lang)
    name = _seller_names(data).get(str(seller))
    if name is None:
        _refuse_unknown(data, "seller", seller)
        s = Section("summary", vt("summary", lang))
        s.add(no_data(lang)).sentence(vt("unknown_scope", lang, scope=seller))
        view.sections.append(s)
        return view
    goals = _evaluate(data, _goals_for(data, "seller", [seller], [p.label]), p, None, as_of)
    cards, shown = kpi_card_block(data, p, "seller", seller, SELLER_CARD_KPIS, as_of, goals, lang)
    summary = Section("summary", vt("summary", lang))
    head = _headline(goals, p.label)
    if head is not None:
        summary.sentence(goal_sentence(head, name, lang, data.currency))
    summary.add(cards)
    view.sections.append(summary)

    gsec = Section("goals", vt("activity_goals", lang))
    gsec.add(goal_table(goals, lang, data.currency))
    view.sections.append(gsec)

    start = (p.start - pd.DateOffset(months=11)).date()
    end = min(p.last_day, _eval_day(p, as_of)).date()
    tsec = Section("trend", i18n.t("heading.trend", lang))
    won = kpi_series(
        data, "won_value", "seller", seller, grain="month", start=start, end=end, as_of=as_of
    )
    hr = kpi_series(
        data, "hit_rate", "seller", seller, grain="month", start=start, end=end, as_of=as_of
    )
    won, hr = _mask_inactive(data, seller, won), _mask_inactive(data, seller, hr)
    tsec.add(kpi_trend(won, unit="currency", currency=data.currency, kpi="won_value",
                       title=vt("won_trend", lang), language=lang))  # fmt: skip
    tsec.add(
        kpi_trend(
            hr,
            unit="percent",
            kpi="hit_rate",
            title=i18n.t("heading.hit_rate_trend", lang),
            language=lang,
        )
    )
    view.sections.append(tsec)
    trend = pd.DataFrame(
        {"kpi": ["hit_rate"] * len(hr), "scope": "seller", "scope_id": seller,
         "period": [f"{d:%Y-%m}" for d in hr.index], "value": hr.to_numpy()}
    )  # fmt: skip
    view.sections.append(track_record_section(data, "seller", seller, as_of, lang))
    view.kpis = pd.concat(
        [f for f in (shown, _goal_kpis(goals), trend) if len(f)], ignore_index=True
    )
    return view


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
    data: Any, scope: str, scope_id: str, as_of: Any, language: str
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


# ------------------------------------------------------------------ management pack
def management_pack_view(
    data: Any, period: str, as_of: str, language: str = "en", history: str | None = None
) -> ReportView:
    """The organisation and every team: attainment overview, teams side by side, risks, quarter forecast.

    With ``history`` (the scheduled run's output folder, or any path inside
    it such as the report's ``source``), the forecast section opens with how
    last month's published forecast for this period compares with the actual
    ("last month we forecast … ; the actual is …"), and the forecast of next
    month's order intake is recorded so that next month's pack can grade it
    (convention of :mod:`kpireport.history.snapshots`).
    """
    from kpireport.kpis import compute_kpis, kpi_series
    from kpireport.plots import goal_overview, html_table, kpi_trend

    lang = check_language(language)
    p = parse_period(period, as_of)
    cur = data.currency
    view = ReportView(i18n.t("report.management_pack", lang), lang)
    teams = sorted({str(t) for t in data.tables["sellers"]["team"].dropna()})
    quarter = _running_quarter(p, as_of)
    org_goals = _goals_for(
        data, "organisation", None, [p.label] + ([quarter.label] if quarter else [])
    )
    team_goals = _goals_for(data, "team", teams, [p.label] + ([quarter.label] if quarter else []))
    all_goals = (
        pd.concat([x for x in (org_goals, team_goals) if len(x)], ignore_index=True)
        if len(org_goals) or len(team_goals)
        else pd.DataFrame()
    )
    ev = _evaluate(data, all_goals, p, quarter, as_of)
    cards, shown = kpi_card_block(data, p, "organisation", None, ORG_CARD_KPIS, as_of,
                                  ev[ev["scope"] == "organisation"], lang)  # fmt: skip
    frames = [shown, _goal_kpis(ev)]

    summary = Section("summary", vt("summary", lang))
    month_goals = ev[ev["period"] == p.label]
    if len(month_goals):
        counts = month_goals["status"].value_counts()
    if len(month_goals) and not counts.get("on_track", 0) and not counts.get("at_risk", 0):
        # a finished period: "0 on track, 0 at risk and 13 off track" reads as a
        # running forecast; say achieved / missed like the badges do
        summary.sentence(vt(
            "goals_closed", lang, achieved=int(counts.get("achieved", 0)), total=len(month_goals),
            period=i18n.fmt_period(p.label, lang),
            missed=int(counts.get("missed", 0) + counts.get("off_track", 0))))  # fmt: skip
    elif len(month_goals):
        summary.sentence(i18n.t(
            "sentence.goals_summary", lang, achieved=int(counts.get("achieved", 0)), total=len(month_goals),
            on_track=int(counts.get("on_track", 0)), at_risk=int(counts.get("at_risk", 0)),
            off_track=int(counts.get("off_track", 0) + counts.get("missed", 0))))  # fmt: skip
    head = _headline(ev[ev["scope"] == "organisation"], p.label)
    if head is not None:
        summary.sentence(goal_sentence(head, data.organisation, lang, cur))
    summary.add(cards)
    view.sections.append(summary)

    osec = Section("attainment", i18n.t("heading.goal_attainment", lang))
    if len(month_goals):
        g = month_goals[
            month_goals["kpi"].isin(
                ["won_value", "revenue", "deals_won", "new_leads", "meetings_booked"]
            )
        ].copy()
        g["label"] = [
            f"{kpi_label(k, lang)} · {i18n.t('scope.organisation', lang) if s == 'organisation' else sid}"
            for k, s, sid in zip(g["kpi"], g["scope"], g["scope_id"], strict=True)
        ]
        fc = pd.to_numeric(g["forecast"], errors="coerce")
        g["attainment"] = (
            fc.where(fc.notna(), pd.to_numeric(g["actual"], errors="coerce")) / g["target"]
        )
        if len(g) < len(month_goals):
            osec.sentence(vt("goal_chart_note", lang))
        osec.add(goal_overview(g.drop(columns=["forecast"]), title="", language=lang))
    else:
        osec.sentence(i18n.t("sentence.no_goals", lang))
    view.sections.append(osec)

    tsec = Section("teams", i18n.t("heading.teams", lang), page_break=True)
    tk = compute_kpis(data, [p], by="team", kpis=list(TEAM_COLUMNS), as_of=as_of)
    tk = tk[tk["scope_id"].isin(teams)]
    frames.append(_tidy(tk))
    if tk.empty:
        tsec.add(no_data(lang))
    else:
        wide = tk.pivot_table(
            index="scope_id", columns="kpi", values="value", aggfunc="first", dropna=False
        )
        wide = wide.reindex(columns=[k for k in TEAM_COLUMNS if k in wide.columns]).reset_index()
        for k in ("won_value",):
            gg = ev[
                (ev["scope"] == "team") & (ev["kpi"] == k) & (ev["period"] == p.label)
            ].set_index("scope_id")
            wide["attainment"] = wide["scope_id"].map(
                lambda s, gg=gg: (
                    (gg.loc[s, "actual"] / gg.loc[s, "target"])
                    if s in gg.index and gg.loc[s, "target"]
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
        tsec.sentence(vt("teams_intro", lang, period=i18n.fmt_period(p.label, lang)))
        tsec.add(html_table(wide, fm, lang, columns=headers))
        tgoals = ev[(ev["scope"] == "team") & (ev["period"] == p.label)]
        if len(tgoals):
            tgoals = tgoals.sort_values(["scope_id", "kpi"])
            tsec.add(
                goal_table(
                    tgoals[tgoals["kpi"].isin(["won_value", "deals_won", "meetings_booked"])],
                    lang,
                    cur,
                    who=True,
                )
            )
    view.sections.append(tsec)

    rsec = Section("risks", i18n.t("heading.risks", lang), keep_together=False)
    risky = ev[
        ev["status"].isin(["at_risk", "off_track"])
        | ((ev["status"] == "missed") & ev["kpi"].isin(HEADLINE_KPIS))
    ]
    if risky.empty:
        rsec.sentence(i18n.t("sentence.no_risks", lang))
    else:
        rsec.sentence(vt("risks_intro", lang, n=len(risky)))
        order = {"off_track": 0, "at_risk": 1, "missed": 2}
        risky = (
            risky.assign(_o=risky["status"].map(order))
            .sort_values(["_o", "scope_id", "kpi"])
            .drop(columns="_o")
        )
        risky = risky.assign(
            scope_id=risky["scope_id"].where(
                risky["scope"] != "organisation", i18n.t("scope.organisation", lang)
            )
        )
        rsec.add(goal_table(risky, lang, cur, who=True))
    view.sections.append(rsec)

    qsec = Section("forecast", i18n.t("heading.quarter_forecast", lang), page_break=True)
    qg = ev[(ev["period"] == quarter.label)] if quarter is not None else ev.iloc[0:0]
    if len(qg):
        qsec.sentence(
            vt(
                "quarter_intro",
                lang,
                period=i18n.fmt_period(quarter.label, lang),
                date=i18n.fmt_date(as_of, lang),
            )
        )
        qsec.add(
            goal_table(
                qg.assign(
                    scope_id=qg["scope_id"].where(
                        qg["scope"] != "organisation", i18n.t("scope.organisation", lang)
                    )
                ),
                lang,
                cur,
                who=True,
            )
        )
        qhead = _headline(qg[qg["scope"] == "organisation"], quarter.label)
        if qhead is not None:
            qsec.add(development_curve_figure(
                data, qhead, "organisation", None, as_of, lang,
                title=f"{kpi_label(str(qhead['kpi']), lang)} · {i18n.fmt_period(quarter.label, lang)}"))  # fmt: skip
    else:
        qsec.sentence(i18n.t("sentence.no_goals", lang))
    from kpireport.forecasting import forecast

    end = _eval_day(p, as_of)
    series = kpi_series(data, "won_value", grain="month", start=(p.start - pd.DateOffset(months=35)).date(),
                        end=p.start.date(), as_of=end)  # fmt: skip
    fc = forecast(series, 3) if len(series) >= 6 else None
    graded = _graded_forecast(history, p, frames, lang, cur)
    if graded:
        qsec.sentence(graded)
    qsec.add(kpi_trend(series.iloc[-18:], forecast=fc, unit="currency", currency=cur, kpi="won_value",
                       title=vt("trend_org", lang), language=lang))  # fmt: skip
    view.sections.append(qsec)
    if fc is not None and len(fc):
        nxt = fc.iloc[0]
        frames.append(pd.DataFrame([{
            "kpi": "won_value", "scope": "organisation", "scope_id": None, "period": p.next().label,
            "value": np.nan, **{c: float(nxt[c]) for c in ("mean", "lo_80", "hi_80", "lo_95", "hi_95")},
        }]).rename(columns={"mean": "forecast"}))  # fmt: skip
    view.sections.append(goal_quality_section(data, as_of, lang, cur))
    view.kpis = pd.concat([f for f in frames if len(f)], ignore_index=True)
    return view


#: goals the Goal quality section checks: these scopes, periods starting within this many days
QUALITY_SCOPES = ("organisation", "team")
QUALITY_HORIZON_DAYS = 62


def _quality_goals(data: Any, as_of: Any) -> pd.DataFrame:
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


def goal_quality_section(data: Any, as_of: Any, language: str, currency: str) -> Section:
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
                below = "team" if r["scope"] == "organisation" else "seller"
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
        who = t("scope.organisation", language) if r["scope"] == "organisation" else r["scope_id"]
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

    actuals = pd.concat([_tidy(f) for f in frames if len(f)], ignore_index=True)
    try:
        fva = previous_forecast_vs_actual(history, p.label, kpis=["won_value"], actuals=actuals)
    except Exception as exc:  # an unreadable history must not sink the pack
        log.warning("no forecast-vs-actual for %s: %s", p.label, exc)
        return None
    fva = fva[(fva["scope"] == "organisation") & fva["actual"].notna()]
    if fva.empty:
        return None
    r = fva.iloc[0]
    money = lambda x: i18n.fmt_currency(float(x), cur, lang, decimals=0)  # noqa: E731
    inside = bool(r["lo_80"] <= r["actual"] <= r["hi_80"])
    return vt("graded_" + ("in" if inside else "out"), lang, period=i18n.fmt_period(p.label, lang),
              forecast=money(r["forecast"]), lo=money(r["lo_80"]), hi=money(r["hi_80"]),
              actual=money(r["actual"]))  # fmt: skip


# ------------------------------------------------------------------ finance growth
def finance_growth_view(
    data: Any, period: str, as_of: str, language: str = "en", top_n: int = 10
) -> ReportView:
    """Revenue MoM, YoY and like-for-like YTD, by team and for the top customers, and the seasonal view."""
    from kpireport.kpis import growth_table, kpi_series
    from kpireport.plots import growth_bars, html_table, yoy_months

    lang = check_language(language)
    p = parse_period(period, as_of)
    cur = data.currency
    view = ReportView(i18n.t("report.finance_growth", lang), lang)
    if data.tables.get("revenue") is None or len(data.tables["revenue"]) == 0:
        s = Section("summary", vt("summary", lang))
        s.add(no_data(lang))
        view.sections.append(s)
        return view
    day = _eval_day(p, as_of)
    org = growth_table(data, p, by="organisation", as_of=day)
    org = org[org["scope"] == "organisation"].iloc[:1]
    summary = Section("summary", vt("summary", lang))
    frames = []
    if len(org):
        r = org.iloc[0]
        summary.sentence(vt(
            "growth_org", lang, period=i18n.fmt_period(p.label, lang), value=_money(r["revenue"], lang, cur),
            mom=_pct(r["growth_mom"], lang, True), yoy=_pct(r["growth_yoy"], lang, True),
            ytd=_pct(r["growth_ytd"], lang, True)))  # fmt: skip
        from kpireport.plots import kpi_cards

        summary.add(kpi_cards([
            {"label": kpi_label("revenue", lang), "value": round(r["revenue"]), "unit": "currency",
             "delta_prev": r["growth_mom"], "delta_ly": r["growth_yoy"], "better": "higher"},
            {"label": vt("col.revenue_ytd", lang), "value": round(r["revenue_ytd"]), "unit": "currency",
             "delta_ly": r["growth_ytd"], "better": "higher"},
        ], lang, cur))  # fmt: skip
        frames.append(pd.DataFrame({
            "kpi": ["revenue", "revenue_growth_mom", "revenue_growth_yoy", "revenue_growth_ytd"],
            "scope": "organisation", "scope_id": None, "period": p.label,
            "value": [r["revenue"], r["growth_mom"], r["growth_yoy"], r["growth_ytd"]]}))  # fmt: skip
    # customer lifetime value and its drivers (how many products, how long a customer stays)
    clv_cards, clv_shown = kpi_card_block(
        data, p, "organisation", None, CLV_CARD_KPIS, as_of, pd.DataFrame(), lang
    )
    summary.add(clv_cards)
    frames.append(clv_shown)
    view.sections.append(summary)

    cols = {
        "scope_id": None, "revenue": kpi_label("revenue", lang), "growth_mom": vt("col.growth_mom", lang),
        "growth_yoy": vt("col.growth_yoy", lang), "revenue_ytd": vt("col.revenue_ytd", lang),
        "revenue_ytd_ly": vt("col.revenue_ytd_ly", lang), "growth_ytd": vt("col.growth_ytd", lang),
    }  # fmt: skip
    fm = {c: (lambda v: _money(v, lang, cur)) for c in ("revenue", "revenue_ytd", "revenue_ytd_ly")}
    fm.update(
        # one decimal, like the bar labels of the chart above the table ("+0.6%", not "+1%")
        {
            c: (lambda v: fmt_percent(v, lang, decimals=1, signed=True))
            for c in ("growth_mom", "growth_yoy", "growth_ytd")
        }  # fmt: skip
    )

    teams = growth_table(data, p, by="team", as_of=day)
    teams = (
        teams[teams["scope_id"] != "(unattributed)"]
        if "(unattributed)" in set(teams["scope_id"])
        else teams
    )
    tsec = Section("teams", vt("growth_by_team", lang))
    if teams.empty:
        tsec.add(no_data(lang))
    else:
        tsec.add(growth_bars(teams.rename(columns={"scope_id": "team"}), label_col="team",
                             columns=["growth_mom", "growth_yoy", "growth_ytd"], title="", language=lang))  # fmt: skip
        tsec.add(
            html_table(
                teams[list(cols)], fm, lang, columns={**cols, "scope_id": i18n.t("col.team", lang)}
            )
        )
        for k, c in (
            ("revenue", "revenue"),
            ("revenue_growth_mom", "growth_mom"),
            ("revenue_growth_yoy", "growth_yoy"),
            ("revenue_growth_ytd", "growth_ytd"),
        ):
            frames.append(
                pd.DataFrame(
                    {
                        "kpi": k,
                        "scope": "team",
                        "scope_id": teams["scope_id"].to_numpy(),
                        "period": p.label,
                        "value": teams[c].to_numpy(),
                    }
                )
            )
    view.sections.append(tsec)

    # kept together: the heading and intro must not be left alone at the foot of a page
    csec = Section("customers", i18n.t("heading.top_customers", lang))
    cust = growth_table(data, p, by="customer", as_of=day)
    cust = (
        cust[cust["scope_id"] != "(unattributed)"]
        .sort_values("revenue_ytd", ascending=False)
        .head(top_n)
    )
    if cust.empty:
        csec.add(no_data(lang))
    else:
        comp = data.tables.get("companies")
        names = (
            dict(zip(comp["company_id"].astype("str"), comp["name"].astype("str"), strict=True))
            if comp is not None
            else {}
        )
        cust = cust.assign(scope_id=[names.get(str(c), str(c)) for c in cust["scope_id"]])
        csec.sentence(vt("top_customers_intro", lang, n=len(cust)))
        csec.add(
            html_table(
                cust[list(cols)],
                fm,
                lang,
                columns={**cols, "scope_id": i18n.t("col.customer", lang)},
            )
        )
        frames.append(
            pd.DataFrame(
                {
                    "kpi": "revenue",
                    "scope": "customer",
                    "scope_id": cust["scope_id"].to_numpy(),
                    "period": p.label,
                    "value": cust["revenue"].to_numpy(),
                }
            )
        )
    view.sections.append(csec)

    ssec = Section("seasonal", i18n.t("heading.seasonal_view", lang))
    year = p.start.year
    this = kpi_series(
        data, "revenue", grain="month", start=f"{year}-01", end=p.last_day.date(), as_of=day
    )
    last = kpi_series(
        data, "revenue", grain="month", start=f"{year - 1}-01", end=f"{year - 1}-12", as_of=day
    )
    ssec.add(yoy_months(this, last, currency=cur, title="", language=lang))
    view.sections.append(ssec)
    view.kpis = (
        pd.concat([f for f in frames if len(f)], ignore_index=True) if frames else _tidy(None)
    )
    return view


# ------------------------------------------------------------------ explore
def explore_overview(data: Any, period: str, as_of: str, language: str = "en") -> ReportView:
    """A small overview for the exploration notebook: KPIs of the organisation and every team."""
    from kpireport.kpis import compute_kpis, pivot_kpis
    from kpireport.plots import html_table

    lang = check_language(language)
    p = parse_period(period, as_of)
    view = ReportView(i18n.t("report.explore", lang), lang)
    kpis = list(TEAM_COLUMNS)
    df = pd.concat(
        [compute_kpis(data, [p], by=by, kpis=kpis, as_of=as_of) for by in ("organisation", "team")],
        ignore_index=True,
    )
    s = Section("overview", i18n.t("heading.key_figures", lang))
    s.sentence(vt("explore_intro", lang, period=i18n.fmt_period(p.label, lang)))
    wide = pivot_kpis(df) if len(df) else df
    if isinstance(wide, pd.DataFrame) and len(wide):
        wide = wide.reset_index()
        keep = [c for c in wide.columns if c in ("scope", "scope_id", *kpis)]
        wide = wide[keep]
        fm = {k: (lambda v, k=k: _fmt(k, v, lang, data.currency)) for k in kpis}
        s.add(html_table(wide, fm, lang, columns={k: kpi_label(k, lang) for k in kpis}))
    else:
        s.add(no_data(lang))
    view.sections.append(s)
    view.kpis = _tidy(df)
    return view


__all__ = [
    "ReportView",
    "Section",
    "demo_source",
    "explore_overview",
    "finance_growth_view",
    "goal_sentence",
    "load_data",
    "management_pack_view",
    "seller_scorecard_view",
    "team_report_view",
    "vt",
]
