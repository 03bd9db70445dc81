"""The run history: what ran, what was sent, and the KPI snapshots each run published.

A low layer used by both :mod:`kpireport.report` (the management pack grades
last month's forecast against the actual) and :mod:`kpireport.schedule`
(runs, deliveries, alerts): it depends on nothing above ``periods`` and
``secrets``, so neither of them imports the other for it.

* :mod:`~kpireport.history.store` — the SQLite history database
  (``History``, ``db_path``, ``DB_NAME``);
* :mod:`~kpireport.history.snapshots` — published KPI rows and
  :func:`~kpireport.history.snapshots.previous_forecast_vs_actual`.

See ``docs/SCHEDULING.md`` (history) and ``docs/REPORTS.md``.
"""
