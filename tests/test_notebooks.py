"""The report notebooks of ``kpireport/resources/notebooks/``, executed by ``kpireport.report.run`` on a small demo.

One module-scoped run builds eight reports (two kernels at a time): the team
report for an ordinary team, for a team named ``<script>alert(1)</script>``,
in Dutch and for a period without data; a seller scorecard; the management
pack; the finance report; and the exploration notebook. The tests then read
what a reader sees: the HTML and the PDF text (pypdf).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from kpireport.data.model import CrmData
from kpireport.demo import CURRENCY, ORGANISATION, TIMEZONE, generate_demo
from kpireport.i18n import fmt_currency, fmt_number
from kpireport.kpis import compute_kpis
from kpireport.report import run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "kpireport" / "resources" / "notebooks"
AS_OF = "2026-05-12"
PERIOD = "2026-04"
EVIL = "<script>alert(1)</script>"


def small_demo() -> CrmData:
    """The demo CRM at a quarter of its size, with one team renamed to a script tag."""
    tables = generate_demo(seed=3, scale=0.3, as_of=AS_OF)
    sellers = tables["sellers"].copy()
    sellers["team"] = sellers["team"].replace({"Partners Öst": EVIL})
    tables["sellers"] = sellers
    goals = tables["goals"].copy()
    goals.loc[(goals["scope"] == "team") & (goals["scope_id"] == "Partners Öst"), "scope_id"] = EVIL
    tables["goals"] = goals
    return CrmData(tables, timezone=TIMEZONE, currency=CURRENCY, organisation=ORGANISATION)


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("notebooks")
    data = small_demo()
    plan = root / "pack.yaml"
    plan.write_text(
        f"""
as_of: {AS_OF}
formats: [html, pdf]
runs:
  - name: team
    title: Team report
    notebook: {NB / "team_report.ipynb"}
    fanout: {{team: ["SMB", "{EVIL}"]}}
    period: "{PERIOD}"
    output: "team-{{team}}"
  - name: team_nl
    title: Teamrapport
    notebook: {NB / "team_report.ipynb"}
    fanout: {{team: ["SMB"]}}
    language: nl
    period: "{PERIOD}"
    output: "team-nl-{{team}}"
  - name: team_empty
    title: Team report
    notebook: {NB / "team_report.ipynb"}
    fanout: {{team: ["SMB"]}}
    period: "2019-03"
    output: "team-empty-{{team}}"
  - name: seller
    title: Seller scorecard
    notebook: {NB / "seller_scorecard.ipynb"}
    fanout: {{seller: ["{data.tables["sellers"]["seller_id"].iloc[0]}"]}}
    period: "{PERIOD}"
    output: "seller-{{seller}}"
  - name: management
    title: Management pack
    notebook: {NB / "management_pack.ipynb"}
    period: "{PERIOD}"
    output: "management"
  - name: finance
    title: Finance growth report
    notebook: {NB / "finance_growth.ipynb"}
    period: "{PERIOD}"
    output: "finance"
  - name: explore
    title: Exploring KPIs
    notebook: {NB / "explore.ipynb"}
    formats: [html]
    period: "{PERIOD}"
    output: "explore"
""",
        encoding="utf-8",
    )
    result = run(plan, source=data, out=root / "out", jobs=2)
    by_run: dict[str, list] = {}
    for r in result.reports:
        by_run.setdefault(r.run, []).append(r)
    return {"data": data, "result": result, "out": result.out, "by_run": by_run}


def _files(pack, run_name: str, scope_id: str | None = None) -> dict[str, Path]:
    for r in pack["by_run"][run_name]:
        if scope_id is None or r.scope_id == scope_id:
            files = {k: pack["out"] / v for k, v in r.outputs.items()}
            files["manifest"] = pack["out"] / (r.report_id + ".manifest.json")
            return files
    raise AssertionError(f"no report {run_name}/{scope_id}")


def _html(pack, run_name: str, scope_id: str | None = None) -> str:
    return _files(pack, run_name, scope_id)["html"].read_text(encoding="utf-8")


def _text(html: str) -> str:
    """Visible text of an HTML page, whitespace collapsed, entities decoded."""
    import html as h

    body = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", h.unescape(body)).replace("\u00a0", " ")


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    text = " ".join(page.extract_text() or "" for page in PdfReader(path).pages)
    return re.sub(r"\s+", " ", text).replace("\u00a0", " ")


def _team_kpis(data: CrmData, team: str, period: str = PERIOD) -> dict[str, float]:
    df = compute_kpis(
        data, [period], by="team", kpis=["won_value", "deals_won", "new_leads"], as_of=AS_OF
    )
    df = df[df["scope_id"] == team]
    return dict(zip(df["kpi"], df["value"], strict=True))


def test_every_notebook_succeeds(pack):
    failed = [(r.report_id, r.error) for r in pack["result"].reports if r.status != "success"]
    assert failed == []
    assert len(pack["result"].reports) == 8


def test_team_report_header_values_and_no_code(pack):
    html = _html(pack, "team", "SMB")
    text = _text(html)
    assert "Team SMB" in text and "April 2026" in text
    assert "Data as of 12 May 2026" in text
    k = _team_kpis(pack["data"], "SMB")
    assert k["won_value"] > 0  # the fixture has data, so the check below is meaningful
    assert fmt_currency(k["won_value"], "EUR", "en", decimals=0).replace("\u00a0", " ") in text
    assert f">{fmt_number(k['deals_won'], 'en', decimals=0)}<" in html.replace("\u00a0", " ")
    assert f">{fmt_number(k['new_leads'], 'en', decimals=0)}<" in html
    for code in ("views.", "import ", "load_data", "record()", "Traceback", "Error"):
        assert code not in text, code
    for heading in ("Summary", "Development curve", "Goals", "Funnel", "Seller leaderboard",
                    "Activity vs need", "Pipeline"):  # fmt: skip
        assert heading in text
    assert html.count('src="data:image/png;base64,') >= 5
    assert not re.search(r"""(src|href)=["']?https?://""", html)


def test_team_report_pdf_text_matches_compute_kpis(pack):
    pdf = _pdf_text(_files(pack, "team", "SMB")["pdf"])
    k = _team_kpis(pack["data"], "SMB")
    assert "Team SMB" in pdf and "April 2026" in pdf
    assert fmt_currency(k["won_value"], "EUR", "en", decimals=0).replace("\u00a0", " ") in pdf
    assert "Traceback" not in pdf and "view.show" not in pdf


def test_recorded_kpi_table_equals_compute_kpis(pack):
    table = pd.read_csv(_files(pack, "team", "SMB")["kpis"])
    k = _team_kpis(pack["data"], "SMB")
    shown = table[
        (table["kpi"] == "won_value") & (table["period"] == PERIOD) & (table["scope"] == "team")
    ]
    assert shown["value"].iloc[0] == pytest.approx(k["won_value"])


def test_script_team_name_is_text(pack):
    html = _html(pack, "team", EVIL)
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert EVIL in _pdf_text(_files(pack, "team", EVIL)["pdf"])


def test_dutch_labels_and_formats(pack):
    text = _text(_html(pack, "team_nl", "SMB"))
    assert "april 2026" in text
    for nl in ("Samenvatting", "Orderintake", "Ontwikkelingscurve", "Trechter", "Pijplijn"):
        assert nl in text
    for en in ("Summary", "Order intake", "Development curve", "vs previous period"):
        assert en not in text
    k = _team_kpis(pack["data"], "SMB")
    assert fmt_currency(k["won_value"], "EUR", "nl", decimals=0).replace("\u00a0", " ") in text


def test_period_without_data_says_so(pack):
    text = _text(_html(pack, "team_empty", "SMB"))
    assert "No data for this period" in text
    assert "maart" not in text and "March 2019" in text


def test_management_finance_seller_and_explore(pack):
    mgmt = _text(_html(pack, "management"))
    for heading in ("Goal attainment", "Teams", "Risks", "Forecast for the quarter"):
        assert heading in mgmt
    assert "&lt;script&gt;" in _html(pack, "management")  # team names escaped in tables
    fin = _text(_html(pack, "finance"))
    assert "Top customers" in fin and "This year vs last year by month" in fin
    seller = _text(_html(pack, "seller"))
    assert "Seller scorecard" in seller and "Trend" in seller
    assert _html(pack, "seller").count('src="data:image/png;base64,') == 2  # won value, hit rate
    explore = _html(pack, "explore")
    assert "Exploring KPIs" in explore
    for name in ("team", "management", "finance", "seller"):
        manifest = json.loads(_files(pack, name)["manifest"].read_text(encoding="utf-8"))
        assert manifest["status"] == "success"
