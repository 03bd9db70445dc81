"""Report packs beyond one process (issue 11): shards, ``collect``, the pack index, progress.

One module-scoped unsharded run of a small pack (the ok notebook fanned out
over four teams, one a ``<script>`` tag, and a notebook that raises) is the
reference; the same pack is then built as three shards into one folder,
checking ``collect`` between the shards. The index is opened in a real
headless Chromium. The Dask executor has its own module (tests/test_dask.py).
"""

from __future__ import annotations

import html
import io
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from kpireport.cli import main as cli_main
from kpireport.cli.report import Progress
from kpireport.data.model import CrmData
from kpireport.errors import ParamsError
from kpireport.report.pack import parse_shard, read_plans, shard_of
from kpireport.report.runner import ReportResult, plan_reports, run

NB = Path(__file__).resolve().parent / "notebooks"
XSS = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.slow


def tiny_data() -> CrmData:
    """Five sellers in four teams; the ok notebook's value is 3000 + sellers of the team."""
    sellers = pd.DataFrame(
        {
            "seller_id": ["S1", "S2", "S3", "S4", "S5"],
            "name": ["Anna", "Bo", "Cato", "Dirk", "Eva"],
            "team": ["North", "North", "South", XSS, "West"],
        }
    ).astype("str")
    return CrmData({"sellers": sellers}, organisation="Acme")


def write_pack(root: Path) -> Path:
    pack = root / "pack.yaml"
    pack.write_text(
        f"""
period: 2024-01
as_of: 2024-02-15
formats: [html, pdf]
runs:
  - name: team_ok
    title: Team report
    notebook: {NB / "ok.ipynb"}
    fanout: team
    output: "{{period}}/{{team}}/team-{{team}}-{{period}}"
  - name: broken
    notebook: {NB / "raises.ipynb"}
    formats: [html]
""",
        encoding="utf-8",
    )
    return pack


def kpis_of(out: Path) -> dict[str, str]:
    """Every published KPI table, by path relative to the output folder."""
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.kpis.csv"))}


def published_ids(out: Path) -> set[str]:
    """Report ids with a published (success) manifest."""
    ids = set()
    for m in out.rglob("*.manifest.json"):
        if "failed" in m.relative_to(out).parts:
            continue
        doc = json.loads(m.read_text())
        if doc["status"] == "success":
            ids.add(doc["report"])
    return ids


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("scaling")
    params = write_pack(root)
    data = tiny_data()
    out = root / "whole"
    seen: list[tuple[str, int, int]] = []
    result = run(
        params,
        source=data,
        out=out,
        jobs=2,
        on_report=lambda r, d, t: seen.append((r.status, d, t)),
    )
    return {
        "root": root,
        "params": params,
        "data": data,
        "out": out,
        "result": result,
        "seen": seen,
    }


# ------------------------------------------------------------------- shards
def test_shard_assignment_is_stable_and_covers_every_report():
    ids = [f"2026-04/sellers/scorecard-s{i:04d}-2026-04" for i in range(300)]
    shards = [shard_of(i, 7) for i in ids]
    assert set(shards) == set(range(1, 8))  # 1-based, every shard used
    assert shards == [shard_of(i, 7) for i in ids]  # a pure function of the id
    # not Python's salted hash: a fixed id has a fixed shard on every machine
    # sha256 of the id, first 16 hex digits mod 3, plus 1 (checked with sha256sum)
    assert shard_of("2024-01/north/team-north-2024-01", 3) == 2
    assert shard_of("x", 1) == 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "1-3", "a/b", "3"])
def test_bad_shard_is_one_clear_sentence(text):
    with pytest.raises(ParamsError, match=r"--shard .* i/N"):
        parse_shard(text)


def test_plan_lists_every_report_and_runs_nothing(pack, tmp_path, capsys):
    specs = plan_reports(pack["params"], source=pack["data"], out=tmp_path / "nothing")
    assert sorted(s.report_id for s in specs) == sorted(r.report_id for r in pack["result"].reports)
    assert not (tmp_path / "nothing").exists()
    # the demo's four teams, with their shard of 3; the shard's own marked
    code = cli_main(
        ["run", "team_monthly", "--source", "demo", "--as-of", "2026-05-12", "--plan",
         "--shard", "2/3", "--out", str(tmp_path / "nothing")]
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and not (tmp_path / "nothing").exists()
    assert lines[0].split() == ["shard", "report", "scope", "period"]
    rows = [line.split() for line in lines[1:-1]]
    assert [r[1] for r in rows] == [
        f"2026-04/teams/team-report-{t}-2026-04"
        for t in ("enterprise", "mid-market", "partners-ost", "smb")
    ]
    for r in rows:
        k = shard_of(r[1], 3)
        assert r[0] == f"{k}/3" + ("*" if k == 2 else "")
    assert (
        lines[-1]
        == f"4 planned report(s); {sum(r[0].endswith('*') for r in rows)} in shard 2/3 (marked *)"
    )


def test_three_shards_into_one_folder_equal_the_whole_run_and_collect_finds_the_gap(pack, capsys):
    whole = pack["out"]
    ids = [r.report_id for r in pack["result"].reports]
    by_shard = {i: [x for x in ids if shard_of(x, 3) == i] for i in (1, 2, 3)}
    assert all(by_shard.values()), by_shard  # every shard has work (fixed by the ids)
    out = pack["root"] / "sharded"
    for i in (1, 2):
        res = run(pack["params"], source=pack["data"], out=out, jobs=2, shard=f"{i}/3")
        assert sorted(r.report_id for r in res.reports) == sorted(by_shard[i])

    # shard 3 has not run: collect names exactly its reports, exit 1
    code = cli_main(["collect", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    missing = {line.split()[1] for line in err.splitlines() if line.startswith("missing")}
    assert missing == set(by_shard[3])
    assert "error: " in err

    run(pack["params"], source=pack["data"], out=out, jobs=2, shard=(3, 3))
    assert published_ids(out) == published_ids(whole)
    assert kpis_of(out) == kpis_of(whole)
    # team North has two sellers: value 3 * 1000 + 2
    north = kpis_of(out)["2024-01/north/team-north-2024-01.kpis.csv"]
    assert "value,team,North,2024-01,3002.0" in north.replace('"', "")
    assert read_plans(out) == read_plans(whole)

    # only the raising notebook is left: collect lists it as failed with its reason
    code = cli_main(["collect", str(out)])
    cap = capsys.readouterr()
    assert code == 1
    assert [line.split()[:2] for line in cap.err.splitlines()[:-1]] == [
        ["failed", "2024-01/broken"]
    ]
    assert "ValueError" in cap.err
    assert "4 of 5 planned report(s) published" in cap.out


def test_collect_without_a_plan_is_one_clear_sentence(tmp_path, capsys):
    assert cli_main(["collect", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "holds no report plan" in err and len(err.strip().splitlines()) == 1


# -------------------------------------------------------------------- index
class _Text(HTMLParser):
    """The text a reader sees, the links and whether any script or external resource is there."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for k, v in attrs:
            if k == "href" and tag == "a":
                self.links.append(v)
            if k in ("src", "href") and v and ("://" in v or v.startswith("//")):
                self.external.append(v)

    def handle_data(self, data):
        self.text.append(data)


def test_index_lists_every_report_escaped_with_links_and_reasons(pack):
    out = pack["out"]
    page = (out / "index.html").read_text(encoding="utf-8")
    p = _Text()
    p.feed(page)
    text = " ".join(" ".join(p.text).split())
    assert "script" not in p.tags and not p.external  # no script, nothing fetched
    assert "5 reports: 4 published, 1 failed, 0 not built." in text
    assert f"Team {XSS}" in text  # the team's name shown as text
    assert html.escape(XSS) in page
    assert "ValueError" in text and "failed" in text
    # one HTML and one PDF link per published team report, all relative and present
    assert len([x for x in p.links if x.endswith(".html")]) == 4
    assert len([x for x in p.links if x.endswith(".pdf")]) == 4
    from urllib.parse import unquote

    for link in p.links:
        assert not link.startswith("/") and (out / unquote(link)).is_file(), link


def test_index_in_a_real_browser_offline(pack, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    out = pack["out"]
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        ctx = b.new_context(offline=True, viewport={"width": 1200, "height": 700})
        page = ctx.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.goto((out / "index.html").as_uri())
        body = page.inner_text("body")
        rows = page.locator("tbody tr")
        assert rows.count() == 5
        assert f"Team {XSS}" in body
        assert page.evaluate("typeof window.alert") == "function"  # no script ran
        failed = page.locator("tr", has_text="broken")
        assert "failed" in failed.inner_text() and "ValueError" in failed.inner_text()
        page.screenshot(path=str(tmp_path / "index.png"), full_page=True)
        shutil.copy(tmp_path / "index.png", pack["root"] / "index.png")
        # following a link opens the published report
        page.locator("tr", has_text="North").get_by_role("link", name="HTML").click()
        page.wait_for_load_state()
        assert page.url.endswith("/2024-01/north/team-north-2024-01.html")
        assert "Team report" in page.inner_text("body")
        b.close()
    assert all(u.startswith("file://") for u in requests), requests


# ----------------------------------------------------------------- progress
def test_progress_is_plain_lines_off_a_terminal_and_a_bar_on_one(pack):
    seen = pack["seen"]
    assert [d for _, d, _ in seen] == [1, 2, 3, 4, 5] and {t for *_, t in seen} == {5}

    def res(status: str) -> ReportResult:
        return ReportResult(
            f"r-{status}", "run", "team", "T", "2024-01", status, timings={"execute": 1.0}
        )

    plain = io.StringIO()
    prog = Progress(plain)
    prog(res("success"), 1, 3)
    prog(res("failed"), 2, 3)
    prog.close()
    assert plain.getvalue().splitlines()[0] == "[1/3] success r-success (1.0 s)"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    prog = Progress(tty)
    prog(res("success"), 2, 4)  # one report was already up to date
    prog(res("failed"), 3, 4)
    prog.close()
    bar = tty.getvalue()
    assert "3/4" in bar and "done 2, failed 1, remaining 1" in bar
    assert "failed  r-failed" in bar and "[1/" not in bar


def test_a_run_narrowed_by_only_keeps_the_whole_plan(pack):
    res = run(pack["params"], source=pack["data"], out=pack["out"], only=["North"])
    assert [r.status for r in res.reports] == ["skipped"]  # current: no kernel started
    assert len(read_plans(pack["out"])["pack"]) == 5
    assert "5 reports: 4 published, 1 failed" in (pack["out"] / "index.html").read_text()


def test_a_kernel_that_does_not_start_is_started_once_more(tmp_path, monkeypatch):
    """The first kernel dies before it answers (as on a zmq port clash); the retry publishes."""
    fake = tmp_path / "fake"
    fake.mkdir()
    marker = tmp_path / "first-start-failed"
    (fake / "ipykernel_launcher.py").write_text(
        "import sys\n"
        "from pathlib import Path\n"
        f"marker = Path({str(marker)!r})\n"
        "if not marker.exists():\n"
        "    marker.write_text('x')\n"
        "    sys.exit(1)\n"
        "from ipykernel import kernelapp\n"
        "kernelapp.launch_new_instance()\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]))
    pack = tmp_path / "nostart.yaml"
    pack.write_text(
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-15\nformats: [html]\n"
        "start_timeout: 60.5\n",
        encoding="utf-8",
    )
    res = run(pack, source=tiny_data(), out=tmp_path / "out", jobs=1)
    (r,) = res.reports
    assert marker.exists()  # the first start did fail
    assert r.status == "success", r.error
    (table,) = kpis_of(tmp_path / "out").values()
    assert "value,team,North,2024-01,3002.0" in table.replace('"', "")


# ------------------------------------------------------- pre-warmed kernels
LEAK_CELLS = [
    'import os\nimport sys\nseen = sorted(k for k in globals() if k in ("leak", "pd", "pandas", "np")\n'
    '              or k.startswith("_kpireport"))',
    "assert seen == [], seen  # nothing from the warm-up or an earlier report",
    'assert "KPIREPORT_TEST_DB_PASSWORD" not in os.environ\n'
    'assert os.path.join(".work", "jobs") in os.getcwd()  # its own scratch folder\n'
    'warmed = "pandas" in sys.modules',
    "from kpireport.report.record import record_kpis\nimport pandas as pd\n"
    'record_kpis(pd.DataFrame({"kpi": ["warmed"], "scope": ["team"], "scope_id": [team],\n'
    '                          "period": [period], "value": [float(warmed)]}))',
    "leak = 1",
]


def team_notebook(path: Path, cells: list[str]) -> Path:
    """A python3 notebook with a ``team``/``period`` parameters cell, then ``cells``."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('team = "North"\nperiod = "2024-01"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


def test_warm_kernels_are_single_use_and_leave_nothing_behind(tmp_path, monkeypatch):
    import psutil

    team_notebook(tmp_path / "leak.ipynb", LEAK_CELLS)
    pack = tmp_path / "warm.yaml"
    pack.write_text(
        f"period: 2024-01\nas_of: 2024-02-15\nformats: [html]\nruns:\n"
        f"  - {{name: leak, notebook: {tmp_path / 'leak.ipynb'}, fanout: team,"
        f' output: "{{period}}/leak-{{team}}"}}\n'
        f"  - {{name: ok, notebook: {NB / 'ok.ipynb'}}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KPIREPORT_TEST_DB_PASSWORD", "warm-s3cr3t-value")
    out = tmp_path / "out"
    res = run(pack, source=tiny_data(), out=out, jobs=1, warm_kernels=2)
    assert [r.status for r in res.reports] == ["success"] * 5, res.summary()
    tables = {k: v.replace('"', "") for k, v in kpis_of(out).items()}
    for team in ("north", "south", "script-alert-1-script", "west"):
        assert "warmed,team," in tables[f"2024-01/leak-{team}.kpis.csv"]
        assert tables[f"2024-01/leak-{team}.kpis.csv"].rstrip().endswith(",1.0")  # imports done
    assert "value,team,North,2024-01,3002.0" in tables["2024-01/ok.kpis.csv"]
    leftovers = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "ipykernel" in " ".join(p.info["cmdline"] or []) and str(out) in p.cwd():
                leftovers.append(p.pid)
        except psutil.Error:
            continue
    assert leftovers == []


KILLER_CELLS = [
    "import os, time\nimport psutil\n"
    "jobs = os.path.dirname(os.getcwd())\n"
    "def others():\n"
    "    found = []\n"
    "    for p in psutil.process_iter(['cmdline']):\n"
    "        try:\n"
    "            cwd = p.cwd()\n"
    "        except psutil.Error:\n"
    "            continue\n"
    "        if 'ipykernel' in ' '.join(p.info['cmdline'] or []) and os.path.dirname(cwd) == jobs \\\n"
    "                and cwd != os.getcwd():\n"
    "            found.append(p)\n"
    "    return found\n"
    "deadline = time.monotonic() + 90\n"
    "while len(others()) < 2 and time.monotonic() < deadline:\n"
    "    time.sleep(0.5)\n"
    "victims = others()\n"
    "for p in victims:\n"
    "    p.kill()\n"
    "killed = len(victims)",
    "from kpireport.report.record import record_kpis\nimport pandas as pd\n"
    'record_kpis(pd.DataFrame({"kpi": ["killed"], "scope": ["team"], "scope_id": [team],\n'
    '                          "period": [period], "value": [float(killed)]}))',
]


def test_a_warm_kernel_that_dies_while_waiting_is_replaced(tmp_path):

    team_notebook(tmp_path / "killer.ipynb", KILLER_CELLS)
    pack = tmp_path / "warm.yaml"
    pack.write_text(
        f"period: 2024-01\nas_of: 2024-02-15\nformats: [html]\nruns:\n"
        f"  - {{name: killer, notebook: {tmp_path / 'killer.ipynb'}}}\n"
        f"  - {{name: ok, notebook: {NB / 'ok.ipynb'}, fanout: {{team: [North, South]}},"
        f' output: "{{period}}/ok-{{team}}"}}\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    res = run(pack, source=tiny_data(), out=out, jobs=1, warm_kernels=2)
    assert [r.status for r in res.reports] == ["success"] * 3, res.summary()
    tables = {k: v.replace('"', "") for k, v in kpis_of(out).items()}
    assert "killed,team,North,2024-01,2.0" in tables["2024-01/killer.kpis.csv"]
    assert "value,team,North,2024-01,3002.0" in tables["2024-01/ok-north.kpis.csv"]
    assert "value,team,South,2024-01,3001.0" in tables["2024-01/ok-south.kpis.csv"]


# ------------------------------------------------- snapshots at an fsspec URL
def test_snapshot_at_an_fsspec_url_is_uploaded_and_fetched_by_kernels(tmp_path, monkeypatch):
    """``--snapshots local:///…`` goes through fsspec like ``s3://`` would (docs/SCALING.md).

    The run uploads the snapshot to ``<url>/<fingerprint[:16]>/``, the kernel
    gets that URL as its ``source`` and reads the right numbers; on a machine
    with an empty cache, :func:`load_source` downloads it once and reads the
    same data; an unknown scheme is one clear sentence.
    """
    pytest.importorskip("fsspec")
    from kpireport.report.snapshot import load_source

    monkeypatch.setenv("KPIREPORT_CACHE", str(tmp_path / "cache"))
    bucket = tmp_path / "bucket"
    url = f"local://{bucket}/kpi"
    pack = tmp_path / "one.yaml"
    pack.write_text(
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\nas_of: 2024-02-15\nformats: [html]\n",
        encoding="utf-8",
    )
    data = tiny_data()
    res = run(pack, source=data, out=tmp_path / "out", jobs=1, snapshots=url)
    assert res.ok, res.summary()
    (table,) = kpis_of(tmp_path / "out").values()
    assert "value,team,North,2024-01,3002.0" in table.replace('"', "")  # 3 * 1000 + 2 sellers
    fp = data.fingerprint()[:16]
    (manifest,) = (tmp_path / "out").rglob("*.manifest.json")
    source = json.loads(manifest.read_text())["parameters"]["source"]
    assert source == f"{url}/{fp}/source.yaml"
    uploaded = sorted(p.name for p in (bucket / "kpi" / fp).iterdir())
    assert uploaded == ["SNAPSHOT.json", "sellers.parquet", "source.yaml"]
    # another machine: an empty cache, the snapshot comes from the URL
    monkeypatch.setenv("KPIREPORT_CACHE", str(tmp_path / "elsewhere"))
    fetched = load_source(source)
    pd.testing.assert_frame_equal(fetched.tables["sellers"], data.tables["sellers"])
    assert (tmp_path / "elsewhere" / "snapshots" / fp / "SNAPSHOT.json").is_file()
    with pytest.raises(ParamsError, match="not a URL fsspec can open"):
        run(pack, source=data, out=tmp_path / "out2", jobs=1, snapshots="nosuch://bucket/kpi")
    assert not (tmp_path / "out2").exists()
