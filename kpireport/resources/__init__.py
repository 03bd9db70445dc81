"""Files shipped inside the package: report notebooks, run definitions, HTML/PDF template, presets.

Layout (one source of truth, inside the package so the wheel is complete)::

    kpireport/resources/notebooks/   report notebooks (jupytext-paired .py + .ipynb)
    kpireport/resources/params/      run definitions (team_monthly.yaml, monthly_pack.yaml, ...)
    kpireport/resources/templates/   the nbconvert template ``kpireport`` (HTML and PDF)
    kpireport/resources/presets/     CRM presets for source YAMLs (salesforce.yaml, ...)

Design decisions
----------------
* **Found through** :mod:`importlib.resources`, never through paths relative
  to a source checkout, so a plain ``pip install`` (wheel, outside any checkout)
  finds them exactly as an editable install does. The package is installed as
  files on disk (setuptools wheels are not zip-safe here: papermill and
  nbconvert need real paths); a zipped install is refused with one sentence.
* **A project folder wins.** :func:`find_run_definition` looks for a run
  definition first as a path, then in the project's own ``params/`` (the
  folder ``kpireport init`` writes), then among the packaged ones. The
  packaged run definitions name their notebooks relative to their own file
  (``../notebooks/team_report.ipynb``), so a project's copies use the
  project's notebooks and the packaged ones the packaged notebooks.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from kpireport.errors import ParamsError

Kind = Literal["notebooks", "params", "templates", "presets"]
KINDS: tuple[str, ...] = ("notebooks", "params", "templates", "presets")


def resource_dir(kind: Kind) -> Path:
    """The packaged folder of one kind of resource, as a real path.

    Parameters
    ----------
    kind
        ``"notebooks"``, ``"params"``, ``"templates"`` or ``"presets"``.

    Raises
    ------
    ParamsError
        For an unknown kind, or when the package is not installed as files.
    """
    if kind not in KINDS:
        raise ParamsError(f"Unknown resource kind {kind!r}; valid kinds: {', '.join(KINDS)}.")
    root = resources.files(__name__) / kind
    path = Path(str(root))
    if not path.is_dir():
        raise ParamsError(
            f"The packaged {kind} folder is missing ({path}); reinstall kpireport from its wheel "
            "(pip install --force-reinstall kpireport)."
        )
    return path


def packaged_run_definitions() -> dict[str, Path]:
    """Packaged run definitions by name (``team_monthly`` → its YAML path), without schedules."""
    folder = resource_dir("params")
    return {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.stem != "schedules"}


def find_run_definition(name: str | Path, project: str | Path | None = None) -> Path:
    """Resolve a run definition given as a path or a bare name.

    Order: an existing file at ``name``; ``<project>/params/<name>[.yaml]``
    (``project`` defaults to the current directory); the packaged run
    definition of that name.

    Parameters
    ----------
    name
        ``params/team_monthly.yaml``, ``team_monthly.yaml`` or ``team_monthly``.
    project
        The project folder (``kpireport init``); default the current directory.

    Raises
    ------
    ParamsError
        When nothing matches; the message lists the packaged names.
    """
    given = Path(name).expanduser()
    if given.is_file():
        return given
    stem = given.name[:-5] if given.name.endswith(".yaml") else given.name
    if stem.endswith(".yml"):
        stem = stem[:-4]
    base = Path(project).expanduser() if project is not None else Path.cwd()
    for candidate in (base / "params" / f"{stem}.yaml", base / "params" / f"{stem}.yml"):
        if candidate.is_file():
            return candidate
    shipped = packaged_run_definitions()
    if stem in shipped and given.parent in (Path("."), Path("params")):
        return shipped[stem]
    raise ParamsError(
        f"The run definition '{name}' was not found (as a file, in {base / 'params'}, "
        f"or among the packaged ones: {', '.join(shipped)})."
    )
