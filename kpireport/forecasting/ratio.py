"""Ratio KPIs as ratios of forecasts, with intervals from joint simulation (issue 12).

Design decisions
----------------
* A ratio KPI (hit rate = won / closed deals, average deal value = won value
  / deals won) is **not smoothed as a ratio**: its numerator and denominator
  are additive KPIs and are forecast as such (the default combination of
  :mod:`.combine`), and the ratio is formed per simulated path. Smoothing
  the ratio ignores that a month with 3 closed deals says much less than
  one with 30, and lets the band cross impossible values.
* **Joint simulation**: the two series' paths are drawn with correlated
  standard-normal draws (the Gaussian copula of
  :meth:`~.combine.Combination.simulate`). The correlation ``rho`` is that
  of the two combinations' conformal scores at the same origins and steps
  (their rolling-origin errors), i.e. how numerator and denominator missed
  together in the past; 0 when it cannot be measured. Won and closed deals
  miss together (``rho > 0``), which narrows the band of their ratio.
* The point forecast is the ratio of the mean forecasts; the interval bounds
  are quantiles of the path ratios, over paths with a positive denominator
  (a path with nothing closed has no hit rate).
* ``to_date``: for a running period, the numerator and denominator so far
  are added to ``1 - elapsed`` of the next period's simulated totals, so
  the ratio of the whole period is forecast (what a goal is judged on).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from kpireport.errors import ForecastError
from kpireport.forecasting.models import _level_tag

log = logging.getLogger("kpireport")

#: paths behind a ratio forecast.
RATIO_PATHS = 4000


def _draws_correlation(a: object, b: object) -> float:
    """Correlation of two combinations' errors (0 if unmeasurable).

    Their rolling-origin scores when both have them at the same origins and
    steps; otherwise (too short a history for a replay) the one-step
    in-sample residuals of their ETS shape models over the common months.
    """
    sa, sb = getattr(a, "scores", None), getattr(b, "scores", None)
    if sa is not None and sb is not None and len(sa.z) == len(sb.z) and len(sa.z) >= 10:
        x, y = sa.z, sb.z
    else:
        try:
            x = np.asarray(a.shape.res.resid, float)  # type: ignore[attr-defined]
            y = np.asarray(b.shape.res.resid, float)  # type: ignore[attr-defined]
        except (AttributeError, ForecastError):
            return 0.0
        k = min(len(x), len(y))
        x, y = x[len(x) - k :], y[len(y) - k :]
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        if len(x) < 10:
            return 0.0
    if np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    r = float(np.corrcoef(x, y)[0, 1])
    return float(np.clip(r, -0.95, 0.95)) if np.isfinite(r) else 0.0


def joint_paths(
    numerator: pd.Series,
    denominator: pd.Series,
    horizon: int,
    n_paths: int = RATIO_PATHS,
    seed: int = 0,
    allow_slow: bool = True,
) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Jointly simulated paths of two additive series.

    ``allow_slow=False`` fits each with the combination's fast members only
    (ETS and the classical Theta; goal evaluation uses it to stay within its time budget).

    Returns
    -------
    tuple
        ``(numerator paths, denominator paths, rho, model name)``; paths are
        ``(n_paths, horizon)``, clipped at zero for counts.
    """
    from kpireport.forecasting.combine import Combination
    from kpireport.forecasting.select import fit

    mn, pn = fit(numerator, allow_slow=allow_slow)
    md, pd_ = fit(denominator, allow_slow=allow_slow)
    rng = np.random.default_rng(seed)
    cn, cd = mn.chosen, md.chosen
    if isinstance(cn, Combination) and isinstance(cd, Combination):
        rho = _draws_correlation(cn, cd)
        w1 = cn.standard_draws(horizon, n_paths, rng)
        w2 = cd.standard_draws(horizon, n_paths, rng)
        w2 = rho * w1 + np.sqrt(1 - rho**2) * w2
        num = cn.simulate(horizon, n_paths, rng, draws=w1)
        den = cd.simulate(horizon, n_paths, rng, draws=w2)
    else:  # a fallback model on one side: independent paths
        rho = 0.0
        num = mn.simulate(horizon, n_paths, rng)
        den = md.simulate(horizon, n_paths, rng)
    if pn.count or np.all(pn.values >= 0):
        num = np.clip(num, 0.0, None)
    if pd_.count or np.all(pd_.values >= 0):
        den = np.clip(den, 0.0, None)
    name = f"ratio of forecasts: [{mn.name}] / [{md.name}], joint simulation (rho={rho:.2f})"
    return num, den, rho, name


def ratio_forecast(
    numerator: pd.Series,
    denominator: pd.Series,
    horizon: int,
    levels: Sequence[float] = (80, 95),
    *,
    n_paths: int = RATIO_PATHS,
    seed: int = 0,
    to_date: tuple[float, float] | None = None,
    elapsed: float = 0.0,
) -> pd.DataFrame:
    """Forecast ``numerator / denominator`` as a ratio of forecasts.

    Parameters
    ----------
    numerator, denominator
        Additive KPI series on the same regular index (e.g. monthly won deals
        and closed deals for the hit rate).
    horizon
        Periods ahead.
    levels
        Interval levels in percent.
    n_paths, seed
        Joint simulation size and seed (same seed, same result).
    to_date, elapsed
        For a running first period: its numerator and denominator so far and
        the elapsed share; the first step becomes the whole period's ratio.

    Returns
    -------
    pandas.DataFrame
        ``mean, lo_L, hi_L`` per step on the future index; ``attrs["model"]``
        names both forecasts and ``rho``; ``attrs["paths"]`` the ratio paths
        of the first step (for probabilities of a ratio goal).
    """
    if len(numerator) != len(denominator) or not numerator.index.equals(denominator.index):
        raise ForecastError(
            "The numerator and denominator of a ratio forecast need the same index."
        )
    from kpireport.forecasting.prepare import future_index

    num, den, _, name = joint_paths(numerator, denominator, int(horizon), n_paths, seed)
    num_mean, den_mean = num.mean(axis=0), den.mean(axis=0)
    if to_date is not None:
        rest = 1.0 - float(np.clip(elapsed, 0.0, 1.0))
        num[:, 0] = to_date[0] + rest * num[:, 0]
        den[:, 0] = to_date[1] + rest * den[:, 0]
        num_mean[0] = to_date[0] + rest * num_mean[0]
        den_mean[0] = to_date[1] + rest * den_mean[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        paths = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
        mean = np.where(den_mean > 0, num_mean / np.where(den_mean > 0, den_mean, 1.0), np.nan)
    out: dict[str, np.ndarray] = {"mean": mean}
    for lv in levels:
        a = (100.0 - float(lv)) / 200.0
        tag = _level_tag(lv)
        out[f"lo_{tag}"] = np.array([_nanq(paths[:, s], a) for s in range(paths.shape[1])])
        out[f"hi_{tag}"] = np.array([_nanq(paths[:, s], 1 - a) for s in range(paths.shape[1])])
    frame = pd.DataFrame(out)
    frame.index, _ = future_index(numerator.index, int(horizon))
    frame.attrs["model"] = name
    frame.attrs["paths"] = paths[:, 0][np.isfinite(paths[:, 0])]
    return frame


def _nanq(x: np.ndarray, q: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.quantile(x, q)) if len(x) else float("nan")


#: numerator of the mean sales cycle: the days from creation to close summed over
#: the deals won (per day: ``sales_cycle_days`` x ``deals_won``; not a registry KPI).
WON_CYCLE_DAYS = "won_cycle_days"
#: ratio KPIs built from additive ones: kpi -> (numerator, denominator terms summed).
RATIO_PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "hit_rate": ("deals_won", ("deals_won", "deals_lost")),
    "avg_deal_value": ("won_value", ("deals_won",)),
    "sales_cycle_days": (WON_CYCLE_DAYS, ("deals_won",)),
    "cac": ("costs", ("new_customers",)),
}
#: complete months a ratio goal's numerator and denominator histories need.
MIN_RATIO_MONTHS = 12


def _complete_months(s: pd.Series, before: pd.Timestamp) -> pd.Series:
    """Monthly sums of the daily ``s`` over the complete months before ``before``."""
    s = s[s.index < before]
    if s.empty:
        return s
    mon = s.resample("MS").sum()
    if s.index[0] > mon.index[0]:  # a partial first month
        mon = mon.iloc[1:]
    last_day = s.index[-1]
    if len(mon) and last_day < mon.index[-1] + pd.offsets.MonthEnd(0):  # a partial last month
        mon = mon.iloc[:-1]
    return mon


def ratio_goal_forecast(
    num_daily: pd.Series,
    den_daily: pd.Series,
    start: pd.Timestamp,
    end: pd.Timestamp,
    as_of: pd.Timestamp,
    target: float,
    at_least: bool = True,
    *,
    n_paths: int = RATIO_PATHS,
    seed: int = 0,
    allow_slow: bool = True,
    num_in_den: bool = False,
) -> dict | None:
    """A ratio goal's period value: (numerator so far + simulated rest) / (same for the denominator).

    ``num_daily``/``den_daily`` are the additive parts per day up to
    ``as_of``; their complete months before the period (before ``as_of``'s
    month for a period not started yet) are forecast jointly
    (:func:`joint_paths`) up to the period's end, and the share still to come
    (``r = 1 - elapsed``) of the period's simulated months is added to the
    values so far: ``r`` times their mean plus ``sqrt(r)`` times each path's
    deviation from it (the rest of a period varies like a sum of independent
    days). For a ``num_in_den`` path whose numerator exceeds the denominator
    after that scaling the ratio is capped at 1. ``None`` with fewer than ``MIN_RATIO_MONTHS`` months, or when
    most simulated denominators are zero (nothing closes: no ratio).
    ``allow_slow=False`` fits the numerator and denominator with the
    combination's fast members (ETS and the classical Theta; see :mod:`.select`).
    ``num_in_den``: ``den_daily`` holds the denominator's *other* terms and
    the denominator is numerator + those (the hit rate: won / (won + lost)),
    so each path's numerator is part of its denominator and the ratio stays
    within [0, 1].

    Returns
    -------
    dict or None
        ``forecast, lo_80, hi_80, lo_95, hi_95, probability, model`` and
        ``paths`` (the simulated period ratios).
    """
    start, end, as_of = pd.Timestamp(start), pd.Timestamp(end), pd.Timestamp(as_of)
    cut = min(start, as_of + pd.Timedelta(days=1))
    num_m = _complete_months(num_daily, cut)
    den_m = _complete_months(den_daily, cut)
    if len(num_m) < MIN_RATIO_MONTHS or not num_m.index.equals(den_m.index):
        return None
    span_days = (end - start).days
    h = max(1, round(span_days / 30.44))
    scale = span_days / 30.44 / h if span_days < 28 else 1.0  # a week: a share of a month
    # months between the history and the period (a period not started yet)
    lead = max(
        0, (start.year - num_m.index[-1].year) * 12 + start.month - num_m.index[-1].month - 1
    )
    num, den, _, name = joint_paths(num_m, den_m, lead + h, n_paths, seed, allow_slow=allow_slow)
    num, den = num[:, lead:], den[:, lead:]
    if num_in_den:
        den = num + den
    elapsed = float(np.clip(((as_of - start).days + 1) / max(span_days, 1), 0.0, 1.0))
    in_num = (num_daily.index >= start) & (num_daily.index <= as_of)
    in_den = (den_daily.index >= start) & (den_daily.index <= as_of)
    n0, d0 = float(num_daily[in_num].sum()), float(den_daily[in_den].sum())
    if num_in_den:
        d0 += n0
    rest = (1.0 - elapsed) * scale
    sum_n, sum_d = num.sum(axis=1), den.sum(axis=1)
    mn, md = float(sum_n.mean()), float(sum_d.mean())
    # the rest of the period: its share of the mean, and deviations scaled by the
    # square root of that share (counts and sums add up nearly independent days:
    # half a month varies by ~1/sqrt(2) of a month, not by half of it)
    root = float(np.sqrt(rest))
    rest_n = rest * mn + root * (sum_n - mn)
    rest_d = rest * md + root * (sum_d - md)
    if np.all(sum_n >= 0):  # a non-negative rest stays non-negative
        rest_n = np.maximum(rest_n, 0.0)
    if np.all(sum_d >= 0):
        rest_d = np.maximum(rest_d, 0.0)
    tot_n, tot_d = n0 + rest_n, d0 + rest_d
    if num_in_den:
        tot_d = np.maximum(tot_d, tot_n)
    ok = tot_d > 0
    if ok.sum() < 0.5 * len(tot_d):
        return None
    ratio = tot_n[ok] / tot_d[ok]
    mean = float((n0 + rest * mn) / (d0 + rest * md))
    prob = float(np.mean(ratio >= target) if at_least else np.mean(ratio <= target))
    q = np.quantile(ratio, [0.025, 0.1, 0.9, 0.975])
    return {
        "forecast": mean,
        "lo_80": float(q[1]),
        "hi_80": float(q[2]),
        "lo_95": float(q[0]),
        "hi_95": float(q[3]),
        "probability": prob,
        "model": name,
        "paths": ratio,
    }


def ratio_goal(
    daily: Callable[[str], np.ndarray],
    kpi: str,
    first: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    as_of: pd.Timestamp,
    target: float,
    at_least: bool = True,
    *,
    n_paths: int = RATIO_PATHS,
    seed: int = 0,
) -> dict | None:
    """A ratio goal's forecast as a ratio of forecasts (docs/FORECASTING.md, "Ratio KPIs").

    The KPIs of :data:`RATIO_PARTS` (hit rate, mean deal value, mean sales
    cycle, CAC) are split into their additive numerator and denominator, whose
    daily values from ``first`` to ``as_of`` ``daily(kpi)`` returns (goal
    evaluation passes its cached histories: one matrix per KPI and scope for
    every id); their complete months are forecast jointly and the period
    ratio is simulated (:func:`ratio_goal_forecast`). The fits go through the
    fit cache, so a series shared by several goals (deals won: hit rate, sales
    cycle, deal value of one scope) is fitted once, with the combination's
    fast members (ETS and the classical Theta) to keep a goal table within
    its time budget.

    Returns
    -------
    dict or None
        ``forecast, lo_80, hi_80, lo_95, hi_95, probability, model`` and
        ``totals`` (the simulated period ratios); ``None`` when ``kpi`` is not
        a ratio of additive KPIs, a part cannot be computed from the data, or
        the history is too short (the caller then smooths the ratio itself).
    """
    from kpireport.errors import KpiReportError

    parts = RATIO_PARTS.get(str(kpi))
    if parts is None:
        return None

    def part(name: str) -> np.ndarray:
        if name == WON_CYCLE_DAYS:  # days summed over won deals = mean days x deals won
            return daily("sales_cycle_days") * daily("deals_won")
        return daily(name)

    inside = parts[0] in parts[1]  # hit rate: simulate won and lost, closed = won + lost
    others = [k for k in parts[1] if k != parts[0]] if inside else list(parts[1])
    try:
        num = part(parts[0])
        den = sum((part(k) for k in others), np.zeros(len(num)))
    except KpiReportError as exc:  # a part the data cannot compute (e.g. no costs table)
        log.debug("no ratio of forecasts for %s: %s", kpi, exc)
        return None
    idx = pd.date_range(first, as_of, freq="D")
    got = ratio_goal_forecast(
        pd.Series(num, idx), pd.Series(den, idx), start, end, as_of, float(target), at_least,
        n_paths=n_paths, seed=seed, allow_slow=False, num_in_den=inside,
    )  # fmt: skip
    if got is None:
        return None
    got["totals"] = got.pop("paths")
    return got
