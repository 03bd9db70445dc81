"""HTML for KPI cards, status badges and tables in the reports.

Design decisions
----------------
* **Escape everything that is text.** Team, seller, company and deal names
  come from the CRM and are data, not markup (RELIABILITY: Rendering). Every
  string that reaches the HTML — labels, cell values, column names, the
  output of user-supplied formatters — goes through :func:`html.escape`.
  We build tables ourselves instead of ``Styler.to_html`` (which does not
  escape by default).
* **Class names are the contract with the CSS** in ``kpireport/resources/templates/kpireport/``:
  ``.kpi-cards``, ``.kpi-card``, ``.kpi-label``, ``.kpi-value``,
  ``.kpi-delta up|down|flat`` (plus ``good|bad`` when the KPI's better
  direction is known), ``.kpi-goal``, ``.kpi-status <status>``, and
  ``table.kpi-table`` with ``td.num``/``th.num`` for numbers. For the shared
  stylesheet we also emit its names: badges carry ``status status-<status>``,
  secondary lines ``kpi-sub``, empty sections ``no-data``, tables
  ``report-table``; the up/down arrow is a ``<span class="kpi-arrow">`` before
  the signed percentage (text, not CSS ``::before``, so JupyterLab keeps it in
  untrusted notebooks, which lose every stylesheet). Numbers are
  also right-aligned with an inline style so a table reads well without the
  stylesheet (e.g. in JupyterLab).
* **Return :class:`Html`**, a ``str`` subclass with ``_repr_html_``: it is the
  raw string for templates and tests, and renders as HTML when it is the last
  expression of a notebook cell (like ``IPython.display.HTML``).
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from kpireport import i18n
from kpireport.i18n import check_language, fmt_percent, fmt_value, status_label, t

_STATUSES = {"achieved", "on_track", "at_risk", "off_track", "missed", "no_data"}


class Html(str):
    """An HTML fragment: a plain ``str`` that Jupyter displays as HTML."""

    def _repr_html_(self) -> str:
        from kpireport.resources.styles import scoped

        return scoped(str(self))  # the report's styles, scoped: looks the same in JupyterLab

    @property
    def data(self) -> str:
        """The markup (same attribute as ``IPython.display.HTML``)."""
        return str(self)


def _esc(x: object) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _status_class(status: object) -> str:
    s = "no_data" if i18n.is_missing(status) else str(status)
    return s if s in _STATUSES else "no_data"


def status_badge(status: str | None, language: str = "en") -> Html:
    """A ``<span class="kpi-status on_track">On track</span>`` badge for a goal status."""
    cls = _status_class(status)
    label = _esc(status_label(cls, language))
    return Html(f'<span class="kpi-status {cls} status status-{cls}">{label}</span>')


#: the arrow before a change on a KPI card (in the colour of the change)
ARROWS = {
    "up": '<span class="kpi-arrow">\u25b2\u00a0</span>',
    "down": '<span class="kpi-arrow">\u25bc\u00a0</span>',
}


def _delta(
    value: object, text_key: str, language: str, better: str | None, points: bool = False
) -> str:
    if i18n.is_missing(value):
        direction = "flat"
    else:
        v = round(float(value), 3)  # type: ignore[arg-type]
        direction = "up" if v > 0 else "down" if v < 0 else "flat"
    classes = f"kpi-delta {direction}"
    if better in ("higher", "lower") and direction != "flat":
        good = (direction == "up") == (better == "higher")
        classes += " good" if good else " bad"
    if points and not i18n.is_missing(value):
        # a change of a percentage in percentage points: 22 % -> 25 % is "+3.0 pp", not "+13.6 %"
        pts = i18n.fmt_number(abs(float(value)) * 100, language, decimals=1)  # type: ignore[arg-type]
        # ASCII "-" like fmt_percent, so "-1.6 pp" and "-27.1%" look alike on one card
        sign = "+" if direction == "up" else "-" if direction == "down" else "\u00b1"
        pct = f"{sign}{pts}\u00a0pp"
    else:
        pct = fmt_percent(value, language, signed=True)
    # the arrow is text, not CSS generated content: JupyterLab keeps it in untrusted notebooks
    arrow = ARROWS.get(direction, "")
    return f'<div class="{classes}">{arrow}{_esc(pct)} <span class="kpi-delta-label">{_esc(t(text_key, language))}</span></div>'


def kpi_cards(
    cards: Iterable[Mapping[str, Any]], language: str = "en", currency: str = "EUR"
) -> Html:
    """A row of KPI cards.

    Parameters
    ----------
    cards
        One mapping per card with ``label`` (or ``kpi``, translated), ``value``,
        ``unit`` (``count``, ``currency``, ``percent``, ``days``, ``ratio``),
        and optionally ``delta_prev`` and ``delta_ly`` (relative change as a
        fraction, ``0.12`` = +12 %), ``goal_pct`` (attainment fraction),
        ``status`` (goal status), ``better`` (``higher``/``lower``), ``note`` and
        ``delta_kind`` (``"points"``: the deltas are differences of two
        fractions, shown in percentage points, ``+3.0 pp``).
    language, currency
        Report language and reporting currency.

    Returns
    -------
    Html
        ``<div class="kpi-cards">…</div>``; empty input gives the "no data" text.
    """
    lang = check_language(language)
    items = list(cards)
    if not items:
        return Html(
            f'<div class="kpi-cards kpi-empty"><p class="no-data">{_esc(t("heading.no_data", lang))}</p></div>'
        )
    parts = ['<div class="kpi-cards">']
    for card in items:
        label = card.get("label") or (
            i18n.kpi_label(str(card["kpi"]), lang) if card.get("kpi") else ""
        )
        unit = str(card.get("unit") or "count")
        value = fmt_value(card.get("value"), unit, currency, lang)
        status = card.get("status")
        parts.append('<div class="kpi-card">')
        parts.append(f'<div class="kpi-label">{_esc(label)}</div>')
        parts.append(f'<div class="kpi-value">{_esc(value)}</div>')
        better = card.get("better")
        points = card.get("delta_kind") == "points"
        if "delta_prev" in card:
            parts.append(_delta(card.get("delta_prev"), "card.vs_previous", lang, better, points))
        if "delta_ly" in card:
            parts.append(_delta(card.get("delta_ly"), "card.vs_last_year", lang, better, points))
        if "goal_pct" in card or status is not None:
            bits = []
            if "goal_pct" in card:
                pct = fmt_percent(card.get("goal_pct"), lang, decimals=0)
                bits.append(_esc(t("card.of_goal", lang, pct=pct)))
            if status is not None:
                bits.append(status_badge(status, lang))
            parts.append(f'<div class="kpi-goal kpi-sub">{" ".join(bits)}</div>')
        if card.get("note"):
            parts.append(f'<div class="kpi-note kpi-sub">{_esc(card["note"])}</div>')
        parts.append("</div>")
    parts.append("</div>")
    return Html("".join(parts))


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def _default_format(x: object, language: str) -> str:
    if i18n.is_missing(x):
        return i18n.MISSING
    if isinstance(x, pd.Timestamp):
        return i18n.fmt_date(x, language, "medium")
    if _is_number(x):
        return i18n.fmt_number(x, language)
    return str(x)


def html_table(
    df: pd.DataFrame,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
    language: str = "en",
    *,
    columns: Mapping[str, str] | None = None,
    index: bool = False,
    caption: str | None = None,
    css_class: str = "kpi-table report-table",
) -> Html:
    """An escaped HTML table: numbers right-aligned, NaN as "–".

    Parameters
    ----------
    df
        The rows to show (an empty frame gives a "no data" paragraph).
    formats
        Column -> function turning a value into display text (e.g.
        ``lambda v: fmt_currency(v, "EUR", "nl")``). Missing values never
        reach it: they show as "–". Its output is escaped like any text.
    language
        Language of the default number and date formats.
    columns
        Optional column -> header text (e.g. translated names).
    index
        Also show the index as the first column.
    caption
        Optional table caption.
    css_class
        Class of the ``<table>``.
    """
    lang = check_language(language)
    formats = dict(formats or {})
    headers = dict(columns or {})
    if df is None or len(df) == 0:
        return Html(f'<p class="kpi-empty no-data">{_esc(t("heading.no_data", lang))}</p>')
    frame = df.reset_index() if index else df
    cols = list(frame.columns)
    numeric = {
        c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in cols
    }
    right = ' class="num" style="text-align:right"'
    out = [f'<table class="{_esc(css_class)}">']
    if caption:
        out.append(f"<caption>{_esc(caption)}</caption>")
    out.append("<thead><tr>")
    for c in cols:
        out.append(f"<th{right if numeric[c] else ''}>{_esc(headers.get(c, c))}</th>")
    out.append("</tr></thead><tbody>")
    for row in frame.itertuples(index=False, name=None):
        out.append("<tr>")
        for c, v in zip(cols, row, strict=True):
            missing = i18n.is_missing(v)
            if missing:
                text = i18n.MISSING
            elif c in formats:
                text = formats[c](v)
            else:
                text = _default_format(v, lang)
            num = numeric[c] or (_is_number(v) and not missing)
            out.append(f"<td{right if num else ''}>{_esc(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return Html("".join(out))


__all__ = ["Html", "html_table", "kpi_cards", "status_badge"]
