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
    from kpireport.data.demo import generate_demo, write_demo

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
    s = Server(["--source", str(demo)], tmp_path_factory.mktemp("run"))
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
    page.screenshot(path=tmp_path / "overview.png", full_page=True)


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
    s = Server(["--source", str(demo), "--auth", str(users), "--address", "127.0.0.1"], run)
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
        assert urllib.parse.urlparse(r.url).path == "/login"
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
