"""Write realistic CRM exports (Salesforce, HubSpot, Pipedrive, Dynamics 365) from the demo data.

Each export is what that CRM's standard export gives for a slice of the demo
CRM (seed 7, scale 0.05, as of 2026-12-01): deals created or closed in
October–November 2026 plus the open ones, the leads and activities of
November, the sellers and companies they refer to — a few hundred rows per
table, with the vendor's column names, id formats, vocabularies and
0–100 probabilities. ``reference(vendor)`` is the canonical slice *as the
vendor can carry it* (e.g. Pipedrive exports no lead link), so loading the
export through ``preset: VENDOR`` must give the same KPIs as loading the
reference. Run ``python tests/make_preset_fixtures.py`` to rewrite
``tests/data/presets/``.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "presets"
VENDORS = ("salesforce", "hubspot", "pipedrive", "dynamics")
AS_OF = "2026-12-01"
WINDOW = ("2026-10-01", "2026-12-01")
RECENT = "2026-11-01"

SF_SOURCE = {
    "web": "Web",
    "cold call": "Phone Inquiry",
    "referral": "External Referral",
    "event": "Trade Show",
    "partner": "Partner",
}
HS_SOURCE = {
    "web": "Organic Search",
    "cold call": "Offline Sources",
    "referral": "Referrals",
    "event": "Other Campaigns",
    "partner": "Direct Traffic",
}
DYN_SOURCE = {"web": 8, "cold call": 10, "referral": 3, "event": 7, "partner": 4}
DYN_SOURCE_LABEL = {
    "3": "External Referral",
    "4": "Partner",
    "7": "Trade Show",
    "8": "Web",
    "10": "Other",
}
SF_STAGE = {
    "qualification": "Qualification",
    "needs analysis": "Needs Analysis",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "closed won": "Closed Won",
    "closed lost": "Closed Lost",
}
HS_STAGE = {
    "qualification": "Qualified To Buy",
    "needs analysis": "Presentation Scheduled",
    "proposal": "Contract Sent",
    "negotiation": "Decision Maker Bought-In",
    "closed won": "Closed Won",
    "closed lost": "Closed Lost",
}


def demo_slice() -> dict[str, pd.DataFrame]:
    """The canonical slice of the demo every export is made from."""
    from kpireport.demo import generate_demo

    d = generate_demo(seed=7, scale=0.05, as_of=AS_OF)
    a, b = (pd.Timestamp(x) for x in WINDOW)

    def within(s: pd.Series, start: pd.Timestamp = a) -> pd.Series:
        return (s >= start) & (s < b)

    deals = d["deals"][
        within(d["deals"]["created_at"])
        | within(d["deals"]["closed_at"])
        | (d["deals"]["status"] == "open")
    ].copy()
    leads = d["leads"][
        within(d["leads"]["created_at"], pd.Timestamp(RECENT))
        | d["leads"]["lead_id"].isin(deals["lead_id"].dropna())
    ].copy()
    acts = d["activities"][within(d["activities"]["occurred_at"], pd.Timestamp(RECENT))].copy()
    acts["occurred_at"] = acts["occurred_at"].dt.normalize()  # exports give the activity's day
    acts = acts[acts["deal_id"].isna() | acts["deal_id"].isin(deals["deal_id"])]
    used = pd.concat([deals["company_id"], leads["company_id"], acts["company_id"]]).dropna()
    companies = d["companies"][d["companies"]["company_id"].isin(used)].copy()
    sellers = d["sellers"].copy()
    sellers[["monthly_cost", "active_from", "active_to"]] = np.nan  # no CRM exports these
    sellers["active_from"] = pd.NaT
    sellers["active_to"] = pd.NaT
    return {
        "sellers": sellers.reset_index(drop=True),
        "companies": companies.reset_index(drop=True),
        "leads": leads.reset_index(drop=True),
        "deals": deals.reset_index(drop=True),
        "activities": acts.reset_index(drop=True),
    }


def reference(vendor: str) -> dict[str, pd.DataFrame]:
    """The canonical slice as ``vendor``'s export can carry it."""
    t = {k: v.copy() for k, v in demo_slice().items()}
    deals = t["deals"]
    closed = deals["status"] != "open"
    if vendor in ("salesforce", "hubspot"):  # one CloseDate: actual when closed, expected when open
        deals.loc[closed, "expected_close_at"] = deals.loc[closed, "closed_at"]
    if vendor == "salesforce":
        t["leads"]["source"] = t["leads"]["source"].map(SF_SOURCE)
    if vendor == "hubspot":
        t["leads"]["source"] = t["leads"]["source"].map(HS_SOURCE)
        t["companies"]["org_number"] = t["companies"]["org_number"].map(_domain)
    if vendor == "pipedrive":
        deals["lead_id"] = None
        t["leads"]["qualified_at"] = pd.NaT
        t["companies"]["org_number"] = t["companies"]["company_id"]
    if vendor == "dynamics":
        t["leads"]["source"] = t["leads"]["source"].map(
            lambda s: DYN_SOURCE_LABEL[str(DYN_SOURCE[s])]
        )
    return t


def _domain(org_number: str) -> str:
    return f"org{re.sub(r'[^0-9]', '', str(org_number))}.example.com"


def _num(canonical_id: object) -> int:
    return int(re.sub(r"[^0-9]", "", str(canonical_id)))


def _iso(s: pd.Series, fmt: str) -> pd.Series:
    return s.dt.strftime(fmt).where(s.notna(), None)


def export(vendor: str) -> dict[str, pd.DataFrame]:
    """File name -> the export ``vendor`` would give for :func:`demo_slice`."""
    return {"salesforce": _salesforce, "hubspot": _hubspot, "pipedrive": _pipedrive,
            "dynamics": _dynamics}[vendor](demo_slice())  # fmt: skip


def _salesforce(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    def sfid(prefix: str, s: pd.Series) -> pd.Series:
        return s.map(lambda v: None if pd.isna(v) else f"{prefix}7R{_num(v):013d}")

    dt = "%Y-%m-%dT%H:%M:%S.000Z"
    s, c, le, d, a = (t[k] for k in ("sellers", "companies", "leads", "deals", "activities"))
    user = pd.DataFrame({"Id": sfid("005", s["seller_id"]), "Name": s["name"],
                         "Email": s["name"].str.lower().str.replace(" ", ".") + "@example.com",
                         "IsActive": "true", "UserRole.Name": s["team"]})  # fmt: skip
    account = pd.DataFrame({"Id": sfid("001", c["company_id"]), "Name": c["name"],
                            "AccountNumber": c["org_number"], "Industry": c["industry"],
                            "Type": "Customer", "CreatedDate": _iso(c["created_at"], dt)})  # fmt: skip
    converted = le["lead_id"].map(d.dropna(subset=["lead_id"]).set_index("lead_id")["deal_id"])
    lead = pd.DataFrame({
        "Id": sfid("00Q", le["lead_id"]), "Company": le["company_id"].map(c.set_index("company_id")["name"]),
        "Status": np.where(le["qualified_at"].notna(), "Closed - Converted", "Working - Contacted"),
        "LeadSource": le["source"].map(SF_SOURCE), "OwnerId": sfid("005", le["seller_id"]),
        "CreatedDate": _iso(le["created_at"], dt),
        "IsConverted": np.where(le["qualified_at"].notna(), "true", "false"),
        "ConvertedDate": _iso(le["qualified_at"], "%Y-%m-%d"),
        "ConvertedAccountId": sfid("001", le["company_id"]),
        "ConvertedOpportunityId": sfid("006", converted),
    })  # fmt: skip
    closed = d["status"] != "open"
    opp = pd.DataFrame({
        "Id": sfid("006", d["deal_id"]), "Name": "Deal " + d["deal_id"],
        "AccountId": sfid("001", d["company_id"]), "OwnerId": sfid("005", d["seller_id"]),
        "StageName": d["stage"].map(SF_STAGE), "Amount": d["value"].map(lambda v: f"{v:.2f}"),
        "Probability": (d["probability"] * 100).round().astype("Int64"),
        "CloseDate": _iso(d["closed_at"].where(closed, d["expected_close_at"]), "%Y-%m-%d"),
        "CreatedDate": _iso(d["created_at"], dt),
        "IsClosed": np.where(closed, "true", "false"),
        "IsWon": np.where(d["status"] == "won", "true", "false"),
        "LeadSource": d["lead_id"].map(le.set_index("lead_id")["source"]).map(SF_SOURCE),
        "Type": "New Customer", "ForecastCategoryName": np.where(closed, "Closed", "Pipeline"),
    })  # fmt: skip
    task = pd.DataFrame({
        "Id": sfid("00T", a["activity_id"]), "Subject": a["type"].str.title(),
        "Type": a["type"].str.title(), "Status": "Completed",
        "ActivityDate": _iso(a["occurred_at"], "%Y-%m-%d"), "OwnerId": sfid("005", a["seller_id"]),
        "AccountId": sfid("001", a["company_id"]), "WhatId": sfid("006", a["deal_id"]),
    })  # fmt: skip
    return {"User.csv": user, "Account.csv": account, "Lead.csv": lead,
            "Opportunity.csv": opp, "Task.csv": task}  # fmt: skip


def _hubspot(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    def hsid(base: int, s: pd.Series) -> pd.Series:
        return s.map(lambda v: None if pd.isna(v) else str(base + _num(v)))

    dt = "%Y-%m-%d %H:%M"
    s, c, le, d, a = (t[k] for k in ("sellers", "companies", "leads", "deals", "activities"))
    owner = s.set_index("seller_id")["name"]
    owners = pd.DataFrame({"Name": s["name"], "Email": s["name"].str.lower().str.replace(" ", ".") + "@example.com",
                           "Team": s["team"]})  # fmt: skip
    companies = pd.DataFrame({"Record ID": hsid(18_000_000_000, c["company_id"]), "Company name": c["name"],
                              "Company Domain Name": c["org_number"].map(_domain), "Industry": c["industry"],
                              "Create Date": _iso(c["created_at"], dt), "Lifecycle Stage": "Customer"})  # fmt: skip
    contacts = pd.DataFrame({
        "Record ID": hsid(51_000_000_000, le["lead_id"]), "Create Date": _iso(le["created_at"], dt),
        "Contact owner": le["seller_id"].map(owner), "Original Source": le["source"].map(HS_SOURCE),
        "Lifecycle Stage": np.where(le["qualified_at"].notna(), "Sales Qualified Lead", "Lead"),
        "Became a Sales Qualified Lead Date": _iso(le["qualified_at"], dt),
        "Associated Company IDs": hsid(18_000_000_000, le["company_id"]),
    })  # fmt: skip
    closed = d["status"] != "open"
    deals = pd.DataFrame({
        "Record ID": hsid(9_000_000_000, d["deal_id"]), "Deal Name": "Deal " + d["deal_id"],
        "Pipeline": "Sales Pipeline", "Deal Stage": d["stage"].map(HS_STAGE),
        "Amount": d["value"], "Currency": d["currency"],
        "Close Date": _iso(d["closed_at"].where(closed, d["expected_close_at"]), dt),
        "Create Date": _iso(d["created_at"], dt), "Deal owner": d["seller_id"].map(owner),
        "Deal probability": d["probability"],
        "Associated Company IDs": hsid(18_000_000_000, d["company_id"]),
        "Associated Contact IDs": hsid(51_000_000_000, d["lead_id"]),
    })  # fmt: skip
    acts = pd.DataFrame({
        "Record ID": hsid(70_000_000_000, a["activity_id"]), "Activity type": a["type"].str.upper(),
        "Activity date": _iso(a["occurred_at"], dt), "Activity assigned to": a["seller_id"].map(owner),
        "Associated Company IDs": hsid(18_000_000_000, a["company_id"]),
        "Associated Deal IDs": hsid(9_000_000_000, a["deal_id"]),
    })  # fmt: skip
    return {"owners.csv": owners, "companies.csv": companies, "contacts.csv": contacts,
            "deals.csv": deals, "activities.csv": acts}  # fmt: skip


def _pipedrive(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    def pid(s: pd.Series) -> pd.Series:
        return s.map(lambda v: None if pd.isna(v) else str(_num(v)))

    dt = "%Y-%m-%d %H:%M:%S"
    s, c, le, d, a = (t[k] for k in ("sellers", "companies", "leads", "deals", "activities"))
    owner = s.set_index("seller_id")["name"]
    users = pd.DataFrame({"Name": s["name"], "Email": s["name"].str.lower().str.replace(" ", ".") + "@example.com",
                          "Team": s["team"]})  # fmt: skip
    orgs = pd.DataFrame({"Organization - ID": pid(c["company_id"]), "Organization - Name": c["name"],
                         "Organization - Industry": c["industry"],
                         "Organization - Organization created": _iso(c["created_at"], dt)})  # fmt: skip
    leads = pd.DataFrame({
        "Lead - ID": le["lead_id"].map(lambda v: str(uuid.uuid5(uuid.NAMESPACE_URL, f"pipedrive/lead/{v}"))),
        "Lead - Title": "Lead " + le["lead_id"], "Lead - Owner": le["seller_id"].map(owner),
        "Lead - Source": le["source"].str.title(), "Lead - Organization ID": pid(le["company_id"]),
        "Lead - Lead created": _iso(le["created_at"], dt),
    })  # fmt: skip
    deals = pd.DataFrame({
        "Deal - ID": pid(d["deal_id"]), "Deal - Title": "Deal " + d["deal_id"],
        "Deal - Value": d["value"], "Deal - Currency": d["currency"],
        "Deal - Owner": d["seller_id"].map(owner), "Deal - Organization ID": pid(d["company_id"]),
        "Deal - Stage": d["stage"].str.title(), "Deal - Status": d["status"].str.title(),
        "Deal - Probability": (d["probability"] * 100).round().astype("Int64"),
        "Deal - Deal created": _iso(d["created_at"], dt),
        "Deal - Deal closed on": _iso(d["closed_at"], dt),
        "Deal - Won time": _iso(d["closed_at"].where(d["status"] == "won"), dt),
        "Deal - Lost time": _iso(d["closed_at"].where(d["status"] == "lost"), dt),
        "Deal - Expected close date": _iso(d["expected_close_at"], "%Y-%m-%d"),
        "Deal - Pipeline": "Sales",
    })  # fmt: skip
    acts = pd.DataFrame({
        "Activity - ID": pid(a["activity_id"]), "Activity - Subject": a["type"].str.title(),
        "Activity - Type": a["type"].str.title(), "Activity - Done": "Done",
        "Activity - Due date": _iso(a["occurred_at"], "%Y-%m-%d"),
        "Activity - Assigned to user": a["seller_id"].map(owner),
        "Activity - Organization ID": pid(a["company_id"]), "Activity - Deal ID": pid(a["deal_id"]),
    })  # fmt: skip
    return {"users.csv": users, "organizations.csv": orgs, "leads.csv": leads,
            "deals.csv": deals, "activities.csv": acts}  # fmt: skip


def _dynamics(t: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    def guid(kind: str, s: pd.Series) -> pd.Series:
        return s.map(
            lambda v: (
                None if pd.isna(v) else str(uuid.uuid5(uuid.NAMESPACE_URL, f"d365/{kind}/{v}"))
            )
        )

    dt = "%Y-%m-%dT%H:%M:%SZ"
    s, c, le, d, a = (t[k] for k in ("sellers", "companies", "leads", "deals", "activities"))
    user = pd.DataFrame({"systemuserid": guid("user", s["seller_id"]), "fullname": s["name"],
                         "internalemailaddress": s["name"].str.lower().str.replace(" ", ".") + "@example.com",
                         "businessunitidname": s["team"], "isdisabled": "False"})  # fmt: skip
    account = pd.DataFrame({"accountid": guid("account", c["company_id"]), "name": c["name"],
                            "accountnumber": c["org_number"], "industrycode": c["industry"],
                            "createdon": _iso(c["created_at"], dt)})  # fmt: skip
    qualified = le["qualified_at"].notna()
    lead = pd.DataFrame({
        "leadid": guid("lead", le["lead_id"]), "subject": "Lead " + le["lead_id"],
        "createdon": _iso(le["created_at"], dt),
        "modifiedon": _iso(le["qualified_at"].where(qualified, le["created_at"]), dt),
        "ownerid": guid("user", le["seller_id"]), "parentaccountid": guid("account", le["company_id"]),
        "leadsourcecode": le["source"].map(DYN_SOURCE), "statecode": np.where(qualified, 1, 0),
    })  # fmt: skip
    state = d["status"].map({"open": 0, "won": 1, "lost": 2})
    opp = pd.DataFrame({
        "opportunityid": guid("opportunity", d["deal_id"]), "name": "Deal " + d["deal_id"],
        "parentaccountid": guid("account", d["company_id"]), "ownerid": guid("user", d["seller_id"]),
        "originatingleadid": guid("lead", d["lead_id"]),
        "estimatedvalue": d["value"], "actualvalue": d["value"].where(d["status"] == "won"),
        "closeprobability": (d["probability"] * 100).round().astype("Int64"),
        "stepname": d["stage"], "statecode": state,
        "createdon": _iso(d["created_at"], dt), "actualclosedate": _iso(d["closed_at"], "%Y-%m-%d"),
        "estimatedclosedate": _iso(d["expected_close_at"], "%Y-%m-%d"),
    })  # fmt: skip
    code = a["type"].map(
        {"call": "phonecall", "meeting": "appointment", "email": "email", "quote": "quote"}
    )
    act = pd.DataFrame({
        "activityid": guid("activity", a["activity_id"]), "activitytypecode": code,
        "subject": a["type"].str.title(), "ownerid": guid("user", a["seller_id"]),
        "actualend": _iso(a["occurred_at"], dt), "statecode": 1,
        "regardingaccountid": guid("account", a["company_id"]),
        "regardingopportunityid": guid("opportunity", a["deal_id"]),
    })  # fmt: skip
    return {"systemuser.csv": user, "account.csv": account, "lead.csv": lead,
            "opportunity.csv": opp, "activitypointer.csv": act}  # fmt: skip


def write(out: Path = OUT) -> list[Path]:
    """Write every vendor's export under ``out/VENDOR/`` with a ``source.yaml``; the paths."""
    written = []
    for vendor in VENDORS:
        folder = out / vendor
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in export(vendor).items():
            frame.to_csv(folder / name, index=False)
            written.append(folder / name)
        (folder / "source.yaml").write_text(
            f"# A {vendor} export of the demo CRM (tests/make_preset_fixtures.py)\n"
            f"path: .\npreset: {vendor}\norganisation: Demo Oy\ncurrency: EUR\n",
            encoding="utf-8",
        )
    return written


if __name__ == "__main__":
    for p in write():
        print(p.relative_to(HERE.parent), sum(1 for _ in p.open()) - 1, "rows")
