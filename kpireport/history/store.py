"""Run history: a small SQLite store in the output folder (``<out>/history.sqlite``).

Tables
------
``runs``
    One row per ``schedule run`` invocation: job, logical period and date,
    start/end (UTC, audit only), status (``running``, ``success``, ``failed``,
    ``skipped``), error, data fingerprints, kpireport version, pid, forced.
``reports``
    Status of every report of a run (``success``, ``skipped`` = up to date,
    ``failed``), with the error and the path of the failed notebook.
``deliveries``
    One row per message attempt series: job, period, recipient group key,
    recipients, subject, status (``sent``, ``failed``, ``held``), attempts,
    Message-ID, error, whether files were attached or linked. ``alert`` rows
    (``kind='alert'``) record failure alerts.
``kpi_snapshots``
    The KPI and forecast values each run published (see
    :mod:`kpireport.history.snapshots`).

Design decisions
----------------
* **The identity of a run is (job, logical period).** "Already delivered" is
  a query: a group counts as delivered when a ``sent`` delivery exists for
  the identity and group key, whichever run sent it.
* **Append-only audit.** Runs are inserted at start (``running``) and updated
  once at the end; nothing is deleted. A crashed run stays ``running`` with
  its pid, which ``kpireport history`` shows.
* **Safe under concurrency**: WAL journal, a busy timeout, one short
  transaction per write. The per-identity lock of
  :mod:`kpireport.schedule.runner` keeps two runs of one identity apart;
  runs of different identities may write at once.
* **No secrets**: only addresses, subjects, sentences and numbers are stored;
  error sentences are built without the password.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

DB_NAME = "history.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    period TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,
    error TEXT,
    fingerprint TEXT,
    version TEXT,
    pid INTEGER,
    forced INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS runs_identity ON runs (job, period);
CREATE TABLE IF NOT EXISTS reports (
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    report_id TEXT NOT NULL,
    run TEXT,
    scope TEXT,
    scope_id TEXT,
    status TEXT NOT NULL,
    error_kind TEXT,
    error TEXT,
    failed_path TEXT,
    PRIMARY KEY (run_id, report_id)
);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    job TEXT NOT NULL,
    period TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'report',
    group_key TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    mode TEXT,
    reports TEXT,
    bytes INTEGER,
    error TEXT,
    at TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_identity ON deliveries (job, period, group_key);
CREATE TABLE IF NOT EXISTS kpi_snapshots (
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    job TEXT NOT NULL,
    run_period TEXT NOT NULL,
    as_of TEXT NOT NULL,
    report_id TEXT NOT NULL,
    kpi TEXT NOT NULL,
    scope TEXT,
    scope_id TEXT,
    period TEXT,
    value REAL,
    forecast REAL,
    lo_80 REAL,
    hi_80 REAL,
    lo_95 REAL,
    hi_95 REAL,
    target REAL,
    status TEXT
);
CREATE INDEX IF NOT EXISTS kpi_snapshots_period ON kpi_snapshots (period, kpi);
"""


def db_path(where: Path | str) -> Path:
    """The history database for an output folder (or the database file itself)."""
    p = Path(where)
    return p if p.suffix == ".sqlite" else p / DB_NAME


def _masked(text: str | None) -> str | None:
    """Error text with URL passwords and secret values masked (see :mod:`kpireport.secrets`)."""
    from kpireport.secrets import mask_secrets

    return None if text is None else mask_secrets(text)


class History:
    """Read and append run records in ``<out>/history.sqlite``.

    Parameters
    ----------
    where
        The output folder (the file is created inside it) or the database file.
    """

    def __init__(self, where: Path | str) -> None:
        self.path = db_path(where)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30.0)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA busy_timeout=30000")
            with con:  # one transaction
                yield con
        finally:
            con.close()

    # ---------------------------------------------------------------- runs
    def start_run(
        self,
        job: str,
        period: str,
        logical_date: str,
        started_at: str,
        *,
        version: str,
        pid: int,
        forced: bool,
        status: str = "running",
    ) -> int:
        """Insert a run record; return its id."""
        with self._connect() as con:
            cur = con.execute(
                "INSERT INTO runs (job, period, logical_date, started_at, status, version, pid, forced)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job, period, logical_date, started_at, status, version, pid, int(forced)),
            )
            return int(cur.lastrowid or 0)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        ended_at: str,
        error: str | None = None,
        fingerprint: str | None = None,
        attempts: int = 1,
    ) -> None:
        """Record a run's end."""
        with self._connect() as con:
            con.execute(
                "UPDATE runs SET status = ?, ended_at = ?, error = ?, fingerprint = ?, attempts = ?"
                " WHERE run_id = ?",
                (status, ended_at, _masked(error), fingerprint, attempts, run_id),
            )

    def record_reports(self, run_id: int, reports: Sequence[Any]) -> None:
        """Store the status of every report (objects with ReportResult's attributes)."""
        with self._connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO reports (run_id, report_id, run, scope, scope_id, status,"
                " error_kind, error, failed_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (run_id, r.report_id, r.run, r.scope, r.scope_id, r.status,
                     r.error_kind, _masked(r.error), r.failed_path)
                    for r in reports
                ],
            )  # fmt: skip

    def first_logical_date(self, job: str, period: str) -> str | None:
        """The logical date of the identity's first (non-skipped) run, or ``None``."""
        with self._connect() as con:
            row = con.execute(
                "SELECT logical_date FROM runs WHERE job = ? AND period = ? AND status != 'skipped'"
                " ORDER BY run_id LIMIT 1",
                (job, period),
            ).fetchone()
        return str(row[0]) if row else None

    def completed_run(self, job: str, period: str) -> dict[str, Any] | None:
        """The latest successful run of an identity, or ``None``."""
        with self._connect() as con:
            con.row_factory = sqlite3.Row
            row = con.execute(
                "SELECT * FROM runs WHERE job = ? AND period = ? AND status = 'success'"
                " ORDER BY run_id DESC LIMIT 1",
                (job, period),
            ).fetchone()
        return dict(row) if row else None

    # ---------------------------------------------------------- deliveries
    def record_delivery(
        self,
        run_id: int,
        job: str,
        period: str,
        group_key: str,
        recipients: Sequence[str],
        *,
        status: str,
        at: str,
        kind: str = "report",
        subject: str | None = None,
        attempts: int = 0,
        message_id: str | None = None,
        mode: str | None = None,
        reports: Sequence[str] = (),
        size: int | None = None,
        error: str | None = None,
    ) -> None:
        """Append one delivery (or alert) record."""
        with self._connect() as con:
            con.execute(
                "INSERT INTO deliveries (run_id, job, period, kind, group_key, recipients, subject,"
                " status, attempts, message_id, mode, reports, bytes, error, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, job, period, kind, group_key, ", ".join(recipients), subject, status,
                 attempts, message_id, mode, json.dumps(list(reports)), size, _masked(error), at),
            )  # fmt: skip

    def sent_groups(self, job: str, period: str) -> set[str]:
        """Group keys already delivered for an identity."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT DISTINCT group_key FROM deliveries WHERE job = ? AND period = ?"
                " AND kind = 'report' AND status = 'sent'",
                (job, period),
            ).fetchall()
        return {r[0] for r in rows}

    # ------------------------------------------------------------ queries
    def runs(self, job: str | None = None) -> pd.DataFrame:
        """Every run (newest last), with a per-status count of its reports and deliveries."""
        where, args = ("WHERE r.job = ?", (job,)) if job else ("", ())
        sql = f"""
            SELECT r.run_id, r.job, r.period, r.logical_date, r.started_at, r.ended_at, r.status,
                   r.forced, r.attempts, r.version, r.fingerprint, r.error,
                   (SELECT COUNT(*) FROM reports p WHERE p.run_id = r.run_id AND p.status = 'success') AS built,
                   (SELECT COUNT(*) FROM reports p WHERE p.run_id = r.run_id AND p.status = 'skipped') AS current,
                   (SELECT COUNT(*) FROM reports p WHERE p.run_id = r.run_id AND p.status = 'failed') AS failed,
                   (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.run_id AND d.kind = 'report' AND d.status = 'sent') AS sent,
                   (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.run_id AND d.kind = 'report' AND d.status != 'sent') AS unsent,
                   (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.run_id AND d.kind = 'alert') AS alerts
            FROM runs r {where} ORDER BY r.run_id
        """  # noqa: S608 - the only interpolation is a fixed clause
        with self._connect() as con:
            return pd.read_sql_query(sql, con, params=args)

    def table(self, name: str, run_id: int | None = None) -> pd.DataFrame:
        """One table (``runs``, ``reports``, ``deliveries``, ``kpi_snapshots``) as a DataFrame."""
        if name not in ("runs", "reports", "deliveries", "kpi_snapshots"):
            raise ValueError(f"unknown history table '{name}'")
        sql = f"SELECT * FROM {name}" + (" WHERE run_id = ?" if run_id is not None else "")
        with self._connect() as con:
            return pd.read_sql_query(sql, con, params=(run_id,) if run_id is not None else ())

    def insert_snapshots(self, rows: Sequence[tuple]) -> None:
        """Append KPI snapshot rows (see :mod:`kpireport.history.snapshots`)."""
        with self._connect() as con:
            con.executemany(
                "INSERT INTO kpi_snapshots (run_id, job, run_period, as_of, report_id, kpi, scope,"
                " scope_id, period, value, forecast, lo_80, hi_80, lo_95, hi_95, target, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
