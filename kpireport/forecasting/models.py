"""Forecast models behind one small protocol, and a registry of them.

Design decisions
----------------
* **One protocol** (after statsforecast): a model is a small object with a
  ``name``, ``fit(y, season_length)``, ``predict(h, levels)`` returning a frame
  with ``mean, lo_L, hi_L`` on a 1..h ``RangeIndex``, and
  ``simulate(h, n, rng)`` returning an ``(n, h)`` array of sample paths.
  Models work on plain ``float`` arrays; the caller (:mod:`.select`) owns the
  calendar index, NaN handling and the count (non-negative) constraint.
* **Intervals**: pure additive ETS uses statsmodels' analytic prediction
  intervals; ETS with a multiplicative part uses quantiles of simulated paths
  (the analytic ones are approximations there). The simple fallbacks (naive,
  seasonal naive, mean) use the textbook normal formulas for ``predict`` and a
  residual bootstrap for ``simulate``; Croston uses a Bernoulli x size
  bootstrap for both.
* **Deterministic**: every internal simulation uses a fixed seed, so the same
  series always gives the same interval.
* statsmodels warnings (convergence, ill-conditioning) are silenced here and
  logged at debug level; a failed fit raises :class:`ModelFitError`, which the
  selector turns into a fallback with the reason recorded.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from kpireport.errors import ForecastError

#: standard normal quantiles (stdlib: importing scipy.stats costs ~1 s per kernel)
_NORMAL = NormalDist()

log = logging.getLogger("kpireport")

#: seed of the internal simulations used for intervals (determinism).
INTERVAL_SEED = 20240601
#: number of paths behind simulated intervals.
INTERVAL_PATHS = 2000


class ModelFitError(ForecastError):
    """A candidate model could not be fitted or produced non-finite output."""


# --------------------------------------------------------------------- helpers
def level_columns(levels: Sequence[int | float]) -> list[str]:
    """Column names ``mean, lo_L, hi_L, ...`` for ``levels`` (in given order)."""
    cols = ["mean"]
    for lv in levels:
        tag = _level_tag(lv)
        cols += [f"lo_{tag}", f"hi_{tag}"]
    return cols


def _level_tag(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else str(level)


def normal_frame(mean: np.ndarray, sd: np.ndarray, levels: Sequence[float]) -> pd.DataFrame:
    """Forecast frame with symmetric normal intervals ``mean ± z * sd``."""
    out: dict[str, np.ndarray] = {"mean": np.asarray(mean, float)}
    for lv in levels:
        z = _NORMAL.inv_cdf(0.5 + float(lv) / 200.0)
        tag = _level_tag(lv)
        out[f"lo_{tag}"] = out["mean"] - z * sd
        out[f"hi_{tag}"] = out["mean"] + z * sd
    return pd.DataFrame(out, index=pd.RangeIndex(1, len(mean) + 1))


def quantile_frame(mean: np.ndarray, paths: np.ndarray, levels: Sequence[float]) -> pd.DataFrame:
    """Forecast frame with intervals from the quantiles of sample ``paths`` (n, h)."""
    out: dict[str, np.ndarray] = {"mean": np.asarray(mean, float)}
    for lv in levels:
        a = (100.0 - float(lv)) / 200.0
        tag = _level_tag(lv)
        out[f"lo_{tag}"] = np.quantile(paths, a, axis=0)
        out[f"hi_{tag}"] = np.quantile(paths, 1.0 - a, axis=0)
    return pd.DataFrame(out, index=pd.RangeIndex(1, paths.shape[1] + 1))


def _bootstrap(
    resid: np.ndarray, size: tuple[int, int], rng: np.random.Generator, sigma: float
) -> np.ndarray:
    """Resample centred residuals; normal draws when there are fewer than 3."""
    resid = resid[np.isfinite(resid)]
    if len(resid) >= 3 and np.ptp(resid) > 0:
        centred = resid - resid.mean()
        return rng.choice(centred, size=size, replace=True)
    return rng.normal(0.0, sigma, size=size)


def _rmse(resid: np.ndarray) -> float:
    resid = resid[np.isfinite(resid)]
    return float(np.sqrt(np.mean(resid**2))) if len(resid) else float("nan")


class ForecastModel:
    """Protocol of every model: ``fit``, ``predict``, ``simulate`` and a ``name``.

    Subclasses set :attr:`name` (after fitting it may be more specific, e.g.
    ``"ETS(A,Ad,A)"``) and implement the three methods.
    """

    name: str = "model"
    #: fitting cost class: "fast" models are always tried; "slow" ones are
    #: skipped for short series and by :func:`~kpireport.forecasting.forecast_many`.
    cost: str = "fast"

    def fit(self, y: np.ndarray, season_length: int = 1) -> ForecastModel:  # pragma: no cover
        raise NotImplementedError

    def predict(
        self, h: int, levels: Sequence[float] = (80, 95)
    ) -> pd.DataFrame:  # pragma: no cover
        raise NotImplementedError

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# ------------------------------------------------------------ simple baselines
class Naive(ForecastModel):
    """Random walk: the last value, intervals ``sigma * sqrt(h)``.

    ``sigma`` is the RMS of the first differences. With a single observation
    there is no spread to measure; a heuristic ``sigma = 25 % of |y|`` is used
    so a one-point series never claims certainty (documented in the name).
    """

    name = "Naive"

    def fit(self, y: np.ndarray, season_length: int = 1) -> Naive:
        self.last = float(y[-1])
        self.resid = np.diff(y)
        self.sigma = _rmse(self.resid)
        if not np.isfinite(self.sigma):
            self.sigma = 0.25 * abs(self.last)
            self.name = "Naive (one observation: heuristic 25% spread)"
        return self

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        steps = np.arange(1, h + 1)
        return normal_frame(np.full(h, self.last), self.sigma * np.sqrt(steps), levels)

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        shocks = _bootstrap(self.resid, (n, h), rng, self.sigma)
        return self.last + np.cumsum(shocks, axis=1)


class SeasonalNaive(ForecastModel):
    """The value one season earlier; intervals ``sigma * sqrt(k)``, k = full seasons ahead."""

    name = "SeasonalNaive"

    def fit(self, y: np.ndarray, season_length: int = 1) -> SeasonalNaive:
        m = max(1, int(season_length))
        if len(y) <= m:
            raise ModelFitError(f"seasonal naive needs more than {m} observations")
        self.m = m
        self.tail = np.asarray(y[-m:], float)
        self.resid = y[m:] - y[:-m]
        self.sigma = _rmse(self.resid)
        return self

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        steps = np.arange(h)
        mean = self.tail[steps % self.m]
        k = steps // self.m + 1
        return normal_frame(mean, self.sigma * np.sqrt(k), levels)

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        steps = np.arange(h)
        mean = self.tail[steps % self.m]
        k = steps // self.m + 1
        kmax = int(k.max())
        shocks = _bootstrap(self.resid, (n, kmax * self.m), rng, self.sigma)
        # the shock of season j at position p accumulates over seasons 1..j
        cum = np.cumsum(shocks.reshape(n, kmax, self.m), axis=1).reshape(n, kmax * self.m)
        return mean + cum[:, :h]


class Mean(ForecastModel):
    """The historical mean; intervals ``sigma * sqrt(1 + 1/n)``."""

    name = "Mean"

    def fit(self, y: np.ndarray, season_length: int = 1) -> Mean:
        self.mu = float(np.mean(y))
        self.resid = y - self.mu
        self.n = len(y)
        self.sigma = float(np.std(y, ddof=1)) if len(y) > 1 else 0.25 * abs(self.mu)
        return self

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        sd = np.full(h, self.sigma * np.sqrt(1 + 1 / self.n))
        return normal_frame(np.full(h, self.mu), sd, levels)

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        level = self.mu + rng.normal(0.0, self.sigma / np.sqrt(self.n), size=(n, 1))
        return level + _bootstrap(self.resid, (n, h), rng, self.sigma)


class Croston(ForecastModel):
    """Croston's method with the Syntetos–Boylan bias correction (SBA).

    Demand sizes ``z`` and inter-demand intervals ``p`` are smoothed with
    ``alpha``; the point forecast is ``(1 - alpha/2) * z / p`` for every step.
    Paths: each period has demand with probability ``1/p``, of a size
    resampled from the observed non-zero demands rescaled to mean ``z``. The
    intervals are quantiles of those paths (per period).
    """

    name = "Croston-SBA"

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def fit(self, y: np.ndarray, season_length: int = 1) -> Croston:
        nz = np.flatnonzero(y != 0)
        if len(nz) == 0:
            raise ModelFitError("Croston needs at least one non-zero value")
        sizes = y[nz]
        gaps = np.diff(np.concatenate([[-1], nz])).astype(float)
        z, p = float(sizes[0]), float(gaps[0])
        for s, g in zip(sizes[1:], gaps[1:], strict=True):
            z += self.alpha * (s - z)
            p += self.alpha * (g - p)
        # periods since the last demand count as evidence for a longer interval
        since = len(y) - 1 - nz[-1]
        if since > p:
            p += self.alpha * (since - p)
        self.z, self.p = z, max(p, 1.0)
        self.sizes = sizes
        self.fc = (1 - self.alpha / 2) * self.z / self.p
        return self

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        paths = self.simulate(h, INTERVAL_PATHS, np.random.default_rng(INTERVAL_SEED))
        return quantile_frame(np.full(h, self.fc), paths, levels)

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        prob = min(1.0, (1 - self.alpha / 2) / self.p)
        scale = self.z / float(np.mean(self.sizes)) if np.mean(self.sizes) != 0 else 1.0
        occur = rng.random((n, h)) < prob
        size = rng.choice(self.sizes * scale, size=(n, h), replace=True)
        return np.where(occur, size, 0.0)


# -------------------------------------------------------------- statsmodels
_BLAS: dict[str, Any] = {}


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """A context limiting the BLAS libraries (numpy's and scipy's OpenBLAS) to one thread.

    statsmodels' fits run thousands of tiny linear-algebra calls (L-BFGS-B
    steps on 2-5 parameters); with a multi-threaded OpenBLAS each call pays a
    thread wake-up, which made a 48-point ETS fit ~4x slower on a 2-core
    machine. Parallelism belongs one level up (:func:`~.forecast_many`
    processes). Uses ``threadpoolctl`` when installed, else does nothing.
    """
    if "controller" not in _BLAS:
        try:
            import scipy.optimize  # noqa: F401  (load scipy's BLAS before scanning)
            from threadpoolctl import ThreadpoolController

            _BLAS["controller"] = ThreadpoolController()
        except ImportError:  # pragma: no cover - optional speed-up
            _BLAS["controller"] = None
    ctl = _BLAS["controller"]
    if ctl is None:  # pragma: no cover
        return contextlib.nullcontext()
    return ctl.limit(limits=1, user_api="blas")


def _quiet_fit(fn: Callable[[], Any], what: str) -> Any:
    """Run a statsmodels call single-threaded, warnings captured and logged at debug level."""
    with warnings.catch_warnings(record=True) as caught, single_threaded_blas():
        warnings.simplefilter("always")
        try:
            with np.errstate(all="ignore"):
                res = fn()
        except Exception as exc:  # statsmodels raises many types on bad data
            raise ModelFitError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    for w in caught:
        log.debug("%s: %s: %s", what, w.category.__name__, w.message)
    return res


class ETS(ForecastModel):
    """One statsmodels ``ETSModel`` configuration, e.g. ``ETS(A,Ad,A)``.

    Parameters
    ----------
    error
        ``"add"`` or ``"mul"``.
    trend
        ``None`` or ``"add"``.
    damped
        Damped trend (only with a trend).
    seasonal
        ``None``, ``"add"`` or ``"mul"``.
    """

    def __init__(
        self,
        error: str = "add",
        trend: str | None = None,
        damped: bool = False,
        seasonal: str | None = None,
    ) -> None:
        self.error, self.trend, self.damped, self.seasonal = error, trend, damped, seasonal
        t = "N" if trend is None else ("Ad" if damped else trend[0].upper())
        s = "N" if seasonal is None else seasonal[0].upper()
        self.name = f"ETS({error[0].upper()},{t},{s})"
        self.aicc = float("inf")

    @property
    def additive(self) -> bool:
        return self.error == "add" and self.seasonal in (None, "add")

    def n_params(self, m: int) -> int:
        k = 2  # alpha, initial level
        if self.trend:
            k += 2 + int(self.damped)
        if self.seasonal:
            k += 1 + (m - 1)
        return k + 1  # + the error variance

    def fit(self, y: np.ndarray, season_length: int = 1) -> ETS:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        m = int(season_length)
        self.n = len(y)
        if self.n - self.n_params(m) - 1 <= 0:
            raise ModelFitError(f"{self.name}: too few observations ({self.n}) for its parameters")
        endog = pd.Series(np.asarray(y, float))

        def go(init: str) -> tuple[Any, np.ndarray, float]:
            known: dict[str, Any] = {}
            if init == "known":  # short series: states from the first points, no optimiser search
                known["initial_level"] = float(endog.iloc[0])
                if self.trend:
                    known["initial_trend"] = float(endog.iloc[1] - endog.iloc[0])
            mod = ETSModel(
                endog,
                error=self.error,
                trend=self.trend,
                damped_trend=self.damped,
                seasonal=self.seasonal,
                seasonal_periods=m if self.seasonal else None,
                initialization_method=init,
                **known,
            )
            # only the parameters: the full results object (smoothing + wrapping,
            # ~30 ms) is built lazily for the selected candidate (see ``res``)
            params = mod.fit(disp=False, maxiter=100, return_params=True)
            return mod, np.asarray(params, float), float(mod.loglike(params))

        # heuristic initial states are 10-50x faster to fit than estimated ones;
        # they need 10 observations (and two full seasons)
        # (below that, "known" states from the first points: estimating them on
        # 6-9 points is slow and unstable)
        if self.seasonal and self.n < 10:
            raise ModelFitError(f"{self.name}: seasonal ETS needs at least 10 observations")
        init = "heuristic" if self.n >= 10 and (not self.seasonal or self.n >= 2 * m) else "known"
        try:
            self._mod, self._params, llf = _quiet_fit(lambda: go(init), self.name)
        except ModelFitError:
            if init != "heuristic":
                raise
            self._mod, self._params, llf = _quiet_fit(lambda: go("estimated"), self.name)
        self._res: Any = None
        # AICc with the initial states counted as parameters whichever way they
        # were initialised, so candidates compare on the same footing
        k = self.n_params(m)
        self.aicc = -2 * llf + 2 * k + 2 * k * (k + 1) / (self.n - k - 1)
        if not np.isfinite(self.aicc):
            raise ModelFitError(f"{self.name}: non-finite AICc")
        return self

    @property
    def res(self) -> Any:
        """The statsmodels results of the fitted parameters (built on first use)."""
        if self._res is None:
            self._res = _quiet_fit(lambda: self._mod.smooth(self._params), self.name)
            fc = np.asarray(self._res.forecast(1), float)
            if not np.all(np.isfinite(fc)):
                raise ModelFitError(f"{self.name}: non-finite forecast")
        return self._res

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        mean = np.asarray(self.res.forecast(h), float)
        if self.additive:
            pred = _quiet_fit(
                lambda: self.res.get_prediction(start=self.n, end=self.n + h - 1), self.name
            )
            out: dict[str, np.ndarray] = {"mean": mean}
            for lv in levels:
                sf = pred.summary_frame(alpha=1 - float(lv) / 100)
                tag = _level_tag(lv)
                out[f"lo_{tag}"] = sf["pi_lower"].to_numpy(float)
                out[f"hi_{tag}"] = sf["pi_upper"].to_numpy(float)
            frame = pd.DataFrame(out, index=pd.RangeIndex(1, h + 1))
        else:
            paths = self.simulate(h, INTERVAL_PATHS, np.random.default_rng(INTERVAL_SEED))
            frame = quantile_frame(mean, paths, levels)
        if not np.all(np.isfinite(frame.to_numpy())):
            raise ModelFitError(f"{self.name}: non-finite interval")
        return frame

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        sims = _quiet_fit(
            lambda: self.res.simulate(h, anchor="end", repetitions=n, rng=rng), self.name
        )
        arr = np.asarray(sims, float).reshape(h, n).T
        return arr


class SARIMAX(ForecastModel):
    """A fixed, robust SARIMAX: the airline model ``(0,1,1)(0,1,1)m`` when seasonal,
    else ``(1,1,1)`` with drift. A slow candidate (state-space MLE)."""

    cost = "slow"

    def fit(self, y: np.ndarray, season_length: int = 1) -> SARIMAX:
        from statsmodels.tsa.statespace.sarimax import SARIMAX as _SARIMAX

        m = int(season_length)
        seasonal = m > 1 and len(y) >= 3 * m
        order = (0, 1, 1) if seasonal else (1, 1, 1)
        sorder = (0, 1, 1, m) if seasonal else (0, 0, 0, 0)
        trend = None if seasonal else "t"
        self.name = f"SARIMAX{order}{sorder[:3]}{m if seasonal else ''}"
        if len(y) < 8:
            raise ModelFitError("SARIMAX needs at least 8 observations")
        endog = pd.Series(np.asarray(y, float))
        self.n = len(y)
        self.res = _quiet_fit(
            lambda: _SARIMAX(endog, order=order, seasonal_order=sorder, trend=trend).fit(
                disp=False
            ),
            self.name,
        )
        return self

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        fc = _quiet_fit(lambda: self.res.get_forecast(h), self.name)
        out: dict[str, np.ndarray] = {"mean": np.asarray(fc.predicted_mean, float)}
        for lv in levels:
            ci = np.asarray(fc.conf_int(alpha=1 - float(lv) / 100), float)
            tag = _level_tag(lv)
            out[f"lo_{tag}"], out[f"hi_{tag}"] = ci[:, 0], ci[:, 1]
        frame = pd.DataFrame(out, index=pd.RangeIndex(1, h + 1))
        if not np.all(np.isfinite(frame.to_numpy())):
            raise ModelFitError(f"{self.name}: non-finite forecast")
        return frame

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        sims = _quiet_fit(
            lambda: self.res.simulate(h, anchor="end", repetitions=n, random_state=rng),
            self.name,
        )
        return np.asarray(sims, float).reshape(h, n).T


class STLETS(ForecastModel):
    """STL decomposition + damped-trend ETS on the seasonally adjusted series;
    the seasonal component is repeated from the last season. A slow candidate."""

    cost = "slow"
    name = "STL+ETS(A,Ad,N)"

    def fit(self, y: np.ndarray, season_length: int = 1) -> STLETS:
        from statsmodels.tsa.seasonal import STL

        m = int(season_length)
        if m < 2 or len(y) < 2 * m + 1:
            raise ModelFitError("STL needs a season length > 1 and two full seasons")
        self.m = m
        dec = _quiet_fit(lambda: STL(np.asarray(y, float), period=m, robust=True).fit(), "STL")
        self.season = np.asarray(dec.seasonal, float)[-m:]
        self.inner = ETS("add", "add", True, None).fit(np.asarray(y, float) - dec.seasonal, 1)
        return self

    def _seasonal(self, h: int) -> np.ndarray:
        return self.season[np.arange(h) % self.m]

    def predict(self, h: int, levels: Sequence[float] = (80, 95)) -> pd.DataFrame:
        frame = self.inner.predict(h, levels)
        return frame + self._seasonal(h)[:, None]

    def simulate(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.inner.simulate(h, n, rng) + self._seasonal(h)


# ------------------------------------------------------------------ registry
_REGISTRY: dict[str, Callable[[], ForecastModel]] = {
    "naive": Naive,
    "snaive": SeasonalNaive,
    "mean": Mean,
    "croston": Croston,
    "sarimax": SARIMAX,
    "stl": STLETS,
}


def register(name: str, factory: Callable[[], ForecastModel]) -> None:
    """Register a model factory (a class or zero-argument callable) under ``name``."""
    _REGISTRY[name] = factory


def list_models() -> list[str]:
    """Names of the registered models (``"auto"``, the selector, is registered by :mod:`.select`)."""
    return ["auto", *sorted(set(_REGISTRY) - {"auto"})]


def get_model(name: str, **options: Any) -> ForecastModel:
    """A fresh, unfitted model by registry name (``options`` go to its factory).

    Raises
    ------
    ForecastError
        For an unknown name; the message lists the valid choices.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ForecastError(
            f"Unknown forecast model '{name}'.", hint=f"Choose one of: {', '.join(list_models())}."
        ) from None
    return factory(**options)


def ets_candidates(
    season_length: int, seasonal: bool, positive: bool, y: np.ndarray | None = None
) -> list[ETS]:
    """ETS configurations tried by the AICc selector.

    ``ETS(A,N,N)``, ``ETS(A,A,N)``, ``ETS(A,Ad,N)`` and, with seasonality, the
    same three with additive seasonality. Multiplicative error and
    seasonality (``ETS(M,N,M)``, ``ETS(M,Ad,M)``) only when they can matter:
    the series is strictly positive, seasonal, and its level changes enough
    (the mean of the last season differs from the first by more than 40 %) for
    proportional seasonality to differ from additive. Pure multiplicative
    non-seasonal models and multiplicative-error variants of additive models
    are left out: on the monthly KPI series they almost never won on AICc and
    doubled the fitting time.
    """
    out: list[ETS] = []
    seasons: list[str | None] = [None, "add"] if seasonal else [None]
    for s in seasons:
        out += [ETS("add", None, False, s), ETS("add", "add", False, s), ETS("add", "add", True, s)]
    if positive and seasonal and y is not None and len(y) >= 2 * season_length:
        m = season_length
        first, last = float(np.mean(y[:m])), float(np.mean(y[-m:]))
        if first > 0 and not (1 / 1.4 <= last / first <= 1.4):
            out += [ETS("mul", None, False, "mul"), ETS("mul", "add", True, "mul")]
    return out
