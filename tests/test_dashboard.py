"""The live dashboard: a real ``kpireport serve`` process driven by a real headless Chromium.

The demo CRM is written once with one team renamed to an HTML/script payload.
Every browser test reads what a reader sees (text inside Panel's shadow DOM,
through Playwright locators) and compares numbers with
:func:`kpireport.compute_kpis`. Screenshots land in each test's ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("panel")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
AS_OF = "2026-11-20"
PAYLOAD = '<img src=x id=xss onerror="window.__xss=1">Partners'
KPIREPORT = [sys.executable, "-m", "kpireport.cli"]
WAIT = 90_000  # ms: a cold page on a loaded 2-core machine


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo CRM (Parquet) with team 'Partners Öst' renamed to an HTML payload."""
    from kpireport.demo import generate_demo, write_demo

    tables = generate_demo(as_of="2026-11-30")
    tables["sellers"]["team"] = tables["sellers"]["team"].replace("Partners Öst", PAYLOAD)
    g = tables["goals"]
    g.loc[(g["scope"] == "team") & (g["scope_id"] == "Partners Öst"), "scope_id"] = PAYLOAD
    if "team" in tables.get("costs", {}):
        tables["costs"]["team"] = tables["costs"]["team"].replace("Partners Öst", PAYLOAD)
    return write_demo(tmp_path_factory.mktemp("crm"), fmt="parquet", tables=tables)


@pytest.fixture(scope="module")
def data(demo: Path):
    import kpireport

    return kpireport.load(str(demo))


class Server:
    """A ``kpireport serve`` subprocess; ``url`` from its first line."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*KPIREPORT, "serve", "--port", "0", "--as-of", AS_OF, *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.wait_for(r"dashboard on (http://\S+)/ ").group(1)

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.log.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            m = re.search(pattern, line)
            if m:
                return m
        raise AssertionError(f"server never printed {pattern!r}; output:\n{''.join(self.log)}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def server(demo: Path, tmp_path_factory: pytest.TempPathFactory):
    # asks for every interface: without --auth the server must still bind 127.0.0.1 only
    s = Server(["--source", str(demo), "--address", "0.0.0.0"], tmp_path_factory.mktemp("run"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(WAIT)
    yield pg
    ctx.close()


def money(v: float) -> str:
    return f"€{round(v):,}"


def org_value(data, kpi: str, period: str, scope: str = "organisation", sid: str | None = None):
    import kpireport

    df = kpireport.compute_kpis(data, period, by=scope, kpis=[kpi], as_of=AS_OF)
    if sid is not None:
        df = df[df["scope_id"] == sid]
    return float(df["value"].iloc[0])


def heading(page) -> str:
    return page.locator("h1").first.inner_text()


def card_value(page, label: str) -> str:
    card = page.locator(".kpi-card", has=page.locator(".kpi-label", has_text=label)).first
    return card.locator(".kpi-value").inner_text()


def wait_heading(page, text: str) -> None:
    page.locator("h1", has_text=text).first.wait_for()


# ------------------------------------------------------------------ pages
def test_overview_shows_teams_cards_badges_and_curve(server, page, data, tmp_path):
    page.goto(server.url + "/")
    wait_heading(page, "Nordlys Systems Oy · November 2026")
    assert card_value(page, "Order intake") == money(org_value(data, "won_value", "2026-11"))
    teams = page.locator("table.dash-teams tbody tr td:first-child")
    names = [teams.nth(i).inner_text() for i in range(teams.count())]
    assert names == sorted(["Enterprise", "Mid-Market", "SMB", PAYLOAD])
    smb = page.locator('table.dash-teams tr[data-team="SMB"] td').nth(1).inner_text()
    assert smb == money(org_value(data, "won_value", "2026-11", "team", "SMB"))
    badges = page.locator(".goals-board .status")
    assert badges.count() >= 10
    shown = {badges.nth(i).inner_text() for i in range(badges.count())}
    assert shown <= {"On track", "At risk", "Off track", "Achieved", "Missed", "No data"}
    assert "Off track" in shown and "On track" in shown
    img = page.locator('figure.chart img[alt*="Order intake"]').first
    assert img.evaluate("i => i.naturalWidth") > 300
    assert "Data as of 2026-11-30" in page.locator(".dash-fresh").inner_text()
    assert "127.0.0.1 only" in page.locator(".dash-user").inner_text()
    assert "figures as of 2026-11-20" in page.locator(".dash-fresh").inner_text()
    # the report's colours (declared on :root) reach Panel's shadow DOM: red "Off track"
    off = page.locator(".goals-board .status-off_track").first
    assert off.evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"
    page.screenshot(path=tmp_path / "overview.png", full_page=True)


def test_without_auth_only_loopback_is_bound(server):
    import psutil

    assert server.url.startswith("http://127.0.0.1:")
    assert any("listening on 127.0.0.1 only" in line for line in server.log)
    port = int(server.url.rsplit(":", 1)[1])
    addrs = {
        c.laddr.ip
        for c in psutil.Process(server.proc.pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert addrs == {"127.0.0.1"}


def test_selection_changes_numbers_and_url(server, page, data, tmp_path):
    page.goto(server.url + "/")
    wait_heading(page, "Nordlys Systems Oy")
    page.locator("select").nth(0).select_option(label="Team · SMB")
    wait_heading(page, "Team SMB · November 2026")
    assert card_value(page, "Order intake") == money(
        org_value(data, "won_value", "2026-11", "team", "SMB")
    )
    page.wait_for_function("() => window.location.search.includes('team=SMB')")
    page.locator("select").nth(1).select_option(label="2026-10")
    wait_heading(page, "Team SMB · October 2026")
    october = money(org_value(data, "won_value", "2026-10", "team", "SMB"))
    assert card_value(page, "Order intake") == october
    assert october != money(org_value(data, "won_value", "2026-11", "team", "SMB"))
    page.wait_for_function("() => window.location.search.includes('period=2026-10')")
    curves = page.locator(".dash-curves figure.chart img")
    assert curves.count() == 3  # month, week and quarter
    alts = [curves.nth(i).get_attribute("alt") for i in range(3)]
    # week 44 (26 Oct - 1 Nov) has no order-intake goal: pace from both monthly goals
    assert (
        alts[1] == "Order intake · week 44, 2026 · pace: October 2026 + November 2026 goal pro rata"
    )
    page.screenshot(path=tmp_path / "team.png", full_page=True)


def test_url_opens_seller_and_goal_pages(server, page, data, tmp_path):
    sid = "S001"
    name = data.tables["sellers"].set_index("seller_id").loc[sid, "name"]
    page.goto(server.url + f"/?seller={sid}&period=2026-11")
    wait_heading(page, f"Seller {name} ({sid}) · November 2026")
    assert card_value(page, "Order intake") == money(
        org_value(data, "won_value", "2026-11", "seller", sid)
    )
    page.screenshot(path=tmp_path / "seller.png", full_page=True)
    page.goto(server.url + "/?view=goal&team=SMB&kpi=won_value&period=2026-11")
    wait_heading(page, "Goal · SMB · Order intake · November 2026")
    assert page.locator("img[alt='Attainment over time']").evaluate("i => i.naturalWidth") > 300
    assert "SMART check" in page.locator("[data-permitted]").first.inner_text()
    assert page.locator(".dash-facts .status").count() == 1
    page.screenshot(path=tmp_path / "goal.png", full_page=True)


def test_payload_team_name_is_text(server, page):
    page.goto(server.url + "/")
    wait_heading(page, "Nordlys Systems Oy")
    assert page.get_by_text(PAYLOAD, exact=True).count() >= 1
    assert page.locator("#xss").count() == 0
    assert page.evaluate("() => window.__xss") is None
    q = urllib.parse.urlencode({"team": PAYLOAD})
    page.goto(server.url + "/?" + q)
    wait_heading(page, "Team " + PAYLOAD)
    assert page.locator("#xss").count() == 0
    assert page.evaluate("() => window.__xss") is None


# ------------------------------------------------------------------ access
@pytest.fixture(scope="module")
def auth_server(demo: Path, data, tmp_path_factory: pytest.TempPathFactory):
    run = tmp_path_factory.mktemp("auth")
    users = run / "users.yaml"
    for name, pw, scope in (
        ("sam", "s3cret-sam", "seller:S001"),
        ("boss", "b0ss-pw", "organisation"),
    ):
        subprocess.run(
            [*KPIREPORT, "serve", "--auth", str(users), "--add-user", name, "--scope", scope,
             "--password-stdin"],
            input=pw + "\n", text=True, check=True, capture_output=True,
        )  # fmt: skip
    text = users.read_text()
    assert "s3cret-sam" not in text and "b0ss-pw" not in text and text.count("scrypt$") == 2
    # under a path prefix, as behind a reverse proxy: login, redirects and logout stay inside it
    s = Server(
        ["--source", str(demo), "--auth", str(users), "--address", "127.0.0.1", "--prefix", "/kpi"],
        run,
    )
    assert s.url.endswith("/kpi")
    yield s
    s.stop()


def login(page, url: str, user: str, password: str) -> None:
    page.goto(url + "/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("button[type=submit]")


def record_payload(page) -> list[str]:
    """Every HTML/JSON response body and websocket frame the page receives."""
    got: list[str] = []

    def on_ws(ws) -> None:
        ws.on(
            "framereceived", lambda f: got.append(f if isinstance(f, str) else f.decode("latin-1"))
        )

    def on_response(r) -> None:
        if "/static/" in r.url:
            return
        with contextlib.suppress(Exception):  # redirects have no body
            got.append(r.text())

    page.on("websocket", on_ws)
    page.on("response", on_response)
    return got


def test_wrong_password_is_refused(auth_server, page):
    body = urllib.parse.urlencode({"username": "sam", "password": "wrong"}).encode()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(auth_server.url + "/login", data=body, timeout=30)
    assert err.value.code == 401
    assert "Set-Cookie" not in err.value.headers
    # no login: the dashboard itself redirects to the login page
    req = urllib.request.Request(auth_server.url + "/")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert urllib.parse.urlparse(r.url).path == "/kpi/login"
    login(page, auth_server.url, "sam", "wrong")
    assert page.get_by_text("Wrong user name or password.").count() == 1
    assert "/login" in page.url


def test_seller_sees_own_page_only(auth_server, page, data, tmp_path):
    sellers = data.tables["sellers"].set_index("seller_id")
    own = sellers.loc["S001", "name"]
    # another seller with November order intake, and their number as shown on their page
    import kpireport

    k = kpireport.compute_kpis(data, "2026-11", by="seller", kpis=["won_value"], as_of=AS_OF)
    k = k[(k["scope_id"] != "S001") & (k["value"] > 0)].sort_values("value", ascending=False)
    other = str(k["scope_id"].iloc[0])
    other_name, other_value = sellers.loc[other, "name"], money(float(k["value"].iloc[0]))
    org_won = money(org_value(data, "won_value", "2026-11"))

    payload = record_payload(page)
    login(page, auth_server.url, "sam", "s3cret-sam")
    wait_heading(page, f"Seller {own} (S001)")
    assert "Signed in as sam" in page.locator(".dash-user").inner_text()
    page.screenshot(path=tmp_path / "seller-own.png", full_page=True)

    for url in (f"/?seller={other}&period=2026-11", "/?view=overview&period=2026-11"):
        payload.clear()
        page.goto(auth_server.url + url)
        wait_heading(page, "Not permitted")
        page.wait_for_timeout(500)
        everything = "\n".join(payload)
        assert "Not permitted" in everything
        # the id the visitor typed is echoed in the URL state; names and numbers never are
        for secret in (other_name, other_value, org_won, "Enterprise", "Mid-Market"):
            assert secret not in everything, f"{secret!r} leaked on {url}"
        denied = page.locator("[data-permitted]").first.inner_text()
    page.screenshot(path=tmp_path / "not-permitted.png", full_page=True)
    # an id that does not exist gets the very same page: existence is not revealed either
    page.goto(auth_server.url + "/?seller=S999&period=2026-11")
    wait_heading(page, "Not permitted")
    assert page.locator("[data-permitted]").first.inner_text() == denied


def test_organisation_user_sees_everything(auth_server, page, data):
    login(page, auth_server.url, "boss", "b0ss-pw")
    wait_heading(page, "Nordlys Systems Oy · November 2026")
    assert card_value(page, "Order intake") == money(org_value(data, "won_value", "2026-11"))
    assert urllib.parse.urlparse(page.url).path == "/kpi/"
    page.get_by_text("log out").click()
    page.locator("#username").wait_for()
    assert urllib.parse.urlparse(page.url).path == "/kpi/login"
    page.goto(auth_server.url + "/")  # logged out: back to the login form
    page.locator("#username").wait_for()


# ------------------------------------------------------------------ freshness
def test_broken_source_keeps_last_good_data(demo: Path, data, browser, tmp_path):
    src = tmp_path / "crm"
    shutil.copytree(demo.parent, src)
    s = Server(["--source", str(src / "source.yaml"), "--no-warm-up"], tmp_path)
    try:
        pg = browser.new_page(viewport={"width": 390, "height": 844})
        pg.set_default_timeout(WAIT)
        pg.goto(s.url + "/?team=SMB&period=2026-11")
        wait_heading(pg, "Team SMB · November 2026")
        before = card_value(pg, "Order intake")
        assert pg.locator(".dash-banner").count() == 0
        # phone width: the goals are tiles (status in view), the wide table is hidden
        assert pg.locator(".dash-goals-tiles").first.is_visible()
        assert not pg.locator(".dash-goals-table").first.is_visible()
        (src / "deals.parquet").write_bytes(b"this is not parquet")
        pg.reload()
        pg.locator(".dash-banner").wait_for()
        banner = pg.locator(".dash-banner").inner_text()
        assert "could not be re-read" in banner and "last good data" in banner
        assert "Traceback" not in banner
        assert (
            card_value(pg, "Order intake")
            == before
            == money(org_value(data, "won_value", "2026-11", "team", "SMB"))
        )
        pg.screenshot(path=tmp_path / "banner-phone.png", full_page=True)
        pg.close()
    finally:
        s.stop()


def test_download_pdf_is_the_matching_report(server, page, data, tmp_path):
    from pypdf import PdfReader

    page.goto(server.url + "/?team=SMB&period=2026-11")
    wait_heading(page, "Team SMB · November 2026")
    with page.expect_download(timeout=WAIT * 2) as dl:
        page.get_by_text("Download PDF").click()
    assert dl.value.suggested_filename == "team-report-smb-2026-11.pdf"
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert path.read_bytes()[:5] == b"%PDF-"
    text = " ".join(p.extract_text() for p in PdfReader(path).pages)
    assert "Team report" in text and "SMB" in text and "November 2026" in text
    assert money(org_value(data, "won_value", "2026-11", "team", "SMB")) in text


# ------------------------------------------------------------------ library parts (no browser)
def test_password_hashes_are_salted_and_checked(tmp_path):
    from kpireport.dashboard.access import (
        AccessError,
        add_user,
        authenticate,
        hash_password,
        load_users,
        verify_password,
    )

    a, b = hash_password("pw"), hash_password("pw")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert verify_password("pw", a) and not verify_password("pW", a)
    users_file = tmp_path / "users.yaml"
    add_user(users_file, "kim", "correct horse", ["team:SMB", "seller:S017"])
    assert oct(users_file.stat().st_mode & 0o777) == "0o600"
    assert "correct horse" not in users_file.read_text()
    users = load_users(users_file)
    assert authenticate(users, "kim", "correct horse").name == "kim"
    assert authenticate(users, "kim", "wrong") is None
    assert authenticate(users, "nobody", "correct horse") is None
    plain = tmp_path / "plain.yaml"
    plain.write_text("users:\n  eve: {password: hunter2, scopes: [organisation]}\n")
    with pytest.raises(AccessError, match="plain-text passwords are refused"):
        load_users(plain)
    with pytest.raises(AccessError, match="'region:North' is not a scope"):
        add_user(users_file, "x", "pw", ["region:North"])


def test_grants_follow_scopes():
    from kpireport.dashboard.access import Grants

    team_of = {"S1": "SMB", "S2": "Enterprise"}
    g = Grants.from_scopes(["team:SMB"])
    assert g.allows("team", "SMB", team_of) and g.allows("seller", "S1", team_of)
    assert not g.allows("seller", "S2", team_of) and not g.allows("team", "Enterprise", team_of)
    assert not g.allows("organisation", None, team_of)
    s = Grants.from_scopes(["seller:S2"])
    assert s.allows("seller", "S2", team_of) and not s.allows("team", "Enterprise", team_of)
    assert Grants.from_scopes(["organisation"]).allows("seller", "S2", team_of)


def test_store_rereads_on_change_and_keeps_last_good(demo: Path, tmp_path):
    from kpireport.dashboard.store import DataStore

    src = tmp_path / "crm"
    shutil.copytree(demo.parent, src)
    store = DataStore(str(src / "source.yaml"))
    first = store.current()
    assert first.version == 1 and store.current() is first  # unchanged: no re-read
    calls = []
    assert store.cached(first, ("k",), lambda: calls.append(1) or 42) == 42
    assert store.cached(first, ("k",), lambda: calls.append(1) or 43) == 42 and calls == [1]
    deals = src / "deals.parquet"
    st = deals.stat()
    os.utime(deals, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = store.current()
    assert second.version == 2 and second.error is None
    good = deals.read_bytes()
    deals.write_bytes(b"garbage")
    kept = store.current()
    assert kept is second and kept.error and store.error == kept.error
    assert "\n" not in kept.error and "Traceback" not in kept.error
    deals.write_bytes(good)
    assert store.current().version == 3 and store.error is None


def test_store_without_files_to_watch_uses_ttl(data):
    """A database URL or a callable source has no mtime: it is re-read after the TTL."""
    from kpireport.dashboard.store import DataStore

    calls = []
    store = DataStore(lambda: calls.append(1) or data, ttl=0.5)
    assert store.current().version == 1
    assert store.current().version == 1 and len(calls) == 1  # within the TTL
    time.sleep(0.6)
    assert store.current().version == 2 and len(calls) == 2


def test_pages_escape_names_and_deny_without_naming(demo: Path):
    import html as _html

    from kpireport.dashboard.access import Grants
    from kpireport.dashboard.pages import NOT_PERMITTED, Selection, build_page
    from kpireport.dashboard.store import DataStore

    store = DataStore(str(demo))
    snap = store.current()
    org = Grants.everything()
    page = build_page(store, snap, Selection("team", PAYLOAD, "2026-11"), org, AS_OF)
    assert page.permitted and PAYLOAD not in page.html() and _html.escape(PAYLOAD) in page.html()
    seller = Grants.from_scopes(["seller:S001"])
    for sel in (Selection("seller", "S003"), Selection(), Selection("team", "SMB")):
        denied = build_page(store, snap, sel, seller, AS_OF)
        assert not denied.permitted and denied.title == NOT_PERMITTED
        assert "S003" not in denied.html() and snap.sellers["S003"] not in denied.html()


def test_past_pipeline_says_stage_unknown_for_deals_closed_since(demo: Path):
    """September's page shows the pipeline of 30 Sep; deals closed since have no stage then."""
    from kpireport.dashboard.access import Grants
    from kpireport.dashboard.pages import Selection, build_page
    from kpireport.dashboard.store import DataStore

    store = DataStore(str(demo))
    snap = store.current()
    page = build_page(store, snap, Selection("team", "SMB", "2026-09"), Grants.everything(), AS_OF)
    html = page.html()
    assert "Open pipeline on 30 September 2026" in html
    assert "closed since are shown as “Stage unknown”" in html


# ------------------------------------------------------------------ notebook app
def test_dashboard_notebook_is_served_by_panel(demo: Path, data, browser, tmp_path):
    """``panel serve dashboard.ipynb`` shows the same overview as ``kpireport serve``."""
    import socket

    import papermill

    from kpireport.resources import resource_dir

    source_nb = resource_dir("notebooks") / "dashboard.ipynb"
    # the notebook declares its parameters like the report notebooks
    assert {"source", "as_of", "goals"} <= set(papermill.inspect_notebook(str(source_nb)))
    nb = tmp_path / "dashboard.ipynb"
    papermill.execute_notebook(
        str(source_nb), str(nb), parameters={"source": str(demo), "as_of": AS_OF},
        prepare_only=True, progress_bar=False,
    )  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(nb), "--port", str(port),
         "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/dashboard"
        end = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=60).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < end, proc.stdout.read()
                time.sleep(0.5)
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.set_default_timeout(WAIT)
        page.goto(url)
        wait_heading(page, "Nordlys Systems Oy · November 2026")
        assert card_value(page, "Order intake") == money(org_value(data, "won_value", "2026-11"))
        page.screenshot(path=tmp_path / "notebook.png", full_page=True)
        ctx.close()
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------ goal-less curves, history
def test_month_goal_pace_is_pro_rata_per_day(demo: Path):
    """Week 44 of 2026 (Mon 26 Oct - Sun 1 Nov) has no order-intake goal for SMB."""
    import kpireport
    from kpireport.dashboard.pages import month_goal_pace
    from kpireport.goals import load_goals
    from kpireport.periods import parse_period

    goals = load_goals(kpireport.load(str(demo)))
    g = goals[(goals["scope"] == "team") & (goals["scope_id"] == "SMB")]
    g = g[g["kpi"] == "won_value"].set_index("period")["target"]
    assert "2026-W44" not in g.index
    october, november = float(g["2026-10"]), float(g["2026-11"])
    pace, target, months = month_goal_pace(
        goals, "won_value", parse_period("2026-W44"), "team", "SMB"
    )
    assert months == ["2026-10", "2026-11"]
    assert target == pytest.approx(6 * october / 31 + november / 30)
    assert pace.iloc[0] == pytest.approx(october / 31)  # Monday 26 October
    assert len(pace) == 7
    # no goal for a month of the period: no pace at all (never a guess)
    assert month_goal_pace(goals, "won_value", parse_period("2026-W44"), "team", "nobody") is None


def test_attainment_history_matches_compute_kpis(demo: Path, data):
    import pandas as pd

    import kpireport
    from kpireport.dashboard.pages import attainment_history, evaluated_goals
    from kpireport.dashboard.store import DataStore
    from kpireport.goals import load_goals

    store = DataStore(str(demo))
    snap = store.current()
    row = evaluated_goals(store, snap, "team", ["SMB"], ["2026-11"], AS_OF)
    row = row[row["kpi"] == "won_value"].iloc[0]
    goals = load_goals(snap.data)
    h = attainment_history(snap.data, goals, row, "team", "SMB", pd.Timestamp(AS_OF))
    assert list(h["period"]) == ["2025-12", *(f"2026-{m:02d}" for m in range(1, 12))]
    assert list(h["running"]) == [False] * 11 + [True]
    k = kpireport.compute_kpis(data, list(h["period"]), by="team", kpis=["won_value"], as_of=AS_OF)
    k = k[k["scope_id"] == "SMB"].set_index("period")["value"]
    for r in h.itertuples():
        assert r.actual == pytest.approx(k[r.period])
        assert r.share == pytest.approx(k[r.period] / r.target)
        assert r.reached == (not r.running and k[r.period] >= r.target)
    assert h["share"].iloc[-1] == pytest.approx(row["actual"] / row["target"])


def test_rewarm_computes_the_new_data_version(demo: Path, tmp_path):
    """After a source change the overview is computed by the warm-up, not by the first visitor."""
    import datetime as dt

    from kpireport.dashboard.access import Grants
    from kpireport.dashboard.app import AppContext
    from kpireport.dashboard.pages import Selection, build_page
    from kpireport.dashboard.server import rewarm
    from kpireport.dashboard.store import DataStore

    src = tmp_path / "crm"
    shutil.copytree(demo.parent, src)
    ctx = AppContext(store=DataStore(str(src / "source.yaml")), as_of=dt.date(2026, 11, 20))
    assert rewarm(ctx, None, teams=False) == (1, 1)
    assert rewarm(ctx, 1, teams=False) == (1, 0)  # same data: nothing recomputed
    deals = src / "deals.parquet"
    st = deals.stat()
    os.utime(deals, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert rewarm(ctx, 1, teams=False) == (2, 1)
    snap = ctx.store.current()
    calls = []
    key = ("page", Selection(period="2026-11"), str(ctx.as_of))
    ctx.store.cached(snap, key, lambda: calls.append(1))
    assert calls == []  # the overview of version 2 was already in the cache
    assert build_page(ctx.store, snap, Selection(), Grants.everything(), ctx.as_of).permitted
