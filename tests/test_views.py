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


def test_runner_passes_the_history_path_as_a_notebook_parameter(tmp_path):
    """Issue 16 item 2: the history is a parameter (path or empty), not found by walking up."""
    from kpireport.report.params import expand, load_plan
    from kpireport.resources import resource_dir

    runs = load_plan(resource_dir("params") / "management_monthly.yaml")
    out = tmp_path / "out"
    (spec,) = expand(runs, out=out, as_of="2026-11-30")
    assert spec.parameters["history"] == ""  # no run history yet: no grading
    History(out)  # a scheduled run creates <out>/history.sqlite
    (spec,) = expand(runs, out=out, as_of="2026-11-30")
    assert spec.parameters["history"] == str(out / "history.sqlite")
    assert (out / "history.sqlite").is_file()


def test_history_is_used_as_given_not_searched_above(data, tmp_path):
    actual = compute_kpis(data, "2026-10", kpis=["won_value"], as_of="2026-11-30")["value"].iloc[0]
    _store_forecast(tmp_path, actual * 0.9, actual * 0.8, actual * 1.1)
    inside = tmp_path / "2026-10"
    inside.mkdir()
    db = str(tmp_path / "history.sqlite")
    from kpireport.report.views import management

    ctx = management.context(data, "2026-10", "2026-11-30", "en", history=db)
    assert "Last month we forecast" in management.forecast(ctx).to_html()
    # a folder without its own history.sqlite is no history (the old walk-up found the parent's)
    ctx = management.context(data, "2026-10", "2026-11-30", "en", history=str(inside))
    assert "Last month we forecast" not in management.forecast(ctx).to_html()
