"""Forecast accuracy benchmark: kpireport's forecaster vs seasonal naive.

Run: ``.venv/bin/python benchmarks/forecast_accuracy.py [--quick]``

(a) public monthly series bundled with statsmodels (no download): ``co2``
    (weekly, resampled to monthly means) and ``elnino`` (a 12-column yearly
    table flattened to one monthly series);
(b) the demo KPIs, monthly, for the organisation and every team (additive
    KPIs), via ``kpireport.data.demo.demo_data`` + ``kpireport.kpis.kpi_series``
    (skipped with a note when those modules are unavailable);
(c) goal attainment on the demo's daily organisation KPIs: Brier score of the
    ``profile`` method vs the run-rate baseline at 25/50/75 % elapsed.

Rolling origins: 6 origins, horizon 12 months (6 for the demo), scored as in
:func:`kpireport.forecast.backtest`. Targets: MASE >= 10 % below seasonal
naive on seasonal series, 80 % intervals covering 75-85 %, Brier below the
baseline at every share.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from kpireport.forecast import backtest, backtest_attainment, clear_cache

ADDITIVE_DEMO_KPIS = (
    "new_leads",
    "sql",
    "deals_won",
    "won_value",
    "revenue",
    "meetings_booked",
    "quotes_sent",
)


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
        from kpireport.data.demo import demo_data
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
    ap.add_argument(
        "--attainment-only", action="store_true", help="only part (c), the attainment Brier table"
    )
    args = ap.parse_args(argv)
    pd.set_option("display.width", 160)
    import os

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    frames = []
    if not args.attainment_only:
        pub = public_series()
        rows_a, per_a = score(pub, 12)
        frames.append(table(rows_a, "public", per_a))
        print("Per public series:")
        print(rows_a.pivot(index="series", columns="model", values="mase").round(3).to_string())
    monthly, daily, note = demo_series(args.quick)
    if note:
        print(note)
    if monthly and not args.attainment_only:
        rows_b, per_b = score(monthly, 6)
        frames.append(table(rows_b, "demo", per_b))
        piv = rows_b.pivot(index="series", columns="model", values="mase")
        better = (piv["auto"] <= 0.9 * piv["snaive"]).mean()
        print(f"demo: share of series with MASE >= 10% below seasonal naive: {better:.0%}")
    if frames:
        print("\nRolling-origin accuracy (MASE relative to the in-sample seasonal naive error):")
        print(pd.concat(frames).round(3).to_string())
    if daily:
        print(
            "\nGoal attainment, monthly goals on daily organisation KPIs (targets: trailing 3-month mean x 0.8..1.2):"
        )
        briers = []
        t0 = time.perf_counter()
        for k, s in daily.items():
            s = s[s.index < s.index[-1].to_period("M").start_time]  # complete months only
            res = backtest_attainment(
                s, "month", n_paths=1000, max_periods=12 if args.quick else 30
            )
            b = res.brier["brier"].unstack("method")
            b.insert(0, "kpi", k)
            briers.append(b)
        dt = time.perf_counter() - t0
        allb = pd.concat(briers)
        print(allb.round(4).to_string())
        pooled = allb.groupby(level="elapsed")[["profile", "run_rate"]].mean()
        pooled["profile better"] = pooled["profile"] < pooled["run_rate"]
        print("\nMean Brier over KPIs:")
        print(pooled.round(4).to_string())
        print(f"({len(daily)} daily series, {dt / len(daily):.1f} s per series)")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("\nReliability of the last KPI (predicted vs observed frequency):")
        print(res.reliability.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
