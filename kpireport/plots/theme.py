"""One visual theme for every kpireport chart.

Design decisions
----------------
* **No side effects at import.** Importing this module never touches
  ``matplotlib.rcParams`` or the backend. :func:`use_theme` applies the theme
  globally (for an analyst's own plots); the chart functions instead build
  their figures inside :func:`theme_context` so they look the same whether
  or not ``use_theme`` was called, and never change a caller's settings.
* **Figures not managed by pyplot.** Charts are :class:`ReportFigure`
  instances created directly (``Figure(...)``), not with ``plt.subplots``: no
  global figure registry to leak in a batch of 30 reports, no
  double display in Jupyter, and safe under the ``Agg`` backend. A
  ``ReportFigure`` renders itself as PNG in Jupyter (``_repr_png_``).
* **Print first.** The default size is 17 × 8 cm (the text width of an A4
  page with 2 cm margins) at 150 dpi, fonts 7.5–10 pt. Series differ in
  lightness *and* line style or marker, so a greyscale print keeps them apart;
  status colours also get hatches, and every bar carries its status as text.
* **No chart junk.** No top/right spines, a light horizontal grid only, no
  background colour, legends outside the data area.
* **Human axes.** Values use :mod:`kpireport.i18n` (thousands separators,
  currency, compact ``€1.2M`` for large amounts); dates use Babel month names
  (``Nov 2026`` / ``nov 2026``) with tick density chosen from the span so
  labels never overlap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from babel.dates import format_skeleton
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, MaxNLocator

from kpireport import i18n

#: figure size in inches: 17 × 8 cm, the text width of A4 with 2 cm margins
FIGSIZE: tuple[float, float] = (17 / 2.54, 8 / 2.54)
#: resolution of embedded PNGs
DPI = 150

# Palette: restrained blues with an orange accent, ordered so neighbouring
# series differ clearly in lightness (greyscale luminance in the comment).
INK = "#1d2b3a"  # 0.16 — actuals, the series that matters most
BLUE = "#3d6fa3"  # 0.41
SKY = "#a9c4de"  # 0.75 — bands, last year
ACCENT = "#c8692a"  # 0.49 — target, highlights
GREY = "#7f7f7f"  # 0.50 — pace lines, reference lines
LIGHT = "#d9d9d9"  # 0.85 — backgrounds of bars
TEXT = "#222222"
MUTED = "#5f5f5f"

#: series colours, line styles and markers, cycled together
PALETTE: tuple[str, ...] = (INK, BLUE, SKY, ACCENT, GREY)
LINESTYLES: tuple[Any, ...] = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)))
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v")

#: goal status colours (dark to light differs per status) and hatches for grey prints
STATUS_COLOURS: dict[str, str] = {
    "achieved": "#1e6b3a",
    "on_track": "#5fa36a",
    "at_risk": "#e0a437",
    "off_track": "#c0392b",
    "missed": "#7a1f17",
    "no_data": "#bdbdbd",
}
STATUS_HATCHES: dict[str, str] = {
    "achieved": "",
    "on_track": "",
    "at_risk": "////",
    "off_track": "xxxx",
    "missed": "xxxx",
    "no_data": "....",
}

FONT_SIZE = 8.0
SMALL = 7.5
TITLE_SIZE = 10.0


def theme_rc() -> dict[str, Any]:
    """The matplotlib ``rcParams`` of the kpireport theme (a new dict each call)."""
    return {
        "figure.figsize": FIGSIZE,
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "figure.facecolor": "white",
        "figure.constrained_layout.use": True,
        "font.family": "DejaVu Sans",
        "font.size": FONT_SIZE,
        "axes.titlesize": TITLE_SIZE,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.titlepad": 8.0,
        "axes.labelsize": FONT_SIZE,
        "axes.labelcolor": TEXT,
        "axes.edgecolor": "#888888",
        "axes.linewidth": 0.6,
        "axes.facecolor": "white",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.grid.axis": "y",
        "axes.axisbelow": True,
        "axes.prop_cycle": mpl.cycler(color=list(PALETTE)) + mpl.cycler(linestyle=list(LINESTYLES)),
        "grid.color": "#e3e3e3",
        "grid.linewidth": 0.6,
        "xtick.labelsize": SMALL,
        "ytick.labelsize": SMALL,
        "xtick.color": MUTED,
        "ytick.color": MUTED,
        "xtick.major.size": 3.0,
        "ytick.major.size": 0.0,
        "xtick.major.width": 0.6,
        "legend.fontsize": SMALL,
        "legend.frameon": False,
        "legend.handlelength": 2.4,
        "lines.linewidth": 1.6,
        "lines.markersize": 4.0,
        "patch.linewidth": 0.0,
        "hatch.linewidth": 0.6,
        "hatch.color": "white",
        "text.color": TEXT,
        "axes.formatter.useoffset": False,
    }


def use_theme() -> None:
    """Apply the kpireport theme to matplotlib and seaborn globally.

    For analysts who want their own plots in a notebook to match the report
    charts. The chart functions of :mod:`kpireport.plots` do not need it.
    """
    import seaborn as sns

    sns.set_theme(context="paper", style="ticks", palette=list(PALETTE), rc=theme_rc())
    mpl.rcParams.update(theme_rc())


@contextlib.contextmanager
def theme_context() -> Iterator[None]:
    """Temporarily apply the theme (used around every chart function)."""
    with mpl.rc_context(theme_rc()):
        yield


class ReportFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that shows itself as a PNG in Jupyter."""

    def _repr_png_(self) -> bytes:
        return to_png(self)


def to_png(fig: Figure, dpi: int = DPI) -> bytes:
    """Render ``fig`` to PNG bytes (Agg; no pyplot, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def new_figure(figsize: tuple[float, float] | None = None, **subplots: Any) -> tuple[Figure, Any]:
    """A themed :class:`ReportFigure` with constrained layout and its axes.

    Call inside :func:`theme_context`. Keyword arguments go to
    :meth:`Figure.subplots`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = ReportFigure(figsize=figsize or FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(**subplots)
    for ax in np.atleast_1d(axes).ravel():
        style_axes(ax)
    return fig, axes


def style_axes(ax: Axes, grid_axis: str = "y") -> None:
    """Fix tick and grid styling on ``ax`` so it survives drawing outside the theme context."""
    ax.tick_params(axis="both", labelsize=SMALL, colors=MUTED, labelcolor=MUTED)
    ax.tick_params(axis="y", length=0)
    ax.grid(False)
    if grid_axis in ("x", "y", "both"):
        ax.grid(True, axis=grid_axis, color="#e3e3e3", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def empty_figure(
    title: str | None = None, language: str = "en", figsize: tuple[float, float] | None = None
) -> Figure:
    """An explicit "No data for this period" figure (never a blank or a crash)."""
    with theme_context():
        fig, ax = new_figure(figsize=figsize or (FIGSIZE[0], FIGSIZE[1] * 0.45))
        ax.set_axis_off()
        if title:
            ax.set_title(title, loc="left")
        ax.text(
            0.5,
            0.5,
            i18n.t("heading.no_data", language),
            ha="center",
            va="center",
            fontsize=TITLE_SIZE,
            color=MUTED,
            transform=ax.transAxes,
        )
        fig.set_label("empty")
    return fig


# ------------------------------------------------------------------- value axes
class ValueFormatter(Formatter):
    """Tick formatter for KPI values in the report's language.

    Currency shows ``€25,000`` up to 10 000 and ``€1.25M`` above; counts get
    thousands separators (compact above 100 000); percentages are fractions
    (``0.25`` -> ``25%``); ``signed`` prefixes ``+`` for growth axes.
    """

    def __init__(
        self, unit: str = "count", currency: str = "EUR", language: str = "en", signed: bool = False
    ) -> None:
        self.unit = str(unit)
        self.currency = currency
        self.language = i18n.check_language(language)
        self.signed = signed

    def _vmax(self) -> float:
        if self.axis is None:
            return 0.0
        lo, hi = self.axis.get_view_interval()
        return float(max(abs(lo), abs(hi)))

    def __call__(self, x: float, pos: int | None = None) -> str:
        lang, vmax = self.language, self._vmax()
        if self.unit == "percent":
            decimals = 0 if vmax >= 0.1 else 1
            return i18n.fmt_percent(x, lang, signed=self.signed and x != 0, decimals=decimals)
        if self.unit == "currency":
            if vmax >= 10_000:
                if x == 0:
                    return i18n.fmt_currency(0, self.currency, lang, decimals=0)
                from babel.numbers import format_compact_currency

                return format_compact_currency(
                    x, self.currency, locale=i18n.compact_locale(lang), fraction_digits=2
                )
            return i18n.fmt_currency(x, self.currency, lang, decimals=0 if vmax >= 10 else 2)
        if vmax >= 100_000 and x != 0:
            return i18n.fmt_compact(x, lang, digits=2)
        text = i18n.fmt_number(x, lang, decimals=None if vmax < 10 else 0)
        return ("+" + text) if self.signed and x > 0 else text


def format_value_axis(
    ax: Axes,
    unit: str = "count",
    currency: str = "EUR",
    language: str = "en",
    axis: str = "y",
    signed: bool = False,
) -> None:
    """Put a :class:`ValueFormatter` and a sensible tick locator on ``ax``'s value axis."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(ValueFormatter(unit, currency, language, signed))
    integer = str(unit) == "count"
    target.set_major_locator(
        MaxNLocator(nbins=6, integer=integer, min_n_ticks=3, steps=[1, 2, 2.5, 5, 10])
    )


# -------------------------------------------------------------------- date axes
class BabelDateFormatter(Formatter):
    """Date tick labels with Babel month names (``3 Nov`` / ``3 nov``, ``Nov 2026``)."""

    def __init__(self, skeleton: str, language: str = "en") -> None:
        self.skeleton = skeleton
        self.locale = i18n.locale_for(language)

    def __call__(self, x: float, pos: int | None = None) -> str:
        day = mdates.num2date(x).date()
        return format_skeleton(self.skeleton, day, locale=self.locale)


def _to_ts(value: Any) -> pd.Timestamp:
    if isinstance(value, float | np.floating):
        return pd.Timestamp(mdates.num2date(value)).tz_localize(None)
    return pd.Timestamp(value)


def format_date_axis(
    ax: Axes,
    start: dt.date | pd.Timestamp | str | None = None,
    end: dt.date | pd.Timestamp | str | None = None,
    language: str = "en",
) -> None:
    """Human date ticks on ``ax``'s x axis, thinned to at most ~8 labels.

    Up to two months: days (``1 Nov``, ``8 Nov``, ...); up to three years:
    months (``Nov 2026``) every 1, 2, 3, 4, 6 or 12 months; beyond: years.
    ``start``/``end`` default to the current x limits.
    """
    lo, hi = ax.get_xlim()
    a = _to_ts(start if start is not None else lo)
    b = _to_ts(end if end is not None else hi)
    days = max((b - a).days, 1)
    if days <= 16:
        locator: mdates.DateLocator = mdates.DayLocator(interval=max(1, days // 7))
        skeleton = "MMMd"
    elif days <= 62:
        locator = mdates.DayLocator(bymonthday=[1, 8, 15, 22, 29] if days <= 35 else [1, 15])
        skeleton = "MMMd"
    elif days <= 130:
        locator = mdates.DayLocator(bymonthday=[1, 15] if days <= 70 else [1])
        skeleton = "MMMd"
    elif days <= 3 * 366:
        months = days / 30.4
        step = next((s for s in (1, 2, 3, 4, 6, 12) if months / s <= 8), 12)
        locator = mdates.MonthLocator(bymonth=range(1, 13, step) if 12 % step == 0 else None)
        if 12 % step:
            locator = mdates.MonthLocator(interval=step)
        skeleton = "yMMM"
    else:
        years = days / 365.25
        locator = mdates.YearLocator(base=max(1, int(np.ceil(years / 8))))
        skeleton = "y"
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(BabelDateFormatter(skeleton, language))
    ax.xaxis.set_minor_locator(mdates.DayLocator() if days <= 62 else mdates.MonthLocator())
    ax.tick_params(axis="x", which="minor", length=1.5, colors="#bbbbbb")
    for label in ax.get_xticklabels():
        label.set_rotation(0)
        label.set_horizontalalignment("center")


def truncate(text: object, width: int = 24) -> str:
    """``text`` shortened to ``width`` characters with an ellipsis."""
    s = "" if i18n.is_missing(text) else str(text)
    return s if len(s) <= width else s[: width - 1].rstrip() + "\u2026"


__all__ = [
    "ACCENT",
    "BLUE",
    "DPI",
    "FIGSIZE",
    "GREY",
    "INK",
    "LINESTYLES",
    "MARKERS",
    "PALETTE",
    "SKY",
    "STATUS_COLOURS",
    "STATUS_HATCHES",
    "BabelDateFormatter",
    "ReportFigure",
    "ValueFormatter",
    "empty_figure",
    "format_date_axis",
    "format_value_axis",
    "new_figure",
    "style_axes",
    "theme_context",
    "theme_rc",
    "to_png",
    "truncate",
    "use_theme",
]
