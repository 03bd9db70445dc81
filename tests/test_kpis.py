"""KPI engine (SPEC §3, §4, §8): every KPI against hand-computed values.

The fixture ``tests/data/kpis/`` is a tiny CRM built for March 2026 (31 days):

sellers: 001 Anna (North, 3000/month), 002 Bo (North, 6200/month, from 10 March),
003 Cai (South, 4000/month, until 15 March inclusive), 004 Dee (South, 5000/month;
*changed team*: she used to sell for North in 2025 — the contract has no team
history, so all her history counts for South), 005 Eve (West, from June: a team
with no activity in March).

It is read here with plain pandas (not the loader), into the canonical form of
docs/ARCHITECTURE.md, so these tests depend on nothing but the KPI engine.
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

from kpireport.cli import kpis as cli_kpis
from kpireport.constants import KPI_COLUMNS, Better, Table, Unit
from kpireport.data.model import CrmData
from kpireport.data.schema import SCHEMAS
from kpireport.errors import KpiError, PeriodError
from kpireport.kpis import (
    REGISTRY,
    UNATTRIBUTED,
    compute_kpis,
    cumulative_curve,
    daily_matrix,
    get_kpi,
    growth_table,
    kpi_series,
    list_kpis,
    pivot_kpis,
)

DATA = Path(__file__).parent / "data" / "kpis"


def read_fixture(folder: Path = DATA, drop: tuple[str, ...] = ()) -> CrmData:
    """Read the CSV fixture into canonical dtypes (ids str, dates datetime64[ns], floats)."""
    tables = {}
    for path in sorted(folder.glob("*.csv")):
        if path.stem in drop:
            continue
        schema = SCHEMAS[path.stem]
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        for col in schema.columns:
            if col.name not in df:
                df[col.name] = pd.NA
            if col.kind == "date":
                df[col.name] = pd.to_datetime(df[col.name], format="ISO8601").astype(
                    "datetime64[ns]"
                )
            elif col.kind == "float":
                df[col.name] = df[col.name].astype("float64")
            else:
                df[col.name] = df[col.name].astype("str")
        tables[path.stem] = df[schema.column_names]
    return CrmData(tables, settings={"gross_margin": 1.0})


@pytest.fixture(scope="module")
def crm() -> CrmData:
    return read_fixture()


def value(
    df: pd.DataFrame, kpi: str, scope_id: str | None = None, period: str | None = None
) -> float:
    rows = df[df["kpi"] == kpi]
    rows = rows[rows["scope_id"].isna()] if scope_id is None else rows[rows["scope_id"] == scope_id]
    if period is not None:
        rows = rows[rows["period"] == period]
    assert len(rows) == 1, f"{kpi}/{scope_id}: {len(rows)} rows"
    return float(rows["value"].iloc[0])


def note(df: pd.DataFrame, kpi: str, scope_id: str | None = None) -> str | None:
    rows = df[df["kpi"] == kpi]
    rows = rows[rows["scope_id"].isna()] if scope_id is None else rows[rows["scope_id"] == scope_id]
    n = rows["note"].iloc[0]
    return None if pd.isna(n) else str(n)


@pytest.fixture(scope="module")
def org(crm: CrmData) -> pd.DataFrame:
    return compute_kpis(crm, "2026-03")


@pytest.fixture(scope="module")
def teams(crm: CrmData) -> pd.DataFrame:
    return compute_kpis(crm, "2026-03", by="team", unattributed=True)


@pytest.fixture(scope="module")
def sellers(crm: CrmData) -> pd.DataFrame:
    return compute_kpis(crm, "2026-03", by="seller", unattributed=True)


@pytest.fixture(scope="module")
def customers(crm: CrmData) -> pd.DataFrame:
    return compute_kpis(crm, "2026-03", by="customer")


# ------------------------------------------------------------------ registry
def test_registry_declares_every_kpi_once_with_its_definition() -> None:
    expected = {
        "new_leads", "new_organisations", "sql", "hit_rate", "sales_cycle_days",
        "sales_cycle_days_median", "avg_deal_value", "cac", "clv", "revenue",
        "revenue_growth_mom", "revenue_growth_yoy", "revenue_growth_ytd", "meetings_booked",
        "quotes_sent", "calls_made", "deals_won", "deals_lost", "won_value", "pipeline_value",
        "weighted_pipeline", "lead_conversion", "new_customers", "costs", "prospect_hit_rate",
        "products_per_customer", "customer_tenure_months",
    }  # fmt: skip
    assert set(REGISTRY) == expected
    for k in REGISTRY.values():
        assert k.definition, k.name
        assert isinstance(k.unit, Unit) and isinstance(k.better, Better)
    assert get_kpi("cac").better == Better.LOWER
    assert get_kpi("revenue").additive and not get_kpi("hit_rate").additive
    assert not get_kpi("pipeline_value").additive  # a snapshot, not a flow
    listing = list_kpis()
    assert list(listing.index) == list(REGISTRY)
    assert "won + lost" in listing.loc["hit_rate", "definition"]


def test_unknown_kpi_names_the_valid_choices() -> None:
    with pytest.raises(KpiError, match="Unknown KPI 'revenu'") as err:
        get_kpi("revenu")
    assert "revenue_growth_mom" in str(err.value)


def test_kpi_not_defined_for_scope_is_refused_when_asked(crm: CrmData) -> None:
    with pytest.raises(KpiError, match="not defined for the customer scope"):
        compute_kpis(crm, "2026-03", by="customer", kpis=["cac"])
    with pytest.raises(KpiError, match="Unknown scope"):
        compute_kpis(crm, "2026-03", by="region")


# ------------------------------------------------------------- result shape
def test_result_is_tidy_long_form(org: pd.DataFrame) -> None:
    assert tuple(org.columns[:5]) == KPI_COLUMNS
    assert list(org.columns[5:]) == ["unit", "note", "name", "period_start", "complete"]
    assert org["scope"].unique().tolist() == ["organisation"]
    assert org["scope_id"].isna().all()
    assert org["period"].unique().tolist() == ["2026-03"]
    assert len(org) == len(REGISTRY)


def test_every_team_is_present_even_without_activity(teams: pd.DataFrame) -> None:
    ids = set(teams.loc[teams["kpi"] == "revenue", "scope_id"])
    assert ids == {"North", "South", "West", UNATTRIBUTED}
    # West did nothing: 0 for counts, NaN for ratios (never 0)
    assert value(teams, "deals_won", "West") == 0
    assert math.isnan(value(teams, "hit_rate", "West"))
    assert math.isnan(value(teams, "avg_deal_value", "West"))


def test_sellers_included_when_active_or_with_data(sellers: pd.DataFrame) -> None:
    ids = set(sellers.loc[sellers["kpi"] == "revenue", "scope_id"])
    # 005 starts in June and has no data in March; 003 left on 15 March but was active
    assert ids == {"001", "002", "003", "004", UNATTRIBUTED}


def test_pivot_kpis_is_wide(teams: pd.DataFrame) -> None:
    wide = pivot_kpis(teams)
    assert wide.loc["North", "revenue"] == 1200
    assert list(wide.columns[:2]) == ["new_leads", "new_organisations"]


# ---------------------------------------------------------------- lead KPIs
def test_new_leads_with_period_boundaries(org: pd.DataFrame, teams: pd.DataFrame) -> None:
    # March: L2 (1 Mar 00:00), L3 (31 Mar 23:59), L5 (no seller), L7 = 4;
    # L4 on 1 April 00:00 is the next period; L1 is February.
    assert value(org, "new_leads") == 4
    assert value(teams, "new_leads", "North") == 2  # L2 (001), L3 (002)
    assert value(teams, "new_leads", "South") == 1  # L7 (004)
    # L5 has no seller: counted for the organisation only
    assert value(teams, "new_leads", UNATTRIBUTED) == 1


def test_sql_counts_qualified_at(org: pd.DataFrame, sellers: pd.DataFrame) -> None:
    # qualified in March: L1 (1 Mar 00:00), L2 (31 Mar 23:59), L5 (20 Mar, no seller); L7 in April
    assert value(org, "sql") == 3
    assert value(sellers, "sql", "001") == 2
    assert value(sellers, "sql", "004") == 0


def test_lead_conversion_cohort_and_immaturity(crm: CrmData) -> None:
    df = compute_kpis(crm, "2026-03", by="seller", kpis=["lead_conversion"], as_of="2026-03-31")
    org = compute_kpis(crm, "2026-03", kpis=["lead_conversion"], as_of="2026-03-31")
    # March cohort: L2, L3, L5, L7; only L2 became a won deal (D2) -> 1/4
    assert value(org, "lead_conversion") == pytest.approx(0.25)
    assert value(df, "lead_conversion", "001") == 1.0  # L2
    assert value(df, "lead_conversion", "002") == 0.0  # L3
    assert math.isnan(value(df, "lead_conversion", "003"))  # no leads: undefined
    # typical cycle of deals won by 31 March: 19, 29, 32, 59, 62 days -> median 32;
    # the cohort is 0 days old at the cut-off -> immature
    assert note(org, "lead_conversion").startswith("immature cohort")
    assert "32 days" in note(org, "lead_conversion")
    old = compute_kpis(crm, "2025-12", kpis=["lead_conversion"], as_of="2026-03-31")
    # December cohort: L6 -> D4 won -> 1/1, and 3 months old: mature
    assert value(old, "lead_conversion") == 1.0
    assert note(old, "lead_conversion") is None


def test_new_organisations_first_lead_or_deal_ever(org: pd.DataFrame, teams: pd.DataFrame) -> None:
    # first record per org_number: 556001 D9 (Mar 2025), 556002 L2 (1 Mar 2026, 001),
    # 556003 L6 (Dec 2025; C3 and C4 share it, so L7 in March is not new),
    # 556005 D7 (Feb 2026), 0556006 L5 (15 Mar 2026, no seller)
    assert value(org, "new_organisations") == 2
    assert value(teams, "new_organisations", "North") == 1
    assert value(teams, "new_organisations", "South") == 0
    assert value(teams, "new_organisations", UNATTRIBUTED) == 1


# ---------------------------------------------------------------- deal KPIs
def test_closed_deal_kpis(org: pd.DataFrame, teams: pd.DataFrame, sellers: pd.DataFrame) -> None:
    # closed in March: won D1 (001, 1000, 59 d), D2 (001, 3000, 29 d), D5 (003, 4000, 32 d);
    # lost D3, D8 (002). D7 is won on 1 April (next period).
    assert value(org, "deals_won") == 3
    assert value(org, "deals_lost") == 2
    assert value(org, "won_value") == 8000
    assert value(org, "hit_rate") == pytest.approx(3 / 5)
    assert value(org, "avg_deal_value") == pytest.approx(8000 / 3)
    assert value(org, "sales_cycle_days") == pytest.approx((59 + 29 + 32) / 3)
    assert value(org, "sales_cycle_days_median") == 32
    assert value(teams, "hit_rate", "North") == pytest.approx(2 / 4)
    assert value(teams, "sales_cycle_days", "North") == pytest.approx(44)
    assert value(teams, "sales_cycle_days_median", "North") == pytest.approx(44)
    assert value(teams, "hit_rate", "South") == 1.0
    assert value(sellers, "hit_rate", "002") == 0.0  # lost everything: 0, not NaN
    assert math.isnan(value(sellers, "hit_rate", "004"))  # closed nothing: NaN


def test_pipeline_is_reconstructed_at_the_end_of_each_period(crm: CrmData) -> None:
    df = compute_kpis(crm, ["2026-02", "2026-03"], kpis=["pipeline_value", "weighted_pipeline"])
    # end of March: D6 open (10000 x 0.5), D7 won on 1 April (6000 x 0.8), D10 open
    # (1500, no probability -> 0 weighted); D11 created on 1 April is not in it
    assert value(df, "pipeline_value", period="2026-03") == 17500
    assert value(df, "weighted_pipeline", period="2026-03") == pytest.approx(9800)
    # end of February: D1 (closed 10 Mar), D5 (closed 5 Mar), D6, D7 = 21000
    assert value(df, "pipeline_value", period="2026-02") == 21000


def test_new_customers_and_cac(
    org: pd.DataFrame, teams: pd.DataFrame, sellers: pd.DataFrame
) -> None:
    # first won deal ever: C1 D9 (2025), C2 D2 (Mar, 001), C3 D4 (Feb), C4 D5 (Mar, 003), C5 D7 (Apr)
    assert value(org, "new_customers") == 2
    assert value(teams, "new_customers", "North") == 1
    assert value(sellers, "new_customers", "001") == 1
    # costs in March: rows 1000 (no team) + 500 (North) + 250 (South);
    # sellers: 001 3000, 002 6200*22/31 = 4400, 003 4000*15/31, 004 5000
    cai = 4000 * 15 / 31
    total = 1000 + 500 + 250 + 3000 + 4400 + cai + 5000
    assert value(org, "costs") == pytest.approx(total)
    assert value(teams, "costs", "North") == pytest.approx(500 + 3000 + 4400)
    assert value(teams, "costs", "South") == pytest.approx(250 + cai + 5000)
    assert value(teams, "costs", "West") == 0
    assert value(sellers, "costs", "002") == pytest.approx(4400)
    assert value(org, "cac") == pytest.approx(total / 2)
    assert value(teams, "cac", "South") == pytest.approx(250 + cai + 5000)
    assert math.isnan(value(teams, "cac", "West"))  # no new customer: undefined
    assert math.isnan(value(sellers, "cac", "002"))


# ------------------------------------------------------------ activity KPIs
def test_activity_counts_with_boundaries(org: pd.DataFrame, teams: pd.DataFrame) -> None:
    # meetings: A2 (31 Mar 23:59), A5 ("Meeting"); A3 on 1 April is out
    assert value(org, "meetings_booked") == 2
    assert value(teams, "meetings_booked", "South") == 1
    assert value(org, "quotes_sent") == 2  # A4, A8
    assert value(org, "calls_made") == 1  # A1 (1 Mar 00:00); A7 is 28 Feb 23:59


# ------------------------------------------------------------- revenue KPIs
def test_revenue_with_credit_notes_and_unattributed(
    org: pd.DataFrame, teams: pd.DataFrame, customers: pd.DataFrame
) -> None:
    # March: 1500 - 300 (credit note) + 800 (31 Mar 23:59, no seller) + 1200 = 3200; I8 is April
    assert value(org, "revenue") == 3200
    assert value(teams, "revenue", "North") == 1200
    assert value(teams, "revenue", "South") == 1200
    assert value(teams, "revenue", UNATTRIBUTED) == 800  # not in any team
    assert value(customers, "revenue", "C1") == 1200
    assert value(customers, "revenue", "C2") == 800  # no seller, still the customer's


def test_revenue_growth(org: pd.DataFrame, teams: pd.DataFrame) -> None:
    # MoM: 3200 / Feb 2000 - 1; YoY: 3200 / Mar 2025 1500 - 1
    assert value(org, "revenue_growth_mom") == pytest.approx(0.6)
    assert value(org, "revenue_growth_yoy") == pytest.approx(3200 / 1500 - 1)
    # YTD: (700 + 2000 + 3200) / (400 + 1000 + 500) - 1
    assert value(org, "revenue_growth_ytd") == pytest.approx(5900 / 1900 - 1)
    assert value(teams, "revenue_growth_mom", "North") == pytest.approx(-0.4)
    # South had nothing in February: new, NaN (never inf)
    assert math.isnan(value(teams, "revenue_growth_mom", "South"))
    assert note(teams, "revenue_growth_mom", "South").startswith("new")
    # Dee's January 2025 invoice (400) counts for South, her current team
    assert value(teams, "revenue_growth_ytd", "South") == pytest.approx((700 + 1200) / 400 - 1)


def test_seller_who_changed_team_counts_for_current_team(crm: CrmData) -> None:
    df = compute_kpis(crm, "2025-01", by="team", kpis=["revenue"])
    assert value(df, "revenue", "South") == 400
    assert value(df, "revenue", "North") == 0


def test_growth_to_date_compares_the_same_days(crm: CrmData) -> None:
    # as of 15 March: March to date = 1500 (I4, 5 Mar) + 1200 (I7, 15 Mar) = 2700;
    # February to the 15th = 2000 (I3, 10 Feb); March 2025 to the 15th = 1000 (I1)
    df = compute_kpis(crm, "current-month", as_of="2026-03-15")
    assert df["period"].iloc[0] == "2026-03"
    assert value(df, "revenue") == 2700
    assert value(df, "revenue_growth_mom") == pytest.approx(2700 / 2000 - 1)
    assert value(df, "revenue_growth_yoy") == pytest.approx(2700 / 1000 - 1)
    # YTD to 15 March: 700 + 2000 + 2700 = 5400 vs 400 + 1000 = 1400
    assert value(df, "revenue_growth_ytd") == pytest.approx(5400 / 1400 - 1)
    assert df.attrs["intervals"]["2026-03"][1] == pd.Timestamp("2026-03-16")


def test_clv(crm: CrmData) -> None:
    df = compute_kpis(crm, "2026-03", kpis=["clv"])
    # window Apr 2025..Mar 2026; customer-months: Jan C3 700, Feb C1 2000, Mar C1 1200,
    # C2 800, C4 1200 -> 5900 / 5; churn: Jan->Feb 1/1, Feb->Mar 0/1 -> 0.5 -> lifetime 2
    assert value(df, "clv") == pytest.approx(5900 / 5 * 2)


def _clv_data(margin: float = 1.0) -> CrmData:
    """X pays 100 every month Apr 2025..Mar 2026 (and 1000 in Mar 2025, outside the
    window); Y pays 200 Apr..Sep 2025; Z pays 50 Jan..Mar 2026. X, Y sold by S1, Z by S2."""
    rows = [("X", "S1", "2025-03-10", 1000.0)]
    rows += [
        ("X", "S1", f"{d:%Y-%m}-10", 100.0)
        for d in pd.date_range("2025-04-01", "2026-03-01", freq="MS")
    ]
    rows += [
        ("Y", "S1", f"{d:%Y-%m}-10", 200.0)
        for d in pd.date_range("2025-04-01", "2025-09-01", freq="MS")
    ]
    rows += [
        ("Z", "S2", f"{d:%Y-%m}-10", 50.0)
        for d in pd.date_range("2026-01-01", "2026-03-01", freq="MS")
    ]
    rev = pd.DataFrame(rows, columns=["company_id", "seller_id", "date", "amount"])
    rev.insert(0, "invoice_id", [f"I{i}" for i in range(len(rev))])
    rev["date"] = pd.to_datetime(rev["date"]).astype("datetime64[ns]")
    for c in ("invoice_id", "company_id", "seller_id"):
        rev[c] = rev[c].astype("str")
    return CrmData(
        {
            "sellers": _sellers([("S1", "A"), ("S2", "B")]),
            "deals": _empty_deals(),
            "revenue": rev,
        },
        settings={"gross_margin": margin},
    )


def _sellers(rows: list[tuple[str, str]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["seller_id", "team"]).astype("str")
    df.insert(1, "name", df["seller_id"])
    df["monthly_cost"] = np.nan
    df["active_from"] = pd.NaT
    df["active_to"] = pd.NaT
    df[["active_from", "active_to"]] = df[["active_from", "active_to"]].astype("datetime64[ns]")
    return df


def _empty_deals() -> pd.DataFrame:
    cols = SCHEMAS[Table.DEALS].columns
    out = {}
    for c in cols:
        kind = {"date": "datetime64[ns]", "float": "float64"}.get(c.kind, "str")
        out[c.name] = pd.Series([], dtype=kind)
    return pd.DataFrame(out)


def test_clv_churn_lifetime_margin_and_cap() -> None:
    data = _clv_data(margin=0.5)
    org = compute_kpis(data, "2026-03", kpis=["clv"])
    # the data's last record is 10 March 2026: March is partial, cut there (docs/KPIS.md), so
    # its Feb->Mar pair cannot tell who churned and is dropped (clv docstring).
    # revenue 1200 + 1200 + 150 = 2550 over 12 + 6 + 3 = 21 customer-months;
    # churn: only Sep->Oct 2025 (Y leaves, 1 of 2) -> mean of 10 monthly rates = 0.5 / 10
    assert value(org, "clv") == pytest.approx(2550 / 21 * 0.5 * 20)
    by = compute_kpis(data, "2026-03", by="seller", kpis=["clv"])
    assert value(by, "clv", "S1") == pytest.approx(2400 / 18 * 0.5 * 20)
    # a record on 31 March (a zero invoice changes no revenue) completes March: 11 pairs
    rev = data.tables["revenue"]
    last = rev.iloc[[-1]].assign(invoice_id="I-last", date=pd.Timestamp("2026-03-31"), amount=0.0)
    full = data.replace(tables={"revenue": pd.concat([rev, last], ignore_index=True)})
    assert value(compute_kpis(full, "2026-03", kpis=["clv"]), "clv") == pytest.approx(
        2550 / 21 * 0.5 * 22
    )
    by = compute_kpis(full, "2026-03", by="seller", kpis=["clv"])
    assert value(by, "clv", "S1") == pytest.approx(2400 / 18 * 0.5 * 22)
    # S2: Z never churned in the window -> lifetime capped at 120 months
    assert value(by, "clv", "S2") == pytest.approx(50 * 0.5 * 120)
    assert note(by, "clv", "S2") == "lifetime capped at 120 months"


# ------------------------------------------------------------- availability
def test_missing_table_makes_kpi_unavailable_not_zero() -> None:
    data = read_fixture(drop=("leads", "costs"))
    df = compute_kpis(data, "2026-03", kpis=["new_leads", "sql", "cac", "deals_won"])
    assert math.isnan(value(df, "new_leads"))
    assert note(df, "new_leads") == "unavailable: needs the 'leads' table"
    assert note(df, "cac") == "unavailable: needs the 'costs' table"
    assert value(df, "deals_won") == 3


def test_empty_probability_column_makes_weighted_pipeline_unavailable(crm: CrmData) -> None:
    deals = crm.deals.assign(probability=np.nan)
    data = CrmData({**crm.tables, "deals": deals})
    df = compute_kpis(data, "2026-03", kpis=["weighted_pipeline", "pipeline_value"])
    assert math.isnan(value(df, "weighted_pipeline"))
    assert "probability" in note(df, "weighted_pipeline")
    assert value(df, "pipeline_value") == 17500


def test_future_period_is_nan_with_a_note_not_zero(crm: CrmData) -> None:
    df = compute_kpis(crm, "2026-04", kpis=["deals_won", "hit_rate"], as_of="2026-03-31")
    assert math.isnan(value(df, "deals_won"))  # April starts after as_of: unknown, not 0
    assert math.isnan(value(df, "hit_rate"))
    assert note(df, "deals_won") == "in the future: after as_of 2026-03-31"
    assert not df["complete"].any()


def test_period_after_the_data_is_nan_and_the_last_one_partial(crm: CrmData) -> None:
    # the fixture's last dated record is L7 qualified on 2 April 2026 (D7 closed, L4 created,
    # A3, a cost row and I8 are on 1 April): qualified_at is an event date (sql counts it)
    df = compute_kpis(crm, ["2026-03", "2026-04", "2026-05"], kpis=["deals_won", "new_leads"])
    assert [value(df, "deals_won", period=p) for p in ("2026-03", "2026-04")] == [3, 1]
    assert math.isnan(value(df, "deals_won", period="2026-05"))
    assert note(df[df["period"] == "2026-05"], "new_leads") == (
        "after the data: last record 2026-04-02"
    )
    assert df.attrs["intervals"]["2026-04"][1] == pd.Timestamp("2026-04-03")  # cut there
    complete = df.drop_duplicates("period").set_index("period")["complete"]
    assert complete.to_dict() == {"2026-03": True, "2026-04": False, "2026-05": False}
    assert df.attrs["partial"] == ["2026-04"]
    # as_of after the data: the data's end still rules
    late = compute_kpis(crm, "2026-05", kpis=["deals_won"], as_of="2026-06-15")
    assert math.isnan(value(late, "deals_won"))
    # as_of = the last day of a month: that month is complete
    march = compute_kpis(crm, "2026-03", kpis=["deals_won"], as_of="2026-03-31")
    assert march["complete"].all() and value(march, "deals_won") == 3


def test_partial_period_counts_costs_only_up_to_the_data_end(crm: CrmData) -> None:
    """Seller costs accrue pro rata by day: a period holding the data's end stops there too."""
    # the data ends on 2 April (L7 qualified): April is cut at 3 April 00:00, two days of 30.
    # costs: the 999 row of 1 April (no team) + 001 3000, 002 6200, 004 5000 per month for
    # 2/30 of April (003 left on 15 March, 005 starts in June)
    north, south = (3000 + 6200) * 2 / 30, 5000 * 2 / 30
    april = compute_kpis(crm, ["2026-04", "2026-05", "2026-06"], kpis=["costs", "cac"])
    assert value(april, "costs", period="2026-04") == pytest.approx(999 + north + south)
    # C5's first won deal D7 closed on 1 April (004, South): one new customer
    assert value(april, "cac", period="2026-04") == pytest.approx(999 + north + south)
    assert april[april["period"] != "2026-04"]["value"].isna().all()
    # the partial quarter (and year) equals the sum of its non-NaN months, by team too
    q2 = compute_kpis(crm, ["2026-Q2", 2026], by="team", kpis=["costs"]).set_index(
        ["period", "scope_id"]
    )["value"]
    assert q2["2026-Q2"].to_dict() == pytest.approx({"North": north, "South": south, "West": 0.0})
    months = compute_kpis(crm, [f"2026-{m:02d}" for m in range(1, 13)], by="team", kpis=["costs"])
    assert q2["2026"].to_dict() == pytest.approx(
        months.groupby("scope_id")["value"].sum(min_count=1).to_dict()
    )
    s = kpi_series(crm, "costs", grain="month", start="2026-04", end="2026-06")
    assert s.iloc[0] == pytest.approx(999 + north + south) and s.iloc[1:].isna().all()
    # as_of later than the data changes nothing; as_of 1 April cuts after one day
    late = compute_kpis(crm, "2026-Q2", kpis=["costs"], as_of="2026-06-30")
    assert value(late, "costs") == pytest.approx(999 + north + south)
    one_day = compute_kpis(crm, "2026-Q2", kpis=["costs"], as_of="2026-04-01")
    assert value(one_day, "costs") == pytest.approx(999 + (north + south) / 2)
    # the development curve of April stops growing on the data's last day, like the period
    curve = cumulative_curve(crm, "costs", "2026-04", as_of="2026-04-10")
    assert curve.iloc[0] == pytest.approx(999 + (north + south) / 2)
    assert curve.iloc[1:10].tolist() == pytest.approx([999 + north + south] * 9)
    assert curve.iloc[10:].isna().all()  # after as_of


def test_relative_names_work_in_every_period_argument(crm: CrmData) -> None:
    # as_of 31 March 2026: previous-month is February, ytd is 1 January - 31 March
    got = compute_kpis(crm, ["previous-month", "ytd"], kpis=["revenue"], as_of="2026-03-31")
    assert got["period"].tolist() == ["2026-02", "2026-YTD-03-31"]
    assert got["value"].tolist() == [2000, 700 + 2000 + 3200]
    g = growth_table(crm, ["previous-month", "current-month"], as_of="2026-03-31")
    assert g["period"].tolist() == ["2026-02", "2026-03"]
    assert g["revenue"].tolist() == [2000, 3200]
    s = kpi_series(crm, "revenue", start="ytd", end="current-month", as_of="2026-03-31")
    assert s.tolist() == [700, 2000, 3200]


def test_weekly_series_after_the_data_is_nan_and_partial_is_flagged(crm: CrmData) -> None:
    s = kpi_series(crm, "deals_won", grain="week", start="2026-03-23", end="2026-04-20")
    # W14 (30 March - 5 April) holds the last record (1 April): partial; later weeks unknown
    assert s.iloc[:2].tolist() == [0, 2]
    assert s.iloc[2:].isna().all()
    assert s.attrs["partial"] == "2026-W14"
    assert s.attrs["partial_start"] == pd.Timestamp("2026-03-30")
    done = kpi_series(crm, "deals_won", grain="month", start="2026-01", end="2026-03")
    assert done.attrs["partial"] is None and done.tolist() == [0, 1, 3]


def test_relative_period_needs_as_of(crm: CrmData) -> None:
    with pytest.raises(PeriodError, match="needs an as-of date"):
        compute_kpis(crm, "previous-month")


# ------------------------------------------------------------- time series
def test_kpi_series_is_regular_and_gap_free(crm: CrmData) -> None:
    s = kpi_series(crm, "revenue", grain="month", start="2025-01", end="2026-04")
    assert s.index.freqstr == "MS"
    assert len(s) == 16
    assert s["2025-02-01"] == 0  # nothing happened: 0, not missing
    assert s["2026-03-01"] == 3200
    assert s.sum() == pytest.approx(400 + 1500 + 700 + 2000 + 3200 + 900)
    team = kpi_series(
        crm, "revenue", scope="team", scope_id="North", start="2026-01", end="2026-03"
    )
    assert team.tolist() == [0, 2000, 1200]
    rate = kpi_series(crm, "hit_rate", grain="quarter", start="2026-01-01", end="2026-06-30")
    assert rate.index.freqstr.startswith("QS")
    # Q1: won D4, D1, D2, D5 / closed + D3, D8 -> 4 / 6; Q2: D7 won -> 1/1
    assert rate.tolist() == pytest.approx([4 / 6, 1.0])


def test_kpi_series_ends_at_as_of_and_cuts_to_date(crm: CrmData) -> None:
    s = kpi_series(crm, "meetings_booked", grain="week", start="2026-03-23", as_of="2026-03-31")
    assert s.index.freqstr == "W-MON"
    assert s.index[-1] == pd.Timestamp("2026-03-30")  # week of as_of is the last
    assert s.iloc[-1] == 1  # A2 on 31 March 23:59
    with pytest.raises(KpiError, match="Unknown seller"):
        kpi_series(crm, "revenue", scope="seller", scope_id="999")


def test_cumulative_curve(crm: CrmData) -> None:
    c = cumulative_curve(crm, "revenue", "2026-03", as_of="2026-03-20")
    assert len(c) == 31 and c.index.freqstr == "D"
    assert c["2026-03-04"] == 0
    assert c["2026-03-05"] == 1500
    assert c["2026-03-15"] == 2700
    assert c["2026-03-20"] == 2400  # credit note -300
    assert c["2026-03-21":].isna().all()  # after as_of
    full = cumulative_curve(crm, "hit_rate", "2026-03")
    assert full["2026-03-05"] == 1.0  # D5 won
    assert full["2026-03-20"] == pytest.approx(2 / 3)  # + D1 won, D3 lost
    assert full.iloc[-1] == pytest.approx(3 / 5)


def test_daily_matrix(crm: CrmData) -> None:
    m = daily_matrix(crm, "revenue", "team", "2026-03-01", "2026-03-31")
    assert m.shape == (31, 4)
    assert m["North"].sum() == 1200
    assert m.loc["2026-03-31", UNATTRIBUTED] == 800


# ------------------------------------------------------------------- finance
def test_growth_table_new_scopes_and_like_for_like(crm: CrmData) -> None:
    g = growth_table(crm, "2026-03", by="team").set_index("scope_id")
    assert g.loc["North", "revenue"] == 1200
    assert g.loc["North", "revenue_prev"] == 2000
    assert g.loc["North", "growth_mom"] == pytest.approx(-0.4)
    assert g.loc["North", "growth_yoy"] == pytest.approx(0.2)
    assert g.loc["North", "revenue_ytd_ly"] == 1000
    assert bool(g.loc["North", "comparable"]) and not bool(g.loc["North", "new"])
    # South: no revenue in March 2025 -> YoY NaN (not inf), YTD LY 400 (Dee, January 2025)
    assert math.isnan(g.loc["South", "growth_yoy"])
    assert g.loc["South", "growth_ytd"] == pytest.approx(1900 / 400 - 1)
    assert not bool(g.loc["South", "comparable"])
    # West never sold: flagged new, growth NaN
    assert bool(g.loc["West", "new"]) and math.isnan(g.loc["West", "growth_ytd"])
    o = growth_table(crm, "2026-03", as_of="2026-03-15").iloc[0]
    assert o["revenue"] == 2700 and o["revenue_ly"] == 1000 and o["revenue_ytd_ly"] == 1400


# ----------------------------------------------------------------------- CLI
def _cli(args: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli_kpis.register(parser.add_subparsers())
    ns = parser.parse_args(["kpis", *args])
    out = io.StringIO()
    return ns.func(ns, out), out.getvalue()


def test_cli_json_has_exactly_the_spec_record_shape(
    crm: CrmData, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kpireport.data.load as load_mod

    monkeypatch.setattr(load_mod, "load", lambda source, **kw: crm)
    rc, text = _cli(["--source", "x", "--period", "2026-03", "--kpi", "revenue", "--kpi", "hit_rate",
                     "--as-of", "2026-04-30", "--format", "json"])  # fmt: skip
    assert rc == 0
    records = json.loads(text)
    assert records[0] == {"kpi": "revenue", "scope": "organisation", "scope_id": None,
                          "period": "2026-03", "value": 3200.0}  # fmt: skip
    rc, text = _cli(["--source", "x", "--period", "2026-03", "--by", "team", "--kpi", "hit_rate",
                     "--as-of", "2026-04-30", "--format", "json"])  # fmt: skip
    west = [r for r in json.loads(text) if r["scope_id"] == "West"][0]
    assert set(west) == {"kpi", "scope", "scope_id", "period", "value"}
    assert west["value"] is None  # NaN -> null


def test_cli_repeated_period_computes_several_periods(
    crm: CrmData, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kpireport.data.load as load_mod

    monkeypatch.setattr(load_mod, "load", lambda source, **kw: crm)
    rc, text = _cli(["--source", "x", "--period", "2026-02", "--period", "2026-03", "--kpi",
                     "revenue", "--as-of", "2026-04-30", "--format", "json"])  # fmt: skip
    assert rc == 0
    got = {r["period"]: r["value"] for r in json.loads(text)}
    feb = compute_kpis(crm, "2026-02", kpis=["revenue"], as_of="2026-04-30")["value"].iloc[0]
    assert got == {"2026-02": feb, "2026-03": 3200.0}


def test_cli_csv_neutralises_formulas(crm: CrmData, monkeypatch: pytest.MonkeyPatch) -> None:
    import kpireport.data.load as load_mod

    sellers = crm.sellers.assign(team=crm.sellers["team"].replace({"North": "=HYPERLINK(1)"}))
    evil = CrmData({**crm.tables, "sellers": sellers})
    monkeypatch.setattr(load_mod, "load", lambda source, **kw: evil)
    rc, text = _cli(["--source", "x", "--period", "2026-03", "--by", "team", "--kpi", "revenue",
                     "--as-of", "2026-04-30", "--format", "csv"])  # fmt: skip
    assert rc == 0
    assert "'=HYPERLINK(1)" in text
    assert ",-0.4" not in text  # numbers are untouched (no growth here, sanity)


def test_cli_list_and_missing_arguments() -> None:
    rc, text = _cli(["--list"])
    assert rc == 0 and "hit_rate — Hit rate" in text and "won + lost" in text
    with pytest.raises(KpiError, match="needs --source and --period"):
        _cli([])


def test_prepared_cache_does_not_keep_datasets_alive() -> None:
    import gc

    from kpireport.kpis import engine

    data = read_fixture()
    compute_kpis(data, "2026-03", kpis=["revenue"])
    key = id(data)
    assert key in engine._PREPARED
    del data
    gc.collect()
    assert key not in engine._PREPARED


# ------------------------------------------------------- lead-source breakdown
def _by_source(df: pd.DataFrame, kpi: str, scope_id: str | None = None) -> dict[str, float]:
    rows = df[df["kpi"] == kpi]
    rows = rows[rows["scope_id"].isna()] if scope_id is None else rows[rows["scope_id"] == scope_id]
    return dict(zip(rows["source"], rows["value"], strict=True))


def test_lead_kpis_by_source_for_the_organisation(crm: CrmData) -> None:
    df = compute_kpis(crm, "2026-03", breakdown="source", as_of="2026-04-30")
    assert list(df.columns) == [
        *KPI_COLUMNS,
        "source",
        "unit",
        "note",
        "name",
        "period_start",
        "complete",
    ]
    assert list(pd.unique(df["kpi"])) == ["new_leads", "sql", "lead_conversion"]
    # March leads: L2 event, L3 web (31 Mar 23:59), L5 referral, L7 web; L6 cold call is 2025
    assert _by_source(df, "new_leads") == {"cold call": 0, "event": 1, "referral": 1, "web": 2}
    # qualified in March: L1 web (1 Mar 00:00), L2 event (31 Mar 23:59), L5 referral; L7 is April
    assert _by_source(df, "sql") == {"cold call": 0, "event": 1, "referral": 1, "web": 1}
    conv = _by_source(df, "lead_conversion")
    assert conv["event"] == 1.0  # L2 -> D2 won
    assert conv["web"] == 0.0 and conv["referral"] == 0.0  # D8 (C6) is lost and has no lead_id
    assert math.isnan(conv["cold call"])  # no cold-call lead in March: undefined, not 0
    assert set(df.loc[df["kpi"] == "lead_conversion", "note"]) == {
        "immature cohort: younger than the typical sales cycle (41 days)"
    }


def test_source_breakdown_by_seller_over_several_periods(crm: CrmData) -> None:
    df = compute_kpis(
        crm, ["2026-03", "2026-04"], by="seller", breakdown="source", as_of="2026-04-30"
    )
    march = df[df["period"] == "2026-03"]
    # 005 (Eve) starts in June and has no lead: no rows; 003 (Cai) was active until 15 March
    assert sorted(pd.unique(march["scope_id"])) == ["001", "002", "003", "004"]
    assert _by_source(march, "new_leads", "001") == {
        "cold call": 0, "event": 1, "referral": 0, "web": 0
    }  # fmt: skip
    assert _by_source(march, "new_leads", "002")["web"] == 1  # L3
    assert _by_source(march, "new_leads", "003") == dict.fromkeys(
        ["cold call", "event", "referral", "web"], 0.0
    )
    assert _by_source(march, "sql", "001") == {"cold call": 0, "event": 1, "referral": 0, "web": 1}
    conv = _by_source(march, "lead_conversion", "001")
    assert conv["event"] == 1.0 and math.isnan(conv["web"])  # L1 was created in February
    april = df[df["period"] == "2026-04"]
    assert _by_source(april, "new_leads", "002")["web"] == 1  # L4, 1 April 00:00
    assert _by_source(april, "sql", "004")["web"] == 1  # L7 qualified 2 April
    # 003 left on 15 March and has no April value: 3 KPIs x (4 + 3) sellers x 4 sources
    assert sorted(pd.unique(april["scope_id"])) == ["001", "002", "004"]
    assert len(df) == 3 * (4 + 3) * 4


def test_leads_without_source_go_to_the_unknown_bucket(crm: CrmData) -> None:
    leads = crm.leads.copy()
    leads["source"] = leads["source"].astype(object)
    leads.loc[leads["lead_id"] == "L5", "source"] = None
    leads.loc[leads["lead_id"] == "L7", "source"] = "  web "  # stripped
    leads.loc[leads["lead_id"] == "L6", "source"] = ""  # blank = unknown
    leads["source"] = leads["source"].astype("str")
    data = CrmData({**crm.tables, "leads": leads})
    org = compute_kpis(data, "2026-03", kpis="new_leads", breakdown="source", as_of="2026-04-30")
    # sources sorted, then (unknown); no referral left (L5 was the only one)
    assert list(org["source"]) == ["event", "web", "(unknown)"]
    assert list(org["value"]) == [1, 2, 1]
    teams = compute_kpis(
        data, "2026-03", by="team", kpis=["new_leads"], breakdown="source",
        as_of="2026-04-30", unattributed=True,
    )  # fmt: skip
    assert _by_source(teams, "new_leads", "North") == {"event": 1, "web": 1, "(unknown)": 0}
    assert _by_source(teams, "new_leads", "South") == {"event": 0, "web": 1, "(unknown)": 0}
    assert _by_source(teams, "new_leads", "West") == {"event": 0, "web": 0, "(unknown)": 0}
    assert _by_source(teams, "new_leads", UNATTRIBUTED) == {"event": 0, "web": 0, "(unknown)": 1}


def test_source_breakdown_refuses_non_lead_kpis_and_unknown_breakdowns(crm: CrmData) -> None:
    with pytest.raises(KpiError) as err:
        compute_kpis(crm, "2026-03", kpis=["new_leads", "revenue"], breakdown="source")
    assert "'revenue'" in str(err.value)
    assert "new_leads, sql, lead_conversion" in str(err.value.hint)
    with pytest.raises(KpiError, match="Unknown breakdown 'industry'"):
        compute_kpis(crm, "2026-03", breakdown="industry")


def test_source_breakdown_without_leads_table_is_unavailable() -> None:
    data = read_fixture(drop=("leads",))
    df = compute_kpis(data, "2026-03", kpis=["sql"], breakdown="source")
    assert list(df["source"]) == ["(unknown)"]
    assert math.isnan(df["value"].iloc[0])
    assert df["note"].iloc[0] == "unavailable: needs the 'leads' table"


def test_pivot_of_a_source_breakdown(crm: CrmData) -> None:
    df = compute_kpis(crm, "2026-03", by="team", breakdown="source", as_of="2026-04-30")
    wide = pivot_kpis(df)
    assert wide.index.names == ["scope_id", "source"]
    assert wide.loc[("North", "web"), "new_leads"] == 1
    assert wide.loc[("North", "event"), "lead_conversion"] == 1.0


def test_cli_breakdown_source(crm: CrmData, monkeypatch: pytest.MonkeyPatch) -> None:
    import kpireport.data.load as load_mod
    from kpireport.kpis.compute import BREAKDOWNS

    assert cli_kpis.BREAKDOWNS == BREAKDOWNS
    monkeypatch.setattr(load_mod, "load", lambda source, **kw: crm)
    base = [
        "--source",
        "x",
        "--period",
        "2026-03",
        "--as-of",
        "2026-04-30",
        "--breakdown",
        "source",
    ]
    rc, text = _cli([*base, "--kpi", "new_leads", "--format", "json"])
    assert rc == 0
    recs = json.loads(text)
    assert recs[3] == {"kpi": "new_leads", "scope": "organisation", "scope_id": None,
                       "period": "2026-03", "value": 2.0, "source": "web"}  # fmt: skip
    assert [r["source"] for r in recs] == ["cold call", "event", "referral", "web"]
    rc, text = _cli([*base, "--by", "team", "--format", "csv"])
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame.columns) == [*KPI_COLUMNS, "source", "unit", "note"]
    assert len(frame) == 3 * 3 * 4  # 3 lead KPIs x 3 teams x 4 sources
    rc, text = _cli([*base, "--by", "team", "--kpi", "sql", "--format", "table"])
    header = text.splitlines()[0].split()
    assert header[:3] == ["kpi", "scope_id", "source"]
    with pytest.raises(KpiError, match="Cannot break down 'revenue'"):
        _cli([*base, "--kpi", "revenue"])


# ------------------------------------------------------------------ issue 14.7
def test_every_kpi_has_a_category() -> None:
    from kpireport.kpis.registry import CATEGORIES

    assert {k.category for k in REGISTRY.values()} == set(CATEGORIES)
    assert get_kpi("meetings_booked").category == "activity"
    assert get_kpi("won_value").category == "result"
    assert get_kpi("prospect_hit_rate").category == "efficiency"
    assert list_kpis().loc["clv", "category"] == "efficiency"


def test_prospect_hit_rate(crm: CrmData) -> None:
    # March: won D1 (001), D2 (001), D5 (003); activities on C1, C2 (001), C5 (002),
    # C4 (003 and 004); A7 (002, C5) is in February
    v = compute_kpis(crm, "2026-03", kpis=["prospect_hit_rate"])
    assert v["value"].tolist() == [3 / 4]
    t = compute_kpis(crm, "2026-03", by="team", kpis=["prospect_hit_rate"]).set_index("scope_id")
    # South worked on C4 with two sellers: one prospect
    assert t.loc["North", "value"] == pytest.approx(2 / 3) and t.loc["South", "value"] == 1.0
    assert math.isnan(t.loc["West", "value"])  # no prospect: undefined, not 0
    s = compute_kpis(crm, "2026-03", by="seller", kpis=["prospect_hit_rate"]).set_index("scope_id")
    assert s["value"].to_dict() == {"001": 1.0, "002": 0.0, "003": 1.0, "004": 0.0}


def test_prospect_hit_rate_without_deals_is_undefined_not_an_error(crm: CrmData) -> None:
    """Activities but an empty deals table (found by the shuffling property test)."""
    empty = crm.replace(tables={"deals": crm.tables["deals"].iloc[0:0]})
    v = compute_kpis(empty, "2026-03", kpis=["prospect_hit_rate"])
    assert v["value"].tolist() == [0.0]  # 4 prospects worked, no deal won


def test_clv_drivers(crm: CrmData) -> None:
    # March 2026 net revenue: C1 1500 − 300 (credit note), C2 800 (no seller), C4 1200 (003)
    org = compute_kpis(
        crm, "2026-03", kpis=["products_per_customer", "customer_tenure_months"], as_of="2026-04-15"
    ).set_index("kpi")["value"]
    assert org["products_per_customer"] == 1.0  # the credit note is no product bought
    # first invoices: C1 2025-03-10, C2 2025-03-20, C4 2025-01-20; to 1 April 2026:
    # 387, 377 and 436 days
    assert org["customer_tenure_months"] == pytest.approx((387 + 377 + 436) / 3 / (365.25 / 12))
    team = compute_kpis(crm, "2026-03", by="team", kpis=["customer_tenure_months"])
    assert team.set_index("scope_id").loc["South", "value"] == pytest.approx(436 / (365.25 / 12))
    extra = pd.DataFrame(
        {"invoice_id": ["I11"], "company_id": ["C1"], "date": [pd.Timestamp("2026-03-25")],
         "amount": [200.0], "product": ["service"], "seller_id": ["001"], "deal_id": [pd.NA],
         "currency": ["EUR"]}
    ).astype(crm.tables["revenue"].dtypes.to_dict())  # fmt: skip
    more = CrmData({**crm.tables, "revenue": pd.concat([crm.tables["revenue"], extra])})
    v = compute_kpis(more, "2026-03", kpis=["products_per_customer"], as_of="2026-04-15")
    assert v["value"].tolist() == [pytest.approx(4 / 3)]  # C1: licence and service


def test_docs_kpi_catalogue_is_the_registry():
    """docs/KPIS.md lists every registry KPI as declared (regenerate with
    ``python -m kpireport.kpis.catalogue docs/KPIS.md``)."""
    from kpireport.kpis.catalogue import render_page

    page = (Path(__file__).parent.parent / "docs" / "KPIS.md").read_text(encoding="utf-8")
    assert render_page(page) == page
    assert "`prospect_hit_rate`" in page and "| efficiency |" in page


def test_forecast_warns_on_a_partial_last_period(crm: CrmData) -> None:
    import warnings

    from kpireport import forecast

    s = kpi_series(crm, "revenue", grain="month", start="2025-01", end="2026-04")
    assert s.attrs["partial"] == "2026-04"  # the data end on 1 April
    with pytest.warns(UserWarning, match=r"last period of the series \(2026-04\) is partial"):
        forecast(s, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forecast(s.iloc[:-1], 2)  # the complete months only: no warning


def test_period_arguments_accept_pandas_periods_dates_and_int_years(crm: CrmData) -> None:
    import datetime as dt

    df = compute_kpis(
        crm,
        [pd.Period("2026-03", "M"), dt.date(2026, 3, 10), pd.Timestamp("2026-03-31 18:00"), 2025],
        kpis=["deals_won"],
    )
    got = df.set_index("period")["value"].to_dict()
    # March: D1 (10th), D5 (5th), D2 (31st); 10 March: D1; 31 March: D2; 2025: D9
    assert got == {"2026-03": 3, "2026-03-10": 1, "2026-03-31": 1, "2025": 1}
    s = kpi_series(crm, "revenue", start=pd.Period("2026-01", "M"), end=dt.date(2026, 3, 2))
    assert s.tolist() == [700, 2000, 3200]  # I9; I3; I4 + I5 + I6 + I7 = 1500 - 300 + 800 + 1200
    # an end that is a longer period ends with its last month; relative names use as_of
    assert len(kpi_series(crm, "revenue", start=2025, end="2025-Q2")) == 6
    rel = kpi_series(
        crm, "revenue", start="previous-month", end="current-month", as_of="2026-03-31"
    )
    assert rel.tolist() == [2000, 3200]


def test_growth_table_returns_every_period_given(crm: CrmData) -> None:
    g = growth_table(crm, ["2026-02", pd.Period("2026-03", "M")]).set_index("period")
    assert g["revenue"].to_dict() == {"2026-02": 2000, "2026-03": 3200}
    assert g.loc["2026-02", "revenue_prev"] == 700  # I9, January
    assert g.loc["2026-02", "growth_mom"] == pytest.approx(2000 / 700 - 1)
    assert g.loc["2026-03", "growth_mom"] == pytest.approx(3200 / 2000 - 1)
    import datetime as dt

    g = growth_table(crm, [2026, dt.date(2026, 3, 31), pd.Timestamp("2026-03-05 09:00")])
    g = g.set_index("period")
    # 2026 to the data's end (2 April): I9 700 + I3 2000 + March 3200 + I8 900; 2025 over the
    # same days (1 January - 2 April): I10 400 + I1 1000 + I2 500
    assert g.loc["2026", "revenue"] == 6800 and g.loc["2026", "revenue_prev"] == 1900
    assert g.loc["2026-03-31", "revenue"] == 800 and g.loc["2026-03-05", "revenue"] == 1500
    later = growth_table(crm, "2026-05").iloc[0]  # after the data (2 April): unknown, not 0
    assert math.isnan(later["revenue"]) and math.isnan(later["growth_mom"])


def test_invalid_scope_and_grain_list_the_valid_ones(crm: CrmData) -> None:
    with pytest.raises(KpiError, match="Valid scopes: organisation, team, seller, customer"):
        compute_kpis(crm, "2026-03", by="teams")
    with pytest.raises(KpiError, match="Valid scopes: organisation, team, seller, customer"):
        growth_table(crm, "2026-03", by="teams")
    with pytest.raises(PeriodError, match="Valid grains: day, week, month, quarter, year"):
        kpi_series(crm, "revenue", grain="months", start="2026-01", end="2026-03")
