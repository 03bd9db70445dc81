"""Render every chart with realistic synthetic data to PNG, to look at them.

Usage: ``python -m kpireport.plots._gallery OUTDIR`` writes ``<chart>_<lang>.png``
for English and Dutch plus ``<chart>_empty_<lang>.png``, and the KPI cards and
a table as ``cards_<lang>.html``. The data are seeded, so the pictures only
change when the charts do.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kpireport import i18n
from kpireport.plots import cards, charts
from kpireport.plots.theme import to_png

log = logging.getLogger("kpireport")


def _bands(mean: np.ndarray, sd: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    """A forecast frame (``mean, lo_80, hi_80, lo_95, hi_95``) of normal bands around ``mean``."""
    return pd.DataFrame(
        {
            "mean": mean,
            "lo_80": mean - 1.28 * sd,
            "hi_80": mean + 1.28 * sd,
            "lo_95": mean - 1.96 * sd,
            "hi_95": mean + 1.96 * sd,
        },
        index=index,
    )


def sample_data(seed: int = 7) -> dict[str, object]:
    """Seeded synthetic inputs in the shapes the chart functions take."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-11-01", "2026-11-30", freq="D")
    as_of = pd.Timestamp("2026-11-18")
    daily = rng.gamma(1.2, 38_000, len(days)) * (days.day_of_week < 5)
    cum = pd.Series(np.cumsum(daily), index=days)
    cum[cum.index > as_of] = np.nan
    target = 1_250_000.0
    linear = pd.Series(target * np.arange(1, len(days) + 1) / len(days), index=days)
    profile = np.cumsum(np.where(days.day_of_week < 5, 1.0, 0.1) * np.linspace(0.8, 1.3, len(days)))
    seasonal = pd.Series(target * profile / profile[-1], index=days)
    fut = days[days > as_of]
    steps = np.arange(1, len(fut) + 1)
    mean = cum[as_of] + 36_000 * steps
    sd = 30_000 * np.sqrt(steps)
    cone = _bands(mean, sd, fut)
    months = pd.date_range("2024-11-01", "2026-10-01", freq="MS")
    season = 1 + 0.25 * np.sin(2 * np.pi * (months.month - 3) / 12)
    series = pd.Series(
        rng.normal(1.0, 0.08, len(months)) * 900_000 * season * np.linspace(1, 1.3, len(months)),
        index=months,
    )
    fmonths = pd.date_range("2026-11-01", periods=6, freq="MS")
    fm = series.iloc[-12:-6].to_numpy() * 1.12
    fsd = 90_000 * np.sqrt(np.arange(1, 7))
    fc = _bands(fm, fsd, fmonths)
    goals = pd.DataFrame(
        {
            "kpi": [
                "won_value",
                "new_leads",
                "meetings_booked",
                "hit_rate",
                "costs",
                "quotes_sent",
                "deals_won",
            ],
            "scope": ["team"] * 7,
            "scope_id": ["North", "North", "North", "North", "North", "North", "North"],
            "target": [1_250_000, 400, 120, 0.35, 80_000, 60, 25],
            "actual": [720_000, 310, 95, 0.31, 61_000, 22, 9],
            "forecast": [1_180_000, 455, 150, 0.33, 91_000, 36, 14],
            "status": [
                "at_risk",
                "achieved",
                "on_track",
                "at_risk",
                "off_track",
                "off_track",
                "missed",
            ],
            "direction": ["at_least"] * 4 + ["at_most"] + ["at_least"] * 2,
        }
    )
    stages = pd.Series({"leads": 1240, "sql": 410, "deals": 132, "won": 41})
    sellers = pd.DataFrame(
        {
            "name": [
                "Anna de Vries",
                "Bart Jansen",
                "Charlotte van der Berg-Hoogenboom",
                "Daan Bakker",
                "Eva Visser",
                "<script>alert(1)</script>",
                "Fleur Smit",
                "Gijs Meijer",
            ],
            "value": [412_000, 388_500, 351_250, 290_000, 245_800, 190_000, np.nan, 88_400],
        }
    )
    this_year = series[series.index >= "2026-01-01"]
    last_year = series[(series.index >= "2025-01-01") & (series.index < "2026-01-01")] * 0.92
    growth = pd.DataFrame(
        {
            "team": ["North", "South", "East", "West", "Enterprise accounts"],
            "mom": [0.042, -0.031, 0.118, np.nan, 0.004],
            "yoy": [0.153, 0.021, -0.082, 0.31, 0.097],
            "ytd": [0.121, 0.035, -0.041, 0.27, 0.088],
        }
    )
    pipeline = pd.DataFrame(
        {
            "stage": ["Qualification", "Needs analysis", "Proposal", "Negotiation", "Verbal yes"],
            "value": [2_400_000, 1_750_000, 1_320_000, 640_000, 210_000],
            "weighted": [240_000, 350_000, 528_000, 384_000, 189_000],
        }
    )
    return {
        "cum": cum,
        "target": target,
        "linear": linear,
        "seasonal": seasonal,
        "cone": cone,
        "as_of": as_of,
        "series": series,
        "fc": fc,
        "goals": goals,
        "stages": stages,
        "sellers": sellers,
        "this_year": this_year,
        "last_year": last_year,
        "growth": growth,
        "pipeline": pipeline,
    }


def chart_builders(d: dict[str, object]) -> dict[str, Callable[[str, bool], Figure]]:
    """name -> function(language, empty) building that chart from ``d``."""
    empty_s = pd.Series([], dtype="float64", index=pd.DatetimeIndex([]))
    e = pd.DataFrame()
    return {
        "development_curve": lambda lang, empty: charts.development_curve(
            empty_s if empty else d["cum"],
            None if empty else d["target"],
            None if empty else d["linear"],
            None if empty else d["seasonal"],
            None if empty else d["cone"],
            as_of=d["as_of"],
            unit="currency",
            kpi="won_value",
            language=lang,
        ),
        "kpi_trend": lambda lang, empty: charts.kpi_trend(
            empty_s if empty else d["series"],
            None if empty else d["fc"],
            unit="currency",
            kpi="revenue",
            language=lang,
        ),
        "goal_overview": lambda lang, empty: charts.goal_overview(
            e if empty else d["goals"], language=lang
        ),
        "funnel": lambda lang, empty: charts.funnel(
            pd.Series([], dtype=float) if empty else d["stages"], language=lang
        ),
        "leaderboard": lambda lang, empty: charts.leaderboard(
            e if empty else d["sellers"],
            "value",
            "name",
            kpi="won_value",
            highlight="Daan Bakker",
            language=lang,
        ),
        "yoy_months": lambda lang, empty: charts.yoy_months(
            None if empty else d["this_year"], None if empty else d["last_year"], language=lang
        ),
        "growth_bars": lambda lang, empty: charts.growth_bars(
            e if empty else d["growth"], language=lang
        ),
        "pipeline_by_stage": lambda lang, empty: charts.pipeline_by_stage(
            e if empty else d["pipeline"], language=lang
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the gallery into the folder given as the first argument."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "gallery")
    out.mkdir(parents=True, exist_ok=True)
    d = sample_data()
    for name, build in chart_builders(d).items():
        for lang in ("en", "nl"):
            (out / f"{name}_{lang}.png").write_bytes(to_png(build(lang, False)))
            (out / f"{name}_empty_{lang}.png").write_bytes(to_png(build(lang, True)))
    for lang in ("en", "nl"):
        html = cards.kpi_cards(
            [
                {
                    "kpi": "won_value",
                    "value": 1_234_567.8,
                    "unit": "currency",
                    "delta_prev": 0.123,
                    "delta_ly": -0.04,
                    "goal_pct": 0.87,
                    "status": "at_risk",
                    "better": "higher",
                },
                {
                    "kpi": "hit_rate",
                    "value": 0.314,
                    "unit": "percent",
                    "delta_prev": 0.0,
                    "delta_ly": np.nan,
                    "status": "on_track",
                },
                {
                    "kpi": "sales_cycle_days",
                    "value": 34.5,
                    "unit": "days",
                    "delta_prev": -0.08,
                    "better": "lower",
                },
            ],
            language=lang,
        )
        table = cards.html_table(
            d["sellers"],
            {"value": lambda v, lang=lang: i18n.fmt_currency(v, "EUR", lang)},
            language=lang,
        )
        (out / f"cards_{lang}.html").write_text(
            f"<html><body>{html}{table}</body></html>", encoding="utf-8"
        )
    log.info("Gallery written to %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
