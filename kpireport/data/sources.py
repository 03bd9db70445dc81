"""Read raw tables from a source: CSV/Parquet folder, Excel workbook, database, source YAML.

This module knows *where* data lives and how to get it into pandas without
losing information; it does not know what the columns mean. Parsing into the
canonical types happens in :mod:`kpireport.data.coerce`, the contract checks in
:mod:`kpireport.data.validate`, and :func:`kpireport.data.load.load` strings
the steps together.

Design decisions
----------------
* **Nothing is guessed into a number.** CSV files are read with ``dtype=str``
  and ``keep_default_na=False`` (only empty cells are missing, so an id ``NA``
  or ``007`` survives); database rows are built as ``object`` columns from the
  driver's Python values (no float round trip for 19-digit integer ids, even
  with NULLs in the column); Excel sheets are read as ``object`` so that date
  cells stay dates and numeric cells stay numbers for the parser to judge.
* **Row numbers are the user's.** Every raw frame is indexed by the 1-based
  data row number (header excluded) the user sees in the file or sheet, so
  validation messages point at rows a person can find.
* **Secrets never leave this module.** ``${VAR}`` references in a source YAML
  are expanded here, at load time, component by component for database URLs
  (so a password with ``@`` or ``/`` needs no escaping). Only a *description*
  with the password masked as ``***`` travels on; connection errors are
  re-raised with the masked URL and every resolved secret scrubbed from the
  driver's message, without chaining the original exception.
* **A missing SQLite file is an error**, not a fresh empty database
  (SQLAlchemy would silently create one).
* **Headers are kept as the source has them.** pandas renames a repeated
  CSV/Excel header (``value``, ``value.1``); the readers put the real names
  back so that the canonicaliser can refuse two columns that read as one
  (docs/DATA.md "Column names"). A key repeated in the source YAML (two
  ``value:`` lines under ``columns:``) is refused too: YAML would keep the last.
* **A CSV file must end with a line break.** A file cut off inside its last
  row (a copy interrupted, a disk full) would otherwise load that row with a
  shortened number or date; a file that ends without one is refused.
* **Separators are checked when the YAML is read**: ``decimal`` is ``.`` or
  ``,``; ``thousands`` one of ``, . ' `` or a space, and not the decimal one.
* **Presets** (``preset: salesforce`` in a source YAML) are source YAMLs
  shipped in ``kpireport/resources/presets/``; the user's YAML is merged on
  top (its table names, columns, values and settings win). Besides renaming, a
  column may be *derived*: a list of source columns is joined with ``|``
  (booleans normalised to ``true``/``false``) for a ``values:`` recoding, and
  ``{lookup: TABLE, where: COL, equals: COL, take: COL}`` fetches a value from
  another table's rows. ``scale: {probability: 0.01}`` multiplies a numeric
  column (a CRM's 0–100 percentages). See docs/DATA.md (CRM presets).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from kpireport.data.schema import SCHEMAS
from kpireport.errors import SourceError

log = logging.getLogger("kpireport")

#: settings a source YAML may carry next to its location and mapping
SETTING_KEYS = (
    "timezone",
    "currency",
    "organisation",
    "gross_margin",
    "date_format",
    "decimal",
    "thousands",
    "delimiter",
    "encoding",
    "schema",
)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_FOLDER_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_YAML_SUFFIXES = {".yaml", ".yml"}


@dataclass(frozen=True)
class TableMapping:
    """How one canonical table is found in the source.

    Attributes
    ----------
    name
        Name of the table in the source (file stem, sheet or database table).
    columns
        Canonical column name -> source column name (only the renamed ones).
    values
        Canonical column -> {source value: canonical value}, e.g. a CRM's
        ``"Closed Won"`` -> ``"won"`` for ``deals.status``.
    date_format
        ``strftime`` format of the day/month dates of this table, if any.
    """

    name: str
    columns: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    date_format: str | None = None
    #: canonical column -> how to build it (``{"join": [cols]}`` or a lookup spec)
    derive: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: canonical column -> factor applied to its numbers (``0.01`` for 0–100 percentages)
    scale: Mapping[str, float] = field(default_factory=dict)
    #: columns a preset maps that an export may lack (skipped then, not reported)
    optional: frozenset[str] = frozenset()


@dataclass
class SourceSpec:
    """A resolved source: its kind, location, table mapping and settings.

    ``location`` may hold a resolved secret (a database URL with its password);
    it stays inside the loader. ``description`` is safe to show and store.
    """

    kind: str  # folder | excel | sql
    location: Any
    description: str
    tables: dict[str, TableMapping] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    #: a goals YAML named by ``goals:`` in the source YAML (read as the goals table)
    goals_file: Path | None = None


# ----------------------------------------------------------------- secrets
def expand_env(text: str, *, origin: str = "the source file") -> str:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) with the environment's value.

    Raises
    ------
    SourceError
        When a referenced variable is not set and has no default. The message
        names the variable, never a value.
    """

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is not None:
                return default
            raise SourceError(
                f"The environment variable {name}, referenced in {origin}, is not set.",
                hint=f"Set {name} in the environment that runs kpireport.",
            )
        return value

    return _ENV_REF.sub(repl, text)


def secret_env_names(source: Any) -> tuple[str, ...]:
    """Environment variables a source names (``${VAR}`` references, ``password_env``), sorted.

    ``source`` is what :func:`resolve` takes; for a source YAML the file is
    read but not resolved (nothing needs to be set). Anything else (loaded
    data, a frame) names none. Report processes remove these variables from
    their environment and refuse outputs holding their values.
    """
    if not isinstance(source, (str, os.PathLike)):
        return ()
    names = {m.group(1) for m in _ENV_REF.finditer(os.fspath(source))}
    path = Path(source)
    if path.suffix.lower() in _YAML_SUFFIXES and path.is_file():
        import yaml

        try:
            text = path.read_text(encoding="utf-8-sig")
            names.update(m.group(1) for m in _ENV_REF.finditer(text))
            doc = yaml.load(text, Loader=_strict_yaml_loader())  # noqa: S506 - a SafeLoader subclass
        except (OSError, yaml.YAMLError):
            doc = None
        if isinstance(doc, Mapping) and isinstance(doc.get("password_env"), str):
            names.add(doc["password_env"])
    return tuple(sorted(names))


def mask_url(url: Any) -> str:
    """Render a database URL with its password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a parsable URL: mask anything between ':' and '@'
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", str(url))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every secret occurring in ``text`` with ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _resolve_url(template: str, *, password_env: str | None, base: Path | None, origin: str):
    """Expand env references in each URL component; return (URL, secrets)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(template)
    except Exception:
        raise SourceError(
            f"'{mask_url(template)}' is not a valid database URL ({origin})."
        ) from None
    secrets: list[str] = []
    parts: dict[str, Any] = {}
    for attr in ("username", "password", "host", "database"):
        raw = getattr(url, attr)
        if raw and _ENV_REF.search(raw):
            parts[attr] = expand_env(raw, origin=origin)
    if url.query:
        parts["query"] = {
            k: expand_env(v, origin=origin) if isinstance(v, str) else v
            for k, v in url.query.items()
        }
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise SourceError(
                f"The environment variable {password_env} (password_env in {origin}) is not set.",
                hint=f"Set {password_env} to the database password.",
            )
        parts["password"] = value
    if "password" in parts:
        secrets.append(str(parts["password"]))
    elif url.password:
        secrets.append(str(url.password))
    url = url.set(**parts) if parts else url
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        db = Path(url.database)
        if base is not None and not db.is_absolute():
            db = base / db
            url = url.set(database=str(db))
    return url, tuple(secrets)


# ------------------------------------------------------------ spec building
def looks_like_url(source: str) -> bool:
    """True when ``source`` is a SQLAlchemy URL rather than a file path."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", source))


def _canonical_default_mappings() -> dict[str, TableMapping]:
    return {name: TableMapping(name) for name in SCHEMAS}


def resolve(source: str | os.PathLike[str]) -> SourceSpec:
    """Turn a path, URL or source YAML into a :class:`SourceSpec`.

    Raises
    ------
    SourceError
        When the path does not exist, the YAML is malformed, or it references
        unset environment variables.
    """
    text = os.fspath(source)
    if isinstance(source, str) and looks_like_url(text):
        url, secrets = _resolve_url(text, password_env=None, base=None, origin="the URL")
        return SourceSpec("sql", url, mask_url(url), _canonical_default_mappings(), {}, secrets)
    path = Path(text).expanduser()
    if not path.exists():
        hint = "Check the path."
        if text == "demo":  # the demo company is not a loader source (see kpireport/demo)
            hint = "For the demo company use kpireport.demo.demo_data(as_of=...) or --source demo."
        raise SourceError(f"The source '{path}' does not exist.", hint=hint)
    if path.is_dir():
        return SourceSpec("folder", path, f"folder {path}", _canonical_default_mappings())
    suffix = path.suffix.lower()
    if suffix in _EXCEL_SUFFIXES:
        return SourceSpec("excel", path, f"Excel workbook {path}", _canonical_default_mappings())
    if suffix in _YAML_SUFFIXES:
        return _resolve_yaml(path)
    if suffix in {".db", ".sqlite", ".sqlite3"}:
        url, _ = _resolve_url(
            f"sqlite:///{path.resolve()}", password_env=None, base=None, origin=str(path)
        )
        return SourceSpec("sql", url, f"SQLite database {path}", _canonical_default_mappings())
    raise SourceError(
        f"The source '{path}' is not a folder, an Excel workbook (.xlsx), a SQLite file or a source YAML.",
        hint="Pass a folder of CSV/Parquet files, a workbook, a database URL or a .yaml source file.",
    )


def _strict_yaml_loader():
    """A SafeLoader that refuses a key repeated in one mapping (YAML keeps the last)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key '{key}' appears twice in one mapping (lines {seen[key]} and {line}); "
                    "kpireport never picks one",
                    key_node.start_mark,
                )
            seen[key] = line
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def _check_separators(settings: dict[str, Any], path: Path) -> None:
    """Refuse a ``decimal``/``thousands`` setting that cannot be meant."""
    from kpireport.data.coerce import THOUSANDS

    decimal = settings.get("decimal")
    if decimal is not None:
        decimal = str(decimal)
        if decimal not in (".", ","):
            raise SourceError(
                f'decimal in \'{path}\' is {decimal!r}; it must be "." or ",".',
                hint='Quote it in YAML: decimal: ","',
            )
        settings["decimal"] = decimal
    thousands = settings.get("thousands")
    if thousands is not None:
        thousands = str(thousands)
        if thousands == "":
            settings.pop("thousands")
            return
        if thousands not in THOUSANDS:
            raise SourceError(
                f"thousands in '{path}' is {thousands!r}; it must be one of "
                + ", ".join(repr(t) for t in THOUSANDS[:4])
                + " or a space.",
                hint='Quote it in YAML: thousands: "."',
            )
        if thousands == (decimal or "."):
            raise SourceError(
                f"thousands and decimal in '{path}' are both {thousands!r}; "
                "a number cannot be read with one separator for both.",
                hint='For 1.234,50 declare decimal: "," and thousands: "."',
            )
        settings["thousands"] = thousands


def _resolve_yaml(path: Path) -> SourceSpec:
    import yaml

    origin = str(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_strict_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"The source file '{path}' cannot be read: {exc}") from None
    if not isinstance(doc, dict):
        raise SourceError(f"The source file '{path}' must be a mapping with 'path:' or 'url:'.")
    allowed = {"path", "url", "password_env", "tables", "description", "preset", "goals"}
    unknown = set(doc) - allowed - set(SETTING_KEYS)
    if unknown:
        raise SourceError(
            f"The source file '{path}' has unknown keys: {', '.join(sorted(map(str, unknown)))}.",
            hint="Allowed: path, url, password_env, tables, preset, goals, "
            + ", ".join(SETTING_KEYS)
            + ".",
        )
    preset: dict[str, Any] = {}
    if doc.get("preset"):
        preset = load_preset(str(doc["preset"]), base=path.parent)
        user_tables = doc.get("tables") or {}
        doc = merge_preset(preset, doc)
    settings: dict[str, Any] = {}
    for key in SETTING_KEYS:
        if doc.get(key) is not None:
            value = doc[key]
            settings[key] = expand_env(value, origin=origin) if isinstance(value, str) else value
    _check_separators(settings, path)
    if "gross_margin" in settings:
        try:
            settings["gross_margin"] = float(settings["gross_margin"])
        except (TypeError, ValueError):
            raise SourceError(f"gross_margin in '{path}' must be a number.") from None
    if ("path" in doc) == ("url" in doc):
        raise SourceError(f"The source file '{path}' needs exactly one of 'path:' or 'url:'.")
    if "url" in doc:
        url, secrets = _resolve_url(
            str(doc["url"]), password_env=doc.get("password_env"), base=path.parent, origin=origin
        )
        inner = SourceSpec("sql", url, mask_url(url), secrets=secrets)
    else:
        if doc.get("password_env"):
            raise SourceError(f"password_env in '{path}' only applies to a database 'url:'.")
        target = Path(expand_env(str(doc["path"]), origin=origin)).expanduser()
        if not target.is_absolute():
            target = path.parent / target
        if Path(target).suffix.lower() in _YAML_SUFFIXES:
            raise SourceError(
                f"The source file '{path}' points at another source file; point at the data."
            )
        inner = resolve(target)
    inner.tables = _parse_mapping(doc.get("tables") or {}, origin)
    for name, spec in (preset.get("tables") or {}).items():
        mine = user_tables.get(name) if isinstance(user_tables.get(name), dict) else {}
        optional = {
            str(c)
            for c in ((spec or {}).get("columns") or {})
            if isinstance(spec, dict)
            if c not in ((mine or {}).get("columns") or {})
            and c in SCHEMAS[name].column_names
            and not SCHEMAS[name].column(str(c)).required
        }
        if optional and name in inner.tables:
            inner.tables[name] = replace(inner.tables[name], optional=frozenset(optional))
    inner.settings = settings
    if doc.get("goals"):
        goals = Path(expand_env(str(doc["goals"]), origin=origin)).expanduser()
        inner.goals_file = goals if goals.is_absolute() else path.parent / goals
        if not inner.goals_file.is_file():
            raise SourceError(
                f"The goals file '{inner.goals_file}' (goals: in {origin}) does not exist."
            )
    inner.description = f"{inner.description} (via {path.name})"
    return inner


def _parse_mapping(tables: Any, origin: str) -> dict[str, TableMapping]:
    if not isinstance(tables, dict):
        raise SourceError(
            f"'tables' in {origin} must map canonical table names to their source tables."
        )
    unknown = set(tables) - set(SCHEMAS)
    if unknown:
        raise SourceError(
            f"'tables' in {origin} names unknown canonical tables: {', '.join(sorted(map(str, unknown)))}.",
            hint="Canonical tables: " + ", ".join(SCHEMAS) + ".",
        )
    out = _canonical_default_mappings()
    for name, spec in tables.items():
        if spec is None:
            continue
        if isinstance(spec, str):
            out[name] = TableMapping(spec)
            continue
        if not isinstance(spec, dict):
            raise SourceError(f"tables.{name} in {origin} must be a table name or a mapping.")
        raw_columns = spec.get("columns") or {}
        if not isinstance(raw_columns, dict):
            raise SourceError(
                f"tables.{name}.columns in {origin} must map canonical to source columns."
            )
        columns: dict[str, str] = {}
        derive: dict[str, dict[str, Any]] = {}
        for k, v in raw_columns.items():
            if v is None:
                continue
            if isinstance(v, list):
                derive[str(k)] = {"join": [str(c) for c in v]}
                columns[str(k)] = _derived_name(str(k))
            elif isinstance(v, dict):
                keys = set(v)
                if keys not in (
                    {"lookup", "where", "equals", "take"},
                    {"take", "when"},
                    {"take", "when", "is"},
                ):
                    raise SourceError(
                        f"tables.{name}.columns.{k} in {origin} must be a column name, a list of "
                        "columns to join, {take: COLUMN, when: COLUMN[, is: [VALUES]]} or "
                        "{lookup: TABLE, where: COLUMN, equals: COLUMN, take: COLUMN}."
                    )
                if "lookup" in v and str(v["lookup"]) not in SCHEMAS:
                    raise SourceError(
                        f"tables.{name}.columns.{k}.lookup in {origin} names '{v['lookup']}', "
                        "not a canonical table (" + ", ".join(SCHEMAS) + ")."
                    )
                derive[str(k)] = {
                    key: [str(x) for x in val] if isinstance(val, list) else str(val)
                    for key, val in v.items()
                }
                columns[str(k)] = _derived_name(str(k))
            else:
                columns[str(k)] = str(v)
        bad = set(columns) - set(SCHEMAS[name].column_names)
        if bad:
            raise SourceError(
                f"tables.{name}.columns in {origin} maps unknown canonical columns: {', '.join(sorted(bad))}.",
                hint=f"Columns of {name}: " + ", ".join(SCHEMAS[name].column_names) + ".",
            )
        values = {
            str(col): {str(k): str(v) for k, v in (m or {}).items()}
            for col, m in (spec.get("values") or {}).items()
        }
        scale: dict[str, float] = {}
        for col, factor in (spec.get("scale") or {}).items():
            if col not in SCHEMAS[name].columns_of_kind("float"):
                raise SourceError(
                    f"tables.{name}.scale in {origin} names '{col}', not a numeric column of {name}."
                )
            try:
                scale[str(col)] = float(factor)
            except (TypeError, ValueError):
                raise SourceError(
                    f"tables.{name}.scale.{col} in {origin} must be a number."
                ) from None
        out[name] = TableMapping(
            str(spec.get("table", name)), columns, values, spec.get("date_format"), derive, scale
        )
    return out


# ------------------------------------------------------------------ presets
PRESETS = ("salesforce", "hubspot", "pipedrive", "dynamics")


def _derived_name(column: str) -> str:
    return f"__derived_{column}"


def preset_path(name: str, base: Path | None = None) -> Path:
    """The YAML file of a preset: a packaged name (``salesforce``) or a path to a copy.

    Raises
    ------
    SourceError
        For an unknown name; the message lists the packaged presets.
    """
    given = Path(name).expanduser()
    if given.suffix.lower() in _YAML_SUFFIXES:
        found = given if given.is_absolute() or base is None else base / given
        if not found.is_file():
            raise SourceError(f"The preset file '{found}' does not exist.")
        return found
    from kpireport.resources import resource_dir

    found = resource_dir("presets") / f"{name.lower()}.yaml"
    if not found.is_file():
        import difflib

        near = difflib.get_close_matches(name.lower(), PRESETS, n=1)
        raise SourceError(
            f"Unknown preset '{name}'"
            + (f" (did you mean '{near[0]}'?)" if near else "")
            + f"; the packaged presets are {', '.join(PRESETS)}, or give the path of a preset YAML."
        )
    return found


def load_preset(name: str, base: Path | None = None) -> dict[str, Any]:
    """The mapping of a preset YAML (tables and settings; no location)."""
    import yaml

    path = preset_path(name, base)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"The preset '{path}' cannot be read: {exc}") from None
    if not isinstance(doc, dict):
        raise SourceError(f"The preset '{path}' must be a mapping with 'tables:'.")
    doc.pop("preset", None)
    return doc


def merge_preset(preset: Mapping[str, Any], doc: Mapping[str, Any]) -> dict[str, Any]:
    """The source YAML ``doc`` laid over a preset: anything the source sets wins.

    Tables merge one level deeper: a source's ``columns``/``values``/``scale`` of a
    table add to and override the preset's, column by column (and value by value).
    """
    out: dict[str, Any] = {k: v for k, v in preset.items() if k not in ("tables", "description")}
    out.update({k: v for k, v in doc.items() if k not in ("tables", "preset")})
    tables: dict[str, Any] = {}
    mine = doc.get("tables") or {}
    for name in [
        *(preset.get("tables") or {}),
        *[t for t in mine if t not in (preset.get("tables") or {})],
    ]:
        base = (preset.get("tables") or {}).get(name)
        over = mine.get(name)
        if isinstance(over, str):
            over = {"table": over}
        if base is None or isinstance(base, str):
            base = {"table": base} if isinstance(base, str) else {}
        if over is None:
            tables[name] = base
            continue
        merged = {
            **base,
            **{k: v for k, v in over.items() if k not in ("columns", "values", "scale")},
        }
        for key in ("columns", "scale"):
            merged[key] = {**(base.get(key) or {}), **(over.get(key) or {})}
        values = {c: dict(m or {}) for c, m in (base.get("values") or {}).items()}
        for c, m in (over.get("values") or {}).items():
            values[c] = {**values.get(c, {}), **(m or {})}
        merged["values"] = values
        tables[name] = merged
    out["tables"] = tables
    return out


# ----------------------------------------------------------------- reading
def _number_rows(df: pd.DataFrame) -> pd.DataFrame:
    df.index = pd.RangeIndex(1, len(df) + 1)
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df


def read_raw(spec: SourceSpec) -> dict[str, pd.DataFrame]:
    """Read every mapped table that exists in the source, with source column names.

    Returns
    -------
    dict
        Canonical table name -> raw DataFrame indexed by 1-based data row.
        Tables the source lacks are absent.
    """
    if spec.kind == "folder":
        out = _read_folder(spec)
    elif spec.kind == "excel":
        out = _read_excel(spec)
    elif spec.kind == "sql":
        out = _read_sql(spec)
    else:  # pragma: no cover
        raise SourceError(f"Unknown source kind '{spec.kind}'.")
    if spec.goals_file is not None and "goals" not in out:
        out["goals"] = _read_goals_yaml(spec.goals_file)
    _derive(out, spec)
    _drop_absent_optional(out, spec)
    return out


def _drop_absent_optional(raw: dict[str, pd.DataFrame], spec: SourceSpec) -> None:
    """Forget a preset's mappings of optional columns this export does not have."""
    from kpireport.data.coerce import _find_column

    for name, mapping in list(spec.tables.items()):
        frame = raw.get(name)
        if frame is None or not mapping.optional:
            continue
        have = [str(c) for c in frame.columns]
        gone = {
            c
            for c in mapping.optional
            if c in mapping.columns and _find_column(have, mapping.columns[c]) is None
        }
        if gone:
            columns = {k: v for k, v in mapping.columns.items() if k not in gone}
            spec.tables[name] = replace(mapping, columns=columns)


def _read_goals_yaml(path: Path) -> pd.DataFrame:
    """A goals YAML (``goals: [{kpi, scope, ...}]``) as a raw goals table of text cells."""
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"The goals file '{path}' cannot be read: {exc}") from None
    rows = doc.get("goals") if isinstance(doc, dict) else doc
    if rows is None:
        rows = []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise SourceError(f"The goals file '{path}' must hold 'goals:' with a list of mappings.")
    cols = SCHEMAS["goals"].column_names
    df = pd.DataFrame(
        [{c: (None if r.get(c) is None else str(r[c])) for c in cols} for r in rows],
        columns=cols,
        dtype=object,
    )
    return _number_rows(df)


def _bool_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    text = str(v).strip()
    low = text.lower()
    if low in {"true", "1", "yes", "y", "t", "1.0"}:
        return "true"
    if low in {"false", "0", "no", "n", "f", "0.0"}:
        return "false"
    return text


def _derive(raw: dict[str, pd.DataFrame], spec: SourceSpec) -> None:
    """Add derived columns (joins, lookups) and apply ``scale`` factors, in place."""
    from kpireport.data.coerce import _find_column

    def column(table: str, frame: pd.DataFrame, wanted: str, origin: str) -> pd.Series:
        found = _find_column([str(c) for c in frame.columns], wanted)
        if found is None:
            raise SourceError(
                f"The column '{wanted}' ({origin}) is not in the {table} table; it has: "
                + ", ".join(map(str, list(frame.columns)[:15]))
                + "."
            )
        return frame[found]

    for name, mapping in spec.tables.items():
        frame = raw.get(name)
        if frame is None:
            continue
        for col, how in mapping.derive.items():
            origin = f"tables.{name}.columns.{col}"
            needed = [*how.get("join", [])] + [
                how[k] for k in ("take", "when", "equals") if k in how
            ]
            if "lookup" in how:
                needed = [how["equals"]]
            if col in mapping.optional and any(
                _find_column([str(c) for c in frame.columns], c) is None for c in needed
            ):
                continue  # a preset's optional column this export does not have
            if "join" in how:
                parts = [column(name, frame, c, origin).map(_bool_text) for c in how["join"]]
                joined = parts[0].astype(object)
                for p in parts[1:]:
                    joined = joined + "|" + p
                frame[_derived_name(col)] = joined.where(joined.str.strip("|") != "", None)
            elif "when" in how:
                take = column(name, frame, how["take"], origin)
                when = column(name, frame, how["when"], origin)
                if "is" in how:
                    allowed = {str(x).strip() for x in how["is"]}
                    keep = when.map(
                        lambda v, allowed=allowed: (
                            v is not None and v == v and str(v).strip() in allowed
                        )
                    )
                else:
                    keep = when.map(_bool_text) == "true"
                frame[_derived_name(col)] = take.astype(object).where(keep.astype(bool), None)
            else:
                other = raw.get(how["lookup"])
                if other is None:
                    frame[_derived_name(col)] = None
                    continue
                keys = column(how["lookup"], other, how["where"], origin)
                take = column(how["lookup"], other, how["take"], origin)
                table = pd.Series(take.to_numpy(), index=keys.astype(object).to_numpy())
                table = table[table.index.notna()]
                table = table[~table.index.duplicated()]
                on = column(name, frame, how["equals"], origin)
                frame[_derived_name(col)] = on.map(table).astype(object)
        for col, factor in mapping.scale.items():
            src = _find_column([str(c) for c in frame.columns], mapping.columns.get(col, col))
            if src is None:
                continue
            from kpireport.data.coerce import parse_numbers

            s = frame[src]
            num, bad = parse_numbers(
                s,
                decimal=str(spec.settings.get("decimal") or "."),
                thousands=spec.settings.get("thousands"),
            )
            scaled = num * factor
            frame[src] = scaled.astype(object).where(~bad, s) if bad.any() else scaled


def _read_folder(spec: SourceSpec) -> dict[str, pd.DataFrame]:
    folder: Path = spec.location
    files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    out: dict[str, pd.DataFrame] = {}
    for canonical, mapping in spec.tables.items():
        candidates = []
        wanted = mapping.name.lower()
        if Path(wanted).suffix in _FOLDER_SUFFIXES and wanted in files:
            candidates = [files[wanted]]
        else:
            candidates = [files[wanted + s] for s in _FOLDER_SUFFIXES if wanted + s in files]
        if not candidates:
            continue
        if len(candidates) > 1:
            raise SourceError(
                f"The folder '{folder}' has several files for table '{canonical}': "
                + ", ".join(p.name for p in candidates)
                + ".",
                hint="Keep one file per table.",
            )
        path = candidates[0]
        if _FOLDER_SUFFIXES[path.suffix.lower()] == "csv":
            out[canonical] = _read_csv(path, spec.settings)
        else:
            out[canonical] = _read_parquet(path)
    if spec.description.startswith("folder "):
        kinds = {_FOLDER_SUFFIXES.get(Path(p).suffix.lower()) for p in files}
        kinds.discard(None)
        if kinds:
            spec.description = f"{'/'.join(sorted(k.upper() for k in kinds))} " + spec.description
    return out


def _sniff_delimiter(path: Path, encoding: str) -> str:
    try:
        with path.open(encoding=encoding, errors="replace") as fh:
            header = fh.readline()
    except OSError:
        return ","
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_csv(path: Path, settings: Mapping[str, Any]) -> pd.DataFrame:
    encoding = str(settings.get("encoding") or "utf-8-sig")
    if encoding.lower().replace("_", "-") in {"utf-8", "utf8"}:
        encoding = "utf-8-sig"  # a BOM is never part of the first column name
    delimiter = settings.get("delimiter") or _sniff_delimiter(path, encoding)
    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding=encoding,
            sep=delimiter,
            skipinitialspace=False,
        )
    except UnicodeDecodeError:
        raise SourceError(
            f"The file '{path}' is not valid {encoding} text.",
            hint="Save it as UTF-8, or set 'encoding:' (e.g. cp1252) in the source YAML.",
        ) from None
    except pd.errors.EmptyDataError:
        raise SourceError(f"The file '{path}' is empty (no header row).") from None
    except (OSError, pd.errors.ParserError) as exc:
        raise SourceError(f"The file '{path}' cannot be read as CSV: {exc}") from None
    if not _ends_with_line_break(path):
        last = f"its last row (row {len(df)})" if len(df) else "its header"
        raise SourceError(
            f"The file '{path}' ends inside a row: there is no line break after {last}, "
            "so the export may have been cut off.",
            hint="Re-export it, or add the line break if that row is complete.",
        )
    header = _csv_header(path, encoding, str(delimiter))
    if header is not None and len(header) == len(df.columns) and len(set(header)) < len(header):
        df.columns = header  # pandas renamed the repeats 'x.1': give them back their names
    return _number_rows(df)


def _ends_with_line_break(path: Path) -> bool:
    """True when the file's last bytes hold a line break (UTF-8, cp1252 or UTF-16)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 2))
            tail = fh.read()
    except OSError:
        return True
    return b"\n" in tail or b"\r" in tail


def _csv_header(path: Path, encoding: str, delimiter: str) -> list[str] | None:
    """The header row exactly as written (pandas renames repeated names)."""
    import csv

    try:
        with path.open(encoding=encoding, newline="") as fh:
            row = next(csv.reader(fh, delimiter=delimiter), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None if row is None else [c.strip().lstrip("\ufeff") for c in row]


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path, dtype_backend="numpy_nullable")
    except Exception as exc:  # pyarrow raises many types for corrupt files
        raise SourceError(f"The file '{path}' cannot be read as Parquet: {exc}") from None
    return _number_rows(df.reset_index(drop=True))


#: magic number of an OLE compound file: an encrypted (password-protected) OOXML
#: workbook or an old binary .xls, never a readable .xlsx
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _ole_workbook_reason(path: Path) -> str | None:
    """Why a workbook in an OLE container cannot be read, or None if it is not one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return None
    if not head.startswith(_OLE_MAGIC):
        return None
    if "EncryptionInfo".encode("utf-16-le") in head:
        return (
            "the workbook is encrypted (password-protected); save a copy without a password "
            "(File > Info > Protect Workbook > Encrypt with Password, clear it) or export CSV"
        )
    return "it is an old binary .xls workbook; save it as .xlsx or export CSV"


def _read_excel(spec: SourceSpec) -> dict[str, pd.DataFrame]:
    path: Path = spec.location
    reason = _ole_workbook_reason(path)
    if reason:
        raise SourceError(f"The workbook '{path}' cannot be read: {reason}.")
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception as exc:
        raise SourceError(f"The workbook '{path}' cannot be opened: {exc}") from None
    with book:
        sheets = {s.strip().lower(): s for s in book.sheet_names}
        out: dict[str, pd.DataFrame] = {}
        for canonical, mapping in spec.tables.items():
            sheet = sheets.get(mapping.name.strip().lower())
            if sheet is None:
                continue
            try:
                df = pd.read_excel(book, sheet_name=sheet, dtype=object, header=None)
            except Exception as exc:
                raise SourceError(f"Sheet '{sheet}' of '{path}' cannot be read: {exc}") from None
            # row 0 is the header, as written (pandas would rename a repeated one 'x.1');
            # the index then counts data rows from 1 and dropped empty rows keep their numbers
            head = df.iloc[0].tolist() if len(df) else []
            df = df.iloc[1:].dropna(how="all")  # trailing formatted-but-empty rows
            df.columns = [
                f"Unnamed: {i}"
                if c is None or (isinstance(c, float) and c != c)
                else str(c).strip()
                for i, c in enumerate(head)
            ] or df.columns
            df.columns = [str(c) for c in df.columns]
            out[canonical] = df
    return out


def _read_sql(spec: SourceSpec) -> dict[str, pd.DataFrame]:
    import sqlalchemy as sa

    url = spec.location
    masked = mask_url(url)
    db = url.database if url.drivername.startswith("sqlite") else None
    if db and db != ":memory:" and not Path(db).exists():
        raise SourceError(f"The SQLite database '{db}' does not exist.", hint="Check the path.")
    out: dict[str, pd.DataFrame] = {}
    try:
        engine = sa.create_engine(url)
    except Exception as exc:
        raise SourceError(
            f"Cannot use the database {masked}: {scrub(str(exc), spec.secrets)}"
        ) from None
    schema = spec.settings.get("schema")
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)  # views are read like tables (a CRM schema often exposes views)
            listed = [*insp.get_table_names(schema=schema), *insp.get_view_names(schema=schema)]
            names = {n.lower(): n for n in listed}
            for canonical, mapping in spec.tables.items():
                real = names.get(mapping.name.lower())
                if real is None:
                    continue
                table = sa.Table(real, sa.MetaData(), autoload_with=conn, schema=schema)
                result = conn.execute(sa.select(table))
                rows = result.fetchall()
                df = pd.DataFrame(
                    [tuple(r) for r in rows], columns=list(result.keys()), dtype=object
                )
                out[canonical] = _number_rows(df)
    except sa.exc.SQLAlchemyError as exc:
        msg = scrub(str(getattr(exc, "orig", None) or exc).splitlines()[0], spec.secrets)
        raise SourceError(
            f"Cannot read the database {masked}: {msg}",
            hint="Check the URL, the network and the credentials' environment variable.",
        ) from None
    finally:
        engine.dispose()
    return out


#: source settings that change no value of a table (anything else means cleaning)
_SCAN_SETTINGS = frozenset({"timezone", "currency", "organisation", "gross_margin"})


def parquet_scan(spec: SourceSpec) -> tuple[dict[str, Path], str] | None:
    """The Parquet file of each table when ``spec`` can be scanned in place, else None.

    A folder qualifies when every table is a Parquet file named after the
    canonical table and the source declares nothing that rewrites values
    (no column or value mapping, derived columns, scale factors, date or
    number formats, goals YAML): the files' columns are then read as they
    are. Returns the files and the source's description. Whether their types and values are canonical is checked per column
    by :func:`kpireport.data.load.load`, which falls back to the pandas path
    when they are not.
    """
    if spec.kind != "folder" or spec.goals_file is not None:
        return None
    if set(spec.settings) - _SCAN_SETTINGS:
        return None
    folder: Path = spec.location
    files = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    out: dict[str, Path] = {}
    for canonical, mapping in spec.tables.items():
        if (
            str(mapping.name) != str(canonical)
            or mapping.columns
            or mapping.values
            or mapping.date_format
            or mapping.derive
            or mapping.scale
        ):
            return None
        found = [files[str(canonical) + s] for s in _FOLDER_SUFFIXES if str(canonical) + s in files]
        if len(found) > 1 or (found and _FOLDER_SUFFIXES[found[0].suffix.lower()] != "parquet"):
            return None
        if found:
            out[str(canonical)] = found[0]
    description = spec.description
    if description.startswith("folder "):  # as _read_folder says it
        kinds = {_FOLDER_SUFFIXES.get(Path(p).suffix.lower()) for p in files}
        kinds.discard(None)
        if kinds:
            description = f"{'/'.join(sorted(k.upper() for k in kinds))} " + description
    return out, description
