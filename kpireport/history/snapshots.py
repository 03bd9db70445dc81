"""KPI snapshots: what each scheduled run published, so next month can grade the forecast.

Every scheduled run stores the rows of its reports' ``<report>.kpis.csv``
(the numbers shown, recorded in the notebook with
:func:`kpireport.report.record_kpis`) in the history database's
``kpi_snapshots`` table. A row is either an *actual* (``value`` for the
row's ``period``) or a *forecast* (``forecast``, ``lo_80``/``hi_80``,
``lo_95``/``hi_95`` for a later ``period``) or both; ``target`` and ``status``
carry a goal when the notebook recorded one.

Convention for notebooks (what makes a forecast gradable): record the
forecast of KPI ``k`` for the period it is *for*, e.g. the November pack
records ``kpi=hit_rate, period=2026-12, value=None, forecast=0.82,
lo_80=0.73, hi_80=0.91``. The December pack then calls::

    from kpireport.history.snapshots import previous_forecast_vs_actual
    fva = previous_forecast_vs_actual(history, period, actuals=kpis)

and shows "last month we predicted 82 % ± 9, reached 85 %".

Design decisions
----------------
* **Snapshots are the published numbers, not a recomputation**: they come
  from the same table the report displayed, so "what we told management"
  is auditable even if the data is later corrected.
* **Latest wins.** A re-run of the same identity appends rows; readers take
  the most recent run's row per (kpi, scope, scope_id, period).
* **Handed to a notebook.** ``kpireport run`` passes the database's path
  as the notebook parameter ``history`` (empty when there is none yet); the
  report views use exactly that file. The function also accepts the output
  folder or any path inside it, and walks up to ``history.sqlite`` (for an
  analyst's own notebook).
* Light: pandas and sqlite3 only, so it is cheap inside a kernel.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kpireport.history.store import DB_NAME

log = logging.getLogger("kpireport")

#: optional numeric columns of a KPI table that are snapshotted
NUMERIC = ("value", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "target")
#: columns of :func:`previous_forecast_vs_actual`
FVA_COLUMNS = (
    "kpi", "scope", "scope_id", "period", "forecast", "lo_80", "hi_80", "lo_95", "hi_95",
    "forecast_run_period", "forecast_as_of", "actual", "error", "abs_pct_error", "in_80", "in_95",
)  # fmt: skip


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    s = str(v)
    return s[1:] if s.startswith("'") else s or None  # undo CSV formula neutralisation


def read_kpi_table(path: Path) -> pd.DataFrame | None:
    """A report's ``.kpis.csv`` with ids as text, or ``None`` when missing/unreadable."""
    try:
        return pd.read_csv(path, dtype={"scope_id": "str", "period": "str", "kpi": "str"})
    except (OSError, ValueError):
        return None


def snapshot_rows(
    run_id: int, job: str, run_period: str, as_of: str, report_id: str, table: pd.DataFrame
) -> list[tuple]:
    """Rows for ``kpi_snapshots`` from one report's KPI table."""
    rows = []
    for rec in table.to_dict("records"):
        kpi = _text(rec.get("kpi"))
        if kpi is None:
            continue
        nums = [_num(rec.get(c)) for c in NUMERIC]
        if all(n is None for n in nums):
            continue
        rows.append(
            (run_id, job, run_period, as_of, report_id, kpi, _text(rec.get("scope")),
             _text(rec.get("scope_id")), _text(rec.get("period")) or run_period, *nums,
             _text(rec.get("status")))
        )  # fmt: skip
    return rows


def find_history(where: Path | str) -> Path:
    """The ``history.sqlite`` for an output folder, a database file or a path inside ``out``.

    Raises
    ------
    FileNotFoundError
        When no history database is found there or in any parent folder.
    """
    p = Path(where).expanduser().resolve()
    if p.suffix == ".sqlite" and p.is_file():
        return p
    for folder in [p, *p.parents]:
        candidate = folder / DB_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"No run history ({DB_NAME}) at or above {p}; snapshots exist only for scheduled runs."
    )


def _start(label: str) -> pd.Timestamp | None:
    from kpireport.periods import parse_period

    try:
        return parse_period(label).start
    except Exception:
        return None


def previous_forecast_vs_actual(
    where: Path | str,
    period: str,
    *,
    kpis: Sequence[str] | None = None,
    job: str | None = None,
    actuals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The forecasts published *before* ``period`` for ``period``, next to its actual.

    Parameters
    ----------
    where
        Output folder, ``history.sqlite``, or a path inside the output folder
        (a report kernel can pass its ``source`` parameter).
    period
        Absolute period label whose forecast is graded (the report's period).
    kpis
        Only these KPIs (default: every KPI that was forecast).
    job
        Only forecasts and actuals published by this scheduled job.
    actuals
        Tidy table (``kpi, scope, scope_id, period, value``) of the actuals
        just computed; takes precedence over actuals in the history (which
        exist only once a run for ``period`` has been published).

    Returns
    -------
    pandas.DataFrame
        One row per (kpi, scope, scope_id) forecast for ``period`` made by
        the latest run whose own period ends before ``period`` starts:
        ``kpi, scope, scope_id, period, forecast, lo_80, hi_80, lo_95,
        hi_95, forecast_run_period, forecast_as_of, actual, error (actual −
        forecast), abs_pct_error, in_80, in_95`` (``in_*`` is ``<NA>`` when
        the actual or the interval is unknown). Empty (with these columns)
        when nothing was forecast for ``period``.
    """
    try:
        db = find_history(where)
    except FileNotFoundError as exc:
        log.info("%s", exc)
        return pd.DataFrame(columns=list(FVA_COLUMNS))
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30.0)
    try:
        where_job, args = ("AND job = ?", [period, job]) if job else ("", [period])
        snap = pd.read_sql_query(
            f"SELECT * FROM kpi_snapshots WHERE period = ? {where_job} ORDER BY run_id",  # noqa: S608
            con,
            params=args,
        )
    finally:
        con.close()
    for col in NUMERIC:  # all-NULL columns come back as object
        snap[col] = pd.to_numeric(snap[col], errors="coerce").astype("float64")
    if kpis is not None:
        snap = snap[snap["kpi"].isin(list(kpis))]
    key = ["kpi", "scope", "scope_id"]
    snap["scope_id"] = snap["scope_id"].fillna("")
    target_start = _start(period)
    made_before = snap["run_period"].map(
        lambda p: (
            (s := _start(str(p))) is not None and target_start is not None and s < target_start
        )
    )
    fc = snap[snap["forecast"].notna() & made_before.astype(bool)]
    fc = fc.assign(_start=fc["run_period"].map(_start)).sort_values(["_start", "run_id"])
    fc = fc.drop_duplicates(key, keep="last")
    act = snap[snap["value"].notna()].drop_duplicates(key, keep="last")[[*key, "value"]]
    if actuals is not None and len(actuals):
        a = actuals.copy()
        if "period" in a:
            a = a[a["period"].astype(str) == period]
        a = a.assign(scope_id=a.get("scope_id", pd.Series(index=a.index, dtype=object)))
        a["scope_id"] = a["scope_id"].map(lambda v: "" if _text(v) is None else str(v))
        a = a[a["value"].notna()][[*key, "value"]]
        act = pd.concat([act, a], ignore_index=True).drop_duplicates(key, keep="last")
    act["value"] = pd.to_numeric(act["value"], errors="coerce").astype("float64")
    out = fc.merge(act.rename(columns={"value": "actual"}), on=key, how="left")
    out = out.rename(columns={"run_period": "forecast_run_period", "as_of": "forecast_as_of"})
    out["period"] = period
    out["error"] = out["actual"] - out["forecast"]
    out["abs_pct_error"] = (out["error"].abs() / out["actual"].abs()).where(out["actual"] != 0)
    for lvl in ("80", "95"):
        lo, hi = out[f"lo_{lvl}"], out[f"hi_{lvl}"]
        known = out["actual"].notna() & lo.notna() & hi.notna()
        inside = (out["actual"] >= lo) & (out["actual"] <= hi)
        out[f"in_{lvl}"] = inside.astype("boolean").where(known, pd.NA)
    out["scope_id"] = out["scope_id"].replace("", None)
    return out[list(FVA_COLUMNS)].reset_index(drop=True)
