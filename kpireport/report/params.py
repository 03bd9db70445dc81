"""Run definitions (``params/*.yaml``) and parameter validation, before any kernel starts.

A *run definition* says which notebook to execute, for which scopes (the
fan-out), for which period, in which formats and languages, and where the
outputs go. A *pack* lists several run definitions (``include:`` files and/or
inline ``runs:``) and may override their common settings. :func:`load_plan`
reads and checks the files; :func:`expand` turns them into one
:class:`ReportSpec` per report with its final, typed parameters.

Design decisions
----------------
* **Strings stay strings.** YAML files are read with PyYAML's ``BaseLoader``,
  which resolves no implicit types: every scalar arrives as the text the user
  wrote. Each value is then converted by *the notebook's declared type*
  (annotation, else the type of the default): ``team: 007`` stays ``"007"`` and
  ``country: NO`` stays ``"NO"`` for string parameters, while ``top_n: 007``
  becomes ``7`` for an ``int`` parameter. An untyped parameter with a ``None``
  default keeps the text (annotate it, e.g. ``limit: int | None = None``, to get
  another type). Duplicate keys in a mapping are an error, not "last one wins".
* **The notebook declares what it accepts.** Declared parameters come from
  ``papermill.inspect_notebook`` (the cell tagged ``parameters``); a notebook
  without one is refused. Unknown names are refused with a "did you mean"
  (papermill itself only warns and runs with the default: a report for the
  wrong period). Context parameters (``period``, ``as_of``, ``language``,
  ``source`` and the fan-out scope ``team``/``seller``) are injected only when
  the notebook declares them; the fan-out scope must be declared.
* **Only JSON primitives are injected** (``str``, ``int``, finite ``float``,
  ``bool``, ``None``); lists, mappings and anything else are refused, so a value
  can never become code.
* **Periods are resolved once, from the logical date.** A relative period
  (``previous-month``) is resolved with :func:`kpireport.periods.parse_period`
  against the run's ``as_of``, and the notebook receives the absolute label;
  invalid labels (``2024-13``) are refused here.
* **Secrets are never parameters.** Names that look like credentials
  (password, token, secret, api key, ...) are refused, and so is any value
  equal to the value of such an environment variable. Environment values are
  never expanded into parameters.
* **Every problem at once.** All runs and all reports are checked and every
  finding is reported in one :class:`~kpireport.errors.ParamsError`.
"""

from __future__ import annotations

import ast
import difflib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kpireport.errors import KpiReportError, ParamsError
from kpireport.history.store import db_path
from kpireport.periods import parse_period
from kpireport.report.slug import MAX_SLUG, resolve_inside, short_hash, slug, slug_path

#: formats a run can publish (the executed notebook, KPI table and manifest always are)
FORMATS = ("html", "pdf")
LANGUAGES = ("en", "nl")
FANOUTS = ("none", "team", "seller")
#: keys of one run definition
RUN_KEYS = (
    "name",
    "title",
    "notebook",
    "fanout",
    "scope",
    "period",
    "as_of",
    "formats",
    "language",
    "output",
    "parameters",
    "source",
    "organisation",
    "cell_timeout",
    "start_timeout",
    "report_timeout",
)
#: keys a pack may set for all of its runs (they override the runs' own values)
PACK_OVERRIDES = (
    "period",
    "as_of",
    "formats",
    "language",
    "source",
    "organisation",
    "cell_timeout",
    "start_timeout",
    "report_timeout",
)
PACK_KEYS = ("name", "title", "runs", "include", *PACK_OVERRIDES)
#: the ``source`` value that asks for the built-in demo CRM (never a default)
DEMO_SOURCE = "demo"
#: parameters filled by the runner, never under ``parameters:``
CONTEXT_PARAMS = (
    "period", "as_of", "language", "source", "team", "seller", "output_root", "history",
)  # fmt: skip
#: placeholders allowed in an output pattern
OUTPUT_FIELDS = (
    "period",
    "as_of",
    "language",
    "run",
    "scope",
    "scope_id",
    "name",
    "team",
    "seller",
)

DEFAULT_CELL_TIMEOUT = 600.0
DEFAULT_START_TIMEOUT = 60.0
DEFAULT_REPORT_TIMEOUT = 1800.0

_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_INT = re.compile(r"^[-+]?\d+$")
_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "credential",
    "private_key",
    "privatekey",
)
_SECRET_EXACT = {"pwd", "pass", "auth"}
#: environment variables that look like credentials but are not (``PWD`` is the working directory)
_NOT_SECRET_ENV = {"PWD", "OLDPWD"}


def looks_secret(name: str) -> bool:
    """True when a parameter or environment variable name looks like a credential."""
    low = str(name).lower().replace("-", "_")
    return low in _SECRET_EXACT or any(w in low for w in _SECRET_WORDS)


def secret_env_values(extra_names: Iterable[str] = ()) -> dict[str, str]:
    """Environment variables that hold secrets: credential-like names plus ``extra_names``.

    Values shorter than 4 characters are ignored (too short to recognise).
    """
    names = {n for n in os.environ if looks_secret(n) and n not in _NOT_SECRET_ENV} | set(
        extra_names
    )
    return {n: os.environ[n] for n in sorted(names) if len(os.environ.get(n, "")) >= 4}


# ------------------------------------------------------------------ YAML
class _StrictLoader(yaml.BaseLoader):
    """``BaseLoader`` (every scalar is text) that refuses duplicate keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise ParamsError(
                f"Duplicate key '{key}' at line {key_node.start_mark.line + 1} of {node.start_mark.name}."
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Read a YAML file with every scalar kept as text (see module docstring)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ParamsError(f"The run definition '{path}' cannot be read: {exc.strerror}.") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - BaseLoader builds only str/list/dict
    except yaml.YAMLError as exc:
        raise ParamsError(f"The run definition '{path}' is not valid YAML: {exc}") from None


def _none(v: Any) -> Any:
    return None if isinstance(v, str) and v.strip() in _NULLS else v


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ------------------------------------------------------- declared params
@dataclass(frozen=True)
class ParamSpec:
    """One parameter a notebook declares in its ``parameters`` cell.

    ``kind`` is ``str``, ``int``, ``float``, ``bool``, ``any`` (untyped ``None``
    default: text is kept) or ``unsupported`` (a list/dict parameter).
    """

    name: str
    kind: str
    nullable: bool
    default: Any = None


_TYPE_NAMES = {"str": "str", "int": "int", "float": "float", "bool": "bool"}


def _spec_from_inspect(name: str, info: Mapping[str, Any]) -> ParamSpec:
    default_src = str(info.get("default") or "None")
    try:
        default = ast.literal_eval(default_src)
        literal = True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        default, literal = None, False
    annotation = str(info.get("inferred_type_name") or "None").replace(" ", "")
    if annotation != "None":
        m = re.fullmatch(r"Optional\[(\w+)\]", annotation)
        parts = [m[1], "None"] if m else annotation.split("|")
        nullable = "None" in parts or default is None
        kinds = {_TYPE_NAMES.get(p, "unsupported") for p in parts if p != "None"}
        kind = kinds.pop() if len(kinds) == 1 else "unsupported"
        return ParamSpec(name, kind, nullable, default)
    if not literal or default is None:
        return ParamSpec(name, "any", True, default)
    for typ, kind in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if isinstance(default, typ):
            return ParamSpec(name, kind, False, default)
    return ParamSpec(name, "unsupported", False, default)


def declared_parameters(notebook: Path) -> dict[str, ParamSpec]:
    """The parameters a notebook declares, by name.

    Raises
    ------
    ParamsError
        When the notebook cannot be read or has no cell tagged ``parameters``.
    """
    import nbformat
    import papermill

    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except (OSError, ValueError) as exc:
        raise ParamsError(f"The notebook '{notebook}' cannot be read: {exc}") from None
    if not any("parameters" in (c.get("metadata", {}).get("tags") or []) for c in nb.cells):
        raise ParamsError(
            f"The notebook '{notebook}' has no cell tagged 'parameters'.",
            hint="Tag the cell that sets the default parameters with 'parameters'.",
        )
    found = papermill.inspect_notebook(str(notebook))
    return {name: _spec_from_inspect(name, info) for name, info in found.items()}


def coerce(name: str, value: Any, spec: ParamSpec) -> Any:
    """Convert a YAML/CLI value to the type ``spec`` declares.

    Raises
    ------
    ValueError
        With a sentence saying what was expected.
    """
    if isinstance(value, (list, tuple, dict, set)):
        raise ValueError(f"parameter '{name}' must be a single value, not a {type(value).__name__}")
    if spec.kind == "unsupported":
        raise ValueError(
            f"parameter '{name}' is declared with a type that cannot be set from a run definition"
        )
    if value is None or (isinstance(value, str) and spec.kind != "str" and value.strip() in _NULLS):
        if spec.nullable:
            return None
        raise ValueError(f"parameter '{name}' needs a {spec.kind} value, got nothing")
    if spec.kind in ("str", "any"):
        if isinstance(value, str):
            return value
        if spec.kind == "any" and isinstance(value, (bool, int, float)):
            return _finite(name, value)
        raise ValueError(f"parameter '{name}' must be text, got {value!r}")
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"parameter '{name}' must be true or false, got {value!r}")
    if spec.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT.match(value.strip()):
            return int(value.strip())
        raise ValueError(f"parameter '{name}' must be a whole number, got {value!r}")
    # float
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(name, float(value))
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
        if number is not None:
            return _finite(name, number)
    raise ValueError(f"parameter '{name}' must be a number, got {value!r}")


def _finite(name: str, v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"parameter '{name}' must be a finite number, got {v!r}")
    return v


# ---------------------------------------------------------- run definitions
@dataclass
class RunDef:
    """One checked run definition (a notebook and how to fan it out)."""

    name: str
    origin: Path
    notebook: Path
    title: str
    fanout: str = "none"
    fanout_ids: list[str] | None = None
    period: str | None = None
    as_of: str | None = None
    formats: tuple[str, ...] = FORMATS
    language: str = "en"
    output: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    organisation: str | None = None
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    start_timeout: float = DEFAULT_START_TIMEOUT
    report_timeout: float = DEFAULT_REPORT_TIMEOUT
    declared: dict[str, ParamSpec] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        """``organisation`` for a run without fan-out, else ``team`` or ``seller``."""
        return "organisation" if self.fanout == "none" else self.fanout


@dataclass(frozen=True)
class ReportSpec:
    """One report to produce: a notebook, its final parameters and its output name."""

    report_id: str
    run: str
    title: str
    notebook: Path
    scope: str
    scope_id: str | None
    scope_name: str
    period: str
    as_of: str
    language: str
    formats: tuple[str, ...]
    parameters: dict[str, Any]
    cell_timeout: float
    start_timeout: float
    report_timeout: float


def _check_keys(
    doc: Mapping[str, Any], allowed: Sequence[str], where: str, problems: list[str]
) -> None:
    for key in doc:
        if key not in allowed:
            problems.append(f"{where}: unknown key '{key}'{did_you_mean(key, allowed)}.")


def _as_list(v: Any) -> list[str]:
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    if isinstance(v, list):
        return [str(s).strip() for s in v]
    return []


def _float(v: Any, key: str, where: str, problems: list[str], default: float) -> float:
    v = _none(v)
    if v is None:
        return default
    try:
        f = float(v)
        if not math.isfinite(f) or f <= 0:
            raise ValueError
        return f
    except (TypeError, ValueError):
        problems.append(f"{where}: '{key}' must be a positive number of seconds, got {v!r}.")
        return default


def _run_from_doc(
    doc: Mapping[str, Any], origin: Path, default_name: str, problems: list[str]
) -> RunDef | None:
    where = (
        f"{origin.name}" if default_name == origin.stem else f"{origin.name} (run '{default_name}')"
    )
    if not isinstance(doc, Mapping):
        problems.append(f"{where}: a run definition must be a mapping of keys.")
        return None
    _check_keys(doc, RUN_KEYS, where, problems)
    name = str(_none(doc.get("name")) or default_name)
    nb_raw = _none(doc.get("notebook"))
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
        title=str(_none(doc.get("title")) or name.replace("_", " ").capitalize()),
    )

    fanout = _none(doc.get("fanout"))
    scope = _none(doc.get("scope"))
    if fanout is None:
        run.fanout = "none"
    elif isinstance(fanout, str):
        if fanout not in FANOUTS:
            problems.append(
                f"{where}: fanout '{fanout}' is not one of {', '.join(FANOUTS)}{did_you_mean(fanout, FANOUTS)}."
            )
        else:
            run.fanout = fanout
    elif isinstance(fanout, Mapping) and len(fanout) == 1:
        ((key, ids),) = fanout.items()
        if key not in ("team", "seller") or not isinstance(ids, list):
            problems.append(
                f"{where}: an explicit fanout is written 'fanout: {{team: [...]}}' or 'fanout: {{seller: [...]}}'."
            )
        else:
            run.fanout, run.fanout_ids = key, [str(i) for i in ids]
    elif isinstance(fanout, list):
        if scope not in ("team", "seller"):
            problems.append(f"{where}: a fanout list needs 'scope: team' or 'scope: seller'.")
        else:
            run.fanout, run.fanout_ids = scope, [str(i) for i in fanout]
    else:
        problems.append(f"{where}: fanout must be none, team, seller or a list.")
    if run.fanout_ids is not None:
        bad = [i for i in run.fanout_ids if isinstance(i, str) and not i.strip()]
        if bad:
            problems.append(f"{where}: the fanout list has an empty name.")

    run.period = _none(doc.get("period"))
    run.as_of = _none(doc.get("as_of"))
    run.source = _none(doc.get("source"))
    if run.source is not None:
        run.source = resolve_source_path(str(run.source), origin.parent)
    run.organisation = _none(doc.get("organisation"))
    if _none(doc.get("formats")) is not None:
        run.formats = _check_formats(_as_list(doc.get("formats")), where, problems)
    run.language = str(_none(doc.get("language")) or "en")
    if run.language not in LANGUAGES:
        problems.append(f"{where}: language '{run.language}' is not one of {', '.join(LANGUAGES)}.")
    run.output = _none(doc.get("output"))
    params = _none(doc.get("parameters")) or {}
    if not isinstance(params, Mapping):
        problems.append(f"{where}: 'parameters' must be a mapping of name: value.")
        params = {}
    run.parameters = dict(params)
    run.cell_timeout = _float(
        doc.get("cell_timeout"), "cell_timeout", where, problems, DEFAULT_CELL_TIMEOUT
    )
    run.start_timeout = _float(
        doc.get("start_timeout"), "start_timeout", where, problems, DEFAULT_START_TIMEOUT
    )
    run.report_timeout = _float(
        doc.get("report_timeout"), "report_timeout", where, problems, DEFAULT_REPORT_TIMEOUT
    )
    return run


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


def _check_formats(formats: list[str], where: str, problems: list[str]) -> tuple[str, ...]:
    out = []
    for f in formats:
        f = f.lower()
        if f not in FORMATS:
            problems.append(
                f"{where}: format '{f}' is not one of {', '.join(FORMATS)}{did_you_mean(f, FORMATS)}."
            )
        elif f not in out:
            out.append(f)
    return tuple(out)


def _load_file(
    path: Path, problems: list[str], seen: set[Path]
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
    _check_keys(doc, PACK_KEYS, path.name, problems)
    runs: list[RunDef] = []
    for inc in _as_list(_none(doc.get("include")) or []):
        p = Path(inc).expanduser()
        sub, sub_over = _load_file(p if p.is_absolute() else path.parent / p, problems, seen)
        runs.extend(_apply_overrides(r, sub_over, problems) for r in sub)
    inline = _none(doc.get("runs")) or []
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
    overrides = {k: doc[k] for k in PACK_OVERRIDES if _none(doc.get(k)) is not None}
    if "source" in overrides:
        overrides["source"] = resolve_source_path(str(overrides["source"]), path.parent)
    return runs, overrides


def _apply_overrides(run: RunDef, overrides: Mapping[str, Any], problems: list[str]) -> RunDef:
    if not overrides:
        return run
    where = f"{run.origin.name} (run '{run.name}')"
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        value = _none(value)
        if value is None:
            continue
        if key == "formats":
            changes[key] = _check_formats(_as_list(value), where, problems)
        elif key.endswith("timeout"):
            changes[key] = _float(value, key, where, problems, getattr(run, key))
        elif key == "language":
            if value not in LANGUAGES:
                problems.append(
                    f"{where}: language '{value}' is not one of {', '.join(LANGUAGES)}."
                )
                continue
            changes[key] = str(value)
        else:
            changes[key] = str(value)
    return replace(run, **changes)


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
    problems: list[str] = []
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
        _check_constants(run, where, problems)
    _raise(problems)
    return runs


def _check_constants(run: RunDef, where: str, problems: list[str]) -> None:
    secrets = set(secret_env_values().values())
    for name, value in run.parameters.items():
        if looks_secret(name):
            problems.append(
                f"{where}: parameter '{name}' looks like a credential; secrets are never parameters "
                "(name an environment variable in the source file instead)."
            )
            continue
        if name in CONTEXT_PARAMS:
            problems.append(
                f"{where}: set '{name}' at the top level of the run definition (or on the command line), not under 'parameters'."
            )
            continue
        if name not in run.declared:
            problems.append(
                f"{where}: the notebook {run.notebook.name} has no parameter '{name}'"
                f"{did_you_mean(name, run.declared)}."
            )
            continue
        if isinstance(value, str) and value in secrets:
            problems.append(
                f"{where}: parameter '{name}' holds the value of a secret environment variable."
            )
            continue
        try:
            value = coerce(name, value, run.declared[name])
            if isinstance(value, str) and (name.endswith("_period")):
                value = parse_period(value, run.as_of).label
            run.parameters[name] = value
        except (ValueError, KpiReportError) as exc:
            problems.append(f"{where}: {exc}.")
    if run.fanout in ("team", "seller") and run.fanout not in run.declared:
        problems.append(
            f"{where}: fanout '{run.fanout}' needs the notebook {run.notebook.name} to declare a '{run.fanout}' parameter."
        )


def _raise(problems: list[str]) -> None:
    if problems:
        if len(problems) == 1:
            raise ParamsError(problems[0])
        raise ParamsError(
            f"The run definition has {len(problems)} problems:\n"
            + "\n".join("  - " + p for p in problems)
        )


# ---------------------------------------------------------------- expansion
def resolve_period(run: RunDef, as_of: str | None) -> tuple[str, str]:
    """``(absolute period label, as_of ISO date)`` of a run.

    Raises
    ------
    ParamsError
        When the period is missing or invalid, or relative without ``as_of``.
    """
    where = f"{run.origin.name} (run '{run.name}')"
    as_of = as_of or run.as_of
    if as_of is None:
        raise ParamsError(f"{where}: no as-of date; set 'as_of' or pass --as-of YYYY-MM-DD.")
    try:
        day = parse_period(str(as_of)).start  # a day label: YYYY-MM-DD
        if parse_period(str(as_of)).days != 1:
            raise ValueError
    except (KpiReportError, ValueError):
        raise ParamsError(f"{where}: as_of '{as_of}' is not a date (YYYY-MM-DD).") from None
    if run.period is None:
        raise ParamsError(
            f"{where}: no period; set 'period' (e.g. previous-month or 2026-03) or pass --period."
        )
    try:
        label = parse_period(str(run.period), day).label
    except KpiReportError as exc:
        raise ParamsError(f"{where}: {exc}") from None
    return label, f"{day:%Y-%m-%d}"


@dataclass(frozen=True)
class Scope:
    """One fan-out target: scope kind, id (``None`` for the organisation) and display name."""

    kind: str
    id: str | None
    name: str


def _active_sellers(sellers: Any, period: str) -> set[str]:
    """Ids of the sellers active on some day of ``period``."""
    import pandas as pd

    from kpireport.periods import parse_period

    p = parse_period(period)
    start = (
        pd.to_datetime(sellers["active_from"], errors="coerce")
        if "active_from" in sellers
        else None
    )
    end = pd.to_datetime(sellers["active_to"], errors="coerce") if "active_to" in sellers else None
    keep = pd.Series(True, index=sellers.index)
    if start is not None:
        keep &= start.isna() | (start < p.end)
    if end is not None:
        keep &= end.isna() | (end >= p.start)
    return set(sellers.loc[keep, "seller_id"].astype(str))


def fanout_scopes(
    run: RunDef, data: Any | None, problems: list[str], period: str | None = None
) -> list[Scope]:
    """The scopes a run fans out over (every team, every seller, a list, or the organisation).

    "Every seller" means every seller active on some day of ``period``
    (``active_from``/``active_to``, missing bounds open): a scorecard for a
    seller who left years ago would be a report of empty sections. An
    explicit list is taken as given.
    """
    where = f"{run.origin.name} (run '{run.name}')"
    if run.fanout == "none":
        return [
            Scope(
                "organisation",
                None,
                run.organisation or getattr(data, "organisation", None) or "Organisation",
            )
        ]
    sellers = data.tables.get("sellers") if data is not None else None
    known: dict[str, str] = {}
    if sellers is not None:
        if run.fanout == "team":
            for team in sorted({str(t) for t in sellers["team"].dropna()}):
                known[team] = team
        else:
            for sid, name in sorted(
                zip(sellers["seller_id"].astype(str), sellers["name"].astype(str), strict=True)
            ):
                known[sid] = name
    if run.fanout_ids is None:
        if sellers is None:
            problems.append(f"{where}: fanout '{run.fanout}' needs a data source (pass --source).")
            return []
        active = _active_sellers(sellers, period) if run.fanout == "seller" and period else None
        return [Scope(run.fanout, i, n) for i, n in known.items() if active is None or i in active]
    out = []
    for i in run.fanout_ids:
        if sellers is not None and i not in known:
            problems.append(f"{where}: unknown {run.fanout} '{i}'{did_you_mean(i, known)}.")
            continue
        out.append(Scope(run.fanout, i, known.get(i, i)))
    return out


def expand(
    runs: Sequence[RunDef],
    *,
    out: Path,
    data: Any | None = None,
    as_of: str | None = None,
    only: Sequence[str] | None = None,
    source_param: str | None = None,
    check_only: bool = True,
) -> list[ReportSpec]:
    """One validated :class:`ReportSpec` per report of every run.

    Parameters
    ----------
    runs
        Checked runs from :func:`load_plan`.
    out
        Output root: every report path is resolved inside it.
    data
        The loaded :class:`~kpireport.data.model.CrmData` (for fan-out over
        every team/seller and display names), or ``None``.
    as_of
        Logical date overriding the runs' ``as_of``.
    only
        Keep only reports whose scope id or run name is listed.
    source_param
        Value injected as ``source`` (the data snapshot's ``source.yaml``).
    check_only
        Refuse ``only`` values that match no report (the runner checks across
        all sources itself and passes ``False``).

    Raises
    ------
    ParamsError
        Listing every problem (types, missing fan-out parameters, unknown
        scope ids, output collisions, unmatched ``only`` values).
    """
    problems: list[str] = []
    specs: list[ReportSpec] = []
    matched: set[str] = set()
    secrets = set(secret_env_values().values())
    for run in runs:
        where = f"{run.origin.name} (run '{run.name}')"
        try:
            period, day = resolve_period(run, as_of)
        except ParamsError as exc:
            problems.append(str(exc))
            continue
        scopes = fanout_scopes(run, data, problems, period)
        # scope ids whose slugs collide get a hash suffix so outputs stay apart
        slugs: dict[str, list[str]] = {}
        for sc in scopes:
            slugs.setdefault(slug(sc.id), []).append(str(sc.id))
        for sc in scopes:
            if only and sc.id not in only and run.name not in only:
                continue
            matched.update(x for x in (sc.id, run.name) if x is not None)
            context: dict[str, Any] = {"period": period, "as_of": day, "language": run.language}
            if source_param is not None:
                context["source"] = source_param
            context["output_root"] = str(out)
            history = db_path(out)  # the run history grades forecasts (management pack)
            context["history"] = str(history) if history.is_file() else ""
            if sc.kind in ("team", "seller"):
                context[sc.kind] = sc.id
            params: dict[str, Any] = {}
            for name, value in context.items():
                if name in run.declared:
                    try:
                        params[name] = coerce(name, value, run.declared[name])
                    except ValueError as exc:
                        problems.append(f"{where}: {exc}.")
            params.update(run.parameters)
            for name, value in params.items():
                if isinstance(value, str) and value in secrets:
                    problems.append(
                        f"{where}: parameter '{name}' holds the value of a secret environment variable."
                    )
            sid = slug(sc.id) if sc.id is not None else None
            if sid is not None and len(set(slugs[sid])) > 1:
                sid = f"{sid}-{short_hash(str(sc.id))}"
            fields = {
                "period": period,
                "as_of": day,
                "language": run.language,
                "run": slug(run.name),
                "scope": sc.kind,
                "scope_id": sid or "organisation",
                "name": slug(sc.name),
                "team": sid if sc.kind == "team" else None,
                "seller": sid if sc.kind == "seller" else None,
            }
            pattern = run.output or (
                "{period}/{run}" if sc.kind == "organisation" else "{period}/{run}-{scope_id}"
            )
            try:
                rel = _format_output(pattern, fields)
                resolve_inside(out, rel)
            except (ParamsError, KeyError, ValueError) as exc:
                problems.append(f"{where}: output pattern '{pattern}': {exc}")
                continue
            specs.append(
                ReportSpec(
                    report_id=rel,
                    run=run.name,
                    title=run.title,
                    notebook=run.notebook,
                    scope=sc.kind,
                    scope_id=sc.id,
                    scope_name=sc.name,
                    period=period,
                    as_of=day,
                    language=run.language,
                    formats=run.formats,
                    parameters=params,
                    cell_timeout=run.cell_timeout,
                    start_timeout=run.start_timeout,
                    report_timeout=run.report_timeout,
                )
            )
    problems.extend(duplicate_paths(specs))
    for o in only or () if check_only else ():
        if o not in matched:
            choices = {s for r in runs for s in [r.name]} | {
                s.scope_id for s in specs if s.scope_id
            }
            problems.append(f"--only '{o}' matches no report{did_you_mean(o, choices)}.")
    _raise(problems)
    return specs


def duplicate_paths(specs: Sequence[ReportSpec]) -> list[str]:
    """One sentence per output path that two planned reports share, naming both."""
    first: dict[str, ReportSpec] = {}
    problems = []
    for spec in specs:
        other = first.setdefault(spec.report_id, spec)
        if other is not spec:
            problems.append(
                f"The reports of {describe(other)} and {describe(spec)} would both be written "
                f"to '{spec.report_id}'; make the output patterns distinct."
            )
    return problems


_FIELD = re.compile(r"\{([^{}]*)\}")
#: output fields that name the scope: the only ones shortened when a name is too long
SCOPE_FIELDS = ("scope_id", "name", "team", "seller")
#: shortest a shortened scope part may become (before its hash)
_MIN_SCOPE = 8


def _format_output(pattern: str, fields: Mapping[str, Any]) -> str:
    """The slugged relative path of ``pattern`` with ``fields`` filled in.

    A component longer than :data:`~kpireport.report.slug.MAX_SLUG` has its
    scope fields shortened (each keeps a hash of its full value); the other
    fields (``{period}``, ``{as_of}``, ...) are never cut, so the name keeps
    what makes it unique.
    """

    def fill(part: str, values: Mapping[str, Any]) -> str:
        def repl(m: re.Match[str]) -> str:
            key = m.group(1)
            if key not in OUTPUT_FIELDS:
                raise ValueError(f"unknown field {{{key}}}{did_you_mean(key, OUTPUT_FIELDS)}")
            value = values.get(key)
            if value is None:
                raise ValueError(f"{{{key}}} is not defined for this run's fan-out")
            return str(value)

        return _FIELD.sub(repl, part)

    out = []
    for part in str(pattern).replace("\\", "/").split("/"):
        if not part.strip(" ."):
            continue
        text = slug(fill(part, fields), max_length=None)
        if len(text) > MAX_SLUG:
            keys = [m.group(1) for m in _FIELD.finditer(part) if m.group(1) in SCOPE_FIELDS]
            if not keys:
                raise ValueError(
                    f"the name '{text}' is longer than {MAX_SLUG} characters; shorten the pattern"
                )
            cut = -(-(len(text) - MAX_SLUG) // len(keys)) + 7  # room for "-<hash>"
            short = dict(fields)
            for key in set(keys):
                value = str(fields[key])
                if len(value) - cut < _MIN_SCOPE:
                    raise ValueError(
                        f"the name '{text}' is longer than {MAX_SLUG} characters even with "
                        f"{{{key}}} shortened; shorten the pattern"
                    )
                short[key] = f"{value[: len(value) - cut].rstrip('-')}-{short_hash(value)}"
            text = slug(fill(part, short), max_length=None)
        out.append(text)
    return slug_path("/".join(out))


def describe(spec: ReportSpec) -> str:
    """``team 'North' for 2026-10 (run 'team_monthly')``: a report, in words."""
    scope = (
        "the organisation" if spec.scope == "organisation" else f"{spec.scope} '{spec.scope_name}'"
    )
    return f"{scope} for {spec.period} (run '{spec.run}')"
