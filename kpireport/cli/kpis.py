"""KPI commands: ``kpireport kpis`` (SPEC §8).

``kpireport kpis --source S --period P [--by SCOPE] [--kpi NAME]... [--as-of D]
[--format table|csv|json]`` computes KPIs; ``kpireport kpis --list`` shows the
registry with each KPI's exact definition.

Design decisions
----------------
* JSON is exactly a list of records ``{kpi, scope, scope_id, period, value}``
  (``scope_id`` null for the organisation, NaN -> null), so other tools can
  rely on the shape. CSV has the same five columns plus ``unit`` and ``note``;
  text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
  ``@``, tab, CR) are prefixed with ``'``.
* ``--as-of`` defaults to today (the CLI is the only place that reads the
  clock, through :func:`kpireport.cli.data.cli_default_as_of`).
* :func:`register` adds one parser per command so that the goals commands can
  be registered from this module next to it (``_register_kpis`` is one of
  possibly several ``_register_*`` helpers).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import TextIO

import pandas as pd

from kpireport.constants import KPI_COLUMNS, Scope
from kpireport.errors import KpiError

FORMATS = ("table", "csv", "json")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the KPI sub-commands to the top-level parser."""
    _register_kpis(sub)


def _register_kpis(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kpis",
        help="compute KPIs for a period and scope",
        description=(
            "Compute KPIs (SPEC §3) for a period and a scope from a CRM source. "
            "Use --list to see every KPI with its definition."
        ),
    )
    p.add_argument("--source", metavar="SOURCE", help="folder, .xlsx, .yaml or database URL")
    p.add_argument(
        "--period",
        metavar="PERIOD",
        help="2026, 2026-Q4, 2026-10, 2026-W43, 2026-10-15, current-month, previous-month, ...",
    )
    p.add_argument(
        "--by",
        default=Scope.ORGANISATION.value,
        choices=[s.value for s in Scope],
        help="scope of the rows (default: organisation)",
    )
    p.add_argument(
        "--kpi",
        action="append",
        dest="kpis",
        metavar="NAME",
        help="KPI name; repeat for several (default: all KPIs defined for the scope)",
    )
    p.add_argument(
        "--as-of",
        dest="as_of",
        metavar="YYYY-MM-DD",
        help="reference day: resolves relative periods, cuts periods to date (default: today)",
    )
    p.add_argument(
        "--format", default="table", choices=FORMATS, help="output format (default: table)"
    )
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
    from kpireport.data.load import load
    from kpireport.kpis import compute_kpis

    as_of = args.as_of
    if as_of is None:
        from kpireport.cli.data import cli_default_as_of

        as_of = cli_default_as_of()
    data = load(args.source, as_of=as_of)
    df = compute_kpis(data, args.period, by=args.by, kpis=args.kpis, as_of=as_of)
    write_result(df, args.format, out)
    return 0


def records(df: pd.DataFrame) -> list[dict[str, object]]:
    """The SPEC §8 JSON records of a :func:`~kpireport.kpis.compute_kpis` frame."""
    out = []
    for kpi, scope, scope_id, period, value in df.loc[:, list(KPI_COLUMNS)].itertuples(index=False):
        out.append(
            {
                "kpi": str(kpi),
                "scope": str(scope),
                "scope_id": None
                if pd.isna(scope_id) or scope == Scope.ORGANISATION
                else str(scope_id),
                "period": str(period),
                "value": None if value is None or math.isnan(value) else float(value),
            }
        )
    return out


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def write_result(df: pd.DataFrame, fmt: str, out: TextIO) -> None:
    """Write a KPI frame as ``table``, ``csv`` or ``json``."""
    if fmt == "json":
        json.dump(records(df), out, indent=2, ensure_ascii=False, allow_nan=False)
        out.write("\n")
        return
    if fmt == "csv":
        frame = df.copy()
        for col in frame.columns:
            if frame[col].dtype.kind not in "fiub":
                frame[col] = frame[col].map(_safe_cell, na_action="ignore")
        frame.to_csv(out, index=False)
        return
    frame = df.loc[:, ["kpi", "scope_id", "period", "value", "unit", "note"]].copy()
    frame["scope_id"] = frame["scope_id"].fillna("—")
    frame["value"] = [_fmt(v, u) for v, u in zip(df["value"], df["unit"], strict=True)]
    frame["note"] = frame["note"].fillna("")
    out.write(frame.to_string(index=False) + "\n")


def _fmt(value: float, unit: str) -> str:
    if value is None or math.isnan(value):
        return "–"
    if unit == "percent":
        return f"{value:.1%}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "days":
        return f"{value:,.1f}"
    return f"{value:,.2f}"


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
                f"{name} — {row['label']} [{row['unit']}, {row['better']} is better, {kind}]\n"
            )
            out.write(f"  tables: {row['tables']}; scopes: {row['scopes']}\n")
            for line in str(row["definition"]).splitlines():
                out.write(f"    {line}\n".rstrip() + "\n")
            out.write("\n")
