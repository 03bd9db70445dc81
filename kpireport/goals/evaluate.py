"""Goal follow-up at an ``as_of`` date (SPEC §5).

For every goal: actual to date, the pace expected by now, the gap to pace, the
run rate still needed, the forecast at period end with its 80 % interval, the
probability of reaching the target, a status and the SMART lint.

Design decisions
----------------
* **Batched, not per goal.** A monthly pack evaluates a few hundred running
  goals many times, so nothing is computed per goal that can be computed per
  (KPI, scope): actuals are one :func:`~kpireport.kpis.compute_kpis` call per
  scope for every KPI and period of its goals; daily histories are one
  :func:`~kpireport.kpis.daily_matrix` per (KPI, scope) for every id at once
  (per id through :func:`~kpireport.kpis.kpi_series` for customers, whose
  matrix would have a column per company); monthly ratio histories are one
  ``compute_kpis`` per (KPI, scope, grain). The pace, run-rate, status and
  lint columns are vectorised over all goals. Only the forecasts of running
  goals loop, over cached arrays (:class:`_History`).
* **Actual** is the KPI for the goal's period cut at ``as_of`` ("to date").
* **Pace** (additive KPIs only — ratios cannot be paced):
  linear = target × elapsed share; seasonal = target × the share of last
  year's same-period total reached by the same elapsed share, when last year
  has a positive total. ``expected`` is the seasonal pace where there is one,
  else the linear pace. ``gap_to_pace = actual − expected``.
* **Run rate**: what is still needed (``target − actual``, at least 0 for
  ``at_least``; the remaining allowance for ``at_most``) per remaining
  calendar day, and per remaining working day (Mon–Fri) for activity-like
  KPIs (:data:`WORKDAY_KPIS`).
* **Forecast** of an additive KPI: actual to date + the rest of the period
  from the forecast package's *profile* method
  (:func:`kpireport.forecasting.attainment.profile_distribution`: weekday-aware
  extrapolation of the recent level and the period's pace, errors resampled
  from the same method's own past errors), totals summed per path, never
  interval bounds added. Where the profile method has too little history the
  package's daily-model method is called instead — except when the remaining
  days are weekdays that never had activity in the last year (a weekly
  meetings goal on a Friday): then the total is the actual. A ratio of
  additive KPIs (hit rate, mean deal value, mean sales cycle, CAC) is a
  ratio of forecasts (:func:`kpireport.forecasting.ratio.ratio_goal`: its
  numerator and denominator so far plus their jointly simulated rest of the
  period). Any other non-additive KPI, or a ratio with under 12 months of
  history, is ``share × value to date + (1 − share) × forecast`` of the next
  period of its monthly (quarterly) history by simple exponential smoothing
  (``ETS(A,N,N)``), with a normal band from the forecast interval.
* **Probability** of reaching the target (of staying at or under it for
  ``at_most``) is the share of simulated totals that do.
* **Status** of a running goal from the probability: ``on_track`` ≥ 0.65 >
  ``at_risk`` ≥ 0.35 > ``off_track``; from the pace ratio (actual ÷ expected:
  ≥ 0.95, ≥ 0.80) when no forecast is made. An additive ``at_least`` goal
  whose actual already meets the target is ``achieved``; an additive
  ``at_most`` one already over it is ``off_track``. After the period (or on
  its last day): ``achieved`` or ``missed``; before it: ``not_started``; no
  value to date (a ratio with nothing closed yet): ``no_data``.
* **Pipeline view** for ``won_value`` and ``deals_won`` goals: open deals
  expected to close in the rest of the period, weighted by probability (and
  simulated deal by deal), added to the actual to date. None (NaN) for a
  scope with a deal open at ``as_of`` that has closed since: its stage,
  probability and expected close on that day are unknown (docs/DATA.md).
* **Lint**: ``not_accepted`` (no ``agreed_by``), ``period_over``,
  ``unrealistic`` / ``unambitious`` (target beyond the 95 % interval of the
  forecast; for goals not yet started, above twice the maximum / under half
  the minimum of the last 12 comparable periods), ``inactive_owner`` (a
  seller goal whose seller is not active on any day of its period),
  ``undercommitted`` / ``overcommitted`` (the child goals one scope down add
  up to less / more than this goal; the difference is ``commit_gap``, see
  :mod:`kpireport.goals.cascade`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd

from kpireport.constants import Direction, GoalStatus, Grain, Scope, Table
from kpireport.data.model import CrmData
from kpireport.errors import GoalError, parse_choice
from kpireport.goals.cascade import commitment_flags, commitment_gaps
from kpireport.goals.definitions import load_goals
from kpireport.goals.values import _values
from kpireport.periods import Period, _day, containing, parse_period

log = logging.getLogger("kpireport")

DateLike = dt.date | pd.Timestamp | str
DAY = pd.Timedelta(days=1)

ON_TRACK_PROBABILITY = 0.65
AT_RISK_PROBABILITY = 0.35
ON_TRACK_PACE = 0.95
AT_RISK_PACE = 0.80
#: KPIs counted per working day (Mon–Fri) in the required run rate
WORKDAY_KPIS = frozenset(
    {"meetings_booked", "quotes_sent", "calls_made", "deals_won", "new_leads", "sql"}
)
#: KPIs with a pipeline view
PIPELINE_KPIS = frozenset({"won_value", "deals_won"})
#: days of daily history the additive forecasts see (the package default: 2 years)
HISTORY_DAYS = 730
#: months of history behind a ratio forecast
RATIO_HISTORY_MONTHS = 36
#: defined periods a ratio forecast needs (else: status from pace, no interval)
MIN_RATIO_HISTORY = 6

RESULT_COLUMNS = (
    "goal_id", "kpi", "label", "unit", "scope", "scope_id", "period", "target", "direction",
    "owner", "agreed_by", "elapsed", "actual", "expected_linear", "expected_seasonal", "expected",
    "gap_to_pace", "remaining_days", "remaining_working_days", "required_per_day",
    "required_per_working_day", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "probability",
    "pipeline_expected", "pipeline_probability", "status", "lint", "model",
    "growth", "growth_unit", "baseline_period", "baseline_value", "commit_gap",
)  # fmt: skip


def evaluate_goals(
    data: CrmData,
    goals: Any = None,
    as_of: DateLike | None = None,
    *,
    forecast: bool = True,
    scope: str | Scope | None = None,
    scope_ids: list[str] | None = None,
    current_only: bool = False,
    upcoming: bool = False,
    n_paths: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Evaluate goals at ``as_of``.

    Parameters
    ----------
    data
        The canonical dataset.
    goals
        Goals (DataFrame, list of dicts or YAML path); default: the source's
        ``goals`` table.
    as_of
        The day of the follow-up (inclusive). Required: a ``YYYY-MM-DD``
        string, ``datetime.date``/``datetime.datetime``, ``pandas.Timestamp``
        or a one-day ``pandas.Period``. The actuals are the KPIs to date as
        :func:`~kpireport.kpis.compute_kpis` gives them: cut at the end of
        ``as_of``, or of the data's last day when that is earlier
        (docs/KPIS.md).
    forecast
        Forecast running goals; without it the status comes from pace and
        the forecast columns are NaN.
    scope, scope_ids
        Keep only goals of this scope (and these ids; organisation goals are
        kept with ``scope_ids``). An unknown scope is refused with the list
        of valid ones.
    current_only
        Keep only goals whose period contains ``as_of``.
    upcoming
        Also forecast goals whose period has not started yet (their status
        stays ``not_started``): the forecast, interval and probability are
        then those of the whole period, as ``kpireport goals check`` and
        :func:`~kpireport.goals.suggest_targets` use them.
    n_paths, seed
        Simulation size and seed (same seed, same probabilities).

    Returns
    -------
    pandas.DataFrame
        One row per goal with the columns :data:`RESULT_COLUMNS`, in the
        order of the goal table.

    Raises
    ------
    GoalError
        Without ``as_of``, or when a goal is invalid (every problem listed).
    """
    if as_of is None:
        raise GoalError("evaluate_goals needs an as_of date.", hint="Pass as_of='YYYY-MM-DD'.")
    if isinstance(as_of, pd.Period):
        if as_of.freqstr.upper() != "D":
            raise GoalError(f"as_of must be a day; the pandas Period {as_of} is longer.")
        as_of = as_of.start_time
    return _evaluate(
        data, goals, _day(as_of), forecast=forecast, scope=scope, scope_ids=scope_ids,
        current_only=current_only, upcoming=upcoming, n_paths=n_paths, seed=seed,
    )  # fmt: skip


def _scope(scope: str | Scope) -> Scope:
    return parse_choice(Scope, scope, "scope", GoalError)


def _evaluate(
    data: CrmData,
    goals: Any,
    asof: pd.Timestamp,
    *,
    forecast: bool = True,
    scope: str | Scope | None = None,
    scope_ids: list[str] | None = None,
    current_only: bool = False,
    upcoming: bool = False,
    n_paths: int = 2000,
    seed: int = 0,
    totals: dict[int, np.ndarray] | None = None,
) -> pd.DataFrame:
    """:func:`evaluate_goals`; ``totals`` (when given) receives each forecast goal's
    simulated period totals by row position."""
    from kpireport.kpis.registry import REGISTRY

    g = load_goals(data, goals)
    # children vs parent over the whole goal list, before any filter
    g["commit_gap"] = commitment_gaps(g, data).to_numpy(float)
    if scope is not None:
        g = g[g["scope"] == str(_scope(scope))]
    if scope_ids is not None:
        g = g[g["scope_id"].isin([str(s) for s in scope_ids]) | (g["scope"] == Scope.ORGANISATION)]
    periods = {p: parse_period(p) for p in pd.unique(g["period"])}
    if current_only:
        g = g[[periods[p].start <= asof < periods[p].end for p in g["period"]]]
    if g.empty:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    g = g.reset_index(drop=True)

    out = _frame(g, periods, asof, REGISTRY)
    out["_forecast"] = out["_running"] | (upcoming & (out["_start"] > asof))
    out["actual"] = _actuals(data, out, periods, asof)
    running_periods = [periods[p] for p in pd.unique(out.loc[out["_forecast"], "period"])]
    first = min([p.last_year().start for p in running_periods], default=asof)
    if forecast:
        first = min(first, asof - pd.Timedelta(days=HISTORY_DAYS))
    hist = _History(data, asof, first)
    _pace(out, hist, periods)
    if forecast and out["_forecast"].any():
        _forecasts(data, out, hist, periods, asof, n_paths, seed, totals)
    out["status"] = _status(out, asof)
    out["lint"] = _lint(out, asof)
    _lint_inactive(data, out)
    for flag in ("undercommitted", "overcommitted"):
        flags = commitment_flags(out["commit_gap"].to_numpy(float), out["target"].to_numpy(float))
        _add_flag(out, flags == flag, flag)
    _lint_history(data, out, periods, asof)
    result = out.loc[:, list(RESULT_COLUMNS)]
    result.attrs["as_of"] = str(asof.date())
    return result


# ------------------------------------------------------------------ the frame
def _frame(g: pd.DataFrame, periods: dict[str, Period], asof: pd.Timestamp, reg) -> pd.DataFrame:
    """The goal columns plus the calendar facts of every goal, vectorised."""
    kdefs = [reg[k] for k in g["kpi"]]
    plist = [periods[p] for p in g["period"]]
    start = pd.DatetimeIndex([p.start for p in plist])
    end = pd.DatetimeIndex([p.end for p in plist])
    total = ((end - start) / DAY).to_numpy(float)
    day_after = asof + DAY
    done = ((np.minimum(np.maximum(day_after, start), end) - start) / DAY).to_numpy(float)
    first_rest = np.maximum(start, day_after)
    remaining = np.maximum(0, ((end - first_rest) / DAY).to_numpy(float)).astype(int)
    workdays = np.where(
        remaining > 0,
        np.busday_count(
            first_rest.to_numpy().astype("datetime64[D]"),
            np.maximum(end, first_rest).to_numpy().astype("datetime64[D]"),
        ),
        0,
    )
    out = pd.DataFrame(
        {
            "goal_id": g["goal_id"],
            "kpi": g["kpi"],
            "label": pd.array([k.label for k in kdefs], dtype="str"),
            "unit": pd.array([str(k.unit) for k in kdefs], dtype="str"),
            "scope": g["scope"],
            "scope_id": g["scope_id"].where(g["scope"] != Scope.ORGANISATION),
            "period": pd.array([p.label for p in plist], dtype="str"),
            "target": g["target"].astype(float),
            "direction": g["direction"],
            "owner": g["owner"],
            "agreed_by": g["agreed_by"],
            "growth": g["growth"].astype(float),
            "growth_unit": g["growth_unit"],
            "baseline_period": g["baseline_period"],
            "baseline_value": g["baseline_value"].astype(float),
            "commit_gap": g["commit_gap"].astype(float),
            "elapsed": done / total,
            "remaining_days": remaining,
            "remaining_working_days": workdays.astype(int),
        }
    )
    for col in RESULT_COLUMNS:
        if col not in out:
            out[col] = np.nan
    out["model"] = pd.array([None] * len(out), dtype="str")
    out["_additive"] = [k.additive for k in kdefs]
    out["_start"], out["_end"] = start, end
    # running: started and not on its last day (then the result is known)
    out["_running"] = (start <= asof) & (asof < end - DAY)
    return out


# ------------------------------------------------------------------ actuals
def _actuals(
    data: CrmData, out: pd.DataFrame, periods: dict[str, Period], asof: pd.Timestamp
) -> np.ndarray:
    """Actual to date of every goal: one batched :func:`_values` call per scope.

    A started goal (its period starts on or before ``as_of``) whose period
    starts after the data's last day (docs/KPIS.md) has no actual (NaN,
    status ``no_data``): unknown, not 0. A goal not started yet has 0 so far
    (the base its forecast adds the whole period to).
    """
    from kpireport.kpis.compute import period_status
    from kpireport.kpis.engine import prepared

    values = np.full(len(out), np.nan)
    labels = list(periods)
    after_data = period_status(prepared(data), [periods[p] for p in labels], None)[0]
    unknown = {
        p: bool(a) and periods[p].start <= asof for p, a in zip(labels, after_data, strict=True)
    }
    for scope, sub in out.groupby("scope", sort=False):
        plist = [periods[p] for p in pd.unique(sub["period"])]
        ids = list(pd.unique(sub["scope_id"].dropna()))
        lookup = _values(data, scope, list(pd.unique(sub["kpi"])), plist, ids, asof)
        keys = pd.MultiIndex.from_arrays(
            [
                sub["kpi"].astype(object),
                sub["scope_id"].astype(object).fillna(""),
                sub["period"].astype(object),
            ]
        )
        found = lookup.reindex(keys).to_numpy(float)
        # a scope id without a row (a seller inactive and without activity) has 0 of
        # every additive KPI
        known = ~sub["period"].map(unknown).to_numpy(bool)
        found = np.where(np.isnan(found) & sub["_additive"].to_numpy(), 0.0, found)
        found = np.where(known, found, np.nan)  # customers' lookup does not NaN these itself
        values[sub.index.to_numpy()] = found
    return values


# ------------------------------------------------------------------ history cache
class _History:
    """Daily and monthly histories per (KPI, scope), computed once per call."""

    def __init__(self, data: CrmData, asof: pd.Timestamp, first: pd.Timestamp) -> None:
        self.data = data
        self.asof = asof
        self.first = first
        self._daily: dict[tuple, pd.DataFrame | dict[str, np.ndarray]] = {}
        self._ratio: dict[tuple, pd.DataFrame] = {}
        self.rates: dict[str, float] | None = None
        self._open: pd.DataFrame | None = None

    def daily(self, kpi: str, scope: str, sid: str | None) -> np.ndarray:
        """Daily values of ``kpi`` for one scope id, from :attr:`first` to ``as_of``."""
        from kpireport.kpis import daily_matrix, kpi_series

        key = (kpi, scope)
        if scope == Scope.CUSTOMER:  # per id: the matrix would have a column per company
            cache = self._daily.setdefault(key, {})
            if sid not in cache:
                s = kpi_series(
                    self.data, kpi, scope, sid, grain="day", start=self.first, end=self.asof,
                    as_of=self.asof,
                )  # fmt: skip
                cache[sid] = np.nan_to_num(s.to_numpy(float))
            return cache[sid]
        if key not in self._daily:
            m = daily_matrix(self.data, kpi, scope, self.first, self.asof, as_of=self.asof)
            self._daily[key] = m
        m = self._daily[key]
        col = "organisation" if scope == Scope.ORGANISATION else str(sid)
        if col not in m:
            return np.zeros(len(m))
        return np.nan_to_num(m[col].to_numpy(float))

    def series(self, kpi: str, scope: str, sid: str | None, lo: pd.Timestamp) -> pd.Series:
        """The daily values from ``lo`` to ``as_of`` as a Series."""
        v = self.daily(kpi, scope, sid)
        off = int((lo - self.first) / DAY)
        idx = pd.date_range(lo, self.asof, freq="D")
        return pd.Series(v[off:], index=idx)

    def ratio_history(
        self, kpi: str, scope: str, grain: Grain, before: pd.Timestamp
    ) -> pd.DataFrame:
        """``(periods, ids)`` values of a ratio KPI for the periods ending before ``before``."""
        from kpireport.kpis import compute_kpis

        key = (kpi, scope, grain, before)
        if key not in self._ratio:
            last = containing(before - DAY, grain)
            n = RATIO_HISTORY_MONTHS if grain == Grain.MONTH else RATIO_HISTORY_MONTHS // 3
            plist = [last.shift(-k) for k in range(n - 1, -1, -1)]
            df = compute_kpis(self.data, plist, by=scope, kpis=[kpi], as_of=self.asof)
            sid = df["scope_id"].astype(object).fillna("organisation")
            wide = (
                pd.DataFrame({"p": df["period"].astype(object), "sid": sid, "v": df["value"]})
                .pivot_table(index="p", columns="sid", values="v", aggfunc="first", dropna=False)
                .reindex([p.label for p in plist])
            )
            wide.index = pd.DatetimeIndex([p.start for p in plist])
            self._ratio[key] = wide
        return self._ratio[key]

    def open_deals(self) -> pd.DataFrame:
        """Every deal open at the end of ``as_of`` (computed once)."""
        if self._open is None:
            self._open = open_deals_at(self.data, self.asof)
        return self._open

    def stage_rates(self) -> dict[str, float]:
        """Win rates per stage of the deals closed by the end of ``as_of`` (no later close)."""
        if self.rates is None:
            self.rates = _stage_win_rates(self.data, self.asof + DAY)
        return self.rates


def _stage_win_rates(data: CrmData, end: pd.Timestamp) -> dict[str, float]:
    """:func:`kpireport.forecasting.stage_win_rates` of the deals closed before ``end``.

    Counted by one query on the KPI engine (memoised per dataset and kept in
    the run's KPI cube, so a report kernel never reads the deals table for
    it): won ÷ closed per stage and overall, the same quotients of the same
    integers as the pandas means.
    """
    from kpireport.kpis.engine import prepared
    from kpireport.kpis.relational import ts

    prep = prepared(data)
    if not prep.has(Table.DEALS):
        return {}
    has_stage = "stage" in prep.frame(Table.DEALS)
    stage = "stage" if has_stage else "NULL"
    rows = prep.query(
        f"SELECT {stage}, COUNT(*), COUNT(*) FILTER (WHERE status = 'won') FROM deals "
        f"WHERE status IN ('won', 'lost') AND closed_at < {ts(end.value)} GROUP BY 1"
    )
    out: dict[str, float] = {}
    total = sum(int(r[1]) for r in rows)
    if total:
        out["*"] = sum(int(r[2]) for r in rows) / total
        for st, n, won in sorted((r for r in rows if r[0] is not None), key=lambda r: r[0]):
            out[str(st)] = int(won) / int(n)
    return out


# ------------------------------------------------------------------ pace
def _pace(out: pd.DataFrame, hist: _History, periods: dict[str, Period]) -> None:
    """Linear and seasonal pace, gap and required run rate (in place)."""
    target = out["target"].to_numpy(float)
    share = out["elapsed"].to_numpy(float)
    additive = out["_additive"].to_numpy(bool)
    running = out["_running"].to_numpy(bool)
    actual = out["actual"].to_numpy(float)
    linear = np.where(additive, target * share, np.nan)
    seasonal = np.full(len(out), np.nan)
    for i in np.flatnonzero(additive & running):
        row = out.iloc[i]
        seasonal[i] = target[i] * _seasonal_share(hist, row, periods[row["period"]], share[i])
    expected = np.where(np.isfinite(seasonal), seasonal, linear)
    expected = np.where(additive, expected, np.where(running, target, np.nan))
    out["expected_linear"], out["expected_seasonal"], out["expected"] = linear, seasonal, expected
    with np.errstate(invalid="ignore", divide="ignore"):
        out["gap_to_pace"] = np.where(additive, actual - expected, np.nan)
        # at_least: what is still missing; at_most: the allowance left (0 once exceeded)
        need = np.maximum(target - actual, 0.0)
        days = out["remaining_days"].to_numpy(float)
        work = out["remaining_working_days"].to_numpy(float)
        ok = additive & np.isfinite(actual) & (days > 0)
        out["required_per_day"] = np.where(ok, need / np.where(days > 0, days, 1), np.nan)
        workday = out["kpi"].isin(list(WORKDAY_KPIS)).to_numpy()
        okw = ok & workday & (work > 0)
        out["required_per_working_day"] = np.where(okw, need / np.where(work > 0, work, 1), np.nan)


def _seasonal_share(hist: _History, row: pd.Series, p: Period, share: float) -> float:
    """Share of last year's same-period total reached at the same elapsed share."""
    ly = p.last_year()
    if ly.start < hist.first:
        return np.nan
    v = hist.daily(row["kpi"], row["scope"], row["scope_id"])
    a = int((ly.start - hist.first) / DAY)
    s = v[a : a + ly.days]
    total = float(s.sum())
    if not np.isfinite(total) or total <= 0 or len(s) == 0:
        return np.nan
    days = int(round(share * len(s)))
    return float(s[:days].sum()) / total


# ------------------------------------------------------------------ forecasts
def _forecasts(
    data: CrmData,
    out: pd.DataFrame,
    hist: _History,
    periods: dict[str, Period],
    asof: pd.Timestamp,
    n_paths: int,
    seed: int,
    totals: dict[int, np.ndarray] | None = None,
) -> None:
    cols = ("forecast", "lo_80", "hi_80", "lo_95", "hi_95", "probability")
    res = {
        c: out[c].to_numpy(float).copy()
        for c in (*cols, "pipeline_expected", "pipeline_probability")
    }
    model = out["model"].astype(object).to_numpy().copy()
    for i in np.flatnonzero(out["_forecast"].to_numpy()):
        row = out.iloc[i]
        p = periods[row["period"]]
        sid = row["scope_id"] if row["scope"] != Scope.ORGANISATION else None
        try:
            if row["_additive"]:
                got = _forecast_additive(hist, row, sid, p, asof, n_paths, seed)
            else:
                got = _forecast_ratio(hist, row, sid, p, n_paths, seed)
        except Exception as exc:  # a forecast must never sink the goal table
            log.warning("forecast for goal %s failed: %s", row["goal_id"], exc)
            got = {"model": f"none ({type(exc).__name__}: {exc})"}
        for k, v in got.items():
            if k == "totals":
                if totals is not None:
                    totals[i] = v
            elif k == "model":
                model[i] = v
            else:
                res[k][i] = v
        if row["kpi"] in PIPELINE_KPIS and np.isfinite(row["actual"]):
            pe, pp = _pipeline_view(data, hist, row, sid, p, asof, n_paths, seed)
            res["pipeline_expected"][i], res["pipeline_probability"][i] = pe, pp
    for k, v in res.items():
        out[k] = v
    out["model"] = pd.array(model, dtype="str")


def _forecast_additive(hist: _History, row, sid, p: Period, asof, n_paths, seed) -> dict:
    from kpireport.forecasting import attainment_summary, period_total_distribution
    from kpireport.forecasting.attainment import profile_distribution

    lo = max(hist.first, min(p.start, asof - pd.Timedelta(days=HISTORY_DAYS)))
    v = hist.daily(row["kpi"], row["scope"], sid)
    s = pd.Series(v[int((lo - hist.first) / DAY) :], index=pd.date_range(lo, asof, freq="D"))
    totals = profile_distribution(s, p.start, p.end, asof, n_paths=n_paths, seed=seed)
    name = "profile simulation"
    if totals is None and _quiet_rest(s.to_numpy(), lo, p, asof):
        totals = np.full(int(n_paths), float(row["actual"]))
        name = "profile (nothing expected on the remaining days)"
    if totals is None:  # too little history for the profile method
        totals = period_total_distribution(
            s, p.start, p.end, asof, n_paths=n_paths, seed=seed, method="daily"
        )
        name = "daily simulation"
    summ = attainment_summary(totals, row["target"], row["direction"])
    return {
        "forecast": summ["mean"], "lo_80": summ["lo_80"], "hi_80": summ["hi_80"],
        "lo_95": summ["lo_95"], "hi_95": summ["hi_95"], "probability": summ["probability"],
        "model": name, "totals": totals,
    }  # fmt: skip


def _quiet_rest(v: np.ndarray, first: pd.Timestamp, p: Period, asof: pd.Timestamp) -> bool:
    """True when the remaining days' weekdays had no activity in the last 365 days.

    E.g. a weekly activity goal on a Friday: the weekend left never has
    meetings, so the total is the actual and no model needs fitting.
    """
    rest = pd.date_range(max(p.start, asof + DAY), p.end - DAY, freq="D")
    if len(rest) == 0 or len(v) < 365:
        return False
    last = v[-365:]
    wd = (first.day_of_week + np.arange(len(v) - 365, len(v))) % 7
    busy = set(np.unique(wd[last != 0]).tolist())
    return not any(d in busy for d in rest.day_of_week)


def _forecast_ratio(
    hist: _History, row, sid, p: Period, n_paths: int = 2000, seed: int = 0
) -> dict:
    from kpireport.forecasting.ratio import ratio_goal

    got = ratio_goal(  # a ratio of forecasts where the KPI is one of additive ones
        lambda k: hist.daily(k, row["scope"], sid), row["kpi"], hist.first, p.start, p.end,
        hist.asof, row["target"], row["direction"] == Direction.AT_LEAST, n_paths=n_paths,
        seed=seed,
    )  # fmt: skip
    if got is not None:
        return got
    from scipy.stats import norm

    from kpireport.forecasting.models import ETS, ModelFitError, Naive

    grain = p.grain if p.grain in (Grain.MONTH, Grain.QUARTER) else Grain.MONTH
    wide = hist.ratio_history(row["kpi"], row["scope"], grain, p.start)
    col = "organisation" if row["scope"] == Scope.ORGANISATION else str(sid)
    if col not in wide:
        return {}
    y = wide[col].astype(float)
    first = y.first_valid_index()
    if first is None:
        return {}
    y = y.loc[first:]
    if y.notna().sum() < MIN_RATIO_HISTORY:  # too few defined periods for an honest band
        return {}
    y = y.interpolate().bfill().to_numpy(float)
    try:
        model = ETS("add", None, False, None).fit(y, 1)
        fc = model.predict(1, (80,))
    except ModelFitError:
        model = Naive().fit(y, 1)
        fc = model.predict(1, (80,))
    mean_next = float(fc["mean"].iloc[0])
    sd_next = float(fc["hi_80"].iloc[0] - fc["lo_80"].iloc[0]) / (2 * 1.2816)
    if not np.isfinite(sd_next):
        sd_next = float(np.std(y, ddof=1)) if len(y) > 1 else abs(mean_next) * 0.25
    share = float(row["elapsed"])
    actual = row["actual"]
    base = actual if np.isfinite(actual) else mean_next
    mean = share * base + (1 - share) * mean_next
    sd = max((1 - share) * sd_next, 1e-9)
    z80, z95 = 1.2816, 1.96
    cdf = float(norm.cdf((row["target"] - mean) / sd))
    return {
        "forecast": mean, "lo_80": mean - z80 * sd, "hi_80": mean + z80 * sd,
        "lo_95": mean - z95 * sd, "hi_95": mean + z95 * sd,
        "probability": 1 - cdf if row["direction"] == Direction.AT_LEAST else cdf,
        "model": f"ratio: {model.name}",
        "totals": np.random.default_rng(seed).normal(mean, sd, int(n_paths)),
    }  # fmt: skip


# ------------------------------------------------------------------ pipeline
#: columns of a deal whose value on a past day the CRM export does not keep
UNKNOWN_AT_ASOF = ("stage", "probability", "expected_close_at")


def open_deals_at(data: CrmData, asof: pd.Timestamp, scope=None, sid=None) -> pd.DataFrame:
    """Deals open at the end of ``asof`` (within the scope; status set to ``open``).

    A deal closed after ``as_of`` was still open then, so it counts as open,
    with its ``value``, seller, company and ``created_at``. Its ``stage``,
    ``probability`` and ``expected_close_at`` on that day are unknown and set
    to NA (:data:`UNKNOWN_AT_ASOF`): the export holds only their current
    values (docs/DATA.md lists no history), which for a closed deal carry the
    outcome ("Closed won", 1.0 or 0.0, and an expected close moved to, or
    derived from, the real close). ``expected_close_at`` is NA too because
    the data contract does not define it as a forecast frozen before the
    close; keeping it would tell a past-day view which deals close when.
    Such rows have ``closed_later`` True; deals still open today keep their
    current stage, probability and expected close (``closed_later`` False).
    """
    from kpireport.kpis.engine import prepared
    from kpireport.kpis.relational import quote_ident, ts

    # one query on the KPI engine, memoised per dataset and kept in the run's KPI
    # cube: a report kernel never reads the deals table for its pipeline
    prep = prepared(data)
    like = prep.frame(Table.DEALS)
    end = ts((asof + DAY).value)
    later = f"(status IN ('won', 'lost') AND closed_at >= {end})"
    cols = ", ".join(quote_ident(str(c)) for c in like.columns)
    out = prep.rows(
        f"SELECT {cols} FROM deals WHERE created_at < {end} AND (status = 'open' OR {later})",
        like,
    ).copy()
    closed_later = out["status"].isin(["won", "lost"]) & (out["closed_at"] >= asof + DAY)
    out["status"] = "open"
    out["closed_later"] = closed_later.to_numpy(bool)
    for col in UNKNOWN_AT_ASOF:
        if col in out:
            out[col] = out[col].where(~out["closed_later"])
    return deals_in_scope(data, out, scope, sid)


def deals_in_scope(data: CrmData, deals: pd.DataFrame, scope, sid) -> pd.DataFrame:
    """The rows of ``deals`` that belong to a scope: a seller's, a team's (through the
    sellers' current team), a customer's, or all of them for the organisation."""
    if scope == Scope.SELLER:
        return deals[deals["seller_id"] == sid]
    if scope == Scope.TEAM:
        sellers = data.sellers.loc[data.sellers["team"] == sid, "seller_id"]
        return deals[deals["seller_id"].isin(list(sellers))]
    if scope == Scope.CUSTOMER:
        return deals[deals["company_id"] == sid]
    return deals


def _pipeline_view(
    data, hist: _History, row, sid, p: Period, asof, n_paths, seed
) -> tuple[float, float]:
    """Actual + weighted open deals expected to close in the rest of the period.

    NaN (no pipeline view) when a deal of the scope open at ``as_of`` has
    closed since: its stage, probability and expected close on that day are
    unknown (:func:`open_deals_at`), and leaving it out would understate the
    pipeline as surely as its outcome would overstate it.
    """
    from kpireport.forecasting import deal_monte_carlo

    rest = Period(max(p.start, asof + DAY), p.end, p.grain, p.label, True)
    deals = deals_in_scope(data, hist.open_deals(), row["scope"], sid)
    if deals["closed_later"].any():
        return np.nan, np.nan
    if row["kpi"] == "deals_won":
        deals = deals.assign(value=1.0)
    prob = pd.to_numeric(deals["probability"], errors="coerce")
    in_rest = (deals["expected_close_at"] >= rest.start) & (deals["expected_close_at"] < rest.end)
    weighted = float((deals.loc[in_rest, "value"] * prob[in_rest].fillna(0)).sum())
    sims = deal_monte_carlo(
        deals, rest, n_paths=n_paths, seed=seed, stage_win_rates=hist.stage_rates()
    )
    totals = row["actual"] + sims
    if row["direction"] == Direction.AT_LEAST:
        return row["actual"] + weighted, float(np.mean(totals >= row["target"]))
    return row["actual"] + weighted, float(np.mean(totals <= row["target"]))


# ------------------------------------------------------------------ status
def status_for_probability(probability: float) -> GoalStatus:
    """Status of a running goal from its probability of success.

    ``on_track`` from :data:`ON_TRACK_PROBABILITY` (0.65), ``at_risk`` from
    :data:`AT_RISK_PROBABILITY` (0.35), else ``off_track``; NaN gives
    ``no_data``.
    """
    if not np.isfinite(probability):
        return GoalStatus.NO_DATA
    if probability >= ON_TRACK_PROBABILITY:
        return GoalStatus.ON_TRACK
    return GoalStatus.AT_RISK if probability >= AT_RISK_PROBABILITY else GoalStatus.OFF_TRACK


def _status(out: pd.DataFrame, asof: pd.Timestamp) -> pd.Series:
    """Status of every goal (module docstring), vectorised."""
    actual = out["actual"].to_numpy(float)
    target = out["target"].to_numpy(float)
    prob = out["probability"].to_numpy(float)
    expected = out["expected"].to_numpy(float)
    additive = out["_additive"].to_numpy(bool)
    running = out["_running"].to_numpy(bool)
    at_least = (out["direction"] == Direction.AT_LEAST).to_numpy()
    started = (out["_start"] <= asof).to_numpy()
    has = np.isfinite(actual)
    meets = np.where(at_least, actual >= target, actual <= target)
    with np.errstate(invalid="ignore", divide="ignore"):
        pace_add = np.where(at_least, actual / expected, expected / np.maximum(actual, 1e-12))
        pace_add = np.where(np.isfinite(expected) & (expected > 0), pace_add, np.inf)
        pace_ratio = np.where(at_least, actual / target, target / actual)
        pace_ratio = np.where((target == 0) | (actual == 0), np.where(meets, 1.0, 0.0), pace_ratio)
    pace = np.where(additive, pace_add, pace_ratio)
    by_pace = np.where(
        pace >= ON_TRACK_PACE,
        GoalStatus.ON_TRACK.value,
        np.where(pace >= AT_RISK_PACE, GoalStatus.AT_RISK.value, GoalStatus.OFF_TRACK.value),
    )
    by_prob = np.array([status_for_probability(x).value for x in prob], dtype=object)
    status = np.select(
        [
            ~started,
            ~has,
            ~running & meets,
            ~running,
            additive & at_least & meets,
            additive & ~at_least & ~meets,
            np.isfinite(prob),
        ],
        [
            GoalStatus.NOT_STARTED.value,
            GoalStatus.NO_DATA.value,
            GoalStatus.ACHIEVED.value,
            GoalStatus.MISSED.value,
            GoalStatus.ACHIEVED.value,
            GoalStatus.OFF_TRACK.value,
            by_prob,
        ],
        default=by_pace,
    )
    return pd.Series(pd.array(status, dtype="str"), index=out.index)


# ------------------------------------------------------------------ lint
def _lint(out: pd.DataFrame, asof: pd.Timestamp) -> pd.Series:
    """SMART lint flags from the goal and its forecast interval, vectorised."""
    agreed = out["agreed_by"].astype(object)
    not_accepted = (
        agreed.isna().to_numpy() | (agreed.fillna("").astype(str).str.strip() == "").to_numpy()
    )
    target = out["target"].to_numpy(float)
    # over, or on its last day: the result is known and nothing can change it
    over = (out["_end"] - DAY <= asof).to_numpy()
    lo, hi = out["lo_95"].to_numpy(float), out["hi_95"].to_numpy(float)
    at_least = (out["direction"] == Direction.AT_LEAST).to_numpy()
    with np.errstate(invalid="ignore"):
        above, below = target > hi, target < lo
    unrealistic = np.where(at_least, above, below)
    unambitious = np.where(at_least, below, above)
    flags = [
        ("not_accepted", not_accepted),
        ("period_over", over),
        ("unrealistic", unrealistic),
        ("unambitious", unambitious),
    ]
    text = np.full(len(out), "", dtype=object)
    for name, mask in flags:
        text = np.where(mask, np.where(text == "", name, text + "," + name), text)
    return pd.Series(text, index=out.index, dtype="str")


def _add_flag(out: pd.DataFrame, mask: np.ndarray, flag: str) -> None:
    """Append ``flag`` to the lint of the rows in ``mask``."""
    text = out["lint"].astype(object).fillna("").to_numpy()
    text = np.where(mask, np.where(text == "", flag, text + "," + flag), text)
    out["lint"] = pd.array(text, dtype="str")


def _lint_inactive(data: CrmData, out: pd.DataFrame) -> None:
    """Flag seller goals whose seller is not active on any day of the goal's period.

    ``sellers.active_from``/``active_to`` (both days included) that do not
    overlap ``[start, end)`` give ``inactive_owner``: the goal belongs to
    someone who left (or has not started), so nobody works on it.
    """
    sellers = data.sellers
    if "active_from" not in sellers or not (out["scope"] == Scope.SELLER).any():
        return
    idx = sellers.drop_duplicates("seller_id").set_index("seller_id")
    sid = out["scope_id"].astype(object).where(out["scope"] == Scope.SELLER)
    frm = pd.to_datetime(idx["active_from"].reindex(sid).to_numpy())
    to = (
        pd.to_datetime(idx["active_to"].reindex(sid).to_numpy())
        if "active_to" in idx
        else pd.DatetimeIndex([pd.NaT] * len(out))
    )
    start = pd.DatetimeIndex(out["_start"])
    end = pd.DatetimeIndex(out["_end"])
    later = np.asarray(frm.notna() & (frm.normalize() >= end))
    gone = np.asarray(to.notna() & (to.normalize() < start))
    _add_flag(out, (sid.notna().to_numpy()) & (later | gone), "inactive_owner")


def _lint_history(
    data: CrmData, out: pd.DataFrame, periods: dict[str, Period], asof: pd.Timestamp
) -> None:
    """Flag not-yet-started goals whose target is far outside recent history.

    One batched :func:`_values` call per scope covers the 12 previous
    comparable periods of every such goal; the comparison is vectorised.
    """
    todo = out.index[out["status"] == GoalStatus.NOT_STARTED]
    if len(todo) == 0:
        return
    hist_of: dict[str, list[Period]] = {}
    for label in pd.unique(out.loc[todo, "period"]):
        p = periods[label]
        hist_of[label] = [q for q in (p.shift(-k) for k in range(1, 13)) if q.end <= asof + DAY]
    lint = out["lint"].astype(object).to_numpy().copy()
    for scope, sub in out.loc[todo].groupby("scope", sort=False):
        plist = sorted({q for lab in pd.unique(sub["period"]) for q in hist_of[lab]})
        if not plist:
            continue
        ids = list(pd.unique(sub["scope_id"].dropna()))
        try:
            lookup = _values(data, scope, list(pd.unique(sub["kpi"])), plist, ids, asof)
        except Exception as exc:  # history unavailable: no lint
            log.debug("no history lint for %s goals: %s", scope, exc)
            continue
        goal, keys = [], []
        for i, kpi, sid, label in zip(
            sub.index,
            sub["kpi"],
            sub["scope_id"].astype(object).fillna(""),
            sub["period"],
            strict=True,
        ):
            for q in hist_of[label]:
                goal.append(i)
                keys.append((kpi, sid, q.label))
        if not keys:
            continue
        vals = pd.Series(
            lookup.reindex(pd.MultiIndex.from_tuples(keys)).to_numpy(float), index=goal
        )
        stats = vals.groupby(level=0).agg(["max", "min"]).reindex(sub.index)
        hi, lo = stats["max"].to_numpy(float), stats["min"].to_numpy(float)
        target = sub["target"].to_numpy(float)
        at_least = (sub["direction"] == Direction.AT_LEAST).to_numpy()
        with np.errstate(invalid="ignore"):
            high = (target > 2 * hi) & (hi > 0)
            low = ~high & (target < 0.5 * lo)
        for j, i in enumerate(sub.index):
            flag = None
            if high[j]:
                flag = "unrealistic" if at_least[j] else "unambitious"
            elif low[j]:
                flag = "unambitious" if at_least[j] else "unrealistic"
            if flag and flag not in str(lint[i]).split(","):
                lint[i] = f"{lint[i]},{flag}" if lint[i] else flag
    out["lint"] = pd.array(lint, dtype="str")
