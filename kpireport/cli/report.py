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

from kpireport.cli import args as opts


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
    opts.add_as_of(p, "logical date (default: today)")
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
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="build only shard I of N (a stable split by report id; for batch jobs, "
        "see docs/SCALING.md)",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the planned reports and their shard, execute nothing",
    )
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="where reports run: local processes (default) or a Dask cluster",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler (tcp://host:8786); without it --executor dask starts a "
        "LocalCluster of --jobs workers",
    )
    p.add_argument(
        "--snapshots",
        metavar="PATH_OR_URL",
        help="folder, file:// URL or fsspec URL (s3://bucket/kpi, needs fsspec and s3fs) for "
        "the data snapshot, reachable by every worker (default: the cache folder)",
    )
    p.add_argument(
        "--warm-kernels",
        type=int,
        default=0,
        metavar="N",
        help="start N reports' kernels ahead of their turn (per Dask worker with --executor "
        "dask), report modules imported (one kernel per report, never reused)",
    )
    p.set_defaults(func=cmd_run)

    k = sub.add_parser(
        "collect",
        help="check a pack is complete and write its index.html",
        description="Check that every planned report of the runs (or shards) written into OUT "
        "is published, and write OUT/index.html. Exits 1 listing the reports that are missing "
        "or failed.",
    )
    k.add_argument("out", metavar="OUT", help="the output folder of the run or its shards")
    k.add_argument("--pack", help="only this pack (the run definition's name)")
    k.set_defaults(func=cmd_collect)

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
    from kpireport.report.pack import parse_shard
    from kpireport.report.runner import plan_reports, run
    from kpireport.resources import find_run_definition

    plan = find_run_definition(args.params, project=args.project)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()] if args.formats else None
    shard = parse_shard(args.shard)
    common: dict[str, Any] = dict(
        source=args.source,
        period=args.period,
        as_of=checked_as_of(args.as_of),
        default_as_of=dt.date.today().isoformat(),  # the CLI's default (docs/PERIODS.md), when no file sets as_of
        out=args.out,
        only=args.only,
        formats=formats,
    )
    if args.plan:
        print_plan(plan_reports(plan, **common), shard)
        return 0
    progress = Progress(sys.stderr)
    try:
        result = run(
            plan,
            **common,
            jobs=args.jobs,
            force=args.force,
            on_report=progress,
            wait=args.wait,
            shard=shard,
            executor=args.executor,
            scheduler=args.scheduler,
            snapshots=args.snapshots,
            warm_kernels=args.warm_kernels,
        )
    finally:
        progress.close()
    print(result.summary())
    if not result.ok:
        names = ", ".join(r.report_id for r in result.failed)
        print(
            f"error: {len(result.failed)} report(s) failed: {names} (kept in {result.out / 'failed'})",
            file=sys.stderr,
        )
        return 1
    return 0


def print_plan(specs: Any, shard: tuple[int, int] | None) -> None:
    """One line per planned report: shard, report id, scope, period (``--plan``)."""
    from kpireport.report.pack import shard_of

    n = shard[1] if shard else 1
    rows = [("shard", "report", "scope", "period")]
    mine = 0
    for s in specs:
        k = shard_of(s.report_id, n)
        mark = "*" if shard and k == shard[0] else ""
        mine += bool(mark)
        scope = s.scope if s.scope_id is None else f"{s.scope} {s.scope_id}"
        rows.append((f"{k}/{n}{mark}", s.report_id, scope, s.period))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
    tail = f"; {mine} in shard {shard[0]}/{n} (marked *)" if shard else ""
    print(f"{len(specs)} planned report(s){tail}")


class Progress:
    """Reports done / failed / remaining as they finish.

    On a terminal a tqdm bar with the estimated time left; otherwise (cron,
    CI, a pipe) one plain line per report.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar: Any = None
        self.failed = 0

    def __call__(self, res: Any, done: int, total: int) -> None:
        if not res.ok:
            self.failed += 1
        if not self.tty:
            secs = sum(res.timings.values())
            extra = f"  {res.error_kind}: {res.error}" if res.error else ""
            print(
                f"[{done}/{total}] {res.status:<7} {res.report_id} ({secs:.1f} s){extra}",
                file=self.stream,
                flush=True,
            )
            return
        from tqdm import tqdm

        if self.bar is None:  # reports already up to date count as done
            self.bar = tqdm(
                total=total, initial=done - 1, file=self.stream, unit="report",
                dynamic_ncols=True, smoothing=0.1,
            )  # fmt: skip
        if not res.ok:
            self.bar.write(
                f"failed  {res.report_id}  {res.error_kind}: {res.error}", file=self.stream
            )
        self.bar.set_postfix_str(
            f"done {done - self.failed}, failed {self.failed}, remaining {total - done}",
            refresh=False,
        )
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_collect(args: argparse.Namespace) -> int:
    """Check every planned report is published and write the index; 0 when complete, 1 otherwise."""
    from kpireport.report.pack import collect

    result = collect(args.out, args.pack)
    total = sum(len(g) for g in result.states.values())
    for s in result.missing:
        why = f" ({s.error_kind}: {s.error})" if s.status == "failed" else ""
        print(f"{s.status:<8} {s.planned.report_id}{why}", file=sys.stderr)
    print(
        f"{total - len(result.missing)} of {total} planned report(s) published; "
        f"index: {result.index}"
    )
    if result.missing:
        print(
            f"error: {len(result.missing)} planned report(s) not published (listed above).",
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
