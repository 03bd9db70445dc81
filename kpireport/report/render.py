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
* **Fast font subsetting is a system dependency, not a hook.** WeasyPrint
  subsets embedded fonts with the HarfBuzz-subset library when it is present
  (Debian: ``libharfbuzz-subset0``, installed by ``.ci/run`` and named in the
  README); without it, it falls back to fontTools, which parses the large
  ``GSUB``/``GPOS``/``GDEF`` tables of DejaVu Sans on every PDF (~3–5 s more per
  report). :func:`fast_subsetting` tells which path is in use and the runner
  logs, once, what the missing library costs. No WeasyPrint internal is
  patched.
* **Other libraries' log levels** are lowered only for the duration of one
  render call (:func:`_quiet`), then restored.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
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
        exporter = _exporter()
        with _quiet(exporter.log.name):  # "alternative text is missing" on every chart
            body, _ = exporter.from_notebook_node(
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


#: what PDF printing costs without HarfBuzz-subset (measured on the demo team report)
SLOW_SUBSET_COST = "about 3-5 s more per PDF"


@cache
def fast_subsetting() -> bool:
    """True when WeasyPrint subsets fonts with HarfBuzz-subset (the fast path).

    False means the fontTools fallback (install ``libharfbuzz-subset0`` on
    Debian/Ubuntu, ``harfbuzz`` on other systems).
    """
    try:
        from weasyprint.text.ffi import harfbuzz, harfbuzz_subset
    except Exception:  # pragma: no cover - WeasyPrint layout changed
        return False
    try:
        return bool(harfbuzz_subset) and bool(harfbuzz.hb_version_atleast(4, 1, 0))
    except Exception:  # pragma: no cover
        return False


def check_subsetting() -> None:
    """Log once when PDFs will take the slow font-subsetting path, and what it costs."""
    if not fast_subsetting():
        log.warning(
            "The HarfBuzz-subset library is missing, so every PDF subsets its fonts with "
            "fontTools (%s). Install it: apt-get install libharfbuzz-subset0.",
            SLOW_SUBSET_COST,
        )


@contextlib.contextmanager
def _quiet(*names: str, level: int = logging.ERROR) -> Any:
    """Lower the given loggers to ``level`` for the duration of the block only."""
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(level, lg.level))
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, before, strict=True):
            lg.setLevel(lvl)


def prewarm(pdf: bool = True) -> None:
    """Load nbconvert's template and WeasyPrint's fonts once (call in the parent before forking).

    The first :func:`to_html` of a process compiles the Jinja template and
    imports nbconvert's lazy dependencies (~0.3 s, several seconds under load);
    the first :func:`to_pdf` loads the fonts (~1.5 s). Done once in
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
        check_subsetting()
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

    try:
        # font-subsetting chatter and unknown-property notes, for this call only
        with _quiet("weasyprint", "fontTools"):
            doc = weasyprint.HTML(
                string=html, base_url=str(base_url) if base_url else None, url_fetcher=_fetcher()
            )
            return doc.write_pdf()
    except Exception as exc:
        raise RenderError(f"The report could not be printed to PDF: {exc}") from exc
