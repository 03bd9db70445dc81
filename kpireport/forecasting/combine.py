"""The default forecaster: a guarded combination of statsmodels models with
conformal intervals from its own rolling-origin errors (issue 12).

Design decisions
----------------
* **Members** (all statsmodels, fitted single-threaded):

  - ``ETS``: the ``ETSModel`` configuration with the lowest AICc among
    additive error/trend/seasonality, damped trends and, for strictly
    positive series, multiplicative error and seasonality
    (:func:`ets_family`);
  - ``ARIMA``: ``SARIMAX`` chosen by AICc from a small stepwise set of orders
    with the differencing fixed up front (seasonal differencing only with at
    least 3 full seasons, never a seasonal ARIMA below that; no seasonal
    ARIMA for weekly/daily periods, whose state vectors are too large);
  - ``Theta``: ``ThetaModel`` (classical decomposition, multiplicative for
    positive series, the seasonality test on);
  - ``STL+ETS``: STL on the series (on logs for positive series) with a
    damped-trend ETS on the seasonally adjusted part, only for long series
    (at least ``STL_MIN_SEASONS`` seasons).

* **Combination**: the median of the surviving members' point forecasts at
  each step (``how="median"``, the default; with 2 members the median is
  their mean) or their mean (``how="mean"``). The dev set of issue 12 (22
  monthly series, 8 origins) decided the default; see
  ``docs/FORECASTING.md`` for the figures.

* **Guards**: a member is dropped when its fit raises or does not converge,
  when its forecast is non-finite or *explodes* (leaves the band
  ``[min - k*range, max + k*range]`` of the history, ``k = EXPLODE_RANGES``
  widened with the horizon), or goes below zero for a non-negative series.
  The model name lists the members combined and the dropped ones with the
  reason, e.g. ``"Median(ETS(M,Ad,M), ARIMA(0,1,1)(0,1,1)12, Theta(mul));
  dropped: STL+ETS (negative forecast)"``. With no survivor the selector
  falls back (see :mod:`.select`).

* **Long histories** are fitted on their last ``MAX_FIT_SEASONS`` seasons
  (monthly: 12 years). Old structure rarely helps a 12-step forecast, and
  the window keeps a fit of a 40-year series as cheap as one of 12 years.

* **Intervals: normalised split-conformal.** The combination itself is
  replayed at up to ``CAL_ORIGINS`` earlier origins (every ``CAL_STEP``
  points, back to half the series) with each member's *fitted* parameters
  (dynamic prediction from the origin: filter states for ETS/ARIMA, a refit
  for Theta, whose fit is closed-form). Each error is divided by a
  per-step spread ``sd(s)`` taken from the ETS member's own predictive
  distribution at the last origin, so errors of different steps are
  exchangeable scores ``z``. The interval at level ``L`` is
  ``mean + sd(s) * Q(u)`` with ``Q`` the empirical quantile function of the
  scores on the plotting positions ``i / (N + 1)`` (the split-conformal
  ``(N+1)`` finite-sample correction), extended beyond the extreme scores by
  a normal tail. When a step has at least ``CAL_PER_STEP`` scores of its
  own its quantiles come from that step alone; otherwise from all steps
  pooled. :func:`pool_scores` pools the scores of several series (one
  scope's KPIs or teams) when each has too few windows.

* **Sample paths from the same error model**: ``simulate`` draws the ETS
  member's own sample paths (their correlation over steps is the model's),
  maps each step to uniforms through the normal CDF of its standardised
  value and back through ``Q``: the marginal distribution of every step is
  exactly the interval's, so ``P(goal)`` computed from summed paths and the
  intervals agree.

* **Speed**: a 48-point monthly series fits 8 ETS, up to 3 SARIMAX orders,
  1 Theta, then the replay (cheap: no refits for ETS/ARIMA); see
  ``benchmarks/forecast_accuracy.py`` for the measured seconds per series.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from kpireport.forecasting.models import (
    ETS,
    ForecastModel,
    ModelFitError,
    Naive,
    SeasonalNaive,
    _level_tag,
    _quiet_fit,
)

log = logging.getLogger("kpireport")

_NORMAL = NormalDist()

#: a forecast leaving the history's range by this many ranges (widened with h/n) explodes.
EXPLODE_RANGES = 1.0
#: series longer than this many seasons are fitted on their last ones.
MAX_FIT_SEASONS = 12
#: without seasonality (m == 1): the longest window fitted.
MAX_FIT_POINTS = 144
#: STL+ETS joins the combination from this many full seasons on.
STL_MIN_SEASONS = 4
#: seasonal ARIMA from this many full seasons on.
SARIMA_MIN_SEASONS = 3
#: conformal replay: origins, their spacing, the longest step scored.
CAL_ORIGINS = 10
CAL_STEP = 3
CAL_HORIZON = 12
#: a step with at least this many scores gets its own quantiles.
CAL_PER_STEP = 40
#: fewer scores than this: the ETS member's own intervals (uncalibrated).
CAL_MIN_SCORES = 10
#: paths behind the deterministic shape of the predictive distribution.
SHAPE_PATHS = 1000
SHAPE_SEED = 20240601
#: Theta member: the values of ``theta`` compared by rolling-origin error.
THETA_GRID = (1.0, 1.5, 2.0, 3.0, 5.0, float("inf"))
#: ... and ``theta = 2`` (classical) is kept unless another has errors below this share.
THETA_KEEP = 0.9


# ------------------------------------------------------------------ members
def ets_family(m: int, seasonal: bool, positive: bool) -> list[ETS]:
    """ETS configurations compared by AICc inside the ``ETS`` member.

    Additive error: ``(A,N,N)``, ``(A,A,N)``, ``(A,Ad,N)`` (+ the three with
    additive seasonality when seasonal). Strictly positive series add the
    multiplicative-error models ``(M,N,N)``, ``(M,Ad,N)`` and, when seasonal,
    ``(M,N,M)``, ``(M,A,M)``, ``(M,Ad,M)``, ``(M,Ad,A)``.
    """
    out = [ETS("add", None, False, None), ETS("add", "add", False, None)]
    out.append(ETS("add", "add", True, None))
    if seasonal:
        out += [ETS("add", None, False, "add"), ETS("add", "add", False, "add")]
        out.append(ETS("add", "add", True, "add"))
    if positive:
        out += [ETS("mul", None, False, None), ETS("mul", "add", True, None)]
        if seasonal:
            out += [ETS("mul", None, False, "mul"), ETS("mul", "add", False, "mul")]
            out += [ETS("mul", "add", True, "mul"), ETS("mul", "add", True, "add")]
    return out


class Member:
    """One member of the combination: ``fit``, ``point(h)`` and ``replay(t, h)``.

    ``replay(t, h)`` is the member's ``h``-step forecast from origin ``t``
    (trained on ``y[:t]``) with the parameters fitted on the whole window.
    """

    name = "member"

    def fit(self, y: np.ndarray, m: int, positive: bool) -> Member:  # pragma: no cover
        raise NotImplementedError

    def point(self, h: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def replay(self, t: int, h: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class ETSMember(Member):
    """The AICc-best ETS configuration of :func:`ets_family`."""

    name = "ETS"

    def fit(self, y: np.ndarray, m: int, positive: bool) -> ETSMember:
        seasonal = m > 1 and len(y) >= 2 * m
        fitted = []
        for cand in ets_family(m, seasonal, positive):
            try:
                fitted.append(cand.fit(y, m))
            except ModelFitError as exc:
                log.debug("ETS candidate failed: %s", exc)
        for cand in sorted(fitted, key=lambda c: c.aicc):
            try:
                cand.predict(1, (80,))
            except ModelFitError:
                continue
            self.model = cand
            self.name = cand.name
            self.y, self.m = np.asarray(y, float), m
            return self
        raise ModelFitError("every ETS configuration failed")

    def point(self, h: int) -> np.ndarray:
        return np.asarray(self.model.res.forecast(h), float)

    def replay(self, t: int, h: int) -> np.ndarray:
        cfg = self.model
        again = ETS(cfg.error, cfg.trend, cfg.damped, cfg.seasonal).fit(self.y[:t], self.m)
        return np.asarray(again.res.forecast(h), float)


def _difference(y: np.ndarray, d: int, ds: int, m: int) -> np.ndarray:
    x = np.asarray(y, float)
    for _ in range(ds):
        x = x[m:] - x[:-m]
    for _ in range(d):
        x = np.diff(x)
    return x


def _integrate(w: np.ndarray, hist: np.ndarray, d: int, ds: int, m: int) -> np.ndarray:
    """Undo ``_difference`` for forecasts ``w`` of the differenced series after ``hist``."""
    levels = [np.asarray(hist, float)]
    for _ in range(ds):
        levels.append(levels[-1][m:] - levels[-1][:-m])
    seasonal_diffed = levels[-1]
    x = np.asarray(w, float)
    if d:
        x = seasonal_diffed[-1] + np.cumsum(x)
    for k in range(ds, 0, -1):
        base = list(levels[k - 1][-m:])
        out = []
        for v in x:
            nxt = base[-m] + v
            base.append(nxt)
            out.append(nxt)
        x = np.asarray(out)
    return x


class ARIMAMember(Member):
    """SARIMAX by AICc over a small stepwise set of orders.

    Differencing first: seasonal ``D = 1`` with at least
    ``SARIMA_MIN_SEASONS`` seasons and a seasonal period of at most 12;
    ``d = 1`` unless the (seasonally differenced) series is clearly
    stationary (its lag-1 autocorrelation below 0.5), then a constant.
    Orders: ``(0,d,1)``, ``(1,d,0)``, ``(1,d,1)`` with ``(0,D,1)m`` when
    seasonal, no seasonal ARMA otherwise. The differencing is done before
    the fit (``simple_differencing``: a smaller state vector, ~2x faster)
    and undone on the forecasts; AICc compares orders on the same
    differenced data.
    """

    name = "ARIMA"

    def fit(self, y: np.ndarray, m: int, positive: bool) -> ARIMAMember:
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        n = len(y)
        if n < 10:
            raise ModelFitError("ARIMA needs at least 10 observations")
        seasonal = 1 < m <= 12 and n >= SARIMA_MIN_SEASONS * m
        ds = 1 if seasonal else 0
        x = _difference(y, 0, ds, m)
        d = 1
        if len(x) > 3 and np.std(x) > 0:
            xc = x - x.mean()
            r1 = float(np.sum(xc[1:] * xc[:-1]) / np.sum(xc * xc))
            d = 0 if r1 < 0.5 else 1
        w = _difference(y, d, ds, m)
        self.y, self.d, self.ds, self.m = np.asarray(y, float), d, ds, m
        sorder = (0, 0, 1, m) if seasonal else (0, 0, 0, 0)
        trend = "c" if (d == 0 or not seasonal) else None
        best = None
        for order in ((0, 0, 1), (1, 0, 0), (1, 0, 1)):
            mod = SARIMAX(
                w, order=order, seasonal_order=sorder, trend=trend, concentrate_scale=True
            )
            try:
                res = _quiet_fit(
                    lambda mod=mod: mod.fit(disp=False, maxiter=50, cov_type="none"), "ARIMA"
                )
            except ModelFitError as exc:
                log.debug("%s", exc)
                continue
            if not res.mle_retvals.get("converged", True):
                continue
            score = float(res.aicc)
            if np.isfinite(score) and (best is None or score < best[0]):
                best = (score, res, order)
        if best is None:
            raise ModelFitError("no ARIMA order converged")
        self.res, (p, _, q) = best[1], best[2]
        s = f"(0,1,1){m}" if seasonal else ""
        self.name = f"ARIMA({p},{d},{q}){s}"
        self.lost = d + ds * m  # observations lost to differencing
        return self

    def point(self, h: int) -> np.ndarray:
        w = np.asarray(_quiet_fit(lambda: self.res.forecast(h), self.name), float)
        return _integrate(w, self.y, self.d, self.ds, self.m)

    def replay(self, t: int, h: int) -> np.ndarray:
        s = t - self.lost  # the origin in the differenced series
        if s < 2:
            raise ModelFitError("origin too early for the differenced series")
        w = _quiet_fit(lambda: self.res.predict(start=s, end=s + h - 1, dynamic=True), self.name)
        return _integrate(np.asarray(w, float), self.y[:t], self.d, self.ds, self.m)


class ThetaMember(Member):
    """The optimised Theta method: ``ThetaModel`` (SES + a share of the OLS
    drift), deseasonalised by classical decomposition when a season is
    testable (two full seasons), with ``theta`` chosen by rolling-origin error.

    Classical Theta (``theta = 2``) extrapolates half the fitted slope, so it
    under-forecasts every sustained trend; the optimised Theta method (OTM,
    Fiorucci et al. 2016) chooses ``theta``. Here ``theta`` is chosen from
    :data:`THETA_GRID` (``1``: SES without drift, ``inf``: the whole drift) by
    the mean absolute error of the member's own forecasts at earlier origins
    (every ``CAL_STEP`` points, horizon ``min(12, n/4)``, back to half the
    series), and ``2`` is kept unless another value is clearly better
    (:data:`THETA_KEEP`). The fits at those origins are kept for the
    combination's conformal replay.
    """

    name = "Theta"
    #: choose ``theta`` by rolling-origin error (else the classical ``theta = 2``).
    choose = True

    def fit(self, y: np.ndarray, m: int, positive: bool) -> ThetaMember:
        self.y, self.m, self.positive = np.asarray(y, float), m, positive
        self.res = self._fit(self.y)
        self._at: dict[int, Any] = {}
        self.theta = self._choose_theta() if self.choose else 2.0
        kind = self.res.model.method[:3] if self._seasonal(len(y)) else "ns"
        args = [] if kind == "ns" else [kind]
        if self.theta != 2.0:
            args.append("theta=inf" if np.isinf(self.theta) else f"theta={self.theta:g}")
        self.name = f"Theta({', '.join(args)})" if args else "Theta"
        return self

    def _seasonal(self, n: int) -> bool:
        return self.m > 1 and n >= 2 * self.m

    def _fit(self, y: np.ndarray) -> Any:
        from statsmodels.tsa.forecasting.theta import ThetaModel

        seasonal = self._seasonal(len(y))
        method = "auto" if self.positive else "additive"
        return _quiet_fit(
            lambda: ThetaModel(
                y, period=self.m if seasonal else 1, deseasonalize=seasonal, method=method
            ).fit(),
            "Theta",
        )

    def _fit_at(self, t: int) -> Any:
        if t not in self._at:
            self._at[t] = self._fit(self.y[:t])
        return self._at[t]

    def _choose_theta(self) -> float:
        n = len(self.y)
        h = min(CAL_HORIZON, max(1, n // 4))
        err = np.zeros(len(THETA_GRID))
        used = 0
        for i in range(CAL_ORIGINS):
            t = n - h - i * CAL_STEP
            if t < max(10, n // 2):
                break
            try:
                f = theta_forecasts(self._fit_at(t), h, THETA_GRID)
            except (ModelFitError, ValueError) as exc:
                log.debug("Theta at origin %d failed: %s", t, exc)
                continue
            if not np.all(np.isfinite(f)):
                continue
            err += np.mean(np.abs(f - self.y[t : t + h]), axis=1)
            used += 1
        if not used:
            return 2.0
        classical = err[THETA_GRID.index(2.0)]
        best = int(np.argmin(err))
        return float(THETA_GRID[best]) if err[best] < THETA_KEEP * classical else 2.0

    def point(self, h: int) -> np.ndarray:
        return np.asarray(self.res.forecast(h, theta=self.theta), float)

    def replay(self, t: int, h: int) -> np.ndarray:
        return np.asarray(self._fit_at(t).forecast(h, theta=self.theta), float)


def theta_forecasts(res: Any, h: int, thetas: Sequence[float]) -> np.ndarray:
    """``(len(thetas), h)`` forecasts of a fitted ``ThetaModel`` for several ``theta``.

    The same numbers as ``res.forecast(h, theta=th)`` for each value (the
    statsmodels formula: ``(1 - 1/theta) * trend + ses``, reseasonalised),
    from one ``forecast_components`` call instead of one per value.
    """
    comp = _quiet_fit(lambda: res.forecast_components(steps=h), "Theta")
    trend, ses = np.asarray(comp["trend"], float), np.asarray(comp["ses"], float)
    thresh = 4.0 / np.finfo(np.double).eps
    w = np.array([(th - 1) / th if th < thresh else 1.0 for th in thetas])
    f = w[:, None] * trend[None, :] + ses[None, :]
    if res.model.deseasonalize:
        seasonal = np.asarray(comp["seasonal"], float)[None, :]
        f = f * seasonal if res.model.method.startswith("mul") else f + seasonal
    return f


class STLMember(Member):
    """STL (robust) + damped-trend ETS on the seasonally adjusted series; logs for
    positive series. The seasonal part repeats the last season."""

    name = "STL+ETS"

    def fit(
        self, y: np.ndarray, m: int, positive: bool, min_seasons: int = STL_MIN_SEASONS
    ) -> STLMember:
        from statsmodels.tsa.seasonal import STL

        if m < 2 or len(y) < min_seasons * m:
            raise ModelFitError(f"STL+ETS needs {STL_MIN_SEASONS} full seasons")
        self.m, self.log, self.y = m, positive, np.asarray(y, float)
        x = np.log(y) if positive else np.asarray(y, float)
        dec = _quiet_fit(lambda: STL(x, period=m, robust=True).fit(), "STL")
        self.seasonal = np.asarray(dec.seasonal, float)
        self.inner = ETS("add", "add", True, None).fit(x - self.seasonal, 1)
        return self

    def _back(self, v: np.ndarray) -> np.ndarray:
        return np.exp(v) if self.log else v

    def _season(self, t: int, h: int) -> np.ndarray:
        last = self.seasonal[t - self.m : t]
        return last[np.arange(h) % self.m]

    def point(self, h: int) -> np.ndarray:
        n = len(self.seasonal)
        return self._back(np.asarray(self.inner.res.forecast(h), float) + self._season(n, h))

    def replay(self, t: int, h: int) -> np.ndarray:
        # the replay origins may be shorter than the member's own minimum
        again = STLMember().fit(self.y[:t], self.m, self.log, min_seasons=2)
        return again.point(h)


class ClassicalThetaMember(ThetaMember):
    """The Theta member with the classical ``theta = 2`` (one fit, no rolling
    choice): the fast combination of goal evaluation's ratio parts."""

    choose = False


MEMBERS: dict[str, type[Member]] = {
    "ets": ETSMember,
    "arima": ARIMAMember,
    "theta": ThetaMember,
    "stl": STLMember,
    "theta2": ClassicalThetaMember,
}


# ---------------------------------------------------------------- scoring
class Scores:
    """Conformal scores ``z`` (errors / spread) by step, and their quantile function."""

    def __init__(self, z: np.ndarray, step: np.ndarray) -> None:
        ok = np.isfinite(z)
        self.z, self.step = np.asarray(z, float)[ok], np.asarray(step, int)[ok]

    def __len__(self) -> int:
        return len(self.z)

    def quantile(self, u: np.ndarray, step: int) -> np.ndarray:
        """``Q(u)`` for one step, symmetric: ``sign(u - 1/2) * A(|2u - 1|)`` with ``A``
        the conformal quantile function of ``|z|`` (positions ``i/(N+1)``)."""
        z = self.z[self.step == step] if np.sum(self.step == step) >= CAL_PER_STEP else self.z
        u = np.asarray(u, float)
        a = conformal_quantile(np.sort(np.abs(z)), np.abs(2 * u - 1), half=True)
        return np.sign(u - 0.5) * a


def conformal_quantile(zs: np.ndarray, u: np.ndarray, half: bool = False) -> np.ndarray:
    """Quantile function of sorted scores ``zs`` at probabilities ``u``.

    Linear between the plotting positions ``i / (N + 1)``, ``i = 1..N`` (so the
    ``ceil((N+1) p)``-th score is the ``p`` quantile: the split-conformal
    finite-sample correction), from 0 at ``u = 0`` when ``half`` (scores are
    absolute values), and beyond the largest score a normal (half-normal)
    tail scaled to the scores.
    """
    n = len(zs)
    pos = np.arange(1, n + 1) / (n + 1)
    out = np.interp(u, np.r_[0.0, pos], np.r_[0.0, zs]) if half else np.interp(u, pos, zs)
    inv = np.vectorize(lambda p: _NORMAL.inv_cdf(min(max(p, 1e-12), 1 - 1e-12)))

    def tail(p: np.ndarray) -> np.ndarray:  # the normal (half-normal) quantile
        return inv((1 + p) / 2) if half else inv(p)

    ref = tail(np.array([pos[-1]]))[0]
    scale = zs[-1] / ref if half and ref > 0 and zs[-1] > 0 else 1.0
    if not half:
        scale = float(np.std(zs, ddof=1)) if n > 1 else 1.0
        scale = scale if scale > 0 else 1.0
    hi = u > pos[-1]
    if np.any(hi):
        out = np.where(hi, zs[-1] + scale * (tail(np.where(hi, u, pos[-1])) - ref), out)
    if not half:
        lo = u < pos[0]
        if np.any(lo):
            out = np.where(lo, zs[0] - scale * (inv(pos[0]) - inv(np.where(lo, u, pos[0]))), out)
    return out


def pool_scores(models: Sequence[ForecastModel]) -> int:
    """Give each :class:`Combination` in ``models`` the pooled scores of all.

    For the series of one scope (e.g. a team's KPIs, or every team's won
    value), each of which has few rolling-origin windows: the scores are
    scale-free (errors divided by each series' own spread), so pooling them
    is sound when the series behave alike. A combination without scores of
    its own (too short a history for a replay) gets the pool too. With the
    pool, every step that has ``CAL_PER_STEP`` scores gets its own quantiles
    (later steps miss by more than the spread model predicts).

    Returns
    -------
    int
        The number of series whose scores were pooled (0: nothing done,
        fewer than two series with scores or fewer than ``CAL_MIN_SCORES``).
    """
    combos = [m for m in models if isinstance(m, Combination)]
    have = [c for c in combos if c.own_scores is not None and len(c.own_scores)]
    if len(have) < 2:
        return 0
    z = np.concatenate([c.own_scores.z for c in have])  # type: ignore[union-attr]
    s = np.concatenate([c.own_scores.step for c in have])  # type: ignore[union-attr]
    if len(z) < CAL_MIN_SCORES:
        return 0
    pooled = Scores(z, s)
    for c in combos:
        c.scores = pooled
        c.pooled = len(have)
    return len(have)


# ------------------------------------------------------------- combination
class Combination(ForecastModel):
    """Median (or mean) of guarded members with normalised conformal intervals.

    Parameters
    ----------
    how
        ``"median"`` or ``"mean"``.
    members
        Member keys of :data:`MEMBERS` (default all; each only where estimable).
    nonneg
        The series is non-negative: a member forecasting below zero is dropped.
    calibrate
        Conformal intervals from the replayed errors (else the ETS member's own).
    """

    def __init__(
        self,
        how: str = "mean",
        members: Sequence[str] = ("ets", "arima", "theta", "stl"),
        nonneg: bool = False,
        calibrate: bool = True,
    ) -> None:
        self.how, self.keys, self.nonneg, self.calibrate = how, tuple(members), nonneg, calibrate
        self.members: list[Member] = []
        self.dropped: list[str] = []
        self.scores: Scores | None = None
        self.own_scores: Scores | None = None  # every replayed score, for pooling
        self.pooled = 1
        self.name = "Combination"

    # --------------------------------------------------------------- fitting
    def fit(self, y: np.ndarray, season_length: int = 1) -> Combination:
        y = np.asarray(y, float)
        m = int(season_length)
        keep = MAX_FIT_SEASONS * m if m > 1 else MAX_FIT_POINTS
        self.window = len(y) > keep
        y = y[-keep:]
        self.y, self.m, self.n = y, m, len(y)
        positive = bool(np.all(y > 0))
        self.members, self.dropped = [], []
        for key in self.keys:
            if key == "stl" and (m < 2 or self.n < STL_MIN_SEASONS * m):
                continue  # not estimable here: silently absent, not "dropped"
            try:
                mem = MEMBERS[key]().fit(y, m, positive)
                why = self._guard(mem.point(max(m, 12)))
            except ModelFitError as exc:
                log.debug("member %s failed: %s", key, exc)
                self.dropped.append(f"{MEMBERS[key].name} (failed to fit)")
                continue
            if why:
                self.dropped.append(f"{mem.name} ({why})")
                continue
            self.members.append(mem)
        if not self.members:
            raise ModelFitError("every member of the combination was dropped")
        self.shape = self._shape_model(y, m)
        self._sd_cache: dict[int, np.ndarray] = {}
        if self.calibrate:
            self.own_scores = self._replay()
            enough = self.own_scores is not None and len(self.own_scores) >= CAL_MIN_SCORES
            self.scores = self.own_scores if enough else None
        self.name = self._label()
        return self

    def _guard(self, f: np.ndarray) -> str:
        if not np.all(np.isfinite(f)):
            return "non-finite forecast"
        lo, hi = float(np.min(self.y)), float(np.max(self.y))
        rng = max(hi - lo, 1e-9 * max(1.0, abs(hi)))
        k = EXPLODE_RANGES * max(1.0, 2 * len(f) / self.n)
        if self.nonneg and np.any(f < 0):
            return "negative forecast"
        if np.any(f > hi + k * rng) or np.any(f < lo - k * rng):
            return "exploding forecast"
        return ""

    def _shape_model(self, y: np.ndarray, m: int) -> ForecastModel:
        for mem in self.members:
            if isinstance(mem, ETSMember):
                return mem.model
        ets = [mem for mem in MEMBERS.values() if mem is ETSMember]
        try:  # the ETS member was dropped: its configuration still gives a shape
            return ets[0]().fit(y, m, bool(np.all(y > 0))).model
        except ModelFitError:
            return SeasonalNaive().fit(y, m) if m > 1 and len(y) > m else Naive().fit(y)

    def _combine(self, stack: np.ndarray) -> np.ndarray:
        if self.how == "mean" or len(stack) == 1:
            return stack.mean(axis=0)
        return np.median(stack, axis=0)

    def _replay(self) -> Scores | None:
        n, m = self.n, self.m
        h = min(CAL_HORIZON if m <= 12 else m, max(1, n // 4))
        min_train = max(10, 2 * m if m > 1 else 10, n // 2)
        if n - h < min_train:  # a short series: one shorter replay, scores for pooling
            h = n - min_train
            if h < 1:
                return None
        sd = self.sd(h)
        zs, steps = [], []
        for i in range(CAL_ORIGINS):
            t = n - h - i * CAL_STEP
            if t < min_train:
                break
            k = h
            try:
                stack = np.vstack([mem.replay(t, k) for mem in self.members])
            except (ModelFitError, ValueError) as exc:
                log.debug("replay at %d failed: %s", t, exc)
                continue
            err = self.y[t : t + k] - self._combine(stack)
            zs.append(err / sd[:k])
            steps.append(np.arange(1, k + 1))
        if not zs:
            return None
        return Scores(np.concatenate(zs), np.concatenate(steps))

    def sd(self, h: int) -> np.ndarray:
        """Per-step spread of the shape model's predictive distribution (80 % band / 2 z)."""
        if h not in self._sd_cache:
            fr = self.shape.predict(h, (80,))
            sd = (fr["hi_80"] - fr["lo_80"]).to_numpy(float) / (2 * 1.2815515655446004)
            floor = 1e-6 * max(1.0, float(np.mean(np.abs(self.y))))
            self._sd_cache[h] = np.maximum(np.where(np.isfinite(sd), sd, floor), floor)
        return self._sd_cache[h]

    def _label(self) -> str:
        names = ", ".join(mem.name for mem in self.members)
        how = "Median" if self.how == "median" and len(self.members) > 2 else "Mean"
        label = f"{how}({names})" if len(self.members) > 1 else self.members[0].name
        if self.dropped:
            label += "; dropped: " + ", ".join(self.dropped)
        if self.m > 1 and self.n < 2 * self.m:
            label += f" (no seasonality: {self.n} < 2 x {self.m} observations)"
        if self.window:
            label += f"; fitted on the last {self.n} points"
        return label

    def interval_note(self) -> str:
        if self.scores is None:
            return "intervals: model-based (too few rolling-origin errors to calibrate)"
        pooled = f", pooled over {self.pooled} series" if self.pooled > 1 else ""
        return f"intervals: conformal from {len(self.scores)} rolling-origin errors{pooled}"

    # ---------------------------------------------------------- prediction
    def mean(self, h: int) -> np.ndarray:
        return self._combine(np.vstack([mem.point(h) for mem in self.members]))

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        mean = self.mean(h)
        out: dict[str, np.ndarray] = {"mean": mean}
        if self.scores is None:
            fr = self.shape.predict(h, levels)
            centre = fr["mean"].to_numpy(float)
            for lv in levels:
                tag = _level_tag(lv)
                out[f"lo_{tag}"] = mean + fr[f"lo_{tag}"].to_numpy(float) - centre
                out[f"hi_{tag}"] = mean + fr[f"hi_{tag}"].to_numpy(float) - centre
        else:
            sd = self.sd(h)
            for lv in levels:
                a = (100.0 - float(lv)) / 200.0
                tag = _level_tag(lv)
                q = np.array([self.scores.quantile(np.array([a, 1 - a]), s + 1) for s in range(h)])
                out[f"lo_{tag}"] = mean + sd * q[:, 0]
                out[f"hi_{tag}"] = mean + sd * q[:, 1]
        frame = pd.DataFrame(out, index=pd.RangeIndex(1, h + 1))
        if not np.all(np.isfinite(frame.to_numpy())):
            raise ModelFitError("combination: non-finite interval")
        return frame

    def standard_draws(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, h)`` standard-normal draws correlated over steps like the ETS
        member's own sample paths (the copula of :meth:`simulate`)."""
        try:
            raw = np.asarray(self.shape.simulate(h, n, rng), float)
        except ModelFitError:
            raw = np.cumsum(rng.normal(size=(n, h)), axis=1)
        if not np.all(np.isfinite(raw)):
            raw = np.cumsum(rng.normal(size=(n, h)), axis=1)
        mu, sdv = raw.mean(axis=0), raw.std(axis=0)
        return (raw - mu) / np.where(sdv > 0, sdv, 1.0)

    def simulate(
        self, h: int, n: int, rng: np.random.Generator, draws: np.ndarray | None = None
    ) -> np.ndarray:
        """Sample paths whose per-step quantiles are the intervals of :meth:`predict`.

        ``draws`` (``(n, h)`` standard normals) replaces the model's own, for
        joint simulation of two series (see :func:`~.ratio.ratio_forecast`).
        """
        mean = self.mean(h)
        w = self.standard_draws(h, n, rng) if draws is None else np.asarray(draws, float)
        if self.scores is None:
            return mean + w * self.sd(h)
        from scipy.special import ndtr

        u = ndtr(w)
        z = np.column_stack([self.scores.quantile(u[:, s], s + 1) for s in range(h)])
        return mean + z * self.sd(h)
