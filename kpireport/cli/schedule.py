"""``kpireport schedule list|run|crontab`` and ``kpireport history`` (issue 6).

The only place in the schedule stage that reads the clock: without ``--now``
the current time picks the next fire times (``list``) and, without
``--logical-date``, the logical date of ``run`` (the local date of the job's
latest fire time, so a run started late still builds the period its fire
time implied).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path
from typing import Any

from kpireport.errors import ScheduleError

DEFAULT_SCHEDULES = "params/schedules.yaml"


def _now(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.UTC)  # the CLI's default (docs/PERIODS.md)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(
            f"--now '{text}' is not an ISO date-time (2026-12-01T06:00:00Z)."
        ) from None
    if value.tzinfo is None:
        raise ScheduleError(f"--now '{text}' needs a time zone (Z or +01:00).")
    return value


def register(sub: Any) -> None:
    """Add the ``schedule`` and ``history`` commands to the CLI's sub-parsers."""
    p = sub.add_parser(
        "schedule",
        help="scheduled delivery: list jobs, run one, print crontab lines",
        description="Jobs are defined in a schedule file (default params/schedules.yaml).",
    )
    ssub = p.add_subparsers(dest="schedule_command", metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--schedules", default=DEFAULT_SCHEDULES, help="schedule file (default: %(default)s)"
        )

    q = ssub.add_parser("list", help="jobs and their next fire times")
    common(q)
    q.add_argument("--now", help="count from this time (ISO, with zone; default: now)")
    q.add_argument("-n", type=int, default=3, help="fire times per job (default: 3)")
    q.set_defaults(func=cmd_list)

    q = ssub.add_parser("run", help="run one job for its logical date and deliver it")
    common(q)
    q.add_argument("job", metavar="JOB")
    q.add_argument(
        "--logical-date",
        dest="logical_date",
        help="YYYY-MM-DD (default: date of the latest fire time)",
    )
    q.add_argument(
        "--now",
        help="with no --logical-date: take the latest fire time before this (ISO, with zone)",
    )
    q.add_argument("--force", action="store_true", help="deliver again even if already delivered")
    q.add_argument(
        "--rebuild", action="store_true", help="also rebuild reports that are up to date"
    )
    q.set_defaults(func=cmd_run)

    q = ssub.add_parser("crontab", help="print crontab lines that run every job")
    common(q)
    q.add_argument("--command", help="kpireport executable (default: the one running now)")
    q.add_argument("--log-dir", help="append each job's output to LOG_DIR/JOB.log")
    q.set_defaults(func=cmd_crontab)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    h = sub.add_parser("history", help="show the run history of scheduled jobs")
    h.add_argument(
        "--schedules", default=DEFAULT_SCHEDULES, help="schedule file (default: %(default)s)"
    )
    h.add_argument("--out", help="output folder holding history.sqlite (default: every job's)")
    h.add_argument("--job", help="only this job")
    h.add_argument("--deliveries", action="store_true", help="list deliveries instead of runs")
    h.set_defaults(func=cmd_history)


def cmd_list(args: argparse.Namespace) -> int:
    from kpireport.schedule.config import load_schedules
    from kpireport.schedule.cron import next_fire_times

    config = load_schedules(args.schedules)
    now = _now(args.now)
    for job in config.jobs.values():
        times = next_fire_times(job.cron, job.timezone, now, args.n)
        print(f"{job.name}  [{job.cron}  {job.timezone}]  {job.params.name}")
        for t in times:
            print(f"    {t.isoformat()}  ({t.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)")
        groups = ", ".join(f"{g.key} ({len(g.to)})" for g in job.groups) or "none"
        print(f"    recipients: {groups}; alerts: {', '.join(job.owners)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from kpireport.schedule.config import load_schedules
    from kpireport.schedule.cron import logical_date
    from kpireport.schedule.runner import run_job

    config = load_schedules(args.schedules)
    job = config.job(args.job)
    day = args.logical_date or logical_date(job.cron, job.timezone, _now(args.now)).isoformat()
    result = run_job(config, job.name, logical_date=day, force=args.force, rebuild=args.rebuild)
    print(result.summary())
    if not result.ok:
        print(
            f"error: job '{job.name}' for {result.period} failed: " + "; ".join(result.errors),
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_crontab(args: argparse.Namespace) -> int:
    from kpireport.schedule.config import load_schedules
    from kpireport.schedule.cron import crontab_lines

    config = load_schedules(args.schedules)
    command = (
        args.command
        or shutil.which("kpireport")
        or str(Path(sys.executable).with_name("kpireport"))
    )
    lines = crontab_lines(
        [(j.name, j.cron, j.timezone) for j in config.jobs.values()],
        schedules=config.path, command=command, workdir=Path.cwd(),
        log_dir=Path(args.log_dir).resolve() if args.log_dir else None,
    )  # fmt: skip
    print("\n".join(lines))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    import pandas as pd

    from kpireport.history.store import History, db_path

    if args.out:
        outs = [Path(args.out)]
    else:
        from kpireport.schedule.config import load_schedules

        config = load_schedules(args.schedules)
        outs = sorted({j.out for j in config.jobs.values() if args.job in (None, j.name)})
        if args.job and not outs:
            config.job(args.job)  # raises with "did you mean"
    frames = []
    for out in outs:
        if not db_path(out).is_file():
            continue
        h = History(out)
        df = h.table("deliveries") if args.deliveries else h.runs(args.job)
        if args.deliveries and args.job:
            df = df[df["job"] == args.job]
        frames.append(df)
    if not frames or all(f.empty for f in frames):
        print("no runs recorded yet" + (f" for job '{args.job}'" if args.job else ""))
        return 0
    df = pd.concat(frames, ignore_index=True)
    if args.deliveries:
        cols = ["delivery_id", "run_id", "job", "period", "kind", "group_key", "recipients", "status",
                "attempts", "mode", "at", "error"]  # fmt: skip
    else:
        cols = ["run_id", "job", "period", "logical_date", "started_at", "ended_at", "status", "built",
                "current", "failed", "sent", "unsent", "alerts", "version", "error"]  # fmt: skip
    with pd.option_context(
        "display.max_columns", None, "display.width", 200, "display.max_colwidth", 60
    ):
        print(df[cols].to_string(index=False))
    return 0
