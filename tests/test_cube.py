"""The per-run KPI cube (issue 10 item 4): computed once in the runner, read by the kernels.

Real demo data, a real snapshot and cube on disk, the real views: a report
evaluated on the cube shows the same numbers as on the whole snapshot, its
queries all come from the cube, and no large raw table is read except the
few the view and goal code index directly (listed below, with why).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import kpireport
from kpireport.kpis.cube import (
    CUBE_ENV,
    CubeData,
    LazyTables,
    misses,
    read_entries,
    write_entries,
)
from kpireport.report import views
from kpireport.report.cube import evaluate_notebook, notebook_calls, write_cube
from kpireport.report.runner import plan_reports
from kpireport.report.snapshot import read_snapshot, write_snapshot

PARAMS = Path(kpireport.__file__).parent / "resources" / "params"
AS_OF = "2026-11-30"
#: the only tables a team report or scorecard kernel reads whole: seller names and
#: teams, and the goals (kpireport.kpis.cube.SMALL_TABLES); the funnel counts, the
#: open deals, the stage win rates and the customer-goal id check are engine queries
SMALL = {"sellers", "goals"}


@pytest.fixture(scope="module")
def cube_snapshot(tmp_path_factory):
    """The demo data, its snapshot, and a cube for the team run and the seller run."""
    from kpireport import load

    tmp = tmp_path_factory.mktemp("cube")
    source = views.demo_source(tmp / "demo", as_of=AS_OF)
    data = load(source)
    specs = []
    for run in ("team_monthly.yaml", "seller_monthly.yaml"):
        specs += plan_reports(PARAMS / run, source=source, as_of=AS_OF, out=tmp / "out")
    folder = tmp / "snap"
    write_snapshot(data, folder)
    write_cube(data, specs, folder)
    return folder, specs


def _evaluate(spec, data):
    """The report's sections evaluated as its notebook calls them; ``.kpis`` holds their rows."""
    assert notebook_calls(spec.notebook) is not None  # the notebook takes part in the cube
    sections = [
        s for s in evaluate_notebook(data, spec.notebook, spec.parameters) if hasattr(s, "kpis")
    ]
    frames = [s.kpis for s in sections if s.kpis is not None and len(s.kpis)]
    return SimpleNamespace(kpis=pd.concat(frames, ignore_index=True))


def _plain(folder, monkeypatch):
    monkeypatch.setenv(CUBE_ENV, "0")
    data = read_snapshot(folder / "source.yaml")
    monkeypatch.delenv(CUBE_ENV)
    assert not isinstance(data, CubeData)
    return data


def _same_kpis(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables; values equal to 1e-9 relative (DuckDB double sums may differ in the last bit)."""
    assert len(a) > 10 and a.shape == b.shape
    keys = ["kpi", "scope", "scope_id", "period"]
    pd.testing.assert_frame_equal(a[keys].astype("str"), b[keys].astype("str"))
    va = pd.to_numeric(a["value"], errors="coerce").to_numpy(float)
    vb = pd.to_numeric(b["value"], errors="coerce").to_numpy(float)
    np.testing.assert_allclose(va, vb, rtol=1e-9, atol=0, equal_nan=True)


@pytest.mark.parametrize("scope_id", ["Enterprise", "Partners Öst", "S003", "S014"])
def test_report_reads_its_numbers_from_the_cube(cube_snapshot, monkeypatch, scope_id):
    folder, specs = cube_snapshot
    spec = next(s for s in specs if s.scope_id == scope_id)
    data = read_snapshot(folder / "source.yaml")
    assert isinstance(data, CubeData) and isinstance(data.tables, LazyTables)
    view = _evaluate(spec, data)
    missed = misses(data)
    assert missed["queries"] == []  # every engine query (and the validated goals) from the cube
    assert missed["tables"] == []  # no deals, companies, revenue, leads, activities, costs
    assert set(data.tables.loaded()) <= SMALL
    _same_kpis(view.kpis, _evaluate(spec, _plain(folder, monkeypatch)).kpis)


def test_a_query_the_cube_lacks_is_a_counted_miss_with_the_same_answer(cube_snapshot, monkeypatch):
    folder, specs = cube_snapshot
    spec = next(s for s in specs if s.scope_id == "SMB")
    other = type(spec)(**{**spec.__dict__, "parameters": {**spec.parameters, "period": "2026-08"}})
    data = read_snapshot(folder / "source.yaml")
    view = _evaluate(other, data)
    missed = misses(data)
    assert len(missed["queries"]) > 5 and missed["queries"][0][0] in ("sql", "sqlc", "range")
    # a miss runs on DuckDB over the snapshot's Parquet: no large table pulled into pandas for it
    assert {"leads", "activities"}.isdisjoint(data.tables.loaded())
    _same_kpis(view.kpis, _evaluate(other, _plain(folder, monkeypatch)).kpis)


def test_cube_folder_is_tidy_parquet_and_records_the_batch(cube_snapshot):
    folder, specs = cube_snapshot
    meta = json.loads((folder / "cube" / "CUBE.json").read_text())
    # two groups (teams, sellers), each evaluated once; the per-scope statements replayed
    assert meta["groups"] == 2 and meta["evaluated"] == 2 and meta["replayed"] > len(specs)
    q = pd.read_parquet(folder / "cube" / "queries.parquet")
    v = pd.read_parquet(folder / "cube" / "values.parquet")
    kinds = {"sql", "sqlc", "range", "data_end", "frame", "goals"}
    assert len(q) == meta["entries"] and set(q["kind"]) <= kinds
    # the per-run tables (deals open on as_of, the validated goals): one Parquet file each
    tables = q[q["types"] == "P"]
    assert set(tables["kind"]) == {"frame", "goals"} and (tables["kind"] == "goals").sum() == 1
    for e in tables["entry"]:
        assert (folder / "cube" / "frames" / f"{e}.parquet").is_file()
    cells = q[q["types"] != "P"]
    assert v["entry"].isin(cells["entry"]).all()
    assert len(v) == (cells["ncols"] * cells["nrows"]).sum()


def test_look_ups_outside_the_formulas_come_from_the_cube_unchanged(cube_snapshot, monkeypatch):
    """Open deals, stage win rates, the funnel's deal count, the goal table and its
    customer ids: the same as the pandas look-ups on the whole data, read from the cube."""
    from kpireport.constants import Scope
    from kpireport.forecasting import stage_win_rates
    from kpireport.goals.definitions import load_goals, unknown_ids, validate_goals
    from kpireport.goals.evaluate import _stage_win_rates, open_deals_at
    from kpireport.report.views.blocks import _deals_created

    folder, _ = cube_snapshot
    data = read_snapshot(folder / "source.yaml")
    plain = _plain(folder, monkeypatch)
    day, end = pd.Timestamp(AS_OF), pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    d = plain.tables["deals"]
    # the pandas definitions, by hand on the whole deals table
    later = d["status"].isin(["won", "lost"]) & (d["closed_at"] >= end)
    mask = (d["created_at"] < end) & ((d["status"] == "open") | later)
    opened = open_deals_at(data, day)
    assert len(opened) == mask.sum() > 20
    assert list(opened["deal_id"]) == list(d.loc[mask, "deal_id"])  # the table's order
    assert list(opened["closed_later"]) == list(later[mask])
    pd.testing.assert_frame_equal(opened, open_deals_at(plain, day))
    rates = _stage_win_rates(data, end)
    assert rates == stage_win_rates(d[d["closed_at"] < end]) and len(rates) == 3
    enterprise = set(plain.sellers.loc[plain.sellers["team"] == "Enterprise", "seller_id"])
    oct_ = d[(d["created_at"] >= "2026-10-01") & (d["created_at"] < "2026-11-01")]
    want = int(oct_["seller_id"].isin(enterprise).sum())
    got = _deals_created(data, "2026-10-01", "2026-11-01", Scope.TEAM, "Enterprise")
    assert got == want > 0
    goals = load_goals(data)
    pd.testing.assert_frame_equal(goals, validate_goals(plain.tables["goals"], plain))
    company = str(plain.tables["companies"]["company_id"].iloc[0])
    assert unknown_ids(data, Scope.CUSTOMER, [company, "C-NOPE"]) == {"C-NOPE"}
    # ... all of it answered by the cube (the id check is a miss: no goal names 'C-NOPE')
    assert misses(data)["tables"] == [] and set(data.tables.loaded()) <= SMALL
    assert [m[0] for m in misses(data)["queries"]] == ["sql"]


def test_entries_round_trip_bit_for_bit(tmp_path):
    ts = dt.datetime(2026, 3, 29, 1, 59, 59, 999999)
    entries = {
        ("sqlc", "SELECT 1"): [
            np.array([0.1 + 0.2, np.nan, -0.0, 1e300]),
            np.array(["Öst", None, "", "x'y"], dtype=object),
        ],
        ("sqlc", "SELECT 2"): [np.array([], float), np.array([], dtype=object)],
        ("sql", "SELECT 3"): [(3.5, None, "a", ts, dt.date(2024, 2, 29), True, 2**62)],
        ("sql", "SELECT 4"): [],
        ("range", "deals", "created_at"): (1_700_000_000_123_456_789, 1_800_000_000_000_000_001),
        ("range", "leads", "qualified_at"): None,
        ("data_end",): 1_764_547_200_000_000_000,
        ("lead_sources",): pd.Index(["Web", "(unknown)"], dtype="str", name="source"),
        ("duckdb",): object(),  # not persisted
    }
    assert write_entries(entries, tmp_path) == 8
    back = read_entries(tmp_path)
    assert set(back) == set(entries) - {("duckdb",)}
    a = back[("sqlc", "SELECT 1")]
    assert a[0].dtype == np.float64 and a[0].tobytes() == entries[("sqlc", "SELECT 1")][0].tobytes()
    assert list(a[1]) == ["Öst", None, "", "x'y"]
    assert [len(c) for c in back[("sqlc", "SELECT 2")]] == [0, 0]
    assert back[("sql", "SELECT 3")] == [(3.5, None, "a", ts, dt.date(2024, 2, 29), True, 2**62)]
    assert back[("sql", "SELECT 4")] == []
    assert back[("range", "deals", "created_at")] == entries[("range", "deals", "created_at")]
    assert back[("range", "leads", "qualified_at")] is None
    assert back[("data_end",)] == 1_764_547_200_000_000_000
    assert list(back[("lead_sources",)]) == ["Web", "(unknown)"]


def test_cube_switched_off_reads_the_snapshot_whole(cube_snapshot, monkeypatch):
    folder, _ = cube_snapshot
    data = _plain(folder, monkeypatch)
    assert isinstance(data.tables, dict) and len(data.tables["activities"]) > 1000


def test_a_changed_dataset_no_longer_reads_the_cube(cube_snapshot):
    from kpireport.kpis import compute_kpis

    folder, _ = cube_snapshot
    data = read_snapshot(folder / "source.yaml")
    relabelled = data.replace(organisation="Other name")
    assert isinstance(relabelled, CubeData) and relabelled.cube is data.cube
    deals = data.tables["deals"]
    half = data.replace(tables={"deals": deals[deals["value"] < deals["value"].median()]})
    assert type(half) is not CubeData and not hasattr(half, "cube")
    won = [
        compute_kpis(d, ["2026-10"], by="organisation", kpis=["won_value"], as_of=AS_OF)["value"][0]
        for d in (data, half)
    ]
    assert 0 < won[1] < won[0]  # the smaller deals only: not the cube's answer


def test_widened_replay_gives_each_scorecard_what_its_own_statement_gives(cube_snapshot):
    """The scorecards' per-seller trend statements come from one widened query (report/cube.py)."""
    folder, _ = cube_snapshot
    entries = read_entries(folder / "cube")
    engine = read_snapshot(folder / "source.yaml").cube.engine()
    checked = 0
    for seller in ("S003", "S014"):
        for key in [k for k in entries if k[0] == "sqlc" and f"= '{seller}' THEN" in k[1]]:
            got, want = entries[key], engine.columns(key[1])

            def cells(cols, own, seller=seller):
                sums: dict[tuple, np.ndarray] = {}
                for r in range(len(cols[0])):
                    if (cols[1][r] == seller) == own:
                        cell = (cols[0][r], cols[3][r])
                        row = np.array([c[r] for c in cols[4:]], float)
                        sums[cell] = sums.get(cell, 0) + row
                return sums

            for own in (True, False):  # the seller's column, then the unattributed one
                a, b = cells(got, own), cells(want, own)
                assert {k for k in a if a[k].any()} == {k for k in b if b[k].any()}
                for cell in b:
                    np.testing.assert_allclose(a.get(cell, 0 * b[cell]), b[cell], rtol=1e-9)
            checked += 1
    assert checked >= 2
