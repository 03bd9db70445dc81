"""Tests of kpireport.report: run definitions, parameters, rendering and publishing.

One module-scoped pack run (``published``) executes the purpose-named notebooks
in ``tests/notebooks`` once (ok notebook fanned out over four teams, plus a
notebook that raises and one that tries to print secrets) and many tests assert
on its outputs. Everything else here runs without a kernel.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from kpireport.data.model import CrmData
from kpireport.errors import EarlyExitError, ParamsError, RenderError
from kpireport.report import execute, params, publish, render, slug
from kpireport.report.manifest import is_current
from kpireport.report.params import expand, load_plan
from kpireport.report.record import extract_kpis, kpi_payload
from kpireport.report.runner import run, source_secret_names

NB = Path(__file__).resolve().parent / "notebooks"
SECRET = "s3cr3t-Hunter2-value"
TOKEN = "tok-9f8e7d6c5b4a"
XSS = "<script>alert(1)</script>"
#: secrets in a database URL's query string (issue 9): never in any output, log or message
QSECRET = "q-Pw-7f3e9a1b2c"
QTOKEN = "q-tok-5d4c3b2a19"
QUERY_URL = (
    f"postgresql+psycopg://report@db.example.com/crm?sslmode=require&password={QSECRET}"
    f"&api_token={QTOKEN}"
)


def tiny_data() -> CrmData:
    """Five sellers in four teams; the ok notebook counts sellers per team."""
    sellers = pd.DataFrame(
        {
            "seller_id": ["S1", "S2", "S3", "S4", "S5"],
            "name": ["Anna", "Bo", "Cato", "Dirk", "Eva"],
            "team": ["North", "North", "007", XSS, "../../etc"],
        }
    ).astype("str")
    deals = pd.DataFrame(
        {
            "deal_id": ["D1"],
            "seller_id": ["S1"],
            "created_at": pd.to_datetime(["2024-01-05"]),
            "status": ["open"],
            "value": [100.0],
        }
    )
    return CrmData(
        {"sellers": sellers, "deals": deals},
        organisation="Acme & Co",
        currency="EUR",
        source=QUERY_URL,  # what the loader describes: the query string is not yet masked there
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------- pack run
@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    pack = write(
        root / "pack.yaml",
        f"""
period: previous-month
as_of: 2024-02-15
runs:
  - name: team_ok
    title: Team report
    notebook: {NB / "ok.ipynb"}
    fanout: team
    output: "{{period}}/{{team}}/team-report-{{team}}-{{period}}"
  - name: broken
    notebook: {NB / "raises.ipynb"}
  - name: secrets
    notebook: {NB / "prints_secret.ipynb"}
""",
    )
    data = tiny_data()
    out = root / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KPIREPORT_TEST_DB_PASSWORD", SECRET)
        mp.setenv("KPIREPORT_TEST_API_TOKEN", TOKEN)
        result = run(pack, source=data, out=out, jobs=2)
    by_id = {r.report_id: r for r in result.reports}
    return {"root": root, "pack": pack, "out": out, "result": result, "by_id": by_id, "data": data}


def _report(published, team_slug: str):
    return published["by_id"][f"2024-01/{team_slug}/team-report-{team_slug}-2024-01"]


def test_every_report_has_its_documented_outcome(published):
    statuses = {rid: r.status for rid, r in published["by_id"].items()}
    assert statuses == {
        "2024-01/north/team-report-north-2024-01": "success",
        "2024-01/007/team-report-007-2024-01": "success",
        "2024-01/script-alert-1-script/team-report-script-alert-1-script-2024-01": "success",
        "2024-01/etc/team-report-etc-2024-01": "success",
        "2024-01/broken": "failed",
        "2024-01/secrets": "success",
    }
    assert not published["result"].ok
    assert [r.report_id for r in published["result"].failed] == ["2024-01/broken"]


def test_html_shows_header_values_and_no_code(published):
    out = published["out"]
    html = (out / "2024-01/north/team-report-north-2024-01.html").read_text()
    header = html[html.index('<header class="report-header">') : html.index("</header>")]
    assert "Acme &amp; Co" in header
    assert "Team North" in header and "January 2024" in header and "Team report" in header
    # value = count (3) * 1000 + sellers of team North (2)
    assert '<div class="kpi-value">3,002</div>' in html
    for code in (
        "record_kpis(",
        "import matplotlib",
        'team = "North"',
        "injected-parameters",
        "def ",
    ):
        assert code not in html
    assert "Traceback" not in html
    assert (
        'class="jp-InputPrompt' not in html
        and 'class="jp-InputArea jp-Cell-inputArea"><div class="highlight' not in html
    )
    # a recorded KPI table is data for the CSV, not something shown
    assert "vnd.kpireport" not in html


def test_html_is_self_contained(published):
    html = (published["out"] / "2024-01/north/team-report-north-2024-01.html").read_text()
    srcs = re.findall(r'<img[^>]*\bsrc="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)
    assert "require.js" not in html and "mathjax" not in html.lower()


def test_pdf_text_has_title_scope_and_value(published):
    from pypdf import PdfReader

    reader = PdfReader(published["out"] / "2024-01/north/team-report-north-2024-01.pdf")
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Team report" in text and "Team North" in text and "January 2024" in text
    assert "3,002" in text
    assert "1 / " in text  # page numbers "page / pages"


def test_pdf_font_preparation_keeps_every_glyph():
    """Fonts stripped of layout tables before subsetting print the same text, bold and mono too."""
    from pypdf import PdfReader

    text = "Omzet € 1.234,56 · Partners Öst ß — Ünïcødé"
    page = (
        '<html><head><meta charset="utf-8"></head><body style="font-family: DejaVu Sans">'
        f"<h1>{text}</h1><p><b>{text}</b> <i>{text}</i></p><pre>{text}</pre></body></html>"
    )
    fast = render.to_pdf(page)
    import weasyprint

    full = weasyprint.HTML(string=page).write_pdf(full_fonts=True)  # no subsetting at all

    def words(pdf: bytes) -> str:
        return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split()

    assert words(fast) == words(full)
    assert words(fast).count("Öst") == 4 and words(fast).count("€") == 4
    assert len(fast) < len(full) / 2  # still subset: only the glyphs used are embedded


def test_kpi_table_and_manifest(published):
    out, data = published["out"], published["data"]
    base = out / "2024-01/007/team-report-007-2024-01"
    kpis = pd.read_csv(str(base) + ".kpis.csv", dtype={"scope_id": str})
    assert kpis["kpi"].tolist() == ["value", "sellers"]
    assert kpis["scope_id"].tolist() == ["007", "007"]  # leading zeros survive
    assert kpis["value"].tolist() == [3001.0, 1.0]
    m = json.loads(Path(str(base) + ".manifest.json").read_text())
    assert m["status"] == "success" and m["error"] is None
    assert m["parameters"]["team"] == "007" and m["parameters"]["period"] == "2024-01"
    assert m["parameters"]["as_of"] == "2024-02-15"
    assert m["data_fingerprint"] == data.fingerprint()
    assert set(m["outputs"]) == {"ipynb", "html", "pdf", "kpis"}
    assert set(m["timings_s"]) >= {"execute", "html", "pdf", "publish"}
    for entry in m["outputs"].values():
        assert publish.sha256_file(out / entry["path"]) == entry["sha256"]
    nb = nbformat.read(str(base) + ".ipynb", as_version=4)
    assert nb.metadata.papermill.parameters["team"] == "007"


def test_team_names_are_slugs_inside_out_and_escaped(published):
    out, root = published["out"], published["root"]
    for f in out.rglob("*"):
        assert f.resolve().is_relative_to(out.resolve())
    assert not (root / "etc").exists() and not (out.parent.parent / "etc").exists()
    html = (
        out / "2024-01/script-alert-1-script/team-report-script-alert-1-script-2024-01.html"
    ).read_text()
    assert XSS not in html
    assert "Team &lt;script&gt;alert(1)&lt;/script&gt;" in html
    etc = (out / "2024-01/etc/team-report-etc-2024-01.html").read_text()
    assert "Team ../../etc" in etc


def test_raising_notebook_is_kept_in_failed_and_not_published(published):
    out = published["out"]
    res = published["by_id"]["2024-01/broken"]
    assert res.error_kind == "exception" and "deliberate failure" in res.error
    assert not list(out.glob("2024-01/broken.*"))
    nb = nbformat.read(out / "failed/2024-01/broken.ipynb", as_version=4)
    assert "kpireport-error" in nb.cells[0].metadata.tags
    assert "deliberate failure" in nb.cells[0].source
    assert "raise ValueError" in nb.cells[0].source  # the failing cell is shown
    m = json.loads((out / "failed/2024-01/broken.manifest.json").read_text())
    assert m["status"] == "failed" and m["error"]["kind"] == "exception"
    assert "html" not in m["outputs"] and "pdf" not in m["outputs"]


def test_no_secret_in_any_output(published):
    from pypdf import PdfReader

    out = published["out"]
    files = [f for f in out.rglob("*") if f.is_file()]
    assert any(f.suffix == ".ipynb" for f in files)
    cache = Path(os.environ["KPIREPORT_CACHE"])  # the run snapshot lives there
    files += [f for f in cache.rglob("*") if f.is_file()]
    assert any(f.name == "SNAPSHOT.json" for f in files)
    for f in files:
        blob = f.read_bytes()
        assert SECRET.encode() not in blob and TOKEN.encode() not in blob, f
        assert QSECRET.encode() not in blob and QTOKEN.encode() not in blob, f
        if f.suffix == ".pdf":
            text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(blob)).pages)
            assert SECRET not in text and TOKEN not in text
    html = (out / "2024-01/secrets.html").read_text()
    assert "KPIREPORT_TEST_DB_PASSWORD = &lt;absent&gt;" in html  # the kernel never saw it


def test_rerun_skips_current_reports_and_cli_exits_nonzero(published, capsys):
    from kpireport.cli import main

    out, pack = published["out"], published["pack"]
    manifest = out / "2024-01/north/team-report-north-2024-01.manifest.json"
    before = manifest.stat().st_mtime_ns
    result = run(pack, source=published["data"], out=out, jobs=2, only=["North", "broken"])
    statuses = {r.report_id: r.status for r in result.reports}
    assert statuses == {
        "2024-01/north/team-report-north-2024-01": "skipped",
        "2024-01/broken": "failed",
    }
    assert manifest.stat().st_mtime_ns == before
    broken = write(
        published["root"] / "broken.yaml",
        f"name: broken\nnotebook: {NB / 'raises.ipynb'}\nperiod: 2024-01\n",
    )
    code = main(["run", str(broken), "--out", str(out), "--as-of", "2024-02-15"])
    captured = capsys.readouterr()
    assert code == 1
    assert "2024-01/broken" in captured.out and "failed" in captured.out
    assert "1 report(s) failed" in captured.err


def test_rerun_after_a_library_change_rebuilds(published, monkeypatch):
    """The cache key holds a hash of the kpireport sources: changed code is not skipped."""
    from kpireport.report import runner

    out, pack = published["out"], published["pack"]
    manifest = out / "2024-01/north/team-report-north-2024-01.manifest.json"
    old_key = json.loads(manifest.read_text())["cache_key"]
    monkeypatch.setattr(runner, "code_hash", lambda: "0" * 64)  # as if a module had changed
    result = run(pack, source=published["data"], out=out, jobs=1, only=["North"])
    assert [r.status for r in result.reports] == ["success"]
    assert json.loads(manifest.read_text())["cache_key"] != old_key
    again = run(pack, source=published["data"], out=out, jobs=1, only=["North"])
    assert [r.status for r in again.reports] == ["skipped"]


def test_code_hash_follows_source_and_template_files(tmp_path, monkeypatch):
    from kpireport.report import manifest

    pkg = tmp_path / "kpireport"
    (pkg / "report").mkdir(parents=True)
    (tmp_path / "templates" / "kpireport").mkdir(parents=True)
    init = write(pkg / "__init__.py", "x = 1\n")
    write(pkg / "report" / "views.py", "y = 2\n")
    css = write(tmp_path / "templates" / "kpireport" / "kpireport.css", "a {}\n")
    assert init.exists()

    def fresh() -> str:
        manifest.code_hash.cache_clear()
        return manifest.code_hash(pkg)

    try:
        first = fresh()
        assert re.fullmatch(r"[0-9a-f]{64}", first) and fresh() == first
        write(pkg / "report" / "views.py", "y = 3\n")
        second = fresh()
        assert second != first
        css.write_text("a { color: red }\n", encoding="utf-8")
        assert fresh() != second
        (pkg / "report" / "__pycache__").mkdir()
        third = fresh()
        write(pkg / "report" / "__pycache__" / "views.cpython-311.pyc", "junk")
        assert fresh() == third  # byte code is not source
    finally:
        manifest.code_hash.cache_clear()


# ------------------------------------------------------ run definitions
def test_misspelt_parameter_is_refused_with_suggestion(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\nparameters:\n  cuont: 3\n",
    )
    with pytest.raises(ParamsError, match=r"no parameter 'cuont' \(did you mean 'count'\?\)"):
        run(p, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_run_key_is_refused_with_suggestion(tmp_path):
    p = write(tmp_path / "r.yaml", f"notebook: {NB / 'ok.ipynb'}\nperod: 2024-01\n")
    with pytest.raises(ParamsError, match=r"unknown key 'perod' \(did you mean 'period'\?\)"):
        load_plan(p)


def test_strings_stay_strings(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\n"
        "fanout: {team: [007, NO]}\nparameters:\n  title: NO\n  count: 007\n  flag: off\n  threshold: 2\n",
    )
    (r,) = load_plan(p)
    assert r.parameters == {"title": "NO", "count": 7, "flag": False, "threshold": 2.0}
    specs = expand([r], out=tmp_path / "out")
    assert [s.parameters["team"] for s in specs] == ["007", "NO"]
    assert all(type(v) in (str, int, float, bool) for s in specs for v in s.parameters.values())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("count: abc", "must be a whole number"),
        ("flag: maybe", "must be true or false"),
        ("count: [1, 2]", "single value"),
        ("threshold: nan", "finite number"),
        ("db_password: x", "looks like a credential"),
        ("period: 2024-02", "top level"),
    ],
)
def test_ill_typed_or_forbidden_parameters_are_refused(tmp_path, line, message):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nparameters:\n  {line}\n",
    )
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_plan(p)


def test_invalid_period_is_refused(tmp_path):
    p = write(
        tmp_path / "r.yaml", f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-13\nas_of: 2024-02-01\n"
    )
    with pytest.raises(ParamsError, match="'2024-13' is not a valid period"):
        run(p, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_relative_period_resolves_from_as_of_not_the_clock(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: previous-month\nas_of: 2025-03-31\n",
    )
    (spec,) = expand(load_plan(p), out=tmp_path)
    assert (spec.period, spec.as_of, spec.parameters["period"]) == (
        "2025-02",
        "2025-03-31",
        "2025-02",
    )
    (spec,) = expand(load_plan(p, {"period": "previous-quarter"}), out=tmp_path, as_of="2025-05-02")
    assert spec.period == "2025-Q1"


def test_notebook_without_parameters_cell_is_refused(tmp_path):
    p = write(tmp_path / "r.yaml", f"notebook: {NB / 'no_parameters.ipynb'}\nperiod: 2024-01\n")
    with pytest.raises(ParamsError, match="no cell tagged 'parameters'"):
        load_plan(p)


def test_fanout_needs_the_scope_parameter_and_known_ids(tmp_path):
    p = write(
        tmp_path / "r.yaml", f"notebook: {NB / 'raises.ipynb'}\nperiod: 2024-01\nfanout: seller\n"
    )
    with pytest.raises(ParamsError, match="declare a 'seller' parameter"):
        load_plan(p)
    p = write(
        tmp_path / "t.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\nfanout: {{team: [Nroth]}}\n",
    )
    with pytest.raises(ParamsError, match=r"unknown team 'Nroth' \(did you mean 'North'\?\)"):
        expand(load_plan(p), out=tmp_path, data=tiny_data())


def test_pack_include_and_overrides(tmp_path):
    write(
        tmp_path / "a.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2023-12\nformats: [html]\nlanguage: en\n",
    )
    write(tmp_path / "b.yaml", f"notebook: {NB / 'raises.ipynb'}\nperiod: 2023-11\n")
    pack = write(
        tmp_path / "pack.yaml", "include: [a.yaml, b.yaml]\nperiod: 2024-01\nlanguage: nl\n"
    )
    runs = load_plan(pack, {"formats": ["pdf"]})
    assert [(r.name, r.period, r.language, r.formats) for r in runs] == [
        ("a", "2024-01", "nl", ("pdf",)),
        ("b", "2024-01", "nl", ("pdf",)),
    ]


def test_output_pattern_fields_are_checked(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\noutput: '{{perid}}/x'\n",
    )
    with pytest.raises(ParamsError, match=r"unknown field \{perid\} \(did you mean 'period'\?\)"):
        expand(load_plan(p), out=tmp_path)


def test_colliding_slugs_are_kept_apart(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\nfanout: {{team: [Team A, team-a]}}\n",
    )
    ids = [s.report_id for s in expand(load_plan(p), out=tmp_path)]
    assert len(set(ids)) == 2 and all(i.startswith("2024-01/r-team-a-") for i in ids)


def test_shipped_run_definitions_parse():
    root = Path(__file__).resolve().parents[1] / "kpireport" / "resources" / "params"
    for name in (
        "team_monthly",
        "seller_monthly",
        "management_monthly",
        "finance_monthly",
        "monthly_pack",
    ):
        doc = params.read_yaml(root / f"{name}.yaml")
        assert isinstance(doc, dict) and ("notebook" in doc or "include" in doc)


# ------------------------------------------------------------- helpers
def test_slug_and_resolve_inside(tmp_path):
    assert slug.slug("../../etc") == "etc"
    assert slug.slug(XSS) == "script-alert-1-script"
    assert slug.slug("Team Nord Öst") == "team-nord-ost"
    assert re.fullmatch(r"x-[0-9a-f]{6}", slug.slug("🚀🚀"))
    assert slug.slug("🚀") != slug.slug("🎉")
    assert slug.slug_path("../a b/./..//c") == "a-b/c"
    assert slug.resolve_inside(tmp_path, "a/b") == (tmp_path / "a/b").resolve()
    for bad in ("../x", "/etc/passwd", "a/../../x", "."):
        with pytest.raises(ParamsError):
            slug.resolve_inside(tmp_path, bad)


def test_safe_csv_neutralises_formulas(tmp_path):
    df = pd.DataFrame(
        {
            "name": ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", None],
            "value": [-5, 1, 2, 3, 4, 5, 6, 7],
        }
    )
    path = publish.safe_csv(df, tmp_path / "k.csv")
    back = pd.read_csv(path, keep_default_na=False)
    assert back["name"].tolist()[:4] == ['\'=HYPERLINK("x")', "'+1", "'-2", "'@SUM(A1)"]
    assert back["name"].tolist()[6:] == ["plain", ""]
    assert back["value"].tolist()[0] == -5  # numbers are not formulas


def test_atomic_write_leaves_previous_file_on_crash(tmp_path):
    target = tmp_path / "report.html"
    publish.atomic_write_text(target, "complete old report")

    def crash(fh):
        fh.write(b"half a rep")
        raise OSError("disk pulled")

    with pytest.raises(OSError, match="disk pulled"):
        publish.atomic_write_with(target, crash)
    assert target.read_text() == "complete old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left


def test_is_current_detects_modified_outputs(tmp_path):
    f = publish.atomic_write_text(tmp_path / "a.html", "x")
    m = {
        "status": "success",
        "cache_key": "k",
        "outputs": {"html": {"path": "a.html", "sha256": publish.sha256_file(f)}},
    }
    publish.atomic_write_json(tmp_path / "a.manifest.json", m)
    assert is_current(tmp_path / "a.manifest.json", "k", tmp_path)
    assert not is_current(tmp_path / "a.manifest.json", "other", tmp_path)
    f.write_text("tampered")
    assert not is_current(tmp_path / "a.manifest.json", "k", tmp_path)


def test_check_complete_detects_early_exit_and_unexecuted_cells():
    nb = nbformat.v4.new_notebook()
    ran = nbformat.v4.new_code_cell("x = 1", execution_count=1)
    exit_cell = nbformat.v4.new_code_cell("import sys; sys.exit(0)", execution_count=2)
    exit_cell.outputs = [
        nbformat.v4.new_output("error", ename="SystemExit", evalue="0", traceback=[])
    ]
    pending = nbformat.v4.new_code_cell("print(1)")
    nb.cells = [ran, exit_cell, pending]
    early = execute.check_complete(nb)
    assert isinstance(early, EarlyExitError) and early.kind == "early_exit"
    assert (early.cell_index, early.ename) == (1, "SystemExit")
    exit_cell.outputs = []
    assert execute.check_complete(nb).to_dict() == {
        "kind": "incomplete",
        "message": "The notebook stopped before cell 2 ran.",
        "cell_index": 2,
    }
    pending.execution_count = 3
    assert execute.check_complete(nb) is None


def test_self_contained_check():
    ok = render.check_self_contained(
        '<script src="https://cdn.x/require.js"></script><p>hi</p><a href="https://example.com">link</a>'
    )
    assert "cdn.x" not in ok and "https://example.com" in ok  # hyperlinks are fine, fetches are not
    with pytest.raises(RenderError, match="external resource"):
        render.check_self_contained('<link rel="stylesheet" href="https://fonts.example/css">')
    with pytest.raises(RenderError):
        render.check_self_contained("<style>@import url('//fonts.example/x.css');</style>")


def test_kpi_payload_is_json_safe():
    df = pd.DataFrame({"kpi": ["hit_rate", "revenue"], "value": [float("nan"), 12.5]})
    payload = kpi_payload(df)
    assert payload == {
        "columns": ["kpi", "value"],
        "records": [["hit_rate", None], ["revenue", 12.5]],
    }
    json.dumps(payload, allow_nan=False)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={"application/vnd.kpireport.kpis+json": payload}
        )
    ]
    nb.cells = [cell]
    assert extract_kpis(nb)["value"].isna().tolist() == [True, False]


def test_source_secret_names(tmp_path):
    src = write(
        tmp_path / "crm.yaml",
        "url: postgresql://u@db/crm\npassword_env: CRM_DB_PASSWORD\ntimezone: ${ORG_TZ}\n",
    )
    assert source_secret_names(src) == ("CRM_DB_PASSWORD", "ORG_TZ")
    assert source_secret_names(tiny_data()) == ()


def test_snapshot_round_trip_and_fingerprint_check(tmp_path):
    from kpireport.errors import SourceError
    from kpireport.report.snapshot import is_snapshot, load_source, write_snapshot

    data = tiny_data()
    source_yaml = write_snapshot(data, tmp_path / "snap")
    assert is_snapshot(source_yaml) and not is_snapshot(tmp_path)
    back = load_source(source_yaml)
    assert back.fingerprint() == data.fingerprint()
    assert back.organisation == "Acme & Co" and back.sellers["team"].tolist()[2] == "007"
    data.tables["sellers"].loc[0, "name"] = "Changed"
    data.tables["sellers"].to_parquet(tmp_path / "snap/sellers.parquet", index=False)
    with pytest.raises(SourceError, match="does not match its fingerprint"):
        load_source(source_yaml)


def test_header_meta_in_dutch():
    from kpireport.report.params import ReportSpec
    from kpireport.report.runner import header_meta

    spec = ReportSpec(
        "2025-03/s1", "seller_monthly", "Scorecard", NB / "ok.ipynb", "seller", "S1", "Anna", "2025-03",
        "2025-04-01", "nl", ("pdf",), {}, 600.0, 60.0, 1800.0,
    )  # fmt: skip
    meta = header_meta(spec, "Acme", "ab" * 32)
    assert meta["scope"] == "Verkoper Anna (S1)"
    assert meta["period_label"] == "maart 2025"
    assert meta["as_of_label"] == "Gegevens tot en met 1 april 2025"
    assert meta["footer"].endswith("data abababababab")


def test_only_that_matches_nothing_is_refused_before_executing(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\nfanout: {{team: [North, '007']}}\n",
    )
    with pytest.raises(
        ParamsError, match=r"--only 'Nroth' matches no report \(did you mean 'North'\?\)"
    ):
        run(p, source=tiny_data(), out=tmp_path / "out", only=["Nroth"])
    assert not (tmp_path / "out").exists()


def test_every_seller_fanout_keeps_only_sellers_active_in_the_period():
    from pathlib import Path
    from types import SimpleNamespace

    import pandas as pd

    from kpireport.report.params import fanout_scopes

    sellers = pd.DataFrame(
        {
            "seller_id": ["S1", "S2", "S3", "S4"],
            "name": ["Left long ago", "Always", "Joins in October", "Joins in December"],
            "team": ["A", "A", "B", "B"],
            "active_from": pd.to_datetime(["2020-01-01", None, "2026-10-31", "2026-12-01"]),
            "active_to": pd.to_datetime(["2023-09-30", None, None, None]),
        }
    )
    data = SimpleNamespace(tables={"sellers": sellers}, organisation="Org")
    run = SimpleNamespace(
        origin=Path("x.yaml"), name="r", fanout="seller", fanout_ids=None, organisation=None
    )
    problems: list[str] = []
    ids = [s.id for s in fanout_scopes(run, data, problems, "2026-10")]
    assert ids == ["S2", "S3"]  # S1 left in 2023, S4 starts after October
    assert [s.id for s in fanout_scopes(run, data, problems)] == [
        "S1",
        "S2",
        "S3",
        "S4",
    ]  # no period: all
    run.fanout_ids = ["S1"]  # an explicit list is taken as given
    assert [s.id for s in fanout_scopes(run, data, problems, "2026-10")] == ["S1"]
    assert problems == []


# ------------------------------------------------ issue 9: right or absent
REPO = Path(__file__).resolve().parents[1]


def shipped(kind: str) -> Path:
    """The shipped ``params`` or ``notebooks`` folder (in ``kpireport/resources/`` or the root)."""
    return next(p for p in (REPO / "kpireport" / "resources" / kind, REPO / kind) if p.is_dir())


MANAGEMENT = shipped("params") / "management_monthly.yaml"
CRM = str(REPO / "tests" / "data" / "kpis")  # a small valid export (folder of CSV files)
KPIREPORT = str(Path(sys.executable).with_name("kpireport"))


def test_manifest_and_summary_show_the_source_masked(published):
    """Item 9: the query-string password of the source URL is masked in the manifest."""
    m = json.loads(
        (published["out"] / "2024-01/north/team-report-north-2024-01.manifest.json").read_text()
    )
    assert m["source"] == (
        "postgresql+psycopg://report@db.example.com/crm?sslmode=require&password=***&api_token=***"
    )
    assert m["data_fingerprint"] == published["data"].fingerprint()  # the fingerprint, not the data


def test_published_files_follow_the_umask(published):
    """Item 13: published files are 0o666 & ~umask (the fixture ran with the process umask)."""
    umask = publish.current_umask()
    files = [f for f in published["out"].rglob("*") if f.is_file() and ".work" not in f.parts]
    assert {f.suffix for f in files} >= {".html", ".pdf", ".ipynb", ".json", ".csv"}
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o666 & ~umask}


def test_atomic_write_uses_the_umask_at_write_time(tmp_path):
    old = os.umask(0o002)
    try:
        group = publish.atomic_write_text(tmp_path / "group.html", "x")
        os.umask(0o077)
        private = publish.atomic_write_text(tmp_path / "private.html", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(group.stat().st_mode) == 0o664
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_no_copy_of_the_data_beside_the_reports(published):
    """Item 14: the snapshot is in the cache, not in the shared output folder."""
    out = published["out"]
    assert not [f for f in out.rglob("*") if f.suffix == ".parquet" or f.name == "SNAPSHOT.json"]
    from kpireport.report.snapshot import snapshot_folder

    snap = snapshot_folder(published["data"].fingerprint())
    assert snap.is_relative_to(Path(os.environ["KPIREPORT_CACHE"]))
    assert (snap / "sellers.parquet").is_file()
    nb = nbformat.read(out / "2024-01/north/team-report-north-2024-01.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters["source"] == str(snap / "source.yaml")


def _crm(n: int) -> CrmData:
    sellers = pd.DataFrame({"seller_id": [f"S{n}"], "name": ["A"], "team": ["T"]})
    return CrmData({"sellers": sellers}, organisation=f"Org {n}")


def test_snapshot_cache_keeps_the_latest_two_and_clean_removes_them(tmp_path, monkeypatch, capsys):
    from kpireport.cli import main
    from kpireport.report import snapshot as snap

    monkeypatch.setenv("KPIREPORT_CACHE", str(tmp_path / "cache"))
    folders = []
    for n in range(4):
        folder = snap.snapshot_folder(_crm(n).fingerprint())
        use = snap.SnapshotUse(folder)
        snap.write_snapshot(_crm(n), folder)
        os.utime(use.lock, (1_000_000 + n, 1_000_000 + n))  # used in this order
        if n != 0:
            use.close()  # snapshot 0 stays in use by a "running" run
        folders.append((folder, use))
    removed = snap.prune_snapshots()
    assert sorted(removed) == [folders[1][0]]  # oldest unused one goes; 0 is in use, 2 and 3 latest
    assert [f.is_dir() for f, _ in folders] == [True, False, True, True]
    assert main(["clean"]) == 0
    assert "removed 2 data snapshot(s)" in capsys.readouterr().out
    assert [f.is_dir() for f, _ in folders] == [True, False, False, False]
    folders[0][1].close()
    snap.clean_snapshots()
    assert not any(f.is_dir() for f, _ in folders)


def test_legacy_snapshot_in_the_output_folder_is_removed(tmp_path):
    from kpireport.report.snapshot import remove_legacy_snapshots, write_snapshot

    old = tmp_path / "out" / ".work" / "abcdef0123456789"
    write_snapshot(_crm(1), old)
    assert remove_legacy_snapshots(tmp_path / "out") == [old] and not old.exists()


def test_run_without_source_is_refused_before_any_kernel(tmp_path, capsys):
    """Item 7: no silent demo company: a run without a source never starts."""
    from kpireport.cli import main

    code = main(
        ["run", str(MANAGEMENT), "--as-of", "2026-11-30",
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and not (tmp_path / "out").exists()
    assert err == (
        "error: management_monthly.yaml (run 'management_monthly'): no data source; pass --source "
        "or set 'source:' in the run definition (source: demo builds it on the fictional demo company)."
    )


def test_report_notebooks_default_to_an_explicit_demo_source():
    import papermill

    for nb in sorted(shipped("notebooks").glob("*.ipynb")):
        assert papermill.inspect_notebook(str(nb))["source"]["default"] == '"demo"', nb.name


def test_empty_source_in_a_notebook_is_an_error_not_the_demo():
    from kpireport.errors import SourceError
    from kpireport.report import views

    with pytest.raises(SourceError, match="no data source"):
        views.load_data("", "2026-11-30")
    assert views.load_data("demo", "2026-11-30").organisation == "Nordlys Systems Oy"


def test_demo_source_is_kept_literally_in_run_definitions(tmp_path):
    p = write(tmp_path / "r.yaml", f"notebook: {NB / 'ok.ipynb'}\nsource: demo\nperiod: 2024-01\n")
    assert load_plan(p)[0].source == "demo"


def _long_team_data(*teams: str) -> CrmData:
    sellers = pd.DataFrame(
        {
            "seller_id": [f"S{i}" for i in range(len(teams))],
            "name": list(teams),
            "team": list(teams),
        }
    )
    return CrmData({"sellers": sellers}, organisation="Org")


LONG_TEAM = "Enterprise Accounts Northern Europe and the Baltic States Region X"  # 66 characters


def test_long_scope_names_never_lose_the_period(tmp_path):
    """Item 10: the scope part is shortened, ``{period}`` is kept: October and November differ."""
    team_yaml = (shipped("params") / "team_monthly.yaml").read_text()
    p = write(
        tmp_path / "team_monthly.yaml", team_yaml.replace("../notebooks", str(shipped("notebooks")))
    )
    data = _long_team_data(LONG_TEAM, LONG_TEAM[:-1] + "Y")
    ids = {}
    for as_of in ("2026-11-15", "2026-12-15"):
        for spec in expand(load_plan(p), out=tmp_path, data=data, as_of=as_of):
            ids[(spec.scope_id, spec.period)] = spec.report_id
    assert len(set(ids.values())) == 4
    for (_, period), rid in ids.items():
        name = rid.split("/")[-1]
        assert name.endswith(f"-{period}") and len(name) <= slug.MAX_SLUG
        assert name.startswith("team-report-enterprise-accounts-northern")


def test_two_reports_on_one_path_are_refused_naming_both(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\n"
        "fanout: {team: [North, '007']}\noutput: '{period}/team-report'\n",
    )
    with pytest.raises(ParamsError) as exc:
        run(p, source=tiny_data(), out=tmp_path / "out")
    assert str(exc.value) == (
        "The reports of team 'North' for 2024-01 (run 'r') and team '007' for 2024-01 (run 'r') "
        "would both be written to '2024-01/team-report'; make the output patterns distinct."
    )
    assert not (tmp_path / "out").exists()


def test_overwriting_another_scopes_published_report_is_refused(tmp_path):
    p = write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\n"
        "fanout: {team: [North]}\noutput: '{period}/north-report'\n",
    )
    out = tmp_path / "out"
    publish.atomic_write_json(
        out / "2024-01/north-report.manifest.json",
        {"run": "r", "scope": "team", "scope_id": "South", "scope_name": "South",
         "period": "2024-01", "status": "success"},
    )  # fmt: skip
    with pytest.raises(ParamsError) as exc:
        run(p, source=tiny_data(), out=out)
    assert str(exc.value) == (
        "The report of team 'North' for 2024-01 (run 'r') would overwrite the published report of "
        "team 'South' for 2024-01 (run 'r') at '2024-01/north-report'; make the output pattern "
        "distinct (include the scope and {period})."
    )
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "north-report.manifest.json",
        "run.lock",
    ]


def test_second_run_into_a_locked_output_folder_exits_75_naming_the_holder(tmp_path):
    """Item 15: the folder's flock; the second run does not start."""
    from kpireport.report.runner import output_lock

    out = tmp_path / "out"
    p = write(
        tmp_path / "r.yaml", f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-01\n"
    )
    with output_lock(out.resolve()):
        proc = subprocess.run(
            [KPIREPORT, "run", str(p), "--source", CRM, "--out", str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert proc.returncode == 75, proc.stderr
    assert f"is in use by another kpireport run (pid {os.getpid()}, started " in proc.stderr
    # one line of refusal (the loader's warning about the CSV folder's defaults may precede it)
    refusal = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING ")]
    assert len(refusal) == 1 and "Pass --wait" in refusal[0], proc.stderr
    assert not list(out.glob("2024-01/*"))


@pytest.mark.parametrize("command", ["run", "kpis", "goals", "forecast"])
def test_invalid_as_of_is_one_clear_line(command, capsys):
    """Item 16: ``--as-of 2026-13-45`` is one sentence, exit 2, before any data is loaded."""
    from kpireport.cli import main

    args = {
        "run": ["run", str(MANAGEMENT), "--source", CRM],
        "kpis": ["kpis", "--source", "nowhere", "--period", "2026-10"],
        "goals": ["goals", "--source", "nowhere"],
        "forecast": ["forecast", "--source", "nowhere", "--kpi", "won_value", "--horizon", "2"],
    }[command]
    assert main([*args, "--as-of", "2026-13-45"]) == 2
    assert capsys.readouterr().err == (
        "error: --as-of '2026-13-45' is not a valid date (month must be in 1..12); expected YYYY-MM-DD.\n"
    )


def test_out_that_is_a_file_is_one_clear_line(tmp_path, capsys):
    from kpireport.cli import main

    target = write(tmp_path / "reports", "not a folder")
    code = main(["run", str(MANAGEMENT), "--source", CRM,
                 "--as-of", "2026-11-30", "--out", str(target)])  # fmt: skip
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: The output folder '{target}' is a file; pass a folder with --out.\n"
    )


def _mount_read_only(folder: Path) -> bool:
    if os.geteuid() != 0:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                       capture_output=True).returncode == 0
    )  # fmt: skip


def test_out_on_a_read_only_mount_is_one_clear_line(tmp_path, capsys):
    from kpireport.cli import main

    mount = tmp_path / "ro"
    if not _mount_read_only(mount):
        pytest.skip("needs root and mount to make a read-only file system")
    try:
        code = main(["run", str(MANAGEMENT), "--source", CRM,
                     "--as-of", "2026-11-30", "--out", str(mount / "reports")])  # fmt: skip
        err = capsys.readouterr().err
    finally:
        subprocess.run(["umount", str(mount)], check=False)
    assert code == 2
    assert err == (
        f"error: The output folder '{mount / 'reports'}' is on a read-only file system; "
        "pass a writable --out.\n"
    )


def test_out_in_a_read_only_folder_is_one_clear_line(tmp_path):
    """A folder the user cannot write (root writes anywhere: the CLI runs without DAC override)."""
    import shutil

    ro = tmp_path / "shared"
    ro.mkdir()
    ro.chmod(0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("needs setpriv to drop root's permission override")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    proc = subprocess.run(
        [*prefix, KPIREPORT, "run", str(MANAGEMENT),
         "--source", CRM, "--as-of", "2026-11-30", "--out", str(ro)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    ro.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"error: The output folder '{ro}' is not writable (Permission denied); "
        "pass a writable --out.\n"
    )


def test_query_string_secrets_are_masked_in_cli_messages(tmp_path, monkeypatch, capsys):
    """Item 9: a connection error names the URL with the query-string password masked."""
    from kpireport.cli import main

    monkeypatch.setenv("KPIREPORT_TEST_CRM_PW", QSECRET)
    src = write(
        tmp_path / "crm.yaml",
        "url: postgresql+psycopg://report@127.0.0.1:1/crm?sslpassword=${KPIREPORT_TEST_CRM_PW}"
        f"&token={QTOKEN}&x_password={QTOKEN}\n",
    )
    for argv in (["validate", str(src)], ["kpis", "--source", str(src), "--period", "2026-10"]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code != 0 and "127.0.0.1:1/crm" in err
        assert QSECRET not in out + err and QTOKEN not in out + err
        assert "sslpassword=***" in err and "token=***" in err and "x_password=***" in err


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "postgresql+psycopg://u@host/crm?password=hunter2",
            "postgresql+psycopg://u@host/crm?password=***",
        ),
        ("x://h/d?sslmode=require&sslpassword=pw1234", "x://h/d?sslmode=require&sslpassword=***"),
        (
            "https://api/x?api_key=abcd&secret=efgh;token=ijkl",
            "https://api/x?api_key=***&secret=***;token=***",
        ),
        (
            "mssql://h/d?db_password=abcd&sslkey=/etc/k.pem",
            "mssql://h/d?db_password=***&sslkey=/etc/k.pem",
        ),
        ("mysql://user:hunter2@db/crm", "mysql://user:***@db/crm"),
        ("no url here: password is not a query", "no url here: password is not a query"),
    ],
)
def test_mask_secrets(text, masked):
    from kpireport.secrets import mask_secrets

    assert mask_secrets(text, []) == masked


def test_history_and_logs_mask_query_secrets(tmp_path, caplog):
    import logging

    from kpireport.history.store import History
    from kpireport.secrets import install_log_masking

    url = f"postgresql://u@h/crm?password={QSECRET}"
    h = History(tmp_path)
    run_id = h.start_run(
        "job",
        "2026-10",
        "2026-11-01",
        "2026-11-01T06:00:00+00:00",
        version="0",
        pid=1,
        forced=False,
    )
    h.finish_run(
        run_id, status="failed", ended_at="2026-11-01T06:01:00+00:00", error=f"Cannot use {url}"
    )
    for f in tmp_path.glob("history.sqlite*"):
        assert QSECRET.encode() not in f.read_bytes()
    assert h.table("runs")["error"].tolist() == ["Cannot use postgresql://u@h/crm?password=***"]
    install_log_masking()
    with caplog.at_level(logging.WARNING, logger="kpireport"):
        logging.getLogger("kpireport").warning("Loading %s failed", url)
    assert QSECRET not in caplog.text and "password=***" in caplog.text


def test_pdf_fonts_are_subset_by_harfbuzz_without_patching_weasyprint():
    """The fast path is the system library (.ci/run installs it), not a hook into WeasyPrint."""
    import logging

    from weasyprint.pdf import fonts as wp_fonts

    from kpireport.report import render

    assert render.fast_subsetting(), "libharfbuzz-subset0 is missing (see README)"
    before = {n: logging.getLogger(n).level for n in ("weasyprint", "fontTools")}
    pdf = render.to_pdf("<html><body><p>Ørsted Åbo € 1 234,56</p></body></html>")
    assert pdf.startswith(b"%PDF")
    assert not getattr(wp_fonts.Font._fonttools_subset, "_kpireport", False)
    # other libraries' log levels are changed only for the duration of the call
    assert {n: logging.getLogger(n).level for n in before} == before
