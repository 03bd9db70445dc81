"""``kpireport serve``: the live dashboard (docs/ARCHITECTURE.md), and ``--add-user`` for its users file.

The dashboard's "today" is ``--as-of``, defaulting to the real date read in
:func:`kpireport.cli.data.cli_default_as_of` (the one clock read, docs/PERIODS.md).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from kpireport.cli import args as opts


def register(sub: Any) -> None:
    """Add the ``serve`` command."""
    p = sub.add_parser(
        "serve",
        help="serve the live KPI dashboard (Panel)",
        description="Serve the live dashboard: organisation overview, team, seller and goal pages "
        "with development curves, goals and pipeline. Without --auth it listens on 127.0.0.1 only. "
        "See docs/DASHBOARD.md.",
    )
    p.add_argument("--source", help="data source (folder, workbook, database URL or source YAML)")
    p.add_argument("--demo", metavar="DIR", type=Path,
                   help="serve the demo CRM as of --as-of, (re)written into DIR unless it holds exactly that")  # fmt: skip
    p.add_argument("--goals", help="goals file (YAML/CSV) instead of the source's goals table")
    p.add_argument(
        "--port", type=int, default=8050, help="TCP port (default 8050; 0 = any free port)"
    )
    p.add_argument("--address", default=None,
                   help="address to bind with --auth (default 0.0.0.0); without --auth always 127.0.0.1")  # fmt: skip
    p.add_argument("--auth", metavar="USERS.yaml", help="users file: require a login, grant scopes")
    opts.add_as_of(p, "the dashboard's today (default: the real date)", as_date=True)
    p.add_argument("--ttl", type=float, default=900,
                   help="seconds between re-reads of a database source (default 900)")  # fmt: skip
    p.add_argument("--allow-websocket-origin", action="append", dest="origins", metavar="HOST[:PORT]",
                   help="public host name behind a reverse proxy (repeatable)")  # fmt: skip
    p.add_argument("--prefix", default="", help="URL prefix behind a reverse proxy (e.g. /kpi)")
    p.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                   help="do not precompute the default pages at start")  # fmt: skip
    g = p.add_argument_group("users (with --auth)")
    g.add_argument("--add-user", metavar="NAME",
                   help="add or replace NAME in the --auth file (asks for the password) and exit")  # fmt: skip
    g.add_argument("--scope", action="append", default=[], metavar="SCOPE",
                   help="scope granted to --add-user: organisation, team:<team>, seller:<id> (repeatable)")  # fmt: skip
    g.add_argument("--password-stdin", action="store_true",
                   help="read the --add-user password from standard input (scripts)")  # fmt: skip
    p.set_defaults(func=cmd_serve)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"Password for {args.add_user}: ")
    if getpass.getpass("Repeat the password: ") != first:
        from kpireport.dashboard.access import AccessError

        raise AccessError("The two passwords differ; nothing was written.")
    return first


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``kpireport serve`` (or ``--add-user``)."""
    from kpireport.dashboard.access import AccessError, add_user, load_users

    if args.add_user:
        if not args.auth:
            raise AccessError("--add-user needs --auth USERS.yaml (the file to write).")
        add_user(args.auth, args.add_user, _password(args), list(args.scope))
        print(f"user {args.add_user} written to {args.auth} (scopes: {', '.join(args.scope)})")
        return 0
    try:
        import panel  # noqa: F401
    except ImportError:
        raise AccessError(
            "The dashboard needs Panel.", hint="pip install 'kpireport[dashboard]'"
        ) from None
    from kpireport.cli.data import cli_default_as_of
    from kpireport.dashboard.server import serve

    as_of = args.as_of or cli_default_as_of()
    source = args.source
    if args.demo:
        from kpireport.demo import demo_source

        print(f"the demo CRM (as of {as_of}) in {args.demo} …", file=sys.stderr)
        source = str(demo_source(args.demo, as_of=as_of.isoformat()))
    if not source:
        raise AccessError("kpireport serve needs --source SRC (or --demo DIR).")
    users = load_users(args.auth) if args.auth else None
    serve(
        source,
        as_of=as_of,
        goals=args.goals,
        port=args.port,
        address=args.address,
        users=users,
        ttl=args.ttl,
        websocket_origins=args.origins,
        prefix=args.prefix,
        warm_up=args.warm_up,
    )
    return 0
