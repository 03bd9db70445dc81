"""``run_job()``: one scheduled run, step by step.

    resolve the identity (job, logical period) → take the identity's lock →
    stop if already delivered → build the reports (retrying transient faults)
    → record them and snapshot their KPIs → deliver each recipient group that
    is complete and not yet sent → alert the owners if anything failed →
    close the history record

Design decisions
----------------
* **Identity = (job, period implied by the logical date).** ``previous-month``
  on 2026-12-01 and on 2026-12-03 are both November: the same identity. A
  second run of a delivered identity does nothing (it appends a ``skipped``
  record) unless ``force``; with ``force`` every group is sent again (reports
  are rebuilt only if stale, or with ``rebuild``).
* **One process per identity.** An exclusive, non-blocking ``fcntl.flock`` on
  ``<out>/.locks/<job>--<period>.lock`` (released by the kernel even when the
  process dies, so no stale locks) makes a concurrent second invocation fail
  at once with :class:`~kpireport.errors.ScheduleLockedError` naming the
  holder's pid (exit code 75, "try again later").
* **Resumable.** A re-run of an identity builds with the logical date of
  the identity's first run (recorded in the history), so its reports have
  the same as-of date and cache keys: the report runner skips the reports that are current;
  deliveries already ``sent`` for the identity are not repeated. A group
  whose reports are not all built is *held* (never sent half a pack) and goes
  out on the re-run that completes it.
* **Transient vs deterministic.** A report whose failure kind is transient
  (:attr:`kpireport.errors.FailureKind.transient`: its kernel died or did not
  start, or the report process raised outside the notebook) is rebuilt up to ``retries``
  times with exponential backoff; a notebook that raises (invalid data), a
  timeout or a data-contract error is not retried. SMTP faults follow
  :mod:`kpireport.schedule.mail`.
* **One alert per failed run** to the job's ``owners``: every error, the
  failed notebooks' paths and undelivered groups.
* Audit times (start/end, the Date header) come from ``clock``; the period
  comes only from the logical date.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kpireport._version import __version__
from kpireport.constants import Scope
from kpireport.errors import KpiReportError, ScheduleError, ScheduleLockedError
from kpireport.history.snapshots import read_kpi_table, snapshot_rows
from kpireport.history.store import History
from kpireport.report.manifest import read_manifest, utc_iso
from kpireport.report.slug import slug
from kpireport.schedule import mail
from kpireport.schedule.config import Job, RecipientGroup, ScheduleConfig

log = logging.getLogger("kpireport")


@dataclass
class Delivery:
    """What happened to one recipient group (or the alert)."""

    key: str
    to: tuple[str, ...]
    status: str  # sent | failed | held | already-sent | empty
    reports: list[str] = field(default_factory=list)
    attempts: int = 0
    mode: str | None = None  # attached | links
    subject: str | None = None
    error: str | None = None


@dataclass
class JobResult:
    """Outcome of :func:`run_job`."""

    job: str
    period: str
    logical_date: str
    status: str  # success | failed | skipped
    run_id: int | None = None
    reports: list[Any] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    alert: Delivery | None = None
    errors: list[str] = field(default_factory=list)
    message: str = ""
    history: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("success", "skipped")

    def summary(self) -> str:
        """Plain-text account of the run for the CLI and logs."""
        lines = [
            f"job {self.job}, period {self.period} (logical date {self.logical_date}): {self.status}"
        ]
        if self.message:
            lines.append(self.message)
        for r in self.reports:
            extra = f"  {r.error_kind}: {r.error}" if r.error else ""
            lines.append(f"  report {r.status:<8} {r.report_id}{extra}")
        for d in self.deliveries:
            extra = f"  {d.error}" if d.error else ""
            lines.append(
                f"  mail   {d.status:<12} {d.key} -> {', '.join(d.to)} "
                f"({len(d.reports)} reports{', ' + d.mode if d.mode else ''}){extra}"
            )
        if self.alert is not None:
            extra = f"  {self.alert.error}" if self.alert.error else ""
            lines.append(f"  alert  {self.alert.status:<12} -> {', '.join(self.alert.to)}{extra}")
        if self.history is not None:
            lines.append(f"history: {self.history}")
        return "\n".join(lines)


# ------------------------------------------------------------------ identity
def parse_logical_date(value: dt.date | str) -> dt.date:
    """A logical date from a date or ``YYYY-MM-DD`` text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ScheduleError(f"Logical date '{value}' is not a date (YYYY-MM-DD).") from None


def job_period(job: Job, logical: dt.date) -> str:
    """The period label a job's logical date implies (its identity's period).

    A pack whose runs resolve to different periods gets the labels joined
    with ``+``.
    """
    from kpireport.report.params import load_plan, resolve_period

    overrides: dict[str, Any] = {}
    if job.period:
        overrides["period"] = job.period
    if job.source:
        overrides["source"] = job.source
    runs = load_plan(job.params, overrides)
    labels = sorted({resolve_period(r, logical.isoformat())[0] for r in runs})
    return "+".join(labels)


@contextlib.contextmanager
def identity_lock(out: Path, job: str, period: str, started_at: str) -> Iterator[Path]:
    """Hold the exclusive lock of (job, period) or raise :class:`ScheduleLockedError`."""
    from kpireport.report.lock import exclusive_lock

    path = Path(out) / ".locks" / f"{slug(job)}--{slug(period)}.lock"

    def refuse(holder: str) -> Exception:
        return ScheduleLockedError(
            f"Job '{job}' for {period} is already running ({holder}); "
            "not starting a second run. Try again when it has finished.",
        )

    with exclusive_lock(path, f"pid {os.getpid()}, started {started_at}", refuse) as held:
        yield held


# ------------------------------------------------------------------ reports
def _build(
    job: Job, logical: dt.date, *, rebuild: bool, sleep: Callable[[float], None]
) -> tuple[list[Any], dict[str, str], int]:
    """Run the reports; rebuild transient failures; return (results, fingerprints, attempts)."""
    from kpireport.report.runner import run

    kwargs: dict[str, Any] = {
        "source": job.source, "period": job.period, "as_of": logical.isoformat(),
        "out": job.out, "jobs": job.jobs, "wait": True,  # jobs into one folder take turns
    }  # fmt: skip
    result = run(job.params, force=rebuild, **kwargs)
    reports = {r.report_id: r for r in result.reports}
    order = [r.report_id for r in result.reports]
    fingerprints = dict(result.fingerprints)
    attempt = 1
    while attempt <= job.retries:
        transient = [
            r
            for r in reports.values()
            if r.status == "failed" and r.error_kind is not None and r.error_kind.transient
        ]
        if not transient:
            break
        wait = job.backoff_seconds * 2 ** (attempt - 1)
        log.warning(
            "%d report(s) failed transiently (%s); rebuilding in %.1f s (attempt %d of %d).",
            len(transient), ", ".join(f"{r.report_id}: {r.error_kind}" for r in transient),
            wait, attempt + 1, job.retries + 1,
        )  # fmt: skip
        sleep(wait)
        only = sorted({r.run for r in transient} | {r.scope_id for r in transient if r.scope_id})
        retry = run(job.params, only=only, **kwargs)
        for r in retry.reports:
            if r.report_id in reports and reports[r.report_id].status == "failed":
                reports[r.report_id] = r
        attempt += 1
    return [reports[i] for i in order], fingerprints, attempt


def _seller_teams(out: Path, fingerprints: dict[str, str]) -> dict[str, str]:
    """seller_id → team, from the run's data snapshot(s) (in the cache; the run just used them)."""
    from kpireport.report.snapshot import snapshot_folder

    teams: dict[str, str] = {}
    for fp in set(fingerprints.values()):
        path = snapshot_folder(fp) / "sellers.parquet"
        if not path.is_file():  # written by an older kpireport
            path = out / ".work" / fp[:16] / "sellers.parquet"
        with contextlib.suppress(Exception):
            df = pd.read_parquet(path, columns=["seller_id", "team"])
            for sid, team in zip(df["seller_id"], df["team"], strict=True):
                if pd.notna(sid) and pd.notna(team):
                    teams[str(sid)] = str(team)
    return teams


def _selected(group: RecipientGroup, reports: Sequence[Any], teams: dict[str, str]) -> list[Any]:
    out = []
    for r in reports:
        if r.scope not in group.scopes or (group.runs and r.run not in group.runs):
            continue
        if group.team is not None:
            if r.scope == Scope.TEAM and r.scope_id != group.team:
                continue
            if r.scope == Scope.SELLER and teams.get(str(r.scope_id)) != group.team:
                continue
            if r.scope == Scope.ORGANISATION:
                continue
        out.append(r)
    return out


@dataclass
class _Published:
    report_id: str
    title: str
    scope: str
    scope_name: str
    period: str
    file: Path | None
    kpis: pd.DataFrame | None


def _published(out: Path, report: Any) -> _Published:
    m = read_manifest(out / (report.report_id + ".manifest.json")) or {}
    outputs = m.get("outputs") or {}
    entry = outputs.get("pdf") or outputs.get("html")
    file = out / entry["path"] if entry else None
    kpis = read_kpi_table(out / outputs["kpis"]["path"]) if "kpis" in outputs else None
    return _Published(
        report_id=report.report_id,
        title=str(m.get("title") or report.run),
        scope=report.scope,
        scope_name=str(m.get("scope_name") or report.scope_id or ""),
        period=str(m.get("period") or report.period),
        file=file,
        kpis=kpis,
    )


def _filename(p: _Published) -> str:
    ext = p.file.suffix if p.file else ".pdf"
    parts = (
        [p.title]
        + ([p.scope_name] if p.scope != Scope.ORGANISATION and p.scope_name else [])
        + [p.period]
    )
    return mail.safe_filename(" – ".join(parts)) + ext


def _link(job: Job, path: Path) -> str:
    if job.archive_url:
        rel = path.relative_to(job.out).as_posix()
        return job.archive_url.rstrip("/") + "/" + urllib.parse.quote(rel)
    return str(path)


def _fmt(kpi: str, value: float) -> str:
    try:
        from kpireport.i18n import fmt_value, kpi_label
        from kpireport.kpis.registry import get_kpi

        try:
            unit = str(get_kpi(kpi).unit)
        except KpiReportError:
            unit = "count"
        return f"{kpi_label(kpi)}: {fmt_value(value, unit)}"
    except Exception:  # formatting is cosmetic; never fail a delivery on it
        return f"{kpi}: {value:,.4g}"


def body_text(
    job: Job, period: str, logical: dt.date, items: Sequence[_Published], attach: bool
) -> str:
    """The plain-text body: the pack's index, what is in the message, goals at risk, headline KPIs.

    The pack index (``<out>/index.html``, written by every run; a URL under
    ``archive_url``) comes first: every report of the pack with its status
    and links, including those not in this message.
    """
    lines = [f"KPI reports for {period} (job {job.name}, data as of {logical.isoformat()})."]
    index = job.out / "index.html"
    if index.is_file():
        lines.append(f"Pack index (every report, its status and links): {_link(job, index)}")
    lines += [
        "",
        ("Attached" if attach else "Too large to attach; in the archive") + f" ({len(items)}):",
    ]
    for p in items:
        where = "" if attach or p.file is None else f"\n      {_link(job, p.file)}"
        lines.append(f"  - {_filename(p)}{where}")
    risks = []
    for p in items:
        t = p.kpis
        if t is None or "status" not in t:
            continue
        for rec in t[t["status"].isin(["at_risk", "off_track"])].to_dict("records"):
            who = p.scope_name if p.scope != Scope.ORGANISATION else Scope.ORGANISATION.value
            risks.append(f"  - {rec['kpi']} ({who}): {str(rec['status']).replace('_', ' ')}")
    lines += ["", "Goals at risk:", *(risks or ["  - none"])]
    head = next(
        (p for p in items if p.scope == Scope.ORGANISATION and p.kpis is not None), None
    ) or next((p for p in items if p.kpis is not None), None)
    if head is not None:
        t = head.kpis
        assert t is not None
        rows = t[(t["period"].astype(str) == head.period) & t["value"].notna()].drop_duplicates(
            "kpi"
        )
        if len(rows):
            who = head.scope_name if head.scope != Scope.ORGANISATION else Scope.ORGANISATION.value
            lines += ["", f"Headline KPIs ({who}):"]
            lines += [
                f"  - {_fmt(str(r['kpi']), float(r['value']))}"
                for r in rows.head(8).to_dict("records")
            ]
    lines += [
        "",
        f"Archive: {_link(job, job.out / period) if '+' not in period else job.out}",
        "",
        "-- kpireport",
    ]
    return "\n".join(lines)


def _deliver(
    config: ScheduleConfig, job: Job, period: str, logical: dt.date, reports: Sequence[Any],
    fingerprints: dict[str, str], history: History, run_id: int, *, force: bool,
    sleep: Callable[[float], None], env: dict[str, str] | None, clock: Callable[[], float],
) -> list[Delivery]:  # fmt: skip
    sent = set() if force else history.sent_groups(job.name, period)
    teams = _seller_teams(job.out, fingerprints)
    out: list[Delivery] = []
    for group in job.groups:
        chosen = _selected(group, reports, teams)
        ids = [r.report_id for r in chosen]
        d = Delivery(group.key, group.to, "held", ids)
        if group.key in sent:
            d.status = "already-sent"
            out.append(d)
            continue
        if not chosen:
            known = sorted(
                {r.scope_id for r in reports if r.scope == Scope.TEAM} | set(teams.values())
            )
            d.status, d.error = (
                "empty",
                (
                    f"No report matches recipient group '{group.key}'"
                    + (
                        f" (team '{group.team}'; teams in the data: {', '.join(known)})"
                        if group.team
                        else ""
                    )
                    + "."
                ),
            )
        elif any(not r.ok for r in chosen):
            failed = [r.report_id for r in chosen if not r.ok]
            d.error = f"Held back: waiting for failed report(s) {', '.join(failed)}."
        else:
            items = [_published(job.out, r) for r in chosen]
            files = [p for p in items if p.file is not None and p.file.is_file()]
            attachments = [mail.Attachment(p.file, _filename(p), _link(job, p.file)) for p in files]  # type: ignore[arg-type]
            size = sum(a.size for a in attachments)
            attach = size <= job.max_attachment_bytes
            d.mode = "attached" if attach else "links"
            title = job.description or job.name
            who = group.key.replace("/", " – ")
            d.subject = f"{title}: {period} – {who}"
            res = mail.deliver(
                config.smtp, to=group.to, subject=d.subject,
                body=body_text(job, period, logical, items, attach), attachments=attachments,
                attach=attach, retries=job.retries, backoff_seconds=job.backoff_seconds,
                sleep=sleep, env=env,
            )  # fmt: skip
            d.attempts, d.error = res.attempts, res.error
            d.status = "sent" if res.ok else "failed"
            if res.ok and res.refused:
                d.error = "Refused recipients: " + ", ".join(
                    f"{k} ({v})" for k, v in res.refused.items()
                )
            history.record_delivery(
                run_id, job.name, period, group.key, group.to, status=d.status, at=utc_iso(clock()),
                subject=d.subject, attempts=d.attempts, message_id=res.message_id, mode=d.mode,
                reports=ids, size=size, error=d.error,
            )  # fmt: skip
            out.append(d)
            continue
        history.record_delivery(
            run_id, job.name, period, group.key, group.to, status=d.status, at=utc_iso(clock()),
            reports=ids, error=d.error,
        )  # fmt: skip
        out.append(d)
    return out


def _alert(
    config: ScheduleConfig, job: Job, result: JobResult, history: History, *,
    sleep: Callable[[float], None], env: dict[str, str] | None, clock: Callable[[], float],
) -> Delivery:  # fmt: skip
    subject = f"[kpireport] FAILED: job {job.name} for {result.period}"
    lines = [
        f"The scheduled job '{job.name}' for {result.period} (logical date {result.logical_date}) failed.",
        "",
        "Errors:",
        *[f"  - {e}" for e in result.errors],
    ]
    failed = [r for r in result.reports if not r.ok]
    if failed:
        lines += ["", "Failed notebooks (kept for debugging, never published):"]
        lines += [
            f"  - {r.failed_path or job.out / 'failed' / (r.report_id + '.ipynb')}" for r in failed
        ]
    unsent = [d for d in result.deliveries if d.status in ("failed", "held", "empty")]
    if unsent:
        lines += ["", "Not delivered:"]
        lines += [f"  - {d.key} -> {', '.join(d.to)}: {d.status}" for d in unsent]
    lines += [
        "",
        "Fix the cause, then re-run (only failed reports are rebuilt, only undelivered groups are sent):",
        f"  kpireport schedule run {job.name} --logical-date {result.logical_date}",
        f"History: kpireport history --job {job.name}  ({history.path})",
    ]
    res = mail.deliver(
        config.smtp, to=job.owners, subject=subject, body="\n".join(lines),
        retries=job.retries, backoff_seconds=job.backoff_seconds, sleep=sleep, env=env,
    )  # fmt: skip
    d = Delivery(
        "alert",
        job.owners,
        "sent" if res.ok else "failed",
        attempts=res.attempts,
        subject=subject,
        error=res.error,
    )
    if not res.ok:
        log.error("Could not send the failure alert to %s: %s", ", ".join(job.owners), res.error)
    if result.run_id is not None:
        history.record_delivery(
            result.run_id, job.name, result.period, "alert", job.owners, kind="alert", status=d.status,
            at=utc_iso(clock()), subject=subject, attempts=res.attempts, message_id=res.message_id, error=res.error,
        )  # fmt: skip
    return d


# ---------------------------------------------------------------------- run
def run_job(
    config: ScheduleConfig,
    name: str,
    *,
    logical_date: dt.date | str,
    force: bool = False,
    rebuild: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    env: dict[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> JobResult:
    """Run one scheduled job for the period its logical date implies, and deliver it.

    Parameters
    ----------
    config
        Loaded schedule file (:func:`kpireport.schedule.config.load_schedules`).
    name
        Job name.
    logical_date
        The date the run stands for (``YYYY-MM-DD``); relative periods resolve
        against it, so a late re-run builds the same period.
    force
        Deliver again even if this identity was already delivered.
    rebuild
        Also rebuild reports that are up to date.
    sleep
        Waits between retries (injectable for tests).
    env
        Environment holding the SMTP password (default ``os.environ``).
    clock
        Source of audit timestamps (history start/end), not of the period.

    Returns
    -------
    JobResult
        ``status`` is ``success``, ``skipped`` (already delivered) or ``failed``.

    Raises
    ------
    ScheduleError
        Unknown job or invalid logical date.
    ScheduleLockedError
        Another process runs the same identity.
    """
    job = config.job(name)
    logical = parse_logical_date(logical_date)
    started = utc_iso(clock())
    history = History(job.out)
    try:
        period = job_period(job, logical)
    except KpiReportError as exc:  # invalid run definition: deterministic, alert the owners
        result = JobResult(
            job.name,
            "unknown",
            logical.isoformat(),
            "failed",
            errors=[str(exc)],
            history=history.path,
        )
        result.run_id = history.start_run(
            job.name,
            "unknown",
            logical.isoformat(),
            started,
            version=__version__,
            pid=os.getpid(),
            forced=force,
        )
        result.alert = _alert(config, job, result, history, sleep=sleep, env=env, clock=clock)
        history.finish_run(
            result.run_id, status="failed", ended_at=utc_iso(clock()), error=str(exc)
        )
        result.message = str(exc)
        return result

    with identity_lock(job.out, job.name, period, started):
        result = JobResult(job.name, period, logical.isoformat(), "running", history=history.path)
        done = None if force else history.completed_run(job.name, period)
        if done is not None:
            result.status = "skipped"
            result.message = (
                f"Already delivered by run {done['run_id']} (finished {done['ended_at']}); "
                "nothing to do. Use --force to send again."
            )
            result.run_id = history.start_run(
                job.name, period, logical.isoformat(), started, version=__version__,
                pid=os.getpid(), forced=False, status="skipped",
            )  # fmt: skip
            history.finish_run(
                result.run_id, status="skipped", ended_at=utc_iso(clock()), error=None
            )
            log.info("%s", result.message)
            return result
        # a re-run of an identity builds with its first run's logical date: same as-of,
        # same cache keys, so only what failed is rebuilt
        first = history.first_logical_date(job.name, period)
        as_of = parse_logical_date(first) if first else logical
        run_id = history.start_run(
            job.name,
            period,
            logical.isoformat(),
            started,
            version=__version__,
            pid=os.getpid(),
            forced=force,
        )
        result.run_id = run_id
        fingerprint, attempts = None, 1
        try:
            reports, fingerprints, attempts = _build(job, as_of, rebuild=rebuild, sleep=sleep)
            result.reports = reports
            fingerprint = ",".join(sorted(set(fingerprints.values()))) or None
            history.record_reports(run_id, reports)
            _snapshot(history, job, period, as_of, run_id, reports)
            result.errors += [
                f"{r.report_id}: {r.error_kind}: {r.error}" for r in reports if not r.ok
            ]
            result.deliveries = _deliver(
                config, job, period, as_of, reports, fingerprints, history, run_id,
                force=force, sleep=sleep, env=env, clock=clock,
            )  # fmt: skip
            result.errors += [
                f"delivery to {d.key}: {d.error}"
                for d in result.deliveries
                if d.status in ("failed", "empty")
            ]
        except KpiReportError as exc:  # data contract, params, source: deterministic
            result.errors.append(str(exc))
        except Exception as exc:  # a bug: record and alert, then let it surface
            result.errors.append(f"internal error: {type(exc).__name__}: {exc}")
            result.status = "failed"
            result.alert = _alert(config, job, result, history, sleep=sleep, env=env, clock=clock)
            history.finish_run(
                run_id, status="failed", ended_at=utc_iso(clock()), error="; ".join(result.errors)
            )
            raise
        incomplete = any(
            d.status != "sent" and d.status != "already-sent" for d in result.deliveries
        )
        result.status = "failed" if result.errors or incomplete else "success"
        if result.status == "failed":
            result.alert = _alert(config, job, result, history, sleep=sleep, env=env, clock=clock)
        history.finish_run(
            run_id, status=result.status, ended_at=utc_iso(clock()),
            error="; ".join(result.errors) or None, fingerprint=fingerprint, attempts=attempts,
        )  # fmt: skip
        return result


def _snapshot(
    history: History, job: Job, period: str, logical: dt.date, run_id: int, reports: Sequence[Any]
) -> None:
    """Store the KPI tables of the reports built (or confirmed current) by this run."""
    rows: list[tuple] = []
    for r in reports:
        if not r.ok:
            continue
        p = _published(job.out, r)
        if p.kpis is not None:
            rows += snapshot_rows(
                run_id, job.name, period, logical.isoformat(), r.report_id, p.kpis
            )
    if rows:
        history.insert_snapshots(rows)
