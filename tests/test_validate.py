"""Tests for kpireport.data.validate and the `validate` / `demo-data` CLI: one tiny failing fixture per rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpireport.cli import main
from kpireport.data.validate import ValidationReport, validate
from kpireport.errors import Problem

BASIC = Path(__file__).parent / "data" / "sources" / "csv_basic"


def _tables(**over: dict) -> dict[str, pd.DataFrame]:
    """A small valid dataset; keyword arguments replace columns table by table."""
    t = {
        "sellers": {
            "seller_id": ["S1", "S2"],
            "name": ["Anna", "Björn"],
            "team": ["North", "South"],
            "active_from": ["2025-01-01", "2025-01-01"],
            "active_to": [None, None],
        },
        "companies": {"company_id": ["C1", "C2"], "org_number": ["556-1", "556-2"]},
        "leads": {
            "lead_id": ["L1"],
            "created_at": ["2026-01-02"],
            "company_id": ["C1"],
            "seller_id": ["S1"],
            "qualified_at": ["2026-01-03"],
        },
        "deals": {
            "deal_id": ["D1", "D2", "D3"],
            "seller_id": ["S1", "S2", "S1"],
            "created_at": ["2026-01-05", "2026-01-06", "2026-01-07"],
            "status": ["won", "lost", "open"],
            "value": [100.0, 50.0, 70.0],
            "company_id": ["C1", "C2", "C1"],
            "lead_id": ["L1", None, None],
            "probability": [1.0, 0.0, 0.5],
            "closed_at": ["2026-01-20", "2026-01-21", None],
            "expected_close_at": [None, None, "2026-12-01"],
        },
        "activities": {
            "activity_id": ["A1"],
            "seller_id": ["S1"],
            "type": ["meeting"],
            "occurred_at": ["2026-01-05"],
            "deal_id": ["D1"],
            "company_id": ["C1"],
        },
        "revenue": {
            "invoice_id": ["I1", "I2"],
            "company_id": ["C1", "C1"],
            "date": ["2026-02-01", "2026-02-10"],
            "amount": [100.0, -20.0],
            "deal_id": ["D1", "D1"],
            "seller_id": ["S1", "S1"],
        },
        "costs": {"date": ["2026-01-31"], "category": ["marketing"], "amount": [10.0]},
        "goals": {
            "kpi": ["won_value", "deals_won", "revenue"],
            "scope": ["organisation", "seller", "team"],
            "scope_id": [None, "S1", "North"],
            "period": ["2026-Q1", "2026-01", "2026"],
            "target": [1000, 3, 5000],
        },
    }
    for table, cols in over.items():
        if cols is None:
            t.pop(table)
        else:
            t[table] = {**t[table], **cols}
    return {k: pd.DataFrame(v) for k, v in t.items()}


def _one(
    report: ValidationReport, table: str, column: str | None, severity: str = "error"
) -> Problem:
    found = [
        p
        for p in (report.problems if severity == "error" else report.warnings)
        if p.table == table and p.column == column
    ]
    assert len(found) == 1, f"expected one {severity} for {table}.{column}, got:\n{report}"
    return found[0]


def test_valid_fixture_has_no_problems_or_warnings() -> None:
    report = validate(_tables(), as_of="2026-06-30")
    assert report.ok, str(report)
    assert report.problems == [] and report.warnings == []
    assert str(report) == "valid."


# --------------------------------------------------------------- one per rule
def test_missing_required_column() -> None:
    t = _tables()
    t["deals"] = t["deals"].drop(columns=["value"])
    p = _one(validate(t), "deals", "value")
    assert p.reason.startswith("required column is missing")


def test_missing_required_table() -> None:
    report = validate(_tables(sellers=None))
    assert any(
        p.table == "sellers" and "required table 'sellers' is missing" in p.reason
        for p in report.problems
    )


def test_empty_required_value() -> None:
    p = _one(validate(_tables(sellers={"team": ["North", None]})), "sellers", "team")
    assert (p.reason, tuple(p.rows), tuple(p.ids)) == ("required value is empty", (2,), ("S2",))


def test_unparsable_date_and_number() -> None:
    report = validate(
        _tables(
            deals={
                "created_at": ["2026-01-05", "soon", "2026-13-01"],
                "value": [100.0, "ten", 70.0],
            }
        )
    )
    d = _one(report, "deals", "created_at")
    assert tuple(d.rows) == (2, 3) and "'soon'" in d.reason
    v = _one(report, "deals", "value")
    assert tuple(v.rows) == (2,) and "cannot read 'ten' as a number" in v.reason


def test_duplicate_ids() -> None:
    p = _one(validate(_tables(deals={"deal_id": ["D1", "D2", "D1"]})), "deals", "deal_id")
    assert (p.reason, tuple(p.rows), p.count) == ("duplicate id", (1, 3), 2)


def test_unknown_deal_status() -> None:
    p = _one(validate(_tables(deals={"status": ["won", "pending", "open"]})), "deals", "status")
    assert tuple(p.rows) == (2,) and "unknown deal status 'pending'" in p.reason


def test_closed_deal_without_closed_at() -> None:
    p = _one(
        validate(_tables(deals={"closed_at": ["2026-01-20", None, None]})), "deals", "closed_at"
    )
    assert (p.reason, tuple(p.rows), tuple(p.ids)) == (
        "won or lost deal has no closed_at",
        (2,),
        ("D2",),
    )


def test_closed_before_created() -> None:
    p = _one(
        validate(_tables(deals={"closed_at": ["2026-01-04", "2026-01-21", None]})),
        "deals",
        "closed_at",
    )
    assert (p.reason, tuple(p.rows)) == ("closed_at is before created_at", (1,))


def test_same_day_close_is_fine_even_at_an_earlier_hour() -> None:
    report = validate(
        _tables(
            deals={
                "created_at": ["2026-01-05 15:00", "2026-01-06", "2026-01-07"],
                "closed_at": ["2026-01-05 09:00", "2026-01-21", None],
            }
        )
    )
    assert report.ok, str(report)


def test_probability_outside_0_1() -> None:
    p = _one(validate(_tables(deals={"probability": [1.0, 0.0, 50.0]})), "deals", "probability")
    assert tuple(p.rows) == (3,) and "outside 0..1" in p.reason and "percentage" in p.reason


def test_negative_deal_value_and_cost_but_credit_notes_allowed() -> None:
    report = validate(_tables(deals={"value": [100.0, -5.0, 70.0]}, costs={"amount": [-1.0]}))
    assert tuple(_one(report, "deals", "value").rows) == (2,)
    assert tuple(_one(report, "costs", "amount").rows) == (1,)
    assert not [p for p in report.problems if p.table == "revenue"]  # -20 credit note is fine


@pytest.mark.parametrize(
    ("table", "column", "values", "bad_row"),
    [
        ("deals", "seller_id", ["S1", "S9", "S1"], 2),
        ("leads", "seller_id", ["S9"], 1),
        ("activities", "seller_id", ["S9"], 1),
        ("revenue", "seller_id", ["S1", "S9"], 2),
        ("deals", "company_id", ["C1", "C2", "C9"], 3),
        ("leads", "company_id", ["C9"], 1),
        ("activities", "company_id", ["C9"], 1),
        ("revenue", "company_id", ["C9", "C1"], 1),
        ("activities", "deal_id", ["D9"], 1),
        ("revenue", "deal_id", ["D1", "D9"], 2),
        ("deals", "lead_id", ["L1", "L9", None], 2),
    ],
)
def test_unknown_references(table: str, column: str, values: list, bad_row: int) -> None:
    p = _one(validate(_tables(**{table: {column: values}})), table, column)
    assert tuple(p.rows) == (bad_row,)
    assert (
        "unknown" in p.reason
        and "'" + [v for v in values if v and v.endswith("9")][0] + "'" in p.reason
    )


def test_company_references_skipped_without_companies_table() -> None:
    assert validate(_tables(companies=None, deals={"company_id": ["X", "Y", "Z"]})).ok


def test_unknown_goal_kpi_scope_scope_id_and_period() -> None:
    from kpireport.goals.check import validate as validate_with_goal_rules

    tables = _tables(
        goals={
            "kpi": ["won_value", "happiness", "revenue"],
            "scope": ["organisation", "seller", "region"],
            "scope_id": [None, "S9", "North"],
            "period": ["2026-13", "2026-01", "current-month"],
        }
    )
    # the data stage alone does not know the KPI names (a later stage's registry)
    assert not [p for p in validate(tables).problems if p.column == "kpi"]
    report = validate_with_goal_rules(
        _tables(
            goals={
                "kpi": ["won_value", "happiness", "revenue"],
                "scope": ["organisation", "seller", "region"],
                "scope_id": [None, "S9", "North"],
                "period": ["2026-13", "2026-01", "current-month"],
            }
        )
    )
    assert tuple(_one(report, "goals", "kpi").rows) == (2,)
    assert "'region'" in _one(report, "goals", "scope").reason
    sid = _one(report, "goals", "scope_id")
    assert tuple(sid.rows) == (2,) and "unknown seller 'S9'" in sid.reason
    periods = [p for p in report.problems if p.column == "period"]
    assert {tuple(p.rows) for p in periods} == {(1,), (3,)}


def test_cli_validate_runs_the_goal_table_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import kpireport

    shutil.copytree(BASIC, tmp_path / "src")
    goals = tmp_path / "src" / "goals.csv"
    goals.write_text(goals.read_text().replace("deals_won,seller", "deals_wonn,seller", 1))
    code = main(["validate", str(tmp_path / "src"), "--as-of", "2026-10-15"])
    out, err = capsys.readouterr()
    assert code == 1 and out.startswith("invalid: 1 problem,")
    assert "error: table 'goals', column 'kpi': unknown KPI 'deals_wonn' (1 row: 2" in err
    report = kpireport.validate(kpireport.load(tmp_path / "src", validate=False))
    assert [p.column for p in report.problems] == ["kpi"]


def test_team_goal_without_scope_id_and_unknown_team() -> None:
    report = validate(_tables(goals={"scope_id": [None, "S1", "West"]}))
    assert "unknown team 'West'" in _one(report, "goals", "scope_id").reason
    report = validate(_tables(goals={"scope_id": [None, None, "North"]}))
    assert "needs a scope_id" in _one(report, "goals", "scope_id").reason


def test_duplicate_goal() -> None:
    report = validate(
        _tables(
            goals={
                "kpi": ["revenue"] * 3,
                "scope": ["team"] * 3,
                "scope_id": ["North"] * 3,
                "period": ["2026", "2026", "2026-Q1"],
            }
        )
    )
    p = _one(report, "goals", None)
    assert tuple(p.rows) == (1, 2) and "duplicate goal" in p.reason


def test_mixed_currencies_without_rates() -> None:
    report = validate(_tables(deals={"currency": ["EUR", "SEK", "SEK"]}), currency="EUR")
    p = _one(report, "deals", "currency")
    assert tuple(p.rows) == (2, 3) and "need a 'rates' table" in p.reason
    rates = pd.DataFrame({"currency": ["SEK"], "rate": [0.09]})
    t = _tables(deals={"currency": ["EUR", "SEK", "SEK"]})
    assert validate({**t, "rates": rates}, currency="EUR").ok
    report = validate(
        {**t, "rates": pd.DataFrame({"currency": ["USD"], "rate": [0.9]})}, currency="EUR"
    )
    assert "no exchange rate for 'SEK'" in _one(report, "deals", "currency").reason


def test_seller_active_to_before_active_from() -> None:
    p = _one(validate(_tables(sellers={"active_to": [None, "2024-12-31"]})), "sellers", "active_to")
    assert (p.reason, tuple(p.rows)) == ("active_to is before active_from", (2,))


def test_lead_qualified_before_created() -> None:
    p = _one(validate(_tables(leads={"qualified_at": ["2026-01-01"]})), "leads", "qualified_at")
    assert p.reason == "qualified_at is before created_at"


# ----------------------------------------------------------------- warnings
def test_warnings_future_dates_idle_sellers_overdue_open_deals() -> None:
    t = _tables(
        sellers={"seller_id": ["S1", "S2"]}, deals={"expected_close_at": [None, None, "2026-01-10"]}
    )
    t["sellers"] = pd.concat(
        [t["sellers"], pd.DataFrame({"seller_id": ["S3"], "name": ["Cia"], "team": ["X"]})],
        ignore_index=True,
    )
    report = validate(t, as_of="2026-01-31")
    assert report.ok
    assert tuple(_one(report, "sellers", "seller_id", "warning").rows) == (3,)
    overdue = _one(report, "deals", "expected_close_at", "warning")
    assert tuple(overdue.rows) == (3,) and "before 2026-01-31" in overdue.reason
    future = _one(report, "revenue", "date", "warning")  # invoices dated in February
    assert tuple(future.rows) == (1, 2)
    assert not any(
        w.column == "expected_close_at" for w in validate(t).warnings
    )  # no as_of: skipped


def test_duplicate_org_number_is_a_warning() -> None:
    report = validate(_tables(companies={"org_number": ["556-1", "556-1"]}))
    assert report.ok
    assert tuple(_one(report, "companies", "org_number", "warning").rows) == (1, 2)


def test_placeholder_dates_warned() -> None:
    report = validate(_tables(costs={"date": ["1900-01-01"]}))
    assert "placeholder" in _one(report, "costs", "date", "warning").reason


def test_deal_outside_seller_active_period_warned() -> None:
    report = validate(_tables(sellers={"active_to": ["2026-01-05", None]}))
    p = _one(report, "deals", "created_at", "warning")
    assert tuple(p.rows) == (3,)


# --------------------------------------------------------------- reporting
def test_many_bad_rows_report_first_rows_and_total_count() -> None:
    n = 250
    t = _tables()
    t["deals"] = pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(n)],
            "seller_id": "S1",
            "created_at": "2026-01-05",
            "status": "unknown",
            "value": 1.0,
        }
    )
    t.pop("activities"), t.pop("revenue")
    p = _one(validate(t), "deals", "status")
    assert p.count == n
    assert tuple(p.rows[:5]) == (1, 2, 3, 4, 5)
    assert "(250 rows: 1, 2, 3, 4, 5 and 245 more; ids D0, D1, D2, D3, D4)" in p.sentence()


def test_all_problems_collected_at_once() -> None:
    report = validate(
        _tables(
            deals={
                "deal_id": ["D1", "D1", "D3"],
                "status": ["won", "lost", "maybe"],
                "value": [-1.0, 50.0, 70.0],
            }
        )
    )
    assert {(p.table, p.column) for p in report.problems} == {
        ("deals", "deal_id"),
        ("deals", "status"),
        ("deals", "value"),
    }


def test_report_str_and_html_escape_crm_text() -> None:
    report = validate(_tables(deals={"status": ["won", "<script>x</script>", "open"]}))
    assert "error: table 'deals', column 'status'" in str(report)
    html = report._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    frame = report.to_frame()
    assert frame.loc[0, "table"] == "deals" and frame.loc[0, "severity"] == "error"


def test_validate_crmdata_from_load_is_clean() -> None:
    from kpireport.data.load import load

    data = load(BASIC, timezone="Europe/Stockholm")
    report = validate(data)
    assert report.ok and report.source.startswith("CSV folder")


# --------------------------------------------------------------------- CLI
def test_cli_validate_valid_source(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(BASIC), "--as-of", "2026-10-15", "--timezone", "Europe/Stockholm"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.startswith("valid: CSV folder") and "deals 4" in out
    assert "warning: table 'deals', column 'closed_at': date after the as-of date 2026-10-15" in err


def test_cli_validate_invalid_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sellers.csv").write_text("seller_id,name,team\n1,A,T\n")
    (tmp_path / "deals.csv").write_text(
        "deal_id,seller_id,created_at,status,value\nD1,1,2026-01-01,won,10\nD1,2,2026-01-01,open,-3\n"
    )
    code = main(["validate", str(tmp_path), "--as-of", "2026-02-01"])
    out, err = capsys.readouterr()
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert (
        "error: table 'deals', column 'deal_id': duplicate id (2 rows: 1, 2; ids D1, D1)." in lines
    )
    assert "error: table 'deals', column 'value': negative amount (1 row: 2; ids D1)." in lines
    assert any("won or lost deal has no closed_at" in line for line in lines)
    assert any("unknown seller '2'" in line for line in lines)
    assert out.startswith("invalid: 4 problems")
    assert "Traceback" not in err


def test_cli_validate_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/no/such/folder"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(BASIC), "--as-of", "31/12/2026"])
    assert exc.value.code == 2


def test_cli_validate_missing_table_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sellers.csv").write_text("seller_id,name,team\n1,A,T\n")
    assert main(["validate", str(tmp_path), "--as-of", "2026-01-01"]) == 1
    assert "no 'deals' table" in capsys.readouterr().err


# ------------------------------------------------------- fast paths (issue 2)
def test_repeated_bad_goal_periods_are_all_reported() -> None:
    """Each distinct period is parsed once, yet every row carrying it is named."""
    goals = {
        "kpi": ["revenue"] * 5,
        "scope": ["organisation"] * 5,
        "scope_id": [None] * 5,
        "period": ["2026-13", "2026-Q1", "2026-13", "previous-month", "2026-13"],
        "target": [1, 2, 3, 4, 5],
    }
    report = validate(_tables(goals=goals))
    found = sorted(
        (tuple(p.rows), p.reason.split(" (")[0]) for p in report.problems if p.column == "period"
    )
    assert found == [
        ((1, 3, 5), "cannot read period '2026-13'"),
        (
            (4,),
            "goal period 'previous-month' is relative; a goal needs a fixed period such as 2026-10",
        ),
    ]


def test_duplicate_ids_found_when_ids_are_not_sorted() -> None:
    """Sorted ids skip the hash pass; unsorted ones still find every duplicate."""
    unsorted = {"deal_id": ["D3", "D1", "D3"]}
    p = _one(validate(_tables(deals=unsorted)), "deals", "deal_id")
    assert (p.reason, tuple(p.rows), tuple(p.ids)) == ("duplicate id", (1, 3), ("D3", "D3"))
    assert validate(
        _tables(deals={"deal_id": ["D1", "D2", "D10"]})
    ).ok  # not lexically sorted, still unique


def test_references_across_string_dtypes_and_missing_values() -> None:
    """Foreign keys are matched the same whether a column is 'str', 'string' or object."""
    t = _tables()
    t["companies"]["company_id"] = t["companies"]["company_id"].astype("string")
    t["deals"]["company_id"] = pd.Series(["C1", None, "C9"], dtype="object")
    t["activities"]["company_id"] = pd.Series(["C2"], dtype="str")
    p = _one(validate(t), "deals", "company_id")
    assert (tuple(p.rows), p.reason) == ((3,), "unknown company 'C9' (not in table 'companies')")


def test_references_on_a_large_table_are_all_found() -> None:
    """One pyarrow set per key column, probed by every referencing table at once."""
    n = 200_000
    ids = np.char.add("A", np.arange(n).astype(str)).astype(object)
    companies = np.where(np.arange(n) % 50_000 == 7, "C9", "C1").astype(
        object
    )  # rows 8, 50008, ...
    t = _tables()
    t["activities"] = pd.DataFrame(
        {
            "activity_id": ids,
            "seller_id": "S1",
            "type": "call",
            "occurred_at": "2026-01-05",
            "company_id": companies,
        }
    )
    p = _one(validate(t), "activities", "company_id")
    assert (p.count, tuple(p.rows)) == (4, (8, 50008, 100008, 150008))


# ------------------------------------------------- right or absent (issue 9)
def _four_sellers(teams: list[str]) -> dict:
    return {
        "seller_id": ["S1", "S2", "S3", "S4"],
        "name": ["Anna", "Björn", "Cai", "Dee"],
        "team": teams,
        "active_from": ["2025-01-01"] * 4,
        "active_to": [None] * 4,
    }


def test_team_names_differing_only_in_case_or_spacing_are_an_error() -> None:
    report = validate(_tables(sellers=_four_sellers(["SMB", "smb", "SMB ", "S MB"])))
    p = _one(report, "sellers", "team")
    assert p.sentence() == (
        "table 'sellers', column 'team': team names 'S MB' (sellers S4), 'SMB' (sellers S1, S3), "
        "'smb' (sellers S2) differ only in upper/lower case or spacing; kpireport would count "
        "them as separate teams, so spell the team one way (4 rows: 1, 2, 3, 4; ids S1, S2, S3, S4)."
    )


def test_surrounding_spaces_are_one_team_and_distinct_teams_pass() -> None:
    report = validate(_tables(sellers=_four_sellers(["North", "North ", " South", "SMB"])))
    assert report.ok, str(report)


def test_cost_team_spelt_differently_from_the_sellers_team_is_an_error() -> None:
    costs = {
        "date": ["2026-01-31", "2026-01-31"],
        "category": ["marketing", "sales"],
        "amount": [10.0, 20.0],
        "team": ["North", "north"],
    }
    p = _one(validate(_tables(costs=costs)), "costs", "team")
    assert "team 'north' (sellers say 'North') differs from the sellers' team only" in p.reason
    assert tuple(p.rows) == (2,)


def test_empty_required_table_from_frames_is_an_error_and_optional_one_is_not() -> None:
    t = _tables()
    t["deals"] = t["deals"].iloc[0:0]
    t["activities"] = t["activities"].iloc[0:0]
    report = validate(t)
    p = _one(report, "deals", None)
    assert p.reason.startswith("required table 'deals' has no rows")
    assert not any(p.table == "activities" for p in report.problems)
