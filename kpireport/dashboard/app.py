"""The Panel session: selectors, URL, freshness line, error banner, page and PDF download.

Design decisions
----------------
* **One function per session.** :func:`create_session` runs for every
  visitor (Panel calls it per page load). It resolves the user from our own
  signed cookie (never Panel's ``pn.state.user``, which trusts an
  ``is_guest`` cookie), computes the user's grants, and builds only
  permitted content: the scope selector lists only permitted scopes, and a
  URL naming another scope gets the "not permitted" page. Everything the
  browser receives over the websocket comes from these objects, so nothing
  else can leak.
* **The URL carries the selection** (``?team=SMB&period=2026-11&kpi=won_value``):
  read once from the session arguments, written back with
  ``pn.state.location`` on every change, so a copied link reopens the view.
* **Selection change is cheap.** Pages come from the store's cache (computed
  once per data version, shared by all sessions); only the HTML pane's text
  is replaced.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kpireport.constants import Scope
from kpireport.dashboard import pages
from kpireport.dashboard.access import Grants, User
from kpireport.dashboard.pages import Selection, esc
from kpireport.dashboard.store import DataStore, Snapshot

log = logging.getLogger("kpireport")

#: name of the signed cookie that holds the logged-in user name
USER_COOKIE = "kpireport_user"
#: a login lasts this many days (then the user logs in again)
LOGIN_DAYS = 1


@dataclass
class AppContext:
    """Everything sessions share: the data store, the business day, the users (None: no auth)."""

    store: DataStore
    as_of: dt.date
    users: dict[str, User] | None = field(default=None, repr=False)
    cookie_secret: str = field(default="", repr=False)
    language: str = "en"
    stats: dict[str, Any] = field(default_factory=dict)


def session_user(ctx: AppContext, cookies: dict[str, str]) -> User | None:
    """The logged-in user from the signed cookie, or None."""
    from tornado.web import decode_signed_value

    if ctx.users is None:
        return None
    raw = cookies.get(USER_COOKIE)
    if not raw:
        return None
    name = decode_signed_value(ctx.cookie_secret, USER_COOKIE, raw, max_age_days=LOGIN_DAYS)
    return ctx.users.get(name.decode("utf-8")) if name else None


def dashboard_css() -> str:
    """The report stylesheet plus the dashboard's own rules (screen, phone width)."""
    from kpireport.report.render import _stylesheet

    return _stylesheet() + DASH_CSS


DASH_CSS = """
/* the report stylesheet declares its colours on :root, which matches nothing inside Panel's
   shadow DOM: declare them on the shadow host, or cards, badges and headers lose their colours */
:host { --ink: #1f2933; --muted: #616e7c; --rule: #d9dee3; --accent: #1f4e79; --good: #1b7a3a;
  --bad: #b3261e; --card: #f4f6f8;
  font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1f2933; width: 100%; }
.dash-page { max-width: 1200px; margin: 0 auto; }
.dash-page h1 { font-size: 1.5rem; margin: 0.3rem 0; color: #1f4e79; overflow-wrap: anywhere; }
.dash-section { margin: 0 0 1.2rem 0; }
.dash-section > h2 { font-size: 1.15rem; border-bottom: 1px solid #d9dee3; padding-bottom: 0.2rem; }
.dash-scroll { overflow-x: auto; max-width: 100%; }
/* a grid, not the report's flex row: a short last row keeps the card width */
.kpi-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: 0.6rem; }
.kpi-card { min-width: 0; padding: 0.55rem 0.7rem; }
.kpi-label { font-size: 0.72rem; }
.kpi-value { font-size: 1.35rem; }
.kpi-delta, .kpi-sub { font-size: 0.75rem; }
table { font-size: 0.85rem; }
.goals-board { display: grid; grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); gap: 0.6rem; }
.goal-tile { display: block; text-decoration: none; color: inherit; border-radius: 6px; padding: 0.5rem 0.7rem;
  border: 1px solid #d9dee3; border-left: 6px solid #9aa5b1; background: #f4f6f8; }
.goal-tile:hover { box-shadow: 0 1px 4px rgba(0,0,0,.15); }
.tile-achieved, .tile-on_track { border-left-color: #1b7a3a; background: #edf7f0; }
.tile-at_risk { border-left-color: #b7791f; background: #fdf6e7; }
.tile-off_track, .tile-missed { border-left-color: #b3261e; background: #fbeceb; }
.tile-who { font-weight: bold; overflow-wrap: anywhere; }
.tile-kpi { color: #616e7c; font-size: 0.8rem; }
.tile-num { font-size: 1.05rem; margin: 0.2rem 0; }
.tile-of { color: #616e7c; font-size: 0.78rem; }
/* charts are drawn at 600 px (pages.CHART_SIZE): never wider than that, never scrolled */
.dash-curves { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 20rem), 1fr)); gap: 0.5rem; }
figure.chart { margin: 0.3rem 0; }
figure.chart img { width: 100%; max-width: 600px; height: auto; }
.goal-links { padding-left: 1.2rem; columns: 2 16rem; font-size: 0.85rem; }
.dash-goals-tiles { display: none; }
/* the first column (team, seller, goal) stays in view when a wide table scrolls sideways */
.dash-scroll th:first-child, .dash-scroll td:first-child { position: sticky; left: 0; z-index: 1; }
.dash-scroll td:first-child { background: #fff; }
.dash-scroll tbody tr:nth-child(even) td:first-child { background: #fafbfc; }
.dash-denied { border: 1px solid #b3261e; background: #fbeceb; padding: 1rem; border-radius: 6px; }
.dash-error { color: #b3261e; }
.dash-lint { color: #8a5a00; }
.dash-facts { max-width: 36rem; }
.dash-facts th { width: 55%; }
@media (max-width: 600px) {
  .dash-page h1 { font-size: 1.2rem; }
  .kpi-cards { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.4rem; }
  .dash-goals-table, .goal-links { display: none; }
  .dash-goals-tiles { display: grid; }
  .kpi-value { font-size: 1.1rem; white-space: normal; }
  .goals-board { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.4rem; }
  .goal-tile { padding: 0.35rem 0.45rem; border-left-width: 4px; }
  .tile-num { font-size: 0.9rem; }
  .goal-links { columns: 1; }
  table { font-size: 0.75rem; }
  th, td { padding: 0.25rem 0.35rem; }
}
"""

BANNER_CSS = """
.dash-banner { background: #b3261e; color: #fff; padding: 0.6rem 0.9rem; border-radius: 6px; font-weight: bold; }
.dash-fresh { color: #616e7c; font-size: 0.8rem; }
.dash-user { color: #616e7c; font-size: 0.8rem; text-align: right; }
"""


def freshness_html(
    snap: Snapshot | None, page_seconds: float | None = None, as_of: Any = None
) -> str:
    """ "Data as of … · loaded … in … s · figures as of …" (and the page's compute time).

    "Data as of" is the newest date in the data; "figures as of" the dashboard's today
    (``--as-of``), the day every "to date" number and curve is cut at.
    """
    if snap is None:
        return ""
    loaded = snap.loaded_at.strftime("%Y-%m-%d %H:%M:%S")
    text = f"Data as of {snap.data_as_of or '–'} · loaded {loaded} in {snap.load_seconds:.1f} s"
    if as_of is not None:
        text += f" · figures as of {as_of}"
    if page_seconds is not None:
        text += f" · page ready in {page_seconds:.2f} s"
    return f'<div class="dash-fresh" data-version="{snap.version}">{esc(text)}</div>'


def banner_html(store: DataStore, snap: Snapshot | None) -> str:
    """The red banner when the source failed to (re-)load; empty otherwise."""
    err = store.error
    if not err:
        return ""
    if snap is None:
        return (
            f'<div class="dash-banner" role="alert">The data could not be loaded: {esc(err)}</div>'
        )
    return (
        '<div class="dash-banner" role="alert">The source could not be re-read: '
        f"{esc(err)} — showing the last good data (as of {esc(snap.data_as_of)}, loaded "
        f"{snap.loaded_at:%Y-%m-%d %H:%M}).</div>"
    )


def _scope_value(sel: Selection) -> str:
    if sel.scope == Scope.ORGANISATION:
        return "org"
    return f"{sel.scope}:{sel.scope_id}"


def create_session(ctx: AppContext) -> Any:
    """Build the page of one visitor (called by Panel for every session)."""
    import panel as pn

    t0 = time.perf_counter()
    doc = pn.state.curdoc
    request = doc.session_context.request if doc and doc.session_context else None
    cookies = dict(request.cookies) if request is not None else {}
    args = dict(request.arguments) if request is not None else {}
    if ctx.users is not None:
        user = session_user(ctx, cookies)
        if user is None:  # the server refuses unauthenticated sessions; belt and braces
            return pn.pane.HTML("<p>Please log in.</p>")
        grants, who = user.grants, user.name
    else:
        grants, who = Grants.everything(), None

    store = ctx.store
    snap = store.current()
    css = [dashboard_css(), BANNER_CSS]
    banner = pn.pane.HTML(banner_html(store, snap), stylesheets=css, sizing_mode="stretch_width")
    if snap is None:
        return pn.Column(banner, sizing_mode="stretch_width")

    sel = pages.selection_from_args(args, pages.default_selection(grants, snap))
    scopes = pages.scope_options(grants, snap)
    periods = pages.period_options(ctx.as_of)
    value = _scope_value(sel)
    # a scope the user may not see never enters the selector (its name would leak)
    scope_value = value if value in scopes.values() else None
    period_value = _period_value(sel.period, ctx.as_of)
    if period_value not in periods.values():
        periods[period_value] = period_value
    kpis = {pages._kpi_label(k): k for k in pages.CURVE_KPIS}
    if sel.kpi not in kpis.values():
        sel = Selection(sel.view, sel.scope_id, sel.period, pages.DEFAULT_KPI, sel.goal_scope)

    w_scope = pn.widgets.Select(
        name="Scope", options=scopes, value=scope_value or next(iter(scopes.values()), None),
        width=300,
    )  # fmt: skip
    w_period = pn.widgets.Select(name="Period", options=periods, value=period_value, width=220)
    w_kpi = pn.widgets.Select(name="KPI", options=kpis, value=sel.kpi, width=200)
    fresh = pn.pane.HTML("", stylesheets=css, sizing_mode="stretch_width")
    body = pn.pane.HTML("", stylesheets=css, sizing_mode="stretch_width")
    state: dict[str, Any] = {"sel": sel}

    def pdf_callback() -> io.BytesIO:
        from kpireport.dashboard.pdf import report_pdf

        cur = store.current() or snap
        current = state["sel"]
        if not pages.permitted(current, grants, cur):
            raise PermissionError("not permitted")
        return io.BytesIO(report_pdf(store, cur, current, ctx.as_of))

    download = pn.widgets.FileDownload(
        callback=pdf_callback, filename="report.pdf", label="Download PDF", button_type="primary",
        embed=False, sizing_mode="fixed", width=150, margin=(22, 10, 0, 10),
    )  # fmt: skip
    user_line = pn.pane.HTML(
        f'<div class="dash-user">Signed in as {esc(who)} · <a href="logout">log out</a></div>'
        if who
        else '<div class="dash-user">No login: this dashboard listens on 127.0.0.1 only.</div>',
        stylesheets=css,
        sizing_mode="stretch_width",
    )

    def render(first: bool = False) -> None:
        t = time.perf_counter()
        cur = store.current() or snap
        current = state["sel"]
        page = pages.build_page(store, cur, current, grants, ctx.as_of)
        # one pane for heading and content: they change in one websocket message
        body.object = (
            f'<div class="dash-page" data-permitted="{str(page.permitted).lower()}">'
            f'<h1 data-view="{esc(current.view)}">{esc(page.title)}</h1>{page.html()}</div>'
        )
        banner.object = banner_html(store, cur)
        secs = time.perf_counter() - (t0 if first else t)
        fresh.object = freshness_html(cur, secs, ctx.as_of)
        download.visible = page.permitted
        if page.permitted:
            download.filename = _pdf_name(current, ctx.as_of)
        if not first and pn.state.location is not None:
            pn.state.location.search = "?" + current.query()
        ctx.stats["last_page_seconds"] = secs

    def on_change(event: Any = None) -> None:
        value = w_scope.value or "org"
        kind, _, sid = value.partition(":")
        current = state["sel"]
        if event is not None and event.obj is w_scope:
            view = "overview" if kind == "org" else kind
            new = Selection(view, sid or None, w_period.value, w_kpi.value)
        else:
            new = Selection(
                current.view, current.scope_id, w_period.value, w_kpi.value, current.goal_scope
            )
        state["sel"] = new
        render()

    for w in (w_scope, w_period, w_kpi):
        w.param.watch(on_change, "value")
    render(first=True)
    controls = pn.FlexBox(
        w_scope, w_period, w_kpi, download, flex_wrap="wrap", sizing_mode="stretch_width"
    )
    return pn.Column(
        user_line, fresh, banner, controls, body, sizing_mode="stretch_width",
        styles={"max-width": "1240px", "margin": "0 auto"},
    )  # fmt: skip


def _period_value(period: str, as_of: Any) -> str:
    from kpireport.errors import KpiReportError
    from kpireport.periods import parse_period

    try:
        return parse_period(period, as_of).label
    except KpiReportError:
        return period


def _pdf_name(sel: Selection, as_of: Any) -> str:
    from kpireport.report.slug import slug as slugify

    period = _period_value(sel.period, as_of)
    if sel.scope == Scope.ORGANISATION:
        return f"management-pack-{period}.pdf"
    if sel.scope == Scope.TEAM:
        return f"team-report-{slugify(str(sel.scope_id))}-{period}.pdf"
    return f"seller-scorecard-{slugify(str(sel.scope_id))}-{period}.pdf"
