"""CRM presets (issue 13 item 3): each vendor's export gives the KPIs of the canonical demo slice.

The exports in tests/data/presets/ are written by tests/make_preset_fixtures.py
from the demo (seed 7); ``reference(vendor)`` is the same slice in canonical
form, minus what the vendor's standard export cannot carry.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kpireport
from kpireport.errors import SourceError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_preset_fixtures import OUT, VENDORS, export, reference  # noqa: E402

AS_OF = "2026-12-01"
PERIODS = ["2026-10", "2026-11"]


@pytest.fixture(scope="module")
def loaded() -> dict[str, kpireport.CrmData]:
    return {v: kpireport.load(OUT / v / "source.yaml", as_of=AS_OF) for v in VENDORS}


def test_fixture_exports_are_what_the_script_writes() -> None:
    for vendor in VENDORS:
        for name, frame in export(vendor).items():
            on_disk = pd.read_csv(OUT / vendor / name, dtype=str, keep_default_na=False)
            fresh = frame.astype(object).where(frame.notna(), "").astype(str)
            assert list(on_disk.columns) == list(frame.columns), (vendor, name)
            assert len(on_disk) == len(frame), (vendor, name)
            assert 300 <= len(on_disk) <= 1000 or name.lower().startswith(
                ("user", "owner", "system")
            )
            assert on_disk.iloc[:, 0].tolist() == fresh.iloc[:, 0].tolist(), (vendor, name)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("by", ["organisation", "team"])
def test_preset_gives_the_kpis_of_the_canonical_data(
    loaded: dict[str, kpireport.CrmData], vendor: str, by: str
) -> None:
    ref = kpireport.load(reference(vendor), as_of=AS_OF)
    got = kpireport.compute_kpis(loaded[vendor], PERIODS, by=by, as_of=AS_OF)
    want = kpireport.compute_kpis(ref, PERIODS, by=by, as_of=AS_OF)
    keys = ["kpi", "scope", "scope_id", "period"]
    m = got.merge(want, on=keys, how="outer", suffixes=("", "_ref"), indicator=True)
    assert (m["_merge"] == "both").all()
    same = np.isclose(m["value"].astype(float), m["value_ref"].astype(float), equal_nan=True)
    assert same.all(), m.loc[~same, [*keys, "value", "value_ref"]].to_string()
    # the comparison is not vacuous: deals, leads, activities and probabilities all arrive
    org = got[got["scope"] == "organisation"] if by == "organisation" else None
    if org is not None:
        v = org.set_index(["kpi", "period"])["value"]
        assert v["deals_won", "2026-11"] > 0 and v["won_value", "2026-11"] > 0
        assert v["new_leads", "2026-11"] > 0 and v["meetings_booked", "2026-11"] > 0
        assert v["quotes_sent", "2026-11"] > 0
        assert 0 < v["weighted_pipeline", "2026-11"] < v["pipeline_value", "2026-11"]


def test_salesforce_numbers_by_hand(loaded: dict[str, kpireport.CrmData]) -> None:
    """Won opportunities of November read straight from Opportunity.csv, and 0..100 probabilities."""
    opp = pd.read_csv(OUT / "salesforce" / "Opportunity.csv", dtype=str)
    nov = opp[(opp["IsWon"] == "true") & opp["CloseDate"].str.startswith("2026-11")]
    kpis = kpireport.compute_kpis(loaded["salesforce"], "2026-11", kpis=["deals_won", "won_value"])
    v = kpis.set_index("kpi")["value"]
    assert v["deals_won"] == len(nov) > 0
    assert v["won_value"] == pytest.approx(nov["Amount"].astype(float).sum())
    deals = loaded["salesforce"].deals
    open_ = deals[deals["status"] == "open"]
    assert set(open_["probability"].round(2)) <= {0.1, 0.25, 0.5, 0.75}
    assert set(deals.loc[deals["status"] == "won", "probability"]) == {1.0}
    # status came from IsClosed|IsWon, lead_id from Lead.ConvertedOpportunityId
    assert (deals["status"] == "won").sum() == (opp["IsWon"] == "true").sum()
    lead = pd.read_csv(OUT / "salesforce" / "Lead.csv", dtype=str)
    assert deals["lead_id"].notna().sum() == lead["ConvertedOpportunityId"].notna().sum() > 0
    assert deals.loc[deals["status"] == "open", "closed_at"].isna().all()


def test_source_yaml_overrides_the_preset(tmp_path: Path) -> None:
    folder = tmp_path / "sf"
    shutil.copytree(OUT / "salesforce", folder)
    (folder / "source.yaml").write_text(
        "path: .\npreset: salesforce\ntables:\n  deals:\n    values:\n"
        '      status: {"true|false": won}\n',
        encoding="utf-8",
    )
    data = kpireport.load(folder / "source.yaml", as_of=AS_OF)
    opp = pd.read_csv(folder / "Opportunity.csv", dtype=str)
    assert (data.deals["status"] == "won").sum() == (opp["IsClosed"] == "true").sum()
    assert (data.deals["status"] == "open").sum() == (opp["IsClosed"] == "false").sum()


def test_a_copied_preset_file_can_be_edited(tmp_path: Path) -> None:
    folder = tmp_path / "hs"
    shutil.copytree(OUT / "hubspot", folder)
    text = (Path(kpireport.__file__).parent / "resources/presets/hubspot.yaml").read_text()
    (folder / "my_hubspot.yaml").write_text(text.replace("team: Team", "team: Email"))
    (folder / "source.yaml").write_text("path: .\npreset: my_hubspot.yaml\n", encoding="utf-8")
    data = kpireport.load(folder / "source.yaml", as_of=AS_OF)
    assert data.sellers["team"].str.endswith("@example.com").all()


def test_unknown_preset_suggests_the_near_one(tmp_path: Path) -> None:
    (tmp_path / "source.yaml").write_text("path: .\npreset: salesfroce\n", encoding="utf-8")
    with pytest.raises(
        SourceError, match=r"Unknown preset 'salesfroce' \(did you mean 'salesforce'\?\)"
    ):
        kpireport.load(tmp_path / "source.yaml")


def test_a_missing_mapped_column_names_the_table(tmp_path: Path) -> None:
    folder = tmp_path / "sf"
    shutil.copytree(OUT / "salesforce", folder)
    opp = pd.read_csv(folder / "Opportunity.csv", dtype=str).drop(columns=["IsWon"])
    opp.to_csv(folder / "Opportunity.csv", index=False)
    with pytest.raises(SourceError, match="The column 'IsWon' .* is not in the deals table"):
        kpireport.load(folder / "source.yaml")
