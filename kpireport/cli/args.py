"""The options several commands share, declared once (``--source``, ``--as-of``, ``--format``, ``--by``).

Each command's ``register`` calls these so that an option reads the same in
every ``--help`` and is parsed the same way (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence

from kpireport.constants import Scope

SOURCE_HELP = "folder, .xlsx, .yaml or database URL"


def date_arg(text: str) -> dt.date:
    """argparse ``type`` of a day written ``YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (expected YYYY-MM-DD)") from None


def add_source(
    p: argparse.ArgumentParser, *, required: bool = False, help: str = SOURCE_HELP
) -> None:
    """``--source SOURCE``: where the CRM data is."""
    p.add_argument("--source", required=required, metavar="SOURCE", help=help)


def add_as_of(p: argparse.ArgumentParser, help: str, *, as_date: bool = False) -> None:
    """``--as-of YYYY-MM-DD`` (text checked later by :func:`kpireport.cli.data.checked_as_of`,
    or a :class:`datetime.date` with ``as_date``)."""
    p.add_argument(
        "--as-of",
        dest="as_of",
        type=date_arg if as_date else None,
        default=None,
        metavar="YYYY-MM-DD",
        help=help,
    )


def add_format(
    p: argparse.ArgumentParser, choices: Sequence[str], *, default: str = "table"
) -> None:
    """``--format`` of a command's printed output."""
    p.add_argument(
        "--format", default=default, choices=choices, help=f"output format (default: {default})"
    )


def add_by(p: argparse.ArgumentParser, help: str = "scope (default: organisation)") -> None:
    """``--by organisation|team|seller|customer``: the scope of the rows."""
    p.add_argument(
        "--by", default=Scope.ORGANISATION.value, choices=[s.value for s in Scope], help=help
    )
