"""The report charts: each function takes plain pandas objects and returns a Figure.

Design decisions
----------------
* **Plain inputs.** Charts take Series/DataFrames in the shapes of the
  architecture contracts (tidy KPI frame, KPI time series, forecast frame
  ``mean, lo_80, hi_80, lo_95, hi_95``, daily cumulative curve), never the
  engine objects, so they are testable alone and reusable by analysts.
* **Every chart handles empty input** (no rows, all NaN) by returning the
  explicit "No data for this period" figure of :func:`~kpireport.plots.theme.empty_figure`;
  NaNs inside data are gaps in lines and "–" labels on bars, never zeros.
* **All text goes through** :mod:`kpireport.i18n`: titles, axis labels with
  units and currency, legends, tick labels and value labels.
* **Greyscale-safe.** Series differ in lightness and line style; status bars
  carry hatches and their status as text; bars carry their values.
* **Legends sit below the axes** (``fig.legend(loc="outside lower center")``
  with constrained layout), so they never cover data.
* Figures are :class:`~kpireport.plots.theme.ReportFigure` objects not
  registered with pyplot: no ``plt.close`` needed in a batch, no double
  display in Jupyter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from kpireport import i18n
from kpireport.errors import KpiReportError
from kpireport.i18n import axis_label, check_language, kpi_label, t
from kpireport.plots import theme
from kpireport.plots.theme import (
    ACCENT,
    BLUE,
    GREY,
    INK,
    MUTED,
    SKY,
    STATUS_COLOURS,
    STATUS_HATCHES,
    empty_figure,
    format_date_axis,
    format_value_axis,
    new_figure,
    theme_context,
    truncate,
)

log = logging.getLogger("kpireport")

BAND_95 = "#dde8f3"
BAND_80 = "#a9c4de"
VALUE_LABEL_SIZE = 6.8
#: goal_overview refuses more bars than this (one line error naming a filter)
MAX_GOAL_BARS = 60


# ------------------------------------------------------------------- helpers
def _series(s: pd.Series | None) -> pd.Series | None:
    """A float Series with a sorted DatetimeIndex, or None when there is nothing to plot."""
    if s is None:
        return None
    s = pd.Series(s, dtype="float64") if not isinstance(s, pd.Series) else s.astype("float64")
    if len(s) == 0 or s.isna().all():
        return None
    s = s.copy()
    s.index = pd.DatetimeIndex(pd.to_datetime(s.index))
    return s.sort_index()


def _partial_last(series: Any, known: pd.Series) -> bool:
    """Whether the last known point of ``series`` is a period still running (``attrs["partial"]``)."""
    label = getattr(series, "attrs", {}).get("partial")
    if not label or len(known) < 2:
        return False
    from kpireport.periods import parse_period

    try:
        start = pd.Timestamp(parse_period(str(label)).start)
    except Exception:  # a label we cannot read: draw the series as it is
        return False
    return bool(start == known.index[-1])


def _frame(df: pd.DataFrame | None, required: Sequence[str] = ()) -> pd.DataFrame | None:
    if df is None or len(df) == 0:
        return None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise KpiReportError(
            f"The chart needs the column(s) {', '.join(missing)}; got {', '.join(map(str, df.columns))}."
        )
    return df


def _expect_frame(obj: Any, chart: str, expected: str) -> None:
    """One-line error when a chart gets something other than a DataFrame."""
    if obj is not None and not isinstance(obj, pd.DataFrame):
        raise KpiReportError(f"{chart} expects {expected}; got a {type(obj).__name__}.")


def _tidy_one(df: pd.DataFrame, chart: str, *, one_period: bool) -> pd.DataFrame:
    """A :func:`~kpireport.kpis.compute_kpis` frame narrowed to one KPI (one period), or an error."""
    kpis = pd.unique(df["kpi"].dropna())
    if len(kpis) > 1:
        raise KpiReportError(
            f"{chart} draws one KPI; this frame has {len(kpis)} ({', '.join(map(str, kpis[:4]))}"
            f"{' ...' if len(kpis) > 4 else ''}): pass df[df.kpi == '{kpis[0]}']."
        )
    if one_period and "period" in df.columns and df["period"].nunique() > 1:
        periods = pd.unique(df["period"])
        raise KpiReportError(
            f"{chart} draws one period; this frame has {len(periods)}: "
            f"pass df[df.period == '{periods[-1]}']."
        )
    return df


def _forecast_frame(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """A float copy of a forecast frame (column ``mean`` required) with a DatetimeIndex, or None."""
    fc = _frame(df, ("mean",))
    if fc is None:
        return None
    fc = fc.astype("float64")
    fc.index = pd.DatetimeIndex(pd.to_datetime(fc.index))
    return fc


def _anchored(fc: pd.DataFrame, at: pd.Timestamp, value: float) -> pd.DataFrame:
    """``fc`` with a first row at ``at`` where every column is ``value``.

    Joins a forecast line and its bands to the last actual, so they start where
    the actual line ends.
    """
    return pd.concat([pd.DataFrame({col: [value] for col in fc.columns}, index=[at]), fc])


def _draw_bands(ax: Axes, x: Any, fc: pd.DataFrame, lang: str) -> dict[str, Patch]:
    """Fill the 95 % and 80 % bands of ``fc`` (those it has columns for).

    Returns the legend patches keyed ``band_95``/``band_80``.
    """
    patches: dict[str, Patch] = {}
    for level, colour, zorder in (("95", BAND_95, 1), ("80", BAND_80, 2)):
        lo, hi = f"lo_{level}", f"hi_{level}"
        if {lo, hi} <= set(fc.columns):
            ax.fill_between(x, fc[lo], fc[hi], color=colour, lw=0, zorder=zorder)
            patches[f"band_{level}"] = Patch(
                facecolor=colour, label=t(f"legend.band_{level}", lang)
            )
    return patches


def _rotate_crowded_xticks(ax: Axes, n: int) -> None:
    """Slant the x tick labels when there are more than six, so long names do not overlap."""
    if n > 6:
        for lab in ax.get_xticklabels():
            lab.set_rotation(30)
            lab.set_horizontalalignment("right")


def _legend_below(fig: Figure, handles: list[Any], ncol: int | None = None) -> None:
    """Legend under the axes; ``handles`` are in reading order (row by row)."""
    if handles:
        ncol = ncol or min(len(handles), 4)
        nrow = -(-len(handles) // ncol)
        # matplotlib fills legends column by column: reorder so rows read left to right
        grid = [handles[r * ncol : (r + 1) * ncol] for r in range(nrow)]
        handles = [grid[r][c] for c in range(ncol) for r in range(nrow) if c < len(grid[r])]
        fig.legend(
            handles=handles,
            loc="outside lower center",
            ncol=ncol,
            frameon=False,
            handlelength=2.6,
            columnspacing=1.6,
        )


def _freq_axis_label(index: pd.DatetimeIndex, language: str) -> str:
    freq = index.freqstr or (pd.infer_freq(index) if len(index) >= 3 else None) or ""
    freq = freq.upper()
    if freq.startswith("W"):
        return t("axis.week", language)
    if freq.startswith(("D", "B")):
        return t("axis.date", language)
    if freq.startswith("Q"):
        return t("axis.quarter", language)
    if freq.startswith(("Y", "A")):
        return t("axis.year", language)
    return t("axis.month", language)


def _value_text(x: float, unit: str, currency: str, language: str) -> str:
    """Short value for labels on charts (``€1.25M``, ``1,240``, ``31.4%``)."""
    return i18n.fmt_value(x, unit, currency, language, compact=True)


def _bar_labels(ax: Axes, bars: Any, texts: Sequence[str], **kw: Any) -> None:
    ax.bar_label(
        bars, labels=list(texts), padding=2, fontsize=VALUE_LABEL_SIZE, color=theme.TEXT, **kw
    )


# ----------------------------------------------------------- development curve
def development_curve(
    cumulative: pd.Series | None,
    target: float | None = None,
    linear_pace: pd.Series | None = None,
    seasonal_pace: pd.Series | None = None,
    forecast_cone: pd.DataFrame | None = None,
    *,
    as_of: Any = None,
    unit: str = "currency",
    currency: str = "EUR",
    kpi: str | None = None,
    label: str | None = None,
    title: str | None = None,
    language: str = "en",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Cumulative actual by day vs linear and seasonal pace vs forecast cone, with the target.

    The key chart of the team report: are we on our way to this period's target?

    Parameters
    ----------
    cumulative
        Daily cumulative actual over the whole period, NaN after ``as_of``.
    target
        The goal's target for the period (a horizontal line), or None.
    linear_pace, seasonal_pace
        Daily expected cumulative value (linear, or from last year's profile).
    forecast_cone
        Daily index from ``as_of + 1`` to the period's last day with columns
        ``mean, lo_80, hi_80, lo_95, hi_95`` of the cumulative total.
    as_of
        The reporting day; defaults to the last non-NaN day of ``cumulative``.
    unit, currency
        Unit of the KPI (``currency``, ``count``, ...) for the value axis.
    kpi, label
        KPI name (translated) or a ready label for the value axis.
    title, language, figsize
        Chart title (default "Development curve"), ``en``/``nl`` and size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lang = check_language(language)
    title = t("heading.development_curve", lang) if title is None else title
    cum = _series(cumulative)
    cone = _forecast_frame(forecast_cone)
    if cone is not None and cone["mean"].isna().all():
        cone = None
    if cum is None and cone is None:
        return empty_figure(title, lang, figsize)

    name = label or (kpi_label(kpi, lang) if kpi else t("legend.actual", lang))
    paces = {k: _series(v) for k, v in (("linear", linear_pace), ("seasonal", seasonal_pace))}
    pieces = [x.index for x in (cum, *paces.values()) if x is not None]
    if cone is not None:
        pieces.append(cone.index)
    start = min(p.min() for p in pieces)
    end = max(p.max() for p in pieces)
    if as_of is not None:
        as_of_ts = pd.Timestamp(as_of).normalize()
    elif cum is not None:
        as_of_ts = cum.last_valid_index()
    else:
        as_of_ts = cone.index.min() - pd.Timedelta(days=1)  # type: ignore[union-attr]

    with theme_context():
        fig, ax = new_figure(figsize)
        h: dict[str, Any] = {}
        top_values: list[float] = [0.0]
        bottom_values: list[float] = [0.0]

        # forecast cone, joined to the last actual so the band starts at as_of
        if cone is not None:
            c = cone
            if cum is not None and as_of_ts in cum.index and pd.notna(cum.get(as_of_ts)):
                c = _anchored(cone, as_of_ts, float(cum[as_of_ts]))
            x = mdates.date2num(c.index.to_pydatetime())
            h.update(_draw_bands(ax, x, c, lang))
            if "band_95" in h:
                top_values.append(float(np.nanmax(c["hi_95"])))
                bottom_values.append(float(np.nanmin(c["lo_95"])))
            if "band_80" in h:
                top_values.append(float(np.nanmax(c["hi_80"])))
            end_mean = c["mean"].dropna()
            fc_label = t("legend.forecast", lang)
            if len(end_mean):
                fc_label += f" ({_value_text(end_mean.iloc[-1], unit, currency, lang)})"
            (line,) = ax.plot(x, c["mean"], color=BLUE, ls="--", lw=1.5, zorder=4, label=fc_label)
            h["forecast"] = line
            top_values.append(float(np.nanmax(c["mean"])))

        styles = {
            "linear": (GREY, (0, (1.5, 1.5)), 1.3, "legend.linear_pace"),
            "seasonal": (MUTED, "-.", 1.3, "legend.seasonal_pace"),
        }
        for key, s in paces.items():
            if s is None:
                continue
            colour, ls, lw, text = styles[key]
            (line,) = ax.plot(
                s.index, s.values, color=colour, ls=ls, lw=lw, zorder=3, label=t(text, lang)
            )
            h[key] = line
            top_values.append(float(np.nanmax(s.values)))

        if cum is not None:
            actual = cum[cum.index <= as_of_ts].dropna()
            if len(actual):
                (line,) = ax.plot(
                    actual.index,
                    actual.values,
                    color=INK,
                    lw=2.4,
                    zorder=6,
                    label=f"{t('legend.actual_to_date', lang)} ({_value_text(actual.iloc[-1], unit, currency, lang)})",
                )
                ax.plot([actual.index[-1]], [actual.iloc[-1]], "o", color=INK, ms=5, zorder=7)
                h["actual"] = line
                top_values.append(float(actual.max()))
                bottom_values.append(float(actual.min()))

        if target is not None and not i18n.is_missing(target):
            tv = float(target)
            line = ax.axhline(
                tv,
                color=ACCENT,
                lw=1.4,
                ls="-",
                zorder=5,
                label=t("legend.target_value", lang, value=_value_text(tv, unit, currency, lang)),
            )
            h["target"] = line
            top_values.append(tv)
            # direct label at the top left, where a cumulative curve never is
            ax.annotate(
                line.get_label(),
                xy=(mdates.date2num(start), tv),
                xytext=(2, 3),
                textcoords="offset points",
                ha="left",
                va="bottom",
                fontsize=theme.SMALL,
                color=ACCENT,
                fontweight="bold",
            )

        if start <= as_of_ts <= end:
            ax.axvline(as_of_ts, color=GREY, lw=0.8, ls=":", zorder=2)
            ax.annotate(
                t("legend.as_of", lang, date=i18n.fmt_date(as_of_ts, lang, "MMMd")),
                xy=(mdates.date2num(as_of_ts), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -2),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=theme.SMALL,
                color=MUTED,
            )

        hi, lo = max(top_values), min(bottom_values)
        ax.set_ylim(lo - 0.02 * (hi - lo) if lo < 0 else 0, hi * 1.1 if hi > 0 else 1)
        ax.set_xlim(mdates.date2num(start) - 0.5, mdates.date2num(end) + 0.5)
        format_date_axis(ax, start, end, lang)
        format_value_axis(ax, unit, currency, lang)
        ax.set_ylabel(axis_label(t("axis.cumulative", lang, kpi=name), unit, currency, lang))
        ax.set_xlabel(t("axis.date", lang))
        ax.set_title(title)
        order = ("actual", "forecast", "linear", "seasonal", "target", "band_80", "band_95")
        _legend_below(fig, [h[k] for k in order if k in h])
    return fig


# ----------------------------------------------------------------- KPI trend
def kpi_trend(
    series: pd.Series | None,
    forecast: pd.DataFrame | None = None,
    *,
    unit: str = "count",
    currency: str = "EUR",
    kpi: str | None = None,
    label: str | None = None,
    title: str | None = None,
    language: str = "en",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """History of a KPI with its forecast and 80 %/95 % bands.

    Parameters
    ----------
    series
        Regular KPI series (DatetimeIndex of period starts: ``MS``, ``W-MON``,
        ``D``), as :func:`~kpireport.kpis.kpi_series` returns; or a
        :func:`~kpireport.kpis.compute_kpis` frame of one KPI and one scope id
        over several periods (its ``unit`` and ``kpi`` are used).
    forecast
        Forecast frame (index: future period starts; ``mean, lo_80, hi_80, lo_95, hi_95``).
    unit, currency, kpi, label, title, language, figsize
        As in :func:`development_curve`; the title defaults to the KPI label.
    """
    if isinstance(series, pd.DataFrame):
        if not {"kpi", "value", "period"} <= set(series.columns):
            raise KpiReportError(
                "kpi_trend expects a Series from kpi_series() or a compute_kpis() frame of one KPI; "
                f"got a DataFrame with columns {', '.join(map(str, list(series.columns)[:8]))}."
            )
        frame = _tidy_one(series, "kpi_trend", one_period=False)
        if "scope_id" in frame.columns and frame["scope_id"].nunique() > 1:
            first = frame["scope_id"].dropna().iloc[0]
            raise KpiReportError(
                f"kpi_trend draws one scope id; this frame has {frame['scope_id'].nunique()}: "
                f"pass df[df.scope_id == '{first}'] (or compute_kpis(..., scope_id='{first}'))."
            )
        if kpi is None and len(frame):
            kpi = str(frame["kpi"].iloc[0])
        if unit == "count" and "unit" in frame.columns and len(frame):
            unit = str(frame["unit"].iloc[0])
        from kpireport.periods import parse_period

        starts = (
            frame["period_start"]
            if "period_start" in frame.columns
            else frame["period"].map(lambda p: parse_period(p).start)
        )
        partial_last = bool(
            "complete" in frame.columns and len(frame) and not frame["complete"].iloc[-1]
        )
        series = pd.Series(frame["value"].to_numpy(dtype="float64"), index=pd.DatetimeIndex(starts))
        series.attrs["partial"] = str(frame["period"].iloc[-1]) if partial_last else None
    elif series is not None and not isinstance(series, pd.Series):
        raise KpiReportError(
            "kpi_trend expects a Series from kpi_series() or a compute_kpis() frame of one KPI; "
            f"got a {type(series).__name__}."
        )
    if isinstance(series, pd.Series) and kpi is None and series.name in _kpi_names():
        kpi = str(series.name)
    if isinstance(series, pd.Series) and unit == "count" and series.attrs.get("unit"):
        unit = str(series.attrs["unit"])
    _expect_frame(forecast, "kpi_trend's forecast=", "the DataFrame forecast() returns")
    lang = check_language(language)
    name = label or (kpi_label(kpi, lang) if kpi else t("legend.history", lang))
    title = name if title is None else title
    hist = _series(series)
    fc = _forecast_frame(forecast)
    if hist is None:
        return empty_figure(title, lang, figsize)

    with theme_context():
        fig, ax = new_figure(figsize)
        handles: list[Any] = []
        # a last period still running (kpi_series attrs["partial"], compute_kpis
        # complete=False) is a value to date: drawn hollow on a dotted segment, so a
        # month half-way through does not read as a drop
        known = hist.dropna()
        partial = _partial_last(series, known)
        done = hist[hist.index < known.index[-1]] if partial else hist
        (line,) = ax.plot(
            done.index,
            done.values,
            color=INK,
            lw=1.8,
            marker="o",
            ms=3.2,
            zorder=5,
            label=t("legend.actual", lang),
        )
        handles.append(line)
        if partial:
            (line,) = ax.plot(
                known.index[-2:],
                known.values[-2:],
                color=INK,
                lw=1.4,
                ls=":",
                marker="o",
                ms=4.5,
                mfc="white",
                markevery=[1],
                zorder=5,
                label=t("legend.actual_to_date", lang),
            )
            handles.append(line)
        end = hist.index.max()
        if fc is not None and len(fc) and not fc["mean"].isna().all():
            last = hist.dropna()
            c = _anchored(fc, last.index[-1], last.iloc[-1]) if len(last) else fc
            bands = _draw_bands(ax, c.index, c, lang)
            (line,) = ax.plot(
                c.index,
                c["mean"],
                color=BLUE,
                ls="--",
                lw=1.5,
                marker="s",
                ms=3,
                mfc="white",
                zorder=4,
                label=t("legend.forecast", lang),
            )
            handles += [line, *(bands[k] for k in ("band_80", "band_95") if k in bands)]
            end = max(end, fc.index.max())
        start = hist.index.min()
        pad = pd.Timedelta(days=max(1.0, (end - start).days * 0.01))
        ax.set_xlim(start - pad, end + pad)
        format_date_axis(ax, start, end, lang)
        format_value_axis(ax, unit, currency, lang)
        lo = np.nanmin(
            [
                np.nanmin(hist.values),
                *([np.nanmin(fc.get("lo_95", fc["mean"]))] if fc is not None and len(fc) else []),
            ]
        )
        if lo >= 0:
            ax.set_ylim(bottom=0)
        hi = np.nanmax(np.abs(hist.values)) if hist.notna().any() else np.nan
        if lo >= 0 and not (hi > 0) and (fc is None or not len(fc)):
            # an all-zero series would get matplotlib's default ±0.05 span
            # ("€0.05"): give it a span that reads as "nothing yet" in its unit
            ax.set_ylim(0, 1.0 if unit == "percent" else 10.0 if unit != "currency" else 1000.0)
        ax.set_ylabel(axis_label(name, unit, currency, lang))
        ax.set_xlabel(_freq_axis_label(hist.index, lang))
        ax.set_title(title)
        _legend_below(fig, handles)
    return fig


# -------------------------------------------------------------- goal overview
def _kpi_names() -> set[str]:
    from kpireport.kpis.registry import REGISTRY

    return set(REGISTRY)


def _goal_labels(df: pd.DataFrame, lang: str) -> list[str]:
    if "label" in df.columns and not (
        "scope" in df.columns and not any(" · " in str(x) for x in df["label"])
    ):
        return [truncate(x, 40) for x in df["label"]]
    several = "period" in df.columns and df["period"].nunique() > 1
    if "label" in df.columns:  # evaluate_goals(): the KPI's label; add who (and when)
        out = []
        for lab, scope, sid, per in zip(
            df["label"], df["scope"], df.get("scope_id", pd.Series(index=df.index)),
            df.get("period", pd.Series(index=df.index)), strict=True,
        ):  # fmt: skip
            who = (
                str(sid)
                if not i18n.is_missing(sid)
                else t(f"scope.{scope}", lang, default=str(scope))
            )
            out.append(truncate(f"{lab} · {who}" + (f" · {per}" if several else ""), 48))
        return out
    out = []
    for _, row in df.iterrows():
        name = kpi_label(str(row.get("kpi", "")), lang) if "kpi" in df.columns else ""
        scope_id = row.get("scope_id")
        who = (
            str(scope_id)
            if not i18n.is_missing(scope_id)
            else t(
                f"scope.{row.get('scope', 'organisation')}", lang, default=str(row.get("scope", ""))
            )
        )
        out.append(truncate(f"{name} · {who}" if name else who, 40))
    return out


def goal_overview(
    goals: pd.DataFrame | None,
    *,
    title: str | None = None,
    language: str = "en",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Horizontal bars of goal attainment (% of target) with status colours and a 100 % line.

    Parameters
    ----------
    goals
        One row per goal. Attainment is taken from ``attainment`` (fraction) or
        computed as ``forecast / target`` (else ``actual / target``); when both
        ``forecast`` and ``actual`` exist, the bar is the forecast at period end
        and a tick marks the actual to date. Optional: ``label`` (else built
        from ``kpi`` and ``scope_id``/``scope``), ``status``, ``direction``
        (``at_most`` goals are marked "≤"; above 100 % is bad for them, which
        their status colour shows).
    """
    _expect_frame(goals, "goal_overview", "the DataFrame evaluate_goals() returns")
    if goals is not None and len(goals) > MAX_GOAL_BARS:
        hint = (
            f": pass goals[goals.period == '{goals['period'].iloc[-1]}']"
            if "period" in goals.columns
            else ""
        )
        raise KpiReportError(
            f"goal_overview draws at most {MAX_GOAL_BARS} goals; this frame has {len(goals)}{hint}."
        )
    lang = check_language(language)
    title = t("heading.goal_attainment", lang) if title is None else title
    df = _frame(goals)
    if df is None:
        return empty_figure(title, lang, figsize)
    df = df.reset_index(drop=True)
    target = pd.to_numeric(df.get("target"), errors="coerce") if "target" in df.columns else None

    def ratio(col: str) -> pd.Series | None:
        if col not in df.columns or target is None:
            return None
        num = pd.to_numeric(df[col], errors="coerce").astype("float64")
        return num / target.where(target != 0)

    if "attainment" in df.columns:
        bar = pd.to_numeric(df["attainment"], errors="coerce").astype("float64")
        actual = ratio("actual")
    else:
        fc, actual = ratio("forecast"), ratio("actual")
        bar = fc if fc is not None else actual
        if fc is not None and actual is not None:  # a closed period has no forecast: its actual
            bar = fc.where(fc.notna(), actual)
        if fc is None:
            actual = None
    if bar is None:
        raise KpiReportError(
            "goal_overview needs 'attainment', or 'target' with 'forecast' or 'actual' "
            "(the DataFrame evaluate_goals() returns)."
        )
    if bar.isna().all() and (actual is None or actual.isna().all()):
        return empty_figure(title, lang, figsize)

    labels = _goal_labels(df, lang)
    directions = (
        df["direction"].astype("str").tolist()
        if "direction" in df.columns
        else ["at_least"] * len(df)
    )
    labels = [
        f"{lab} (≤)" if d == "at_most" else lab for lab, d in zip(labels, directions, strict=True)
    ]
    statuses = [
        "no_data" if i18n.is_missing(s) else str(s)
        for s in (df["status"] if "status" in df.columns else [None] * len(df))
    ]
    n = len(df)
    finite = (
        pd.concat([bar, actual if actual is not None else bar])
        .replace([np.inf, -np.inf], np.nan)
        .dropna()
    )
    vmax = float(finite.max()) if len(finite) else 1.0
    xmax = max(1.25, min(vmax * 1.12, 2.5)) + 0.35  # room for the value labels
    height = min(max(5.0, 0.72 * n + 2.8), 24.0) / 2.54

    with theme_context():
        fig, ax = new_figure(figsize or (theme.FIGSIZE[0], height))
        theme.style_axes(ax, grid_axis="x")
        y = np.arange(n)
        shown = bar.fillna(0).clip(lower=0, upper=xmax - 0.35)
        colours = [STATUS_COLOURS.get(s, STATUS_COLOURS["no_data"]) for s in statuses]
        hatches = [STATUS_HATCHES.get(s, "") for s in statuses]
        bars = ax.barh(
            y, shown, height=0.62, color=colours, hatch=hatches, edgecolor="white", zorder=3
        )
        handles: list[Any] = []
        if actual is not None and "attainment" not in df.columns and "forecast" in df.columns:
            ax.scatter(
                actual.clip(upper=xmax - 0.35),
                y,
                marker="|",
                s=160,
                linewidths=2.2,
                color=INK,
                zorder=5,
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="|",
                    ls="none",
                    ms=10,
                    mew=2.2,
                    color=INK,
                    label=t("legend.actual_attainment", lang),
                )
            )
        texts = [
            f"{i18n.fmt_percent(v, lang, decimals=0)} · {i18n.status_label(s, lang)}"
            for v, s in zip(bar, statuses, strict=True)
        ]
        _bar_labels(ax, bars, texts)
        ax.axvline(1.0, color=INK, lw=1.0, zorder=4)
        ax.set_xlim(0, xmax)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _p: i18n.fmt_percent(v, lang, decimals=0))
        )
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        ax.set_xlabel(t("axis.attainment", lang))
        ax.set_ylabel(t("col.goal", lang))
        ax.set_title(title)
        present = [s for s in STATUS_COLOURS if s in statuses]
        handles += [
            Patch(
                facecolor=STATUS_COLOURS[s],
                hatch=STATUS_HATCHES[s],
                edgecolor="white",
                label=i18n.status_label(s, lang),
            )
            for s in present
        ]
        _legend_below(fig, handles, ncol=min(len(handles), 6))
    return fig


# --------------------------------------------------------------------- funnel
def funnel(
    stages: pd.Series | None,
    *,
    title: str | None = None,
    language: str = "en",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Funnel bars (leads → qualified leads → deals → won) with the conversion between stages.

    Parameters
    ----------
    stages
        Counts in funnel order; the index holds stage keys (``leads``, ``sql``,
        ``deals``, ``won`` are translated) or ready labels.
    """
    lang = check_language(language)
    title = t("heading.funnel", lang) if title is None else title
    if stages is None or len(stages) == 0:
        return empty_figure(title, lang, figsize)
    values = pd.to_numeric(pd.Series(stages), errors="coerce").astype("float64")
    if values.isna().all() or values.fillna(0).eq(0).all():
        return empty_figure(title, lang, figsize)
    labels = [t(f"funnel.{k}", lang, default=str(k)) for k in values.index]
    n = len(values)
    height = min(max(5.5, 1.1 * n + 2.2), 14.0) / 2.54

    with theme_context():
        fig, ax = new_figure(figsize or (theme.FIGSIZE[0], height))
        theme.style_axes(ax, grid_axis="x")
        y = np.arange(n)
        shades = [INK, BLUE, "#6f95bf", SKY, "#c9d9ea", "#e1e9f2"]
        colours = [shades[min(i, len(shades) - 1)] for i in range(n)]
        bars = ax.barh(y, values.fillna(0), height=0.66, color=colours, zorder=3)
        _bar_labels(ax, bars, [i18n.fmt_number(v, lang, decimals=0) for v in values])
        vmax = float(values.max())
        for i in range(1, n):
            prev, cur = values.iloc[i - 1], values.iloc[i]
            conv = cur / prev if prev and not i18n.is_missing(prev) else np.nan
            ax.annotate(
                "↓ " + t("funnel.conversion", lang, pct=i18n.fmt_percent(conv, lang)),
                xy=(vmax * 1.32, i - 0.5),
                ha="left",
                va="center",
                fontsize=theme.SMALL,
                color=MUTED,
                annotation_clip=False,
            )
        ax.set_xlim(0, vmax * 1.62)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        format_value_axis(ax, "count", "EUR", lang, axis="x")
        ax.set_xlabel(t("axis.funnel_count", lang))
        ax.set_ylabel(t("axis.stage", lang))
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------- leaderboard
def leaderboard(
    df: pd.DataFrame | None,
    value_col: str = "value",
    label_col: str = "name",
    *,
    unit: str | None = None,
    currency: str = "EUR",
    kpi: str | None = None,
    label: str | None = None,
    highlight: str | None = None,
    top: int | None = 15,
    max_label: int = 24,
    title: str | None = None,
    language: str = "en",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Horizontal bars sorted from best to worst, with values at the bar ends.

    Parameters
    ----------
    df, value_col, label_col
        One row per seller (or team, customer): the value and the name — e.g.
        ``compute_kpis(data, "2026-11", by="seller", kpis=["won_value"])``
        (one KPI, one period; its ``unit`` and ``kpi`` are used).
    unit
        ``currency``, ``count``, ``percent`` or ``days`` (default: the
        frame's ``unit`` column, else ``currency``).
    highlight
        A name to draw in the accent colour (the seller of a scorecard).
    top
        Show only the best ``top`` rows (None: all).
    max_label
        Longer names are cut with an ellipsis.
    """
    _expect_frame(df, "leaderboard", "a DataFrame such as compute_kpis(..., by='seller')")
    if df is not None and "kpi" in df.columns and len(df):
        df = _tidy_one(df, "leaderboard", one_period=True)
        kpi = kpi or str(df["kpi"].iloc[0])
        if unit is None and "unit" in df.columns:
            unit = str(df["unit"].iloc[0])
        if label_col not in df.columns and "scope_id" in df.columns:
            label_col = "scope_id"
    unit = unit or "currency"
    lang = check_language(language)
    title = t("heading.seller_leaderboard", lang) if title is None else title
    data = _frame(df, (value_col, label_col))
    if data is None:
        return empty_figure(title, lang, figsize)
    data = data[[label_col, value_col]].copy()
    data[value_col] = pd.to_numeric(data[value_col], errors="coerce").astype("float64")
    data = data.dropna(subset=[value_col]).sort_values(value_col, ascending=False, kind="stable")
    if top:
        data = data.head(top)
    if data.empty:
        return empty_figure(title, lang, figsize)
    n = len(data)
    height = min(max(5.0, 0.55 * n + 2.4), 24.0) / 2.54
    name = label or (kpi_label(kpi, lang) if kpi else str(value_col))

    with theme_context():
        fig, ax = new_figure(figsize or (theme.FIGSIZE[0], height))
        theme.style_axes(ax, grid_axis="x")
        y = np.arange(n)
        names = data[label_col].tolist()
        colours = [
            ACCENT if highlight is not None and str(x) == str(highlight) else BLUE for x in names
        ]
        bars = ax.barh(y, data[value_col], height=0.66, color=colours, zorder=3)
        _bar_labels(ax, bars, [_value_text(v, unit, currency, lang) for v in data[value_col]])
        ax.set_yticks(y, [truncate(x, max_label) for x in names])
        ax.invert_yaxis()
        lo, hi = float(data[value_col].min()), float(data[value_col].max())
        ax.set_xlim(min(0, lo * 1.2), max(hi * 1.18, 1e-9) if hi > 0 else 1)
        if lo < 0:
            ax.axvline(0, color=INK, lw=0.8)
        format_value_axis(ax, unit, currency, lang, axis="x")
        ax.set_xlabel(axis_label(name, unit, currency, lang))
        ax.set_ylabel(
            t("col.seller", lang)
            if label_col in ("name", "seller", "seller_id")
            else t(f"col.{label_col}", lang, default=str(label_col))
        )
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------- YoY months
def yoy_months(
    this_year: pd.Series | None,
    last_year: pd.Series | None,
    *,
    unit: str = "currency",
    currency: str = "EUR",
    kpi: str | None = "revenue",
    label: str | None = None,
    title: str | None = None,
    language: str = "en",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Seasonal view: each month of this year next to the same month last year.

    Parameters
    ----------
    this_year, last_year
        Monthly series (DatetimeIndex of month starts); months are matched by
        calendar month, missing months show no bar.
    """
    lang = check_language(language)
    title = t("heading.seasonal_view", lang) if title is None else title
    cur, prev = _series(this_year), _series(last_year)
    if cur is None and prev is None:
        return empty_figure(title, lang, figsize)
    name = label or (kpi_label(kpi, lang) if kpi else "")

    def by_month(s: pd.Series | None) -> pd.Series:
        if s is None:
            return pd.Series(np.nan, index=range(1, 13))
        return s.groupby(s.index.month).sum(min_count=1).reindex(range(1, 13))

    a, b = by_month(cur), by_month(prev)
    year_a = str(cur.index[0].year) if cur is not None else t("col.period", lang)
    year_b = str(prev.index[0].year) if prev is not None else t("col.last_year", lang)

    with theme_context():
        fig, ax = new_figure(figsize)
        x = np.arange(12)
        w = 0.4
        bars_b = ax.bar(
            x - w / 2,
            b.fillna(0),
            width=w,
            color=SKY,
            hatch="////",
            edgecolor="white",
            zorder=3,
            label=year_b,
        )
        bars_a = ax.bar(x + w / 2, a.fillna(0), width=w, color=INK, zorder=3, label=year_a)
        for bars, vals in ((bars_a, a), (bars_b, b)):
            for patch, v in zip(bars, vals, strict=True):
                if i18n.is_missing(v):
                    patch.set_visible(False)
        ax.set_xticks(x, i18n.month_names(lang))
        ax.tick_params(axis="x", length=0)
        format_value_axis(ax, unit, currency, lang)
        ax.set_ylabel(axis_label(name, unit, currency, lang))
        ax.set_xlabel(t("axis.month", lang))
        ax.set_title(title)
        _legend_below(fig, [bars_a, bars_b])
    return fig


# ---------------------------------------------------------------- growth bars
_GROWTH_KEYS = ("mom", "yoy", "ytd")


def _growth_columns(df: pd.DataFrame, columns: Sequence[str] | None) -> list[tuple[str, str]]:
    if columns is not None:
        found = list(columns)
    else:
        found = [
            c
            for key in _GROWTH_KEYS
            for c in (key, f"revenue_growth_{key}", f"growth_{key}")
            if c in df.columns
        ]
    out = []
    for c in found:
        key = str(c).removeprefix("revenue_").removeprefix("growth_")
        out.append((c, key))
    return out


def growth_bars(
    df: pd.DataFrame | None,
    *,
    label_col: str | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    language: str = "en",
    max_label: int = 16,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Growth (MoM, YoY, YTD) per team as grouped bars around a zero line, signed labels.

    Parameters
    ----------
    df
        One row per team (or customer). Growth columns are fractions named
        ``mom``/``yoy``/``ytd`` or ``revenue_growth_mom``/... (or pass ``columns``).
    label_col
        Column with the row names (default: ``team``, ``label``, ``name`` or the index).
    """
    _expect_frame(df, "growth_bars", "the DataFrame growth_table() returns")
    lang = check_language(language)
    title = t("heading.revenue_growth", lang) if title is None else title
    data = _frame(df)
    if data is None:
        return empty_figure(title, lang, figsize)
    cols = _growth_columns(data, columns)
    if not cols:
        raise KpiReportError(
            "growth_bars expects the DataFrame growth_table() returns (columns growth_mom, "
            f"growth_yoy, growth_ytd); got columns {', '.join(map(str, list(data.columns)[:8]))}."
        )
    if "period" in data.columns and data["period"].nunique() > 1:
        periods = pd.unique(data["period"])
        raise KpiReportError(
            f"growth_bars draws one period; this frame has {len(periods)}: "
            f"pass df[df.period == '{periods[-1]}']."
        )
    values = data[[c for c, _ in cols]].apply(pd.to_numeric, errors="coerce").astype("float64")
    values = values.replace([np.inf, -np.inf], np.nan)
    if values.isna().all().all():
        return empty_figure(title, lang, figsize)
    if label_col is None:
        label_col = next(
            (c for c in ("team", "label", "name", "scope_id") if c in data.columns), None
        )
    names = data[label_col].tolist() if label_col else [str(i) for i in data.index]
    if label_col == "scope_id" and "scope" in data.columns:  # growth_table(): name the scope
        names = [
            t(f"scope.{sc}", lang, default=str(sc)) if i18n.is_missing(n) else n
            for n, sc in zip(names, data["scope"], strict=True)
        ]
        scopes = pd.unique(data["scope"])
        label_col = f"{scopes[0]}" if len(scopes) == 1 else label_col
    names = [truncate(x, max_label) for x in names]

    with theme_context():
        fig, ax = new_figure(figsize)
        n, k = len(data), len(cols)
        x = np.arange(n)
        w = 0.8 / k
        fills = [(INK, ""), (BLUE, ""), (SKY, "////")]
        handles = []
        span = float(np.nanmax(np.abs(values.to_numpy()))) or 0.01
        for j, (col, key) in enumerate(cols):
            colour, hatch = fills[j % len(fills)]
            v = values[col]
            bars = ax.bar(
                x + (j - (k - 1) / 2) * w,
                v.fillna(0),
                width=w * 0.92,
                color=colour,
                hatch=hatch,
                edgecolor="white",
                zorder=3,
                label=t(f"growth.{key}", lang, default=str(col)),
            )
            handles.append(bars)
            for patch, val in zip(bars, v, strict=True):
                small = pd.isna(val) or abs(val) < 0.1
                text = i18n.fmt_percent(val, lang, signed=True, decimals=1 if small else 0)
                above = pd.isna(val) or val >= 0
                tip = float(val) if pd.notna(val) else 0.0
                ax.annotate(
                    text,
                    xy=(patch.get_x() + patch.get_width() / 2, tip),
                    xytext=(0, 2 if above else -2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom" if above else "top",
                    fontsize=VALUE_LABEL_SIZE - 0.6 if n * k > 12 else VALUE_LABEL_SIZE,
                    color=theme.TEXT,
                )
        ax.axhline(0, color=INK, lw=0.9, zorder=4)
        lo = float(np.nanmin(values.to_numpy()))
        hi = float(np.nanmax(values.to_numpy()))
        ax.set_ylim(min(lo, 0) - 0.14 * span, max(hi, 0) + 0.14 * span)
        ax.set_xticks(x, names)
        ax.tick_params(axis="x", length=0)
        _rotate_crowded_xticks(ax, n)
        format_value_axis(ax, "percent", "EUR", lang, signed=True)
        ax.set_ylabel(t("axis.growth", lang))
        ax.set_xlabel(
            t(f"col.{label_col}", lang, default=str(label_col))
            if label_col
            else t("col.team", lang)
        )
        ax.set_title(title)
        _legend_below(fig, handles)
    return fig


# ------------------------------------------------------------- pipeline by stage
def pipeline_by_stage(
    df: pd.DataFrame | None,
    *,
    stage_col: str = "stage",
    value_col: str = "value",
    weighted_col: str = "weighted",
    currency: str = "EUR",
    title: str | None = None,
    language: str = "en",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Open pipeline value by stage: unweighted next to weighted by probability.

    Parameters
    ----------
    df
        Either one row per stage (``stage``, ``value``, ``weighted``) or one
        row per open deal (``stage``, ``value``, ``probability``); deals are
        summed per stage in order of first appearance (sort the frame to set
        the stage order). A missing stage is shown as "–".
    """
    lang = check_language(language)
    title = t("heading.pipeline", lang) if title is None else title
    data = _frame(df, (stage_col, value_col))
    if data is None:
        return empty_figure(title, lang, figsize)
    data = data.copy()
    data[value_col] = pd.to_numeric(data[value_col], errors="coerce").astype("float64")
    if weighted_col not in data.columns and "probability" in data.columns:
        data[weighted_col] = data[value_col] * pd.to_numeric(data["probability"], errors="coerce")
    data[stage_col] = data[stage_col].astype("object").where(data[stage_col].notna(), i18n.MISSING)
    agg = {value_col: lambda s: s.sum(min_count=1)}
    if weighted_col in data.columns:
        agg[weighted_col] = lambda s: s.sum(min_count=1)
    grouped = data.groupby(stage_col, sort=False).agg(agg)
    if grouped[value_col].isna().all():
        return empty_figure(title, lang, figsize)

    with theme_context():
        fig, ax = new_figure(figsize)
        x = np.arange(len(grouped))
        has_w = weighted_col in grouped.columns
        w = 0.38 if has_w else 0.6
        bars_u = ax.bar(
            x - (w / 2 if has_w else 0),
            grouped[value_col].fillna(0),
            width=w,
            color=SKY,
            hatch="////",
            edgecolor="white",
            zorder=3,
            label=t("legend.unweighted", lang),
        )
        _bar_labels(
            ax, bars_u, [_value_text(v, "currency", currency, lang) for v in grouped[value_col]]
        )
        handles = [bars_u]
        if has_w:
            bars_w = ax.bar(
                x + w / 2,
                grouped[weighted_col].fillna(0),
                width=w,
                color=INK,
                zorder=3,
                label=t("legend.weighted", lang),
            )
            _bar_labels(
                ax,
                bars_w,
                [_value_text(v, "currency", currency, lang) for v in grouped[weighted_col]],
            )
            handles.append(bars_w)
        # stage codes are stored lower case ("needs analysis"): show them as labels
        names = [truncate(str(s)[:1].upper() + str(s)[1:], 18) for s in grouped.index]
        ax.xaxis.set_major_locator(FixedLocator(x))
        ax.set_xticks(x, names)
        ax.tick_params(axis="x", length=0)
        _rotate_crowded_xticks(ax, len(grouped))
        format_value_axis(ax, "currency", currency, lang)
        ax.set_ylim(0, float(np.nanmax(grouped.to_numpy())) * 1.15 or 1)
        ax.set_ylabel(axis_label(t("kpi.pipeline_value", lang), "currency", currency, lang))
        ax.set_xlabel(t("axis.stage", lang))
        ax.set_title(title)
        _legend_below(fig, handles)
    return fig


__all__ = [
    "development_curve",
    "funnel",
    "goal_overview",
    "growth_bars",
    "kpi_trend",
    "leaderboard",
    "pipeline_by_stage",
    "yoy_months",
]
