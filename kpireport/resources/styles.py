"""Scoped report styles, so a section looks the same in JupyterLab as in the HTML and PDF.

The report template (``kpireport/resources/templates/kpireport/kpireport.css``)
styles KPI cards, badges, tables and sections for the rendered HTML and PDF. In
JupyterLab that stylesheet is absent and cards fall apart into a stacked list.
So every HTML output a notebook displays (a report :class:`Section`, KPI cards,
tables) carries the same rules in its own ``<style>``, scoped under
``.kpireport-scope`` so they style nothing else on the page.

Design decisions
----------------
* **One source of truth.** The scoped rules are *derived* from the template's
  stylesheet at first use: page chrome (``html``, ``body``, ``.report-header``
  …), notebook chrome (``.jp-*``) and ``@page``/``@media`` blocks are dropped;
  every other rule has each of its selectors prefixed with ``.kpireport-scope``
  and ``:root`` (the colour variables) becomes the scope itself. Editing the
  template's CSS changes Lab, HTML and PDF alike.
* In the rendered HTML/PDF the scoped copy repeats rules the page already has,
  with the same values, so it changes nothing there (~5 kB per displayed output).
"""

from __future__ import annotations

import functools
import re

from kpireport.resources import resource_dir

SCOPE = "kpireport-scope"

#: rules for the page and the notebook around the report, not for its components
_CHROME = re.compile(
    r"^(html|body\b|\.report-(header|org|title|meta|scope|period|sep|asof|footer)\b|"
    r"\.jp-|a\.anchor-link)"
)


def _rules(css: str) -> list[tuple[str, str]]:
    """Top-level ``(selectors, declarations)`` of a stylesheet; ``@`` blocks are skipped."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out: list[tuple[str, str]] = []
    i, n = 0, len(css)
    while i < n:
        open_ = css.find("{", i)
        if open_ < 0:
            break
        head = css[i:open_].strip()
        depth, j = 1, open_ + 1
        while j < n and depth:
            depth += {"{": 1, "}": -1}.get(css[j], 0)
            j += 1
        if not head.startswith("@"):
            out.append((head, css[open_ + 1 : j - 1].strip()))
        i = j
    return out


def _scoped_selector(sel: str) -> str | None:
    sel = sel.strip()
    if sel == ":root":
        return f".{SCOPE}"
    if _CHROME.match(sel):
        return None
    return f".{SCOPE} {sel}"


@functools.lru_cache(maxsize=1)
def scoped_css() -> str:
    """The template's component rules scoped under ``.kpireport-scope``, minified."""
    css = (resource_dir("templates") / "kpireport" / "kpireport.css").read_text(encoding="utf-8")
    parts = [
        f".{SCOPE}{{font-family:'DejaVu Sans','Liberation Sans',Arial,Helvetica,sans-serif;"
        "color:#1f2933;line-height:1.4}"
    ]
    for selectors, body in _rules(css):
        scoped = [s for s in (_scoped_selector(x) for x in selectors.split(",")) if s]
        if scoped:
            body = re.sub(r"\s+", " ", body)
            parts.append(f"{','.join(scoped)}{{{body}}}")
    return "".join(parts)


def scoped(markup: str) -> str:
    """``markup`` wrapped with the scoped stylesheet, for one notebook output."""
    return f'<div class="{SCOPE}"><style>{scoped_css()}</style>{markup}</div>'
