"""Rolling-origin backtests: MASE, sMAPE and interval coverage per model.

Design decisions
----------------
* **Origins**: by default the last ``origins=5`` training ends, spaced
  ``max(1, horizon // 2)`` apart, each leaving a full ``horizon`` to score, and
  keeping at least ``max(6, 2 * m)`` training points (fewer origins otherwise).
  An integer ``origins`` sets how many; a sequence gives the training lengths.
* **MASE** is seasonally scaled: each origin's errors are divided by the
  in-sample MAE of the seasonal naive method (lag ``m``; lag 1 when the
  training part is shorter than ``m + 1``) on *that origin's training part*.
  A zero scale (a flat training part) is replaced by the mean absolute level
  (or 1), so MASE stays finite.
* **sMAPE** is ``200 |e| / (|y| + |ŷ|)`` with 0/0 counted as 0.
* Coverage is the share of test points inside each interval; a well-calibrated
  80 % interval covers about 80 % of points.
* ``"auto"`` in ``models`` is the full selector of :func:`~.forecast`, refitted
  at every origin, so the backtest scores what users get.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import pandas as pd

from kpireport.errors import ForecastError
from kpireport.forecasting.models import ETS, ForecastModel, ModelFitError, get_model
from kpireport.forecasting.prepare import prepare

LEVELS = (80, 95)


def _scale(train: np.ndarray, m: int) -> float:
    lag = m if len(train) > m else 1
    d = np.abs(train) if len(train) <= lag else np.abs(train[lag:] - train[:-lag])
    s = float(np.mean(d)) if len(d) else 0.0
    if s <= 0 or not np.isfinite(s):
        s = float(np.mean(np.abs(train))) or 1.0
    return s


def _origins(n: int, horizon: int, m: int, origins: int | Sequence[int] | None) -> list[int]:
    if origins is not None and not isinstance(origins, int | np.integer):
        return [int(o) for o in origins if 1 <= int(o) <= n - 1]
    k = 5 if origins is None else int(origins)
    step = max(1, horizon // 2)
    min_train = max(6, 2 * m)
    out = []
    for i in range(k):
        t = n - horizon - i * step
        if t < min_train:
            break
        out.append(t)
    return sorted(out)


def _make(spec: str | ForecastModel, count: bool, ets_config: ETS | None) -> ForecastModel:
    if isinstance(spec, ForecastModel):
        return copy.deepcopy(spec)
    if spec == "ets" and ets_config is not None:
        return ETS(ets_config.error, ets_config.trend, ets_config.damped, ets_config.seasonal)
    if spec == "auto":  # registered by .select, which the package imports first
        return get_model("auto", count=count)
    return get_model(spec)


def backtest_arrays(
    y: np.ndarray,
    horizon: int,
    m: int,
    models: dict[str, ForecastModel | None] | Sequence[str],
    *,
    origins: int | Sequence[int] | None = None,
    levels: Sequence[float] = LEVELS,
    ets_config: ETS | None = None,
    count: bool = False,
    detail: bool = False,
) -> pd.DataFrame:
    """Backtest on a plain array (the engine of :func:`backtest`).

    Returns one row per model (index: model key) with ``mase, smape,
    coverage_L..., n_origins, n_points``, or the per-point detail when
    ``detail=True`` (columns ``model, origin, step, actual, mean, lo_L, hi_L,
    scale``).
    """
    y = np.asarray(y, float)
    pos = _origins(len(y), horizon, m, origins)
    rows = []
    for t in pos:
        train, test = y[:t], y[t : t + horizon]
        h = len(test)
        scale = _scale(train, m)
        for key, spec in models.items() if isinstance(models, dict) else ((s, s) for s in models):
            model = _make(spec if spec is not None else key, count, ets_config)
            try:
                model.fit(train, m)
                fr = model.predict(h, levels)
            except ModelFitError:
                model = get_model("naive").fit(train, m)
                fr = model.predict(h, levels)
            if count:
                fr = fr.clip(lower=0)
            part = fr.reset_index(drop=True)
            part.insert(0, "actual", test)
            part.insert(0, "step", np.arange(1, h + 1))
            part.insert(0, "origin", t)
            part.insert(0, "model", str(key))
            part["scale"] = scale
            rows.append(part)
    if not rows:
        return pd.DataFrame()
    det = pd.concat(rows, ignore_index=True)
    if detail:
        return det
    return summarise(det, levels)


def summarise(det: pd.DataFrame, levels: Sequence[float] = LEVELS) -> pd.DataFrame:
    """Per-model metrics from a backtest detail frame."""
    det = det.copy()
    err = (det["actual"] - det["mean"]).abs()
    det["ase"] = err / det["scale"]
    denom = det["actual"].abs() + det["mean"].abs()
    det["sape"] = np.where(denom > 0, 200 * err / denom.where(denom > 0, 1), 0.0)
    agg: dict[str, pd.Series] = {
        "mase": det.groupby(["model", "origin"])["ase"].mean().groupby("model").mean(),
        "smape": det.groupby("model")["sape"].mean(),
    }
    for lv in levels:
        tag = str(int(lv)) if float(lv).is_integer() else str(lv)
        inside = (det["actual"] >= det[f"lo_{tag}"]) & (det["actual"] <= det[f"hi_{tag}"])
        agg[f"coverage_{tag}"] = inside.groupby(det["model"]).mean()
    agg["n_origins"] = det.groupby("model")["origin"].nunique()
    agg["n_points"] = det.groupby("model").size()
    out = pd.DataFrame(agg)
    out.index.name = "model"
    return out


def backtest(
    y: pd.Series,
    horizon: int,
    origins: int | Sequence[int] | None = None,
    models: Sequence[str | ForecastModel] | None = None,
    *,
    levels: Sequence[float] = LEVELS,
    season_length: int | None = None,
    count: bool | None = None,
    detail: bool = False,
) -> pd.DataFrame:
    """Rolling-origin evaluation of forecast models on ``y``.

    Parameters
    ----------
    y
        The series (as for :func:`~kpireport.forecasting.forecast`).
    horizon
        Steps scored after each origin.
    origins
        Number of origins (default 5) or explicit training lengths.
    models
        Registry names (``"auto"``, ``"snaive"``, ``"naive"``, ``"mean"``,
        ``"croston"``, ``"sarimax"``, ``"stl"``) or model instances. Default:
        ``auto``, ``snaive`` (or ``naive`` without seasonality).
    levels
        Interval levels whose coverage is reported.
    season_length
        Override of the inferred season length (MASE scale and models).
    count
        Clip at zero (auto-detected like :func:`forecast`).
    detail
        Return the per-point frame instead of the summary.

    Returns
    -------
    pandas.DataFrame
        Index ``model``; columns ``mase, smape, coverage_80, coverage_95,
        n_origins, n_points``. Empty when the series is too short for any
        origin.
    """
    if int(horizon) < 1:
        raise ForecastError(f"The horizon must be at least 1 period, not {horizon}.")
    prep = prepare(y, season_length=season_length, count=count)
    m = prep.season_length
    if models is None:
        models = ["auto", "snaive" if m > 1 else "naive"]
    specs: dict[str, ForecastModel | None] = {}
    for mod in models:
        if isinstance(mod, ForecastModel):
            specs[mod.name] = mod
        else:
            specs[str(mod)] = None
    return backtest_arrays(
        prep.values,
        int(horizon),
        m,
        specs,
        origins=origins,
        levels=levels,
        count=prep.count,
        detail=detail,
    )
