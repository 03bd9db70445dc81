"""A Parquet folder that needs no cleaning is read in place (docs/DATA.md "Large data").

The scan path (lazy tables, validation over ``read_parquet`` views, KPI
queries on DuckDB views) must give exactly what the pandas path gives: the
same frames, the same KPI values, the same validation sentences.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kpireport.data import sources
from kpireport.data.load import load
from kpireport.data.model import CrmData, ScanData
from kpireport.demo import write_demo
from kpireport.errors import DataContractError
from kpireport.kpis.compute import compute_kpis

AS_OF = "2026-11-30"
PERIODS = ["2026-10", "2026-Q3", "2026", "2025-11"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scan") / "demo"
    write_demo(out, scale=1, fmt="parquet", as_of=AS_OF)
    return out


def _pandas_path(monkeypatch: pytest.MonkeyPatch, source: Path, **kw: object):
    """``load`` as before the scan: every table read into pandas."""
    with monkeypatch.context() as m:
        m.setattr(sources, "parquet_scan", lambda spec: None)
        return load(source, **kw)


def test_demo_kpis_from_the_scan_equal_the_pandas_path(demo: Path, monkeypatch) -> None:
    scan = load(demo / "source.yaml", as_of=AS_OF)
    assert isinstance(scan, ScanData)
    frames = _pandas_path(monkeypatch, demo / "source.yaml", as_of=AS_OF)
    assert not isinstance(frames, ScanData)
    for by in ("organisation", "team", "seller", "customer"):
        a = compute_kpis(scan, PERIODS, by=by, as_of=AS_OF)
        b = compute_kpis(frames, PERIODS, by=by, as_of=AS_OF)
        pd.testing.assert_frame_equal(a, b)
        assert len(a) and a["value"].notna().any()
    # the KPIs never pulled the big tables into pandas
    assert not {"deals", "activities", "leads", "revenue"} & set(scan.tables.loaded())
    # an analyst still gets the same canonical frames, row numbers included
    assert list(scan.tables) == list(frames.tables)
    for name in frames.tables:
        pd.testing.assert_frame_equal(scan.tables[name], frames.tables[name])
    assert scan.tables["deals"].index[0] == 1
    assert scan.row_counts() == {n: len(df) for n, df in frames.tables.items()}
    assert [w.sentence() for w in scan.warnings] == [w.sentence() for w in frames.warnings]
    assert scan.source == frames.source == f"PARQUET folder {demo} (via source.yaml)"


def test_a_replaced_table_is_seen_by_the_kpis(demo: Path) -> None:
    data = load(demo / "source.yaml", as_of=AS_OF)
    before = compute_kpis(data, "2026-10", kpis="won_value", as_of=AS_OF)["value"].iloc[0]
    deals = data.tables["deals"].copy()
    deals["value"] = deals["value"] * 2
    data.tables["deals"] = deals
    after = compute_kpis(data, "2026-10", kpis="won_value", as_of=AS_OF)["value"].iloc[0]
    assert before > 0 and after == pytest.approx(2 * before)
    doubled = data.replace(tables={"deals": deals})
    assert compute_kpis(doubled, "2026-10", kpis="won_value", as_of=AS_OF)["value"].iloc[0] == (
        pytest.approx(2 * before)
    )


def _small(folder: Path) -> None:
    folder.mkdir()
    pd.DataFrame(
        {"seller_id": ["S1", "S2"], "name": ["Ada", "Bo"], "team": ["North", "North"]}
    ).to_parquet(folder / "sellers.parquet", index=False)
    pd.DataFrame(
        {"company_id": ["C1", "C2"], "org_number": ["556-1", "556-2"], "name": ["Acme", "Bolt"]}
    ).to_parquet(folder / "companies.parquet", index=False)


def test_broken_parquet_folder_gives_the_same_sentences(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "broken"
    _small(folder)
    created = pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04", "2026-10-05"])
    pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D2", "D4", "D5"],
            "seller_id": ["S1", "S9", "S2", "S1", "S2"],
            "company_id": ["C1", "C2", "C7", "C1", "C2"],
            "created_at": created,
            "status": ["won", "open", "lost", "weird", "won"],
            "value": [100.0, -5.0, 10.0, 20.0, 30.0],
            "closed_at": pd.to_datetime(["2026-10-09", None, "2026-10-01", None, None]),
        }
    ).to_parquet(folder / "deals.parquet", index=False)
    assert isinstance(load(folder, validate=False), ScanData)  # read in place
    with pytest.raises(DataContractError) as scan:
        load(folder)
    with pytest.raises(DataContractError) as frames:
        _pandas_path(monkeypatch, folder)
    got = [p.sentence() for p in scan.value.problems]
    assert got == [p.sentence() for p in frames.value.problems]
    assert [w.sentence() for w in scan.value.warnings] == [
        w.sentence() for w in frames.value.warnings
    ]
    by = {(p.table, p.column, p.reason[:12]): p for p in scan.value.problems}
    # data rows counted by hand: D2 twice (rows 2 and 3), S9 on row 2, C7 on row 3,
    # -5 on row 2, closed before created on row 3, 'weird' on row 4, D5 won without a close
    assert by[("deals", "deal_id", "duplicate id")].rows == (2, 3)
    assert by[("deals", "seller_id", "unknown sell")].rows == (2,)
    assert by[("deals", "company_id", "unknown comp")].rows == (3,)
    assert by[("deals", "value", "negative amo")].rows == (2,)
    assert by[("deals", "closed_at", "closed_at is")].rows == (3,)
    assert by[("deals", "status", "unknown deal")].rows == (4,)
    assert by[("deals", "closed_at", "won or lost ")].rows == (5,)
    assert len(got) == 7


def test_a_folder_that_needs_cleaning_keeps_the_pandas_path(tmp_path: Path) -> None:
    folder = tmp_path / "dirty"
    _small(folder)
    pd.DataFrame(
        {
            "deal_id": ["D1", "D2"],
            "seller_id": ["S1 ", "S2"],  # a trailing space: stripped by the parser
            "created_at": pd.to_datetime(["2026-10-01", "2026-10-02"]),
            "status": ["Won", "open"],  # upper case: lower-cased by the parser
            "value": [100.0, 5.0],
            "closed_at": pd.to_datetime(["2026-10-09", None]),
        }
    ).to_parquet(folder / "deals.parquet", index=False)
    data = load(folder)
    assert not isinstance(data, ScanData)
    clean = pd.read_parquet(folder / "deals.parquet").replace({"S1 ": "S1", "Won": "won"})
    clean.to_parquet(folder / "deals.parquet", index=False)
    assert isinstance(load(folder), ScanData)
    assert list(data.deals["seller_id"]) == ["S1", "S2"]
    assert list(data.deals["status"]) == ["won", "open"]
    won = compute_kpis(data, "2026-10", kpis="won_value", by="seller", as_of="2026-10-31")
    assert dict(zip(won["scope_id"], won["value"], strict=True)) == {"S1": 100.0, "S2": 0.0}


def test_a_missing_currency_keeps_the_pandas_path(tmp_path: Path) -> None:
    """A missing currency is filled with the reporting one by the pandas path (not in place)."""
    folder = tmp_path / "cur"
    _small(folder)
    pd.DataFrame(
        {
            "deal_id": [f"D{i:03d}" for i in range(300)],
            "seller_id": ["S1"] * 300,
            "created_at": pd.to_datetime(["2026-10-01"] * 300),
            "status": ["open"] * 300,
            "value": [1.0] * 300,
            "currency": ["EUR"] * 299 + [None],  # dictionary-encoded: one missing value
        }
    ).to_parquet(folder / "deals.parquet", index=False)
    data = load(folder)
    assert not isinstance(data, ScanData)
    assert (data.deals["currency"] == "EUR").all()


def test_scan_fingerprint_reads_no_frame_and_sees_one_changed_value(
    demo: Path, tmp_path: Path
) -> None:
    """Issue 10: the run names its snapshot without materialising a table."""
    import shutil

    data = load(demo / "source.yaml", as_of=AS_OF)
    assert isinstance(data, ScanData)
    read = set(data.tables.loaded())  # the small tables validation looked at
    assert "deals" not in read
    fp = data.fingerprint()
    assert set(data.tables.loaded()) == read  # the fingerprint read nothing more
    assert load(demo / "source.yaml", as_of=AS_OF).fingerprint() == fp  # stable
    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    assert load(copy / "source.yaml", as_of=AS_OF).fingerprint() == fp  # content, not path
    deals = pd.read_parquet(copy / "deals.parquet")
    deals.loc[7, "value"] = deals.loc[7, "value"] + 1.0  # one number of one row
    deals.to_parquet(copy / "deals.parquet", index=False)
    changed = load(copy / "source.yaml", as_of=AS_OF)
    assert isinstance(changed, ScanData)
    changed_fp = changed.fingerprint()  # (the views read the files when asked)
    assert changed_fp != fp
    shutil.copy(demo / "deals.parquet", copy / "deals.parquet")
    costs = pd.read_parquet(demo / "costs.parquet")
    costs = pd.concat([costs, costs.iloc[[3]]], ignore_index=True)  # one row twice
    costs.to_parquet(copy / "costs.parquet", index=False)
    dup = load(copy / "source.yaml", as_of=AS_OF)
    assert isinstance(dup, ScanData) and dup.fingerprint() not in (fp, changed_fp)
    # a replaced table leaves the files: the pandas fingerprint of the frames
    frames = dict(data.tables.items())
    data.tables["deals"] = data.tables["deals"].copy()
    assert (
        data.fingerprint()
        == CrmData(frames, timezone=data.timezone, currency=data.currency).fingerprint()
    )


def test_snapshot_of_a_scan_is_copied_by_duckdb_and_reads_back_equal(
    demo: Path, tmp_path: Path
) -> None:
    """Issue 10: write_snapshot copies the files without pandas; read_snapshot checks them."""
    import json

    from kpireport.data.model import SCAN_FINGERPRINT
    from kpireport.errors import SourceError
    from kpireport.report import snapshot as snap

    data = load(demo / "source.yaml", as_of=AS_OF)
    read = set(data.tables.loaded())
    source_yaml = snap.write_snapshot(data, tmp_path / "snap")
    assert set(data.tables.loaded()) == read and "deals" not in read
    marker = json.loads((tmp_path / "snap" / snap.MARKER).read_text())
    assert marker["fingerprint"] == data.fingerprint()
    assert marker["fingerprint_method"] == snap.SCAN_METHOD == SCAN_FINGERPRINT
    back = snap.read_snapshot(source_yaml)
    assert sorted(back.tables) == sorted(data.tables)
    for name in data.tables:
        pd.testing.assert_frame_equal(
            back.tables[name], data.tables[name].reset_index(drop=True), check_names=True
        )
    assert back.timezone == data.timezone and back.currency == data.currency
    # the same frames written by pandas read back identically
    pandas_snap = snap.write_snapshot(CrmData(dict(data.tables.items())), tmp_path / "pd")
    for name in data.tables:
        pd.testing.assert_frame_equal(
            snap.read_snapshot(pandas_snap).tables[name], back.tables[name]
        )
    deals = pd.read_parquet(tmp_path / "snap" / "deals.parquet")
    deals.loc[0, "stage"] = "tampered"
    deals.to_parquet(tmp_path / "snap" / "deals.parquet", index=False)
    with pytest.raises(SourceError, match="does not match its fingerprint"):
        snap.read_snapshot(source_yaml)


def test_the_cube_of_a_scanned_folder_reads_only_the_small_tables(
    demo: Path, tmp_path: Path
) -> None:
    """Issue 10: snapshot + cube of a team run over a scanned Parquet folder keep the big tables on disk."""
    from kpireport.report import snapshot as snap
    from kpireport.report.cube import write_cube
    from kpireport.report.runner import plan_reports
    from kpireport.resources import resource_dir

    data = load(demo / "source.yaml", as_of=AS_OF)
    assert isinstance(data, ScanData)
    source = demo / "source.yaml"
    specs = plan_reports(
        resource_dir("params") / "team_monthly.yaml",
        source=source,
        as_of=AS_OF,
        out=tmp_path / "out",
    )
    assert len(specs) >= 2  # one group of team reports: the cube pass evaluates one of them
    folder = tmp_path / "snap"
    snap.write_snapshot(data, folder)
    write_cube(data, specs, folder)
    assert (folder / "cube" / "stubs" / "deals.parquet").is_file()
    assert set(data.tables.loaded()) <= {"sellers", "costs", "goals"}
