"""Property tests of the KPI engine on random small CRMs (hypothesis).

* additive KPIs of all teams (+ unattributed) and of all sellers (+ unattributed)
  sum to the organisation's;
* the months of a quarter sum to the quarter; a quarter or year holding the
  cut (``as_of`` or the data's end) is the sum of its months that are known;
* shuffling the rows of every table changes nothing;
* the lead KPIs broken down by source add up: ``new_leads`` and ``sql`` of
  the sources sum to the un-broken-down value for every scope id, and so do
  the converted leads (``lead_conversion`` x ``new_leads``).
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpireport.data.model import CrmData
from kpireport.kpis import REGISTRY, UNATTRIBUTED, compute_kpis

SELLERS = ["S1", "S2", "S3", "S4"]
TEAMS = {"S1": "A", "S2": "A", "S3": "B", "S4": "C"}
COMPANIES = ["C1", "C2", "C3", "C4", "C5"]
ADDITIVE = [k.name for k in REGISTRY.values() if k.additive]
START = pd.Timestamp("2025-10-01")

days = st.integers(min_value=0, max_value=300)
seller = st.one_of(st.none(), st.sampled_from(SELLERS))
company = st.sampled_from(COMPANIES)


def _ts(d: int, minute: int = 0) -> pd.Timestamp:
    return START + pd.Timedelta(days=d, minutes=minute)


@st.composite
def crm_data(draw: st.DrawFn) -> CrmData:
    leads = draw(
        st.lists(st.tuples(days, company, seller, st.one_of(st.none(), days)), max_size=15)
    )
    sources = draw(
        st.lists(
            st.sampled_from([None, "web", "event", " referral", ""]),
            min_size=len(leads),
            max_size=len(leads),
        )
    )
    deals = draw(
        st.lists(
            st.tuples(days, st.sampled_from(SELLERS), company, st.sampled_from(["open", "won", "lost"]),
                      st.integers(0, 120), st.integers(1, 50), st.floats(0, 1)),
            max_size=15,
        )
    )  # fmt: skip
    acts = draw(
        st.lists(
            st.tuples(
                days, st.sampled_from(SELLERS), st.sampled_from(["call", "meeting", "quote"])
            ),
            max_size=15,
        )
    )
    rev = draw(st.lists(st.tuples(days, company, seller, st.integers(-50, 200)), max_size=15))
    costs = draw(
        st.lists(
            st.tuples(
                days, st.one_of(st.none(), st.sampled_from(["A", "B", "Z"])), st.integers(0, 100)
            ),
            max_size=6,
        )
    )
    sellers = pd.DataFrame(
        {
            "seller_id": SELLERS,
            "name": SELLERS,
            "team": [TEAMS[s] for s in SELLERS],
            "monthly_cost": [1000.0, 2000.0, 0.0, 310.0],
            "active_from": pd.to_datetime(["2025-01-01", "2025-11-10", None, "2026-02-15"]),
            "active_to": pd.to_datetime([None, "2026-01-20", None, None]),
        }
    )
    companies = pd.DataFrame({"company_id": COMPANIES, "org_number": ["1", "2", "2", "3", "4"], "name": COMPANIES,
                              "industry": "x", "created_at": pd.NaT})  # fmt: skip
    ld = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(len(leads))],
            "created_at": [_ts(d) for d, *_ in leads],
            "company_id": [c for _, c, _, _ in leads],
            "seller_id": [s for _, _, s, _ in leads],
            "source": sources,
            "qualified_at": [None if q is None else _ts(max(q, d)) for d, _, _, q in leads],
        }
    )
    dl = pd.DataFrame(
        {
            "deal_id": [f"D{i}" for i in range(len(deals))],
            "seller_id": [d[1] for d in deals],
            "created_at": [_ts(d[0]) for d in deals],
            "status": [d[3] for d in deals],
            "value": [float(d[5] * 100) for d in deals],
            "company_id": [d[2] for d in deals],
            "lead_id": [f"L{i}" if i < len(leads) else None for i in range(len(deals))],
            "stage": "x",
            "probability": [d[6] for d in deals],
            "closed_at": [None if d[3] == "open" else _ts(d[0] + d[4]) for d in deals],
            "expected_close_at": pd.NaT,
            "currency": "EUR",
        }
    )
    ac = pd.DataFrame(
        {
            "activity_id": [f"A{i}" for i in range(len(acts))],
            "seller_id": [a[1] for a in acts],
            "type": [a[2] for a in acts],
            "occurred_at": [_ts(a[0], 1439) for a in acts],  # 23:59
            "company_id": None,
            "deal_id": None,
        }
    )
    rv = pd.DataFrame(
        {
            "invoice_id": [f"I{i}" for i in range(len(rev))],
            "company_id": [r[1] for r in rev],
            "date": [_ts(r[0]) for r in rev],
            "amount": [float(r[3]) for r in rev],
            "product": "p",
            "seller_id": [r[2] for r in rev],
            "deal_id": None,
            "currency": "EUR",
        }
    )
    co = pd.DataFrame(
        {
            "date": [_ts(c[0]) for c in costs],
            "category": "marketing",
            "amount": [float(c[2]) for c in costs],
            "team": [c[1] for c in costs],
            "currency": "EUR",
        }
    )
    tables = {"sellers": sellers, "companies": companies, "leads": ld, "deals": dl, "activities": ac,
              "revenue": rv, "costs": co}  # fmt: skip
    return CrmData({k: _canonical(v) for k, v in tables.items()})


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if c in ("created_at", "qualified_at", "closed_at", "expected_close_at", "occurred_at", "date",
                 "active_from", "active_to"):  # fmt: skip
            out[c] = pd.to_datetime(out[c]).astype("datetime64[ns]")
        elif c in ("value", "amount", "probability", "monthly_cost"):
            out[c] = out[c].astype("float64")
        else:
            out[c] = out[c].astype("str")
    return out


PROFILE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(crm_data())
def test_additive_kpis_of_teams_and_sellers_sum_to_the_organisation(data: CrmData) -> None:
    org = compute_kpis(data, "2026-Q1", kpis=ADDITIVE).set_index("kpi")["value"]
    for by in ("team", "seller"):
        df = compute_kpis(data, "2026-Q1", by=by, kpis=ADDITIVE, unattributed=True)
        assert UNATTRIBUTED in set(df["scope_id"])
        total = df.groupby("kpi", sort=False)["value"].sum(min_count=1)
        np.testing.assert_allclose(
            total[org.index].to_numpy(), org.to_numpy(), rtol=1e-9, atol=1e-9
        )


@PROFILE
@given(crm_data())
def test_months_of_a_quarter_sum_to_the_quarter(data: CrmData) -> None:
    months = compute_kpis(data, ["2026-01", "2026-02", "2026-03"], by="team", kpis=ADDITIVE)
    quarter = compute_kpis(data, "2026-Q1", by="team", kpis=ADDITIVE)
    summed = months.groupby(["kpi", "scope_id"])["value"].sum(min_count=1)
    q = quarter.set_index(["kpi", "scope_id"])["value"]
    np.testing.assert_allclose(summed[q.index].to_numpy(), q.to_numpy(), rtol=1e-9, atol=1e-9)


@PROFILE
@given(crm_data(), st.one_of(st.none(), days.map(lambda d: _ts(d).date())))
def test_a_partial_period_is_the_sum_of_its_known_months(data: CrmData, as_of) -> None:
    """Every KPI of a quarter or year holding the cut (``as_of`` or the data's end) is
    evaluated up to that cut, like its months: additive ones equal the sum of the months
    that are not NaN (found: seller costs kept accruing after the data's last day)."""
    months = [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)]
    per_month = compute_kpis(data, months, kpis=ADDITIVE, as_of=as_of)
    longer = compute_kpis(data, ["2025", "2026", "2026-Q1", "2026-Q2", "2026-Q3"], kpis=ADDITIVE,
                          as_of=as_of).set_index(["kpi", "period"])["value"]  # fmt: skip
    per_month["parent"] = per_month["period"].str[:4]
    q = (per_month["period"].str[5:].astype(int) - 1) // 3 + 1
    quarters = per_month.assign(parent=per_month["parent"] + "-Q" + q.astype(str))
    both = pd.concat([per_month, quarters[quarters["parent"] < "2026-Q4"]])
    summed = both.groupby(["kpi", "parent"])["value"].sum(min_count=1)
    summed.index.names = ["kpi", "period"]
    np.testing.assert_allclose(
        summed[longer.index].to_numpy(), longer.to_numpy(), rtol=1e-9, atol=1e-9
    )
    # a period is NaN exactly when it starts after the cut; complete only when it ends before
    future = per_month.groupby("period")["value"].apply(lambda v: v.isna().all())
    incomplete = ~per_month.groupby("period")["complete"].first()
    assert (future <= incomplete).all()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(crm_data(), st.randoms(use_true_random=False))
def test_shuffling_rows_changes_nothing(data: CrmData, rnd: random.Random) -> None:
    shuffled = CrmData(
        {
            k: v.sample(frac=1, random_state=rnd.randint(0, 10_000)).reset_index(drop=True)
            for k, v in data.tables.items()
        }
    )
    periods = ["2025-12", "2026-Q1", "2026-04"]
    for by in ("organisation", "team", "seller", "customer"):
        a = (
            compute_kpis(data, periods, by=by)
            .sort_values(["kpi", "period", "scope_id"])
            .reset_index(drop=True)
        )
        b = (
            compute_kpis(shuffled, periods, by=by)
            .sort_values(["kpi", "period", "scope_id"])
            .reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(a.drop(columns="value"), b.drop(columns="value"))
        np.testing.assert_allclose(a["value"], b["value"], rtol=1e-9, atol=1e-9, equal_nan=True)


@PROFILE
@given(crm_data())
def test_lead_kpis_by_source_sum_to_the_total(data: CrmData) -> None:
    periods = ["2026-01", "2026-Q1"]
    kpis = ["new_leads", "sql", "lead_conversion"]
    for by in ("organisation", "team", "seller"):
        total = compute_kpis(data, periods, by=by, kpis=kpis, unattributed=True)
        split = compute_kpis(data, periods, by=by, kpis=kpis, unattributed=True, breakdown="source")
        assert (split["source"] != "").all() and split["source"].notna().all()
        keys = ["kpi", "period", "scope_id"]
        t = total.fillna({"scope_id": "-"}).set_index(keys)["value"]
        s = split.fillna({"scope_id": "-"})
        summed = s.groupby(keys, sort=False)["value"].sum(min_count=1)
        for kpi in ("new_leads", "sql"):
            np.testing.assert_allclose(summed.loc[kpi].sort_index(), t.loc[kpi].sort_index())
        # converted leads = conversion x leads, additive over sources (NaN cells have no leads)
        idx = s.set_index([*keys, "source"])["value"]
        converted = (
            (idx.loc["lead_conversion"].fillna(0) * idx.loc["new_leads"])
            .groupby(level=["period", "scope_id"])
            .sum(min_count=1)  # a period after the data is NaN in every source and in total
        )
        expected = (t.loc["lead_conversion"].fillna(0) * t.loc["new_leads"]).sort_index()
        np.testing.assert_allclose(converted.sort_index(), expected, atol=1e-9)
