"""``kpireport init DIR [--preset NAME]``: scaffold a project folder (see :mod:`kpireport.cli.project`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``init`` command."""
    from kpireport.data.sources import PRESETS

    p = sub.add_parser(
        "init",
        help="scaffold a project folder: source.yaml, goals.yaml, run definitions, notebooks",
        description="Write a project for one organisation into DIR: a commented source.yaml (or one "
        "using a CRM preset), goals.yaml with an example of every scope, copies of the run "
        "definitions and report notebooks to customise, and a README of next steps. "
        "kpireport run inside DIR uses these copies.",
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="the project folder (new or empty)")
    p.add_argument("--preset", choices=PRESETS, help="map this CRM's standard export")
    p.add_argument("--organisation", help="the organisation's name (default: from DIR)")
    p.add_argument(
        "--force", action="store_true", help="write into a non-empty DIR (existing files are kept)"
    )
    p.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    """Scaffold the project and list what was written; 0."""
    from kpireport.cli.project import init_project

    written = init_project(
        args.folder, preset=args.preset, organisation=args.organisation, force=args.force
    )
    root = args.folder
    print(f"wrote {len(written)} files into {root}:")
    for path in written:
        print(f"  {path.relative_to(root)}")
    print(f"next: read {root / 'README.md'}")
    return 0
