"""Run definitions (``params/*.yaml``): each key declared once, read and checked before any kernel starts.

A *run definition* says which notebook to execute, for which scopes (the
fan-out), for which period, in which formats and languages, and where the
outputs go. A *pack* lists several run definitions (``include:`` files and/or
inline ``runs:``) and may override their common settings. :func:`load_plan`
reads and checks the files; :func:`kpireport.report.plan.expand` turns them
into one report each, with parameters checked by
:mod:`kpireport.report.parameters`.

Design decisions
----------------
* **Every key is declared once** (:data:`RUN_KEYS`: type, default, help,
  whether a pack may set it). Validation, the "did you mean" list, the
  :class:`RunDef` defaults and the table in docs/REPORTS.md (a test compares
  it with :func:`run_keys_markdown`) all come from it.
* **Strings stay strings.** Files are read with
  :func:`kpireport.problems.read_yaml` (PyYAML's ``BaseLoader``: every scalar
  arrives as the text the user wrote; duplicate keys are an error, not "last
  one wins"); parameter values are typed later, by the notebook's declaration.
* **Every problem at once.** All runs are checked and every finding is
  reported in one :class:`~kpireport.errors.ParamsError`
  (:class:`kpireport.problems.Problems`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kpireport.constants import LANGUAGES, Scope
from kpireport.errors import KpiReportError, ParamsError
from kpireport.problems import Problems, as_list, did_you_mean, null, read_yaml
from kpireport.report.parameters import (
    CONTEXT_PARAMS,
    ParamSpec,
    check_constants,
    coerce,
    declared_parameters,
    looks_secret,
    secret_env_values,
)
from kpireport.report.plan import (
    OUTPUT_FIELDS,
    ReportSpec,
    Target,
    describe,
    duplicate_paths,
    expand,
    fanout_scopes,
    finish,
    resolve_period,
)

#: formats a run can publish (the executed notebook, KPI table and manifest always are)
FORMATS = ("html", "pdf")
FANOUTS = ("none", Scope.TEAM.value, Scope.SELLER.value)
#: the ``source`` value that asks for the built-in demo CRM (never a default)
DEMO_SOURCE = "demo"

DEFAULT_CELL_TIMEOUT = 600.0
DEFAULT_START_TIMEOUT = 60.0
DEFAULT_REPORT_TIMEOUT = 1800.0


# ------------------------------------------------------------- declaration
@dataclass(frozen=True)
class RunKey:
    """One key of a run definition: how it is written, its default and what it does.

    ``parse(value, where, problems)`` checks and converts the YAML text of the
    simple keys (the same for a run, a pack and the command line); keys with
    structure (``notebook``, ``fanout``, ``parameters``, ...) are read by
    :func:`_run_from_doc`. ``pack`` keys may be set by a pack for all of its
    runs, and by the CLI.
    """

    name: str
    type: str
    default: Any
    help: str
    pack: bool = False
    parse: Callable[[Any, str, Problems], Any] | None = None
    shown: str | None = None  # the default in words, when it is computed

    @property
    def default_text(self) -> str:
        """The default as the docs show it."""
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "–"
        if isinstance(self.default, tuple):
            return ", ".join(map(str, self.default))
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def _text(value: Any, where: str, problems: Problems) -> str:
    return str(value)


def _formats(value: Any, where: str, problems: Problems) -> tuple[str, ...]:
    out: list[str] = []
    for f in as_list(value):
        f = f.lower()
        if problems.one_of(f, FORMATS, "format", where) and f not in out:
            out.append(f)
    return tuple(out)


def _language(value: Any, where: str, problems: Problems) -> str | None:
    value = str(value)
    return value if problems.one_of(value, LANGUAGES, "language", where) else None


def _seconds(key: str, default: float) -> Callable[[Any, str, Problems], float]:
    def parse(value: Any, where: str, problems: Problems) -> float:
        return problems.seconds(value, key, where, default)

    return parse


#: every key of a run definition, in the order the docs list them
RUN_KEYS_DECLARED: tuple[RunKey, ...] = (
    RunKey("name", "text", None, "Name of the run (unique in a pack); `--only` selects it.",
           shown="the file name (`<pack>_<n>` inline)"),
    RunKey("title", "text", None, "Title shown in the report header and the pack index.",
           shown="the name, capitalised"),
    RunKey("notebook", "path", None, "The notebook to execute, relative to this file (required); "
           "it must have a cell tagged `parameters`.", shown="required"),
    RunKey("fanout", "`none`, `team`, `seller`, a list or `{team: [...]}`", "none",
           "One report for the organisation, per team, per active seller, or per listed id."),
    RunKey("scope", "`team` or `seller`", None, "What the ids of a `fanout:` list are."),
    RunKey("period", "period label", None, "The period reported on (`2026-03`, "
           "`previous-month`, ...), resolved against `as_of`; `--period` overrides it.",
           pack=True, parse=_text),
    RunKey("as_of", "date (YYYY-MM-DD)", None, "The logical date: data up to this day; "
           "`--as-of` overrides it.", pack=True, parse=_text),
    RunKey("formats", "list of `html`, `pdf`", FORMATS, "What is published besides the "
           "executed notebook, KPI table and manifest; `--format` overrides it.",
           pack=True, parse=_formats),
    RunKey("language", "`" + "`, `".join(LANGUAGES) + "`", "en",
           "Language of the report's labels, numbers and dates.", pack=True, parse=_language),
    RunKey("output", "path pattern", None, "Where the report goes inside `--out`, with "
           "fields " + ", ".join(f"`{{{f}}}`" for f in OUTPUT_FIELDS) + ".",
           shown="`{period}/{run}` (fan-out: `{period}/{run}-{scope_id}`)"),
    RunKey("parameters", "mapping", None, "Constant notebook parameters, typed by the "
           "notebook's declaration; never secrets or context parameters.", shown="none"),
    RunKey("source", "path, URL or `demo`", None, "The CRM data (a source YAML, folder, "
           "workbook or database URL), relative to this file; `--source` overrides it.",
           pack=True, parse=_text),
    RunKey("organisation", "text", None, "Organisation name shown in the header.",
           pack=True, parse=_text, shown="the data's"),
    RunKey("cell_timeout", "seconds", DEFAULT_CELL_TIMEOUT, "Longest one cell may run; a "
           "cell over it fails the report (`timeout`).", pack=True,
           parse=_seconds("cell_timeout", DEFAULT_CELL_TIMEOUT)),
    RunKey("start_timeout", "seconds", DEFAULT_START_TIMEOUT, "Longest the kernel may take "
           "to start (a start that fails is tried once more).", pack=True,
           parse=_seconds("start_timeout", DEFAULT_START_TIMEOUT)),
    RunKey("report_timeout", "seconds", DEFAULT_REPORT_TIMEOUT, "Longest a whole report "
           "may take (execute, render, publish); it is then stopped (`timeout`).", pack=True,
           parse=_seconds("report_timeout", DEFAULT_REPORT_TIMEOUT)),
)  # fmt: skip
_KEY = {k.name: k for k in RUN_KEYS_DECLARED}
#: keys of one run definition (the "did you mean" list)
RUN_KEYS = tuple(_KEY)
#: keys a pack may set for all of its runs (they override the runs' own values)
PACK_OVERRIDES = tuple(k.name for k in RUN_KEYS_DECLARED if k.pack)
PACK_KEYS = ("name", "title", "runs", "include", *PACK_OVERRIDES)


def run_keys_markdown() -> str:
    """The table of run-definition keys in docs/REPORTS.md, from :data:`RUN_KEYS_DECLARED`."""
    rows = ["| key | written as | default | pack | meaning |", "|---|---|---|---|---|"]
    for k in RUN_KEYS_DECLARED:
        default = k.default_text if k.shown else f"`{k.default_text}`"
        if k.default is None and k.shown is None:
            default = "–"
        rows.append(f"| `{k.name}` | {k.type} | {default} | {'yes' if k.pack else ''} | {k.help} |")
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------- run definitions
@dataclass
class RunDef:
    """One checked run definition (a notebook and how to fan it out); keys: :data:`RUN_KEYS`."""

    name: str
    origin: Path
    notebook: Path
    title: str
    fanout: str = _KEY["fanout"].default
    fanout_ids: list[str] | None = None
    period: str | None = _KEY["period"].default
    as_of: str | None = _KEY["as_of"].default
    formats: tuple[str, ...] = _KEY["formats"].default
    language: str = _KEY["language"].default
    output: str | None = _KEY["output"].default
    parameters: dict[str, Any] = field(default_factory=dict)
    source: str | None = _KEY["source"].default
    organisation: str | None = _KEY["organisation"].default
    cell_timeout: float = _KEY["cell_timeout"].default
    start_timeout: float = _KEY["start_timeout"].default
    report_timeout: float = _KEY["report_timeout"].default
    declared: dict[str, ParamSpec] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        """``organisation`` for a run without fan-out, else ``team`` or ``seller``."""
        return Scope.ORGANISATION.value if self.fanout == "none" else self.fanout


def _where(origin: Path, name: str) -> str:
    return f"{origin.name}" if name == origin.stem else f"{origin.name} (run '{name}')"


def _fanout(doc: Mapping[str, Any], run: RunDef, where: str, problems: Problems) -> None:
    fanout = null(doc.get("fanout"))
    scope = null(doc.get("scope"))
    if fanout is None:
        run.fanout = "none"
    elif isinstance(fanout, str):
        if problems.one_of(fanout, FANOUTS, "fanout", where):
            run.fanout = fanout
    elif isinstance(fanout, Mapping) and len(fanout) == 1:
        ((key, ids),) = fanout.items()
        if key not in (Scope.TEAM, Scope.SELLER) or not isinstance(ids, list):
            problems.append(
                f"{where}: an explicit fanout is written 'fanout: {{team: [...]}}' or 'fanout: {{seller: [...]}}'."
            )
        else:
            run.fanout, run.fanout_ids = key, [str(i) for i in ids]
    elif isinstance(fanout, list):
        if scope not in (Scope.TEAM, Scope.SELLER):
            problems.append(f"{where}: a fanout list needs 'scope: team' or 'scope: seller'.")
        else:
            run.fanout, run.fanout_ids = scope, [str(i) for i in fanout]
    else:
        problems.append(f"{where}: fanout must be none, team, seller or a list.")
    if run.fanout_ids is not None and any(not i.strip() for i in run.fanout_ids):
        problems.append(f"{where}: the fanout list has an empty name.")


def _run_from_doc(
    doc: Mapping[str, Any], origin: Path, default_name: str, problems: Problems
) -> RunDef | None:
    where = _where(origin, default_name)
    if not isinstance(doc, Mapping):
        problems.append(f"{where}: a run definition must be a mapping of keys.")
        return None
    problems.unknown_keys(doc, RUN_KEYS, where)
    name = str(null(doc.get("name")) or default_name)
    nb_raw = null(doc.get("notebook"))
    if not nb_raw or not isinstance(nb_raw, str):
        problems.append(
            f"{where}: 'notebook' is required (path of the notebook, relative to this file)."
        )
        return None
    notebook = Path(nb_raw).expanduser()
    if not notebook.is_absolute():
        notebook = (origin.parent / notebook).resolve()
    run = RunDef(
        name=name,
        origin=origin,
        notebook=notebook,
        title=str(null(doc.get("title")) or name.replace("_", " ").capitalize()),
    )
    _fanout(doc, run, where, problems)
    run.output = null(doc.get("output"))
    params = null(doc.get("parameters")) or {}
    if not isinstance(params, Mapping):
        problems.append(f"{where}: 'parameters' must be a mapping of name: value.")
        params = {}
    run.parameters = dict(params)
    pack_keys = {k: doc[k] for k in PACK_OVERRIDES if k in doc}
    if "source" in pack_keys and null(pack_keys["source"]) is not None:
        pack_keys["source"] = resolve_source_path(str(pack_keys["source"]), origin.parent)
    return _apply(run, pack_keys, problems, where)


def _apply(run: RunDef, values: Mapping[str, Any], problems: Problems, where: str) -> RunDef:
    """``run`` with the pack keys in ``values`` parsed by their declaration (nulls skipped)."""
    changes: dict[str, Any] = {}
    for key, value in values.items():
        value = null(value)
        if value is None:
            continue
        parse = _KEY[key].parse
        assert parse is not None, key  # every pack key declares its parser
        parsed = parse(value, where, problems)
        if parsed is not None:
            changes[key] = parsed
    return replace(run, **changes) if changes else run


def resolve_source_path(source: str, base: Path) -> str:
    """A ``source:`` value resolved against ``base``; URLs and :data:`DEMO_SOURCE` unchanged."""
    if source == DEMO_SOURCE or re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", source):
        return source
    p = Path(source).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def missing_sources(runs: Sequence[RunDef]) -> list[str]:
    """One sentence per run that would execute without a data source.

    A run needs a source when its notebook declares a ``source`` parameter or
    it fans out over teams or sellers. Without one the notebook would fall
    back to its default; a report about the wrong company is worse than none,
    so the demo is only ever used when asked for with ``source: demo``.
    """
    problems = []
    for run in runs:
        if run.source is None and ("source" in run.declared or run.fanout != "none"):
            problems.append(
                f"{run.origin.name} (run '{run.name}'): no data source; pass --source or set "
                f"'source:' in the run definition (source: {DEMO_SOURCE} builds it on the "
                "fictional demo company)."
            )
    return problems


def _load_file(
    path: Path, problems: Problems, seen: set[Path]
) -> tuple[list[RunDef], dict[str, Any]]:
    """Runs of one file and the overrides it sets (for packs)."""
    path = path.resolve()
    if path in seen:
        problems.append(f"{path.name}: included twice or in a cycle.")
        return [], {}
    seen.add(path)
    if not path.exists():
        problems.append(f"The run definition '{path}' does not exist.")
        return [], {}
    doc = read_yaml(path)
    if not isinstance(doc, Mapping):
        problems.append(f"{path.name}: a run definition must be a mapping of keys.")
        return [], {}
    if "runs" not in doc and "include" not in doc:
        run = _run_from_doc(doc, path, path.stem, problems)
        return ([run] if run else []), {}
    problems.unknown_keys(doc, PACK_KEYS, path.name)
    runs: list[RunDef] = []
    for inc in as_list(null(doc.get("include")) or []):
        p = Path(inc).expanduser()
        sub, sub_over = _load_file(p if p.is_absolute() else path.parent / p, problems, seen)
        runs.extend(_apply_overrides(r, sub_over, problems) for r in sub)
    inline = null(doc.get("runs")) or []
    if not isinstance(inline, list):
        problems.append(f"{path.name}: 'runs' must be a list of run definitions.")
        inline = []
    for i, item in enumerate(inline, start=1):
        default = (
            str(item.get("name"))
            if isinstance(item, Mapping) and item.get("name")
            else f"{path.stem}_{i}"
        )
        run = _run_from_doc(item, path, default, problems)
        if run:
            runs.append(run)
    overrides = {k: doc[k] for k in PACK_OVERRIDES if null(doc.get(k)) is not None}
    if "source" in overrides:
        overrides["source"] = resolve_source_path(str(overrides["source"]), path.parent)
    return runs, overrides


def _apply_overrides(run: RunDef, overrides: Mapping[str, Any], problems: Problems) -> RunDef:
    return _apply(run, overrides, problems, f"{run.origin.name} (run '{run.name}')")


def load_plan(params_path: Path | str, overrides: Mapping[str, Any] | None = None) -> list[RunDef]:
    """Read a run definition or pack, apply ``overrides`` and check every run.

    Parameters
    ----------
    params_path
        A run definition YAML or a pack (``runs:``/``include:``).
    overrides
        Settings that win over the files (the CLI's ``--period``, ``--as-of``,
        ``--format``, ``--source``); keys from :data:`PACK_OVERRIDES`.

    Returns
    -------
    list[RunDef]
        The runs, each with its notebook's declared parameters.

    Raises
    ------
    ParamsError
        Listing every problem found (unknown keys, missing notebooks, notebooks
        without a ``parameters`` cell, unknown, misspelt, secret or ill-typed
        constant parameters, invalid periods).
    """
    problems = Problems()
    runs, pack_over = _load_file(Path(params_path), problems, set())
    runs = [_apply_overrides(r, pack_over, problems) for r in runs]
    runs = [_apply_overrides(r, dict(overrides or {}), problems) for r in runs]
    names = [r.name for r in runs]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"Two runs are named '{dup}'; give each run a unique 'name'.")
    if not runs and not problems:
        problems.append(f"{Path(params_path).name}: no runs defined.")
    for run in runs:
        where = f"{run.origin.name} (run '{run.name}')"
        if not run.notebook.exists():
            problems.append(f"{where}: the notebook '{run.notebook}' does not exist.")
            continue
        try:
            run.declared = declared_parameters(run.notebook)
        except KpiReportError as exc:
            problems.append(f"{where}: {exc}")
            continue
        check_constants(run, where, problems)
    problems.raise_if_any(ParamsError, "run definition")
    return runs


__all__ = [
    "CONTEXT_PARAMS",
    "DEMO_SOURCE",
    "FANOUTS",
    "FORMATS",
    "LANGUAGES",
    "OUTPUT_FIELDS",
    "PACK_KEYS",
    "PACK_OVERRIDES",
    "RUN_KEYS",
    "RUN_KEYS_DECLARED",
    "ParamSpec",
    "ReportSpec",
    "RunDef",
    "RunKey",
    "Target",
    "coerce",
    "declared_parameters",
    "describe",
    "did_you_mean",
    "duplicate_paths",
    "expand",
    "fanout_scopes",
    "finish",
    "load_plan",
    "looks_secret",
    "missing_sources",
    "read_yaml",
    "resolve_period",
    "resolve_source_path",
    "run_keys_markdown",
    "secret_env_values",
]
