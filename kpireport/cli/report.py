"""``kpireport run PARAMS.yaml``: build the reports of a run definition or pack (docs/REPORTS.md, docs/ARCHITECTURE.md).

The only place in the report stage that reads the clock: without ``--as-of``
the logical date is today (docs/PERIODS.md), and it is recorded in every manifest so a
re-run with the same ``--as-of`` gives the same period.

``PARAMS`` is a file or a bare name (``team_monthly``): a project folder's own
``params/`` (written by ``kpireport init``) wins over the packaged run
definitions (:func:`kpireport.resources.find_run_definition`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add the ``run`` command to the CLI's sub-parsers."""
    p = sub.add_parser(
        "run",
        help="build reports from a run definition (params/*.yaml)",
        description="Execute report notebooks for every scope of a run definition or pack, "
        "render HTML/PDF and publish them atomically. Exits non-zero when any report failed.",
    )
    p.add_argument(
        "params",
        metavar="PARAMS.yaml",
        help="run definition or pack: a file, or a name (team_monthly) looked up in the "
        "project's params/ and then among the packaged ones",
    )
    p.add_argument("--source", help="data source (folder, workbook, database URL or source YAML)")
    p.add_argument(
        "--project",
        metavar="DIR",
        help="project folder (kpireport init) whose params/ and notebooks/ are used "
        "(default: the current folder)",
    )
    p.add_argument("--period", help="period label, absolute (2026-03) or relative (previous-month)")
    p.add_argument("--as-of", dest="as_of", help="logical date YYYY-MM-DD (default: today)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument(
        "--only",
        action="append",
        metavar="SCOPE_ID",
        help="only this team/seller id or run name (repeatable)",
    )
    p.add_argument("--format", dest="formats", help="comma-separated formats: html,pdf")
    p.add_argument("--jobs", type=int, help="reports executed at once (default: CPU cores)")
    p.add_argument("--force", action="store_true", help="rebuild reports that are up to date")
    p.add_argument(
        "--wait",
        action="store_true",
        help="when another run writes into the same --out, wait for it (default: exit 75)",
    )
    p.set_defaults(func=cmd_run)

    c = sub.add_parser(
        "clean",
        help="remove cached data snapshots (KPIREPORT_CACHE)",
        description="Remove the data snapshots report runs keep in the cache folder "
        "($KPIREPORT_CACHE, default the user cache folder); snapshots a running run uses are kept.",
    )
    c.set_defaults(func=cmd_clean)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the reports and print a summary; 0 when all succeeded, 1 otherwise."""
    from kpireport.cli.data import checked_as_of
    from kpireport.report.runner import ReportResult, run

    def progress(res: ReportResult, done: int, total: int) -> None:
        secs = sum(res.timings.values())
        extra = f"  {res.error_kind}: {res.error}" if res.error else ""
        print(
            f"[{done}/{total}] {res.status:<7} {res.report_id} ({secs:.1f} s){extra}",
            file=sys.stderr,
            flush=True,
        )

    from kpireport.resources import find_run_definition

    plan = find_run_definition(args.params, project=args.project)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()] if args.formats else None
    result = run(
        plan,
        source=args.source,
        period=args.period,
        as_of=checked_as_of(args.as_of),
        default_as_of=dt.date.today().isoformat(),  # the CLI's default (docs/PERIODS.md), when no file sets as_of
        out=args.out,
        only=args.only,
        formats=formats,
        jobs=args.jobs,
        force=args.force,
        on_report=progress,
        wait=args.wait,
    )
    print(result.summary())
    if not result.ok:
        names = ", ".join(r.report_id for r in result.failed)
        print(
            f"error: {len(result.failed)} report(s) failed: {names} (kept in {result.out / 'failed'})",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove every cached data snapshot not in use; 0."""
    from kpireport.report.snapshot import clean_snapshots, snapshots_dir

    removed, in_use = clean_snapshots()
    print(f"removed {len(removed)} data snapshot(s) from {snapshots_dir()}")
    if in_use:
        print(f"kept {len(in_use)} in use by a running report run")
    return 0
