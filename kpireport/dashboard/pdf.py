"""The "download PDF" of a dashboard view: the matching report, rendered like ``kpireport run`` does.

Design decisions
----------------
* **The report's own view and renderer.** The organisation overview downloads
  the management pack, a team page the team report, a seller page the seller
  scorecard (a goal page: the report of the goal's scope), built with
  :mod:`kpireport.report.views` and printed through the report template
  (:func:`kpireport.report.render.to_html` / ``to_pdf``), so the PDF shows the
  same sections and numbers as the scheduled pack.
* **No kernel.** The view's sections become the display outputs of an
  in-memory notebook (what the report notebooks emit), which skips a
  papermill kernel start (~4 s) and keeps the download at about a second.
* **Cached** per data version and selection like the pages.
"""

from __future__ import annotations

from typing import Any

from kpireport.constants import Scope
from kpireport.dashboard.pages import Selection
from kpireport.dashboard.store import DataStore, Snapshot


def report_view(snap: Snapshot, sel: Selection, period: str, as_of: str) -> Any:
    """The :class:`~kpireport.report.views.ReportView` matching a dashboard selection."""
    from kpireport.report import views

    if sel.scope == Scope.ORGANISATION:
        return views.management_pack_view(snap.data, period, as_of)
    if sel.scope == Scope.TEAM:
        return views.team_report_view(snap.data, str(sel.scope_id), period, as_of)
    return views.seller_scorecard_view(snap.data, str(sel.scope_id), period, as_of)


def report_pdf(store: DataStore, snap: Snapshot, sel: Selection, as_of: Any) -> bytes:
    """PDF bytes of the report matching ``sel`` (cached per data version)."""
    from kpireport.periods import parse_period

    period = parse_period(sel.period, as_of).label
    key = ("pdf", sel.scope, sel.scope_id, period, str(as_of))
    return store.cached(snap, key, lambda: _render(snap, sel, period, str(as_of)))


def _render(snap: Snapshot, sel: Selection, period: str, as_of: str) -> bytes:
    import nbformat

    from kpireport._version import __version__
    from kpireport.i18n import fmt_date, fmt_period
    from kpireport.report.render import to_html, to_pdf

    view = report_view(snap, sel, period, as_of)
    nb = nbformat.v4.new_notebook()
    for section in view.sections:
        out = nbformat.v4.new_output("display_data", data={"text/html": section.to_html()})
        nb.cells.append(nbformat.v4.new_code_cell(source="", outputs=[out]))
    if sel.scope == Scope.ORGANISATION:
        scope = "Organisation"
    elif sel.scope == Scope.TEAM:
        scope = f"Team {sel.scope_id}"
    else:
        scope = f"Seller {snap.sellers.get(str(sel.scope_id), sel.scope_id)} ({sel.scope_id})"
    meta = {
        "title": view.title,
        "organisation": snap.data.organisation,
        "scope": scope,
        "period": period,
        "period_label": fmt_period(period, "en"),
        "as_of": as_of,
        "as_of_label": f"As of {fmt_date(as_of, 'en')}",
        "language": "en",
        "version": __version__,
        "footer": f"kpireport {__version__} · dashboard download · data version {snap.version}",
    }
    return to_pdf(to_html(nb, meta))
