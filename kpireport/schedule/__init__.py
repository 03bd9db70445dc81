"""Scheduled delivery: schedules as code, e-mail over SMTP, idempotent runs, run history.

``params/schedules.yaml`` names each job (a run definition, a cron expression
in an explicit time zone, recipient groups, owners to alert). The system
scheduler (cron or a systemd timer, see ``docs/SCHEDULING.md``) calls
``kpireport schedule run JOB``; :func:`kpireport.schedule.runner.run_job` does
one run: identity (job, logical period), lock, build, deliver, alert, history.

Modules: :mod:`~kpireport.schedule.config` (schema and validation),
:mod:`~kpireport.schedule.cron` (fire times, logical dates, crontab lines),
:mod:`~kpireport.schedule.mail` (messages, SMTP with retries),
:mod:`~kpireport.history.store` (SQLite run history),
:mod:`~kpireport.history.snapshots` (published KPIs, forecast vs actual),
:mod:`~kpireport.schedule.runner` (the run itself).

Names are imported lazily so that a report kernel importing
:func:`previous_forecast_vs_actual` pays only for pandas and sqlite3.
"""

from __future__ import annotations

from kpireport._lazy import lazy_exports

_EXPORTS = {
    "load_schedules": "kpireport.schedule.config",
    "ScheduleConfig": "kpireport.schedule.config",
    "Job": "kpireport.schedule.config",
    "run_job": "kpireport.schedule.runner",
    "JobResult": "kpireport.schedule.runner",
    "History": "kpireport.history.store",
    "previous_forecast_vs_actual": "kpireport.history.snapshots",
    "next_fire_times": "kpireport.schedule.cron",
    "logical_date": "kpireport.schedule.cron",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
