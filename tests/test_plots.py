"""Tests for kpireport.plots: charts (theme, labels, empty input), cards and tables (escaping)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from kpireport.plots import cards, charts, theme
from kpireport.plots._gallery import chart_builders, sample_data

NB = "\u00a0"
DASH = "\u2013"
CHARTS = list(chart_builders(sample_data()))


@pytest.fixture(scope="module")
def data() -> dict[str, object]:
    return sample_data()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig: Figure) -> list[str]:
    fig.canvas.draw()
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


# ------------------------------------------------------------------ theme
def test_import_has_no_global_side_effects_and_charts_do_not_leak_rcparams(data) -> None:
    before = dict(matplotlib.rcParams)
    charts.development_curve(data["cum"], 1.0, as_of=data["as_of"])
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()


def test_figures_are_a4_width_and_not_registered_with_pyplot(data) -> None:
    n_before = len(plt.get_fignums())
    fig = charts.kpi_trend(data["series"], data["fc"], unit="currency", kpi="revenue")
    assert len(plt.get_fignums()) == n_before
    w, h = fig.get_size_inches()
    assert w == pytest.approx(17 / 2.54) and h == pytest.approx(8 / 2.54)
    png = fig._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_use_theme_applies_the_theme() -> None:
    with matplotlib.rc_context():
        theme.use_theme()
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["savefig.dpi"] == 150


def test_value_formatter_currency_and_percent() -> None:
    fig, ax = plt.subplots()
    ax.set_ylim(0, 1_500_000)
    f = theme.ValueFormatter("currency", "EUR", "nl")
    f.set_axis(ax.yaxis)
    assert f(1_250_000) == f"€{NB}1,25{NB}mln."
    assert f(0) == f"€{NB}0"
    g = theme.ValueFormatter("percent", language="en", signed=True)
    ax.set_xlim(-0.2, 0.3)
    g.set_axis(ax.xaxis)
    assert [g(-0.1), g(0.0), g(0.2)] == ["-10%", "0%", "+20%"]


def test_truncate() -> None:
    assert theme.truncate("Charlotte van der Berg-Hoogenboom", 12) == "Charlotte v\u2026"
    assert theme.truncate("Anna", 12) == "Anna"
    assert theme.truncate(np.nan) == ""


# ----------------------------------------------------------- every chart
@pytest.mark.parametrize("name", CHARTS)
@pytest.mark.parametrize("language", ["en", "nl"])
def test_every_chart_returns_a_labelled_figure(name: str, language: str, data) -> None:
    fig = chart_builders(data)[name](language, False)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title(loc="left"), name
    assert ax.get_xlabel() and ax.get_ylabel(), name
    fig.canvas.draw()
    assert all(lbl.get_text() for lbl in ax.get_yticklabels() if lbl.get_visible()), name


@pytest.mark.parametrize("name", CHARTS)
def test_every_chart_handles_empty_input(name: str, data) -> None:
    for language, text in (
        ("en", "No data for this period"),
        ("nl", "Geen gegevens voor deze periode"),
    ):
        fig = chart_builders(data)[name](language, True)
        assert fig.get_label() == "empty"
        assert text in _texts(fig)


def test_all_nan_inputs_give_the_empty_figure() -> None:
    idx = pd.date_range("2026-01-01", periods=5, freq="MS")
    nan = pd.Series(np.nan, index=idx)
    assert charts.kpi_trend(nan).get_label() == "empty"
    assert charts.development_curve(nan).get_label() == "empty"
    assert charts.yoy_months(nan, nan).get_label() == "empty"
    assert charts.funnel(pd.Series({"leads": 0, "won": 0})).get_label() == "empty"
    df = pd.DataFrame({"name": ["a", "b"], "value": [np.nan, np.nan]})
    assert charts.leaderboard(df, "value", "name").get_label() == "empty"
    assert charts.growth_bars(pd.DataFrame({"team": ["a"], "mom": [np.nan]})).get_label() == "empty"


# ------------------------------------------------------- development curve
def test_development_curve_target_line_and_cone_span(data) -> None:
    fig = charts.development_curve(
        data["cum"],
        1_250_000,
        data["linear"],
        data["seasonal"],
        data["cone"],
        as_of=data["as_of"],
        unit="currency",
        kpi="won_value",
        language="en",
    )
    ax = fig.axes[0]
    targets = [ln for ln in ax.get_lines() if ln.get_label().startswith("Target")]
    assert len(targets) == 1
    assert list(targets[0].get_ydata()) == [1_250_000, 1_250_000]
    assert targets[0].get_label() == "Target €1.25M"
    # the two bands (95 % and 80 %) run from as_of to the last day of the period
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    for band in bands:
        xs = np.concatenate([p.vertices[:, 0] for p in band.get_paths()])
        assert xs.min() == pytest.approx(mdates.date2num(pd.Timestamp("2026-11-18")))
        assert xs.max() == pytest.approx(mdates.date2num(pd.Timestamp("2026-11-30")))
    # the actual line stops at as_of
    actual = [ln for ln in ax.get_lines() if ln.get_label().startswith("Actual to date")][0]
    assert pd.Timestamp(mdates.num2date(mdates.date2num(actual.get_xdata()[-1]))).day == 18
    assert ax.get_ylabel() == "Order intake, cumulative (€)"
    assert ax.get_ylim()[1] >= 1_250_000
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["Actual to date (€331K)", "Target €1.25M"]  # column-major order


def test_development_curve_dutch_dates_and_currency(data) -> None:
    fig = charts.development_curve(
        data["cum"], 1_250_000, as_of=data["as_of"], kpi="won_value", language="nl"
    )
    fig.canvas.draw()
    ax = fig.axes[0]
    xt = [t.get_text() for t in ax.get_xticklabels()]
    assert xt[:2] == ["1 nov", "8 nov"]
    yt = [t.get_text() for t in ax.get_yticklabels()]
    assert f"€{NB}1{NB}mln." in yt
    assert "Peildatum 18 nov" in _texts(fig)


def test_development_curve_without_actuals_shows_cone_only(data) -> None:
    fig = charts.development_curve(None, 100.0, forecast_cone=data["cone"], unit="count")
    assert fig.get_label() != "empty"


# ------------------------------------------------------------ other charts
def test_kpi_trend_month_axis_and_forecast_join(data) -> None:
    fig = charts.kpi_trend(
        data["series"], data["fc"], unit="currency", kpi="revenue", language="nl"
    )
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Maand"
    assert ax.get_ylabel() == "Omzet (€)"
    fc_line = [ln for ln in ax.get_lines() if ln.get_label() == "Prognose"][0]
    # the forecast line starts at the last actual so there is no gap
    assert fc_line.get_ydata()[0] == pytest.approx(data["series"].iloc[-1])
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "jan 2025" in labels and len(labels) <= 9


def test_kpi_trend_draws_a_running_last_period_as_to_date() -> None:
    """A partial last month (kpi_series attrs["partial"], compute_kpis complete=False) is not a drop."""
    idx = pd.date_range("2026-09-01", periods=4, freq="MS")
    s = pd.Series([100.0, 120.0, 110.0, 40.0], index=idx, name="won_value")
    s.attrs["partial"] = "2026-12"
    ax = charts.kpi_trend(s, unit="currency").axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    # the solid line stops at November; December (40 to date) hangs on a dotted segment
    assert list(lines["Actual"].get_ydata()) == [100.0, 120.0, 110.0]
    to_date = lines["Actual to date"]
    assert list(to_date.get_ydata()) == [110.0, 40.0] and to_date.get_linestyle() == ":"
    # the same series complete, and a tidy frame whose last row is complete=False
    s.attrs["partial"] = None
    ax = charts.kpi_trend(s, unit="currency").axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == ["Actual"]
    tidy = pd.DataFrame(
        {
            "kpi": "won_value",
            "scope": "organisation",
            "scope_id": "Org",
            "period": ["2026-10", "2026-11", "2026-12"],
            "value": [120.0, 110.0, 40.0],
            "unit": "currency",
            "complete": [True, True, False],
        }
    )
    ax = charts.kpi_trend(tidy, language="nl").axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == ["Werkelijk", "Werkelijk tot nu"]


def test_goal_overview_attainment_statuses_and_at_most() -> None:
    goals = pd.DataFrame(
        {
            "kpi": ["won_value", "costs", "new_leads"],
            "scope_id": ["North", "North", "North"],
            "target": [1000.0, 500.0, 0.0],
            "forecast": [900.0, 600.0, 10.0],
            "actual": [450.0, 300.0, 5.0],
            "status": ["at_risk", "off_track", None],
            "direction": ["at_least", "at_most", "at_least"],
        }
    )
    fig = charts.goal_overview(goals)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches[:3]]
    assert widths == pytest.approx([0.9, 1.2, 0.0])  # zero target -> undefined, no bar
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Order intake · North", "Costs · North (≤)", "New leads · North"]
    texts = _texts(fig)
    assert "90% · At risk" in texts and "120% · Off track" in texts and f"{DASH} · No data" in texts
    assert any(ln.get_xdata()[0] == 1.0 for ln in ax.get_lines())  # the 100 % line


def test_funnel_conversions() -> None:
    fig = charts.funnel(pd.Series({"leads": 200, "sql": 50, "deals": 0, "won": 0}), language="en")
    texts = _texts(fig)
    assert "↓ 25.0% of the step before" in texts
    assert "↓ 0.0% of the step before" in texts
    assert f"↓ {DASH} of the step before" in texts  # 0 / 0 is undefined
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "Leads",
        "Qualified leads",
        "Deals",
        "Won",
    ]


def test_leaderboard_sorts_truncates_and_drops_nan() -> None:
    df = pd.DataFrame(
        {
            "name": ["Small", "A very long seller name that goes on", "Big", "Unknown"],
            "value": [10.0, 20.0, 30.0, np.nan],
        }
    )
    fig = charts.leaderboard(df, "value", "name", unit="count", label="Deals won", max_label=10)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Big", "A very lo\u2026", "Small"]
    assert ax.get_xlabel() == "Deals won (number)"


def test_yoy_months_matches_calendar_months() -> None:
    this = pd.Series([10.0, 20.0], index=pd.date_range("2026-01-01", periods=2, freq="MS"))
    last = pd.Series(np.arange(1.0, 13.0), index=pd.date_range("2025-01-01", periods=12, freq="MS"))
    fig = charts.yoy_months(this, last, unit="count", kpi="deals_won")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches if p.get_visible()]
    assert heights == [*np.arange(1.0, 13.0), 10.0, 20.0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["2026", "2025"]


def test_growth_bars_signed_labels_and_zero_line(data) -> None:
    fig = charts.growth_bars(data["growth"], language="en")
    texts = _texts(fig)
    assert "+4.2%" in texts and "-3.1%" in texts and "+31%" in texts and DASH in texts
    ax = fig.axes[0]
    assert any(list(ln.get_ydata()) == [0, 0] for ln in ax.get_lines())
    assert ax.get_ylabel() == "Growth (%)"


def test_pipeline_by_stage_from_deals() -> None:
    deals = pd.DataFrame(
        {
            "stage": ["Proposal", "Qualification", "Proposal"],
            "value": [1000.0, 4000.0, 3000.0],
            "probability": [0.5, 0.1, 0.5],
        }
    )
    fig = charts.pipeline_by_stage(deals)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Proposal", "Qualification"]
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([4000.0, 4000.0, 2000.0, 400.0])  # unweighted, then weighted


# -------------------------------------------------------------- HTML parts
def test_html_table_escapes_crm_text_and_aligns_numbers() -> None:
    df = pd.DataFrame(
        {
            "team": ["<script>alert(1)</script>", "A & B"],
            "won_value": [1234.5, np.nan],
            "<b>col</b>": ["x", None],
        }
    )
    html = cards.html_table(df, {"won_value": lambda v: f"€{v:,.0f}"}, language="en")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "A &amp; B" in html
    assert "&lt;b&gt;col&lt;/b&gt;" in html
    assert '<td class="num" style="text-align:right">€1,234</td>' in html
    assert f'<td class="num" style="text-align:right">{DASH}</td>' in html
    assert f"<td>{DASH}</td>" in html
    # in a notebook the same markup is shown inside the report's scoped styles (docs/REPORTS.md)
    # (and its rules inline, for untrusted notebooks: only style attributes are added)
    shown = html._repr_html_()
    assert shown.startswith('<div class="kpireport-scope" style="')
    assert "<script>" not in shown and "A &amp; B" in shown
    own = re.sub(r'style="[^"]*;text-align:right"', 'style="text-align:right"', shown)
    bare = re.sub(r' style="(?!text-align:right")[^"]*"', "", own)
    assert str(html) in bare


def test_html_table_formatter_output_is_escaped_and_defaults_follow_language() -> None:
    df = pd.DataFrame({"n": [1234567.5], "d": [pd.Timestamp("2025-03-31")]})
    html = cards.html_table(df, {"n": lambda v: "<i>x</i>"}, language="nl")
    assert "&lt;i&gt;x&lt;/i&gt;" in html
    assert "31 mrt 2025" in cards.html_table(df, language="nl")
    assert "1.234.567,5" in cards.html_table(df, language="nl")
    assert (
        cards.html_table(df.iloc[:0], language="nl")
        == '<p class="kpi-empty no-data">Geen gegevens voor deze periode</p>'
    )


def test_kpi_cards_values_deltas_status_and_escaping() -> None:
    html = cards.kpi_cards(
        [
            {
                "label": "<img src=x onerror=alert(1)>",
                "value": 1234.56,
                "unit": "currency",
                "delta_prev": 0.123,
                "delta_ly": -0.04,
                "goal_pct": 0.87,
                "status": "at_risk",
                "better": "higher",
            },
            {"kpi": "hit_rate", "value": np.nan, "unit": "percent", "delta_prev": np.nan},
        ],
        language="nl",
    )
    assert html.startswith('<div class="kpi-cards"><div class="kpi-card">')
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert f'<div class="kpi-value">€{NB}1.235</div>' in html
    assert (
        '<div class="kpi-delta up good"><span class="kpi-arrow">\u25b2\u00a0</span>+12,3% ' in html
    )
    assert (
        '<div class="kpi-delta down bad"><span class="kpi-arrow">\u25bc\u00a0</span>-4,0% ' in html
    )
    assert "87% van doel" in html
    assert '<span class="kpi-status at_risk status status-at_risk">Risico</span>' in html
    assert '<div class="kpi-label">Hitrate</div>' in html
    assert f'<div class="kpi-value">{DASH}</div>' in html
    assert f'<div class="kpi-delta flat">{DASH} ' in html


def test_status_badge_unknown_status_is_no_data_and_cards_empty() -> None:
    assert (
        cards.status_badge("on_track", "en")
        == '<span class="kpi-status on_track status status-on_track">On track</span>'
    )
    assert (
        cards.status_badge("<x>", "en")
        == '<span class="kpi-status no_data status status-no_data">No data</span>'
    )
    assert (
        cards.status_badge(None, "nl")
        == '<span class="kpi-status no_data status status-no_data">Geen gegevens</span>'
    )
    assert "No data for this period" in cards.kpi_cards([], "en")
