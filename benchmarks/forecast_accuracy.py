"""Forecast accuracy benchmark: kpireport's forecaster vs textbook references.

Run: ``nice -n 10 .venv/bin/python benchmarks/forecast_accuracy.py [--dev PATH] [--quick]
[--parts dev,speed,public,demo,attainment,goals]``

(d) **the dev set of issue 12** (a folder of monthly series: ``INDEX.csv`` and
    ``<name>.csv`` with ``month,value``; outside the repository: ``--dev``,
    else ``$KPIREPORT_FORECAST_DEV``, else ``../shared/forecast-dev`` relative
    to the repository root (or to its parent, for a git worktree); skipped with a note when absent). Protocol: h = 12,
    8 origins 3 months apart (origin k trains on the months before
    ``n - 12 - 3k``), in two history settings: *full* (every earlier month)
    and *short* (the last 48 months). MASE = mean absolute error over the 12
    months / in-sample seasonal-naive (lag 12) MAE of the training window;
    averaged over series and origins; coverage of the 80 % / 95 % intervals.
    Fitted side by side in the same run: ``kpireport.forecast`` (default
    combination), seasonal naive and damped Holt-Winters (statsmodels
    ``ExponentialSmoothing``, multiplicative seasonality for positive
    series). statsforecast (AutoETS, AutoTheta, AutoARIMA and their mean) needs
    pandas < 3 and is not installed here: its figures are read from the dev
    set's ``references/statsforecast_<setting>.csv`` (made by the dev set's
    own script) and printed alongside.
(s) speed: CPU and wall seconds per 48-point monthly series for the whole
    default forecaster (fit + predict, one core, statsmodels single-threaded).
(a) public monthly series bundled with statsmodels (no download): ``co2``
    (weekly, resampled to monthly means) and ``elnino`` (a 12-column yearly
    table flattened to one monthly series);
(b) the demo KPIs, monthly, for the organisation and every team (additive
    KPIs), via ``kpireport.demo.demo_data`` + ``kpireport.kpis.kpi_series``;
(c) goal attainment on the demo's daily KPIs: Brier score of the ``profile``
    method vs the run-rate baseline at 25/50/75 % elapsed, for the
    organisation (7 additive KPIs), every team and every seller (won value,
    deals won, meetings);
(g) the demo's current goals evaluated with forecasts (seconds).

Peak RSS of the process is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpireport.forecasting import backtest, backtest_attainment, clear_cache

ADDITIVE_DEMO_KPIS = (
    "new_leads",
    "sql",
    "deals_won",
    "won_value",
    "revenue",
    "meetings_booked",
    "quotes_sent",
)


H, ORIGINS, STEP, M = 12, 8, 3, 12
#: the statsforecast reference figures quoted in issue 12 (used when the dev
#: set's reference CSVs are missing): MASE per setting.
QUOTED = {
    "full": {"AutoETS": 0.966, "ets_theta_arima": 0.934, "cov80_AutoETS": 0.77, "cov80_ens": 0.80},
    "short": {"AutoETS": 0.907, "ets_theta_arima": 0.897, "cov80_AutoETS": 0.73, "cov80_ens": 0.78},
}


def dev_folder(arg: str | None) -> Path:
    """The dev set: ``--dev``, ``$KPIREPORT_FORECAST_DEV`` or ``../shared/forecast-dev``."""
    if arg:
        return Path(arg)
    env = os.environ.get("KPIREPORT_FORECAST_DEV")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[1]
    # a checkout at <dir>/kpireport, or a git worktree at <dir>/wt/<branch>
    for cand in (
        root / ".." / "shared" / "forecast-dev",
        root / ".." / ".." / "shared" / "forecast-dev",
    ):
        if (cand / "INDEX.csv").exists():
            return cand
    return root / ".." / "shared" / "forecast-dev"


def load_dev(folder: Path, limit: int | None = None) -> dict[str, pd.Series]:
    idx = pd.read_csv(folder / "INDEX.csv")
    out = {}
    for name in idx["name"][:limit]:
        y = pd.read_csv(folder / f"{name}.csv", index_col=0, parse_dates=True).iloc[:, 0]
        y.index = pd.DatetimeIndex(y.index, freq="MS")
        out[str(name)] = y.astype(float)
    return out


def damped_hw(train: np.ndarray, h: int) -> np.ndarray:
    """The reference script's damped Holt-Winters (statsmodels ExponentialSmoothing)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "mul" if (train > 0).all() else "add"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(
            train, trend="add", damped_trend=True, seasonal=seasonal, seasonal_periods=M
        ).fit()
    return np.asarray(fit.forecast(h), float)


def dev_protocol(series: dict[str, pd.Series], setting: str) -> tuple[pd.DataFrame, float]:
    """Issue 12's protocol on every series: per (series, origin) MASE and coverage."""
    from kpireport.forecasting import forecast

    rows = []
    spent = 0.0
    for name, y in series.items():
        n = len(y)
        for k in range(ORIGINS):
            cut = n - H - k * STEP
            train = y.iloc[:cut] if setting == "full" else y.iloc[max(0, cut - 48) : cut]
            test = y.iloc[cut : cut + H].to_numpy()
            tv = train.to_numpy()
            scale = float(np.mean(np.abs(tv[M:] - tv[:-M])))
            clear_cache()
            t0 = time.perf_counter()
            f = forecast(train, H)
            spent += time.perf_counter() - t0
            row = {"series": name, "origin": cut, "model": f.attrs["model"]}
            row["kpireport"] = float(np.mean(np.abs(test - f["mean"].to_numpy())) / scale)
            for lv in (80, 95):
                lo, hi = f[f"lo_{lv}"].to_numpy(), f[f"hi_{lv}"].to_numpy()
                row[f"cov{lv}"] = float(np.mean((test >= lo) & (test <= hi)))
            row["snaive"] = float(np.mean(np.abs(test - np.tile(tv[-M:], 2)[:H])) / scale)
            row["damped_hw"] = float(np.mean(np.abs(test - damped_hw(tv, H))) / scale)
            rows.append(row)
    return pd.DataFrame(rows), spent / max(1, len(rows))


def dev_table(folder: Path, rows: dict[str, pd.DataFrame], secs: dict[str, float]) -> pd.DataFrame:
    out = []
    for setting, r in rows.items():
        ref_path = folder / "references" / f"statsforecast_{setting}.csv"
        ref = QUOTED[setting].copy()
        if ref_path.exists():
            ref_df = pd.read_csv(ref_path)
            keys = set(zip(ref_df["series"], ref_df["origin"], strict=True))
            if keys == set(zip(r["series"], r["origin"], strict=True)):
                ref = ref_df[list(ref)].mean().to_dict()
        out.append(
            {
                "setting": setting,
                "forecasts": len(r),
                "kpireport MASE": r["kpireport"].mean(),
                "kpireport cov80": r["cov80"].mean(),
                "kpireport cov95": r["cov95"].mean(),
                "seasonal naive": r["snaive"].mean(),
                "damped HW": r["damped_hw"].mean(),
                "sf AutoETS (ref)": ref["AutoETS"],
                "sf mean ETS/Theta/ARIMA (ref)": ref["ets_theta_arima"],
                "sf mean cov80 (ref)": ref["cov80_ens"],
                "s per forecast": secs[setting],
            }
        )
    return pd.DataFrame(out).set_index("setting")


def speed_48(series: dict[str, pd.Series], reps: int = 1) -> tuple[float, float, float]:
    """Median wall seconds, median and max CPU seconds of the whole default
    forecaster on the last 48-point window before the final year of each series."""
    from kpireport.forecasting import forecast

    wall, cpu = [], []
    forecast(next(iter(series.values())).iloc[-60:-12], 12)  # imports and first-call costs
    for y in series.values():
        for _ in range(reps):
            w = y.iloc[-60:-12]
            clear_cache()
            t0, c0 = time.perf_counter(), time.process_time()
            forecast(w, 12)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return float(np.median(wall)), float(np.median(cpu)), float(np.max(cpu))


def public_series() -> dict[str, pd.Series]:
    """Monthly series that ship inside statsmodels."""
    import statsmodels.datasets as ds

    out: dict[str, pd.Series] = {}
    co2 = ds.co2.load_pandas().data["co2"]
    out["co2 (monthly mean)"] = co2.resample("MS").mean().interpolate().loc["1960":"1990"]
    el = ds.elnino.load_pandas().data
    months = el.columns[1:]
    vals = el[months].to_numpy().ravel()
    idx = pd.date_range(f"{int(el['YEAR'].iloc[0])}-01-01", periods=len(vals), freq="MS")
    out["elnino (SST)"] = pd.Series(vals, idx).dropna()
    return out


def demo_series(quick: bool) -> tuple[dict[str, pd.Series], dict[str, pd.Series], str]:
    """Monthly demo KPI series (organisation + teams) and daily organisation series."""
    try:
        from kpireport.demo import demo_data
        from kpireport.kpis import kpi_series
    except ImportError as exc:  # other stages not written yet
        return {}, {}, f"demo skipped: {exc}"
    data = demo_data()
    teams = sorted(data.tables["sellers"]["team"].dropna().unique())
    monthly: dict[str, pd.Series] = {}
    daily: dict[str, pd.Series] = {}
    kpis = ADDITIVE_DEMO_KPIS[:3] if quick else ADDITIVE_DEMO_KPIS
    for k in kpis:
        s = kpi_series(data, k, grain="month")
        monthly[f"{k} / org"] = s.iloc[:-1]  # drop the incomplete last month
        daily[k] = kpi_series(data, k, grain="day")
        for t in teams:
            monthly[f"{k} / {t}"] = kpi_series(
                data, k, scope="team", scope_id=t, grain="month"
            ).iloc[:-1]
    return monthly, daily, ""


def score(series: dict[str, pd.Series], horizon: int) -> tuple[pd.DataFrame, float]:
    """Backtest every series; returns per-series rows and seconds per series."""
    rows = []
    t0 = time.perf_counter()
    for name, y in series.items():
        clear_cache()
        bt = backtest(y, horizon, origins=6, models=["auto", "snaive"], detail=True)
        if bt.empty:
            continue
        for model, g in bt.groupby("model"):
            err = (g["actual"] - g["mean"]).abs() / g["scale"]
            rows.append(
                {
                    "series": name,
                    "model": model,
                    "mase": float(err.groupby(g["origin"]).mean().mean()),
                    "in80": int(((g["actual"] >= g["lo_80"]) & (g["actual"] <= g["hi_80"])).sum()),
                    "in95": int(((g["actual"] >= g["lo_95"]) & (g["actual"] <= g["hi_95"])).sum()),
                    "n": len(g),
                }
            )
    per = (time.perf_counter() - t0) / max(1, len(series))
    return pd.DataFrame(rows), per


def pooled_demo(monthly: dict[str, pd.Series], horizon: int = 6, origins: int = 6) -> pd.DataFrame:
    """Demo coverage with the conformal scores pooled across series (issue 12 item 3).

    The demo's series all end in the same month, so origin ``i`` (training
    on all but the last ``horizon + 3 i`` months, as in :func:`score`'s
    backtests) is the same calendar month for every series. At each origin
    every series is fitted once; its intervals come from its own scores
    (``none``), or from the scores pooled over the series of its scope
    (``scope``: the organisation's or one team's KPIs), of its KPI (``kpi``:
    the organisation and every team) or over all of them (``all``), via
    ``forecast_many(..., pool=True)``.
    """
    from kpireport.forecasting import forecast_many
    from kpireport.forecasting.backtest import _scale

    groups = {
        "none": {k: [k] for k in monthly},
        "scope": {},
        "kpi": {},
        "all": {"all": list(monthly)},
    }
    for k in monthly:
        kpi, scope = k.split(" / ")
        groups["scope"].setdefault(scope, []).append(k)
        groups["kpi"].setdefault(kpi, []).append(k)
    clear_cache()
    rows = []
    for i in range(origins):
        trains = {k: y.iloc[: len(y) - horizon - 3 * i] for k, y in monthly.items()}
        for how, grp in groups.items():
            for members in grp.values():
                out = forecast_many({k: trains[k] for k in members}, horizon, jobs=1, pool=True)
                for k, f in out.items():
                    y = monthly[k]
                    test = y.iloc[len(trains[k]) : len(trains[k]) + horizon].to_numpy(float)
                    scale = _scale(trains[k].to_numpy(float), 12)
                    row = {"pool": how, "series": k, "origin": i}
                    row["mase"] = float(np.mean(np.abs(test - f["mean"].to_numpy())) / scale)
                    for lv in (80, 95):
                        lo, hi = f[f"lo_{lv}"].to_numpy(), f[f"hi_{lv}"].to_numpy()
                        row[f"cov{lv}"] = float(np.mean((test >= lo) & (test <= hi)))
                    row["calibrated"] = "conformal" in f.attrs["model"]
                    rows.append(row)
    res = pd.DataFrame(rows)
    return res.groupby("pool", sort=False)[["mase", "cov80", "cov95", "calibrated"]].mean()


def table(rows: pd.DataFrame, label: str, per: float) -> pd.DataFrame:
    g = rows.groupby("model")
    out = pd.DataFrame(
        {
            "series": g["series"].nunique(),
            "mean MASE": g["mase"].mean(),
            "median MASE": g["mase"].median(),
            "coverage 80": g["in80"].sum() / g["n"].sum(),
            "coverage 95": g["in95"].sum() / g["n"].sum(),
        }
    )
    out.index = [f"{label}: {m}" for m in out.index]
    out["s/series (2 models x 6 origins)"] = per
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer demo KPIs and periods")
    ap.add_argument("--dev", help="the dev set folder (INDEX.csv + <name>.csv)")
    ap.add_argument("--series", type=int, help="only the first N dev series")
    ap.add_argument(
        "--parts",
        default="dev,speed,public,demo,demo_pool,attainment,goals",
        help="comma-separated: dev, speed, public, demo, demo_pool, attainment, goals",
    )
    ap.add_argument("--settings", default="full,short", help="dev history settings")
    ap.add_argument(
        "--attainment-only", action="store_true", help="only part (c), the attainment Brier table"
    )
    args = ap.parse_args(argv)
    parts = {"attainment"} if args.attainment_only else set(args.parts.split(","))
    pd.set_option("display.width", 200)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    folder = dev_folder(args.dev)
    dev = {}
    if parts & {"dev", "speed"}:
        if (folder / "INDEX.csv").exists():
            dev = load_dev(folder, args.series)
        else:
            print(
                f"dev set skipped: no INDEX.csv in {folder} (give --dev or KPIREPORT_FORECAST_DEV)"
            )
    if dev and "dev" in parts:
        rows, secs = {}, {}
        for setting in args.settings.split(","):
            rows[setting], secs[setting] = dev_protocol(dev, setting)
        tab = dev_table(folder, rows, secs)
        print(f"\nDev set ({folder.resolve()}): h=12, 8 origins 3 months apart")
        print(tab.round(3).T.to_string())
        for setting, r in rows.items():
            per = r.groupby("series")[["kpireport", "snaive", "damped_hw", "cov80", "cov95"]]
            print(f"\nper series, {setting}:")
            print(per.mean().round(3).to_string())
            dropped = r["model"].str.contains("dropped").mean()
            print(f"forecasts with a dropped member: {dropped:.0%}")
            print("most frequent models:")
            print(r["model"].str.split("; intervals").str[0].value_counts().head(5).to_string())
    if dev and "speed" in parts:
        wall, cpu, mx = speed_48(dev)
        print(
            f"\nspeed, 48-point monthly series, whole default forecaster (one core): "
            f"median {cpu:.3f} s CPU (max {mx:.3f} s), median {wall:.3f} s wall"
        )
    frames = []
    if "public" in parts:
        pub = public_series()
        rows_a, per_a = score(pub, 12)
        frames.append(table(rows_a, "public", per_a))
        print("Per public series:")
        print(rows_a.pivot(index="series", columns="model", values="mase").round(3).to_string())
    monthly, daily, note = ({}, {}, "")
    if parts & {"demo", "demo_pool", "attainment", "goals"}:
        monthly, daily, note = demo_series(args.quick)
    if note:
        print(note)
    if monthly and "demo" in parts:
        rows_b, per_b = score(monthly, 6)
        frames.append(table(rows_b, "demo", per_b))
        piv = rows_b.pivot(index="series", columns="model", values="mase")
        better = (piv["auto"] <= 0.9 * piv["snaive"]).mean()
        print(f"demo: share of series with MASE >= 10% below seasonal naive: {better:.0%}")
        gain = 1 - piv["auto"].mean() / piv["snaive"].mean()
        print(f"demo: mean MASE {gain:.1%} below seasonal naive (target >= 25 %)")
    if monthly and "demo_pool" in parts:
        print("\nDemo, intervals from the scores pooled across series (h=6, 6 origins):")
        print(pooled_demo(monthly).round(3).to_string())
    if frames:
        print("\nRolling-origin accuracy (MASE relative to the in-sample seasonal naive error):")
        print(pd.concat(frames).round(3).to_string())
    if daily and "attainment" in parts:
        attainment_part(daily, args.quick)
    if "goals" in parts:
        goals_part()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\npeak RSS {rss:.0f} MB; load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


ATTAINMENT_SCOPE_KPIS = ("won_value", "deals_won", "meetings_booked")


def scope_daily(quick: bool) -> dict[str, dict[str, pd.Series]]:
    """Daily series of the attainment KPIs for every team and every seller."""
    from kpireport.demo import demo_data
    from kpireport.kpis import kpi_series

    data = demo_data()
    sellers = data.tables["sellers"]
    out: dict[str, dict[str, pd.Series]] = {"team": {}, "seller": {}}
    teams = sorted(sellers["team"].dropna().unique())
    ids = sorted(sellers["seller_id"].dropna().unique()) if "seller_id" in sellers else []
    if quick:
        teams, ids = teams[:2], ids[:3]
    for k in ATTAINMENT_SCOPE_KPIS:
        for t in teams:
            out["team"][f"{k} / {t}"] = kpi_series(data, k, scope="team", scope_id=t, grain="day")
        for sid in ids:
            out["seller"][f"{k} / {sid}"] = kpi_series(
                data, k, scope="seller", scope_id=sid, grain="day"
            )
    return out


def _briers(daily: dict[str, pd.Series], quick: bool) -> tuple[pd.DataFrame, Any]:
    briers, res = [], None
    for k, s in daily.items():
        s = s[s.index < s.index[-1].to_period("M").start_time]  # complete months only
        res = backtest_attainment(s, "month", n_paths=1000, max_periods=12 if quick else 30)
        b = res.brier["brier"].unstack("method")
        b.insert(0, "kpi", k)
        briers.append(b)
    return pd.concat(briers), res


def attainment_part(daily: dict[str, pd.Series], quick: bool) -> None:
    print(
        "\nGoal attainment, monthly goals on daily KPIs (targets: trailing 3-month mean x 0.8..1.2):"
    )
    t0 = time.perf_counter()
    allb, res = _briers(daily, quick)
    dt = time.perf_counter() - t0
    print(allb.round(4).to_string())
    levels = {"organisation": allb}
    for scope, series in scope_daily(quick).items():
        if series:
            levels[scope], _ = _briers(series, quick)
    rows = []
    for scope, b in levels.items():
        pooled = b.groupby(level="elapsed")[["profile", "run_rate"]].mean()
        pooled.insert(0, "scope", scope)
        pooled.insert(1, "series", b["kpi"].nunique())
        pooled["profile better"] = pooled["profile"] < pooled["run_rate"]
        rows.append(pooled)
    print("\nMean Brier over series, by scope and share of the month elapsed:")
    print(pd.concat(rows).round(4).to_string())
    print(f"(organisation: {len(daily)} daily series, {dt / len(daily):.1f} s per series)")
    if res is not None:
        print("\nReliability of the last organisation KPI (predicted vs observed frequency):")
        print(res.reliability.round(3).to_string())


def goals_part() -> None:
    """The demo's current goals of every scope, evaluated with forecasts."""
    try:
        from kpireport.demo import demo_data
        from kpireport.goals import evaluate_goals
    except ImportError as exc:
        print(f"goals skipped: {exc}")
        return
    from kpireport.demo import DEFAULT_AS_OF

    data = demo_data()
    as_of = pd.Timestamp(DEFAULT_AS_OF) - pd.Timedelta(days=10)  # inside running periods
    evaluate_goals(data, as_of=as_of, forecast=False, current_only=True)  # warm the KPI caches
    clear_cache()
    t0, c0 = time.perf_counter(), time.process_time()
    out = evaluate_goals(data, as_of=as_of, current_only=True)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    with_fc = int(out["forecast"].notna().sum())
    print(
        f"\ncurrent demo goals at {as_of.date()}: {len(out)} evaluated, {with_fc} with forecasts, "
        f"in {dt:.2f} s wall, {dc:.2f} s CPU (target <= 5 s; load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    models = out["model"].astype(str).str.split(":").str[0].str.split(" [", regex=False).str[0]
    print(models.value_counts().head(6).to_string())


if __name__ == "__main__":
    sys.exit(main())
