"""Data commands: ``kpireport validate SOURCE`` and ``kpireport demo-data --out DIR``.

``validate`` prints one sentence per problem (``error: ...``) and per warning
(``warning: ...``) on stderr and a one-line summary with the table sizes on
stdout. Exit codes: 0 valid (warnings allowed), 1 invalid data or unreadable
source, 2 usage error (e.g. the path does not exist).

:func:`cli_default_as_of` is the one place in kpireport that reads the clock;
every library function takes ``as_of`` explicitly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kpireport.cli import args as opts
from kpireport.errors import DataContractError, SourceError

if TYPE_CHECKING:
    from kpireport.data.model import CrmData


def cli_default_as_of() -> dt.date:
    """Today's date: the CLI's default ``--as-of`` (the only clock read in kpireport)."""
    return dt.date.today()


def checked_as_of(text: str | None, option: str = "--as-of") -> str | None:
    """``text`` as an ISO date, or ``None``; a bad date is one sentence, not a traceback.

    Called by ``run``, ``kpis``, ``goals`` and ``forecast`` before anything is
    loaded (argparse's own type errors would print the usage block too).

    Raises
    ------
    ParamsError
        ``--as-of '2026-13-45' is not a valid date (month must be in 1..12); expected YYYY-MM-DD.``
    """
    from kpireport.errors import ParamsError

    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(str(text).strip())
    except ValueError as exc:
        reason = str(exc) if "must be" in str(exc) or "out of range" in str(exc) else ""
        raise ParamsError(
            f"{option} '{text}' is not a valid date{f' ({reason})' if reason else ''}; "
            "expected YYYY-MM-DD."
        ) from None
    return day.isoformat()


def load_source(args: argparse.Namespace) -> tuple[CrmData, str]:
    """``(data, as_of)`` for a command's ``--source`` and ``--as-of`` (default: today).

    A bad ``--as-of`` is one sentence (:func:`checked_as_of`)
    before anything is loaded.
    """
    from kpireport.data.load import load

    as_of = checked_as_of(args.as_of) or cli_default_as_of()
    return load(args.source, as_of=as_of), as_of


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``validate`` and ``demo-data`` sub-commands."""
    p = sub.add_parser(
        "validate",
        help="check a CRM source against the data contract",
        description=(
            "Load SOURCE (a folder of CSV/Parquet files, an Excel workbook, a database URL or a "
            "source YAML) and report every problem and warning, one sentence each. "
            "Exit code 0: valid; 1: invalid; 2: usage error."
        ),
    )
    p.add_argument("source", metavar="SOURCE", help=opts.SOURCE_HELP)
    opts.add_as_of(
        p, "reference day for future-date and overdue-deal warnings (default: today)", as_date=True
    )
    p.add_argument(
        "--timezone",
        default=None,
        metavar="TZ",
        help="organisation time zone, e.g. Europe/Stockholm (default: the source's, else UTC)",
    )
    p.add_argument(
        "--date-format",
        default=None,
        metavar="FMT",
        help='format of day/month dates, e.g. "%%d/%%m/%%Y" (ISO dates are always accepted)',
    )
    p.set_defaults(func=cmd_validate)

    from kpireport.demo import DEFAULT_SEED, FORMATS  # one seed for the CLI and the notebooks

    d = sub.add_parser(
        "demo-data",
        help="write a realistic fictional CRM dataset",
        description="Write the seeded demo CRM (every table of the data contract) to DIR.",
    )
    d.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder (file for sqlite/xlsx)",
    )
    d.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"random seed (default {DEFAULT_SEED}, as for kpireport demo and the notebooks)",
    )
    d.add_argument("--scale", type=_positive_float, default=1.0, help="size multiplier (default 1)")
    d.add_argument(
        "--format", choices=FORMATS, default="csv", dest="fmt", help="file format (default csv)"
    )
    opts.add_as_of(d, "last day of the data (default: today)", as_date=True)
    d.set_defaults(func=cmd_demo_data)


def _missing_path(source: str) -> bool:
    from kpireport.data.sources import looks_like_url

    return not looks_like_url(source) and not Path(source).expanduser().exists()


def cmd_validate(args: argparse.Namespace) -> int:
    """Run ``kpireport validate``; return the exit code."""
    from kpireport.data.load import load
    from kpireport.goals.check import GOAL_TABLE_RULES

    if _missing_path(args.source):
        print(f"error: the source '{args.source}' does not exist.", file=sys.stderr)
        return 2
    as_of = args.as_of or cli_default_as_of()
    try:
        # both stages: the data contract and the goal table's KPI names
        data = load(
            args.source,
            timezone=args.timezone,
            date_format=args.date_format,
            as_of=as_of,
            rules=GOAL_TABLE_RULES,
        )
    except DataContractError as exc:
        for p in exc.problems:
            print(f"error: {p.sentence()}", file=sys.stderr)
        for w in exc.warnings:
            print(f"warning: {w.sentence()}", file=sys.stderr)
        n = len(exc.problems)
        print(f"invalid: {n} problem{'s' if n != 1 else ''}, {len(exc.warnings)} warning(s).")
        return 1
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for w in data.warnings:
        print(f"warning: {w.sentence()}", file=sys.stderr)
    sizes = ", ".join(f"{name} {n:,}" for name, n in data.row_counts().items())
    print(f"valid: {data.source} ({sizes}); {len(data.warnings)} warning(s).")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    """Run ``kpireport demo-data``; return the exit code."""
    from kpireport.demo import write_demo

    as_of = args.as_of or cli_default_as_of()
    written = write_demo(args.out, seed=args.seed, scale=args.scale, fmt=args.fmt, as_of=as_of)
    print(f"demo data written to {written}")
    return 0
