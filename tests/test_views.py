"""Report views: the management pack grades last month's forecast (issue 6, snapshots)."""

from __future__ import annotations

import pandas as pd
import pytest

from kpireport.demo import demo_data
from kpireport.history.store import History
from kpireport.kpis import compute_kpis
from kpireport.report.views import management_pack_view


@pytest.fixture(scope="module")
def data():
    return demo_data(seed=3, scale=0.3, as_of="2026-11-30")


def _store_forecast(out, forecast, lo, hi):
    hist = History(out)
    hist.insert_snapshots(
        [
            (
                1,
                "monthly-pack",
                "2026-09",
                "2026-10-01",
                "management",
                "won_value",
                "organisation",
                None,
                "2026-10",
                None,
                forecast,
                lo,
                hi,
                None,
                None,
                None,
                None,
            )
        ]  # fmt: skip
    )


def test_management_pack_grades_last_months_forecast_and_records_the_next(data, tmp_path):
    actual = compute_kpis(data, "2026-10", kpis=["won_value"], as_of="2026-11-30")["value"].iloc[0]
    _store_forecast(tmp_path, actual * 0.9, actual * 0.8, actual * 1.1)
    view = management_pack_view(data, "2026-10", "2026-11-30", "en", history=str(tmp_path))
    text = view.to_html()
    assert "Last month we forecast" in text and "inside the range" in text
    shown = f"€{actual:,.0f}"
    assert shown in text  # the actual, as the reader sees it
    nxt = view.kpis[(view.kpis["kpi"] == "won_value") & (view.kpis["period"] == "2026-11")]
    assert len(nxt) == 1 and pd.isna(nxt["value"].iloc[0])
    assert nxt["lo_80"].iloc[0] <= nxt["forecast"].iloc[0] <= nxt["hi_80"].iloc[0]


def test_management_pack_says_when_the_actual_fell_outside(data, tmp_path):
    actual = compute_kpis(data, "2026-10", kpis=["won_value"], as_of="2026-11-30")["value"].iloc[0]
    _store_forecast(tmp_path, actual * 2, actual * 1.8, actual * 2.2)
    text = management_pack_view(
        data, "2026-10", "2026-11-30", "nl", history=str(tmp_path)
    ).to_html()
    assert "buiten het bereik" in text


def test_management_pack_without_history_has_no_grading(data, tmp_path):
    text = management_pack_view(
        data, "2026-10", "2026-11-30", "en", history=str(tmp_path)
    ).to_html()
    assert "Last month we forecast" not in text
