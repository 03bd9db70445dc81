"""Forecast command: ``kpireport forecast`` (docs/FORECASTING.md, docs/ARCHITECTURE.md).

``kpireport forecast --source S --kpi NAME [--by SCOPE] [--scope-id ID]
[--grain month|week|day|quarter] --horizon N [--as-of D] [--format table|csv|json]``
forecasts one KPI series of one scope and prints ``period, mean, lo_80, hi_80,
lo_95, hi_95, model``.

Design decisions
----------------
* **History = complete periods only.** The series comes from
  ``kpi_series(data, kpi, scope, scope_id, grain, end=as_of, as_of=as_of)``,
  whose last period is the one containing ``as_of``, cut to date. That
  partial period is dropped from the history unless ``as_of`` is its last day
  (then it is complete): a half-month of leads is not a low month. The
  forecast therefore starts with the period containing ``as_of`` (its full
  total, not the rest of it; for the rest-of-period view with the actual to
  date use ``kpireport goals``), followed by ``horizon - 1`` later periods.
* Count KPIs (unit ``count``) are never forecast below zero; other KPIs use
  the library's automatic detection (non-negative integer series).
* JSON is a list of records ``{kpi, scope, scope_id, period, mean, lo_80,
  hi_80, lo_95, hi_95, model}``; CSV has the same columns (text cells that a
  spreadsheet would run as a formula are prefixed with ``'``); the table shows
  the model once, under the numbers.
* ``--as-of`` defaults to today (read only in
  :func:`kpireport.cli.data.cli_default_as_of`).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TextIO

import pandas as pd

from kpireport.cli import args as opts
from kpireport.cli.data import load_source
from kpireport.cli.output import write_machine_readable
from kpireport.constants import Grain, Scope
from kpireport.errors import ForecastError

FORMATS = ("table", "csv", "json")
GRAINS = (Grain.MONTH.value, Grain.WEEK.value, Grain.DAY.value, Grain.QUARTER.value)
NUMBER_COLUMNS = ("mean", "lo_80", "hi_80", "lo_95", "hi_95")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``forecast`` sub-command to the top-level parser."""
    p = sub.add_parser(
        "forecast",
        help="forecast a KPI for the next periods with 80/95 %% intervals",
        description=(
            "Forecast one KPI of one scope from its complete past periods "
            "(the period containing --as-of is the first forecast row)."
        ),
    )
    opts.add_source(p, required=True)
    p.add_argument(
        "--kpi", required=True, metavar="NAME", help="KPI name (see kpireport kpis --list)"
    )
    opts.add_by(p)
    p.add_argument("--scope-id", dest="scope_id", metavar="ID", help="team, seller or company id")
    p.add_argument("--grain", default=Grain.MONTH.value, choices=GRAINS, help="default: month")
    p.add_argument("--horizon", required=True, type=int, metavar="N", help="periods to forecast")
    opts.add_as_of(p, "reference day: history ends with the last complete period (default: today)")
    opts.add_format(p, FORMATS)
    p.set_defaults(func=run_forecast)


def history(series: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Drop the last period of ``series`` unless it is complete at the end of day ``as_of``."""
    if len(series) == 0:
        return series
    freq = series.index.freq
    if freq is None:  # pragma: no cover - kpi_series always sets one
        return series.iloc[:-1]
    last_end = series.index[-1] + freq
    return series if last_end <= as_of + pd.Timedelta(days=1) else series.iloc[:-1]


def forecast_frame(
    data: object,
    kpi: str,
    scope: str = Scope.ORGANISATION.value,
    scope_id: str | None = None,
    grain: str = Grain.MONTH.value,
    horizon: int = 3,
    as_of: object = None,
) -> pd.DataFrame:
    """The rows ``kpireport forecast`` prints (also usable from a notebook).

    Returns
    -------
    pandas.DataFrame
        Columns ``kpi, scope, scope_id, period, mean, lo_80, hi_80, lo_95,
        hi_95, model``; one row per forecast period.

    Raises
    ------
    ForecastError
        When no complete period precedes ``as_of``, or for a bad horizon.
    """
    from kpireport.forecasting import forecast
    from kpireport.kpis import get_kpi, kpi_series
    from kpireport.periods import label_for

    if as_of is None:
        raise ForecastError("A forecast needs an as-of date.")
    as_of_ts = pd.Timestamp(as_of).normalize()
    if scope == Scope.ORGANISATION:
        scope_id = None
    elif not scope_id:
        raise ForecastError(
            f"A forecast by {scope} needs --scope-id.", hint=f"Example: --by {scope} --scope-id ID."
        )
    y = kpi_series(data, kpi, scope, scope_id, grain, end=as_of_ts, as_of=as_of_ts)  # type: ignore[arg-type]
    hist = history(y, as_of_ts)
    if len(hist) == 0 or not hist.notna().any():
        raise ForecastError(
            f"No complete {grain} with a value of '{kpi}' before {as_of_ts.date()}: nothing to forecast from.",
            hint="Use a later --as-of or a finer --grain.",
        )
    unit = str(getattr(get_kpi(kpi), "unit", ""))
    fc = forecast(hist, horizon, count=True if unit == "count" else None)
    out = fc.reset_index(drop=True)
    out.insert(0, "period", [label_for(ts, grain) for ts in fc.index])
    out.insert(0, "scope_id", scope_id)
    out.insert(0, "scope", str(scope))
    out.insert(0, "kpi", kpi)
    out["model"] = fc.attrs.get("model", "")
    return out


def run_forecast(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute ``kpireport forecast``; returns the exit code."""
    out = out or sys.stdout
    if args.horizon < 1:
        raise ForecastError(f"--horizon must be at least 1, not {args.horizon}.")
    data, as_of = load_source(args)
    frame = forecast_frame(data, args.kpi, args.by, args.scope_id, args.grain, args.horizon, as_of)
    write_forecast(frame, args.format, out)
    return 0


def _number(value: object) -> float | None:
    v = float(value)  # type: ignore[arg-type]
    return None if math.isnan(v) else v


def forecast_records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """JSON records ``{kpi, scope, scope_id, period, mean, lo_80, hi_80, lo_95, hi_95, model}``."""
    recs = []
    for row in frame.to_dict(orient="records"):
        rec = {k: row[k] for k in ("kpi", "scope", "scope_id", "period")}
        rec["scope_id"] = None if pd.isna(rec["scope_id"]) else str(rec["scope_id"])
        rec.update({c: _number(row[c]) for c in NUMBER_COLUMNS})
        rec["model"] = str(row["model"])
        recs.append(rec)
    return recs


def write_forecast(frame: pd.DataFrame, fmt: str, out: TextIO) -> None:
    """Write a :func:`forecast_frame` as ``table``, ``csv`` or ``json``."""
    if write_machine_readable(frame, fmt, out, forecast_records):
        return
    shown = frame.loc[:, ["period", *NUMBER_COLUMNS]].copy()
    for col in NUMBER_COLUMNS:
        shown[col] = shown[col].map(lambda v: f"{v:,.2f}")
    who = frame["scope"].iloc[0] + (
        "" if pd.isna(frame["scope_id"].iloc[0]) else f" {frame['scope_id'].iloc[0]}"
    )
    out.write(f"{frame['kpi'].iloc[0]} — {who}\n")
    out.write(shown.to_string(index=False) + "\n")
    out.write(f"model: {frame['model'].iloc[0]}\n")
