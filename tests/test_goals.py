"""Goals (SPEC §5): validation, pace, run rate, status, lint, funnel, forecasts, CLI.

Two fixtures:

* ``tests/data/goals/crm/`` — a tiny CRM for November 2026 (30 days; 1 Nov is
  a Sunday). As of **Sunday 15 November** half the month has elapsed and 15
  days remain, 11 of them working days (16–20, 23–27 and 30 Nov).

  ===== ====== ===================================================================
  deal  seller facts
  ===== ====== ===================================================================
  D1    S1     won 30 000, closed 2025-11-05 (last year, first half of November)
  D2    S1     won 10 000, closed 2025-11-25 (last year, second half), lead L1
  D3    S1     won 10 000, created 2026-10-14, closed 2026-11-03 (20 days)
  D4    S1     won 20 000, created 2026-10-21, closed 2026-11-10 (20 days)
  D5    S3     won  5 000, created 2026-10-02, closed 2026-11-12 (41 days)
  D6    S1     lost, closed 2026-11-05
  D7    S1     open 8 000, probability 0.5, expected to close 2026-11-25
  D8    S1     open 100 000, probability 0.9, expected to close 2026-12-10
  D9    S2     won 7 000 on 2026-11-20 — still open as of 15 Nov (prob. 0.6,
               expected 2026-11-20)
  D11   S2     lost, closed 2026-06-01
  ===== ====== ===================================================================

  Teams: North = S1 + S2, South = S3. S1 booked 6 meetings in 1–15 Nov 2026,
  3 meetings and 2 quotes in November 2025. Leads L1–L4 (North) were created
  between Nov 2025 and Mar 2026; only L1 became a won deal (D2).

* a generated *steady* CRM (:func:`steady_crm`): seller R1 books exactly one
  meeting every working day since 2024; seller R2 books a seeded Poisson(3)
  number per working day. Its forecasts are exact (R1) or smooth (R2).
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpireport.constants import GoalStatus
from kpireport.data.model import CrmData
from kpireport.data.schema import SCHEMAS
from kpireport.errors import GoalError, KpiReportError
from kpireport.goals import (
    RESULT_COLUMNS,
    backtest_goals,
    evaluate_goals,
    load_goals,
    reverse_funnel,
    status_for_probability,
    validate_goals,
)

DATA = Path(__file__).parent / "data" / "goals"
AS_OF = "2026-11-15"


# ------------------------------------------------------------------ fixtures
def canonical(tables: dict[str, pd.DataFrame]) -> CrmData:
    """Canonical dtypes (ids str, dates datetime64[ns], floats) for raw frames."""
    out = {}
    for name, df in tables.items():
        schema = SCHEMAS[name]
        df = df.copy()
        for col in schema.columns:
            if col.name not in df:
                df[col.name] = pd.NA
            if col.kind == "date":
                df[col.name] = pd.to_datetime(df[col.name], format="ISO8601").astype(
                    "datetime64[ns]"
                )
            elif col.kind == "float":
                df[col.name] = pd.to_numeric(df[col.name], errors="coerce").astype("float64")
            else:
                df[col.name] = df[col.name].astype("str")
        out[name] = df[schema.column_names]
    return CrmData(out)


def read_crm(folder: Path = DATA / "crm") -> CrmData:
    tables = {
        p.stem: pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
        for p in sorted(folder.glob("*.csv"))
    }
    return canonical(tables)


#: the KPI fixture (tests/test_kpis.py): March 2026; seller 003 active until 15 March
#: 2026, 005 from 1 June 2026; revenue March 2026 = 1500 − 300 (credit note) + 800 + 1200
KPI_DATA = Path(__file__).parent / "data" / "kpis"


@pytest.fixture(scope="module")
def small() -> CrmData:
    return read_crm(KPI_DATA)


@pytest.fixture(scope="module")
def crm() -> CrmData:
    return read_crm()


def steady_crm(end: str = AS_OF) -> CrmData:
    days = pd.bdate_range("2024-01-01", end)
    rng = np.random.default_rng(42)
    r2 = np.repeat(days, rng.poisson(3.0, len(days)))
    occurred = np.concatenate([days.to_numpy(), r2.to_numpy()])
    seller = ["R1"] * len(days) + ["R2"] * len(r2)
    acts = pd.DataFrame(
        {
            "activity_id": [f"A{i}" for i in range(len(occurred))],
            "seller_id": seller,
            "type": "meeting",
            "occurred_at": occurred,
        }
    )
    sellers = pd.DataFrame({"seller_id": ["R1", "R2"], "name": ["Rui", "Rea"], "team": "Steady"})
    deals = pd.DataFrame(columns=SCHEMAS["deals"].column_names)
    return canonical({"sellers": sellers, "deals": deals, "activities": acts})


@pytest.fixture(scope="module")
def steady() -> CrmData:
    return steady_crm()


def goal(kpi: str, target: object, scope: str = "seller", scope_id: str | None = "S1", **kw):
    g = {"kpi": kpi, "scope": scope, "scope_id": scope_id, "period": "2026-11", "agreed_by": "Mats"}
    g.update(target=target, **kw)
    return g


def one(data: CrmData, g: dict, as_of: str = AS_OF, **kw) -> pd.Series:
    return evaluate_goals(data, [g], as_of=as_of, **kw).iloc[0]


# ------------------------------------------------------------------ actual, pace, run rate
def test_actual_pace_and_run_rate_of_a_value_goal(crm: CrmData) -> None:
    r = one(crm, goal("won_value", 60_000), forecast=False)
    assert list(evaluate_goals(crm, [goal("won_value", 1)], as_of=AS_OF).columns) == list(
        RESULT_COLUMNS
    )
    # D3 10 000 + D4 20 000 closed 3 and 10 Nov; D9 (20 Nov) is after as_of
    assert r["actual"] == 30_000
    assert r["elapsed"] == 0.5  # day 15 of 30
    assert r["expected_linear"] == 30_000  # 60 000 x 0.5
    # last November S1 had 30 000 of 40 000 by day 15 -> seasonal share 0.75
    assert r["expected_seasonal"] == pytest.approx(45_000)
    assert r["expected"] == pytest.approx(45_000)
    assert r["gap_to_pace"] == pytest.approx(-15_000)
    assert r["remaining_days"] == 15 and r["remaining_working_days"] == 11
    assert r["required_per_day"] == pytest.approx(2_000)  # 30 000 / 15
    assert math.isnan(r["required_per_working_day"])  # not a daily activity
    # pace 30 000 / 45 000 = 0.67 < 0.80 -> off track
    assert r["status"] == GoalStatus.OFF_TRACK


def test_activity_goal_needs_per_working_day(crm: CrmData) -> None:
    r = one(crm, goal("meetings_booked", 20), forecast=False)
    assert r["actual"] == 6
    assert r["expected_linear"] == 10
    # last November: 2 of 3 meetings by day 15 -> 20 x 2/3
    assert r["expected_seasonal"] == pytest.approx(40 / 3)
    assert r["required_per_day"] == pytest.approx(14 / 15)
    assert r["required_per_working_day"] == pytest.approx(14 / 11)


def test_linear_pace_without_last_year(crm: CrmData) -> None:
    # S3 had nothing last November: no seasonal pace, linear it is
    r = one(crm, goal("won_value", 8_000, scope_id="S3"), forecast=False)
    assert r["actual"] == 5_000
    assert math.isnan(r["expected_seasonal"])
    assert r["expected"] == 4_000
    assert r["status"] == GoalStatus.ON_TRACK  # 5 000 / 4 000 >= 0.95


def test_team_and_organisation_actuals(crm: CrmData) -> None:
    goals = [
        goal("won_value", 1e6, scope="team", scope_id="North"),
        goal("won_value", 1e6, scope="team", scope_id="South"),
        goal("won_value", 1e6, scope="organisation", scope_id=None),
        goal("hit_rate", 0.5),
    ]
    r = evaluate_goals(crm, goals, as_of=AS_OF, forecast=False)
    assert r["actual"].tolist()[:3] == [30_000, 5_000, 35_000]
    assert r["actual"].iloc[3] == pytest.approx(2 / 3)  # S1: D3, D4 won; D6 lost


# ------------------------------------------------------------------ status branches
def test_achieved_mid_period(crm: CrmData) -> None:
    r = one(crm, goal("deals_won", 2))
    assert r["status"] == GoalStatus.ACHIEVED and r["actual"] == 2


def test_missed_and_achieved_after_the_period(crm: CrmData) -> None:
    goals = [goal("won_value", 100_000), goal("won_value", 30_000)]
    r = evaluate_goals(crm, goals, as_of="2026-12-05")
    assert r["status"].tolist() == [GoalStatus.MISSED, GoalStatus.ACHIEVED]
    assert (r["lint"] == "period_over").all()
    assert r["elapsed"].tolist() == [1.0, 1.0]
    assert r["forecast"].isna().all()  # nothing to forecast any more


def test_not_started(crm: CrmData) -> None:
    r = one(crm, goal("won_value", 10_000, period="2026-12"))
    assert r["status"] == GoalStatus.NOT_STARTED
    assert r["elapsed"] == 0 and r["remaining_days"] == 31


def test_at_most_goals_staying_under_is_success(crm: CrmData) -> None:
    org = {"scope": "organisation", "scope_id": None}
    # mean cycle of D3, D4, D5 = (20 + 20 + 41) / 3 = 27 days
    goals = [goal("sales_cycle_days", t, **org) for t in (30, 24, 20)]
    r = evaluate_goals(crm, goals, as_of=AS_OF, forecast=False)
    assert r["direction"].eq("at_most").all()  # the default for a lower-is-better KPI
    assert r["actual"].tolist() == [27, 27, 27]
    # pace for at_most: target / actual = 1.11, 0.89, 0.74
    assert r["status"].tolist() == [GoalStatus.ON_TRACK, GoalStatus.AT_RISK, GoalStatus.OFF_TRACK]
    after = evaluate_goals(crm, goals[:2], as_of="2026-12-05", forecast=False)
    assert after["status"].tolist() == [GoalStatus.ACHIEVED, GoalStatus.MISSED]


def test_additive_at_most_already_exceeded_is_off_track(crm: CrmData) -> None:
    r = one(crm, goal("deals_lost", 0))  # D6 lost on 5 Nov
    assert r["direction"] == "at_most" and r["actual"] == 1
    assert r["status"] == GoalStatus.OFF_TRACK
    assert r["required_per_day"] == 0  # no allowance left


def test_no_data_for_a_ratio_without_closed_deals(crm: CrmData) -> None:
    r = one(crm, goal("hit_rate", 0.3, scope_id="S2"), forecast=False)
    assert math.isnan(r["actual"]) and r["status"] == GoalStatus.NO_DATA


def test_a_started_goal_after_the_data_has_no_actual_not_zero(crm: CrmData) -> None:
    # the fixture's last record is D9 closed on 20 November 2026; as of 5 December the
    # December goal has started but nothing is known of December: no data, not 0
    goals = [goal("won_value", 50_000, period="2026-12"), goal("won_value", 50_000, period="2027-01"),
             goal("won_value", 60_000)]  # fmt: skip
    r = evaluate_goals(crm, goals, as_of="2026-12-05", forecast=False)
    assert math.isnan(r["actual"].iloc[0]) and r["status"].iloc[0] == GoalStatus.NO_DATA
    # January has not started: 0 so far, as before
    assert r["actual"].iloc[1] == 0 and r["status"].iloc[1] == GoalStatus.NOT_STARTED
    # November holds the data's end: its actual is to date (D3 10 000 + D4 20 000, S1)
    assert r["actual"].iloc[2] == 30_000 and r["status"].iloc[2] == GoalStatus.MISSED


@pytest.mark.parametrize(
    ("p", "status"),
    [
        (0.65, GoalStatus.ON_TRACK),
        (0.6499, GoalStatus.AT_RISK),
        (0.35, GoalStatus.AT_RISK),
        (0.3499, GoalStatus.OFF_TRACK),
        (float("nan"), GoalStatus.NO_DATA),
    ],
)
def test_probability_thresholds(p: float, status: GoalStatus) -> None:
    assert status_for_probability(p) == status


# ------------------------------------------------------------------ forecasts and probability
def test_exact_forecast_on_a_steady_series(steady: CrmData) -> None:
    # R1: one meeting per working day. By 15 Nov: 10 (2-6, 9-13 Nov);
    # the 11 remaining working days make 21.
    goals = [goal("meetings_booked", t, scope_id="R1") for t in (21, 22, 15, 30)]
    r = evaluate_goals(steady, goals, as_of=AS_OF)
    assert r["actual"].tolist() == [10, 10, 10, 10]
    assert r["forecast"].to_numpy() == pytest.approx([21] * 4, abs=1e-6)
    assert r["lo_95"].to_numpy() == pytest.approx([21] * 4, abs=1e-6)
    assert r["probability"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert r["status"].tolist() == [
        GoalStatus.ON_TRACK,
        GoalStatus.OFF_TRACK,
        GoalStatus.ON_TRACK,
        GoalStatus.OFF_TRACK,
    ]
    assert r["lint"].tolist() == ["", "unrealistic", "unambitious", "unrealistic"]


def test_probability_is_monotone_and_sets_the_status(steady: CrmData) -> None:
    targets = [20, 40, 55, 60, 65, 70, 80, 120]
    goals = [goal("meetings_booked", t, scope_id="R2") for t in targets]
    r = evaluate_goals(steady, goals, as_of=AS_OF, seed=3)
    p = r["probability"].to_numpy()
    assert p[0] == pytest.approx(1.0) and p[-1] == pytest.approx(0.0)
    assert (np.diff(p) <= 0).all()
    # same seed, same probabilities
    again = evaluate_goals(steady, goals, as_of=AS_OF, seed=3)["probability"].to_numpy()
    assert np.array_equal(p, again)
    # targets at the 80 % interval's ends: ~90 % and ~10 % probability
    lo, hi, mid = r["lo_80"].iloc[0], r["hi_80"].iloc[0], r["forecast"].iloc[0]
    assert lo < mid < hi
    probe = evaluate_goals(
        steady, [goal("meetings_booked", t, scope_id="R2") for t in (lo, mid, hi)], as_of=AS_OF
    )
    assert probe["probability"].iloc[0] == pytest.approx(0.9, abs=0.03)
    assert probe["probability"].iloc[2] == pytest.approx(0.1, abs=0.03)
    assert probe["status"].tolist() == [
        GoalStatus.ON_TRACK,
        GoalStatus.AT_RISK,
        GoalStatus.OFF_TRACK,
    ]


def test_pipeline_view_adds_weighted_open_deals(crm: CrmData) -> None:
    g1 = goal("won_value", 60_000)
    g2 = goal("won_value", 38_000)
    g3 = goal("won_value", 60_000, scope="team", scope_id="North")
    r = evaluate_goals(crm, [g1, g2, g3], as_of=AS_OF)
    # S1: 30 000 + D7 8 000 x 0.5 (D8 closes in December: out)
    assert r["pipeline_expected"].iloc[0] == pytest.approx(34_000)
    assert r["pipeline_probability"].iloc[0] == 0.0  # even winning D7 gives 38 000
    assert r["pipeline_probability"].iloc[1] == pytest.approx(0.5, abs=0.05)  # = P(D7 won)
    # North also has D9, open on 15 Nov but won on 20 Nov: its stage, probability and
    # expected close on 15 Nov are unknown, so North has no pipeline view (was 38 200,
    # D9 counted with the probability it has in today's export)
    assert math.isnan(r["pipeline_expected"].iloc[2])
    assert math.isnan(r["pipeline_probability"].iloc[2])


def with_deals(data: CrmData, **changes: dict) -> CrmData:
    """``data`` with some cells of deals changed: ``D9={"probability": 1.0}``."""
    tables = {name: df.copy() for name, df in data.tables.items()}
    deals = tables["deals"]
    for deal_id, cells in changes.items():
        for col, v in cells.items():
            deals.loc[deals["deal_id"] == deal_id, col] = v
    return CrmData(tables)


def test_open_deals_at_a_past_day_do_not_know_the_outcome(crm: CrmData) -> None:
    from kpireport.goals.evaluate import open_deals_at

    # as a CRM exports a won deal: stage "closed won", probability 1.0, expected = close
    crm = with_deals(crm, D9={"probability": 1.0})
    o = open_deals_at(crm, pd.Timestamp(AS_OF)).set_index("deal_id")
    assert sorted(o.index) == ["D7", "D8", "D9"]
    assert o["closed_later"].tolist() == [False, False, True]
    assert o.loc["D9", ["stage", "probability", "expected_close_at"]].isna().all()
    assert (o.loc["D7", "stage"], o.loc["D7", "probability"]) == ("proposal", 0.5)
    # weighted pipeline on 15 Nov: 8 000 x 0.5 + 100 000 x 0.9 (D9 unknown, not 7 000 x 1.0)
    assert (o["value"] * o["probability"]).sum() == pytest.approx(94_000)
    # 4 Nov: D4, D5 (won later) and D6 (lost on 5 Nov) were open, none with its end state
    o = open_deals_at(crm, pd.Timestamp("2026-11-04")).set_index("deal_id")
    assert sorted(o.index) == ["D4", "D5", "D6", "D7", "D8", "D9"]
    assert o.loc[["D4", "D5", "D6", "D9"], "stage"].isna().all()
    assert o.loc[["D4", "D5", "D6", "D9"], "probability"].isna().all()
    # the day D9 closed it is no longer open; nothing is unknown then
    o = open_deals_at(crm, pd.Timestamp("2026-11-20"))
    assert sorted(o["deal_id"]) == ["D7", "D8"] and not o["closed_later"].any()


def test_past_pipeline_chart_data_has_no_closed_stages(crm: CrmData) -> None:
    from kpireport.i18n import t
    from kpireport.report.views import _open_pipeline

    crm = with_deals(crm, D9={"probability": 1.0})
    pipe = _open_pipeline(crm, "organisation", None, AS_OF)
    assert pipe["stage"].tolist() == ["proposal", "negotiation", "Stage unknown"]
    assert pipe["value"].tolist() == [8_000, 100_000, 7_000]
    assert not pipe["stage"].str.lower().str.startswith("closed").any()
    weighted = (pipe["value"] * pipe["probability"]).groupby(pipe["stage"], sort=False)
    w = weighted.sum(min_count=1)
    assert w["proposal"] == 4_000 and w["negotiation"] == 90_000
    assert math.isnan(w["Stage unknown"])  # not 7 000 (won later), not 0
    # North on 4 Nov: D4 (20 000, won 10 Nov), D6 (4 000, lost 5 Nov), D9 (7 000) closed since
    nl = _open_pipeline(crm, "team", "North", "2026-11-04", language="nl")
    by_stage = nl.groupby("stage", sort=False)["value"].sum()
    assert by_stage.index.tolist() == ["proposal", "negotiation", t("stage.unknown", "nl")]
    assert by_stage.tolist() == [8_000, 100_000, 31_000]


def test_pipeline_view_uses_win_rates_known_on_as_of(crm: CrmData) -> None:
    # D7 without stage or probability: the simulation uses the overall win rate of the
    # deals closed by 15 Nov, D1-D5 won, D6 and D11 lost = 5/7 (6/8 = 0.75 with D9,
    # won on 20 Nov). S1 reaches 38 000 iff D7 (8 000) is won.
    crm = with_deals(crm, D7={"stage": None, "probability": np.nan})
    r = one(crm, goal("won_value", 38_000), n_paths=40_000)
    assert r["pipeline_probability"] == pytest.approx(5 / 7, abs=0.01)


# ------------------------------------------------------------------ lint
def test_lint_flags(crm: CrmData) -> None:
    goals = [
        goal("won_value", 40_000, agreed_by=None),
        goal("hit_rate", 0.4),
        goal("won_value", 40_000, agreed_by="  "),
    ]
    r = evaluate_goals(crm, goals, as_of=AS_OF, forecast=False)
    assert r["lint"].tolist() == ["not_accepted", "", "not_accepted"]


def test_history_lint_for_goals_not_started(steady: CrmData) -> None:
    # R1 books 5 meetings in every complete week
    goals = [
        goal("meetings_booked", t, scope_id="R1", period="2026-W47", agreed_by=None)
        for t in (11, 2, 5)
    ]
    r = evaluate_goals(steady, goals, as_of=AS_OF)
    assert r["status"].eq(GoalStatus.NOT_STARTED).all()
    assert r["lint"].tolist() == [
        "not_accepted,unrealistic",
        "not_accepted,unambitious",
        "not_accepted",
    ]


# ------------------------------------------------------------------ validation and sources
def test_validation_names_goal_row_and_column(crm: CrmData) -> None:
    bad = [
        goal("won_valeu", 1),
        goal("won_value", 1, scope="galaxy"),
        goal("won_value", 1, scope="team", scope_id="West"),
        goal("won_value", 1, scope_id="S9"),
        goal("won_value", 1, period="current-month"),
        goal("won_value", 1, period="2026-13"),
        goal("won_value", "lots"),
        goal("won_value", 1, direction="up"),
        goal("won_value", 1, scope_id=None),
        goal("cac", 1, scope="customer", scope_id="C1"),
    ]
    with pytest.raises(GoalError) as err:
        validate_goals(bad, crm)
    text = str(err.value)
    assert isinstance(err.value, KpiReportError)
    assert text.startswith("10 goals are invalid:")
    expected = [
        "goal G1 (row 1), column 'kpi': unknown KPI 'won_valeu'. Did you mean 'won_value'?",
        "goal G2 (row 2), column 'scope': unknown scope 'galaxy'",
        "goal G3 (row 3), column 'scope_id': unknown team 'West'.",
        "goal G4 (row 4), column 'scope_id': unknown seller 'S9'.",
        "goal G5 (row 5), column 'period': 'current-month' is relative",
        "goal G6 (row 6), column 'period': '2026-13' is not a valid period",
        "goal G7 (row 7), column 'target': 'lots' is not a number.",
        "goal G8 (row 8), column 'direction': 'up' must be at_least or at_most.",
        "goal G9 (row 9), column 'scope_id': a seller goal needs a scope_id.",
        "goal G10 (row 10), column 'kpi': KPI 'cac' is not defined for scope 'customer'.",
    ]
    for sentence in expected:
        assert sentence in text, sentence
    assert len(err.value.problems) == 10
    # every sentence on its own line
    assert len(text.splitlines()) == 11


def test_evaluate_needs_as_of(crm: CrmData) -> None:
    with pytest.raises(GoalError, match="as_of"):
        evaluate_goals(crm, [goal("won_value", 1)])


def test_goals_from_yaml_file(crm: CrmData) -> None:
    g = load_goals(crm, DATA / "goals.yaml")
    assert g["goal_id"].tolist() == ["Y1", "Y2"]
    assert g["period"].tolist() == ["2026-11", "2026-11"]  # YAML 2026-11 stays text
    assert g["direction"].tolist() == ["at_least", "at_most"]
    r = evaluate_goals(crm, DATA / "goals.yaml", as_of=AS_OF, forecast=False)
    assert r["actual"].tolist() == [30_000, 27]
    assert r["lint"].tolist() == ["", "not_accepted"]


def test_bad_yaml_file(tmp_path: Path, crm: CrmData) -> None:
    path = tmp_path / "goals.yaml"
    path.write_text("goals: 7\n", encoding="utf-8")
    with pytest.raises(GoalError, match="must hold a list"):
        load_goals(crm, path)
    with pytest.raises(GoalError, match="does not exist"):
        load_goals(crm, tmp_path / "missing.yaml")


def test_goals_from_the_source_table_and_filters(crm: CrmData) -> None:
    table = pd.DataFrame(
        [goal("won_value", 60_000), goal("won_value", 1, scope="team", scope_id="North")]
        + [goal("won_value", 1, period="2026-10")]
    )
    data = CrmData({**crm.tables, "goals": table})
    assert len(evaluate_goals(data, as_of=AS_OF, forecast=False)) == 3
    cur = evaluate_goals(data, as_of=AS_OF, forecast=False, current_only=True, scope="seller")
    assert cur["goal_id"].tolist() == ["G1"]


# ------------------------------------------------------------------ reverse funnel
def test_reverse_funnel(crm: CrmData) -> None:
    # North, 12 months Nov 2025 - Oct 2026: won D1 30 000 + D2 10 000 (avg 20 000),
    # lost D11 -> hit rate 2/3; leads L1..L4, only L1 won -> conversion 1/4;
    # 3 meetings and 2 quotes for 2 wins -> 1.5 meetings and 1 quote per win.
    f = reverse_funnel(crm, "won_value", 50_000, "team", "North", AS_OF)
    assert f["avg_deal_value"] == 20_000
    assert f["hit_rate"] == pytest.approx(2 / 3)
    assert f["lead_conversion"] == 0.25
    assert f["deals_needed"] == 3  # 50 000 / 20 000 = 2.5, rounded up
    assert f["opportunities_needed"] == 4  # 2.5 / (2/3) = 3.75
    assert f["leads_needed"] == 10  # 2.5 / 0.25
    assert f["meetings_needed"] == 4  # 2.5 x 1.5 = 3.75
    assert f["quotes_needed"] == 3  # 2.5 x 1
    none = reverse_funnel(crm, "deals_won", -1, "team", "North", AS_OF)
    assert none["deals_needed"] == 0 and none["leads_needed"] == 0


# ------------------------------------------------------------------ calibration
def test_backtest_goals_scores_both_methods(steady: CrmData) -> None:
    bt = backtest_goals(
        steady, "meetings_booked", "seller", "R2", grain="month", as_of=AS_OF, max_periods=6,
        n_paths=300,
    )  # fmt: skip
    assert set(bt.brier.index.get_level_values("method")) == {"profile", "run_rate"}
    assert set(bt.brier.index.get_level_values("elapsed")) == {0.25, 0.5, 0.75}
    assert bt.brier["brier"].between(0, 1).all()
    assert (bt.brier["n"] == 6 * 5).all()  # 6 months x 5 targets
    assert {"predicted", "observed", "n"} <= set(bt.reliability.columns)
    # the current month (incomplete) is never replayed
    assert bt.detail["period_start"].max() == pd.Timestamp("2026-10-01")


def test_backtest_goals_refuses_ratios(steady: CrmData) -> None:
    with pytest.raises(GoalError, match="not additive"):
        backtest_goals(steady, "hit_rate", as_of=AS_OF)


# ------------------------------------------------------------------ CLI
def run_cli(argv: list[str]) -> tuple[int, str, str]:
    from contextlib import redirect_stderr, redirect_stdout

    from kpireport.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_cli_goals_json(tmp_path: Path) -> None:
    code, out, err = run_cli(
        ["goals", "--source", str(DATA / "crm"), "--goals", str(DATA / "goals.yaml"),
         "--as-of", AS_OF, "--format", "json", "--no-forecast"]
    )  # fmt: skip
    assert code == 0, err
    records = json.loads(out)
    assert [r["goal_id"] for r in records] == ["Y1", "Y2"]
    y1 = records[0]
    assert y1["actual"] == 30_000 and y1["expected"] == 45_000 and y1["status"] == "off_track"
    assert y1["forecast"] is None  # NaN -> null
    assert records[1]["scope_id"] is None
    assert {"lo_80", "hi_80", "probability", "lint"} <= set(y1)


def test_cli_goals_table_and_csv() -> None:
    base = ["goals", "--source", str(DATA / "crm"), "--goals", str(DATA / "goals.yaml")]
    code, out, _ = run_cli([*base, "--as-of", AS_OF, "--current", "--scope", "seller"])
    assert code == 0
    assert "Y1" in out and "Y2" not in out and "won_value" in out
    code, out, _ = run_cli([*base, "--as-of", AS_OF, "--format", "csv", "--no-forecast"])
    frame = pd.read_csv(io.StringIO(out))
    assert frame["goal_id"].tolist() == ["Y1", "Y2"] and frame["actual"].tolist() == [30_000, 27]


def test_cli_goal_errors_are_sentences(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "goals:\n  - {kpi: revenu, scope: seller, scope_id: S1, period: 2026-11, target: x}\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(
        ["goals", "--source", str(DATA / "crm"), "--goals", str(path), "--as-of", AS_OF]
    )
    assert code != 0 and out == ""
    assert "unknown KPI 'revenu'. Did you mean 'revenue'?" in err
    assert "'x' is not a number" in err
    assert "Traceback" not in err


def test_cli_kpis_still_registered() -> None:
    from kpireport.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["kpis", "--list"])
    assert args.func.__name__ == "run_kpis"
    args = parser.parse_args(["goals", "--source", "x"])
    assert isinstance(args, argparse.Namespace) and args.func.__name__ == "run_goals"


def test_attainment_of_one_goal_matches_the_batch(steady: CrmData) -> None:
    from kpireport.goals import attainment

    one = attainment(steady, goal("meetings_booked", 21, scope_id="R1"), as_of=AS_OF)
    assert one["actual"] == 10
    assert one["forecast"] == pytest.approx(21, abs=1e-6)
    assert one["probability"] == 1.0
    assert one["status"] == GoalStatus.ON_TRACK


# ------------------------------------------------------------------ the goals file is as strict as the table
def write_goals(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "goals.yaml"
    path.write_text("goals:\n" + text, encoding="utf-8")
    return path


def problems_of(goals, data) -> list[str]:
    with pytest.raises(GoalError) as err:
        validate_goals(goals, data)
    return err.value.problems


def test_unknown_yaml_key_with_did_you_mean(tmp_path: Path, crm: CrmData) -> None:
    path = write_goals(
        tmp_path,
        "  - {kpi: won_value, scope: seller, scope_id: S1, period: 2026-11, taget: 5}\n"
        "  - {kpi: won_value, scope: seller, scope_id: S1, period: 2026-12, target: 5,"
        " dirction: at_most, colour: red}\n",
    )
    got = problems_of(path, crm)
    assert "goal G1 (row 1): unknown key 'taget'. Did you mean 'target'?" in got
    assert "goal G2 (row 2): unknown key 'dirction'. Did you mean 'direction'?" in got
    assert "goal G2 (row 2): unknown key 'colour'." in got
    # the missing target of G1 is reported too, nothing else
    assert len(got) == 4 and any(
        "G1 (row 1), column 'target': a goal needs a target" in p for p in got
    )


def test_duplicate_goals_in_a_yaml_file(tmp_path: Path, crm: CrmData) -> None:
    path = write_goals(
        tmp_path,
        "  - {kpi: won_value, scope: seller, scope_id: S1, period: 2026-11, target: 5}\n"
        "  - {kpi: won_value, scope: team, scope_id: North, period: 2026-11, target: 5}\n"
        "  - {kpi: won_value, scope: Seller, scope_id: S1, period: 2026-11, target: 7}\n"
        # a ceiling beside the floor is a band, not a duplicate
        "  - {kpi: won_value, scope: seller, scope_id: S1, period: 2026-11, target: 9,"
        " direction: at_most}\n",
    )
    got = problems_of(path, crm)
    assert got == [
        "goal G3 (row 3), same KPI, scope, scope_id and period as goal G1 (row 1): "
        "a goal has one target."
    ]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("-5", "column 'target': -5 is negative; a won_value target is at least 0."),
        ("yes", "column 'target': 'True' is a yes/no value, not a number"),
        ("off", "column 'target': 'False' is a yes/no value, not a number"),
        ("lots", "column 'target': 'lots' is not a number."),
        ("", "column 'target': a goal needs a target"),
    ],
)
def test_bad_targets_in_yaml(tmp_path: Path, crm: CrmData, cell: str, message: str) -> None:
    path = write_goals(
        tmp_path,
        f"  - {{kpi: won_value, scope: seller, scope_id: S1, period: 2026-11, target: {cell}}}\n",
    )
    got = problems_of(path, crm)
    assert len(got) == 1 and got[0].startswith("goal G1 (row 1), " + message), got


def test_rate_targets_outside_their_range(crm: CrmData) -> None:
    got = problems_of(
        [goal("hit_rate", 40), goal("hit_rate", 1.2), goal("hit_rate", -0.1), goal("hit_rate", 1)],
        crm,
    )
    assert got == [
        "goal G1 (row 1), column 'target': 40 is outside the range of hit_rate (0 to 1) "
        "(write 0.40 for 40 %).",
        "goal G2 (row 2), column 'target': 1.2 is outside the range of hit_rate (0 to 1).",
        "goal G3 (row 3), column 'target': -0.1 is negative; a hit_rate target is at least 0.",
    ]
    # a growth rate may be negative: "shrink revenue by at most 5 %"
    ok = validate_goals([goal("revenue_growth_yoy", -0.05)], crm)
    assert ok["target"].tolist() == [-0.05]


def test_scope_is_case_insensitive_in_yaml_and_table(tmp_path: Path, crm: CrmData) -> None:
    from kpireport.data.load import load

    path = write_goals(
        tmp_path,
        "  - {kpi: won_value, scope: Team, scope_id: North, period: 2026-11, target: 5,"
        " direction: AT_LEAST}\n",
    )
    g = load_goals(crm, path)
    assert g["scope"].tolist() == ["team"] and g["direction"].tolist() == ["at_least"]
    # the source's goals table: the loader normalises the scope column the same way
    folder = tmp_path / "crm"
    folder.mkdir()
    for f in (DATA / "crm").glob("*.csv"):
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "goals.csv").write_text(
        "goal_id,kpi,scope,scope_id,period,target\nT1,won_value,Team,North,2026-11,5\n",
        encoding="utf-8",
    )
    data = load(folder, as_of=AS_OF)
    r = evaluate_goals(data, as_of=AS_OF, forecast=False)
    assert r["scope"].tolist() == ["team"] and r["actual"].tolist() == [30_000]


def test_unquoted_invalid_date_is_one_line(tmp_path: Path, crm: CrmData) -> None:
    path = write_goals(
        tmp_path,
        "  - {kpi: won_value, scope: seller, scope_id: S1, period: 2026-02-30, target: 5}\n",
    )
    got = problems_of(path, crm)
    assert got == [
        "goal G1 (row 1), column 'period': '2026-02-30' is not a valid period (use 2026, "
        "2026-Q4, 2026-11, 2026-W45 or 2026-12-01..2027-02-28)."
    ]
    # a valid unquoted day stays the day label, not a datetime
    path = write_goals(
        tmp_path,
        "  - {kpi: won_value, scope: seller, scope_id: S1, period: 2026-11-03, target: 5}\n",
    )
    assert load_goals(crm, path)["period"].tolist() == ["2026-11-03"]
    code, out, err = run_cli(
        ["goals", "--source", str(DATA / "crm"), "--goals", str(write_goals(
            tmp_path, "  - {kpi: won_value, scope: seller, scope_id: S1, period: 2026-02-30, target: 5}\n"
        )), "--as-of", AS_OF]
    )  # fmt: skip
    assert code != 0 and out == "" and "Traceback" not in err
    assert "'2026-02-30' is not a valid period" in err


def test_inactive_owner_lint(small: CrmData) -> None:
    goals = [
        goal("won_value", 1000, scope_id="003", period="2026-03"),  # active to 15 March
        goal("won_value", 1000, scope_id="003", period="2026-04"),  # left in March
        goal("won_value", 1000, scope_id="005", period="2026-05"),  # starts in June
        goal("won_value", 1000, scope_id="005", period="2026-06"),
        goal("won_value", 1000, scope="team", scope_id="South", period="2026-04"),
    ]
    r = evaluate_goals(small, goals, as_of="2026-07-15", forecast=False)
    assert r["lint"].tolist() == [
        "period_over",
        "period_over,inactive_owner",
        "period_over,inactive_owner",
        "period_over",
        "period_over",
    ]


def test_inactive_owner_is_shown_under_the_goal_table(small: CrmData) -> None:
    from kpireport.report.views import goal_table

    r = evaluate_goals(
        small, [goal("won_value", 1000, scope_id="003", period="2026-04")], as_of="2026-04-15"
    )
    html = str(goal_table(r, "en", "EUR"))
    assert "Remarks:" in html
    assert "Order intake, 003 (April 2026): the seller is not active" in html
    nl = str(goal_table(r, "nl", "EUR"))
    assert "de verkoper is in de periode van het doel niet actief" in nl


# ------------------------------------------------------------------ growth targets (issue 14.1)
def org(kpi: str, target: object, period: str = "2027-03", **kw) -> dict:
    return goal(kpi, target, scope="organisation", scope_id=None, period=period, **kw)


def test_growth_targets_resolve_against_their_baseline(small: CrmData) -> None:
    g = validate_goals(
        [
            # March 2026 revenue: 1500 − 300 (credit note) + 800 + 1200 = 3200
            org("revenue", "+10%"),
            # seller 001 in March 2026: 1500 − 300 = 1200; growth: 0.14 is "+14%"
            goal("revenue", None, growth=0.14, scope_id="001", period="2027-03"),
            org("revenue", "+5%", period="2026-04", baseline="previous-period"),
            org("revenue", "+20%", baseline="2025-03"),  # 1000 + 500
            org("hit_rate", "+2pp"),  # March 2026: 3 won of 5 closed = 0.60
            org("revenue", "-10 %"),
            org("revenue", 4000),  # an absolute target stays as it is
        ],
        small,
    )
    assert g["target"].round(6).tolist() == [3520, 1368, 3360, 1800, 0.62, 2880, 4000]
    assert g["baseline_period"].tolist()[:6] == ["2026-03"] * 3 + ["2025-03", "2026-03", "2026-03"]
    assert g["baseline_value"].tolist()[:6] == [3200, 1200, 3200, 1500, 0.6, 3200]
    assert g["growth"].round(6).tolist()[:6] == [0.1, 0.14, 0.05, 0.2, 0.02, -0.1]
    assert g["growth_unit"].tolist()[:6] == ["%", "%", "%", "%", "pp", "%"]
    assert g["baseline"].tolist()[:3] == ["last-year", "last-year", "previous-period"]
    assert pd.isna(g["growth"].iloc[6]) and pd.isna(g["baseline_period"].iloc[6])


def test_a_validated_growth_goal_is_not_resolved_twice(small: CrmData) -> None:
    once = validate_goals([org("revenue", "+10%"), org("revenue", 500)], small)
    r = evaluate_goals(small, once, as_of="2026-04-01", forecast=False)
    assert r["target"].tolist() == [3520, 500]
    assert r["growth"].iloc[0] == 0.1 and r["baseline_period"].iloc[0] == "2026-03"
    assert np.isnan(r["growth"].iloc[1])


def test_growth_baseline_over_a_leap_day() -> None:
    revenue = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2", "I3", "I4"],
            "company_id": "C1",
            "date": ["2024-02-10", "2024-02-29", "2024-03-01", "2025-03-20"],
            "amount": [1000, 500, 700, 50],
            "seller_id": "S1",
        }
    )
    sellers = pd.DataFrame({"seller_id": ["S1"], "name": ["Sam"], "team": ["One"]})
    deals = pd.DataFrame(columns=SCHEMAS["deals"].column_names)
    data = canonical({"sellers": sellers, "deals": deals, "revenue": revenue})
    g = validate_goals(
        [
            org("revenue", "+10%", period="2025-02"),  # February 2024 has 29 days: 1500
            org("revenue", "+10%", period="2025-01-01..2025-02-28"),  # to 29 Feb 2024: 1500
            org("revenue", "+10%", period="2024-03-01..2024-03-31", baseline="previous-period"),
        ],
        data,
    )
    assert g["baseline_period"].tolist() == [
        "2024-02",
        "2024-01-01..2024-02-29",
        "2024-01-30..2024-02-29",  # the 31 days before 1 March 2024
    ]
    assert g["target"].round(6).tolist() == [1650, 1650, 1650]


def test_growth_target_errors_name_the_goal(small: CrmData) -> None:
    got = problems_of(
        [
            org("hit_rate", "+14%"),
            org("revenue", "+2pp"),
            goal("revenue", "+5%", scope_id="002", period="2027-03"),  # 002 has no revenue
            org("revenue", "+5%", period="2025-06"),  # before the data
            org("revenue", "+5%", baseline="last-month"),
            org("revenue", 100, growth=0.1),
            org("revenue", 100, baseline="last-year"),
            org("revenue", "+5%", period="2027-04"),  # April 2026 is not in the data yet
            org("sales_cycle_days", "+5%"),
            org("hit_rate", "+50pp", period="2026-03", baseline="2025-03"),  # 1.0 + 0.5
        ],
        small,
    )
    assert got == [
        "goal G1 (row 1), column 'target': a percent growth of the rate hit_rate is ambiguous; "
        "give percentage points such as '+2pp'.",
        "goal G2 (row 2), column 'target': '+2pp' is in percentage points, which only a rate KPI "
        "has; write a growth in percent such as '+14%' for revenue.",
        "goal G3 (row 3), column 'target': a growth target needs a baseline, but revenue of "
        "seller '002' in 2026-03 is 0.",
        "goal G4 (row 4), column 'target': a growth target needs a baseline, but revenue of the "
        "organisation has no history in 2024-06.",
        "goal G5 (row 5), column 'baseline': unknown baseline 'last-month' (use last-year, "
        "previous-period or a period label such as 2025-Q4).",
        "goal G6 (row 6), a goal gives either a target or a growth, not both "
        "(target 100, growth 0.1).",
        "goal G7 (row 7), column 'baseline': 'last-year' is given but the target is not a "
        "growth (write target: '+14%').",
        "goal G8 (row 8), column 'target': a growth target needs a baseline, but the data ends "
        "on 2026-04-01, before the baseline 2026-04 does.",
        "goal G9 (row 9), column 'target': sales_cycle_days is not additive; a growth target "
        "works for counts, amounts and (in pp) rates.",
        "goal G10 (row 10), column 'target': 1 in 2025-03 plus +50pp is 1.5, outside the range "
        "of hit_rate (0 to 1).",
    ]


def test_growth_goal_in_the_source_table_and_in_the_views(tmp_path: Path, small: CrmData) -> None:
    from kpireport.data.load import load
    from kpireport.report.views import goal_table

    folder = tmp_path / "crm"
    folder.mkdir()
    for f in KPI_DATA.glob("*.csv"):
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "goals.csv").write_text(
        "goal_id,kpi,scope,scope_id,period,target,growth,baseline,agreed_by\n"
        "T1,revenue,organisation,,2027-03,,0.14,,Mats\n"
        "T2,hit_rate,organisation,,2027-03,,0.02,2026-03,Mats\n",
        encoding="utf-8",
    )
    data = load(folder, as_of="2026-04-01")
    with pytest.raises(GoalError, match="a percent growth of the rate hit_rate is ambiguous"):
        load_goals(data)
    (folder / "goals.csv").write_text(
        "goal_id,kpi,scope,scope_id,period,target,growth,baseline,agreed_by\n"
        "T1,revenue,organisation,,2027-03,,0.14,,Mats\n",
        encoding="utf-8",
    )
    data = load(folder, as_of="2026-04-01")
    r = evaluate_goals(data, as_of="2026-04-01")
    assert r["target"].round(6).tolist() == [3648]  # 3200 × 1.14
    assert r["status"].tolist() == ["not_started"]
    html = str(goal_table(r, "en", "EUR"))
    assert "€3,648" in html and "+14% vs March 2026" in html
    assert "+14% t.o.v. maart 2026" in str(goal_table(r, "nl", "EUR"))
    rate = evaluate_goals(small, [org("hit_rate", "+2pp")], as_of="2026-04-01")
    assert "+2\u00a0pp vs March 2026" in str(goal_table(rate, "en", "EUR"))


# ------------------------------------------------------------------ date spans (issue 14.2)
def test_a_span_covering_a_month_is_the_month(crm: CrmData) -> None:
    r = evaluate_goals(
        crm,
        [goal("won_value", 60_000), goal("won_value", 60_000, period="2026-11-01..2026-11-30")],
        as_of=AS_OF,
    )
    cols = ["actual", "expected", "gap_to_pace", "required_per_day", "forecast", "probability"]
    assert r.loc[0, cols].tolist() == r.loc[1, cols].tolist()
    assert r["period"].tolist() == ["2026-11", "2026-11-01..2026-11-30"]


def test_span_goal_pace_and_forecast(crm: CrmData, steady: CrmData) -> None:
    # 9–22 November (14 days), as of 15 November: 7 days elapsed, 7 left (5 working days)
    r = one(crm, goal("won_value", 60_000, period="2026-11-09..2026-11-22"), forecast=False)
    assert r["elapsed"] == 0.5 and r["actual"] == 20_000  # D4 (10 Nov)
    # last year's 9–22 November had no won value: linear pace only
    assert r["expected_linear"] == 30_000 and np.isnan(r["expected_seasonal"])
    assert r["expected"] == 30_000 and r["gap_to_pace"] == -10_000
    assert (r["remaining_days"], r["remaining_working_days"]) == (7, 5)
    assert r["required_per_day"] == pytest.approx(40_000 / 7)
    # R1 books one meeting each working day: 5 done, 5 more working days → exactly 10
    s = one(steady, goal("meetings_booked", 10, scope_id="R1", period="2026-11-09..2026-11-22"))
    assert (s["actual"], s["expected"], s["forecast"], s["probability"]) == (5, 5, 10, 1.0)
    assert s["status"] == GoalStatus.ON_TRACK


def test_span_errors_and_names(crm: CrmData) -> None:
    from kpireport.i18n import fmt_period

    got = problems_of([goal("won_value", 1, period="2027-02-28..2026-12-01")], crm)
    assert got == [
        "goal G1 (row 1), column 'period': The span '2027-02-28..2026-12-01' ends before it starts."
    ]
    assert fmt_period("2026-12-01..2027-02-28", "en") == "1 December 2026 – 28 February 2027"
    assert fmt_period("2026-12-01..2027-02-28", "nl") == "1 december 2026 – 28 februari 2027"


# ------------------------------------------------------------------ cascades (issue 14.3)
PARENTS = [
    goal(
        "won_value", 8_350_000, scope="organisation", scope_id=None, period="2026-04", goal_id="G12"
    ),
    goal("won_value", 100_000, scope="team", scope_id="North", period="2026-04", goal_id="G13"),
    goal("won_value", 1001, scope="organisation", scope_id=None, period="2026-05", goal_id="G14"),
    goal("hit_rate", 0.3, scope="organisation", scope_id=None, period="2026-04", goal_id="G15"),
    goal("won_value", 500, scope="team", scope_id="West", period="2026-04", goal_id="G16"),
]


def test_cascade_by_share_equal_and_weights(small: CrmData) -> None:
    from kpireport.goals import cascade_goal

    def split(gid: str, to: str, by="share") -> dict[str, float]:
        kids = cascade_goal(small, gid, to, goals=PARENTS, as_of="2026-04-01", by=by)
        assert kids["agreed_by"].isna().all() and (kids["period"] == kids["period"].iloc[0]).all()
        return dict(zip(kids["scope_id"], kids["target"], strict=True))

    # April 2025–March 2026 won value: North 1000 + 3000, South 2000 + 4000 (West: no seller
    # active in April); split in € 1 000 units
    assert split("G12", "team") == {"North": 3_340_000, "South": 5_010_000}
    # 1:2 → 2 783 333.33 : 5 566 666.67 → whole thousands, the last one to the larger remainder
    assert split("G12", "team", {"North": 1, "South": 2}) == {
        "North": 2_783_000,
        "South": 5_567_000,
    }
    # sellers active in May 2026: 001, 002, 004 (003 left on 15 March); 1001 / 3 in whole euros
    assert split("G14", "seller", "equal") == {"001": 334, "002": 334, "004": 333}
    # North's sellers: Anna had all of North's won value, Bo (from 10 March) none
    assert split("G13", "seller") == {"001": 100_000, "002": 0}
    # a rate is not split: every team gets the parent's hit rate
    assert split("G15", "team") == {"North": 0.3, "South": 0.3}


def test_cascade_sums_exactly_and_the_lint_agrees(small: CrmData) -> None:
    from kpireport.goals import cascade_goal

    kids = cascade_goal(small, "G12", "team", goals=PARENTS[:1], as_of="2026-04-01")
    assert math.fsum(kids["target"]) == 8_350_000
    goals = PARENTS[:1] + kids.to_dict(orient="records")
    r = evaluate_goals(small, goals, as_of="2026-04-01", forecast=False)
    assert r["commit_gap"].iloc[0] == 0 and "committed" not in r["lint"].iloc[0]
    # North agrees to 500 000 less: the organisation goal is undercommitted by 500 000
    goals[1] = {**goals[1], "target": goals[1]["target"] - 500_000}
    r = evaluate_goals(small, goals, as_of="2026-04-01", forecast=False)
    assert r["commit_gap"].iloc[0] == -500_000
    assert "undercommitted" in r["lint"].iloc[0].split(",")
    goals[2] = {**goals[2], "target": goals[2]["target"] + 600_000}
    r = evaluate_goals(small, goals, as_of="2026-04-01", forecast=False)
    assert r["commit_gap"].iloc[0] == 100_000 and "overcommitted" in r["lint"].iloc[0]
    # within 0.5 % of the parent (hand rounding) is not a remark
    goals[2] = {**goals[2], "target": goals[2]["target"] - 100_000 + 40_000}
    r = evaluate_goals(small, goals, as_of="2026-04-01", forecast=False)
    assert r["commit_gap"].iloc[0] == 40_000 and "committed" not in r["lint"].iloc[0]
    assert np.isnan(r["commit_gap"].iloc[1])  # team goals without seller goals: nothing to check


def test_cascade_errors(small: CrmData, tmp_path: Path) -> None:
    from kpireport.goals import cascade_goal

    def error(gid: str, to: str, by="share") -> str:
        with pytest.raises(GoalError) as err:
            cascade_goal(small, gid, to, goals=PARENTS, as_of="2026-04-01", by=by)
        return str(err.value)

    assert error("G12", "team", {"North": 1}).startswith(
        "goal G12: the weights give no weight for team South."
    )
    assert "a weight for East, not a team of this goal" in error(
        "G12", "team", {"North": 1, "South": 1, "East": 1}
    )
    assert error("G12", "team", {"North": 0, "South": 0}) == (
        "goal G12: the weights sum to zero; nothing to split the goal by."
    )
    assert "not non-negative numbers (South)" in error("G12", "team", {"North": 1, "South": -1})
    assert error("G16", "seller").startswith(
        "goal G16: team West has no seller active in 2026-04, so there is nothing to cascade to."
    )
    assert error("G13", "team") == "goal G13 is a team goal; it cascades to seller, not to team."
    assert error("G99", "team").startswith("There is no goal 'G99' to cascade.")
    weights = tmp_path / "w.yaml"
    weights.write_text("North: 1\n", encoding="utf-8")
    assert "no weight for team South" in error("G12", "team", weights)


def test_cli_cascade_writes_only_valid_goals(tmp_path: Path) -> None:
    goals = tmp_path / "goals.yaml"
    goals.write_text(
        "goals:\n  - {goal_id: G12, kpi: won_value, scope: organisation, period: 2026-04,"
        " target: 8350000, agreed_by: Mats}\n",
        encoding="utf-8",
    )
    base = ["goals", "cascade", "--source", str(KPI_DATA), "--goals", str(goals)]
    code, out, err = run_cli([*base, "--goal", "G12", "--to", "team", "--as-of", "2026-04-01"])
    assert code == 0, err
    assert "  - {goal_id: G12-North, kpi: won_value, scope: team, scope_id: North" in out
    code, out, err = run_cli(
        [*base, "--goal", "G12", "--to", "team", "--as-of", "2026-04-01", "--write", str(goals)]
    )
    assert code == 0, err and "2 child goals of G12 appended" in out
    g = load_goals(read_crm(KPI_DATA), goals)
    assert g["goal_id"].tolist() == ["G12", "G12-North", "G12-South"]
    assert g["target"].tolist() == [8_350_000, 3_340_000, 5_010_000]
    before = goals.read_text(encoding="utf-8")
    # cascading again would duplicate the children: refused, the file is unchanged
    code, out, err = run_cli(
        [*base, "--goal", "G12", "--to", "team", "--as-of", "2026-04-01", "--write", str(goals)]
    )
    assert code != 0 and "same KPI, scope, scope_id and period" in err
    assert goals.read_text(encoding="utf-8") == before
    assert not list(tmp_path.glob(".*.new"))
    code, out, err = run_cli([*base, "--goal", "G12", "--to", "team", "--by", "nope.yaml"])
    assert code != 0 and "the weights file 'nope.yaml' does not exist" in err


# ------------------------------------------------------------------ the SMART check (issue 14.4)
def test_smart_check_fails_each_letter(steady: CrmData) -> None:
    from kpireport.goals import check_goals

    r1 = dict(scope_id="R1", period="2026-12")  # R1: one meeting per working day; 23 in Dec
    goals = [
        # R2 books Poisson(3) a working day: December's forecast has its 80 % range at 44–77
        goal("meetings_booked", 60, scope_id="R2", period="2026-12", goal_id="OK"),
        goal("meetings_bokked", 23, **r1, goal_id="S1"),
        goal("meetings_booked", 23, scope_id="R9", period="2026-12", goal_id="S2"),
        goal("meetings_booked", "lots", **r1, goal_id="M"),
        goal("meetings_booked", 60, **r1 | {"scope_id": "R2"}, agreed_by=None, goal_id="A"),
        goal("meetings_booked", 30, **r1, goal_id="R_HIGH"),
        goal("meetings_booked", 10, **r1, goal_id="R_LOW"),
        goal("meetings_booked", 20, scope_id="R1", period="2026-10", goal_id="T"),
        goal("meetings_booked", 20, scope_id="R1", period="2026-12-31..2026-12-01", goal_id="T2"),
    ]
    r = check_goals(steady, goals, as_of=AS_OF).set_index("goal_id")
    verdicts = {g: "".join(r.loc[g, x][0] for x in "SMART") for g in r.index}
    assert verdicts == {
        "OK": "ppppp",
        "S1": "fppup",
        "S2": "fppup",
        "M": "pfpup",
        "A": "ppfpp",
        "R_HIGH": "pppfp",
        "R_LOW": "pppfp",
        "T": "pppuf",
        "T2": "pppuf",
    }
    assert r.loc["S1", "S_note"] == (
        "column 'kpi': unknown KPI 'meetings_bokked'. Did you mean 'meetings_booked'?"
    )
    assert r.loc["S2", "S_note"] == "column 'scope_id': unknown seller 'R9'."
    assert r.loc["M", "M_note"] == "column 'target': 'lots' is not a number."
    assert r.loc["A", "A_note"] == "nobody has agreed it yet (agreed_by is empty)"
    assert r.loc["T", "T_note"] == "2026-10 is already over (it ended on 2026-10-31)"
    assert "ends before it starts" in r.loc["T2", "T_note"]
    assert 0.2 < r.loc["OK", "probability"] < 0.95
    # R1 books exactly 23 meetings in December: 10 is a sure thing, 30 impossible
    assert r.loc["R_LOW", "probability"] == 1.0 and r.loc["R_HIGH", "probability"] == 0.0
    assert r.loc["R_HIGH", "R_note"].startswith("unrealistic; 0% chance of reaching it")
    assert r.loc["R_LOW", "R_note"].startswith("unambitious; 100% chance")
    # December 2025 had 23 working days too: 30 asks +30 %; Dec 2024 → Dec 2025: 22 → 23
    assert r.loc["R_HIGH", "last_year"] == 23
    assert r.loc["R_HIGH", "asked_growth"] == pytest.approx(30 / 23 - 1)
    assert r.loc["R_HIGH", "past_growth_min"] == pytest.approx(23 / 22 - 1)
    assert "this asks +30 % vs last year; the last 1 year grew +5 %" in r.loc["R_HIGH", "R_note"]


def test_smart_check_reports_how_fast_goals_were_raised(steady: CrmData) -> None:
    from kpireport.goals import check_goals

    past = [
        goal("meetings_booked", t, scope_id="R1", period=p, goal_id=p)
        for t, p in ((20, "2024-12"), (22, "2025-12"))
    ]
    new = goal("meetings_booked", 23, scope_id="R1", period="2026-12", goal_id="NEW")
    r = check_goals(steady, [*past, new], as_of=AS_OF).set_index("goal_id")
    # 2024 → 2025: 20 → 22 (+10 %); the 2026 goal itself is not a past goal
    assert r.loc["NEW", "goal_raise"] == pytest.approx(0.10)
    assert "past goals rose +10 % a year" in r.loc["NEW", "R_note"]


def test_cli_check_exit_codes(tmp_path: Path) -> None:
    good = write_goals(
        tmp_path,
        "  - {goal_id: Y1, kpi: won_value, scope: seller, scope_id: S1, period: 2026-12,"
        " target: 40000, agreed_by: Mats}\n",
    )
    base = ["goals", "check", str(good), "--source", str(DATA / "crm"), "--as-of", AS_OF]
    code, out, err = run_cli(base)
    assert code == 0, err
    assert out.splitlines()[0].startswith("Y1  won_value  seller S1  2026-12   S ✓  M ✓  A ✓")
    assert "1 goal checked as of 2026-11-15; 0 fail S, M or T." in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "goals:\n  - {goal_id: Y1, kpi: won_value, scope: seller, scope_id: S1, period: 2026-10,"
        " target: 40000}\n",
        encoding="utf-8",
    )
    code, out, err = run_cli(["goals", "check", str(bad), "--source", str(DATA / "crm"),
                              "--as-of", AS_OF, "--format", "json"])  # fmt: skip
    assert code == 1 and err == ""
    rec = json.loads(out)[0]
    assert (rec["S"], rec["M"], rec["A"], rec["T"]) == ("pass", "pass", "fail", "fail")


def test_goal_quality_section_of_the_management_pack(crm: CrmData) -> None:
    from kpireport.report.views import goal_quality_section

    goals = pd.DataFrame(
        [
            goal("won_value", 60_000, scope="organisation", scope_id=None, period="2026-12"),
            goal("won_value", 20_000, scope="team", scope_id="North", period="2026-12"),
            goal("won_value", 10_000, scope="team", scope_id="South", period="2026-12",
                 agreed_by=None),
            goal("won_value", 10_000, scope="team", scope_id="South", period="2026-10"),  # over
        ]
    )  # fmt: skip
    data = CrmData({**crm.tables, "goals": goals})
    html = goal_quality_section(data, AS_OF, "en", "EUR").to_html()
    # the October goal is over: not checked; the tiny CRM has no December history, so its
    # forecast is 0 and every December goal is unrealistic
    assert "3 of 3 need a look" in html
    assert '<td class="num">0%</td><td>unrealistic; the team goals add up to' in html
    assert '<td>Organisation</td><td>December 2026</td><td class="num">€60,000</td>' in html
    assert "the team goals add up to €30,000 less" in html  # 60 000 − (20 000 + 10 000)
    assert "<td>South</td><td>December 2026</td>" in html and "not yet agreed" in html
    nl = goal_quality_section(data, AS_OF, "nl", "EUR").to_html()
    assert "Kwaliteit van de doelen" in nl and "onhaalbaar; nog niet afgesproken" in nl
    assert "de teamdoelen tellen op tot €\u00a030.000 minder" in nl


# ------------------------------------------------------------------ suggested targets (issue 14.5)
def test_suggested_target_gives_back_the_requested_probability(steady: CrmData) -> None:
    import kpireport

    df = kpireport.suggest_targets(steady, "meetings_booked", "seller", "2026-12", 0.6, AS_OF)
    assert df["scope_id"].tolist() == ["R1", "R2"]
    # R1 books exactly one meeting per working day: December has 23, as last year
    r1 = df.iloc[0]
    assert (r1["target"], r1["last_year"], r1["growth"]) == (23, 23, 0)
    r2 = df.iloc[1]
    assert r2["last_year"] == 69 and r2["growth"] == pytest.approx(r2["target"] / 69 - 1)
    again = evaluate_goals(
        steady,
        [goal("meetings_booked", float(t), scope_id=s, period="2026-12")
         for t, s in zip(df["target"], df["scope_id"], strict=True)],
        as_of=AS_OF,
        upcoming=True,
    )  # fmt: skip
    assert abs(again["probability"].iloc[1] - 0.6) <= 0.05
    assert again["probability"].iloc[1] == pytest.approx(r2["probability_achieved"])
    # a higher chance asks for less
    safer = kpireport.suggest_targets(
        steady, "meetings_booked", "seller", "2026-12", 0.9, AS_OF, scope_ids=["R2"]
    )
    assert safer["target"].iloc[0] < r2["target"]


def test_suggested_value_target_comes_with_its_funnel(small: CrmData) -> None:
    from kpireport.goals import reverse_funnel, suggest_targets

    df = suggest_targets(small, "won_value", "organisation", "2026-04", 0.5, "2026-04-01")
    r = df.iloc[0]
    assert np.isfinite(r["target"]) and r["target"] > 0
    f = reverse_funnel(small, "won_value", r["target"], "organisation", None, "2026-04-01")
    assert r["deals_needed"] == f["deals_needed"] and r["leads_needed"] == f["leads_needed"]


def test_suggest_errors(small: CrmData) -> None:
    from kpireport.goals import suggest_targets

    with pytest.raises(GoalError, match="strictly between 0 and 1"):
        suggest_targets(small, "won_value", "team", "2026-04", 1.5, "2026-04-01")
    with pytest.raises(GoalError, match="The period 2026-02 is over at 2026-04-01"):
        suggest_targets(small, "won_value", "team", "2026-02", 0.5, "2026-04-01")
    with pytest.raises(GoalError, match="No team is active in 2024-04"):
        suggest_targets(small, "won_value", "team", "2024-04", 0.5, "2024-03-01")


def test_cli_suggest_writes_unagreed_goals(tmp_path: Path) -> None:
    out_file = tmp_path / "goals.yaml"
    argv = ["goals", "suggest", "--kpi", "won_value", "--scope", "seller", "--period", "2026-12",
            "--probability", "0.6", "--source", str(DATA / "crm"), "--as-of", AS_OF]  # fmt: skip
    code, out, err = run_cli([*argv, "--write", str(out_file)])
    assert code == 0, err
    assert "Targets for won_value (seller, 2026-12) reached with a 60% chance" in out
    g = load_goals(read_crm(), out_file)
    assert g["scope_id"].tolist() == ["S1", "S2", "S3"]
    assert g["agreed_by"].isna().all() and (g["period"] == "2026-12").all()
    code, out, err = run_cli([*argv, "--format", "json"])
    assert [r["scope_id"] for r in json.loads(out)] == ["S1", "S2", "S3"]


# ------------------------------------------------------------------ track record (issue 14.6)
#: R1's monthly meeting goals: working days May–Oct 2026 are 21, 22, 23, 21, 22, 22
TRACK = [("2026-05", 20), ("2026-06", 23), ("2026-07", 23), ("2026-08", 20), ("2026-09", 22),
         ("2026-10", 25), ("2026-11", 10)]  # fmt: skip


def test_goal_history_counts_streak_and_attainment(steady: CrmData) -> None:
    import kpireport
    from kpireport.goals.history import track_record

    goals = [goal("meetings_booked", t, scope_id="R1", period=p) for p, t in TRACK]
    goals.append(goal("meetings_booked", 4, scope_id="R1", period="2026-W45"))  # 5 done
    h = kpireport.goal_history(steady, "seller", "R1", as_of=AS_OF, goals=goals)
    monthly = h[h["grain"] == "month"]
    # November is still running on 15 November: not in the record
    assert monthly["period"].tolist() == [p for p, _ in TRACK[:6]]
    assert monthly["actual"].tolist() == [21, 22, 23, 21, 22, 22]
    assert monthly["reached"].tolist() == [True, False, True, True, True, False]
    assert monthly["attainment"].round(4).tolist() == [1.05, 0.9565, 1.0, 1.05, 1.0, 0.88]
    assert (monthly["reached_count"].iloc[0], monthly["count"].iloc[0]) == (4, 6)
    assert monthly["hit_ratio"].iloc[0] == pytest.approx(4 / 6)
    assert monthly["streak"].iloc[0] == -1
    tr = track_record(h).set_index("grain")
    assert tr.loc["week", "streak"] == 1 and tr.loc["week", "reached_count"] == 1
    last3 = kpireport.goal_history(steady, "seller", "R1", as_of=AS_OF, goals=goals, n=3)
    last3 = last3[last3["grain"] == "month"]
    assert last3["period"].tolist() == ["2026-08", "2026-09", "2026-10"]
    assert (last3["reached_count"].iloc[0], last3["streak"].iloc[0]) == (2, -1)


def test_track_record_in_scorecard_and_team_report(steady: CrmData) -> None:
    from kpireport.report.views import track_record_section

    goals = [goal("won_value", 1, scope_id="R1", period=p) for p, _ in TRACK[:3]]
    goals += [goal("meetings_booked", t, scope_id="R1", period=p) for p, t in TRACK]
    goals += [goal("meetings_booked", 20, scope="team", scope_id="Steady", period="2026-10")]
    data = CrmData({**steady.tables, "goals": pd.DataFrame(goals)})
    html = track_record_section(data, "seller", "R1", AS_OF, "en").to_html()
    # no won value in the steady CRM: 0 of 3, all missed
    assert "0 of the last 3 monthly order intake goals reached; 3 missed in a row." in html
    assert "<td>Meetings booked, monthly</td>" in html
    assert html.count('class="tr-hit"') == 4 and html.count('class="tr-miss"') == 2 + 3
    assert '<td class="num">4 of 6</td><td>the last one missed</td>' in html
    nl = track_record_section(data, "seller", "R1", AS_OF, "nl").to_html()
    assert "0 van de laatste 3 maandelijkse doelen voor orderintake gehaald; 3 op rij gemist." in nl
    team = track_record_section(data, "team", "Steady", AS_OF, "en").to_html()
    assert '<td class="num">1 of 1</td><td>the last one reached</td>' in team  # 22 + 55 ≥ 20
    none = track_record_section(data, "team", "Nobody", AS_OF, "en").to_html()
    assert "No finished goals yet." in none


def deals_crm(end: str = AS_OF) -> CrmData:
    """Seller D1 closes one deal every working day since 2024, created 20 days
    earlier; each is won with probability 2/3 (seeded): a hit rate near 2/3
    and a sales cycle of exactly 20 days in every month."""
    closed = pd.bdate_range("2024-01-01", end)
    n = len(closed)
    won = np.random.default_rng(6).random(n) < 2 / 3
    deals = pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(n)],
            "seller_id": "D1",
            "created_at": closed - pd.Timedelta(days=20),
            "closed_at": closed,
            "status": np.where(won, "won", "lost"),
            "value": 1000.0,
        }
    )
    sellers = pd.DataFrame({"seller_id": ["D1"], "name": ["Dag"], "team": "Deals"})
    return canonical({"sellers": sellers, "deals": deals})


def test_ratio_goals_are_forecast_as_ratios_of_forecasts() -> None:
    from kpireport.kpis import kpi_series

    data = deals_crm("2026-11-30")  # the whole month; the goals see it to 15 Nov
    goals = [
        goal("hit_rate", 0.6, scope_id="D1"),
        goal("sales_cycle_days", 25, scope_id="D1", direction="at_most"),
    ]
    r = evaluate_goals(data, goals, as_of=AS_OF)
    hit, cycle = r.iloc[0], r.iloc[1]
    # to 15 Nov: 10 working days closed (2-6, 9-13 Nov), 8 of them won
    assert hit["actual"] == pytest.approx(0.8)
    month = kpi_series(data, "hit_rate", scope="seller", scope_id="D1", grain="month")
    november = float(month.iloc[-1])  # 15 of 21: what the goal is judged on
    assert november == pytest.approx(15 / 21)
    for row in (hit, cycle):
        assert str(row["model"]).startswith("ratio of forecasts: [")
        assert row["lo_95"] <= row["lo_80"] <= row["forecast"] <= row["hi_80"] <= row["hi_95"]
    # 8 of 10 so far + half a month of ~14.5 won of ~21.7 closed
    assert hit["forecast"] == pytest.approx((8 + 0.5 * 14.5) / (10 + 0.5 * 21.7), abs=0.02)
    assert hit["lo_80"] <= november <= hit["hi_80"]
    assert hit["lo_95"] >= 0 and hit["hi_95"] <= 1
    assert 0.8 < hit["probability"] < 1
    # every won deal took 20 days: the mean cycle is 20 in every path, under 25
    assert cycle["actual"] == 20 and cycle["forecast"] == pytest.approx(20.0, abs=0.3)
    assert cycle["lo_80"] <= 20 <= cycle["hi_80"] and cycle["probability"] == 1.0


def test_goal_history_and_funnel_rates_name_the_valid_scopes(small) -> None:
    """A misspelt scope (``teams``) is one sentence listing the valid ones, not pandas' enum error."""
    from kpireport.goals.funnel import funnel_rates
    from kpireport.goals.history import goal_history

    with pytest.raises(
        GoalError, match=r"Unknown scope 'teams'.*organisation, team, seller, customer"
    ):
        goal_history(small, scope="teams", as_of="2026-03-31")
    with pytest.raises(
        KpiReportError, match=r"Unknown scope 'Sellers '.*organisation, team, seller"
    ):
        funnel_rates(small, "Sellers ", None, "2026-03-31")
