"""``kpireport demo``: write the demo CRM and build its monthly report pack (docs/ARCHITECTURE.md, ``make demo``).

Steps: write the seeded demo dataset as Parquet into ``OUT/data`` (data up to
and including ``--as-of``; a folder already holding exactly that data, by its
stamp, is reused: :func:`kpireport.demo.demo_source`), then run the packaged ``monthly_pack.yaml`` (every team,
every seller, the management pack and the finance report) for the latest
complete month (``previous-month`` relative to ``--as-of``) into ``OUT/reports``,
and print where the pack is with a short summary.

Design decisions
----------------
* **The clock is read once**, by :func:`kpireport.cli.data.cli_default_as_of`,
  when ``--as-of`` is not given.
* **Run definitions ship in the package** (``kpireport/resources/params``,
  found with :mod:`importlib.resources`), so the demo works from a plain wheel
  install outside any checkout; ``KPIREPORT_PARAMS`` overrides the folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from kpireport.cli import args as opts
from kpireport.constants import LANGUAGES
from kpireport.errors import ParamsError

PACK = "monthly_pack.yaml"


def params_dir() -> Path:
    """The folder holding the run definitions of the demo pack.

    ``KPIREPORT_PARAMS`` when set, else the packaged ``kpireport/resources/params``.

    Raises
    ------
    ParamsError
        When that folder has no ``monthly_pack.yaml``.
    """
    from kpireport.resources import resource_dir

    folder = (
        Path(os.environ["KPIREPORT_PARAMS"])
        if os.environ.get("KPIREPORT_PARAMS")
        else resource_dir("params")
    )
    if not (folder / PACK).is_file():
        raise ParamsError(
            f"The report definitions ({PACK}) were not found in {folder}.",
            hint="Unset KPIREPORT_PARAMS or point it at a folder holding monthly_pack.yaml.",
        )
    return folder


def register(sub: Any) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser(
        "demo",
        help="write the demo CRM and build its monthly report pack",
        description="Write a realistic demo CRM (Parquet) to OUT/data and build the monthly pack "
        "(every team, every seller, management, finance) for the latest complete month into OUT/reports.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), metavar="DIR",
                   help="output folder (default: demo-output)")  # fmt: skip
    opts.add_as_of(p, "last day of the demo data; the pack covers the month before (default: today)",
                   as_date=True)  # fmt: skip
    p.add_argument(
        "--jobs", type=int, default=None, help="reports built at once (default: CPU cores)"
    )
    p.add_argument(
        "--language", choices=LANGUAGES, default=None, help="report language (default en)"
    )
    p.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--force", action="store_true", help="rebuild reports that are up to date")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run ``kpireport demo``; 0 when every report was published."""
    from kpireport.cli.data import cli_default_as_of
    from kpireport.demo import demo_source
    from kpireport.report.runner import ReportResult, run

    as_of = (args.as_of or cli_default_as_of()).isoformat()
    out = Path(args.out).expanduser().resolve()
    t0 = time.perf_counter()
    source = demo_source(
        out / "data", as_of=as_of, scale=args.scale
    )  # stamped, see kpireport.demo.source
    t_data = time.perf_counter() - t0
    print(f"demo data (Nordlys Systems Oy, as of {as_of}) in {source.parent}", flush=True)

    plan = params_dir() / PACK
    if args.language:
        plan = _with_language(plan, args.language, out)

    def progress(res: ReportResult, done: int, total: int) -> None:
        extra = f"  {res.error_kind}: {res.error}" if res.error else ""
        print(
            f"[{done}/{total}] {res.status:<7} {res.report_id}{extra}", file=sys.stderr, flush=True
        )

    result = run(plan, source=str(source), period="previous-month", as_of=as_of,
                 out=out / "reports", jobs=args.jobs, force=args.force, on_report=progress)  # fmt: skip
    elapsed = time.perf_counter() - t0
    pdfs = sorted(
        result.out / p for r in result.reports for k, p in r.outputs.items() if k == "pdf"
    )
    n_ok = sum(r.status != "failed" for r in result.reports)
    period = result.reports[0].period if result.reports else "?"
    print()
    print(f"Demo report pack for {period}: {n_ok} of {len(result.reports)} reports ready "
          f"in {elapsed:.0f} s (data {t_data:.1f} s).")  # fmt: skip
    print(f"  folder:      {result.out / period}")
    mgmt = [p for p in pdfs if "management" in p.name]
    if mgmt:
        print(f"  start with:  {mgmt[0]}")
    print(
        "  contents:    management pack, finance growth report, one report per team, "
        "one scorecard per seller (HTML + PDF, KPI tables as CSV, manifests)"
    )
    if not result.ok:
        names = ", ".join(r.report_id for r in result.failed)
        print(f"error: {len(result.failed)} report(s) failed: {names} (kept in {result.out / 'failed'})",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _with_language(plan: Path, language: str, out: Path) -> Path:
    """A copy of the pack that sets ``language`` (run definitions resolve notebooks relative to their file)."""
    text = plan.read_text(encoding="utf-8")
    folder = out / ".work"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# generated by kpireport demo --language {language}",
        "include:",
        *[
            f"  - {(plan.parent / line.split('-', 1)[1].strip()).as_posix()}"
            for line in text.splitlines()
            if line.strip().startswith("- ")
        ],  # fmt: skip
        "period: previous-month",
        "formats: [html, pdf]",
        f"language: {language}",
    ]
    path = folder / f"monthly_pack_{language}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
