"""KPI commands: ``kpireport kpis`` (docs/ARCHITECTURE.md).

``kpireport kpis --source S --period P [--by SCOPE] [--kpi NAME]... [--as-of D]
[--breakdown source] [--format table|csv|json]`` computes KPIs;
``kpireport kpis --list`` shows the registry with each KPI's exact definition.

Design decisions
----------------
* JSON is exactly a list of records ``{kpi, scope, scope_id, period, value}``
  (``scope_id`` null for the organisation, NaN -> null), so other tools can
  rely on the shape. CSV has the same five columns plus ``unit`` and ``note``;
  text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
  ``@``, tab, CR) are prefixed with ``'``.
* ``--breakdown source`` (docs/KPIS.md) breaks the lead KPIs (``new_leads``,
  ``sql``, ``lead_conversion``; the default KPI set then) down by the lead's
  source: JSON records then also carry ``"source"`` (only then, so the plain
  record shape is unchanged), CSV gets the ``source`` column after ``value``,
  the table a ``source`` column after ``scope_id``.
* ``--as-of`` defaults to today (the CLI is the only place that reads the
  clock, through :func:`kpireport.cli.data.cli_default_as_of`).
* :func:`register` adds one parser per command so that the goals commands can
  be registered from this module next to it (``_register_kpis`` is one of
  possibly several ``_register_*`` helpers).
* ``kpireport goals --source S [--goals FILE] [--as-of D] [--scope SCOPE]
  [--current] [--no-forecast] [--format table|csv|json]`` evaluates goals
  (docs/GOALS.md): JSON is a list of records with the columns of
  :data:`kpireport.goals.RESULT_COLUMNS` (NaN -> null); CSV the same columns
  (formula-like text neutralised); the table a readable subset (actual,
  expected, forecast, 80 % interval, probability, status, lint).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TextIO

import pandas as pd

from kpireport.cli import args as opts
from kpireport.cli.data import load_source
from kpireport.cli.output import fmt_value as _fmt
from kpireport.cli.output import goal_records, write_machine_readable
from kpireport.constants import KPI_COLUMNS, Scope
from kpireport.errors import GoalError, KpiError

FORMATS = ("table", "csv", "json")
#: ``--breakdown`` choices; mirrors :data:`kpireport.kpis.compute.BREAKDOWNS`
#: (kept literal so that building the parser does not import the KPI engine)
BREAKDOWNS = ("source",)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the KPI and goal sub-commands to the top-level parser."""
    _register_kpis(sub)
    _register_goals(sub)


def _register_kpis(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kpis",
        help="compute KPIs for a period and scope",
        description=(
            "Compute KPIs (docs/KPIS.md) for a period and a scope from a CRM source. "
            "Use --list to see every KPI with its definition."
        ),
    )
    opts.add_source(p)
    p.add_argument(
        "--period",
        metavar="PERIOD",
        action="append",
        help="2026, 2026-Q4, 2026-10, 2026-W43, 2026-10-15, current-month, previous-month, ...;"
        " repeat for several periods (computed in one pass)",
    )
    opts.add_by(p, "scope of the rows (default: organisation)")
    p.add_argument(
        "--kpi",
        action="append",
        dest="kpis",
        metavar="NAME",
        help="KPI name; repeat for several (default: all KPIs defined for the scope)",
    )
    opts.add_as_of(
        p, "reference day: resolves relative periods, cuts periods to date (default: today)"
    )
    p.add_argument(
        "--breakdown",
        choices=list(BREAKDOWNS),
        help="break the lead KPIs (new_leads, sql, lead_conversion) down by lead source",
    )
    opts.add_format(p, FORMATS)
    p.add_argument(
        "--list", action="store_true", help="list the KPIs with their definitions and exit"
    )
    p.set_defaults(func=run_kpis)


def run_kpis(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute ``kpireport kpis``; returns the exit code."""
    out = out or sys.stdout
    if args.list:
        _write_registry(args.format, out)
        return 0
    missing = [
        flag for flag, value in (("--source", args.source), ("--period", args.period)) if not value
    ]
    if missing:
        raise KpiError(
            f"kpireport kpis needs {' and '.join(missing)}.",
            hint="Example: kpireport kpis --source data/ --period 2026-10 (or --list).",
        )
    from kpireport.kpis import compute_kpis

    data, as_of = load_source(args)
    df = compute_kpis(
        data,
        args.period,
        by=args.by,
        kpis=args.kpis,
        as_of=as_of,
        breakdown=getattr(args, "breakdown", None),
    )
    # the CLI's CSV/JSON contract: kpi, scope, scope_id, period, value (+ unit, note)
    df = df.drop(columns=["name", "period_start", "complete"], errors="ignore")
    write_result(df, args.format, out)
    return 0


def records(df: pd.DataFrame) -> list[dict[str, object]]:
    """The docs/ARCHITECTURE.md JSON records of a :func:`~kpireport.kpis.compute_kpis` frame.

    A breakdown frame (``source`` column) adds ``"source"`` to every record.
    """
    out = []
    extra = [c for c in BREAKDOWNS if c in df.columns]
    for row in df.loc[:, [*KPI_COLUMNS, *extra]].itertuples(index=False):
        kpi, scope, scope_id, period, value = row[:5]
        rec: dict[str, object] = {
            "kpi": str(kpi),
            "scope": str(scope),
            "scope_id": None if pd.isna(scope_id) or scope == Scope.ORGANISATION else str(scope_id),
            "period": str(period),
            "value": None if value is None or math.isnan(value) else float(value),
        }
        for name, v in zip(extra, row[5:], strict=True):
            rec[name] = None if pd.isna(v) else str(v)
        out.append(rec)
    return out


def write_result(df: pd.DataFrame, fmt: str, out: TextIO) -> None:
    """Write a KPI frame as ``table``, ``csv`` or ``json``."""
    if write_machine_readable(df, fmt, out, records):
        return
    extra = [c for c in BREAKDOWNS if c in df.columns]
    frame = df.loc[:, ["kpi", "scope_id", *extra, "period", "value", "unit", "note"]].copy()
    frame["scope_id"] = frame["scope_id"].fillna("—")
    frame["value"] = [_fmt(v, u) for v, u in zip(df["value"], df["unit"], strict=True)]
    frame["note"] = frame["note"].fillna("")
    out.write(frame.to_string(index=False) + "\n")


def _write_registry(fmt: str, out: TextIO) -> None:
    from kpireport.kpis import list_kpis

    reg = list_kpis()
    if fmt == "json":
        json.dump(reg.reset_index().to_dict(orient="records"), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        reg.to_csv(out)
    else:
        for name, row in reg.iterrows():
            kind = "additive" if row["additive"] else "not additive"
            out.write(
                f"{name} — {row['label']} [{row['category']}; {row['unit']}, "
                f"{row['better']} is better, {kind}]\n"
            )
            out.write(f"  tables: {row['tables']}; scopes: {row['scopes']}\n")
            for line in str(row["definition"]).splitlines():
                out.write(f"    {line}\n".rstrip() + "\n")
            out.write("\n")


# ---------------------------------------------------------------------- goals
#: columns of the ``goals`` table output
GOAL_TABLE_COLUMNS = (
    "goal_id", "kpi", "scope_id", "period", "target", "actual", "expected", "forecast",
    "lo_80", "hi_80", "probability", "status", "lint",
)  # fmt: skip


def _register_goals(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "goals",
        help="follow up goals: pace, forecast, probability, status, lint",
        description=(
            "Evaluate goals (docs/GOALS.md) at an as-of date: actual to date, expected pace, "
            "forecast with its 80 %% interval, probability of reaching the target, "
            "status and SMART lint. Goals come from --goals FILE or the source's goals table."
        ),
    )
    opts.add_source(p)
    p.add_argument("--goals", metavar="FILE", help="YAML goals file (default: the source's goals)")
    opts.add_as_of(p, "follow-up day (default: today)")
    p.add_argument("--scope", choices=[s.value for s in Scope], help="only goals of this scope")
    p.add_argument(
        "--current", action="store_true", help="only goals whose period contains the as-of day"
    )
    p.add_argument(
        "--no-forecast",
        dest="forecast",
        action="store_false",
        help="skip forecasts (faster; status from pace)",
    )
    opts.add_format(p, FORMATS)
    p.set_defaults(func=run_goals)
    from kpireport.cli.goal_setting import register_subcommands

    register_subcommands(p)


def run_goals(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute ``kpireport goals``; returns the exit code."""
    out = out or sys.stdout
    if not args.source:
        raise GoalError(
            "kpireport goals needs --source.",
            hint="Example: kpireport goals --source data/ --as-of 2026-11-20.",
        )
    from kpireport.goals import evaluate_goals

    data, as_of = load_source(args)
    df = evaluate_goals(
        data,
        args.goals,
        as_of=as_of,
        forecast=args.forecast,
        scope=args.scope,
        current_only=args.current,
    )
    write_goals(df, args.format, out)
    return 0


def write_goals(df: pd.DataFrame, fmt: str, out: TextIO) -> None:
    """Write a goal frame as ``table``, ``csv`` or ``json``."""
    if write_machine_readable(df, fmt, out, goal_records):
        return
    if df.empty:
        out.write("No goals.\n")
        return
    frame = df.loc[:, list(GOAL_TABLE_COLUMNS)].copy()
    frame["scope_id"] = frame["scope_id"].fillna("—")
    for col in ("target", "actual", "expected", "forecast", "lo_80", "hi_80"):
        frame[col] = [_fmt(v, u) for v, u in zip(df[col], df["unit"], strict=True)]
    frame["probability"] = [_fmt(v, "percent") for v in df["probability"]]
    frame["lint"] = frame["lint"].fillna("")
    out.write(frame.to_string(index=False) + "\n")
