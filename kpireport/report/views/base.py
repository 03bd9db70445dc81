"""The view model of the report notebooks: :class:`Section`, :class:`ReportView`, rendering, loading.

A report is an ordered list of sections (docs/REPORTS.md, "Customising a
report"). Each report module of this package (:mod:`~kpireport.report.views.team`,
:mod:`~kpireport.report.views.seller`, :mod:`~kpireport.report.views.management`,
:mod:`~kpireport.report.views.finance`) builds a context once (``context(...)``)
and has one public function per section taking that context and returning a
:class:`Section`; a notebook cell calls one of them and :func:`show` displays it
and records the numbers it shows.

Design decisions
----------------
* **A view is data.** A :class:`Section` holds its heading, prose, HTML blocks
  and figures and the tidy KPI rows of the numbers it shows
  (``section.kpis``); a :class:`ReportView` is the ordered sections, and its
  ``kpis`` are the sections' rows in report order, which the notebook hands
  to :func:`kpireport.report.record_kpis`.
* **One HTML output per section.** :func:`show` displays a section as a
  single ``<section>`` with its heading, sentences, tables and charts (PNG at
  :data:`CHART_DPI` dpi, embedded as ``data:`` URIs). A heading therefore never
  ends up alone at the bottom of a page (``break-inside: avoid`` on small
  sections, ``break-after: avoid`` on headings) and the report is
  self-contained.
* **Styled everywhere.** A displayed section carries the report stylesheet
  scoped to itself, and the same rules as ``style=""`` attributes for
  untrusted notebooks, whose ``<style>`` JupyterLab strips
  (:mod:`kpireport.resources.styles`).
* **Escaping.** CRM text (team, seller, company names) only reaches HTML
  through :func:`html.escape` or the escaping helpers of
  :mod:`kpireport.plots.cards`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from kpireport import i18n

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

#: resolution of the PNG charts embedded in reports (prints sharp on A4)
CHART_DPI = 150
#: columns of a tidy KPI table (what a report records)
TIDY_COLUMNS = ["kpi", "scope", "scope_id", "period", "value"]


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
    #: tidy KPI rows (``kpi, scope, scope_id, period, value`` …) of the numbers this section shows
    kpis: pd.DataFrame | None = None

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
    kpis: pd.DataFrame = field(default_factory=lambda: empty_kpis())

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
        for s in (
            self.sections if not names else [self.section(n) for n in names if n in self.names]
        ):
            _display(s)

    def record(self) -> None:
        """Hand the numbers shown to the report runner (:func:`kpireport.report.record_kpis`)."""
        from kpireport.report.record import record_kpis

        if len(self.kpis):
            record_kpis(self.kpis)

    def to_html(self) -> str:
        """Every section, concatenated (for tests and previews)."""
        return "".join(s.to_html() for s in self.sections)

    @classmethod
    def of(cls, title: str, language: str, sections: Iterable[Section | None]) -> ReportView:
        """A view of these sections (``None`` — a section with nothing to show — is left out);
        its ``kpis`` are the sections' rows, in report order."""
        view = cls(title, language, [s for s in sections if s is not None])
        frames = [s.kpis for s in view.sections if s.kpis is not None and len(s.kpis)]
        view.kpis = pd.concat(frames, ignore_index=True) if frames else empty_kpis()
        return view


def empty_kpis() -> pd.DataFrame:
    """An empty tidy KPI table."""
    return pd.DataFrame(columns=TIDY_COLUMNS)


def _display(section: Section) -> None:
    from IPython.display import HTML, display

    from kpireport.resources.styles import scoped

    display(HTML(scoped(section.to_html())))


def show(section: Section | None) -> None:
    """Display one section in the notebook and record the numbers it shows.

    What a report notebook's section cell calls, e.g.
    ``show(team.summary(ctx))``; ``None`` (a section with nothing to show)
    displays nothing. The recorded rows become the report's
    ``<report>.kpis.csv`` (:func:`kpireport.report.record_kpis`).
    """
    if section is None:
        return
    if section.kpis is not None and len(section.kpis):
        from kpireport.report.record import record_kpis

        record_kpis(section.kpis)
    _display(section)


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


@dataclass
class ReportContext:
    """What every section of one report needs, computed once by the report's ``context()``.

    ``period`` is the parsed report period, ``language`` a checked language
    code; the report modules add their own fields (the team, its evaluated
    goals, …). A section function takes the context and returns a
    :class:`Section` (or ``None`` when it has nothing to show).
    """

    data: CrmData
    period: Any  # kpireport.periods.Period
    as_of: Any
    language: str

    @property
    def currency(self) -> Any:
        """The data's currency (ISO code)."""
        return self.data.currency
