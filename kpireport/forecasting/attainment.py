"""Goal-attainment primitives: distributions of a period total, probabilities, backtests.

Design decisions
----------------
* **Period total = actual to date + simulated rest** (``method="daily"``): the
  additive KPI's *daily* series over the last ``history_years`` is forecast by
  the same selector as :func:`~kpireport.forecasting.forecast` with a weekly season
  (ETS with weekday seasonality, Croston for intermittent days, ...), and the
  simulated daily paths of the remaining days are **summed per path**; adding
  interval bounds would overstate the spread, because daily errors partly
  cancel. Paths are simulated unclipped and the *total* is clipped at the actual
  to date for non-negative KPIs (clipping each day would bias the sum upwards
  for lumpy series).
* **Profile method** (``method="profile"``, the default): actual + a blend of
  two weekday-aware extrapolations of the rest (recent 91-day level and the
  period's own pace), the blend weight and the error distribution both taken
  from the same estimator replayed at the same elapsed share in the previous
  12 periods (see :func:`profile_distribution`). On the demo (7 additive
  KPIs, 30 months each) it beats the run-rate baseline's Brier score at
  25/50/75 % elapsed overall; per KPI see ``benchmarks/forecast_accuracy.py``.
  The pure profile (without the pace) lost to the baseline on lead KPIs with
  strong month-to-month swings; the blend fixed that.
* **Intra-period profile** (issue 4 item 3): weekday weights alone do not
  know that deals close late in the month or at quarter end. Three more rest
  estimates use the share of a period's total typically arrived by the same
  day-of-period position in the previous 12 periods (months at the same place
  of the quarter weighted in, shrunk toward the linear share): the profile
  pace, typical total x share to come, and the gap to the typical total. The
  blend over all five is chosen on a 0.25-step simplex grid by the same
  backtest. Demo, Mid-Market won_value 2026-11 at 2026-11-20 (actual 189 k,
  truth 643 k): forecast 379 k -> 498 k, 80 % band 205-852 k covers the
  truth. Org Brier 25/50/75 %: 0.1364/0.0977/0.0694 -> 0.1285/0.0947/0.0690.
  Choosing the single best of 70 blends on ~12 periods overfits (issue 12:
  team series lost to the run rate at 75 % elapsed, 0.1049 vs 0.1008, sellers
  at 75 %); the blends are therefore *averaged* with tempered Akaike-like
  weights ``(mse_min / mse_b) ** (BLEND_POWER * periods)`` (see
  :func:`choose_blend`). ``BLEND_POWER`` 0.1 was chosen on the demo among
  0 (equal weights), 0.1, 0.25, 0.5, 2 and the selection; the measured table
  is in ``docs/FORECASTING.md``.
* **Run-rate baseline** (``run_rate_distribution``): pace extrapolation
  ``actual / elapsed_share`` with a normal band whose relative standard
  deviation is that of the same extrapolation's errors in previous periods of
  the same length (so the baseline is calibrated on history, not a strawman).
* ``backtest_attainment`` replays past periods at several elapsed shares with
  targets set the way managers set them (the mean of the three previous period
  totals x 0.8 … 1.2, or the realised total x factors), and scores the
  probabilities of both methods by the Brier score and a reliability table.
  ``benchmarks/forecast_accuracy.py`` runs it on the demo data.
* **Deals**: ``deal_monte_carlo`` draws each open deal expected to close in the
  period as won with its ``probability`` (or its stage's historical win rate,
  see :func:`stage_win_rates`) and sums the won values per path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kpireport.errors import ForecastError
from kpireport.forecasting.select import simulate

log = logging.getLogger("kpireport")

DAY = pd.Timedelta(days=1)
_NS_PER_DAY = 86_400 * 10**9


# ---------------------------------------------------------------- helpers
def _daily(daily: pd.Series) -> pd.Series:
    """A gap-free daily float series (missing days are zero: the KPI is additive)."""
    if not isinstance(daily.index, pd.DatetimeIndex):
        raise ForecastError("The daily series needs a DatetimeIndex.")
    s = pd.to_numeric(daily, errors="coerce").astype(float)
    s.index = s.index.normalize()
    s = s.groupby(level=0).sum(min_count=1)
    if len(s) == 0:
        return s
    full = pd.date_range(s.index.min(), s.index.max(), freq="D")
    return s.reindex(full).fillna(0.0)


def _ts(x: Any) -> pd.Timestamp:
    return pd.Timestamp(x).normalize()


def _bounds(
    period_start: Any, period_end: Any, as_of: Any
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    start, end, asof = _ts(period_start), _ts(period_end), _ts(as_of)
    if end <= start:
        raise ForecastError(f"The period end {end.date()} is not after its start {start.date()}.")
    return start, end, asof


def _actual(s: pd.Series, start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp) -> float:
    last = min(as_of, end - DAY)
    return float(s[(s.index >= start) & (s.index <= last)].sum())


def elapsed_share(start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp) -> float:
    """Share of ``[start, end)`` elapsed at the end of day ``as_of`` (0..1)."""
    days = (end - start) / DAY
    done = (min(max(as_of + DAY, start), end) - start) / DAY
    return float(done / days)


# ------------------------------------------------------- total distributions
def period_total_distribution(
    daily: pd.Series,
    period_start: Any,
    period_end: Any,
    as_of: Any,
    n_paths: int = 4000,
    seed: int = 0,
    history_years: float = 2.0,
    method: str = "profile",
) -> np.ndarray:
    """Simulated totals of an additive KPI over ``[period_start, period_end)``.

    Parameters
    ----------
    daily
        The KPI per day (DatetimeIndex; missing days count as zero).
    period_start, period_end
        The half-open period.
    as_of
        Last day with known data (inclusive). Days of the period up to it are
        the actual; the remaining days are simulated.
    n_paths, seed
        Number of simulated totals; same seed, same totals.
    history_years
        Length of the daily history the model is fitted on.
    method
        ``"daily"`` (sum of simulated daily paths) or ``"run_rate"`` (the
        baseline, see :func:`run_rate_distribution`).

    Returns
    -------
    numpy.ndarray
        ``(n_paths,)`` simulated period totals (all equal to the actual once
        the period is over). Never below the actual for non-negative KPIs.
    """
    if method == "run_rate":
        return run_rate_distribution(daily, period_start, period_end, as_of, n_paths, seed)
    if method == "profile":
        out = profile_distribution(daily, period_start, period_end, as_of, n_paths, seed)
        if out is not None:
            return out
        log.debug("too little history for the profile method: using the daily model")
    elif method != "daily":
        raise ForecastError(
            f"Unknown attainment method '{method}'.", hint="Use 'profile', 'daily' or 'run_rate'."
        )
    s = _daily(daily)
    start, end, asof = _bounds(period_start, period_end, as_of)
    actual = _actual(s, start, end, asof) if len(s) else 0.0
    first_rest = max(start, asof + DAY)
    if first_rest >= end:
        return np.full(int(n_paths), actual)
    h = int((end - DAY - asof) / DAY)
    offset = int((first_rest - (asof + DAY)) / DAY)
    lo = asof - pd.Timedelta(days=round(365.25 * history_years)) + DAY
    hist = s[(s.index >= lo) & (s.index <= asof)] if len(s) else s
    if len(hist) == 0:
        log.debug("no history before %s: the rest of the period is taken as zero", asof.date())
        return np.full(int(n_paths), actual)
    hist = hist.reindex(pd.date_range(hist.index[0], asof, freq="D")).fillna(0.0)
    paths = simulate(hist, h, n_paths=int(n_paths), seed=seed, count=False, season_length=7)
    rest = paths[:, offset:].sum(axis=1)
    total = actual + rest
    if len(hist) and hist.min() >= 0:
        total = np.maximum(total, actual)
    return total


class _DailyArray:
    """A gap-free daily series as arrays: O(1) range sums, weekday lookups."""

    def __init__(self, s: pd.Series) -> None:
        self.first = s.index[0]
        self._first_ns = self.first.value
        self.v = s.to_numpy(float)
        self.c = np.concatenate([[0.0], np.cumsum(self.v)])
        self.dow0 = int(self.first.day_of_week)

    def pos(self, ts: pd.Timestamp) -> int:
        return (ts.value - self._first_ns) // _NS_PER_DAY

    def total(self, a: int, b: int) -> float:
        """Sum of days ``a..b`` (positions, inclusive), clipped to the data."""
        a, b = max(a, 0), min(b, len(self.v) - 1)
        return float(self.c[b + 1] - self.c[a]) if b >= a else 0.0

    def dow(self, a: int, b: int) -> np.ndarray:
        return (self.dow0 + np.arange(a, b + 1)) % 7

    def weights(self, last: int, days: int = 365) -> np.ndarray:
        """Mean value per weekday (Mon..Sun) over the ``days`` ending at ``last``, mean 1."""
        lo = max(0, last - days + 1)
        vals = self.v[lo : last + 1]
        if len(vals) < 14 or np.abs(vals).sum() == 0:
            return np.ones(7)
        d = self.dow(lo, last)
        w = np.bincount(d, vals, 7) / np.maximum(np.bincount(d, minlength=7), 1)
        if w.mean() <= 0:
            return np.ones(7)
        return w / w.mean()


def _same_cycle(start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Stride (in periods) between periods at the same place of the quarter: 3 for months."""
    if start.day == 1 and end == start + pd.DateOffset(months=1):
        return 3
    return 0


@dataclass
class _IntraPeriod:
    """Intra-period profile of one period seen at one elapsed share.

    Attributes
    ----------
    share
        Expected share of the period's total that has arrived by the cut
        (shrunk toward the linear share).
    level
        Expected period total (mean of comparable previous periods).
    """

    share: float
    level: float


def _intra_period(
    arr: _DailyArray,
    start: pd.Timestamp,
    end: pd.Timestamp,
    frac: float,
    k: int,
    previous: Sequence[tuple[pd.Timestamp, pd.Timestamp]] | None = None,
) -> _IntraPeriod | None:
    """Profile share and level of ``[start, end)`` at elapsed ``frac``, from the ``k`` previous periods.

    The share is the ratio of sums ``sum(arrived by the same elapsed share) /
    sum(totals)`` over the previous ``k`` periods of the same calendar length
    (day-of-period position, so late-month or quarter-end clustering is seen),
    shrunk toward the linear share ``frac`` with ``SHRINK_N`` pseudo-periods.
    For calendar months the same statistics over the previous months at the
    same place of the quarter (3, 6, ... months back within ``SAME_CYCLE_SPAN x k``: quarter-end
    months learn from quarter-end months; up to twice the ``k`` periods so
    with ``SAME_CYCLE_SPAN = 2``) get the weight ``n_q / (n_q +
    SAME_CYCLE_SHRINK_N)`` against those of all ``k`` previous periods.
    The level is the mean total, blended the same way. ``None`` when fewer
    than 3 previous periods are in the data. ``previous`` (the output of
    :func:`_previous_periods`) saves recomputing the calendar.
    """
    stride = _same_cycle(start, end)
    first = arr.first
    early, tot, same = [], [], []
    if previous is None:
        previous = _previous_periods(start, end, 2 * k)
    recent = []
    for i, (ps, pe) in enumerate(previous[: SAME_CYCLE_SPAN * k if stride else k], start=1):
        if ps < first:
            break
        days = (pe - ps) / DAY
        a, b = arr.pos(ps), arr.pos(pe) - 1
        early.append(arr.total(a, a + round(frac * days) - 1))
        tot.append(arr.total(a, b))
        same.append(bool(stride) and i % stride == 0)
        recent.append(i <= k)
    if sum(recent) < 3:
        return None
    e, t, q = np.asarray(early), np.asarray(tot), np.asarray(same)

    def stats(m: np.ndarray) -> tuple[float, float, int]:
        n = int(m.sum())
        if n == 0:
            return frac, 0.0, 0
        st, se = float(t[m].sum()), float(e[m].sum())
        emp = se / st if st > 0 else frac
        emp = min(max(emp, 0.0), 1.0)
        return (n * emp + SHRINK_N * frac) / (n + SHRINK_N), float(t[m].mean()), n

    sh, lev, _ = stats(np.asarray(recent))
    if q.any():
        sh_q, lev_q, n_q = stats(q)
        lam = n_q / (n_q + SAME_CYCLE_SHRINK_N)
        sh, lev = lam * sh_q + (1 - lam) * sh, lam * lev_q + (1 - lam) * lev
    return _IntraPeriod(share=sh, level=lev)


def _rest_estimates(
    arr: _DailyArray,
    ps: int,
    pe: int,
    cut: int,
    window: int,
    intra: _IntraPeriod | None = None,
) -> tuple[float, ...] | None:
    """Candidate estimates of the rest of period positions ``[ps, pe)`` seen at ``cut``, + truth.

    Returns ``(profile, pace, dom_pace, dom_level, gap, true rest)``:

    * *profile*: the weekday-adjusted mean daily level over the ``window``
      days ending at ``cut`` x the weekday weights of the remaining days;
    * *pace*: the weekday-adjusted level of the period's own elapsed days
      (the run rate, but knowing that weekends are quiet) x the same weights;
    * *dom_pace*: the pace under the intra-period profile, ``actual x (1 - P)
      / P`` with ``P`` the share typically arrived by now (see
      :func:`_intra_period`);
    * *dom_level*: the typical period total x the typical share still to come,
      ``L x (1 - P)``;
    * *gap*: what is missing to the typical total, ``max(L - actual, 0)``
      (KPIs whose total is steadier than its timing, e.g. deals that close
      late when they start late).

    Without an intra-period profile the last three fall back to *profile*.
    The true rest is what the data holds after ``cut`` (unknown for the
    current period). ``None`` without a full ``window`` of history.
    """
    lo = cut - window + 1
    if lo < 0:
        return None
    w = arr.weights(cut)
    first_rest = max(ps, cut + 1)
    w_rest = float(w[arr.dow(first_rest, pe - 1)].sum()) if first_rest <= pe - 1 else 0.0
    prof = arr.total(lo, cut) / float(w[arr.dow(lo, cut)].sum()) * w_rest
    w_el = float(w[arr.dow(ps, cut)].sum()) if cut >= ps else 0.0
    actual = arr.total(ps, cut)
    pace = actual / w_el * w_rest if w_el > 0 else prof
    if intra is None:
        dpace = dlevel = gap = prof
    else:
        p = intra.share
        dpace = actual * (1 - p) / p if p >= MIN_PROFILE_SHARE else prof
        dlevel = intra.level * (1 - p)
        gap = max(intra.level - actual, 0.0)
    return prof, pace, dpace, dlevel, gap, arr.total(first_rest, pe - 1)


#: blend weights of the pace estimate in the pace/profile pairs (kept for reference).
BLEND_GRID = np.linspace(0.0, 1.0, 11)

#: pseudo-periods of the linear share the intra-period profile is shrunk toward.
SHRINK_N = 2.0

#: pseudo-periods of the all-months statistics the same-place-of-quarter ones are shrunk toward.
SAME_CYCLE_SHRINK_N = 2.0

#: how many times ``k`` periods back the same-place-of-quarter statistics look.
SAME_CYCLE_SPAN = 1

#: below this typical arrived share the intra-period pace is not used (too noisy).
MIN_PROFILE_SHARE = 0.05


def _simplex_grid(n: int, steps: int) -> np.ndarray:
    """All weight vectors of length ``n`` on the simplex with the given number of steps."""
    out: list[list[int]] = []

    def rec(prefix: list[int], left: int, k: int) -> None:
        if k == 1:
            out.append([*prefix, left])
            return
        for i in range(left + 1):
            rec([*prefix, i], left - i, k - 1)

    rec([], steps, n)
    return np.asarray(out, float) / steps


#: blends of the five rest estimates tried by the profile method (weights 0,
#: 0.25, ..., 1 summing to 1; 70 blends). A smaller set (pace/profile pairs +
#: pace/intra-period pairs) was tried: worse Brier on the demo and it missed
#: the late-month Mid-Market case (see the module docstring).
BLENDS = _simplex_grid(5, 4)
#: "select": the blend with the lowest replayed error; "average": blends
#: averaged with Akaike-like weights (see :func:`profile_distribution`).
BLEND_CHOICE = "average"
#: "average": blend b weighs (mse_min / mse_b) ** (BLEND_POWER * periods).
BLEND_POWER = 0.1


def choose_blend(
    cand: np.ndarray, true: np.ndarray, how: str | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Blend weights over the five rest estimates and the relative errors of that blend.

    ``cand`` holds the five estimates of the rest in past periods (rows),
    ``true`` the rest that came. ``how="select"`` takes the blend of
    :data:`BLENDS` with the lowest mean squared relative error; ``"average"``
    (the default, :data:`BLEND_CHOICE`) averages the blends with weights
    ``(mse_min / mse_b) ** (BLEND_POWER * periods)`` (tempered Akaike-like
    weights: with ~12 periods the single best of 70 blends overfits; measured
    on the demo's team and seller series in ``docs/FORECASTING.md``). ``None``
    when no blend has 3 usable periods.
    """
    how = how or BLEND_CHOICE
    r_hat = cand @ BLENDS.T  # (periods, blends)
    ok = r_hat > 0
    err = np.where(ok, (true[:, None] - r_hat) / np.where(ok, r_hat, 1.0), 0.0)
    n_ok = ok.sum(axis=0)
    mse = np.where(n_ok >= 3, (err**2).sum(axis=0) / np.maximum(n_ok, 1), np.inf)
    if not np.isfinite(mse).any():
        return None
    b = int(np.argmin(mse))
    best_w = BLENDS[b]
    best_err = err[ok[:, b], b]
    if how == "average" and mse[b] > 0:
        n_eff = float(n_ok[b])
        rel = np.where(np.isfinite(mse), mse[b] / np.where(mse > 0, mse, np.inf), 0.0)
        pw = np.where(np.isfinite(mse), rel ** (BLEND_POWER * n_eff), 0.0)
        w = (pw / pw.sum()) @ BLENDS
        r_avg = cand @ w
        keep = r_avg > 0
        if keep.sum() >= 3:
            best_w, best_err = w, (true[keep] - r_avg[keep]) / r_avg[keep]
    return best_w, best_err


def profile_distribution(
    daily: pd.Series,
    period_start: Any,
    period_end: Any,
    as_of: Any,
    n_paths: int = 4000,
    seed: int = 0,
    history_periods: int = 12,
    window: int = 91,
) -> np.ndarray | None:
    """Actual + expected rest x (1 + an error drawn from this method's own past errors).

    The expected rest blends five extrapolations (see :func:`_rest_estimates`):
    the recent weekday-aware level, the period's own weekday-aware pace, and
    three that use the *intra-period profile* (the share of a period's total
    typically arrived by this point of the period, from the ``history_periods``
    previous periods, quarter-end months learning from quarter-end months, see
    :func:`_intra_period`): the profile pace, the typical total x the share
    still to come, and the gap to the typical total. The blend (weights on a
    0, 0.25, ..., 1 simplex grid) is the one that minimises the squared
    relative error of the rest in up to ``history_periods`` previous periods
    replayed at the same elapsed share (each replay uses only the data before
    its own cut). The relative errors ``(R_k - R̂_k) / R̂_k`` of the chosen
    blend in those periods form the error distribution (resampled with a
    small normal jitter so probabilities are smooth). ``None`` when fewer than
    3 previous periods can be replayed (the caller then uses the daily-model
    method).
    """
    s = _daily(daily)
    start, end, asof = _bounds(period_start, period_end, as_of)
    actual = _actual(s, start, end, asof) if len(s) else 0.0
    share = elapsed_share(start, end, asof)
    if share >= 1:
        return np.full(int(n_paths), actual)
    if len(s) == 0:
        return None
    arr = _DailyArray(s)
    prev = _previous_periods(start, end, 3 * history_periods)
    frac = float(round(share * (end - start) / DAY)) / ((end - start) / DAY)
    now = _rest_estimates(
        arr,
        arr.pos(start),
        arr.pos(end),
        arr.pos(asof),
        window,
        _intra_period(arr, start, end, frac, history_periods, prev),
    )
    if now is None:
        return None
    past = []
    for j, (ps, pe) in enumerate(prev[:history_periods]):
        if pe - DAY > asof or ps < s.index[0]:
            continue
        days = (pe - ps) / DAY
        cut = ps + pd.Timedelta(days=round(share * days)) - DAY
        intra = _intra_period(
            arr, ps, pe, round(share * days) / days, history_periods, prev[j + 1 :]
        )
        est = _rest_estimates(arr, arr.pos(ps), arr.pos(pe), arr.pos(cut), window, intra)
        if est is not None:
            past.append(est)
    if len(past) < 3:
        return None
    chosen = choose_blend(np.asarray(past)[:, :5], np.asarray(past)[:, 5])
    if chosen is None:
        return None
    best_w, best_err = chosen
    rest = float(np.asarray(now[:5]) @ best_w)
    log.debug("profile blend %s at %.0f %% elapsed", np.round(best_w, 2), 100 * share)
    e = best_err
    rng = np.random.default_rng(seed)
    bw = 1.06 * float(np.std(e, ddof=1)) * len(e) ** -0.2
    draw = rng.choice(e, size=int(n_paths)) + bw * rng.standard_normal(int(n_paths))
    total = actual + rest * (1 + draw)
    if s.min() >= 0:
        total = np.maximum(total, actual)
    return total


def _previous_periods(
    start: pd.Timestamp, end: pd.Timestamp, k: int
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The ``k`` periods of the same calendar length before ``[start, end)``."""
    if start.day == 1 and end.day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month
        m0 = start.year * 12 + start.month - 1

        def first_of(m: int) -> pd.Timestamp:
            return pd.Timestamp(m // 12, m % 12 + 1, 1)

        return [
            (first_of(m0 - months * i), first_of(m0 - months * (i - 1))) for i in range(1, k + 1)
        ]
    span = end - start
    return [(start - span * i, end - span * i) for i in range(1, k + 1)]


def run_rate_distribution(
    daily: pd.Series,
    period_start: Any,
    period_end: Any,
    as_of: Any,
    n_paths: int = 4000,
    seed: int = 0,
    history_periods: int = 12,
) -> np.ndarray:
    """Baseline: pace extrapolation ``actual / elapsed_share`` with a normal band.

    The band's standard deviation is ``|pace| x`` the standard deviation of the
    relative errors ``(total - pace) / pace`` of the same extrapolation (same
    elapsed share) in up to ``history_periods`` previous periods; 25 % when
    there is no usable history. Totals are not below the actual for
    non-negative KPIs.
    """
    s = _daily(daily)
    start, end, asof = _bounds(period_start, period_end, as_of)
    actual = _actual(s, start, end, asof) if len(s) else 0.0
    share = elapsed_share(start, end, asof)
    if share >= 1:
        return np.full(int(n_paths), actual)
    rel_err = []
    if len(s) and share > 0:
        for ps, pe in _previous_periods(start, end, history_periods):
            if ps < s.index[0] or pe - DAY > s.index[-1]:
                continue
            days = (pe - ps) / DAY
            cut = ps + pd.Timedelta(days=max(1, round(share * days))) - DAY
            a_k = _actual(s, ps, pe, cut)
            pace_k = a_k / elapsed_share(ps, pe, cut)
            t_k = _actual(s, ps, pe, pe - DAY)
            if pace_k != 0:
                rel_err.append((t_k - pace_k) / abs(pace_k))
    rng = np.random.default_rng(seed)
    if share <= 0:
        # nothing elapsed: the pace is unknown; use the mean of previous totals
        prev = [
            _actual(s, ps, pe, pe - DAY)
            for ps, pe in _previous_periods(start, end, history_periods)
            if len(s) and ps >= s.index[0] and pe - DAY <= s.index[-1]
        ]
        mu = float(np.mean(prev)) if prev else 0.0
        sd = float(np.std(prev, ddof=1)) if len(prev) > 1 else 0.25 * abs(mu)
        return np.maximum(mu + sd * rng.standard_normal(int(n_paths)), actual)
    pace = actual / share
    rel_sd = float(np.std(rel_err, ddof=1)) if len(rel_err) >= 2 else 0.25
    total = pace + abs(pace) * rel_sd * rng.standard_normal(int(n_paths))
    if not len(s) or s.min() >= 0:
        total = np.maximum(total, actual)
    return total


# ---------------------------------------------------------------- summaries
def attainment_summary(
    totals: np.ndarray, target: float, direction: str = "at_least"
) -> dict[str, float]:
    """Summary of simulated period totals against a target.

    Returns
    -------
    dict
        ``mean, median, lo_80, hi_80, lo_95, hi_95`` of the totals and
        ``probability``: of reaching the target (``total >= target``) for
        ``direction="at_least"``, of staying at or below it for ``"at_most"``.
    """
    t = np.asarray(totals, float)
    t = t[np.isfinite(t)]
    if len(t) == 0:
        raise ForecastError("No finite simulated totals to summarise.")
    if direction not in ("at_least", "at_most"):
        raise ForecastError(
            f"Unknown goal direction '{direction}'.", hint="Use 'at_least' or 'at_most'."
        )
    q = np.quantile(t, [0.025, 0.1, 0.5, 0.9, 0.975])
    prob = float(np.mean(t >= target)) if direction == "at_least" else float(np.mean(t <= target))
    return {
        "mean": float(t.mean()),
        "median": float(q[2]),
        "lo_80": float(q[1]),
        "hi_80": float(q[3]),
        "lo_95": float(q[0]),
        "hi_95": float(q[4]),
        "probability": prob,
    }


# ---------------------------------------------------------------- backtests
@dataclass
class AttainmentBacktest:
    """Result of :func:`backtest_attainment`.

    Attributes
    ----------
    brier
        Rows ``(method, elapsed)`` with ``brier`` and ``n`` (probabilities scored).
    reliability
        Rows ``(method, bin)``: mean predicted probability, observed frequency, n.
    detail
        One row per period x elapsed share x target x method.
    """

    brier: pd.DataFrame
    reliability: pd.DataFrame
    detail: pd.DataFrame


def backtest_attainment(
    daily: pd.Series,
    grain: str = "month",
    elapsed: Sequence[float] = (0.25, 0.5, 0.75),
    targets: str = "trailing",
    *,
    factors: Sequence[float] = (0.8, 0.9, 1.0, 1.1, 1.2),
    methods: Sequence[str] = ("profile", "run_rate"),
    n_paths: int = 1000,
    seed: int = 0,
    min_history_periods: int = 6,
    max_periods: int | None = None,
    history_years: float = 2.0,
) -> AttainmentBacktest:
    """Replay past periods of ``daily`` and score attainment probabilities.

    Parameters
    ----------
    daily
        Additive KPI per day.
    grain
        ``"month"``, ``"quarter"`` or ``"week"``.
    elapsed
        Shares of the period elapsed at the replayed ``as_of`` dates.
    targets
        ``"trailing"``: mean of the 3 previous period totals x ``factors``
        (how targets are often set); ``"realised"``: the realised total x
        ``factors`` (a sharpness check around the truth).
    methods
        Methods of :func:`period_total_distribution` to compare.
    min_history_periods
        Complete periods required before the first replayed one.
    max_periods
        Replay only the latest ``max_periods`` periods.

    Returns
    -------
    AttainmentBacktest
    """
    s = _daily(daily)
    freq = {"month": "MS", "quarter": "QS", "week": "W-MON"}.get(grain)
    if freq is None:
        raise ForecastError(
            f"Unknown grain '{grain}' for attainment backtests.", hint="Use month, quarter or week."
        )
    if len(s) == 0:
        raise ForecastError("Cannot backtest attainment on an empty series.")
    starts = pd.date_range(s.index[0], s.index[-1] + DAY, freq=freq)
    periods = [
        (a, b)
        for a, b in zip(starts[:-1], starts[1:], strict=True)
        if a >= s.index[0] and b - DAY <= s.index[-1]
    ]
    totals = {p: _actual(s, p[0], p[1], p[1] - DAY) for p in periods}
    replay = periods[min_history_periods:]
    if max_periods is not None:
        replay = replay[-int(max_periods) :]
    rows = []
    for i, (a, b) in enumerate(replay):
        idx = periods.index((a, b))
        realised = totals[(a, b)]
        if targets == "trailing":
            base = float(np.mean([totals[p] for p in periods[idx - 3 : idx]]))
        elif targets == "realised":
            base = realised
        else:
            raise ForecastError(
                f"Unknown target rule '{targets}'.", hint="Use 'trailing' or 'realised'."
            )
        tgts = [base * f for f in factors]
        days = (b - a) / DAY
        for e in elapsed:
            as_of = a + pd.Timedelta(days=max(1, round(e * days))) - DAY
            for meth in methods:
                tot = period_total_distribution(
                    s,
                    a,
                    b,
                    as_of,
                    n_paths=n_paths,
                    seed=seed + i,
                    history_years=history_years,
                    method=meth,
                )
                for f, tg in zip(factors, tgts, strict=True):
                    rows.append(
                        {
                            "period_start": a,
                            "elapsed": float(e),
                            "method": meth,
                            "factor": f,
                            "target": tg,
                            "prob": float(np.mean(tot >= tg)),
                            "outcome": float(realised >= tg),
                            "realised": realised,
                        }
                    )
    det = pd.DataFrame(rows)
    if det.empty:
        empty = pd.DataFrame(columns=["brier", "n"])
        return AttainmentBacktest(empty, pd.DataFrame(), det)
    det["sq"] = (det["prob"] - det["outcome"]) ** 2
    brier = det.groupby(["method", "elapsed"]).agg(brier=("sq", "mean"), n=("sq", "size"))
    return AttainmentBacktest(brier, reliability_table(det), det.drop(columns="sq"))


def reliability_table(det: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Binned predicted probability vs observed frequency, per method."""
    edges = np.linspace(0, 1, bins + 1)
    b = pd.cut(det["prob"], edges, include_lowest=True)
    return (
        det.assign(bin=b)
        .groupby(["method", "bin"], observed=True)
        .agg(predicted=("prob", "mean"), observed=("outcome", "mean"), n=("prob", "size"))
    )


# -------------------------------------------------------------------- deals
def stage_win_rates(deals: pd.DataFrame) -> dict[str, float]:
    """Historical win rate per ``stage`` among closed deals: won / (won + lost).

    The key ``"*"`` holds the overall win rate (used for stages never closed).
    """
    closed = deals[deals["status"].isin(["won", "lost"])]
    out: dict[str, float] = {}
    if len(closed):
        out["*"] = float((closed["status"] == "won").mean())
        if "stage" in closed:
            for stage, g in closed.groupby("stage"):
                out[str(stage)] = float((g["status"] == "won").mean())
    return out


def deal_monte_carlo(
    open_deals: pd.DataFrame,
    period: Any,
    n_paths: int = 4000,
    seed: int = 0,
    stage_win_rates: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Simulated won value of the open deals expected to close in ``period``.

    Parameters
    ----------
    open_deals
        Deals table (SPEC §2); rows with ``status`` other than ``open`` (if the
        column exists) and without an ``expected_close_at`` in the period are
        ignored.
    period
        An object with ``start``/``end`` (e.g. :class:`kpireport.periods.Period`)
        or a ``(start, end)`` pair; half-open.
    stage_win_rates
        Stage -> win rate used when ``probability`` is missing; key ``"*"`` is
        the default for unknown stages. Without it, missing probabilities use
        the mean of the known ones (0 if none).

    Returns
    -------
    numpy.ndarray
        ``(n_paths,)`` won value per path; its mean is about
        ``sum(value x probability)``.
    """
    start, end = (period.start, period.end) if hasattr(period, "start") else period
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    d = open_deals
    if "status" in d:
        d = d[d["status"].astype(str).str.lower() == "open"]
    close = pd.to_datetime(d["expected_close_at"], errors="coerce")
    d = d[(close >= start) & (close < end)]
    if len(d) == 0:
        return np.zeros(int(n_paths))
    values = pd.to_numeric(d["value"], errors="coerce").fillna(0.0).to_numpy(float)
    prob = (
        np.array(pd.to_numeric(d["probability"], errors="coerce"), dtype=float)
        if "probability" in d
        else np.full(len(d), np.nan)
    )
    missing = np.isnan(prob)
    if missing.any():
        rates = dict(stage_win_rates or {})
        default = rates.get("*", float(np.nanmean(prob)) if (~missing).any() else 0.0)
        stages = d["stage"].astype(str).to_numpy() if "stage" in d else np.full(len(d), "")
        prob[missing] = [rates.get(st, default) for st in stages[missing]]
        log.debug("%d deals without probability used stage win rates", int(missing.sum()))
    prob = np.clip(prob, 0.0, 1.0)
    rng = np.random.default_rng(seed)
    out = np.zeros(int(n_paths))
    chunk = max(1, 2_000_000 // max(1, len(d)))
    for i in range(0, int(n_paths), chunk):
        k = min(chunk, int(n_paths) - i)
        out[i : i + k] = (rng.random((k, len(d))) < prob) @ values
    return out
