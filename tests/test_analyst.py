"""kpireport as an analyst meets it (issue 13): completion, init, presets, tidy results, plot inputs."""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import kpireport

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["kpireport", "kpireport.report", "kpireport.schedule"])
def test_lazy_packages_list_their_api_for_tab_completion(module: str) -> None:
    mod = importlib.import_module(module)
    listed = dir(mod)
    assert listed == sorted(mod.__all__)
    assert not {"annotations", "Any", "importlib"} & set(listed)
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_jedi_completes_the_lazy_exports() -> None:
    jedi = pytest.importorskip("jedi")
    import kpireport

    names = {c.name for c in jedi.Interpreter("kpireport.", [{"kpireport": kpireport}]).complete()}
    assert {"load", "compute_kpis", "pivot_kpis", "evaluate_goals", "kpi_trend"} <= names
    assert "importlib" not in names


# ------------------------------------------------------------------ kpireport init (item 2)
def _cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "kpireport.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_init_scaffolds_a_project_and_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    proj = tmp_path / "acme-sales"
    res = _cli("init", str(proj))
    assert res.returncode == 0, res.stderr
    for rel in ("source.yaml", "goals.yaml", "README.md", "params/team_monthly.yaml",
                "params/monthly_pack.yaml", "notebooks/team_report.ipynb",
                "notebooks/explore.ipynb"):  # fmt: skip
        assert (proj / rel).is_file(), rel
    source = yaml.safe_load((proj / "source.yaml").read_text())
    assert source == {"path": "data/", "organisation": "Acme Sales", "timezone": "UTC",
                      "goals": "goals.yaml"}  # fmt: skip
    assert (
        yaml.safe_load((proj / "params/team_monthly.yaml").read_text())["source"]
        == "../source.yaml"
    )
    sched = yaml.safe_load((proj / "params/schedules.yaml").read_text())
    assert {j["source"] for j in sched["jobs"].values()} == {"../source.yaml"}
    again = _cli("init", str(proj))
    assert again.returncode != 0
    assert again.stderr.strip().splitlines()[-1].startswith("error: The folder")
    (proj / "notebooks" / "explore.ipynb").write_text("{}")
    assert _cli("init", str(proj), "--force").returncode == 0
    assert (proj / "notebooks" / "explore.ipynb").read_text() == "{}"  # edits are kept


def test_goals_yaml_examples_cover_every_scope_and_are_valid(tmp_path: Path) -> None:
    from kpireport.cli.project import GOALS_TEMPLATE
    from kpireport.demo import demo_data
    from kpireport.goals import evaluate_goals

    lines = GOALS_TEMPLATE.split("# Remove the [] above and uncomment to start:\n")[1]
    uncommented = "\n".join(line[2:] for line in lines.splitlines())
    goals = yaml.safe_load(uncommented)["goals"]
    assert {g["scope"] for g in goals} == {"organisation", "team", "seller", "customer"}
    path = tmp_path / "goals.yaml"
    path.write_text(uncommented)
    data = demo_data(as_of="2027-12-31")
    res = evaluate_goals(data, str(path), as_of="2027-12-31")
    assert len(res) == len(goals) == 5


def test_init_with_preset_then_run_uses_the_project_notebook_and_goals(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    assert _cli("init", str(proj), "--preset", "salesforce").returncode == 0
    assert (proj / "presets" / "salesforce.yaml").is_file()
    assert yaml.safe_load((proj / "source.yaml").read_text())["preset"] == "presets/salesforce.yaml"
    for csv in (ROOT / "tests/data/presets/salesforce").glob("*.csv"):
        shutil.copy(csv, proj / "data" / csv.name)
    (proj / "goals.yaml").write_text(
        "goals:\n  - {kpi: won_value, scope: team, scope_id: Enterprise, period: 2026-11,"
        " target: 123456, owner: Head of Enterprise}\n"
    )
    nb = json.loads((proj / "notebooks/team_report.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "mine", "metadata": {},
                        "source": ["Edited in the project: PROJECT-COPY-MARKER"]})  # fmt: skip
    (proj / "notebooks/team_report.ipynb").write_text(json.dumps(nb))
    res = _cli("run", "team_monthly", "--as-of", "2026-12-01", "--only", "Enterprise",
               "--format", "html", "--out", "reports", cwd=str(proj))  # fmt: skip
    assert res.returncode == 0, res.stderr
    html = (proj / "reports/2026-11/teams/team-report-enterprise-2026-11.html").read_text()
    assert "PROJECT-COPY-MARKER" in html
    assert "123,456" in html  # the goal from goals.yaml
    # outside the project the packaged notebook is used
    other = _cli("run", "team_monthly", "--as-of", "2026-12-01", "--only", "Enterprise",
                 "--format", "html", "--out", str(tmp_path / "r2"), "--source",
                 str(proj / "source.yaml"), cwd=str(tmp_path))  # fmt: skip
    assert other.returncode == 0, other.stderr
    html2 = (tmp_path / "r2/2026-11/teams/team-report-enterprise-2026-11.html").read_text()
    assert "PROJECT-COPY-MARKER" not in html2 and "123,456" in html2


# ------------------------------------------------------- tidy results and plots (items 7, 8)
@pytest.fixture(scope="module")
def demo() -> kpireport.CrmData:
    from kpireport.demo import demo_data

    return demo_data(as_of="2026-12-01")


def test_tidy_results_carry_names_and_period_start(demo: kpireport.CrmData) -> None:
    df = kpireport.compute_kpis(demo, ["2026-10", "2026-11"], by="seller", kpis=["won_value"],
                                as_of="2026-12-01")  # fmt: skip
    assert list(df.columns[-3:]) == ["name", "period_start", "complete"]
    sellers = demo.sellers.set_index("seller_id")["name"]
    assert (df["name"] == df["scope_id"].map(sellers)).all()
    assert df.loc[df["scope_id"] == "S001", "name"].iloc[0] == "Björn Åkesson"
    assert df["period_start"].dtype == "datetime64[ns]"
    assert set(df["period_start"]) == {pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01")}
    cust = kpireport.compute_kpis(demo, "2026-11", by="customer", kpis=["won_value"])
    companies = demo.companies.set_index("company_id")["name"]
    assert (cust["name"] == cust["scope_id"].map(companies)).all()
    org = kpireport.compute_kpis(demo, "2026-11", kpis=["won_value"])
    assert org["name"].tolist() == [demo.settings.get("organisation") or "Organisation"]


def test_scope_id_filter_and_did_you_mean(demo: kpireport.CrmData) -> None:
    from kpireport.errors import KpiError

    one = kpireport.compute_kpis(demo, "2026-11", by="team", kpis=["won_value"], scope_id="SMB")
    every = kpireport.compute_kpis(demo, "2026-11", by="team", kpis=["won_value"])
    assert one["scope_id"].tolist() == ["SMB"]
    assert one["value"].iloc[0] == every.set_index("scope_id").loc["SMB", "value"]
    two = kpireport.compute_kpis(demo, "2026-11", by="seller", kpis=["won_value"],
                                 scope_id=["S001", "S003"])  # fmt: skip
    assert sorted(two["scope_id"]) == ["S001", "S003"]
    with pytest.raises(
        KpiError, match=r"The team 'Mid Market' is not in the data; did you mean 'Mid-Market'\?"
    ):
        kpireport.compute_kpis(demo, "2026-11", by="team", scope_id="Mid Market")
    with pytest.raises(KpiError, match=r"'Björn Åkesson' is the name of seller S001: pass the id"):
        kpireport.compute_kpis(demo, "2026-11", by="seller", scope_id="Björn Åkesson")


def test_pivot_kpis_is_top_level(demo: kpireport.CrmData) -> None:
    df = kpireport.compute_kpis(demo, "2026-11", by="team", kpis=["won_value", "deals_won"])
    wide = kpireport.pivot_kpis(df)
    assert list(wide.columns) == ["won_value", "deals_won"]
    assert (
        wide.loc["SMB", "won_value"]
        == df.query("scope_id == 'SMB' and kpi == 'won_value'")["value"].iloc[0]
    )


def test_plot_helpers_take_the_library_outputs(demo: kpireport.CrmData) -> None:
    import matplotlib

    matplotlib.use("Agg")
    as_of = "2026-12-01"
    growth = kpireport.growth_table(demo, "2026-11", by="team", as_of=as_of)
    fig = kpireport.growth_bars(growth)
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == growth["scope_id"].tolist()
    assert ax.get_xlabel() == "Team"
    board = kpireport.compute_kpis(demo, "2026-11", by="seller", kpis=["won_value"], as_of=as_of)
    ax = kpireport.leaderboard(board).axes[0]
    best = board.sort_values("value", ascending=False)["name"].iloc[0]
    assert ax.get_yticklabels()[0].get_text() == best
    assert "€" in ax.get_xlabel()  # the unit came from the frame
    goals = kpireport.evaluate_goals(demo, as_of=as_of)
    nov = goals[(goals["period"] == "2026-11") & (goals["scope"] == "team")]
    ax = kpireport.goal_overview(nov).axes[0]
    labels = [x.get_text() for x in ax.get_yticklabels()]
    assert any(lab.endswith("· SMB") for lab in labels) and len(labels) == len(nov)
    assert len(ax.patches) >= len(nov)  # a bar per goal (closed period: the actual)
    series = kpireport.kpi_series(demo, "won_value", end="2026-11", as_of=as_of)
    tidy = kpireport.compute_kpis(demo, ["2026-09", "2026-10", "2026-11"], kpis=["won_value"])
    for fig in (kpireport.kpi_trend(series), kpireport.kpi_trend(tidy)):
        line = fig.axes[0].get_lines()[0]
        assert line.get_ydata()[-1] == tidy["value"].iloc[-1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda k, d, g, s, t: k.growth_bars(t), r"^growth_bars expects the DataFrame growth_table\(\) returns"),
        (lambda k, d, g, s, t: k.leaderboard(s), r"^leaderboard expects a DataFrame .*; got a Series\.$"),
        (lambda k, d, g, s, t: k.leaderboard(t), r"^leaderboard draws one period; this frame has 2: pass df\[df.period == '2026-11'\]\.$"),
        (lambda k, d, g, s, t: k.goal_overview(t), r"goal_overview needs 'attainment'"),
        (lambda k, d, g, s, t: k.goal_overview(k.evaluate_goals(d, as_of="2026-12-01")), r"^goal_overview draws at most 60 goals"),
        (lambda k, d, g, s, t: k.kpi_trend(g), r"^kpi_trend expects a Series from kpi_series\(\)"),
        (lambda k, d, g, s, t: k.kpi_trend(t), r"^kpi_trend draws one scope id"),
    ],
)  # fmt: skip
def test_plot_helpers_refuse_wrong_input_in_one_line(
    demo: kpireport.CrmData, call, message
) -> None:
    from kpireport.errors import KpiReportError

    growth = kpireport.growth_table(demo, "2026-11", by="team", as_of="2026-12-01")
    series = kpireport.kpi_series(demo, "won_value", end="2026-11", as_of="2026-12-01")
    tidy = kpireport.compute_kpis(demo, ["2026-10", "2026-11"], by="seller", kpis=["won_value"])
    with pytest.raises(KpiReportError, match=message) as info:
        call(kpireport, demo, growth, series, tidy)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------ scoped report styles (item 9)
def test_notebook_outputs_carry_the_template_rules_scoped() -> None:
    from kpireport.plots.cards import kpi_cards
    from kpireport.report.views import Section
    from kpireport.resources.styles import SCOPE, scoped_css

    css = scoped_css()
    template = (ROOT / "kpireport/resources/templates/kpireport/kpireport.css").read_text()
    assert (
        "flex-wrap: wrap" in template
        and f".{SCOPE} .kpi-cards{{display: flex; flex-wrap: wrap" in css
    )
    assert f".{SCOPE}{{--ink: #1f2933" in css  # :root variables on the scope
    for chrome in ("body", "@page", ".jp-", ".report-header", "html"):
        assert f"{SCOPE} {chrome}" not in css and not css.startswith(chrome)
    assert all(rule.startswith(f".{SCOPE}") for rule in css.split("}") if rule.strip())
    cards = kpi_cards([{"label": "Won", "value": 1.0, "unit": "count"}])
    sec = Section("summary", "Summary").add(cards)
    assert sec._repr_html_().startswith(f'<div class="{SCOPE}" style="font-family:')
    assert "<style>" not in sec.to_html()  # the HTML/PDF template has the stylesheet already
    assert cards._repr_html_().count("<style>") == 1


def test_untrusted_notebooks_get_the_same_rules_inline() -> None:
    """JupyterLab strips <style> from untrusted outputs: the rules are also style="" attributes."""
    import re

    from kpireport.plots.cards import Html, kpi_cards, status_badge
    from kpireport.report.views import Section
    from kpireport.resources.styles import inline

    cards = kpi_cards([{"label": "Won", "value": 1200.0, "unit": "count", "delta_prev": 0.1},
                       {"label": "Lost", "value": 3.0, "unit": "count", "delta_prev": -0.5,
                        "better": "higher"}])  # fmt: skip
    table = Html(
        '<table class="report-table goal-table"><tbody><tr><td>Bo &amp; Al</td>'
        '<td class="num" style="color:red">1</td></tr></tbody></table>'
    )
    sec = Section("summary", "Summary").add(cards).add(table)
    plain, shown = sec.to_html(), sec._repr_html_()
    assert plain.count(' style="') == 1  # the HTML/PDF markup: only the cell's own style
    # the card row is a flex box with the template's values, CSS variables resolved
    assert '<div class="kpi-cards" style="display:flex;flex-wrap:wrap;gap:3mm;' in shown
    card = re.search(r'<div class="kpi-card" style="([^"]*)"', shown).group(1)
    assert "background:#f4f6f8" in card and "border-left:3px solid #1f4e79" in card
    assert "var(" not in re.sub(r"<style>.*?</style>", "", shown)
    # cascade: `.kpi-delta.down` (0,2,0) after `.kpi-delta`: red; `.kpi-delta.up`: green
    assert re.search(r'class="kpi-delta down[^"]*" style="[^"]*color:#b3261e', shown)
    assert re.search(r'class="kpi-delta up[^"]*" style="[^"]*color:#1b7a3a', shown)
    # `table.goal-table td` (0,1,2) overrides `th, td` padding; the cell's own style wins last
    assert re.search(r'<td class="num" style="[^"]*padding:1mm 1.4mm[^"]*;color:red">1</td>', shown)
    assert "Bo &amp; Al" in shown
    # what a style attribute cannot carry is in the markup: the arrows are text
    assert '<span class="kpi-arrow">\u25b2\u00a0</span>+10.0%' in plain
    assert '<span class="kpi-arrow">\u25bc\u00a0</span>-50.0%' in plain
    # a badge's border in its own colour (Lab's sanitizer refuses currentColor)
    badge = inline(str(status_badge("missed")))
    assert "border:1px solid #b3261e" in badge and "currentColor" not in badge
    # only style attributes were added: removing them gives the markup back byte for byte
    assert re.sub(r' style="[^"]*"', "", inline(plain)) == re.sub(r' style="[^"]*"', "", plain)
    assert inline(plain).count("<td") == plain.count("<td")


# ------------------------------------------------------------------ docs references (item 11)
def test_docstrings_cite_docs_pages_that_exist() -> None:
    import re

    cited: dict[str, set[str]] = {}
    for path in (ROOT / "kpireport").rglob("*"):
        if path.suffix not in (".py", ".ipynb", ".yaml"):
            continue
        for page in re.findall(r"docs/([A-Z][A-Z_]*\.md)", path.read_text(encoding="utf-8")):
            cited.setdefault(page, set()).add(str(path.relative_to(ROOT)))
    assert {"KPIS.md", "PERIODS.md", "DATA.md"} <= set(cited)
    missing = {p: sorted(f)[:3] for p, f in cited.items() if not (ROOT / "docs" / p).is_file()}
    assert not missing, missing


def test_misspelt_team_fails_with_did_you_mean(demo: kpireport.CrmData) -> None:
    from kpireport.errors import KpiError
    from kpireport.report import views

    with pytest.raises(
        KpiError,
        match=r"^The team 'Mid Market' is not in the data; did you mean 'Mid-Market'\? Valid: Enterprise, Mid-Market",
    ):
        views.team_report_view(demo, "Mid Market", "2026-11", "2026-12-01")
    with pytest.raises(KpiError, match=r"^The seller 'S999' is not in the data"):
        views.seller_scorecard_view(demo, "S999", "2026-11", "2026-12-01")
    ok = views.team_report_view(demo, "Mid-Market", "2026-11", "2026-12-01")
    assert "summary" in ok.names and len(ok.sections) > 1


def test_shipped_notebooks_carry_the_metadata_jupyterlab_writes() -> None:
    from kpireport.resources import resource_dir

    for path in resource_dir("notebooks").glob("*.ipynb"):
        meta = json.loads(path.read_text())["metadata"]
        if path.stem == "dashboard":
            continue
        assert meta["kernelspec"]["display_name"] == "Python 3 (ipykernel)", path.name
        assert meta["language_info"]["pygments_lexer"] == "ipython3", path.name
    explore = json.loads((resource_dir("notebooks") / "explore.ipynb").read_text())
    load_cell = "".join(explore["cells"][3]["source"])
    assert "str(name)" in load_cell and "float_format" in load_cell


def test_section_api_example_of_docs_reports_runs(demo: kpireport.CrmData) -> None:
    """The worked example in docs/REPORTS.md (Customising a report: sections)."""
    import re

    text = (ROOT / "docs/REPORTS.md").read_text()
    code = re.search(r"## Customising a report: sections.*?```python\n(.*?)```", text, re.S).group(
        1
    )
    code = code.replace("view.show()", "html = view.to_html()")
    pytest.importorskip("seaborn")
    import matplotlib

    matplotlib.use("Agg")
    ns = {
        "source": "demo",
        "as_of": "2026-11-30",
        "period": "2026-10",
        "team": "SMB",
        "language": "en",
    }
    exec(compile(code, "docs/REPORTS.md", "exec"), ns)  # noqa: S102 - our own documentation
    view = ns["view"]
    assert view.names == ["summary", "goals", "development", "funnel", "leaderboard", "pipeline",
                          "track_record", "per_seller"]  # fmt: skip
    assert "Order intake per seller" in ns["html"] and "sellers in SMB." in ns["html"]


# ------------------------------------------------ periods everywhere (item 5), the future (item 6)
def test_evaluate_goals_takes_any_day_and_lists_valid_scopes(demo: kpireport.CrmData) -> None:
    import datetime as dt

    from kpireport.errors import GoalError

    goals = [{"kpi": "won_value", "scope": "organisation", "period": "2026-11", "target": 1e6}]
    days = ["2026-11-30", dt.date(2026, 11, 30), pd.Timestamp("2026-11-30 17:00"),
            pd.Period("2026-11-30", "D")]  # fmt: skip
    actual = [
        kpireport.evaluate_goals(demo, goals, as_of=d, forecast=False)["actual"].iloc[0]
        for d in days
    ]
    # November's order intake of the demo (compute_kpis gives the same number)
    won = kpireport.compute_kpis(demo, "2026-11", kpis=["won_value"])["value"].iloc[0]
    assert actual == [won] * 4 and won == 2107270.0
    with pytest.raises(GoalError, match="Valid scopes: organisation, team, seller, customer"):
        kpireport.evaluate_goals(demo, goals, as_of="2026-11-30", scope="teams")
    with pytest.raises(GoalError, match="as_of must be a day"):
        kpireport.evaluate_goals(demo, goals, as_of=pd.Period("2026-11", "M"))


def test_demo_after_its_end_is_nan_not_zero(demo: kpireport.CrmData) -> None:
    df = kpireport.compute_kpis(demo, ["2026-12", "2027-01"], kpis=["won_value"])
    jan = df[df["period"] == "2027-01"].iloc[0]
    assert math.isnan(jan["value"]) and jan["note"] == "after the data: last record 2026-12-01"
    assert df["complete"].tolist() == [False, False]  # December holds only its first day
    leads = kpireport.kpi_series(demo, "new_leads", grain="week", start="2026-W49", end="2026-W53")
    assert leads.attrs["partial"] == "2026-W49" and leads.iloc[1:].isna().all()
    g = kpireport.growth_table(demo, ["2026-10", "2026-11"])
    assert g["period"].tolist() == ["2026-10", "2026-11"]
