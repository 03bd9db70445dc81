"""Preparing a series for forecasting: its season length, its future index and
the cleaning every model sees (``prepare``).

Its own module so that :mod:`.select` (the auto model) and :mod:`.backtest`
both use it without importing each other: the forecast modules form a line
(``models`` → ``prepare`` → ``backtest`` → ``select``), not a circle. See
docs/FORECASTING.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from kpireport.errors import ForecastError


# ------------------------------------------------------------------ the index
def season_length_for(freq: str | pd.DateOffset | None) -> int:
    """Seasonal period for a pandas frequency: 12 monthly, 4 quarterly, 52 weekly,
    7 daily, 5 business-daily, 1 otherwise (yearly, unknown)."""
    if freq is None:
        return 1
    try:
        code = to_offset(freq).rule_code.upper()
    except (ValueError, TypeError):
        code = str(freq).upper()
    if code.startswith(("MS", "ME", "M", "BM", "SM")) and not code.startswith("MIN"):
        return 12
    if code.startswith(("Q", "BQ")):
        return 4
    if code.startswith("W"):
        return 52
    if code.startswith("B") and not code.startswith(("BY", "BA")):
        return 5
    if code == "D" or code.startswith("D"):
        return 7
    return 1


def _infer(idx: pd.DatetimeIndex) -> str | None:
    """``pd.infer_freq`` as a string (silencing pandas' future-behaviour warning)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = pd.infer_freq(idx)
    return None if f is None else getattr(f, "freqstr", f)


def _datetime_freq(idx: pd.DatetimeIndex) -> str | pd.DateOffset:
    if idx.freq is not None:
        return idx.freq
    if len(idx) >= 3:
        f = _infer(idx)
        if f is not None:
            return f
    if len(idx) == 2:
        for f in ("D", "W-MON", "W-SUN", "MS", "ME", "QS", "QE", "YS", "YE"):
            rng = pd.date_range(idx[0], periods=2, freq=f)
            if len(rng) == 2 and rng[0] == idx[0] and rng[1] == idx[1]:
                return f
    raise ForecastError(
        "Cannot infer the frequency of the series' DatetimeIndex.",
        hint="Give the index a freq (e.g. pd.date_range(..., freq='MS')) or make it regular.",
    )


def future_index(index: pd.Index, horizon: int) -> tuple[pd.Index, int]:
    """The next ``horizon`` labels after ``index`` and the season length."""
    if isinstance(index, pd.DatetimeIndex):
        freq = _datetime_freq(index)
        fut = pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:]
        return fut, season_length_for(freq)
    if isinstance(index, pd.PeriodIndex):
        fut = pd.period_range(index[-1] + 1, periods=horizon, freq=index.freq)
        return fut, season_length_for(index.freqstr)
    if pd.api.types.is_integer_dtype(index.dtype):
        step = int(index[-1] - index[-2]) if len(index) >= 2 else 1
        step = step or 1
        start = int(index[-1]) + step
        return pd.RangeIndex(start, start + step * horizon, step), 1
    raise ForecastError(
        f"Cannot forecast a series indexed by {type(index).__name__}.",
        hint="Use a DatetimeIndex with a frequency, a PeriodIndex or a RangeIndex.",
    )


# --------------------------------------------------------------- preparation
@dataclass
class Prepared:
    """A cleaned series ready for fitting."""

    values: np.ndarray
    index: pd.Index
    season_length: int
    count: bool
    notes: list[str] = field(default_factory=list)


def prepare(y: pd.Series, season_length: int | None = None, count: bool | None = None) -> Prepared:
    """Clean ``y``: drop leading NaNs, interpolate inner NaNs, carry the last value
    over trailing NaNs; decide the season length and whether it is a count."""
    if not isinstance(y, pd.Series):
        y = pd.Series(y)
    if len(y) == 0:
        raise ForecastError("Cannot forecast an empty series.")
    vals = pd.to_numeric(y, errors="coerce").astype(float).to_numpy()
    vals = np.where(np.isfinite(vals), vals, np.nan)
    index = y.index
    if isinstance(index, pd.DatetimeIndex) and index.freq is None and len(index) >= 3:
        f = _infer(index)
        if f is not None:
            index = pd.DatetimeIndex(index, freq=f)
    finite = np.isfinite(vals)
    if not finite.any():
        raise ForecastError("Cannot forecast a series without any observed value (all NaN).")
    notes: list[str] = []
    first = int(np.argmax(finite))
    if first:
        notes.append(f"{first} leading NaNs dropped")
    vals = vals[first:]
    n_nan = int(np.isnan(vals).sum())
    if n_nan:
        vals = pd.Series(vals).interpolate(limit_direction="forward").ffill().to_numpy()
        notes.append(f"{n_nan} NaNs interpolated")
    _, m = future_index(index, 1)
    if season_length is not None:
        m = int(season_length)
    if count is None:
        count = bool(np.all(vals >= 0) and np.all(vals == np.round(vals)))
    return Prepared(vals, index, max(1, m), bool(count), notes)
