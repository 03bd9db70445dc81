"""What each dashboard page shows, as escaped HTML built on the server from the report's own blocks.

Design decisions
----------------
* **Same numbers as the reports.** Every number comes from the public
  pipeline (:func:`kpireport.compute_kpis`, :func:`kpireport.evaluate_goals`,
  :func:`kpireport.cumulative_curve` through the report views' development
  curve) and is drawn with the report's own blocks
  (:func:`kpireport.report.views.kpi_card_block`, ``goal_table``,
  ``development_curve_figure``, the reverse funnel and pipeline helpers of the
  team report, :mod:`kpireport.plots`). This module only chooses and arranges.
* **A page is data.** :func:`build_page` returns a :class:`Page`: a title, an
  ordered list of HTML blocks (charts as embedded PNG) and the tidy table of
  the numbers shown (``kpi, scope, scope_id, period, value``), so a test can
  compare what a reader sees with :func:`kpireport.compute_kpis`.
* **Permission is decided before anything is built.** :func:`build_page`
  takes the user's :class:`~kpireport.dashboard.access.Grants` and returns the
  "not permitted" page — which names neither the scope nor any number — for a
  scope the user may not see; pages of permitted scopes link only to
  permitted scopes (a team page lists a seller only when the user may open
  it). CRM text reaches HTML only through :func:`html.escape`.
* **Development curves of the running periods.** For the chosen day (``as_of``
  cut to the chosen period's end) the team and seller pages show the curves of
  the month, the ISO week and the quarter containing it, for the chosen KPI:
  with pace and forecast cone where a goal exists, the cumulative actual alone
  where none does.
"""

from __future__ import annotations

import dataclasses
import html
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from kpireport.constants import Scope
from kpireport.dashboard.access import Grants
from kpireport.dashboard.store import DataStore, Snapshot

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

#: page kinds, in the order of the page selector
VIEWS = ("overview", "team", "seller", "goal")
#: KPIs offered in the KPI selector (additive KPIs with goals in practice)
CURVE_KPIS = ("won_value", "deals_won", "revenue", "new_leads", "meetings_booked", "quotes_sent")
DEFAULT_KPI = "won_value"
NOT_PERMITTED = "Not permitted"
#: matplotlib's rc state is process-global: one figure is drawn at a time
_DRAW = threading.RLock()


def esc(x: object) -> str:
    """HTML-escape CRM text (quotes included)."""
    return html.escape("" if x is None else str(x), quote=True)


@dataclass(frozen=True)
class Selection:
    """What the visitor asked for (all text, as it comes from the URL or the selectors)."""

    view: str = "overview"
    scope_id: str | None = None
    period: str = "current-month"
    kpi: str = DEFAULT_KPI
    goal_scope: str = Scope.ORGANISATION.value

    def query(self) -> str:
        """The URL query that reproduces this selection (``team=SMB&period=2026-11``)."""
        q: dict[str, str] = {}
        if self.view in ("team", "seller"):
            q[self.view] = str(self.scope_id)
        elif self.view == "goal":
            q["view"] = "goal"
            if self.goal_scope != Scope.ORGANISATION:
                q[self.goal_scope] = str(self.scope_id)
        q["period"] = self.period
        if self.kpi != DEFAULT_KPI or self.view == "goal":
            q["kpi"] = self.kpi
        return urlencode(q)

    @property
    def scope(self) -> str:
        """The scope the page is about (organisation, team or seller)."""
        if self.view == "goal":
            return self.goal_scope
        return Scope.ORGANISATION.value if self.view == "overview" else self.view


@dataclass
class Page:
    """One page: title, HTML blocks in order, the numbers shown, and whether it was permitted."""

    title: str
    blocks: list[str] = field(default_factory=list)
    kpis: pd.DataFrame = field(default_factory=pd.DataFrame)
    permitted: bool = True
    seconds: float = 0.0

    def html(self) -> str:
        """All blocks as one HTML string."""
        return "".join(self.blocks)


def selection_from_args(args: dict[str, Any], default: Selection) -> Selection:
    """A :class:`Selection` from URL query arguments (``pn.state.session_args``: bytes lists)."""

    def get(name: str) -> str | None:
        v = args.get(name)
        if v is None:
            return None
        v = v[0] if isinstance(v, list | tuple) else v
        v = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        return v.strip() or None

    period = get("period") or default.period
    kpi = get("kpi") or default.kpi
    team, seller, view = get("team"), get("seller"), get("view")
    if view == "goal":
        if seller:
            return Selection("goal", seller, period, kpi, "seller")
        if team:
            return Selection("goal", team, period, kpi, "team")
        return Selection("goal", None, period, kpi, Scope.ORGANISATION.value)
    if seller:
        return Selection("seller", seller, period, kpi)
    if team:
        return Selection("team", team, period, kpi)
    if view == "overview":
        return Selection("overview", None, period, kpi)
    return Selection(default.view, default.scope_id, period, kpi, default.goal_scope)


def default_selection(grants: Grants, snap: Snapshot | None) -> Selection:
    """Where a user lands without a query: the organisation, else their first team or seller."""
    if grants.organisation or snap is None:
        return Selection()
    if grants.teams:
        return Selection("team", sorted(grants.teams)[0])
    if grants.sellers:
        return Selection("seller", sorted(grants.sellers)[0])
    return Selection()


def permitted(sel: Selection, grants: Grants, snap: Snapshot) -> bool:
    """May the user see the scope of ``sel``? Unknown ids are "not permitted" unless org-wide."""
    scope = sel.scope
    if scope == Scope.ORGANISATION:
        return grants.organisation
    sid = str(sel.scope_id)
    known = sid in snap.teams if scope == Scope.TEAM else sid in snap.sellers
    if not known and not grants.organisation:
        return False
    return grants.allows(scope, sid, snap.team_of)


def scope_options(grants: Grants, snap: Snapshot) -> dict[str, str]:
    """Selector label -> value (``org``, ``team:X``, ``seller:S``) of every permitted scope."""
    out: dict[str, str] = {}
    if grants.organisation:
        out["Organisation"] = "org"
    for t in snap.teams:
        if grants.allows(Scope.TEAM, t, snap.team_of):
            out[f"Team · {t}"] = f"team:{t}"
    for sid, name in sorted(snap.sellers.items(), key=lambda kv: (kv[1], kv[0])):
        if grants.allows(Scope.SELLER, sid, snap.team_of):
            out[f"Seller · {name} ({sid})"] = f"seller:{sid}"
    return out


def period_options(as_of: Any) -> dict[str, str]:
    """Label -> period label: the running month, week and quarter, then past months, quarters, weeks."""
    from kpireport.periods import containing

    day = pd.Timestamp(as_of)
    m, w, q = (containing(day, g) for g in ("month", "week", "quarter"))
    out = {
        f"This month ({m.label})": m.label,
        f"This week ({w.label})": w.label,
        f"This quarter ({q.label})": q.label,
    }
    p = m
    for _ in range(24):
        p = p.previous()
        out[p.label] = p.label
    p = q
    for _ in range(8):
        p = p.previous()
        out[p.label] = p.label
    p = w
    for _ in range(12):
        p = p.previous()
        out[p.label] = p.label
    return out


# ------------------------------------------------------------------ shared computations
def _eval_day(p: Any, as_of: Any) -> pd.Timestamp:
    return min(pd.Timestamp(as_of).normalize(), p.last_day)


def _goals_table(snap: Snapshot) -> pd.DataFrame:
    from kpireport.goals import load_goals

    g = snap.goals if snap.goals is not None else load_goals(snap.data)
    return g if g is not None else pd.DataFrame()


def evaluated_goals(
    store: DataStore,
    snap: Snapshot,
    scope: str,
    ids: list[str] | None,
    labels: list[str],
    as_of: Any,
) -> pd.DataFrame:
    """Goals of ``scope`` (and ``ids``) for these period labels, evaluated at each period's day (cached)."""
    from kpireport.goals import RESULT_COLUMNS, evaluate_goals
    from kpireport.periods import parse_period

    def compute() -> pd.DataFrame:
        g = _goals_table(snap)
        if g.empty:
            return pd.DataFrame(columns=list(RESULT_COLUMNS))
        g = g[(g["scope"] == scope) & g["period"].isin(labels)]
        if ids is not None:
            g = g[g["scope_id"].astype("str").isin([str(i) for i in ids])]
        frames = []
        for label in labels:
            sub = g[g["period"] == label]
            if len(sub):
                day = _eval_day(parse_period(label), as_of)
                frames.append(evaluate_goals(snap.data, sub, as_of=day.date()))
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=list(RESULT_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    key = ("goals", scope, tuple(ids) if ids is not None else None, tuple(labels), str(as_of))
    return store.cached(snap, key, compute)


#: size of every dashboard chart, in inches (600 × 510 px at the report's 150 dpi): three
#: fit side by side on a desktop and one fills a phone's width with ~10 px text, so no
#: chart is shrunk to unreadable text or scrolled sideways (the reports' 17 × 8 cm A4
#: size would need either)
CHART_SIZE = (4.0, 3.4)


def _compact(fig: Any, size: tuple[float, float] = CHART_SIZE) -> Any:
    """Resize a report figure to :data:`CHART_SIZE` and re-flow its legend into two columns."""
    from kpireport.plots.theme import SMALL

    fig.set_size_inches(*size)
    if not fig.legends:
        return fig
    old = fig.legends[0]
    handles, labels = list(old.legend_handles), [t.get_text() for t in old.texts]
    n = len(handles)
    ncol0 = min(n, 4)
    nrow0 = -(-n // ncol0)
    # the report legend is stored column by column for ncol0 columns: back to reading order
    slots = [
        (r * ncol0 + c) for c in range(ncol0) for r in range(nrow0) if c < min(ncol0, n - r * ncol0)
    ]
    reading = [
        hl
        for _, hl in sorted(
            zip(slots, zip(handles, labels, strict=True), strict=True), key=lambda x: x[0]
        )
    ]
    ncol = 2
    nrow = -(-n // ncol)
    grid = [reading[r * ncol : (r + 1) * ncol] for r in range(nrow)]
    ordered = [grid[r][c] for c in range(ncol) for r in range(nrow) if c < len(grid[r])]
    old.remove()
    fig.legend(
        handles=[h for h, _ in ordered], labels=[lab for _, lab in ordered],
        loc="outside lower center", ncol=ncol, frameon=False, handlelength=2.4,
        columnspacing=1.2, fontsize=SMALL,
    )  # fmt: skip
    return fig


def _pipeline_chart(pipe: pd.DataFrame, currency: str, lang: str) -> Any:
    """The report's pipeline-by-stage chart, at dashboard size: stage names slanted, bar labels smaller."""
    from kpireport.plots import pipeline_by_stage
    from kpireport.plots.theme import FONT_SIZE, SMALL

    with _DRAW:
        fig = pipeline_by_stage(pipe, currency=currency, title="", language=lang)
        fig.set_size_inches(*CHART_SIZE)
        for ax in fig.axes:
            ax.tick_params(axis="x", labelrotation=30, labelsize=SMALL)
            ax.tick_params(axis="y", labelsize=SMALL)
            ax.xaxis.label.set_fontsize(FONT_SIZE)
            ax.yaxis.label.set_fontsize(FONT_SIZE)
            for lab in ax.get_xticklabels():
                lab.set_horizontalalignment("right")
            for text in ax.texts:
                text.set_fontsize(6)
        for leg in fig.legends:
            for text in leg.get_texts():
                text.set_fontsize(SMALL)
    return fig


def _figure(fig: Any, alt: str) -> str:
    from kpireport.report.views import figure_html

    with _DRAW:
        return figure_html(_compact(fig), alt=alt)


def _section(title: str, *parts: str, cls: str = "") -> str:
    body = "".join(parts)
    return f'<section class="dash-section {cls}"><h2>{esc(title)}</h2>{body}</section>'


def _p(text: str, cls: str = "prose") -> str:
    return f'<p class="{cls}">{esc(text)}</p>'


def _link(sel: Selection, text: str) -> str:
    return f'<a class="dash-link" href="?{esc(sel.query())}">{esc(text)}</a>'


def _scope_name(snap: Snapshot, scope: str, sid: str | None) -> str:
    if scope == Scope.ORGANISATION:
        return snap.data.organisation
    if scope == Scope.SELLER:
        return f"{snap.sellers.get(str(sid), sid)} ({sid})"
    return str(sid)


# ------------------------------------------------------------------ pages
def build_page(
    store: DataStore, snap: Snapshot, sel: Selection, grants: Grants, as_of: Any
) -> Page:
    """The page for ``sel`` as seen by a user with ``grants`` (cached per snapshot and selection)."""
    from kpireport.errors import KpiReportError
    from kpireport.periods import parse_period

    t0 = time.perf_counter()
    if not permitted(sel, grants, snap):
        return not_permitted_page()
    try:
        p = parse_period(sel.period, as_of)
    except KpiReportError as exc:
        return Page("Unknown period", [_p(str(exc), "dash-error")], seconds=0.0)
    # One cache entry serves every user who may see the page: its only grant-dependent
    # parts are links to sellers of a team page, and whoever may see team X may see
    # all of its sellers (see access.Grants.allows).
    sel = dataclasses.replace(sel, period=p.label)
    key = ("page", sel, str(as_of))

    def compute() -> Page:
        if sel.view == "overview":
            return overview_page(store, snap, p, sel, grants, as_of)
        if sel.view == "goal":
            return goal_page(store, snap, p, sel, as_of)
        return scope_page(store, snap, p, sel, grants, as_of)

    try:
        page = store.cached(snap, key, compute)
    except KpiReportError as exc:
        return Page("Cannot show this page", [_p(str(exc), "dash-error")])
    return dataclasses.replace(page, seconds=time.perf_counter() - t0)


def not_permitted_page() -> Page:
    """The page for a scope the user may not see: names nothing, shows nothing."""
    return Page(
        NOT_PERMITTED,
        [
            '<div class="dash-denied"><h2>Not permitted</h2>'
            "<p>You do not have access to this page. Choose one of your scopes above, "
            "or ask the dashboard's administrator for access.</p></div>"
        ],
        permitted=False,
    )


def overview_page(
    store: DataStore, snap: Snapshot, p: Any, sel: Selection, grants: Grants, as_of: Any
) -> Page:
    """Organisation: KPI cards vs goal and last year, goals board by status, teams side by side."""
    from kpireport.kpis import compute_kpis
    from kpireport.report.views import ORG_CARD_KPIS, TEAM_COLUMNS, _fmt, kpi_card_block

    data = snap.data
    lang = "en"
    org_goals = evaluated_goals(store, snap, Scope.ORGANISATION.value, None, [p.label], as_of)
    team_goals = evaluated_goals(store, snap, Scope.TEAM, list(snap.teams), [p.label], as_of)
    day = _eval_day(p, as_of)
    cards, shown = kpi_card_block(
        data, p, Scope.ORGANISATION.value, None, ORG_CARD_KPIS, day, org_goals, lang
    )
    blocks = [_section("Key figures", str(cards), cls="dash-cards")]
    frames = [shown]

    board = (
        pd.concat([x for x in (org_goals, team_goals) if len(x)], ignore_index=True)
        if (len(org_goals) or len(team_goals))
        else pd.DataFrame()
    )
    blocks.append(_section("Goals board", goals_board(board, snap, sel, p, data.currency)))

    tk = compute_kpis(data, [p], by=Scope.TEAM, kpis=list(TEAM_COLUMNS), as_of=day)
    tk = tk[tk["scope_id"].isin(snap.teams)]
    frames.append(tk[["kpi", "scope", "scope_id", "period", "value"]])
    rows = []
    head = "".join(f'<th class="num">{esc(_kpi_label(k))}</th>' for k in TEAM_COLUMNS)
    for team in snap.teams:
        sub = tk[tk["scope_id"] == team].set_index("kpi")["value"]
        cells = "".join(
            f'<td class="num">{esc(_fmt(k, sub.get(k, np.nan), lang, data.currency))}</td>'
            for k in TEAM_COLUMNS
        )
        name = (
            _link(Selection("team", team, sel.period, sel.kpi), team)
            if grants.allows(Scope.TEAM, team, snap.team_of)
            else esc(team)
        )
        rows.append(f'<tr data-team="{esc(team)}"><td>{name}</td>{cells}</tr>')
    table = (
        '<div class="dash-scroll"><table class="kpi-table report-table dash-teams"><thead><tr>'
        f"<th>Team</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )
    blocks.append(_section(f"Teams side by side · {_period_name(p.label)}", table))

    head_row = _headline(org_goals, p.label, sel.kpi)
    if head_row is not None:
        blocks.append(
            _section(
                "Development curve",
                _curve(data, head_row, Scope.ORGANISATION.value, None, day, lang),
            )
        )
    return Page(
        f"{data.organisation} · {_period_name(p.label)}",
        blocks,
        pd.concat([f for f in frames if len(f)], ignore_index=True),
    )


def goals_board(
    goals: pd.DataFrame, snap: Snapshot, sel: Selection, p: Any, currency: str,
    by_period: bool = False, cls: str = "",
) -> str:  # fmt: skip
    """Tiles coloured by status: scope (or period), KPI, actual of target, probability, badge.

    ``by_period`` heads each tile with its period instead of its scope (a team or seller
    page, where every goal has the same scope).
    """
    from kpireport.plots import status_badge
    from kpireport.report.views import _fmt

    if goals is None or len(goals) == 0:
        return _p("No goals for this period.", "no-data")
    order = {"off_track": 0, "at_risk": 1, "missed": 2, "on_track": 3, "achieved": 4}
    g = goals.assign(_o=goals["status"].map(order).fillna(5)).sort_values(
        ["_o", "scope", "scope_id", "kpi"]
    )
    tiles = []
    for _, r in g.iterrows():
        scope = str(r["scope"])
        sid = None if scope == Scope.ORGANISATION else str(r["scope_id"])
        who = "Organisation" if scope == Scope.ORGANISATION else sid
        if by_period:
            who = _period_name(str(r["period"]))
        actual, target = float(r["actual"]), float(r["target"])
        pct = f"{actual / target:.0%}" if target and np.isfinite(actual) else "–"
        prob = r.get("probability")
        prob_txt = f" · {float(prob):.0%} chance" if prob is not None and pd.notna(prob) else ""
        link = Selection("goal", sid, str(r["period"]), str(r["kpi"]), scope)
        tiles.append(
            f'<a class="goal-tile tile-{esc(r["status"])}" href="?{esc(link.query())}" '
            f'data-status="{esc(r["status"])}">'
            f'<div class="tile-who">{esc(who)}</div>'
            f'<div class="tile-kpi">{esc(_kpi_label(str(r["kpi"])))}</div>'
            f'<div class="tile-num">{esc(_fmt(str(r["kpi"]), actual, "en", currency))} '
            f'<span class="tile-of">of {esc(_fmt(str(r["kpi"]), target, "en", currency))} · {pct}{prob_txt}</span></div>'
            f"{status_badge(str(r['status']))}</a>"
        )
    return f'<div class="goals-board {cls}">{"".join(tiles)}</div>'


def scope_page(
    store: DataStore, snap: Snapshot, p: Any, sel: Selection, grants: Grants, as_of: Any
) -> Page:
    """Team or seller: cards, development curves of month/week/quarter, goals, activity, pipeline."""
    from kpireport.kpis import compute_kpis
    from kpireport.periods import containing
    from kpireport.report.views import (
        SELLER_CARD_KPIS,
        TEAM_CARD_KPIS,
        _activity_need,
        _open_pipeline,
        goal_table,
        kpi_card_block,
        vt,
    )

    data, lang, cur = snap.data, "en", snap.data.currency
    scope, sid = sel.view, str(sel.scope_id)
    name = _scope_name(snap, scope, sid)
    day = _eval_day(p, as_of)
    running = [containing(day, g) for g in ("month", "week", "quarter")]
    labels = list(dict.fromkeys([p.label, *(r.label for r in running)]))
    goals = evaluated_goals(store, snap, scope, [sid], labels, as_of)
    card_kpis = TEAM_CARD_KPIS if scope == Scope.TEAM else SELLER_CARD_KPIS
    own = goals[goals["period"] == p.label] if len(goals) else goals
    cards, shown = kpi_card_block(data, p, scope, sid, card_kpis, day, own, lang)
    blocks = [_section("Key figures", str(cards), cls="dash-cards")]
    frames = [shown]

    curves = []
    for period in dict.fromkeys(
        [*running] if p.label in {r.label for r in running} else [p, *running]
    ):
        row = _headline(goals, period.label, sel.kpi, exact=True)
        if row is not None:
            curves.append(_curve(data, row, scope, sid, day, lang))
        else:
            curves.append(
                _no_goal_curve(data, _goals_table(snap), sel.kpi, period, scope, sid, day, lang)
            )
    blocks.append(
        _section(
            f"Development curve · {_kpi_label(sel.kpi)}",
            _p(
                "Cumulative actual against the goal's pace (linear, and seasonal from last year) "
                "and the forecast cone (80 % and 95 %) of the month, week and quarter containing "
                f"{day:%d %B %Y}."
            ),
            f'<div class="dash-curves">{"".join(curves)}</div>',
        )
    )

    gt = (
        goal_table(goals, lang, cur) if len(goals) else _p("No goals for these periods.", "no-data")
    )
    links = "".join(
        "<li>"
        + _link(
            Selection("goal", sid, str(r["period"]), str(r["kpi"]), scope),
            f"{_kpi_label(str(r['kpi']))} · {_period_name(str(r['period']))}",
        )
        + "</li>"
        for _, r in goals.iterrows()
    )
    blocks.append(
        _section(
            "Goals",
            # a wide table on a screen, tiles on a phone (the status column would be off-screen)
            f'<div class="dash-scroll dash-goals-table">{gt}</div>',
            f'<ul class="goal-links">{links}</ul>' if links else "",
            goals_board(goals, snap, sel, p, cur, by_period=True, cls="dash-goals-tiles")
            if len(goals)
            else "",
        )
    )
    if len(goals):
        frames.append(
            goals[["kpi", "scope", "scope_id", "period", "actual"]].rename(
                columns={"actual": "value"}
            )
        )

    need_row = None
    for label in (p.label, *(r.label for r in running)):
        m = goals[
            (goals["period"] == label) & goals["kpi"].isin(["won_value", "revenue", "deals_won"])
        ]
        m = m[~m["status"].isin(["achieved", "missed"])] if len(m) else m
        if len(m):
            need_row = m.iloc[0]
            break
    if need_row is not None:
        parts, tidy = _activity_need(data, need_row, scope, sid, name, day, lang)
        html_parts = [
            _p(str(b)) if isinstance(b, str) and not hasattr(b, "_repr_html_") else str(b)
            for b in parts
        ]
        blocks.append(_section("Activity vs what the goal still needs", *html_parts))
        frames.append(tidy)
    else:
        blocks.append(
            _section(
                "Activity vs what the goal still needs",
                _p("No running goal on order intake, revenue or deals won for this scope."),
            )
        )

    pipe = _open_pipeline(data, scope, sid, day, lang)
    unknown = len(pipe) > 0 and bool(pipe["closed_later"].any())
    blocks.append(
        _section(
            f"Open pipeline on {day:%d %B %Y}",
            *([_p(vt("pipeline_unknown", lang, date=f"{day:%d %B %Y}"))] if unknown else []),
            _figure(_pipeline_chart(pipe, cur, lang), "Pipeline by stage"),
        )
    )

    if scope == Scope.TEAM:
        active = _active_sellers(data, p)
        members = [
            s
            for s, t in snap.team_of.items()
            if t == sid and s in active and grants.allows(Scope.SELLER, s, snap.team_of)
        ]
        if members:
            lb = compute_kpis(
                data, [p], by=Scope.SELLER, kpis=["won_value", "deals_won"], as_of=day
            )
            lb = lb[lb["scope_id"].isin(members)]
            wide = lb.pivot_table(index="scope_id", columns="kpi", values="value", aggfunc="first")
            wide = wide.reindex(members).sort_values(
                "won_value", ascending=False, na_position="last"
            )
            from kpireport.report.views import _fmt

            rows = "".join(
                f"<tr><td>{_link(Selection('seller', s, sel.period, sel.kpi), snap.sellers.get(s, s))}</td>"
                f'<td class="num">{esc(_fmt("won_value", wide.loc[s, "won_value"], lang, cur))}</td>'
                f'<td class="num">{esc(_fmt("deals_won", wide.loc[s, "deals_won"], lang, cur))}</td></tr>'
                for s in wide.index
            )
            blocks.append(
                _section(
                    "Sellers",
                    '<div class="dash-scroll"><table class="kpi-table report-table"><thead><tr><th>Seller</th>'
                    f'<th class="num">{esc(_kpi_label("won_value"))}</th><th class="num">'
                    f"{esc(_kpi_label('deals_won'))}</th></tr></thead><tbody>{rows}</tbody></table></div>",
                )
            )
            frames.append(lb[["kpi", "scope", "scope_id", "period", "value"]])
    kind = "Team" if scope == Scope.TEAM else "Seller"
    return Page(
        f"{kind} {name} · {_period_name(p.label)}",
        blocks,
        pd.concat([f for f in frames if len(f)], ignore_index=True),
    )


def _active_sellers(data: CrmData, p: Any) -> set[str]:
    """Seller ids employed during any day of ``p`` (``active_from``/``active_to`` when present)."""
    s = data.tables["sellers"]
    keep = pd.Series(True, index=s.index)
    if "active_from" in s:
        start = pd.to_datetime(s["active_from"], errors="coerce")
        keep &= start.isna() | (start <= p.last_day)
    if "active_to" in s:
        end = pd.to_datetime(s["active_to"], errors="coerce")
        keep &= end.isna() | (end >= p.start)
    return set(s.loc[keep, "seller_id"].astype("str"))


def goal_page(store: DataStore, snap: Snapshot, p: Any, sel: Selection, as_of: Any) -> Page:
    """One goal: its facts (target, pace, forecast, probability, status, SMART lint) and attainment over time."""
    from kpireport.report.views import _fmt

    data, lang, cur = snap.data, "en", snap.data.currency
    scope = sel.goal_scope
    sid = None if scope == Scope.ORGANISATION else str(sel.scope_id)
    goals = evaluated_goals(store, snap, scope, None if sid is None else [sid], [p.label], as_of)
    m = goals[goals["kpi"] == sel.kpi] if len(goals) else goals
    name = _scope_name(snap, scope, sid)
    title = f"Goal · {name} · {_kpi_label(sel.kpi)} · {_period_name(p.label)}"
    if m.empty:
        return Page(title, [_p("There is no goal for this KPI, scope and period.", "no-data")])
    r = m.iloc[0]
    day = _eval_day(p, as_of)
    f = lambda v: _fmt(sel.kpi, v, lang, cur)  # noqa: E731
    prob = r.get("probability")
    facts = [
        ("Target", f(r["target"])),
        ("Actual to date", f(r["actual"])),
        ("Expected by now (pace)", f(r["expected"])),
        ("Forecast at period end", f(r["forecast"])),
        (
            "80 % range",
            f"{f(r['lo_80'])} – {f(r['hi_80'])}" if pd.notna(r.get("lo_80")) else "–",
        ),
        ("Probability of reaching the target", f"{float(prob):.0%}" if pd.notna(prob) else "–"),
        ("Needed per remaining day", f(r["required_per_day"])),
        ("Owner", r.get("owner") if pd.notna(r.get("owner")) else "–"),
        ("Agreed by", r.get("agreed_by") if pd.notna(r.get("agreed_by")) else "–"),
    ]
    from kpireport.plots import status_badge

    rows = "".join(f"<tr><th>{esc(k)}</th><td class='num'>{esc(v)}</td></tr>" for k, v in facts)
    rows += f"<tr><th>Status</th><td class='num'>{status_badge(str(r['status']))}</td></tr>"
    lint = r.get("lint")
    smart = (
        _p(f"SMART check: {lint}", "dash-lint")
        if isinstance(lint, str) and lint.strip()
        else _p(
            "SMART check: no findings (specific KPI, numeric target, scope, period with an end)."
        )
    )
    blocks = [
        _section(
            "The goal", f'<table class="kpi-table report-table dash-facts">{rows}</table>', smart
        ),
        _section("Development curve", _curve(data, r, scope, sid, day, lang)),
        _section(
            "Attainment over time",
            _attainment_chart(attainment_history(data, _goals_table(snap), r, scope, sid, day), r),
        ),
    ]
    tidy = pd.DataFrame(
        [{"kpi": sel.kpi, "scope": scope, "scope_id": sid, "period": p.label, "value": r["actual"]}]
    )
    return Page(title, blocks, tidy)


# ------------------------------------------------------------------ charts
def _headline(goals: pd.DataFrame, label: str, kpi: str, exact: bool = False) -> pd.Series | None:
    if goals is None or len(goals) == 0:
        return None
    g = goals[goals["period"] == label]
    m = g[g["kpi"] == kpi]
    if len(m):
        return m.iloc[0]
    if exact:
        return None
    for k in CURVE_KPIS:
        m = g[g["kpi"] == k]
        if len(m):
            return m.iloc[0]
    return None


def _curve(data: CrmData, row: pd.Series, scope: str, sid: str | None, day: Any, lang: str) -> str:
    from kpireport.report.views import development_curve_figure

    title = f"{_kpi_label(str(row['kpi']))} · {_period_name(str(row['period']))}"
    with _DRAW:
        fig = development_curve_figure(data, row, scope, sid, day, lang, title=title)
    return _figure(fig, title)


def _cone(
    data: CrmData, kpi: str, p: Any, scope: str, sid: str | None, day: Any, cum: pd.Series
) -> Any:
    """The forecast cone (mean, 80 % and 95 %) from ``day`` to the period end, as the reports draw it.

    The same simulation as :func:`kpireport.report.views.development_curve_figure`
    (:func:`kpireport.forecasting.period_total_distribution`, 1000 paths, seed 0),
    which needs no goal: the cone is a forecast of the period total.
    """
    from kpireport.forecasting import period_total_distribution
    from kpireport.kpis import kpi_series

    day = pd.Timestamp(day)
    if day >= p.last_day:
        return None
    daily = kpi_series(
        data, kpi, scope, sid, grain="day", start=(day - pd.Timedelta(days=730)).date(),
        end=day.date(), as_of=day,
    )  # fmt: skip
    totals = period_total_distribution(daily, p.start, p.end, day, n_paths=1000, seed=0)
    actual = float(cum.loc[day]) if day in cum.index and np.isfinite(cum.loc[day]) else 0.0
    rest = pd.date_range(day, p.last_day, freq="D")
    w = np.linspace(0, 1, len(rest))
    q = dict(
        zip(
            ("mean", "lo_80", "hi_80", "lo_95", "hi_95"),
            (totals.mean(), *np.quantile(totals, [0.1, 0.9, 0.025, 0.975])),
            strict=True,
        )
    )
    return pd.DataFrame({c: actual + w * (v - actual) for c, v in q.items()}, index=rest)


def month_goal_pace(
    goals: pd.DataFrame, kpi: str, p: Any, scope: str, sid: str | None
) -> tuple[pd.Series, float, list[str]] | None:
    """Linear pace of ``p`` from the monthly goals covering its days, pro rata per day.

    For a week or quarter without a goal of its own: each day of ``p`` is worth
    ``month target / days in that month`` (a week across two months takes its
    days from both goals). Returns (cumulative pace per day, implied target, month
    labels), or None when a month of ``p`` has no "at least" goal for this KPI and scope.
    """
    from kpireport.periods import containing

    if goals is None or goals.empty:
        return None
    g = goals[(goals["kpi"] == kpi) & (goals["scope"] == scope)]
    if sid is not None:
        g = g[g["scope_id"].astype("str") == str(sid)]
    if "direction" in g:
        g = g[g["direction"].fillna("at_least").astype("str") != "at_most"]
    targets = g.drop_duplicates("period").set_index("period")["target"]
    days = p.days_index()
    per_day, months = [], []
    for d in days:
        m = containing(d, "month")
        if m.label not in targets.index or pd.isna(targets[m.label]):
            return None
        per_day.append(float(targets[m.label]) / m.days)
        if m.label not in months:
            months.append(m.label)
    pace = pd.Series(np.cumsum(per_day), index=days)
    return pace, float(pace.iloc[-1]), months


def _no_goal_curve(
    data: CrmData, goals: pd.DataFrame, kpi: str, p: Any, scope: str, sid: str | None, day: Any,
    lang: str,
) -> str:  # fmt: skip
    """A period without a goal of its own: cumulative actual, forecast cone, and the pace the
    monthly goals imply pro rata (:func:`month_goal_pace`) when every month of it has one."""
    from kpireport.kpis import cumulative_curve, get_kpi
    from kpireport.plots import development_curve

    if not get_kpi(kpi).additive:
        return _p(f"{_kpi_label(kpi)} is a ratio: it has no cumulative curve.", "no-data")
    sid = None if scope == Scope.ORGANISATION else sid
    cut = min(pd.Timestamp(day), p.last_day)
    cum = cumulative_curve(data, kpi, p, scope=scope, scope_id=sid, as_of=cut)
    cone = _cone(data, kpi, p, scope, sid, cut, cum)
    derived = month_goal_pace(goals, kpi, p, scope, sid)
    if derived is not None:
        pace, target, months = derived
        source = " + ".join(_period_name(m) for m in months)
        note = f"pace: {source} goal pro rata"
    else:
        pace, target = None, None
        note = "no goal"
    head = f"{_kpi_label(kpi)} · {_period_name(p.label)}"
    title, alt = f"{head}\n({note})", f"{head} · {note}"
    with _DRAW:
        fig = development_curve(
            cum, target=target, linear_pace=pace, forecast_cone=cone, as_of=cut,
            unit=str(get_kpi(kpi).unit), currency=data.currency, kpi=kpi, title=title,
            language=lang,
        )  # fmt: skip
    return _figure(fig, alt)


def attainment_history(
    data: CrmData, goals: pd.DataFrame, row: pd.Series, scope: str, sid: str | None, day: Any,
    n: int = 12,
) -> pd.DataFrame:  # fmt: skip
    """The same goal (KPI, scope, grain) over its last ``n`` periods up to ``row``'s period.

    One row per period that has a goal: ``period, target, actual, share`` (actual /
    target), ``reached`` (False while the period runs) and ``running``. Actuals come from
    :func:`kpireport.compute_kpis` (the running period cut at ``day``).
    """
    from kpireport.kpis import compute_kpis
    from kpireport.periods import parse_period

    kpi, p = str(row["kpi"]), parse_period(str(row["period"]))
    at_most = str(row.get("direction")) == "at_most"
    g = goals[(goals["kpi"] == kpi) & (goals["scope"] == scope)] if len(goals) else goals
    if sid is not None and len(g):
        g = g[g["scope_id"].astype("str") == str(sid)]
    targets = g.drop_duplicates("period").set_index("period")["target"] if len(g) else {}
    periods = [q for q in (p.shift(-k) for k in range(n - 1, -1, -1)) if q.label in targets]
    cols = ["period", "target", "actual", "share", "reached", "running"]
    if not periods:
        return pd.DataFrame(columns=cols)
    k = compute_kpis(data, periods, by=scope, kpis=[kpi], as_of=day)
    if sid is not None:
        k = k[k["scope_id"].astype("str") == str(sid)]
    actual = k.set_index(k["period"].astype("str"))["value"]
    rows = []
    for q in periods:
        target = float(targets[q.label])
        a = float(actual.get(q.label, np.nan))
        running = pd.Timestamp(day) < q.last_day
        ok = (a <= target) if at_most else (a >= target)
        rows.append(
            {
                "period": q.label, "target": target, "actual": a,
                "share": a / target if target else np.nan,
                "reached": bool(ok) and not running and np.isfinite(a), "running": running,
            }
        )  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _attainment_chart(hist: pd.DataFrame, row: pd.Series) -> str:
    """Bars: share of the target reached per period (the running one hatched), 100 % line."""
    from kpireport.plots.theme import BLUE, STATUS_COLOURS, new_figure, theme_context

    kpi = str(row["kpi"])
    at_most = str(row.get("direction")) == "at_most"
    if hist.empty:
        return _p("No earlier goals for this KPI and scope.", "no-data")
    share = hist["share"].to_numpy(dtype=float) * 100
    colours = [
        BLUE if r.running else STATUS_COLOURS["achieved" if r.reached else "missed"]
        for r in hist.itertuples()
    ]
    with _DRAW, theme_context():
        fig, ax = new_figure(figsize=CHART_SIZE)
        x = np.arange(len(hist))
        bars = ax.bar(x, np.nan_to_num(share), color=colours, width=0.65, zorder=3)
        for b, r in zip(bars, hist.itertuples(), strict=True):
            if r.running:
                b.set_hatch("////")
                b.set_facecolor("#a9c4de")
                b.set_edgecolor(BLUE)
        for xi, v in zip(x, share, strict=True):
            ax.annotate(
                "–" if not np.isfinite(v) else f"{v:.0f}%", (xi, np.nan_to_num(v)),
                xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6}, zorder=5,
            )  # fmt: skip
        ax.axhline(100, color="#1b7a3a", linewidth=1.2, zorder=4)
        ax.set_xticks(x, [str(q) for q in hist["period"]], rotation=60 if len(x) > 6 else 0)
        ax.set_ylabel("% of target")
        ax.set_ylim(0, max(120.0, float(np.nanmax(share, initial=0)) + 15))
        sense = "lower is better: ≤ 100 % reached" if at_most else "100 % = target reached"
        ax.set_title(f"{_kpi_label(kpi)} · share of target per period\n({sense})")
        from matplotlib.patches import Patch

        ax.legend(
            handles=[
                Patch(color=STATUS_COLOURS["achieved"], label="Reached"),
                Patch(color=STATUS_COLOURS["missed"], label="Not reached"),
                Patch(facecolor="#a9c4de", edgecolor=BLUE, hatch="////", label="Running (to date)"),
            ],
            loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=3, frameon=False,
        )  # fmt: skip
    return _figure(fig, "Attainment over time")


def _kpi_label(kpi: str) -> str:
    from kpireport.i18n import kpi_label

    return kpi_label(kpi, "en")


def _period_name(label: str) -> str:
    from kpireport.i18n import fmt_period

    return fmt_period(label, "en")
