"""Render an executed notebook to self-contained HTML (nbconvert) and PDF (WeasyPrint).

Design decisions
----------------
* **Our own template** (``kpireport/resources/templates/kpireport``, extending nbconvert's ``lab``):
  no code cells (``exclude_input``), no prompts, a header with organisation,
  scope and period taken from ``metadata.kpireport`` (set here, escaped in the
  template with ``| e``), KPI-card classes and print CSS (A4, margins, running
  header/footer, "page / pages", tables that wrap, images at most 100 % wide).
* **Reader-facing cells only.** The ``parameters`` and papermill
  ``injected-parameters`` cells, cells tagged ``remove-cell``, stderr streams
  (warnings), and recorded KPI tables are dropped before rendering; they stay
  in the executed notebook for audit.
* **Self-contained.** Images are embedded as ``data:`` URIs (outputs already
  are; ``embed_images`` covers Markdown images). The template loads nothing
  from a CDN; :func:`check_self_contained` strips any remaining ``<script
  src=http…>`` a library may have emitted and refuses the report if an external
  resource is still referenced. WeasyPrint gets a URL fetcher that only allows
  ``data:`` URLs, so PDF rendering never touches the network or the disk.
* **PDF from the same HTML**, so HTML and PDF always show the same numbers.
* **Fast font subsetting.** Without the system library HarfBuzz-subset,
  WeasyPrint subsets the embedded fonts with fontTools, which parses the
  (large) ``GSUB``/``GPOS``/``GDEF`` tables of DejaVu Sans on every PDF only to
  drop them: ~3–5 s of a ~6 s team-report PDF. :func:`_install_font_cache`
  strips those tables once per process and font file (cached by the font's
  hash) before WeasyPrint's own subsetting, which yields the same glyphs
  (shaping happened at layout time, on the original font). It is a guarded
  optimisation of a WeasyPrint internal: if the hook is missing (another
  WeasyPrint version) or anything fails, WeasyPrint's path runs unchanged.
  The runner calls :func:`prewarm` in the parent, so forked report
  processes inherit the stripped fonts.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

from kpireport.errors import RenderError
from kpireport.report.record import is_kpi_output
from kpireport.resources import resource_dir

log = logging.getLogger("kpireport")

#: folder holding the ``kpireport`` nbconvert template (``kpireport/resources/templates/kpireport``)
TEMPLATES_ROOT = resource_dir("templates")
TEMPLATE_NAME = "kpireport"
#: cells with these tags never reach the reader
REMOVE_CELL_TAGS = frozenset(
    {"parameters", "injected-parameters", "remove-cell", "remove_cell", "papermill-error-cell-tag"}
)
REMOVE_OUTPUT_TAGS = frozenset({"remove-output", "remove_output"})

_EXTERNAL = re.compile(
    r"""(?:<(?:script|img|iframe|embed|source|video|audio|input)\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//)""",
    re.IGNORECASE,
)
_EXTERNAL_SCRIPT = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//[^>]*>\s*</script>""", re.IGNORECASE
)


def reader_notebook(nb: Any, meta: dict[str, Any]) -> Any:
    """Copy of an executed notebook holding only what a reader should see.

    Parameters
    ----------
    nb
        The executed notebook (``nbformat.NotebookNode``).
    meta
        Header facts stored as ``metadata.kpireport`` (title, organisation,
        scope, period_label, as_of_label, language, footer, version).
    """
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.cells:
        tags = set(cell.get("metadata", {}).get("tags") or [])
        if tags & REMOVE_CELL_TAGS:
            continue
        if cell.cell_type == "code":
            if tags & REMOVE_OUTPUT_TAGS:
                cell.outputs = []
            cell.outputs = [
                o
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                and not is_kpi_output(o)
            ]
            if not cell.outputs:
                continue
        cells.append(cell)
    out.cells = cells
    out.metadata["kpireport"] = {k: ("" if v is None else str(v)) for k, v in meta.items()}
    return out


@cache
def _exporter() -> Any:
    from nbconvert import HTMLExporter

    if not (TEMPLATES_ROOT / TEMPLATE_NAME / "index.html.j2").exists():
        raise RenderError(f"The report template is missing from {TEMPLATES_ROOT / TEMPLATE_NAME}.")
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_ROOT)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        anchor_link_text="",
    )
    exporter.log.setLevel(logging.ERROR)  # "alternative text is missing" on every chart
    return exporter


def to_html(nb: Any, meta: dict[str, Any]) -> str:
    """Render an executed notebook to one self-contained HTML document.

    Raises
    ------
    RenderError
        When nbconvert fails or the result references external resources.
    """
    reader = reader_notebook(nb, meta)
    try:
        body, _ = _exporter().from_notebook_node(
            reader, resources={"metadata": {"name": meta.get("title", "report")}}
        )
    except RenderError:
        raise
    except Exception as exc:  # nbconvert/jinja errors of any kind
        raise RenderError(f"The notebook could not be rendered to HTML: {exc}") from exc
    return check_self_contained(body)


def check_self_contained(html: str) -> str:
    """Strip external ``<script src>`` tags; refuse any other external resource.

    Raises
    ------
    RenderError
        When the HTML still loads something from the network.
    """
    stripped = _EXTERNAL_SCRIPT.sub("", html)
    if stripped != html:
        log.warning("Removed external scripts from a report (reports must read offline).")
    m = _EXTERNAL.search(stripped)
    if m:
        snippet = stripped[m.start() : m.start() + 80]
        raise RenderError(
            f"The report references an external resource ({snippet!r}); reports must be self-contained."
        )
    return stripped


def _fetcher() -> Any:
    import weasyprint

    if hasattr(weasyprint, "URLFetcher"):
        return weasyprint.URLFetcher(allowed_protocols=("data",), timeout=1)

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:  # WeasyPrint < 66
        if not url.startswith("data:"):
            raise ValueError(f"Reports do not load external resources ({url[:60]}).")
        return weasyprint.default_url_fetcher(url, *args, **kwargs)

    return fetch


#: stripped font bytes by (font hash, face index); shared by forked children
_STRIPPED_FONTS: dict[tuple[Any, int], bytes] = {}
_FONT_LOCK = threading.Lock()
#: OpenType tables WeasyPrint drops from embedded fonts anyway (layout is done)
_LAYOUT_TABLES = ("GSUB", "GPOS", "GDEF", "SVG ")


@cache
def _install_font_cache() -> bool:
    """Make WeasyPrint's fontTools subsetting skip parsing the layout tables; True if installed."""
    try:
        from fontTools.ttLib import TTFont
        from weasyprint.pdf import fonts as wp_fonts
    except ImportError:  # pragma: no cover - WeasyPrint pulls fontTools in
        return False
    original = getattr(getattr(wp_fonts, "Font", None), "_fonttools_subset", None)
    if original is None or getattr(original, "_kpireport", False):
        return original is not None

    def subset(self: Any, to_unicode: Any, hinting: Any) -> Any:
        try:
            key = (self.hash, int(self.index))
            with _FONT_LOCK:
                stripped = _STRIPPED_FONTS.get(key)
                if stripped is None:
                    font = TTFont(io.BytesIO(self.file_content), fontNumber=self.index, lazy=True)
                    for tag in _LAYOUT_TABLES:
                        if tag in font:
                            del font[tag]
                    buf = io.BytesIO()
                    font.save(buf)
                    stripped = _STRIPPED_FONTS[key] = buf.getvalue()
            self.file_content, self.index = stripped, 0
        except Exception as exc:  # any surprise: WeasyPrint's own path on the original font
            log.debug("font pre-stripping skipped for %s: %s", getattr(self, "family", "?"), exc)
        return original(self, to_unicode, hinting)

    subset._kpireport = True  # type: ignore[attr-defined]
    wp_fonts.Font._fonttools_subset = subset
    return True


def prewarm(pdf: bool = True) -> None:
    """Load nbconvert's template and WeasyPrint's fonts once (call in the parent before forking).

    The first :func:`to_html` of a process compiles the Jinja template and
    imports nbconvert's lazy dependencies (~0.3 s, several seconds under load);
    the first :func:`to_pdf` loads and strips the fonts (~1.5 s). Done once in
    the runner's parent, every forked report process starts warm. Best effort:
    a failure here resurfaces, with its message, in the report that hits it.
    """
    import nbformat

    with contextlib.suppress(Exception):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("# Aa 1\n\n**Aa** 1 *Aa* `Aa`")]
        to_html(nb, {"title": "kpireport"})
    if pdf:
        sample = (
            '<html><head><meta charset="utf-8"><style>'
            + _stylesheet()
            + "</style></head><body><h1>Aa 1</h1><p><b>Aa 1</b> Aa 1 <i>Aa</i></p>"
            "<pre>Aa 1</pre><table><tr><th>Aa</th><td>1</td></tr></table></body></html>"
        )
        with contextlib.suppress(Exception):
            to_pdf(sample)


def _stylesheet() -> str:
    css = TEMPLATES_ROOT / TEMPLATE_NAME / "kpireport.css"
    try:
        return css.read_text(encoding="utf-8")
    except OSError:
        return ""


def to_pdf(html: str, base_url: Path | str | None = None) -> bytes:
    """Print the report HTML to PDF bytes with WeasyPrint, offline.

    Raises
    ------
    RenderError
        When WeasyPrint fails.
    """
    import weasyprint

    for name in ("weasyprint", "fontTools"):  # font-subsetting chatter, unknown-property notes
        logging.getLogger(name).setLevel(logging.ERROR)
    _install_font_cache()
    try:
        doc = weasyprint.HTML(
            string=html, base_url=str(base_url) if base_url else None, url_fetcher=_fetcher()
        )
        return doc.write_pdf()
    except Exception as exc:
        raise RenderError(f"The report could not be printed to PDF: {exc}") from exc
