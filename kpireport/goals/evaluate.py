"""Goal follow-up at an ``as_of`` date (SPEC §5).

For every goal: actual to date, the pace expected by now, the gap to pace, the
run rate still needed, the forecast at period end with its 80 % interval, the
probability of reaching the target, a status and the SMART lint.

Design decisions
----------------
* **Actual** is ``compute_kpis`` for the goal's period cut at ``as_of``
  ("to date"), batched: one call per scope for all the goals' KPIs and
  periods at once.
* **Pace** (additive KPIs only — ratios cannot be paced):
  linear = target × elapsed share; seasonal = target × the share of last
  year's same-period total reached by the same elapsed share, when last year
  has a positive total. ``expected`` is the seasonal pace where there is one,
  else the linear pace.
* **Forecast** of an additive KPI: actual to date + simulated rest of the
  period (:func:`kpireport.forecast.period_total_distribution`, daily paths
  summed, never interval bounds added). A non-additive KPI's period value is
  ``share × value to date + (1 − share) × forecast`` of the next period from
  its monthly series, with a normal band from the forecast interval.
* **Probability** of reaching the target (of staying at or under it for
  ``at_most``) is the share of simulated totals that do.
* **Status** of a running goal from the probability: ``on_track`` ≥ 0.65 >
  ``at_risk`` ≥ 0.35 > ``off_track``; from the pace ratio (actual ÷ expected:
  ≥ 0.95, ≥ 0.80) when no forecast is made. An additive ``at_least`` goal
  whose actual already meets the target is ``achieved``; an ``at_most`` one
  already over it is ``off_track``. After the period: ``achieved`` or
  ``missed``; before it: ``not_started``.
* **Pipeline view** for ``won_value`` and ``deals_won`` goals: open deals
  expected to close in the rest of the period, weighted by probability (and
  simulated deal by deal), added to the actual to date.
* **Lint**: ``not_accepted`` (no ``agreed_by``), ``ratio_target`` (a ratio
  KPI with a target above 1, e.g. 40 instead of 0.40), ``period_over``,
  ``unrealistic`` / ``unambitious`` (target beyond the 95 % interval of the
  forecast; for goals not yet started, beyond twice / under half of the
  range of the last 12 comparable periods).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd

from kpireport.constants import Direction, GoalStatus, Scope, Table, Unit
from kpireport.data.model import CrmData
from kpireport.goals.definitions import load_goals
from kpireport.periods import Period, _day, parse_period

log = logging.getLogger("kpireport")

DateLike = dt.date | pd.Timestamp | str

ON_TRACK_PROBABILITY = 0.65
AT_RISK_PROBABILITY = 0.35
ON_TRACK_PACE = 0.95
AT_RISK_PACE = 0.80
#: KPIs counted per working day (Mon–Fri) in the required run rate
WORKDAY_KPIS = frozenset({"meetings_booked", "quotes_sent", "calls_made", "deals_won", "new_leads", "sql"})
#: KPIs with a pipeline view
PIPELINE_KPIS = frozenset({"won_value", "deals_won"})

RESULT_COLUMNS = (
    "goal_id", "kpi", "label", "unit", "scope", "scope_id", "period", "target", "direction",
    "owner", "agreed_by", "elapsed", "actual", "expected_linear", "expected_seasonal", "expected",
    "gap_to_pace", "remaining_days", "remaining_working_days", "required_per_day",
    "required_per_working_day", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "probability",
    "pipeline_expected", "pipeline_probability", "status", "lint", "model",
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
        The day of the follow-up (inclusive). Required.
    forecast
        Forecast running goals (slower); without it the status comes from pace.
    scope, scope_ids
        Keep only goals of this scope (and these ids).
    current_only
        Keep only goals whose period contains ``as_of``.
    n_paths, seed
        Simulation size and seed (same seed, same probabilities).

    Returns
    -------
    pandas.DataFrame
        One row per goal with the columns :data:`RESULT_COLUMNS`.
    """
    from kpireport.kpis import compute_kpis
    from kpireport.kpis.registry import REGISTRY

    if as_of is None:
        from kpireport.errors import GoalError

        raise GoalError("evaluate_goals needs an as_of date.", hint="Pass as_of='YYYY-MM-DD'.")
    asof = _day(as_of)
    g = load_goals(data, goals)
    if scope is not None:
        g = g[g["scope"] == str(Scope(scope))]
    if scope_ids is not None:
        g = g[g["scope_id"].isin([str(s) for s in scope_ids]) | (g["scope"] == Scope.ORGANISATION)]
    periods = {p: parse_period(p) for p in g["period"].unique()}
    if current_only:
        g = g[[periods[p].start <= asof < periods[p].end for p in g["period"]]]
    if g.empty:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))

    actual = _actuals(data, g, periods, asof, compute_kpis)
    rows = []
    for _, goal in g.iterrows():
        kdef = REGISTRY[goal["kpi"]]
        p = periods[goal["period"]]
        key = (goal["kpi"], goal["scope"], goal["scope_id"] if goal["scope"] != Scope.ORGANISATION else None, p.label)
        row = _evaluate_one(data, goal, kdef, p, asof, actual.get(key, np.nan), forecast, n_paths, seed)
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    _lint_history(data, out, periods, asof, compute_kpis)
    out.attrs["as_of"] = str(asof.date())
    return out.reset_index(drop=True)


# ------------------------------------------------------------------ actuals
def _actuals(data: CrmData, g: pd.DataFrame, periods: dict[str, Period], asof: pd.Timestamp, compute) -> dict:
    out: dict[tuple, float] = {}
    for scope, sub in g.groupby("scope"):
        plist = [periods[p] for p in sub["period"].unique()]
        kpis = list(sub["kpi"].unique())
        df = compute(data, plist, by=scope, kpis=kpis, as_of=asof)
        for r in df.itertuples(index=False):
            sid = None if scope == Scope.ORGANISATION else r.scope_id
            out[(r.kpi, scope, sid, r.period)] = r.value
    return out


# ------------------------------------------------------------------ one goal
def _evaluate_one(data, goal, kdef, p: Period, asof, actual, do_forecast, n_paths, seed) -> dict:
    target = float(goal["target"])
    direction = goal["direction"]
    at_least = direction == Direction.AT_LEAST
    share = p.elapsed_share(asof)
    first_rest = max(p.start, asof + pd.Timedelta(days=1))
    remaining = max(0, int((p.end - first_rest) / pd.Timedelta(days=1)))
    workdays = int(np.busday_count(first_rest.date(), p.end.date())) if remaining else 0
    sid = None if goal["scope"] == Scope.ORGANISATION else goal["scope_id"]
    row: dict[str, Any] = {c: np.nan for c in RESULT_COLUMNS}
    row.update(
        goal_id=goal["goal_id"], kpi=kdef.name, label=kdef.label, unit=str(kdef.unit), scope=goal["scope"],
        scope_id=sid, period=p.label, target=target, direction=direction, owner=goal["owner"],
        agreed_by=goal["agreed_by"], elapsed=share, actual=actual, remaining_days=remaining,
        remaining_working_days=workdays, model=None,
    )  # fmt: skip
    running = p.start <= asof < p.end - pd.Timedelta(days=1) and share < 1
    if kdef.additive:
        row["expected_linear"] = target * share
        seasonal = _seasonal_share(data, kdef.name, goal["scope"], sid, p, share) if running else np.nan
        row["expected_seasonal"] = target * seasonal if np.isfinite(seasonal) else np.nan
        row["expected"] = row["expected_seasonal"] if np.isfinite(row["expected_seasonal"]) else row["expected_linear"]
        if np.isfinite(actual):
            row["gap_to_pace"] = actual - row["expected"]
            if remaining:
                need = max(target - actual, 0.0) if at_least else target - actual
                row["required_per_day"] = need / remaining
                if kdef.name in WORKDAY_KPIS and workdays:
                    row["required_per_working_day"] = need / workdays
    else:
        row["expected"] = target if running else np.nan

    if running and do_forecast:
        try:
            if kdef.additive:
                _forecast_additive(data, row, kdef.name, goal["scope"], sid, p, asof, n_paths, seed)
            else:
                _forecast_ratio(data, row, kdef.name, goal["scope"], sid, p, asof, share)
        except Exception as exc:  # a forecast must never sink the goal table
            log.warning("forecast for goal %s failed: %s", goal["goal_id"], exc)
            row["model"] = f"none ({type(exc).__name__}: {exc})"
        if kdef.name in PIPELINE_KPIS and np.isfinite(actual):
            _pipeline_view(data, row, kdef.name, goal["scope"], sid, p, asof, n_paths, seed)

    row["status"] = str(_status(row, kdef.additive, at_least, running, p, asof))
    row["lint"] = _lint(row, kdef, goal, p, asof)
    return row


def _status(row, additive: bool, at_least: bool, running: bool, p: Period, asof) -> GoalStatus:
    actual, target = row["actual"], row["target"]
    if asof < p.start:
        return GoalStatus.NOT_STARTED
    if not np.isfinite(actual):
        return GoalStatus.NO_DATA
    meets = actual >= target if at_least else actual <= target
    if not running:
        return GoalStatus.ACHIEVED if meets else GoalStatus.MISSED
    if additive and at_least and meets:
        return GoalStatus.ACHIEVED
    if additive and not at_least and not meets:
        return GoalStatus.OFF_TRACK
    prob = row["probability"]
    if np.isfinite(prob):
        if prob >= ON_TRACK_PROBABILITY:
            return GoalStatus.ON_TRACK
        return GoalStatus.AT_RISK if prob >= AT_RISK_PROBABILITY else GoalStatus.OFF_TRACK
    expected = row["expected"]
    if additive:
        if not np.isfinite(expected) or expected <= 0:
            return GoalStatus.ON_TRACK
        ratio = actual / expected if at_least else expected / max(actual, 1e-12)
    else:
        if target == 0 or actual == 0:
            ratio = 1.0 if meets else 0.0
        else:
            ratio = actual / target if at_least else target / actual
    if ratio >= ON_TRACK_PACE:
        return GoalStatus.ON_TRACK
    return GoalStatus.AT_RISK if ratio >= AT_RISK_PACE else GoalStatus.OFF_TRACK


def _lint(row, kdef, goal, p: Period, asof) -> str:
    flags = []
    if pd.isna(goal["agreed_by"]) or not str(goal["agreed_by"]).strip():
        flags.append("not_accepted")
    if kdef.unit in (Unit.PERCENT, Unit.RATIO) and row["target"] > 1:
        flags.append("ratio_target")
    if asof >= p.end - pd.Timedelta(days=1):
        flags.append("period_over")
    lo, hi = row["lo_95"], row["hi_95"]
    if np.isfinite(lo) and np.isfinite(hi):
        at_least = row["direction"] == Direction.AT_LEAST
        if row["target"] > hi:
            flags.append("unrealistic" if at_least else "unambitious")
        elif row["target"] < lo:
            flags.append("unambitious" if at_least else "unrealistic")
    return ",".join(flags)


# ------------------------------------------------------------- pace helpers
def _daily(data, kpi, scope, sid, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    from kpireport.kpis import kpi_series

    return kpi_series(data, kpi, scope=scope, scope_id=sid, grain="day", start=start, end=end, as_of=end)


def _seasonal_share(data, kpi, scope, sid, p: Period, share: float) -> float:
    """Share of last year's same-period total reached at the same elapsed share."""
    ly = p.last_year()
    try:
        s = _daily(data, kpi, scope, sid, ly.start, ly.last_day)
    except Exception as exc:  # no history for this scope
        log.debug("no seasonal pace for %s/%s: %s", kpi, sid, exc)
        return np.nan
    total = float(s.sum())
    if not np.isfinite(total) or total <= 0 or len(s) == 0:
        return np.nan
    days = int(round(share * len(s)))
    return float(s.iloc[:days].sum()) / total


# --------------------------------------------------------------- forecasts
def _forecast_additive(data, row, kpi, scope, sid, p: Period, asof, n_paths, seed) -> None:
    from kpireport.forecast import attainment_summary, period_total_distribution

    start = min(p.start, asof - pd.Timedelta(days=730))
    daily = _daily(data, kpi, scope, sid, start, asof)
    totals = period_total_distribution(daily, p.start, p.end, asof, n_paths=n_paths, seed=seed)
    summ = attainment_summary(totals, row["target"], row["direction"])
    row.update(
        forecast=summ["mean"], lo_80=summ["lo_80"], hi_80=summ["hi_80"], lo_95=summ["lo_95"],
        hi_95=summ["hi_95"], probability=summ["probability"], model="daily simulation",
    )  # fmt: skip


def _forecast_ratio(data, row, kpi, scope, sid, p: Period, asof, share) -> None:
    from scipy.stats import norm

    from kpireport.forecast import forecast
    from kpireport.kpis import kpi_series

    grain = p.grain if p.grain in ("month", "quarter") else "month"
    hist_end = p.start - pd.Timedelta(days=1)
    y = kpi_series(data, kpi, scope=scope, scope_id=sid, grain=grain, end=hist_end, as_of=hist_end)
    y = y.dropna()
    if len(y) < 3:
        return
    y = y.asfreq(pd.infer_freq(y.index) or ("MS" if grain == "month" else "QS"))
    fc = forecast(y.interpolate().bfill(), 1)
    mean_next = float(fc["mean"].iloc[0])
    sd_next = float(fc["hi_80"].iloc[0] - fc["lo_80"].iloc[0]) / (2 * 1.2816)
    actual = row["actual"]
    base = actual if np.isfinite(actual) else mean_next
    mean = share * base + (1 - share) * mean_next
    sd = max((1 - share) * sd_next, 1e-9)
    z80, z95 = 1.2816, 1.96
    row.update(
        forecast=mean, lo_80=mean - z80 * sd, hi_80=mean + z80 * sd, lo_95=mean - z95 * sd,
        hi_95=mean + z95 * sd, model=f"ratio: {fc.attrs.get('model', 'forecast')}",
    )  # fmt: skip
    cdf = float(norm.cdf((row["target"] - mean) / sd))
    row["probability"] = 1 - cdf if row["direction"] == Direction.AT_LEAST else cdf


def open_deals_at(data: CrmData, asof: pd.Timestamp, scope, sid) -> pd.DataFrame:
    """Deals open at the end of ``asof`` within the scope."""
    d = data[Table.DEALS]
    end = asof + pd.Timedelta(days=1)
    mask = (d["created_at"] < end) & ((d["status"] == "open") | (d["closed_at"] >= end))
    d = d[mask]
    if scope == Scope.SELLER:
        d = d[d["seller_id"] == sid]
    elif scope == Scope.TEAM:
        sellers = data.sellers.loc[data.sellers["team"] == sid, "seller_id"]
        d = d[d["seller_id"].isin(sellers)]
    elif scope == Scope.CUSTOMER:
        d = d[d["company_id"] == sid]
    d = d.copy()
    d["status"] = "open"
    return d


def _pipeline_view(data, row, kpi, scope, sid, p: Period, asof, n_paths, seed) -> None:
    from kpireport.forecast import deal_monte_carlo
    from kpireport.forecast.attainment import stage_win_rates

    rest = Period(max(p.start, asof + pd.Timedelta(days=1)), p.end, p.grain, p.label, True)
    deals = open_deals_at(data, asof, scope, sid)
    if kpi == "deals_won":
        deals = deals.assign(value=1.0)
    prob = pd.to_numeric(deals["probability"], errors="coerce")
    in_rest = (deals["expected_close_at"] >= rest.start) & (deals["expected_close_at"] < rest.end)
    weighted = float((deals.loc[in_rest, "value"] * prob[in_rest].fillna(0)).sum())
    row["pipeline_expected"] = row["actual"] + weighted
    rates = stage_win_rates(data[Table.DEALS])
    sims = deal_monte_carlo(deals, rest, n_paths=n_paths, seed=seed, stage_win_rates=rates)
    totals = row["actual"] + sims
    if row["direction"] == Direction.AT_LEAST:
        row["pipeline_probability"] = float(np.mean(totals >= row["target"]))
    else:
        row["pipeline_probability"] = float(np.mean(totals <= row["target"]))


def _lint_history(data, out: pd.DataFrame, periods: dict[str, Period], asof, compute) -> None:
    """Flag not-yet-started goals whose target is far outside recent history."""
    todo = out[(out["status"] == GoalStatus.NOT_STARTED)]
    for idx, row in todo.iterrows():
        p = periods[row["period"]]
        hist = [p.shift(-k) for k in range(1, 13) if p.shift(-k).end <= asof + pd.Timedelta(days=1)]
        if not hist:
            continue
        try:
            df = compute(data, hist, by=row["scope"], kpis=[row["kpi"]], as_of=asof)
        except Exception:  # history unavailable: no lint
            continue
        if row["scope"] != Scope.ORGANISATION:
            df = df[df["scope_id"] == row["scope_id"]]
        vals = df["value"].dropna()
        if vals.empty:
            continue
        hi, lo = vals.max(), vals.min()
        at_least = row["direction"] == Direction.AT_LEAST
        flags = [f for f in str(row["lint"]).split(",") if f]
        if row["target"] > 2 * hi and hi > 0:
            flags.append("unrealistic" if at_least else "unambitious")
        elif row["target"] < 0.5 * lo:
            flags.append("unambitious" if at_least else "unrealistic")
        out.at[idx, "lint"] = ",".join(flags)
