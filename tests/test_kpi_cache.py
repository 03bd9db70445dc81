"""The KPI cache never serves stale numbers (issue 9, item 8; docs/DATA.md "The dataset is read-only").

The tiny March-2026 fixture of tests/test_kpis.py: won value in March is
D1 1000 + D2 3000 + D5 4000 = 8000 (D7 closes on 1 April).
"""

from __future__ import annotations

import pytest

from kpireport.kpis import compute_kpis
from tests.test_kpis import read_fixture, value


def test_in_place_column_edit_is_reflected() -> None:
    data = read_fixture()
    assert value(compute_kpis(data, "2026-03", kpis="won_value"), "won_value") == 8000
    data.tables["deals"]["value"] *= 2
    assert value(compute_kpis(data, "2026-03", kpis="won_value"), "won_value") == 16000
    data.deals["value"] = data.deals["value"] / 4
    assert value(compute_kpis(data, "2026-03", kpis="won_value"), "won_value") == 4000


def test_replaced_table_and_text_edit_are_reflected() -> None:
    data = read_fixture()
    teams = compute_kpis(data, "2026-03", by="team", kpis="won_value")
    assert value(teams, "won_value", "North") == 4000  # D1 + D2 (Anna)
    assert value(teams, "won_value", "South") == 4000  # D5 (Cai)
    data.sellers.loc[data.sellers["seller_id"] == "003", "team"] = "North"  # Arrow text column
    teams = compute_kpis(data, "2026-03", by="team", kpis="won_value")
    assert value(teams, "won_value", "North") == 8000
    deals = data.deals[data.deals["deal_id"] != "D2"]
    data.tables["deals"] = deals
    assert value(compute_kpis(data, "2026-03", kpis="won_value"), "won_value") == 5000


def test_numbers_cannot_be_written_in_place_and_replace_returns_a_new_dataset() -> None:
    data = read_fixture()
    compute_kpis(data, "2026-03", kpis="won_value")
    with pytest.raises(ValueError, match="read-only"):
        data.deals.loc[1, "value"] = 0.0
    before = data.deals["created_at"].iloc[1]
    with pytest.raises(ValueError):  # pandas words it "Incompatible ... value" for dates
        data.deals.loc[1, "created_at"] = data.deals["created_at"].iloc[0]
    assert data.deals["created_at"].iloc[1] == before
    doubled = data.deals.assign(value=data.deals["value"] * 2)
    new = data.replace(tables={"deals": doubled})
    assert value(compute_kpis(new, "2026-03", kpis="won_value"), "won_value") == 16000
    assert value(compute_kpis(data, "2026-03", kpis="won_value"), "won_value") == 8000
    assert new.sellers is data.sellers and new.currency == data.currency


def test_unchanged_dataset_reuses_its_cache_and_duckdb_connection() -> None:
    """The token check must not miss on an unchanged dataset (it once always did:
    ``tuple(df.columns)`` is a new tuple on every call, so identity never matched)."""
    from kpireport.kpis.engine import prepared

    data = read_fixture()
    compute_kpis(data, "2026-03", by="team")
    prep = prepared(data)
    con = prep.sql_engine()
    compute_kpis(data, "2026-03", by="seller")
    assert prepared(data) is prep and prep.sql_engine() is con
    data.tables["deals"]["value"] *= 2
    assert prepared(data) is not prep
    assert prepared(data).sql_engine() is not con
