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
* **Untrusted notebooks get the same rules inline.** JupyterLab strips
  ``<style>`` from the outputs of a notebook it does not trust (one opened
  from elsewhere, or executed by ``kpireport run``) but keeps ``style=""``
  attributes (filtered to a list of layout properties). :func:`inline`
  therefore also writes, on every element, the declarations the same
  template rules give it — cascaded by specificity and order, ``var(--x)``
  resolved — so cards stay a row of boxes there. These equal what the page's
  stylesheet computes, so the HTML and PDF do not change; what an attribute
  cannot carry (``@media print``, page rules) stays with the
  stylesheet. The markup itself is kept byte for byte: only ``style``
  attributes are added to start tags.
"""

from __future__ import annotations

import functools
import re
from html.parser import HTMLParser
from typing import Any
from xml.etree import ElementTree

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
    parts = [f".{SCOPE}{{{SCOPE_STYLE}}}"]
    for selectors, body in _rules(css):
        scoped = [s for s in (_scoped_selector(x) for x in selectors.split(",")) if s]
        if scoped:
            body = re.sub(r"\s+", " ", body)
            parts.append(f"{','.join(scoped)}{{{body}}}")
    return "".join(parts)


#: declarations of the scope element itself (fonts and colour of every output)
SCOPE_STYLE = "font-family:'DejaVu Sans','Liberation Sans',Arial,Helvetica,sans-serif;color:#1f2933;line-height:1.4"
#: elements without an end tag
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


def _declarations(body: str) -> list[tuple[str, str]]:
    out = []
    for decl in body.split(";"):
        name, sep, value = decl.partition(":")
        if sep and name.strip() and value.strip():
            out.append((name.strip().lower(), re.sub(r"\s+", " ", value.strip())))
    return out


@functools.lru_cache(maxsize=1)
def _inline_rules() -> tuple[Any, dict[str, str]]:
    """A cssselect2 matcher of the template's component rules (no pseudo-elements) and the
    ``:root`` variables."""
    import cssselect2

    css = (resource_dir("templates") / "kpireport" / "kpireport.css").read_text(encoding="utf-8")
    variables: dict[str, str] = {}
    matcher = cssselect2.Matcher()
    order = 0
    for selectors, body in _rules(css):
        decls = _declarations(body)
        for sel in (x.strip() for x in selectors.split(",")):
            if sel == ":root":
                variables.update({k: v for k, v in decls if k.startswith("--")})
                continue
            if _CHROME.match(sel) or "::" in sel:
                continue
            for compiled in cssselect2.compile_selector_list(sel):
                matcher.add_selector(compiled, (order, decls))
                order += 1
    return matcher, variables


def _resolve(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"var\((--[\w-]+)\)", lambda m: variables.get(m.group(1), m.group(0)), value)


class _Tags(HTMLParser):
    """An ElementTree of a fragment's elements, each with the offset of its start tag."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = ElementTree.Element("div")
        self.stack = [self.root]
        self.offsets: dict[int, tuple[int, int]] = {}  # id(element) -> (start, end) of its tag
        self._lines = [0]
        for line in markup.splitlines(keepends=True):
            self._lines.append(self._lines[-1] + len(line))
        self.feed(markup)
        self.close()

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], void: bool) -> None:
        line, col = self.getpos()
        start = self._lines[line - 1] + col
        el = ElementTree.SubElement(self.stack[-1], tag, {k: v or "" for k, v in attrs})
        self.offsets[id(el)] = (start, start + len(self.get_starttag_text() or ""))
        if not void:
            self.stack.append(el)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, tag in _VOID)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, True)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):  # tolerate a missing end tag
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break


def inline(markup: str) -> str:
    """``markup`` with the template's component rules written into ``style=""`` attributes.

    Each element gets the declarations of every rule that matches it (as if
    inside a ``.kpireport-scope`` element), in cascade order (specificity,
    then rule order), ``var(--x)`` resolved; a ``style`` it already has comes
    last and so still wins. Nothing else in the markup changes.
    """
    import cssselect2

    matcher, variables = _inline_rules()
    tags = _Tags(markup)
    wrapper = cssselect2.ElementWrapper.from_html_root(tags.root)
    edits: list[tuple[int, int, str]] = []
    for el in wrapper.iter_subtree():
        if el.etree_element is tags.root:
            continue
        matches = sorted(matcher.match(el), key=lambda m: (m[0], m[3][0]))
        if not matches:
            continue
        decls: dict[str, str] = {}
        for *_, (_order, body) in matches:
            for name, value in body:
                decls.pop(name, None)  # the later one wins, in its own position
                decls[name] = _resolve(value, variables)
        if "color" in decls:  # Lab's sanitizer refuses currentColor: use the element's colour
            decls = {
                k: re.sub(r"(?i)\bcurrentColor\b", decls["color"], v) for k, v in decls.items()
            }
        style = ";".join(f"{k}:{v}" for k, v in decls.items() if not k.startswith("--"))
        own = el.etree_element.get("style")
        if own:
            style = f"{style};{own}"
        start, end = tags.offsets[id(el.etree_element)]
        tag = markup[start:end]
        if own is not None:  # replace the element's own attribute
            tag = re.sub(
                r"""\sstyle\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", "", tag, count=1, flags=re.I
            )
        close = len(tag) - (2 if tag.endswith("/>") else 1)
        quoted = style.replace("&", "&amp;").replace('"', "&quot;")
        edits.append((start, end, f'{tag[:close].rstrip()} style="{quoted}"{tag[close:]}'))
    out, pos = [], 0
    for start, end, tag in sorted(edits):
        out += [markup[pos:start], tag]
        pos = end
    out.append(markup[pos:])
    return "".join(out)


def scoped(markup: str) -> str:
    """``markup`` wrapped with the scoped stylesheet and its rules inline, for one notebook output."""
    return (
        f'<div class="{SCOPE}" style="{SCOPE_STYLE}"><style>{scoped_css()}</style>'
        f"{inline(markup)}</div>"
    )
