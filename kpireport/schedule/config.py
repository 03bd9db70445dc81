"""Schedules as code: the ``params/schedules.yaml`` schema and its validation.

A schedule file names the SMTP server, the defaults and every scheduled job::

    smtp:
      host: smtp.example.com
      port: 587
      security: starttls          # starttls | ssl | none
      user: reports@example.com
      sender: "KPI reports <reports@example.com>"
      password_env: KPIREPORT_SMTP_PASSWORD   # the password itself is never in a file
    defaults:
      max_attachment_mb: 15       # above this, a message links to the archive instead
      retries: 3                  # extra attempts after a transient failure
      backoff_seconds: 30         # first wait; doubles per attempt
    jobs:
      monthly-pack:
        params: monthly_pack.yaml # run definition or pack, relative to this file
        cron: "0 6 1 * *"
        timezone: Europe/Amsterdam
        out: ../reports
        owners: [bi@example.com]  # alerted when a run fails
        recipients:
          - name: management
            to: [ceo@example.com]
            scopes: [organisation, team]
          - name: team-leads
            per_team:
              North: north.lead@example.com

Design decisions
----------------
* **Strict YAML, every problem at once.** The file is read with the same
  strict loader as the run definitions (no implicit types, duplicate keys are
  errors); unknown keys get a "did you mean", and every finding is reported in
  one :class:`~kpireport.errors.ScheduleError` before anything runs.
* **Explicit time zones.** A job's cron expression means nothing without an
  IANA zone, so ``timezone`` is required and checked with :mod:`zoneinfo`.
* **No secret in the file.** ``password_env`` names an environment variable;
  a key that looks like a credential holding a value (``password: ...``) is
  refused. The variable is read only when a message is sent
  (:func:`kpireport.schedule.mail.smtp_password`).
* **Recipient groups map to report scopes.** A group with ``to`` receives the
  reports whose scope kind is in ``scopes`` (default: all), optionally only of
  the run names in ``runs``; a group with ``per_team`` expands to one group
  per team name, each receiving that team's report and its sellers' reports
  (sellers are mapped to teams through the data). A group's key
  (``management``, ``team-leads/North``) is part of the delivery identity.
* Relative paths (``params``, ``out``, ``source``) resolve against the
  schedule file's folder, like the notebook paths of run definitions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kpireport.constants import Scope
from kpireport.errors import KpiReportError, ParamsError, ScheduleError
from kpireport.problems import Problems, did_you_mean, read_yaml
from kpireport.report.parameters import looks_secret

SECURITY = ("starttls", "ssl", "none")
SCOPES = (Scope.ORGANISATION.value, Scope.TEAM.value, Scope.SELLER.value)
TOP_KEYS = ("smtp", "defaults", "jobs")
SMTP_KEYS = ("host", "port", "security", "user", "sender", "password_env", "timeout", "ca_file")
DEFAULT_KEYS = ("max_attachment_mb", "retries", "backoff_seconds", "archive_url", "jobs")
JOB_KEYS = (
    "params",
    "cron",
    "timezone",
    "out",
    "source",
    "period",
    "owners",
    "recipients",
    "description",
    *DEFAULT_KEYS,
)
GROUP_KEYS = ("name", "to", "per_team", "scopes", "runs")
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the SMTP server; the password comes from ``password_env`` at send time."""

    host: str
    port: int
    security: str = "starttls"
    user: str | None = None
    sender: str = ""
    password_env: str | None = None
    timeout: float = 30.0
    ca_file: Path | None = None


@dataclass(frozen=True)
class RecipientGroup:
    """One message per period goes to ``to`` with the reports this group selects.

    ``team`` is set for groups expanded from ``per_team``: they receive the
    team's report and the reports of its sellers.
    """

    key: str
    to: tuple[str, ...]
    scopes: tuple[str, ...] = SCOPES
    runs: tuple[str, ...] = ()
    team: str | None = None


@dataclass(frozen=True)
class Job:
    """One scheduled job: which run definition, when, for whom."""

    name: str
    params: Path
    cron: str
    timezone: str
    out: Path
    owners: tuple[str, ...]
    groups: tuple[RecipientGroup, ...]
    source: str | None = None
    period: str | None = None
    description: str = ""
    max_attachment_bytes: int = 15 * 1024 * 1024
    retries: int = 3
    backoff_seconds: float = 30.0
    archive_url: str | None = None
    jobs: int | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ScheduleConfig:
    """A loaded, validated schedule file."""

    path: Path
    smtp: SmtpConfig
    jobs: dict[str, Job] = field(default_factory=dict)

    def job(self, name: str) -> Job:
        """The job called ``name``.

        Raises
        ------
        ScheduleError
            When there is no such job (with a "did you mean").
        """
        try:
            return self.jobs[name]
        except KeyError:
            raise ScheduleError(
                f"{self.path.name}: no job '{name}'{did_you_mean(name, self.jobs)}; "
                f"jobs: {', '.join(sorted(self.jobs)) or 'none'}."
            ) from None


# ------------------------------------------------------------------ helpers
def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _addresses(value: Any, where: str, problems: Problems) -> tuple[str, ...]:
    out = []
    for a in _list(value):
        a = a.strip()
        if not _ADDRESS.match(a):
            problems.append(f"{where}: '{a}' is not an e-mail address.")
        else:
            out.append(a)
    return tuple(out)


def _path(base: Path, value: str) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _source(base: Path, value: Any) -> str | None:
    """A source path resolved against the schedule file's folder; URLs unchanged."""
    if not value:
        return None
    from kpireport.report.params import DEMO_SOURCE

    if str(value) == DEMO_SOURCE:
        return DEMO_SOURCE
    return str(value) if "://" in str(value) else str(_path(base, str(value)))


def _check_source(jw: str, params_path: Path, problems: Problems) -> None:
    """A job without ``source`` needs every run of its params file to name one."""
    from kpireport.report.params import DEMO_SOURCE, load_plan, missing_sources

    try:
        runs = load_plan(params_path)
    except KpiReportError as exc:
        problems.append(f"{jw}: {exc}")
        return
    if missing_sources(runs):
        names = ", ".join(f"'{r.name}'" for r in runs if r.source is None)
        problems.append(
            f"{jw}: no 'source' (the CRM export to report on) and the run(s) {names} of "
            f"{params_path.name} set none; a scheduled job never falls back to the demo company "
            f"(write 'source: {DEMO_SOURCE}' to schedule the demo)."
        )


def _secret_keys(doc: Any, where: str, problems: Problems) -> None:
    """Refuse credential-like keys that hold a value (``password: hunter2``)."""
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            if looks_secret(str(k)) and not str(k).endswith("_env") and v not in (None, ""):
                problems.append(
                    f"{where}: '{k}' looks like a credential; never write secrets in the schedule "
                    "file (name an environment variable with 'password_env')."
                )
            _secret_keys(v, where, problems)
    elif isinstance(doc, list):
        for v in doc:
            _secret_keys(v, where, problems)


# ------------------------------------------------------------------ parsing
def _smtp(doc: Any, where: str, problems: Problems, base: Path) -> SmtpConfig:
    if not isinstance(doc, Mapping):
        problems.append(f"{where}: 'smtp' must be a mapping with at least 'host' and 'sender'.")
        return SmtpConfig(host="", port=0)
    problems.unknown_keys(doc, SMTP_KEYS, f"{where} smtp")
    security = str(doc.get("security") or "starttls").lower()
    if security not in SECURITY:
        problems.append(f"{where} smtp: security '{security}' is not one of {', '.join(SECURITY)}.")
        security = "starttls"
    host = str(doc.get("host") or "")
    if not host:
        problems.append(f"{where} smtp: 'host' is required.")
    port = problems.non_negative(
        doc.get("port"), int, f"{where} smtp port", _DEFAULT_PORTS[security]
    )
    sender = str(doc.get("sender") or "")
    if not sender:
        problems.append(f"{where} smtp: 'sender' is required (the From address).")
    else:
        from email.utils import parseaddr

        if not _ADDRESS.match(parseaddr(sender)[1]):
            problems.append(f"{where} smtp: sender '{sender}' has no valid e-mail address.")
    user = doc.get("user") or None
    password_env = doc.get("password_env") or None
    if password_env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(password_env)):
        problems.append(
            f"{where} smtp: password_env '{password_env}' is not an environment variable name."
        )
    if user and not password_env:
        problems.append(f"{where} smtp: 'user' is set but 'password_env' is not.")
    timeout = problems.non_negative(doc.get("timeout"), float, f"{where} smtp timeout", 30.0)
    ca_file = _path(base, doc["ca_file"]) if doc.get("ca_file") else None
    return SmtpConfig(
        host=host,
        port=port,
        security=security,
        user=str(user) if user else None,
        sender=sender,
        password_env=str(password_env) if password_env else None,
        timeout=timeout,
        ca_file=ca_file,
    )


def _groups(doc: Any, where: str, problems: Problems) -> tuple[RecipientGroup, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, list):
        problems.append(f"{where}: 'recipients' must be a list of groups.")
        return ()
    groups: list[RecipientGroup] = []
    for i, g in enumerate(doc, 1):
        gw = f"{where} recipients[{i}]"
        if not isinstance(g, Mapping):
            problems.append(f"{gw}: a group is a mapping with 'name' and 'to' or 'per_team'.")
            continue
        problems.unknown_keys(g, GROUP_KEYS, gw)
        name = str(g.get("name") or "")
        if not _JOB_NAME.match(name):
            problems.append(f"{gw}: 'name' is required (letters, digits, '.', '_' or '-').")
            continue
        scopes = tuple(s.lower() for s in _list(g.get("scopes"))) or SCOPES
        for s in scopes:
            if s not in SCOPES:
                problems.one_of(s, SCOPES, "scope", gw)
        runs = tuple(_list(g.get("runs")))
        if ("to" in g) == ("per_team" in g):
            problems.append(f"{gw} ('{name}'): give exactly one of 'to' or 'per_team'.")
            continue
        if "to" in g:
            to = _addresses(g["to"], gw, problems)
            if not to:
                problems.append(f"{gw} ('{name}'): 'to' names no address.")
            groups.append(RecipientGroup(name, to, scopes, runs))
            continue
        per_team = g["per_team"]
        if not isinstance(per_team, Mapping) or not per_team:
            problems.append(f"{gw} ('{name}'): 'per_team' maps team names to addresses.")
            continue
        team_scopes = tuple(s for s in scopes if s != Scope.ORGANISATION) or (
            Scope.TEAM.value,
            Scope.SELLER.value,
        )
        for team, addrs in per_team.items():
            to = _addresses(addrs, f"{gw} team '{team}'", problems)
            groups.append(RecipientGroup(f"{name}/{team}", to, team_scopes, runs, team=str(team)))
    keys = [g.key for g in groups]
    for dup in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"{where}: two recipient groups are called '{dup}'.")
    return tuple(groups)


def _job(
    name: str, doc: Any, defaults: Mapping[str, Any], base: Path, where: str, problems: Problems
) -> Job | None:
    from kpireport.schedule.cron import check_cron

    jw = f"{where} job '{name}'"
    if not _JOB_NAME.match(name):
        problems.append(f"{jw}: a job name uses letters, digits, '.', '_' or '-'.")
    if not isinstance(doc, Mapping):
        problems.append(f"{jw}: a job is a mapping with 'params', 'cron' and 'timezone'.")
        return None
    problems.unknown_keys(doc, JOB_KEYS, jw)
    merged = {**defaults, **doc}
    params = doc.get("params")
    params_path = _path(base, params) if params else base
    if not params:
        problems.append(f"{jw}: 'params' (a run definition in params/) is required.")
    elif not params_path.is_file():
        problems.append(f"{jw}: params file '{params}' does not exist.")
    if params and params_path.is_file() and not doc.get("source"):
        _check_source(jw, params_path, problems)
    cron = str(doc.get("cron") or "")
    if not cron:
        problems.append(f"{jw}: 'cron' is required (e.g. \"0 6 1 * *\").")
    else:
        err = check_cron(cron)
        if err:
            problems.append(f"{jw}: {err}")
    tz = str(doc.get("timezone") or "")
    if not tz:
        problems.append(
            f"{jw}: 'timezone' is required (an IANA name such as Europe/Amsterdam); "
            "a cron expression without a time zone fires at different times on different servers."
        )
    else:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"{jw}: unknown time zone '{tz}' (use an IANA name such as Europe/Amsterdam)."
            )
    owners = _addresses(doc.get("owners"), f"{jw} owners", problems)
    if not owners:
        problems.append(f"{jw}: 'owners' (who is alerted when a run fails) is required.")
    groups = _groups(doc.get("recipients"), jw, problems)
    period = doc.get("period") or None
    if period is not None:
        from kpireport.periods import parse_period

        try:
            parse_period(str(period), "2026-01-15")
        except Exception as exc:  # PeriodError
            problems.append(f"{jw}: {exc}")
    mb = problems.non_negative(
        merged.get("max_attachment_mb"), float, f"{jw} max_attachment_mb", 15.0
    )
    jobs = merged.get("jobs")
    return Job(
        name=name,
        params=params_path,
        cron=cron,
        timezone=tz or "UTC",
        out=_path(base, doc.get("out") or "../reports"),
        owners=owners,
        groups=groups,
        source=_source(base, doc.get("source")),
        period=str(period) if period else None,
        description=str(doc.get("description") or ""),
        max_attachment_bytes=int(mb * 1024 * 1024),
        retries=problems.non_negative(merged.get("retries"), int, f"{jw} retries", 3),
        backoff_seconds=problems.non_negative(
            merged.get("backoff_seconds"), float, f"{jw} backoff_seconds", 30.0
        ),
        archive_url=str(merged["archive_url"]) if merged.get("archive_url") else None,
        jobs=problems.non_negative(jobs, int, f"{jw} jobs", None) if jobs else None,
    )


def load_schedules(path: Path | str) -> ScheduleConfig:
    """Read and validate a schedule file.

    Parameters
    ----------
    path
        The schedule file (``params/schedules.yaml``).

    Returns
    -------
    ScheduleConfig

    Raises
    ------
    ScheduleError
        Listing every problem found (nothing has run).
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ScheduleError(f"Schedule file '{path}' does not exist.")
    try:
        doc = read_yaml(path)
    except ParamsError as exc:
        raise ScheduleError(str(exc)) from None
    where = path.name
    problems = Problems()
    if not isinstance(doc, Mapping):
        raise ScheduleError(f"{where}: expected a mapping with 'smtp' and 'jobs'.")
    problems.unknown_keys(doc, TOP_KEYS, where)
    _secret_keys(doc, where, problems)
    base = path.parent
    smtp = _smtp(doc.get("smtp"), where, problems, base)
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append(f"{where}: 'defaults' must be a mapping.")
        defaults = {}
    problems.unknown_keys(defaults, DEFAULT_KEYS, f"{where} defaults")
    jobs_doc = doc.get("jobs") or {}
    if not isinstance(jobs_doc, Mapping) or not jobs_doc:
        problems.append(f"{where}: 'jobs' must name at least one job.")
        jobs_doc = {}
    jobs: dict[str, Job] = {}
    for name, jdoc in jobs_doc.items():
        job = _job(str(name), jdoc, defaults, base, where, problems)
        if job is not None:
            jobs[str(name)] = job
    problems.raise_if_any(ScheduleError, "schedule file")
    return ScheduleConfig(path=path, smtp=smtp, jobs=jobs)
