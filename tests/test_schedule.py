"""Tests of kpireport.schedule: schedules as code, SMTP delivery, idempotent runs, history.

Every e-mail goes to a REAL SMTP server (aiosmtpd) started by these tests on
127.0.0.1 — smtplib is never mocked. Notebook executions are few and shared:

* ``pack`` (module-scoped) builds a 4-report pack (organisation, two teams,
  one seller) once, with one team forced to fail, then re-runs it after the
  "data is fixed", then again (nothing to do), then concurrently, then with
  ``--force``: 5 kernels in all.
* ``org`` (module-scoped) runs a one-report job for November (SMTP refuses
  the first connection), for March via ``--now`` across the DST change, for
  December via a year-boundary logical date, then with an SMTP server that
  rejects the login, then with a tiny attachment limit (cached report): 3
  kernels. A kernel that dies once is rebuilt (2 kernels).

Everything else runs without a kernel.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import hashlib
import io
import logging
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
from dataclasses import replace
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kpireport.cli import main
from kpireport.errors import ScheduleError, ScheduleLockedError
from kpireport.history.snapshots import previous_forecast_vs_actual
from kpireport.history.store import History
from kpireport.schedule import mail
from kpireport.schedule.config import load_schedules
from kpireport.schedule.cron import (
    crontab_lines,
    last_fire_time,
    logical_date,
    next_fire_times,
)
from kpireport.schedule.runner import identity_lock, job_period, run_job

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "schedule"
NOTEBOOK = DATA / "report.ipynb"
CRM = DATA / "crm"
USER = "reports@example.com"
PASSWORD = "pw-Sup3r-s3cret-7781"
PW_ENV = "KPIREPORT_TEST_SMTP_PASSWORD"
UTC = dt.UTC


# ------------------------------------------------------------ SMTP server
class Inbox:
    """aiosmtpd handler: keeps every message; counts logins."""

    def __init__(self, accept_login: bool = True) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[tuple[bytes, bool]] = []
        self.accept_login = accept_login
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
            )
        )
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            self.accept_login
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == USER.encode()
            and auth_data.password == PASSWORD.encode()
        )
        self.logins.append((getattr(auth_data, "login", b""), ok))
        return AuthResult(success=ok, handled=False)

    def parsed(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=policy.default) for _, _, raw in self.messages]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp(inbox: Inbox, port: int) -> Controller:
    c = Controller(
        inbox, hostname="127.0.0.1", port=port, auth_require_tls=False,
        authenticator=inbox.authenticate, ready_timeout=10,
    )  # fmt: skip
    c.start()
    return c


# --------------------------------------------------------------- fixtures
def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


PACK = """
period: previous-month
formats: [pdf]
runs:
  - name: management
    title: Management pack
    notebook: {nb}
    fanout: none
    output: "{{period}}/management-pack-{{period}}"
    parameters: {{fail_flag: "{flag}"}}
  - name: team
    title: Team report
    notebook: {nb}
    fanout: team
    output: "{{period}}/teams/team-report-{{team}}-{{period}}"
    parameters: {{fail_flag: "{flag}"}}
  - name: seller
    title: Seller scorecard
    notebook: {nb}
    fanout: {{seller: [S1]}}
    output: "{{period}}/sellers/seller-{{seller}}-{{period}}"
    parameters: {{fail_flag: "{flag}"}}
"""


def schedules_yaml(port: int, jobs: str) -> str:
    return f"""
smtp:
  host: 127.0.0.1
  port: {port}
  security: none
  user: {USER}
  sender: "KPI reports <{USER}>"
  password_env: {PW_ENV}
  timeout: 5
defaults:
  retries: 2
  backoff_seconds: 0.25
  jobs: 2
jobs:
{jobs}"""


class Captured:
    """Log records of the 'kpireport' logger and CLI output, to search for the password."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.text.append(record.getMessage())  # type: ignore[method-assign]

    def cli(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        self.text += [out.getvalue(), err.getvalue()]
        return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pack")
    flag = root / "fail_flag.txt"
    write(root / "pack.yaml", PACK.format(nb=NOTEBOOK, flag=flag))
    inbox = Inbox()
    port = free_port()
    server = start_smtp(inbox, port)
    sched = write(
        root / "schedules.yaml",
        schedules_yaml(
            port,
            f"""  pack:
    description: Monthly pack
    params: pack.yaml
    source: {CRM}
    out: out
    cron: "0 6 1 * *"
    timezone: Europe/Amsterdam
    owners: [owner@example.com]
    recipients:
      - name: management
        to: [ceo@example.com, cfo@example.com]
        scopes: [organisation, team]
      - name: team-leads
        per_team:
          North: north.lead@example.com
          Södra: sodra.lead@example.com
""",
        ),
    )
    cap = Captured()
    logging.getLogger("kpireport").addHandler(cap.handler)
    steps: dict[str, object] = {}
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(PW_ENV, PASSWORD)
            run = ("schedule", "run", "pack", "--schedules", str(sched))
            # 1: Södra's data is "invalid": its team report fails, the rest is built
            flag.write_text("Södra", encoding="utf-8")
            steps["first"] = cap.cli(*run, "--logical-date", "2026-12-01")
            steps["n_after_first"] = len(inbox.messages)
            # 2: data fixed; two days later: same period, only Södra rebuilt and the rest sent
            flag.unlink()
            steps["second"] = cap.cli(*run, "--logical-date", "2026-12-03")
            steps["n_after_second"] = len(inbox.messages)
            # 3: once more: nothing to do
            steps["third"] = cap.cli(*run, "--logical-date", "2026-12-02")
            steps["n_after_third"] = len(inbox.messages)
            # 4: a concurrent invocation while another process holds the identity's lock
            holder = subprocess.Popen(
                [sys.executable, "-c",
                 "import sys; from kpireport.schedule.runner import identity_lock\n"
                 f"with identity_lock({str(root / 'out')!r}, 'pack', '2026-11', 'test'):\n"
                 "    print('locked', flush=True); sys.stdin.read()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
                steps["concurrent"] = cap.cli(*run, "--logical-date", "2026-12-01")
            finally:
                holder.communicate("", timeout=30)
            steps["n_after_concurrent"] = len(inbox.messages)
            # 5: --force sends every group again (reports are current: no kernel)
            steps["forced"] = cap.cli(*run, "--logical-date", "2026-12-01", "--force")
    finally:
        server.stop()
        logging.getLogger("kpireport").removeHandler(cap.handler)
    return {
        "root": root,
        "out": root / "out",
        "inbox": inbox,
        "steps": steps,
        "cap": cap,
        "sched": sched,
    }


def by_subject(inbox: Inbox, needle: str) -> list[email.message.EmailMessage]:
    return [m for m in inbox.parsed() if needle in str(m["Subject"])]


@pytest.mark.slow
def test_first_run_builds_all_but_the_failing_report_and_holds_incomplete_groups(pack):
    code, out, err = pack["steps"]["first"]
    assert code == 1
    assert "failed" in err and "invalid data for Södra" in err
    h = History(pack["out"])
    reports = h.table("reports", run_id=1).set_index("report_id")["status"].to_dict()
    assert reports == {
        "2026-11/management-pack-2026-11": "success",
        "2026-11/teams/team-report-north-2026-11": "success",
        "2026-11/teams/team-report-sodra-2026-11": "failed",
        "2026-11/sellers/seller-s1-2026-11": "success",
    }
    d = h.table("deliveries", run_id=1).set_index("group_key")["status"].to_dict()
    assert d == {
        "management": "held",
        "team-leads/North": "sent",
        "team-leads/Södra": "held",
        "alert": "sent",
    }
    # a deterministic failure (invalid data) is not retried
    assert h.table("runs").set_index("run_id").loc[1, "attempts"] == 1
    assert pack["steps"]["n_after_first"] == 2  # North's lead and the alert


@pytest.mark.slow
def test_failure_alert_names_the_error_and_the_failed_notebook(pack):
    alerts = by_subject(pack["inbox"], "FAILED")
    assert len(alerts) == 1  # one alert, for the one failed run
    a = alerts[0]
    assert a["To"] == "owner@example.com"
    assert str(a["Subject"]) == "[kpireport] FAILED: job pack for 2026-11"
    body = a.get_body().get_content()
    assert "invalid data for Södra" in body
    assert str(pack["out"] / "failed/2026-11/teams/team-report-sodra-2026-11.ipynb") in body
    assert (
        pack["out"] / "failed/2026-11/teams/team-report-sodra-2026-11.ipynb"
    ).is_file() is False  # rebuilt later
    assert "management -> ceo@example.com, cfo@example.com: held" in body
    assert "kpireport schedule run pack --logical-date 2026-12-01" in body


@pytest.mark.slow
def test_rerun_two_days_later_redoes_only_the_failed_report_and_sends_the_rest(pack):
    code, out, err = pack["steps"]["second"]
    assert code == 0, err
    h = History(pack["out"])
    runs = h.table("runs").set_index("run_id")
    assert runs.loc[2, "period"] == "2026-11" and runs.loc[2, "logical_date"] == "2026-12-03"
    reports = h.table("reports", run_id=2).set_index("report_id")["status"].to_dict()
    assert reports["2026-11/teams/team-report-sodra-2026-11"] == "success"
    assert sorted(reports.values()).count("skipped") == 3
    d = h.table("deliveries", run_id=2).set_index("group_key")["status"].to_dict()
    assert d == {"management": "sent", "team-leads/Södra": "sent"}  # North was sent by run 1
    assert pack["steps"]["n_after_second"] == 4
    assert "already-sent team-leads/North" in out


@pytest.mark.slow
def test_exactly_once_a_third_run_sends_nothing(pack):
    code, out, _ = pack["steps"]["third"]
    assert code == 0
    assert "Already delivered by run 2" in out
    assert pack["steps"]["n_after_third"] == 4
    runs = History(pack["out"]).runs("pack")
    assert list(runs["status"][:3]) == ["failed", "success", "skipped"]
    # every group went out exactly once before --force
    sent = History(pack["out"]).table("deliveries")
    sent = sent[(sent["status"] == "sent") & (sent["kind"] == "report") & (sent["run_id"] <= 3)]
    assert sorted(sent["group_key"]) == ["management", "team-leads/North", "team-leads/Södra"]


@pytest.mark.slow
def test_concurrent_invocation_exits_with_a_clear_message(pack):
    code, _, err = pack["steps"]["concurrent"]
    assert code == 75
    assert "Job 'pack' for 2026-11 is already running (pid" in err
    assert pack["steps"]["n_after_concurrent"] == 4


@pytest.mark.slow
def test_force_sends_every_group_again(pack):
    code, out, err = pack["steps"]["forced"]
    assert code == 0, err
    assert len(pack["inbox"].messages) == 7
    runs = History(pack["out"]).table("runs")
    assert list(runs["forced"]) == [0, 0, 0, 1]  # the locked attempt never started a run


@pytest.mark.slow
def test_management_message_has_the_pack_and_every_team_pdf_intact(pack):
    msgs = by_subject(pack["inbox"], "management")
    first = msgs[0]
    assert str(first["Subject"]) == "Monthly pack: 2026-11 – management"
    assert first["To"] == "ceo@example.com, cfo@example.com"
    assert first["From"] == f"KPI reports <{USER}>"
    envelopes = [rcpt for _, rcpt, _ in pack["inbox"].messages if "ceo@example.com" in rcpt]
    assert envelopes == [["ceo@example.com", "cfo@example.com"]] * 2  # once, and again with --force
    atts = {p.get_filename(): p for p in first.iter_attachments()}
    assert set(atts) == {
        "Management pack – 2026-11.pdf",
        "Team report – North – 2026-11.pdf",
        "Team report – Södra – 2026-11.pdf",
    }
    files = {
        "Management pack – 2026-11.pdf": "2026-11/management-pack-2026-11.pdf",
        "Team report – North – 2026-11.pdf": "2026-11/teams/team-report-north-2026-11.pdf",
        "Team report – Södra – 2026-11.pdf": "2026-11/teams/team-report-sodra-2026-11.pdf",
    }
    for name, rel in files.items():
        part = atts[name]
        assert part.get_content_type() == "application/pdf"
        data = part.get_content()
        assert data[:5] == b"%PDF-"
        assert (
            hashlib.sha256(data).hexdigest()
            == hashlib.sha256((pack["out"] / rel).read_bytes()).hexdigest()
        )
    raw = next(raw for _, _, raw in pack["inbox"].messages if b"S%C3%B6dra" in raw)
    # RFC 2231: percent-encoded UTF-8, split into numbered continuations when long
    assert b"filename*0*=utf-8''Team%20report%20%E2%80%93%20S%C3%B6dra" in raw


@pytest.mark.slow
def test_message_body_summarises_goals_at_risk_and_headline_kpis(pack):
    body = (
        by_subject(pack["inbox"], "management")[0]
        .get_body(("plain",))
        .get_content()
        .replace("\r\n", "\n")
    )
    assert "KPI reports for 2026-11 (job pack, data as of 2026-12-01)." in body
    # the pack's index (written by the run) is the first link of the message
    index = pack["out"] / "index.html"
    assert index.is_file()
    assert body.splitlines()[1] == f"Pack index (every report, its status and links): {index}"
    assert "Attached (3):" in body
    assert "Goals at risk:\n  - hit_rate (organisation): at risk" in body
    # the notebook records hit rate 0.70 + 11/100 and 2 sellers for the organisation
    assert "Headline KPIs (organisation):\n  - Hit rate: 81.0%\n  - Deals: 2" in body


@pytest.mark.slow
def test_team_lead_gets_their_team_and_its_sellers_reports(pack):
    north = [m for m in pack["inbox"].parsed() if m["To"] == "north.lead@example.com"]
    sodra = [m for m in pack["inbox"].parsed() if m["To"] == "sodra.lead@example.com"]
    assert len(north) == 2 and len(sodra) == 2  # once, plus once with --force
    assert {p.get_filename() for p in north[0].iter_attachments()} == {
        "Team report – North – 2026-11.pdf",
        "Seller scorecard – Anna Berg – 2026-11.pdf",
    }
    assert {p.get_filename() for p in sodra[0].iter_attachments()} == {
        "Team report – Södra – 2026-11.pdf"
    }
    assert str(north[0]["Subject"]) == "Monthly pack: 2026-11 – team-leads – North"


@pytest.mark.slow
def test_history_command_lists_the_runs(pack):
    code, out, _ = Captured().cli("history", "--schedules", str(pack["sched"]), "--job", "pack")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:7] == [
        "run_id",
        "job",
        "period",
        "logical_date",
        "started_at",
        "ended_at",
        "status",
    ]
    statuses = [line.split()[6] for line in lines[1:]]
    assert statuses == ["failed", "success", "skipped", "success"]
    runs = History(pack["out"]).table("runs")
    assert set(runs["version"]) == {__import__("kpireport").__version__}
    assert runs["fingerprint"].iloc[0] and len(runs["fingerprint"].iloc[0]) >= 16


@pytest.mark.slow
def test_no_password_in_any_output_log_message_or_history(pack):
    secret = PASSWORD.encode()
    assert not any(PASSWORD in t for t in pack["cap"].text)
    assert pack["cap"].text  # something was captured
    assert not any(secret in raw for _, _, raw in pack["inbox"].messages)
    for f in pack["out"].glob("history.sqlite*"):
        assert secret not in f.read_bytes()
    for f in pack["out"].rglob("*"):
        if f.is_file() and f.suffix in (".ipynb", ".json", ".csv", ".pdf", ".lock"):
            assert secret not in f.read_bytes(), f


# ------------------------------------------------------------ one-report job
ORG = """
title: Management pack
notebook: {nb}
fanout: none
period: previous-month
formats: [pdf]
output: "{{period}}/management-pack-{{period}}"
"""

FLAKY = """
title: Flaky pack
notebook: {nb}
fanout: none
period: previous-month
formats: [html]
output: "{{period}}/flaky-{{period}}"
parameters: {{die_marker: "{marker}"}}
"""


def org_job(name: str, extra: str = "") -> str:
    return f"""  {name}:
    description: Org pack
    params: org.yaml
    source: {CRM}
    out: out
    cron: "0 0 1 * *"
    timezone: Europe/Amsterdam
    owners: [owner@example.com]
    recipients:
      - name: management
        to: [ceo@example.com]
{extra}"""


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("org")
    write(root / "org.yaml", ORG.format(nb=NOTEBOOK))
    write(root / "flaky.yaml", FLAKY.format(nb=NOTEBOOK, marker=root / "died-once"))
    cap = Captured()
    logging.getLogger("kpireport").addHandler(cap.handler)
    res: dict[str, object] = {"root": root, "out": root / "out", "cap": cap}
    servers: list[Controller] = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(PW_ENV, PASSWORD)
            # A: the SMTP server is down at the first attempt and up at the retry
            inbox = Inbox()
            port = free_port()
            sched = write(
                root / "schedules.yaml",
                schedules_yaml(port, org_job("org") + org_job("org-links", "    max_attachment_mb: 0.0001\n")
                               + org_job("flaky").replace("org.yaml", "flaky.yaml")),
            )  # fmt: skip
            config = load_schedules(sched)
            sleeps: list[float] = []

            def sleep(seconds: float) -> None:
                sleeps.append(seconds)
                if not servers:
                    servers.append(start_smtp(inbox, port))

            res["refused"] = run_job(config, "org", logical_date="2026-12-01", sleep=sleep)
            res["refused_sleeps"] = list(sleeps)
            # B: across the spring DST change: 22:30 UTC on 31 March is 00:30 on 1 April in Amsterdam
            res["dst"] = cap.cli(
                "schedule", "run", "org", "--schedules", str(sched), "--now", "2026-03-31T22:30:00Z"
            )
            # C: across the year boundary
            res["year"] = cap.cli(
                "schedule", "run", "org", "--schedules", str(sched), "--logical-date", "2027-01-01"
            )
            # D: over the size limit: links instead of attachments (report is current)
            res["links"] = run_job(config, "org-links", logical_date="2026-12-01")
            # E: a kernel that dies once is rebuilt
            sleeps.clear()
            res["flaky"] = run_job(config, "flaky", logical_date="2026-12-01", sleep=sleep)
            res["flaky_sleeps"] = list(sleeps)
            res["inbox"] = inbox
            # F: a server that rejects the login
            bad = Inbox(accept_login=False)
            bad_port = free_port()
            servers.append(start_smtp(bad, bad_port))
            bad_sched = write(root / "bad.yaml", schedules_yaml(bad_port, org_job("org-auth")))
            res["auth"] = cap.cli(
                "schedule",
                "run",
                "org-auth",
                "--schedules",
                str(bad_sched),
                "--logical-date",
                "2026-12-01",
            )
            res["bad"] = bad
    finally:
        for s in servers:
            s.stop()
        logging.getLogger("kpireport").removeHandler(cap.handler)
    return res


@pytest.mark.slow
def test_refused_first_connection_is_retried_with_backoff(org):
    r = org["refused"]
    assert r.status == "success", r.summary()
    assert r.period == "2026-11"
    assert org["refused_sleeps"] == [0.25]  # one backoff, then the server answered
    (d,) = r.deliveries
    assert (d.status, d.attempts, d.mode) == ("sent", 2, "attached")
    first = org["inbox"].parsed()[0]
    assert str(first["Subject"]) == "Org pack: 2026-11 – management"
    (att,) = list(first.iter_attachments())
    assert (
        hashlib.sha256(att.get_content()).hexdigest()
        == hashlib.sha256(
            (org["out"] / "2026-11/management-pack-2026-11.pdf").read_bytes()
        ).hexdigest()
    )


@pytest.mark.slow
def test_schedule_run_across_dst_uses_the_local_date_of_the_fire_time(org):
    code, out, err = org["dst"]
    assert code == 0, err
    assert "job org, period 2026-03 (logical date 2026-04-01): success" in out
    assert (org["out"] / "2026-03/management-pack-2026-03.pdf").is_file()


@pytest.mark.slow
def test_schedule_run_across_the_year_boundary(org):
    code, out, err = org["year"]
    assert code == 0, err
    assert "period 2026-12 (logical date 2027-01-01): success" in out
    subjects = [str(m["Subject"]) for m in org["inbox"].parsed()]
    assert subjects == [
        "Org pack: 2026-11 – management",
        "Org pack: 2026-03 – management",
        "Org pack: 2026-12 – management",
        "Org pack: 2026-11 – management",  # org-links
        "Org pack: 2026-11 – management",  # flaky
    ]


@pytest.mark.slow
def test_over_the_size_limit_the_message_links_to_the_archive(org):
    r = org["links"]
    (d,) = r.deliveries
    assert (d.status, d.mode) == ("sent", "links")
    msg = org["inbox"].parsed()[3]
    assert list(msg.iter_attachments()) == []
    body = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Too large to attach; in the archive (1):" in body
    assert str(org["out"] / "2026-11/management-pack-2026-11.pdf") in body


@pytest.mark.slow
def test_a_kernel_that_dies_is_rebuilt(org):
    r = org["flaky"]
    assert r.status == "success", r.summary()
    assert [x.status for x in r.reports] == ["success"]
    assert org["flaky_sleeps"] == [0.25]
    runs = History(org["out"]).table("runs")
    assert runs[runs["job"] == "flaky"]["attempts"].tolist() == [2]


@pytest.mark.slow
def test_rejected_login_fails_clearly_and_alerts(org):
    code, out, err = org["auth"]
    assert code == 1
    assert "SMTP authentication failed at 127.0.0.1" in err and f"user '{USER}'" in err
    assert f"${PW_ENV}" in err
    # not retried: one session for the delivery, one for the alert (smtplib tries
    # each mechanism the server offers once per session: PLAIN and LOGIN)
    assert org["bad"].sessions == 2
    assert org["bad"].logins and not any(ok for _, ok in org["bad"].logins)
    d = History(org["out"]).table("deliveries")
    d = d[d["job"] == "org-auth"].set_index("kind")
    assert d.loc["report", "status"] == "failed" and d.loc["report", "attempts"] == 1
    assert d.loc["alert", "status"] == "failed"
    assert "alert  failed" in out


@pytest.mark.slow
def test_forecast_vs_actual_from_previous_runs(org):
    fva = previous_forecast_vs_actual(org["out"], "2026-12", job="org")
    assert len(fva) == 1
    row = fva.iloc[0]
    # November's run forecast December's hit rate at 0.80 (0.71..0.89); December reached 0.82
    assert (row["kpi"], row["scope"], row["forecast_run_period"]) == (
        "hit_rate",
        "organisation",
        "2026-11",
    )
    assert row["forecast"] == pytest.approx(0.80) and row["lo_80"] == pytest.approx(0.71)
    assert row["actual"] == pytest.approx(0.82) and row["error"] == pytest.approx(0.02)
    assert bool(row["in_80"]) is True
    # from a notebook: any path inside the output folder finds the history (the report
    # notebooks receive the folder as `output_root`; the data snapshot lives in the cache)
    inside = next(org["out"].glob("2026-*/*.manifest.json"))
    assert not list(org["out"].rglob("*.parquet"))
    assert previous_forecast_vs_actual(inside, "2026-12", job="org")[
        "actual"
    ].tolist() == pytest.approx([0.82])
    # actuals passed in take precedence (the notebook's own numbers)
    import pandas as pd

    mine = pd.DataFrame(
        {
            "kpi": ["hit_rate"],
            "scope": ["organisation"],
            "scope_id": [None],
            "period": ["2026-12"],
            "value": [0.95],
        }
    )
    out = previous_forecast_vs_actual(org["out"], "2026-12", job="org", actuals=mine)
    assert out["actual"].tolist() == [0.95] and out["in_80"].tolist() == [False]
    # nothing was forecast for March from an earlier run
    assert previous_forecast_vs_actual(org["out"], "2026-03", job="org").empty


@pytest.mark.slow
def test_org_runs_leak_no_password(org):
    assert not any(PASSWORD in t for t in org["cap"].text)
    for f in org["out"].glob("history.sqlite*"):
        assert PASSWORD.encode() not in f.read_bytes()


# ------------------------------------------------------------ no kernels
AMS = "Europe/Amsterdam"


def test_previous_month_identity_on_different_days(tmp_path):
    write(tmp_path / "org.yaml", ORG.format(nb=NOTEBOOK))
    config = load_schedules(write(tmp_path / "s.yaml", schedules_yaml(25, org_job("org"))))
    job = config.job("org")
    assert job_period(job, dt.date(2026, 12, 1)) == "2026-11"
    assert job_period(job, dt.date(2026, 12, 3)) == "2026-11"
    assert job_period(job, dt.date(2026, 11, 30)) == "2026-10"
    assert job_period(job, dt.date(2027, 1, 1)) == "2026-12"


def test_logical_dates_across_month_year_and_dst():
    # monthly at 00:00 Amsterdam: fires at 23:00 UTC (winter) / 22:00 UTC (summer) the day before
    assert logical_date("0 0 1 * *", AMS, dt.datetime(2026, 10, 31, 23, 0, tzinfo=UTC)) == dt.date(
        2026, 11, 1
    )
    assert logical_date("0 0 1 * *", AMS, dt.datetime(2026, 10, 31, 22, 59, tzinfo=UTC)) == dt.date(
        2026, 10, 1
    )
    assert logical_date("0 0 1 * *", AMS, dt.datetime(2026, 3, 31, 22, 30, tzinfo=UTC)) == dt.date(
        2026, 4, 1
    )
    assert logical_date("0 0 1 * *", AMS, dt.datetime(2026, 3, 31, 21, 59, tzinfo=UTC)) == dt.date(
        2026, 3, 1
    )
    assert logical_date("0 6 1 * *", AMS, dt.datetime(2027, 1, 1, 5, 0, tzinfo=UTC)) == dt.date(
        2027, 1, 1
    )
    assert logical_date("0 6 1 * *", AMS, dt.datetime(2027, 1, 1, 4, 59, tzinfo=UTC)) == dt.date(
        2026, 12, 1
    )
    assert logical_date("0 6 1 * *", AMS, dt.datetime(2026, 12, 3, 9, 0, tzinfo=UTC)) == dt.date(
        2026, 12, 1
    )


def test_next_fire_times_in_local_time_and_through_dst():
    t = next_fire_times("0 6 1 * *", AMS, dt.datetime(2026, 11, 30, 12, tzinfo=UTC), 3)
    assert [x.isoformat() for x in t] == [
        "2026-12-01T06:00:00+01:00", "2027-01-01T06:00:00+01:00", "2027-02-01T06:00:00+01:00",
    ]  # fmt: skip
    spring = next_fire_times("0 6 1 * *", AMS, dt.datetime(2026, 3, 15, tzinfo=UTC), 2)
    assert [x.astimezone(UTC).strftime("%m-%d %H:%M") for x in spring] == [
        "04-01 04:00",
        "05-01 04:00",
    ]
    # 02:30 does not exist on 29 March: fires at 03:00 CEST
    gap = next_fire_times("30 2 * * *", AMS, dt.datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert [x.isoformat() for x in gap] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    # 02:30 happens twice on 25 October: fires once, at the first
    fold = next_fire_times("30 2 * * *", AMS, dt.datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    assert [x.astimezone(UTC).isoformat() for x in fold] == [
        "2026-10-25T00:30:00+00:00",
        "2026-10-26T01:30:00+00:00",
    ]
    assert last_fire_time(
        "30 2 * * *", AMS, dt.datetime(2026, 10, 25, 1, 45, tzinfo=UTC)
    ).astimezone(UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    with pytest.raises(ScheduleError, match="time-zone aware"):
        next_fire_times("0 6 1 * *", AMS, dt.datetime(2026, 1, 1))


def test_schedule_list_and_crontab(tmp_path):
    write(tmp_path / "org.yaml", ORG.format(nb=NOTEBOOK))
    sched = write(tmp_path / "s.yaml", schedules_yaml(25, org_job("org")))
    code, out, _ = Captured().cli(
        "schedule", "list", "--schedules", str(sched), "--now", "2026-12-31T23:30:00Z", "-n", "2"
    )
    assert code == 0
    assert "2027-02-01T00:00:00+01:00  (2027-01-31 23:00 UTC)" in out
    assert "2027-01-01T00:00:00+01:00" not in out  # 23:30 UTC is already 00:30 on 1 January
    code, out, _ = Captured().cli(
        "schedule", "crontab", "--schedules", str(sched), "--command", "/opt/kpi/bin/kpireport"
    )
    lines = out.splitlines()
    assert "CRON_TZ=Europe/Amsterdam" in lines
    assert (
        f"0 0 1 * * cd {Path.cwd()} && /opt/kpi/bin/kpireport schedule run org --schedules {sched}"
        in lines
    )
    assert (
        crontab_lines([("a b", "0 6 1 * *", "UTC")], schedules=Path("/s.yaml"))[-1]
        == "0 6 1 * * kpireport schedule run 'a b' --schedules /s.yaml"
    )


def test_schedule_file_problems_are_reported_at_once(tmp_path):
    bad = write(tmp_path / "s.yaml", """
smtp: {host: smtp.example.com, security: tls, sender: reports@example.com, user: u, password: hunter2}
jobs:
  monthly:
    params: missing.yaml
    cron: "0 6 1 *"
    owners: [not-an-address]
    recipients:
      - name: management
        to: [ceo@example.com]
        scopes: [teams]
    retires: 3
""")  # fmt: skip
    with pytest.raises(ScheduleError) as e:
        load_schedules(bad)
    msg = str(e.value)
    for part in (
        "security 'tls' is not one of starttls, ssl, none",
        "'password' looks like a credential",
        "params file 'missing.yaml' does not exist",
        "cron '0 6 1 *' must have 5 fields",
        "'timezone' is required",
        "'not-an-address' is not an e-mail address",
        "scope 'teams' is not one of",
        "unknown key 'retires' (did you mean 'retries'?)",
        "'user' is set but 'password_env' is not",
    ):
        assert part in msg
    assert "hunter2" not in msg


def test_unknown_job_and_unknown_time_zone(tmp_path):
    write(tmp_path / "org.yaml", ORG.format(nb=NOTEBOOK))
    config = load_schedules(write(tmp_path / "s.yaml", schedules_yaml(25, org_job("org"))))
    with pytest.raises(ScheduleError, match="no job 'orgg' \\(did you mean 'org'\\?\\)"):
        config.job("orgg")
    with pytest.raises(ScheduleError, match="unknown time zone 'Europe/Amsterdm'"):
        load_schedules(
            write(
                tmp_path / "t.yaml",
                schedules_yaml(25, org_job("org")).replace(AMS, "Europe/Amsterdm"),
            )
        )


def test_lock_is_exclusive_per_identity(tmp_path):
    with identity_lock(tmp_path, "pack", "2026-11", "t"):
        with (
            pytest.raises(ScheduleLockedError, match=r"already running \(pid"),
            identity_lock(tmp_path, "pack", "2026-11", "t"),
        ):
            pass
        with identity_lock(tmp_path, "pack", "2026-12", "t"):  # another identity runs freely
            pass
    with identity_lock(tmp_path, "pack", "2026-11", "t"):  # released
        pass


def test_message_mime_and_transient_classification(tmp_path):
    import smtplib

    pdf = write(tmp_path / "r.pdf", "x")
    pdf.write_bytes(b"%PDF-1.7 \x00\xff binary")
    msg = mail.build_message(
        sender="a@example.com", to=["b@example.com"], subject="Rapport – Zürich",
        body="Hallå", attachments=[mail.Attachment(pdf, "Team – Zürich.pdf", str(pdf))],
    )  # fmt: skip
    parsed = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    (att,) = list(parsed.iter_attachments())
    assert att.get_content_type() == "application/pdf"
    assert att.get_filename() == "Team – Zürich.pdf"
    assert att.get_content() == b"%PDF-1.7 \x00\xff binary"
    assert str(parsed["Subject"]) == "Rapport – Zürich"
    assert mail.safe_filename('a/b:c\n"d".pdf') == "a b c d .pdf"
    assert mail.is_transient(ConnectionRefusedError())
    assert mail.is_transient(smtplib.SMTPResponseException(421, b"busy"))
    assert not mail.is_transient(smtplib.SMTPAuthenticationError(535, b"bad"))
    assert not mail.is_transient(smtplib.SMTPResponseException(554, b"rejected"))


def test_missing_password_variable_and_plaintext_login_refused(tmp_path, monkeypatch):
    from kpireport.schedule.config import SmtpConfig

    cfg = SmtpConfig(
        host="smtp.example.com",
        port=25,
        security="none",
        user="u",
        sender="a@example.com",
        password_env="NOPE_PW",
    )
    msg = mail.build_message(sender="a@example.com", to=["b@example.com"], subject="s", body="b")
    out = mail.send(cfg, msg, env={})
    assert (
        not out.ok and out.attempts == 0 and "export the environment variable NOPE_PW" in out.error
    )
    out = mail.send(cfg, msg, env={"NOPE_PW": "x"}, retries=0)
    assert (
        not out.ok
        and "Refusing to send the SMTP password unencrypted to smtp.example.com" in out.error
    )


@pytest.mark.slow
def test_history_db_is_plain_sqlite(pack):
    con = sqlite3.connect(pack["out"] / "history.sqlite")
    try:
        n = con.execute(
            "SELECT COUNT(*) FROM kpi_snapshots WHERE job = 'pack' AND kpi = 'hit_rate' AND period = '2026-11' AND scope = 'organisation'"
        ).fetchone()[0]
    finally:
        con.close()
    assert n >= 1


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a throw-away certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "key.pem"),
         "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_delivery_over_starttls_and_implicit_tls(tls_cert, security):
    from kpireport.schedule.config import SmtpConfig

    cert, key = tls_cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    tls = (
        {"tls_context": server_ctx, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": server_ctx}
    )
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
        auth_require_tls=security == "starttls", ready_timeout=10, **tls,
    )  # fmt: skip
    controller.start()
    try:
        cfg = SmtpConfig(host="127.0.0.1", port=port, security=security, user=USER,
                         sender=USER, password_env=PW_ENV, timeout=5, ca_file=cert)  # fmt: skip
        msg = mail.build_message(sender=USER, to=["ceo@example.com"], subject="TLS", body="b")
        out = mail.send(cfg, msg, env={PW_ENV: PASSWORD}, retries=0)
        assert out.ok and out.attempts == 1, out.error
        assert inbox.logins == [(USER.encode(), True)]
        # an untrusted certificate is a deterministic failure: not retried
        untrusted = mail.send(
            replace(cfg, ca_file=None), msg, env={PW_ENV: PASSWORD}, retries=2, sleep=lambda s: None
        )
        assert not untrusted.ok and untrusted.attempts == 1
        assert "TLS with the SMTP server 127.0.0.1" in untrusted.error
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_job_without_a_source_is_refused(tmp_path):
    """Issue 9 item 7: a scheduled job never e-mails the demo company by default."""
    write(tmp_path / "org.yaml", ORG.format(nb=NOTEBOOK))
    job = org_job("org").replace(f"    source: {CRM}\n", "")
    with pytest.raises(ScheduleError) as exc:
        load_schedules(write(tmp_path / "s.yaml", schedules_yaml(25, job)))
    assert str(exc.value) == (
        "s.yaml job 'org': no 'source' (the CRM export to report on) and the run(s) 'org' of "
        "org.yaml set none; a scheduled job never falls back to the demo company "
        "(write 'source: demo' to schedule the demo)."
    )
    demo = org_job("org").replace(f"    source: {CRM}\n", "    source: demo\n")
    assert (
        load_schedules(write(tmp_path / "d.yaml", schedules_yaml(25, demo))).job("org").source
        == "demo"
    )


def test_body_links_the_pack_index_under_the_archive_url(tmp_path):
    """With ``archive_url`` the index is named by its URL; without an index, no line."""
    import datetime as dt

    from kpireport.schedule.config import Job
    from kpireport.schedule.runner import body_text

    job = Job(
        name="pack", params=tmp_path / "p.yaml", cron="0 6 1 * *", timezone="UTC",
        out=tmp_path / "reports", owners=("ops@example.com",), groups=(),
        archive_url="https://reports.example.com/kpi/",
    )  # fmt: skip
    job.out.mkdir()
    assert "Pack index" not in body_text(job, "2026-11", dt.date(2026, 12, 1), [], True)
    (job.out / "index.html").write_text("<html></html>", encoding="utf-8")
    lines = body_text(job, "2026-11", dt.date(2026, 12, 1), [], True).splitlines()
    assert lines[:2] == [
        "KPI reports for 2026-11 (job pack, data as of 2026-12-01).",
        "Pack index (every report, its status and links): https://reports.example.com/kpi/index.html",
    ]
