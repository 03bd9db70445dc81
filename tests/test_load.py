"""Tests for kpireport.data.load / sources / coerce: every source kind and the parsing edge cases."""

from __future__ import annotations

import datetime as dt
import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpireport.data.load import load
from kpireport.data.model import CrmData
from kpireport.data.sources import mask_url
from kpireport.errors import DataContractError, SourceError

HERE = Path(__file__).parent
BASIC = HERE / "data" / "sources" / "csv_basic"
LONG_ID = "9223372036854775807"  # 19 digits, int64 max
DEAL_LONG_ID = "1234567890123456789"


def _sellers() -> pd.DataFrame:
    return pd.DataFrame(
        {"seller_id": ["007", "0042"], "name": ["Anna", "Björn"], "team": ["North", "South"]}
    )


def _deals(**over) -> pd.DataFrame:
    base = {
        "deal_id": ["D1", "D2"],
        "seller_id": ["007", "0042"],
        "created_at": ["2026-01-05", "2026-02-01"],
        "status": ["won", "open"],
        "value": ["1000", "2000"],
        "closed_at": ["2026-01-20", None],
    }
    base.update(over)
    return pd.DataFrame(base)


def _write_csv_folder(folder: Path, tables: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder


# ---------------------------------------------------------------- CSV folder
@pytest.fixture(scope="module")
def basic() -> CrmData:
    return load(BASIC, timezone="Europe/Stockholm", as_of="2026-10-15")


def test_csv_ids_keep_leading_zeros_and_19_digits(basic: CrmData) -> None:
    sellers = basic.sellers
    assert sellers["seller_id"].tolist() == ["007", "0042", LONG_ID]
    assert basic.deals["deal_id"].iloc[0] == DEAL_LONG_ID
    assert pd.api.types.is_string_dtype(sellers["seller_id"].dtype)
    assert sellers["seller_id"].dtype != object


def test_csv_bom_header_is_handled(basic: CrmData) -> None:
    assert BASIC.joinpath("sellers.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert list(basic.sellers.columns)[0] == "seller_id"


def test_canonical_dtypes_and_all_columns(basic: CrmData) -> None:
    deals = basic.deals
    assert list(deals.columns) == [
        "deal_id",
        "seller_id",
        "created_at",
        "status",
        "value",
        "company_id",
        "lead_id",
        "stage",
        "probability",
        "closed_at",
        "expected_close_at",
        "currency",
    ]
    assert deals["created_at"].dtype == np.dtype("datetime64[ns]")
    assert deals["value"].dtype == np.float64
    assert deals["value"].tolist() == [100000.0, 25000.5, 5000.0, 12000.0]
    assert basic.sellers["monthly_cost"].tolist() == [50000.0, 48000.5, 52000.0]
    # optional column absent from the file is added all-NA
    assert "goal_id" in basic.goals.columns and basic.goals["goal_id"].isna().all()


def test_index_is_source_row_number(basic: CrmData) -> None:
    assert basic.deals.index.tolist() == [1, 2, 3, 4]


def test_vocabularies_are_normalised(basic: CrmData) -> None:
    assert basic.deals["status"].tolist() == ["won", "open", "lost", "won"]  # 'Won' in the file
    assert basic.activities["type"].tolist() == ["meeting", "quote"]
    assert basic.costs["category"].tolist() == ["marketing", "events"]


def test_timezones_local_calendar_across_dst(basic: CrmData) -> None:
    closed = basic.deals.set_index("deal_id")["closed_at"]
    # 2026-01-31T22:59Z is 23:59 in Stockholm (CET, +1): still January
    assert closed[DEAL_LONG_ID] == pd.Timestamp("2026-01-31 23:59")
    # 2026-03-31T22:30+00:00 is 00:30 on 1 April (CEST, +2, after the DST change)
    assert closed["D3"] == pd.Timestamp("2026-04-01 00:30")
    # 2026-10-31T23:30Z is 00:30 on 1 November (CET, DST ended 25 October)
    assert closed["D4"] == pd.Timestamp("2026-11-01 00:30")
    # an aware +01:00 value converts to the same local time
    created = basic.deals.set_index("deal_id")["created_at"]
    assert created["D3"] == pd.Timestamp("2026-03-01 09:00")
    assert closed.dt.tz is None


def test_utc_default_timezone_keeps_utc_wall_time() -> None:
    data = load(BASIC)
    closed = data.deals.set_index("deal_id")["closed_at"]
    assert data.timezone == "UTC"
    assert closed["D4"] == pd.Timestamp("2026-10-31 23:30")


def test_future_date_warning_uses_as_of(basic: CrmData) -> None:
    texts = [w.sentence() for w in basic.warnings]
    assert any(
        "table 'deals', column 'closed_at': date after the as-of date 2026-10-15" in t
        for t in texts
    )


def test_semicolon_csv_is_sniffed(tmp_path: Path) -> None:
    folder = _write_csv_folder(
        tmp_path / "semi",
        {
            "sellers.csv": "seller_id;name;team\n01;A;T\n",
            "deals.csv": "deal_id;seller_id;created_at;status;value\nD1;01;2026-01-01;open;10\n",
        },
    )
    data = load(folder)
    assert data.deals["seller_id"].tolist() == ["01"]


# ------------------------------------------------------------------ dates
def test_ambiguous_day_month_refused_then_accepted_when_declared(tmp_path: Path) -> None:
    folder = _write_csv_folder(
        tmp_path / "dmy",
        {
            "sellers.csv": "seller_id,name,team\n1,A,T\n",
            "deals.csv": (
                "deal_id,seller_id,created_at,status,value\n"
                "D1,1,03/04/2026,open,10\nD2,1,2026-05-01,open,10\nD3,1,13/04/2026,open,10\n"
            ),
        },
    )
    with pytest.raises(DataContractError) as err:
        load(folder)
    (p,) = err.value.problems
    assert (p.table, p.column, tuple(p.rows)) == ("deals", "created_at", (1, 3))
    assert "set date_format" in p.reason and "'03/04/2026'" in p.reason
    data = load(folder, date_format="%d/%m/%Y")
    assert data.deals["created_at"].tolist() == [
        pd.Timestamp("2026-04-03"),
        pd.Timestamp("2026-05-01"),
        pd.Timestamp("2026-04-13"),
    ]
    us = load(folder.parent / "dmy", date_format="%m/%d/%Y", validate=False)
    assert us.deals["created_at"].iloc[0] == pd.Timestamp("2026-03-04")


def test_unparsable_dates_and_numbers_are_all_reported(tmp_path: Path) -> None:
    folder = _write_csv_folder(
        tmp_path / "bad",
        {
            "sellers.csv": "seller_id,name,team,monthly_cost\n1,A,T,lots\n",
            "deals.csv": (
                "deal_id,seller_id,created_at,status,value\n"
                "D1,1,yesterday,open,10\nD2,1,2026-02-30,open,1 000\nD3,1,2026-01-01,open,inf\n"
            ),
        },
    )
    with pytest.raises(DataContractError) as err:
        load(folder)
    got = {(p.table, p.column): tuple(p.rows) for p in err.value.problems}
    assert got[("deals", "created_at")] == (1, 2)
    assert got[("deals", "value")] == (2, 3)
    assert got[("sellers", "monthly_cost")] == (1,)
    # unreadable cells are not reported a second time as "required value is empty"
    assert len(err.value.problems) == 3


# ------------------------------------------------------------------ parquet
def test_parquet_folder_with_integer_ids_and_aware_timestamps(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    pd.DataFrame(
        {
            "seller_id": pd.array([7, 9223372036854775807], dtype="Int64"),
            "name": ["A", "B"],
            "team": ["T", "T"],
        }
    ).to_parquet(folder / "sellers.parquet")
    pd.DataFrame(
        {
            "deal_id": pd.array([1234567890123456789, None], dtype="Int64"),
            "seller_id": pd.array([7, 9223372036854775807], dtype="Int64"),
            "created_at": pd.to_datetime(
                ["2026-01-31T22:59:00Z", "2026-10-31T23:30:00Z"], utc=True
            ),
            "status": ["open", "open"],
            "value": [1.5, 2.0],
        }
    ).to_parquet(folder / "deals.parquet")
    with pytest.raises(DataContractError) as err:  # the NULL deal id is reported with its row
        load(folder, timezone="Europe/Stockholm")
    (p,) = err.value.problems
    assert (p.table, p.column, tuple(p.rows), p.reason) == (
        "deals",
        "deal_id",
        (2,),
        "required value is empty",
    )
    data = load(folder, timezone="Europe/Stockholm", validate=False)
    assert data.sellers["seller_id"].tolist() == ["7", LONG_ID]
    assert data.deals["deal_id"].iloc[0] == DEAL_LONG_ID
    assert data.deals["created_at"].tolist() == [
        pd.Timestamp("2026-01-31 23:59"),
        pd.Timestamp("2026-11-01 00:30"),
    ]
    assert data.deals["created_at"].dtype == np.dtype("datetime64[ns]")


# -------------------------------------------------------------------- Excel
def _workbook(path: Path) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "sellers"
    ws.append(["seller_id", "name", "team"])
    ws.append([42, "Anna", "North"])  # numeric id cell
    ws.append(["007", "Björn", "North"])  # text id cell
    ws.append([LONG_ID, "Cecilia", "South"])  # 19 digits stored as text
    ws = wb.create_sheet("deals")
    ws.append(["deal_id", "seller_id", "created_at", "status", "value", "closed_at"])
    ws.append(
        ["D1", 42, 46310, "won", 1000, dt.datetime(2026, 10, 20, 14, 30)]
    )  # serial 46310 = 2026-10-15
    ws.append(["D2", "007", "2026-10-16", "open", 2000.5, None])
    ws.append([None, None, None, None, None, None])  # trailing empty row is ignored
    wb.create_sheet("notes").append(["anything"])
    wb.save(path)
    return path


def test_excel_workbook_serials_ids_and_rows(tmp_path: Path) -> None:
    data = load(_workbook(tmp_path / "crm.xlsx"))
    assert data.sellers["seller_id"].tolist() == ["42", "007", LONG_ID]
    deals = data.deals
    assert deals["seller_id"].tolist() == ["42", "007"]
    assert deals["created_at"].tolist() == [pd.Timestamp("2026-10-15"), pd.Timestamp("2026-10-16")]
    assert deals["closed_at"].iloc[0] == pd.Timestamp("2026-10-20 14:30")
    assert deals["value"].tolist() == [1000.0, 2000.5]
    assert deals.index.tolist() == [1, 2]
    assert data.source.startswith("Excel workbook")


def test_excel_bad_cell_is_reported_with_row(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = _workbook(tmp_path / "crm.xlsx")
    wb = load_workbook(path)
    wb["deals"]["E3"] = "n/a"  # sheet row 3 = data row 2
    wb.save(path)
    with pytest.raises(DataContractError) as err:
        load(path)
    (p,) = err.value.problems
    assert (p.table, p.column, tuple(p.rows), tuple(p.ids)) == ("deals", "value", (2,), ("D2",))


def test_corrupt_workbook_is_a_source_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(SourceError, match="broken.xlsx"):
        load(bad)


# ------------------------------------------------------------------- SQLite
def _sqlite(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("create table sellers (seller_id integer, name text, team text)")
    con.executemany(
        "insert into sellers values (?,?,?)",
        [(7, "A", "North"), (9223372036854775807, "B", "South")],
    )
    con.execute(
        "create table Opportunities (OppId integer, Owner integer, Created text, Stage text, Amount real, Closed text)"
    )
    con.executemany(
        "insert into Opportunities values (?,?,?,?,?,?)",
        [
            (
                1234567890123456789,
                7,
                "2026-01-31T22:59:00Z",
                "Closed Won",
                100.0,
                "2026-03-31T22:30:00+00:00",
            ),
            (2, 9223372036854775807, "2026-02-01", "Open", 50.0, None),
        ],
    )
    con.commit()
    con.close()
    return path


def test_sqlite_url_reads_real_database(tmp_path: Path) -> None:
    db = _sqlite(tmp_path / "crm.db")
    con = sqlite3.connect(db)
    con.execute(
        "create table deals as select OppId deal_id, Owner seller_id, Created created_at, "
        "'open' status, Amount value from Opportunities"
    )
    con.commit()
    con.close()
    data = load(f"sqlite:///{db}", timezone="Europe/Stockholm")
    assert data.sellers["seller_id"].tolist() == ["7", LONG_ID]
    assert data.deals["deal_id"].tolist() == [DEAL_LONG_ID, "2"]
    assert data.deals["created_at"].iloc[0] == pd.Timestamp("2026-01-31 23:59")
    assert data.source.startswith("sqlite:///")


def test_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(SourceError, match="does not exist"):
        load(f"sqlite:///{missing}")
    assert not missing.exists()


# --------------------------------------------------------------- source YAML
def test_yaml_maps_tables_columns_values_and_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _sqlite(tmp_path / "crm.db")
    monkeypatch.setenv("CRM_TZ", "Europe/Stockholm")
    monkeypatch.setenv("CRM_DB_FILE", db.name)
    (tmp_path / "source.yaml").write_text(
        textwrap.dedent(
            """
            url: sqlite:///${CRM_DB_FILE}
            timezone: ${CRM_TZ}
            currency: sek
            organisation: Nordic Widgets AB
            gross_margin: 0.6
            tables:
              deals:
                table: Opportunities
                columns: {deal_id: OppId, seller_id: Owner, created_at: Created, status: Stage,
                          value: Amount, closed_at: Closed}
                values:
                  status: {Closed Won: won, Closed Lost: lost, Open: open}
            """
        )
    )
    data = load(tmp_path / "source.yaml")
    assert data.timezone == "Europe/Stockholm"
    assert data.currency == "SEK"
    assert data.organisation == "Nordic Widgets AB"
    assert data.settings["gross_margin"] == 0.6
    deals = data.deals
    assert deals["deal_id"].tolist() == [DEAL_LONG_ID, "2"]
    assert deals["status"].tolist() == ["won", "open"]
    assert deals["closed_at"].iloc[0] == pd.Timestamp("2026-04-01 00:30")
    assert "source.yaml" in data.source


def test_yaml_path_is_relative_and_declares_date_format(tmp_path: Path) -> None:
    _write_csv_folder(
        tmp_path / "export",
        {
            "Users.csv": "Id,Full name,Group\n01,A,T\n",
            "Opps.csv": "Ref,Owner,Opened,State,Amount EUR\nX1,01,31/12/2025,open,5\n",
        },
    )
    (tmp_path / "src.yml").write_text(
        textwrap.dedent(
            """
            path: export
            date_format: "%d/%m/%Y"
            tables:
              sellers: {table: Users, columns: {seller_id: Id, name: Full name, team: Group}}
              deals:
                table: Opps.csv
                columns: {deal_id: Ref, seller_id: Owner, created_at: Opened, status: State, value: Amount EUR}
            """
        )
    )
    data = load(tmp_path / "src.yml")
    assert data.deals["created_at"].tolist() == [pd.Timestamp("2025-12-31")]
    assert data.sellers["seller_id"].tolist() == ["01"]


def test_yaml_mapped_column_missing_names_it(tmp_path: Path) -> None:
    _write_csv_folder(
        tmp_path / "e",
        {
            "sellers.csv": "seller_id,name,team\n1,A,T\n",
            "deals.csv": "deal_id,seller_id,created_at,status,value\nD,1,2026-01-01,open,1\n",
        },
    )
    (tmp_path / "s.yaml").write_text("path: e\ntables:\n  deals:\n    columns: {value: Amount}\n")
    with pytest.raises(DataContractError) as err:
        load(tmp_path / "s.yaml")
    (p,) = err.value.problems
    assert p.column == "value" and "mapped from 'Amount'" in p.reason


def test_yaml_password_env_is_masked_and_never_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr@t/pa:ss"
    monkeypatch.setenv("CRM_DB_PASSWORD", secret)
    (tmp_path / "pg.yaml").write_text(
        "url: postgresql://report:${CRM_DB_PASSWORD}@127.0.0.1:1/crm\n"
    )
    with pytest.raises(SourceError) as err:
        load(tmp_path / "pg.yaml")
    text = str(err.value)
    assert "postgresql://report:***@127.0.0.1:1/crm" in text
    assert secret not in text and "s3cr" not in text
    assert err.value.__cause__ is None and err.value.__suppress_context__
    # password_env form, same masking
    (tmp_path / "pg2.yaml").write_text(
        "url: postgresql://report@127.0.0.1:1/crm\npassword_env: CRM_DB_PASSWORD\n"
    )
    with pytest.raises(SourceError) as err2:
        load(tmp_path / "pg2.yaml")
    assert secret not in str(err2.value) and "***" in str(err2.value)


def test_yaml_secret_never_on_crmdata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kpireport.data import sources

    secret = "topsecret-9f8e"
    monkeypatch.setenv("CRM_DB_PASSWORD", secret)
    seen = {}

    def fake_read_sql(spec):  # stands in for the database: no network in tests
        seen["url"] = spec.location
        return {"sellers": _sellers(), "deals": _deals()}

    monkeypatch.setattr(sources, "_read_sql", fake_read_sql)
    (tmp_path / "s.yaml").write_text(
        "url: postgresql://report:${CRM_DB_PASSWORD}@db.example.com/crm\norganisation: Org\n"
    )
    data = load(tmp_path / "s.yaml")
    assert seen["url"].password == secret  # resolved inside the library at load time
    assert data.source == "postgresql://report:***@db.example.com/crm (via s.yaml)"
    blob = " ".join(
        [data.source, repr(data), str(data.settings), str(data.warnings), str(vars(data))]
    )
    assert secret not in blob
    assert mask_url(f"postgresql://u:{secret}@h/db") == "postgresql://u:***@h/db"


def test_yaml_unset_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_VAR", raising=False)
    (tmp_path / "s.yaml").write_text("url: postgresql://u:${NOPE_VAR}@h/db\n")
    with pytest.raises(SourceError, match="NOPE_VAR.*is not set"):
        load(tmp_path / "s.yaml")


def test_yaml_unknown_keys_and_tables_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("path: .\ntimezon: UTC\n")
    with pytest.raises(SourceError, match="unknown keys: timezon"):
        load(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("path: .\ntables: {opportunities: Opps}\n")
    with pytest.raises(SourceError, match="unknown canonical tables: opportunities"):
        load(tmp_path / "b.yaml")


# ------------------------------------------------------- other source kinds
def test_dict_of_frames_and_crmdata_passthrough() -> None:
    data = load({"sellers": _sellers(), "deals": _deals()})
    assert data.deals.index.tolist() == [1, 2]
    assert data.deals["closed_at"].iloc[0] == pd.Timestamp("2026-01-20")
    assert load(data) is data
    assert "companies" not in data.tables  # optional tables simply absent


def test_missing_required_table_names_the_path(tmp_path: Path) -> None:
    folder = _write_csv_folder(tmp_path / "only", {"sellers.csv": "seller_id,name,team\n1,A,T\n"})
    with pytest.raises(SourceError, match=r"only.*no 'deals' table"):
        load(folder)


def test_missing_path_and_unknown_timezone() -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load("/nonexistent/crm")
    with pytest.raises(SourceError, match="not a known time zone"):
        load(BASIC, timezone="Mars/Olympus")


# ---------------------------------------------------------------- currency
def test_currency_conversion_with_dated_rates() -> None:
    deals = _deals(currency=["SEK", "EUR"], value=["1000", "2000"], closed_at=["2026-03-15", None])
    rates = pd.DataFrame(
        {"currency": ["SEK", "SEK"], "rate": ["0.08", "0.09"], "date": ["2026-01-01", "2026-03-01"]}
    )
    revenue = pd.DataFrame(
        {
            "invoice_id": ["I1", "I2"],
            "company_id": ["C", "C"],
            "date": ["2025-12-01", "2026-02-01"],
            "amount": ["-100", "100"],
            "currency": ["SEK", "sek"],
        }
    )
    tables = {"sellers": _sellers(), "deals": deals, "rates": rates, "revenue": revenue}
    with pytest.raises(DataContractError, match="declares no reporting 'currency'"):
        load(tables)
    data = load(tables, currency="eur")
    assert data.currency == "EUR"
    assert data.deals["value"].tolist() == pytest.approx(
        [90.0, 2000.0]
    )  # closed 15 March: rate 0.09
    # before the first dated rate the first rate applies; currency is upper-cased
    assert data.revenue["amount"].tolist() == pytest.approx([-8.0, 8.0])
    assert data.deals["currency"].tolist() == ["EUR", "EUR"]


def test_single_foreign_currency_becomes_reporting_currency() -> None:
    data = load({"sellers": _sellers(), "deals": _deals(currency=["SEK", "SEK"])})
    assert data.currency == "SEK"
    assert data.deals["value"].tolist() == [1000.0, 2000.0]


def test_validate_false_loads_broken_data() -> None:
    data = load({"sellers": _sellers(), "deals": _deals(status=["won", "pending"])}, validate=False)
    assert data.deals["status"].tolist() == ["won", "pending"]


# ------------------------------------------------------- fast paths (issue 2)
def test_mixed_iso_layouts_in_one_csv_column_are_accepted(tmp_path: Path) -> None:
    """pandas 3 refuses mixed layouts with one inferred format; ISO variants must all load."""
    folder = _write_csv_folder(
        tmp_path / "mixed",
        {
            "sellers.csv": "seller_id,name,team\n1,A,T\n",
            "deals.csv": (
                "deal_id,seller_id,created_at,status,value\n"
                "D1,1,2026-01-01,open,10\n"
                "D2,1,2026-01-01 09:30,open,10\n"
                "D3,1,2026-01-02T10:15:30,open,10\n"
                "D4,1,2026-1-3,open,10\n"
                "D5,1,2026/01/04,open,10\n"
                "D6,1,2026-01-01,open,10\n"
            ),
        },
    )
    data = load(folder)
    assert data.deals["created_at"].tolist() == [
        pd.Timestamp("2026-01-01"),
        pd.Timestamp("2026-01-01 09:30"),
        pd.Timestamp("2026-01-02 10:15:30"),
        pd.Timestamp("2026-01-03"),
        pd.Timestamp("2026-01-04"),
        pd.Timestamp("2026-01-01"),
    ]
    # ... while a day/month value among them is still refused, on its own row only
    (folder / "deals.csv").write_text(
        "deal_id,seller_id,created_at,status,value\nD1,1,2026-01-01,open,10\nD2,1,2026-01-01 09:30,open,10\n"
        "D3,1,02/01/2026,open,10\n",
        encoding="utf-8",
    )
    with pytest.raises(DataContractError) as err:
        load(folder)
    (p,) = err.value.problems
    assert (p.column, tuple(p.rows)) == ("created_at", (3,)) and "day/month" in p.reason


def test_repeated_date_text_parsed_once_keeps_rows_apart() -> None:
    """Distinct texts are parsed once and mapped back: every row gets its own value and flag."""
    from kpireport.data.coerce import parse_dates

    s = pd.Series(
        ["2026-03-01", "soon", "2026-03-01", "2026-03-29T01:30:00Z", "soon", None], dtype="str"
    )
    ts, bad, amb = parse_dates(s, timezone="Europe/Stockholm")
    assert ts.tolist()[:4] == [
        pd.Timestamp("2026-03-01"),
        pd.NaT,
        pd.Timestamp("2026-03-01"),
        pd.Timestamp("2026-03-29 03:30"),
    ]
    assert bad.tolist() == [False, True, False, False, True, False]
    assert not amb.any() and pd.isna(ts.iloc[5])


def test_parquet_strings_are_stripped_and_clean_ones_kept(tmp_path: Path) -> None:
    """Arrow fast path: padded/empty strings are cleaned; a non-ASCII first letter is not 'whitespace'."""
    folder = tmp_path / "pqs"
    folder.mkdir()
    pd.DataFrame(
        {"seller_id": [" 007", "0042\u00a0"], "name": ["Åsa", ""], "team": ["North", "South "]}
    ).to_parquet(folder / "sellers.parquet")
    pd.DataFrame(
        {
            "deal_id": ["D1"],
            "seller_id": ["007"],
            "created_at": pd.to_datetime(["2026-01-05"]),
            "status": [" Won"],
            "value": [10.0],
            "closed_at": pd.to_datetime(["2026-01-06"]),
        }
    ).to_parquet(folder / "deals.parquet")
    with pytest.raises(DataContractError) as err:  # the empty name is a missing required value
        load(folder)
    (p,) = err.value.problems
    assert (p.table, p.column, tuple(p.rows)) == ("sellers", "name", (2,))
    data = load(folder, validate=False)
    assert data.sellers["seller_id"].tolist() == ["007", "0042"]
    assert data.sellers["name"].iloc[0] == "Åsa" and pd.isna(data.sellers["name"].iloc[1])
    assert data.sellers["team"].tolist() == ["North", "South"]
    assert data.deals["status"].tolist() == ["won"]
    assert data.deals["created_at"].dtype == np.dtype("datetime64[ns]")


def test_scale_one_demo_loads_from_parquet_fast(tmp_path: Path) -> None:
    """The issue-2 budget: the scale-1 demo loads (parse + validate) well inside 2 s of CPU."""
    import time

    from kpireport.data.validate import validate
    from kpireport.demo import write_demo

    source = write_demo(tmp_path / "demo", scale=1, fmt="parquet")
    t0 = time.process_time()
    data = load(source)
    report = validate(data)
    cpu = time.process_time() - t0
    assert report.ok, str(report)
    assert len(data.deals) > 10_000 and len(data.activities) > 50_000
    assert cpu < 4.0, f"load + validate took {cpu:.1f} s of CPU at scale 1"


# ------------------------------------------------- right or absent (issue 9)
SELLERS_CSV = "seller_id,name,team\nS1,Anna,North\nS2,Bo,South\n"


def _deals_folder(
    tmp_path: Path, rows: list[str], *, yaml: str | None = None, extra: str = ""
) -> Path:
    """A folder with sellers.csv and a semicolon deals.csv; a source YAML when ``yaml`` is given."""
    head = "deal_id;seller_id;created_at;status;value;probability;closed_at" + extra
    folder = tmp_path / "crm"
    folder.mkdir(exist_ok=True)
    (folder / "sellers.csv").write_text(SELLERS_CSV, encoding="utf-8")
    (folder / "deals.csv").write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    if yaml is None:
        return folder
    (folder / "source.yaml").write_text("path: .\n" + textwrap.dedent(yaml), encoding="utf-8")
    return folder / "source.yaml"


def _problem(source: Path, column: str) -> str:
    with pytest.raises(DataContractError) as info:
        load(source)
    hits = [p for p in info.value.problems if p.column == column]
    assert hits, str(info.value)
    return hits[0].sentence()


def test_decimal_comma_reads_dot_thousands_exactly(tmp_path: Path) -> None:
    src = _deals_folder(
        tmp_path,
        [
            "D1;S1;2026-01-05;won;85.000;1;2026-01-10",
            "D2;S2;2026-01-05;open;1.234.567,89;0,5;",
            "D3;S1;2026-01-06;open;940 300,5;;",
            "D4;S2;2026-01-07;open;12;;",
        ],
        yaml='decimal: ","\n',
    )
    deals = load(src).deals
    assert deals["value"].tolist() == [85000.0, 1234567.89, 940300.5, 12.0]
    assert deals["probability"].tolist()[:2] == [1.0, 0.5]


def test_decimal_comma_refuses_a_dot_that_does_not_group_three_digits(tmp_path: Path) -> None:
    src = _deals_folder(
        tmp_path,
        [
            "D1;S1;2026-01-05;won;85.5;1;2026-01-10",
            "D2;S2;2026-01-05;open;0.500;;",
            "D3;S2;2026-01-05;open;1.000;;",
        ],
        yaml='decimal: ","\n',
    )
    msg = _problem(src, "value")
    assert msg.startswith("table 'deals', column 'value': cannot read '85.5', '0.500'")
    assert 'with decimal ","' in msg and 'decimal: "." in the source YAML would read them' in msg
    assert "(2 rows: 1, 2; ids D1, D2)" in msg


@pytest.mark.parametrize(
    "values",
    [
        ["940.300", "1200"],  # a dot-grouped value among integers
        ["85.000", "1.250.000"],  # every value dot-grouped (money column)
        ["85.000", "12,50"],  # among comma decimals
    ],
)
def test_dot_grouped_thousands_are_refused_when_nothing_is_declared(
    tmp_path: Path, values: list[str]
) -> None:
    rows = [f"D{i};S1;2026-01-05;open;{v};;" for i, v in enumerate(values, 1)]
    msg = _problem(_deals_folder(tmp_path, rows), "value")
    assert msg.startswith(f"table 'deals', column 'value': '{values[0]}'")
    assert "look like thousands grouped with '.'" in msg
    assert 'set decimal: "," in the source YAML' in msg
    assert "row" in msg and "ids D1" in msg


def test_dot_grouped_thousands_read_once_declared(tmp_path: Path) -> None:
    rows = ["D1;S1;2026-01-05;open;940.300;;", "D2;S1;2026-01-05;open;1200;;"]
    src = _deals_folder(tmp_path, rows, yaml='decimal: ","\n')
    assert load(src).deals["value"].sum() == 941500.0
    (tmp_path / "crm" / "source.yaml").write_text('path: .\ndecimal: "."\n', encoding="utf-8")
    assert load(src).deals["value"].sum() == 1200 + 940.3  # declared: they really are decimals


def test_a_column_that_proves_its_decimal_point_keeps_three_decimals(tmp_path: Path) -> None:
    rows = ["D1;S1;2026-01-05;open;100;0.125;", "D2;S1;2026-01-05;open;85.25;0.5;"]
    deals = load(_deals_folder(tmp_path, rows)).deals
    assert deals["value"].tolist() == [100.0, 85.25]
    assert deals["probability"].tolist() == [0.125, 0.5]


def test_currency_cells_read_only_when_separators_are_declared(tmp_path: Path) -> None:
    rows = [
        "D1;S1;2026-01-05;won;€ 85.000,00;;2026-01-10",
        "D2;S2;2026-01-05;open;85 000 kr;;",
        "D3;S2;2026-01-05;open;EUR 1.250,5;;",
    ]
    msg = _problem(_deals_folder(tmp_path, rows), "value")
    assert "cannot read '€ 85.000,00', '85 000 kr', 'EUR 1.250,5' as a number" in msg
    assert "a currency sign or code is read only when the source declares its separators" in msg
    assert 'decimal: "," in the source YAML would read them' in msg
    src = _deals_folder(tmp_path, rows, yaml='decimal: ","\nthousands: "."\n')
    assert load(src).deals["value"].tolist() == [85000.0, 85000.0, 1250.5]
    usd = tmp_path / "usd"
    usd.mkdir()
    (usd / "sellers.csv").write_text(SELLERS_CSV, encoding="utf-8")
    (usd / "deals.csv").write_text(
        'deal_id,seller_id,created_at,status,value\nD1,S1,2026-01-05,open,"$1,250.00"\n',
        encoding="utf-8",
    )
    msg = _problem(usd, "value")
    assert 'decimal: "." and thousands: "," in the source YAML would read them' in msg
    (usd / "source.yaml").write_text('path: .\nthousands: ","\n', encoding="utf-8")
    assert load(usd / "source.yaml").deals["value"].tolist() == [1250.0]


def test_every_number_error_names_a_setting_or_says_none_reads_it(tmp_path: Path) -> None:
    rows = ["D1;S1;2026-01-05;open;1'250.50;;", "D2;S1;2026-01-05;open;12 kg;;"]
    msg = _problem(_deals_folder(tmp_path, rows[:1]), "value")
    assert 'decimal: "." and thousands: "\'" in the source YAML would read them' in msg
    msg = _problem(_deals_folder(tmp_path, rows[1:]), "value")
    assert "no decimal:/thousands: setting reads them" in msg


@pytest.mark.parametrize(
    ("yaml", "needle"),
    [
        ('decimal: ";"\n', "decimal in"),
        ('thousands: "_"\n', "thousands in"),
        ('decimal: ","\nthousands: ","\n', "are both ','"),
    ],
)
def test_separator_settings_are_checked(tmp_path: Path, yaml: str, needle: str) -> None:
    src = _deals_folder(tmp_path, ["D1;S1;2026-01-05;open;1;;"], yaml=yaml)
    with pytest.raises(SourceError, match=needle):
        load(src)


@pytest.mark.parametrize(
    ("header", "names"),
    [
        (
            "deal_id,seller_id,created_at,status,value,value",
            "'value' (column 5) and 'value' (column 6)",
        ),
        (
            "deal_id,seller_id,created_at,status,VALUE,Value",
            "'VALUE' (column 5) and 'Value' (column 6)",
        ),
        (
            "Deal ID,seller_id,created_at,status,value,deal_id",
            "'Deal ID' (column 1) and 'deal_id' (column 6)",
        ),
    ],
)
def test_two_columns_reading_as_one_are_refused(tmp_path: Path, header: str, names: str) -> None:
    folder = tmp_path / "crm"
    folder.mkdir()
    (folder / "sellers.csv").write_text(SELLERS_CSV, encoding="utf-8")
    (folder / "deals.csv").write_text(f"{header}\nD1,S1,2026-01-05,open,100,D1\n", encoding="utf-8")
    column = "deal_id" if "deal_id" in names else "value"
    msg = _problem(folder, column)
    assert msg.startswith(
        f"table 'deals', column '{column}': the source columns {names} all read as"
    )
    assert "never picks one" in msg


def test_repeated_header_in_a_workbook_is_refused(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "sellers"
    ws.append(["seller_id", "name", "team"])
    ws.append(["S1", "Anna", "North"])
    ws = wb.create_sheet("deals")
    ws.append(["deal_id", "seller_id", "created_at", "status", "value", "value"])
    ws.append(["D1", "S1", "2026-01-05", "open", 100, 200])
    wb.save(tmp_path / "crm.xlsx")
    msg = _problem(tmp_path / "crm.xlsx", "value")
    assert "'value' (column 5) and 'value' (column 6) all read as 'value'" in msg


def test_source_yaml_key_twice_and_mapped_column_shadowing(tmp_path: Path) -> None:
    rows = ["D1;S1;2026-01-05;open;100;;"]
    yaml = "tables:\n  deals:\n    columns:\n      value: Amount\n      value: Net\n"
    src = _deals_folder(tmp_path, rows, yaml=yaml)
    with pytest.raises(SourceError, match="the key 'value' appears twice in one mapping"):
        load(src)
    src = _deals_folder(
        tmp_path,
        ["D1;S1;2026-01-05;open;100;;;250"],
        yaml="tables:\n  deals:\n    columns: {value: Amount}\n",
        extra=";Amount",
    )
    data = load(src)
    assert data.deals["value"].tolist() == [250.0]
    assert any("the source's own column 'value' is ignored" in w.sentence() for w in data.warnings)


def test_non_ascii_digits_are_refused_never_emptied(tmp_path: Path) -> None:
    rows = [
        "D1;S1;2026-01-05;won;１２３;0.5;２０２６-01-10",
        "D2;S2;2026-01-05;open;100;٠.٥;",
        "D3;S2;2026-01-05;open;١٢٣;0.5;",
    ]
    with pytest.raises(DataContractError) as info:
        load(_deals_folder(tmp_path, rows))
    text = {p.column: p.sentence() for p in info.value.problems}
    assert set(text) == {"value", "probability", "closed_at"}, str(info.value)
    assert text["value"].startswith(
        "table 'deals', column 'value': numbers '１２３', '١٢٣' have digits outside 0-9"
    )
    assert "(2 rows: 1, 3; ids D1, D3)" in text["value"]
    assert "'٠.٥'" in text["probability"] and "(1 row: 2; ids D2)" in text["probability"]
    assert "dates '２０２６-01-10' have digits outside 0-9" in text["closed_at"]


def test_non_ascii_digits_in_workbook_text_cells(tmp_path: Path) -> None:
    frames = {
        "sellers": pd.DataFrame({"seller_id": ["S1"], "name": ["A"], "team": ["N"]}),
        "deals": pd.DataFrame(
            {
                "deal_id": ["D1", "D2"],
                "seller_id": ["S1", "S1"],
                "created_at": ["2026-01-05", "2026-01-05"],
                "status": ["open", "open"],
                "value": [100, "５００"],
                "probability": [0.5, 0.25],
            }
        ),
    }
    with pd.ExcelWriter(tmp_path / "crm.xlsx") as xw:
        for name, df in frames.items():
            df.to_excel(xw, sheet_name=name, index=False)
    msg = _problem(tmp_path / "crm.xlsx", "value")
    assert "'５００' have digits outside 0-9" in msg and "(1 row: 2; ids D2)" in msg


def test_header_only_deals_and_row_less_sellers_sheet_are_errors(tmp_path: Path) -> None:
    src = _deals_folder(tmp_path, [])
    with pytest.raises(DataContractError) as info:
        load(src)
    assert [p.sentence() for p in info.value.problems] == [
        "table 'deals': required table 'deals' has no rows (only a header, or an empty "
        "sheet); a report built from it would be a wrong report, not an empty one. Check the export."
    ]
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "sellers"
    ws.append(["seller_id", "name", "team"])
    ws = wb.create_sheet("deals")
    ws.append(["deal_id", "seller_id", "created_at", "status", "value"])
    ws.append(["D1", "S1", "2026-01-05", "open", 100])
    wb.save(tmp_path / "crm.xlsx")
    with pytest.raises(DataContractError, match="required table 'sellers' has no rows"):
        load(tmp_path / "crm.xlsx")


def test_an_empty_period_in_non_empty_data_is_still_computed(tmp_path: Path) -> None:
    from kpireport.kpis import compute_kpis

    data = load(_deals_folder(tmp_path, ["D1;S1;2026-01-05;won;100;1;2026-01-10"]))
    kpis = compute_kpis(data, "2025-03", kpis=["deals_won", "won_value"])
    assert kpis.set_index("kpi")["value"].to_dict() == {"deals_won": 0.0, "won_value": 0.0}
    # after the data's last day (10 January 2026) a period is unknown, not 0 (issue 13 item 6)
    later = compute_kpis(data, "2027-03", kpis=["deals_won", "won_value"])
    assert later["value"].isna().all()
    assert set(later["note"]) == {"after the data: last record 2026-01-10"}


def test_a_mapped_name_matching_two_source_columns_is_refused(tmp_path: Path) -> None:
    src = _deals_folder(
        tmp_path,
        ["D1;S1;2026-01-05;open;100;;;250;260"],
        yaml="tables:\n  deals:\n    columns: {value: Amount}\n",
        extra=";Amount;AMOUNT",
    )
    msg = _problem(src, "value")
    assert (
        "the source columns 'Amount' (column 8) and 'AMOUNT' (column 9) all read as 'value'" in msg
    )


# ------------------------------------------------ issue 9 item 16: clear errors
def test_sql_views_are_read_like_tables(tmp_path: Path) -> None:
    """A CRM schema that exposes views (SQLite here; PostgreSQL in test_engine_pg) loads."""
    db = _sqlite(tmp_path / "crm.db")
    con = sqlite3.connect(db)
    con.execute(
        "create view deals as select OppId deal_id, Owner seller_id, Created created_at, "
        "case Stage when 'Closed Won' then 'won' else 'open' end status, Amount value, "
        "Closed closed_at from Opportunities"
    )
    con.commit()
    con.close()
    data = load(f"sqlite:///{db}", timezone="Europe/Stockholm")
    assert data.deals["deal_id"].tolist() == [DEAL_LONG_ID, "2"]
    assert data.deals["status"].tolist() == ["won", "open"]
    assert data.deals["value"].sum() == 150.0


def test_password_protected_workbook_says_it_is_encrypted(tmp_path: Path) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = _workbook(tmp_path / "plain.xlsx")
    locked = tmp_path / "locked.xlsx"
    with open(plain, "rb") as src, open(locked, "wb") as out:
        OOXMLFile(src).encrypt("s3cret", out)
    with pytest.raises(SourceError) as err:
        load(locked)
    msg = str(err.value)
    assert "locked.xlsx" in msg and "encrypted (password-protected)" in msg
    assert "s3cret" not in msg


def test_9999_12_31_is_no_end_in_end_dates_only(tmp_path: Path) -> None:
    folder = _write_csv_folder(
        tmp_path / "crm",
        {
            "sellers.csv": """\
                seller_id,name,team,active_from,active_to
                S1,Anna,North,2025-01-01,9999-12-31
                S2,Björn,North,2025-01-01,2026-03-31
                """,
            "deals.csv": """\
                deal_id,seller_id,created_at,status,value,closed_at,expected_close_at
                D1,S1,2026-01-05,open,1000,,9999-12-31 00:00:00
                D2,S2,2026-02-01,won,2000,2026-02-20,2026-02-28
                """,
        },
    )
    data = load(folder)
    assert data.sellers["active_to"].isna().tolist() == [True, False]
    assert data.deals["expected_close_at"].isna().tolist() == [True, False]
    # anywhere else the year 9999 is still an unreadable date, named with its row
    (folder / "deals.csv").write_text(
        "deal_id,seller_id,created_at,status,value,closed_at\nD1,S1,9999-12-31,open,1000,\n",
        encoding="utf-8",
    )
    with pytest.raises(DataContractError) as err:
        load(folder)
    (p,) = [p for p in err.value.problems if p.column == "created_at"]
    assert p.table == "deals" and tuple(p.ids) == ("D1",) and "9999-12-31" in p.reason


# ------------------------------------------------- defaults said out loud (issue 13 item 12)
def test_a_folder_without_source_yaml_says_which_defaults_it_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    with caplog.at_level(logging.WARNING, logger="kpireport"):
        data = load(BASIC)
        assert (data.timezone, data.organisation) == ("UTC", "Organisation")
        assert said() == [
            f"The source CSV folder {BASIC} declares no time zone and no organisation: using UTC "
            "and 'Organisation' (set timezone: and organisation: in a source YAML, or pass timezone=)."
        ]
        caplog.clear()
        load(BASIC, timezone="Europe/Helsinki")
        assert said() == [
            f"The source CSV folder {BASIC} declares no organisation: using 'Organisation' "
            "(set organisation: in a source YAML)."
        ]
        caplog.clear()
        yaml = tmp_path / "source.yaml"
        yaml.write_text(
            f"path: {BASIC}\ntimezone: Europe/Helsinki\norganisation: Acme Oy\n", encoding="utf-8"
        )
        data = load(yaml)
        assert (data.timezone, data.organisation) == ("Europe/Helsinki", "Acme Oy")
        assert not any("declares no" in m for m in said())
