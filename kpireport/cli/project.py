"""``kpireport init DIR``: scaffold a project folder for one organisation.

Layout written (nothing outside ``DIR``)::

    DIR/
      README.md             next steps
      source.yaml           where the CRM export is and how it maps (commented)
      presets/NAME.yaml     with --preset: a copy of the preset, to edit
      goals.yaml            SMART goals, with a commented example of every scope
      data/                 put the export here
      params/*.yaml         copies of the packaged run definitions, source: ../source.yaml
      notebooks/*.ipynb     copies of the report notebooks (and their jupytext .py pairs)
      reports/              kpireport run writes here

Design decisions
----------------
* **The project's copies win.** ``kpireport run team_monthly`` in ``DIR``
  finds ``DIR/params/team_monthly.yaml`` first
  (:func:`kpireport.resources.find_run_definition`), whose
  ``notebook: ../notebooks/team_report.ipynb`` is the project's copy; a run
  definition the project deleted falls back to the packaged one.
* **Never overwrites.** A non-empty ``DIR`` is refused unless ``force``; even
  then existing files are kept (only missing ones are written), so re-running
  ``init`` after an upgrade adds new notebooks without touching edited ones.
* The run definitions get ``source: ../source.yaml`` so ``kpireport run NAME``
  needs no ``--source`` inside the project (``--source`` still overrides).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from kpireport.errors import ParamsError
from kpireport.resources import resource_dir

SOURCE_TEMPLATE = """\
# Where your CRM export is and how its names map onto kpireport's contract.
# Reference: docs/DATA.md in the kpireport repository (tables, columns, what validation checks).
# Check it with:  kpireport validate source.yaml
path: data/                  # folder of CSV/Parquet files (or a workbook: data/crm.xlsx)
# url: postgresql://reader@db.example.com/crm   # ...or a database instead of path:
# password_env: CRM_DB_PASSWORD                 # the password comes from this environment variable
{preset_line}organisation: {organisation}
timezone: UTC                # IANA zone of your calendar, e.g. Europe/Stockholm
# currency: EUR              # reporting currency (ISO 4217)
# gross_margin: 0.6          # used by CLV
# date_format: "%d/%m/%Y"    # only if your export writes day/month dates
# decimal: ","               # and thousands: " " for 1 234,50
goals: goals.yaml            # SMART goals (or a goals table in the export)
{tables}"""

TABLES_PLAIN = """\
# Map your CRM's names when they differ from the canonical ones (canonical: yours):
# tables:
#   sellers:
#     table: Users
#     columns: {seller_id: User Id, name: Full Name, team: Sales Team}
#   deals:
#     table: Opportunities
#     columns: {deal_id: Opportunity ID, seller_id: Owner, status: Stage, value: Amount}
#     values:
#       status: {Closed Won: won, Closed Lost: lost, Prospecting: open}
"""

TABLES_PRESET = """\
# Anything set here overrides presets/{name}.yaml, e.g.:
# tables:
#   deals:
#     values:
#       stage: {{Verbal Commit: negotiation}}
"""

GOALS_TEMPLATE = """\
# SMART goals: one per KPI, scope and period. Reference: docs/REPORTS.md and docs/DATA.md (goals).
# kpi:       a KPI name (kpireport kpis --list): won_value, deals_won, new_leads, hit_rate, ...
# scope:     organisation | team | seller | customer
# scope_id:  the team name, seller_id or company_id (not for organisation)
# period:    an absolute period: 2027-01, 2027-Q1, 2027-W05, 2027
# target:    a number in the KPI's unit (fractions for rates: 0.3 is 30 %)
# direction: at_least (default) or at_most (lower is better, e.g. sales_cycle_days)
# owner, agreed_by: who is accountable and who agreed the target
goals: []
# Remove the [] above and uncomment to start:
# goals:
#   - kpi: won_value                 # the whole organisation
#     scope: organisation
#     period: 2027-Q1
#     target: 750000
#     owner: Sales director
#     agreed_by: Management team
#   - kpi: deals_won                 # one team (scope_id: the team as in sellers.team)
#     scope: team
#     scope_id: Enterprise
#     period: 2027-01
#     target: 12
#     owner: Head of Enterprise
#   - kpi: meetings_booked           # one seller (scope_id: sellers.seller_id)
#     scope: seller
#     scope_id: S001
#     period: 2027-01
#     target: 20
#   - kpi: sales_cycle_days          # lower is better
#     scope: team
#     scope_id: SMB
#     period: 2027-Q1
#     target: 30
#     direction: at_most
#   - kpi: revenue                   # one customer (scope_id: companies.company_id)
#     scope: customer
#     scope_id: C0000001
#     period: 2027
#     target: 120000
"""

README_TEMPLATE = """\
# KPI reports for {organisation}

Scaffolded by `kpireport init`{preset_note}. Next steps:

1. **Export your CRM** into `data/` (one file per table: `deals.csv`, `sellers.csv`, ...;
   see docs/DATA.md in the kpireport repository for the tables and columns{preset_files}).
2. **Map it** in `source.yaml` (timezone, currency, your column and status names), then check:

       kpireport validate source.yaml --as-of 2026-12-01

3. **Set goals** in `goals.yaml` (an example of every scope is in the comments).
4. **Look at the numbers** in a notebook: `jupyter lab notebooks/explore.ipynb`
   (set `source = "../source.yaml"` in its parameters cell), or:

       kpireport kpis --source source.yaml --period previous-month --by team

5. **Build the reports** (from this folder; the run definitions in `params/` already
   point at `source.yaml`):

       kpireport run team_monthly --as-of 2026-12-01 --out reports
       kpireport run monthly_pack --out reports

Customise: edit the notebooks in `notebooks/` (each report is a notebook; see
docs/REPORTS.md) and the run definitions in `params/` (period, formats, language,
output names). Files you delete here fall back to the ones shipped with kpireport.
Schedule delivery with `params/schedules.yaml` (docs/SCHEDULING.md).
"""


def init_project(
    folder: str | Path,
    *,
    preset: str | None = None,
    organisation: str | None = None,
    force: bool = False,
) -> list[Path]:
    """Scaffold a kpireport project in ``folder``; return the files written.

    Parameters
    ----------
    folder
        The project folder; created when missing. A non-empty folder is
        refused unless ``force`` (existing files are then kept as they are).
    preset
        ``salesforce``, ``hubspot``, ``pipedrive`` or ``dynamics``: the source
        YAML uses a copy of that preset (``presets/NAME.yaml``).
    organisation
        The organisation's name in the reports (default: the folder's name).

    Raises
    ------
    ParamsError
        When the folder is not empty (without ``force``) or is a file.
    SourceError
        For an unknown preset (the message lists the valid ones).
    """
    root = Path(folder).expanduser()
    if root.exists() and not root.is_dir():
        raise ParamsError(f"'{root}' exists and is not a folder.")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise ParamsError(
            f"The folder '{root}' is not empty; choose a new folder or pass --force "
            "(existing files are kept)."
        )
    org = organisation or root.resolve().name.replace("-", " ").replace("_", " ").title()
    written: list[Path] = []

    def put(rel: str, text: str) -> None:
        path = root / rel
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    preset_line, tables, preset_note, preset_files = "", TABLES_PLAIN, "", ""
    if preset:
        from kpireport.data.sources import preset_path

        src = preset_path(preset)
        name = src.stem
        put(f"presets/{name}.yaml", src.read_text(encoding="utf-8"))
        preset_line = (
            f"preset: presets/{name}.yaml   # a copy of the {name} preset: edit it freely\n"
        )
        tables = TABLES_PRESET.format(name=name)
        preset_note = f" with the {name} preset"
        preset_files = f"; the files the {name} preset expects are listed in presets/{name}.yaml"
    put(
        "source.yaml",
        SOURCE_TEMPLATE.format(
            preset_line=preset_line, organisation=_yaml_text(org), tables=tables
        ),
    )
    put("goals.yaml", GOALS_TEMPLATE)
    put(
        "README.md",
        README_TEMPLATE.format(
            organisation=org, preset_note=preset_note, preset_files=preset_files
        ),
    )
    for sub in ("data", "reports"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    put("data/.gitkeep", "")
    put(".gitignore", "reports/\n.ipynb_checkpoints/\n")
    for path in sorted(resource_dir("params").glob("*.yaml")):
        put(f"params/{path.name}", _with_project_source(path.read_text(encoding="utf-8")))
    for path in sorted(resource_dir("notebooks").iterdir()):
        if path.suffix == ".ipynb" or (
            path.suffix == ".py" and path.with_suffix(".ipynb").exists()
        ):
            target = root / "notebooks" / path.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                written.append(target)
    return written


def _yaml_text(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9 ._-]+", text) else '"' + text.replace('"', '\\"') + '"'


def _with_project_source(text: str) -> str:
    """A packaged run definition pointed at the project's ``source.yaml``."""
    if re.search(r"^source:", text, flags=re.M):
        return re.sub(r"^source:.*$", "source: ../source.yaml", text, flags=re.M)
    if re.search(r"^jobs:", text, flags=re.M):  # schedules.yaml: every job's source
        return re.sub(r"^(\s+source:)\s*\S+", r"\1 ../source.yaml", text, flags=re.M)
    lines = text.splitlines(keepends=True)
    at = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines)
    )
    lines.insert(
        at, "source: ../source.yaml       # the project's data (kpireport run --source overrides)\n"
    )
    return "".join(lines)
