"""The ``kpireport`` command line (docs/ARCHITECTURE.md).

Each group of sub-commands lives in its own module with a ``register(sub)``
function that adds its parsers; every parser sets ``func(args) -> int``.
User errors (:class:`~kpireport.errors.KpiReportError`) are printed to stderr as
one sentence per problem with a non-zero exit code; set ``KPIREPORT_DEBUG=1``
to see the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from kpireport._version import __version__
from kpireport.errors import KpiReportError

#: sub-command modules, in the order their commands appear in ``--help``
COMMAND_MODULES = (
    "kpireport.cli.init",
    "kpireport.cli.data",
    "kpireport.cli.kpis",
    "kpireport.cli.forecast",
    "kpireport.cli.report",
    "kpireport.cli.demo",
    "kpireport.cli.schedule",
    "kpireport.cli.serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpireport",
        description="B2B sales KPIs, goal follow-up and forecasts from CRM data.",
    )
    parser.add_argument("--version", action="version", version=f"kpireport {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a stage not built yet
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from kpireport.secrets import MaskingStream, install_log_masking, mask_secrets

    install_log_masking()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskingStream(out), MaskingStream(err)  # no secret reaches a terminal
    try:
        return int(args.func(args) or 0)
    except KpiReportError as exc:
        if os.environ.get("KPIREPORT_DEBUG"):
            print(mask_secrets(traceback.format_exc()), file=sys.stderr, end="")
        print(f"error: {mask_secrets(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; every report process was stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        sys.stdout, sys.stderr = out, err


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
