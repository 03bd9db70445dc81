"""Load a CRM source into canonical :class:`~kpireport.data.model.CrmData` (SPEC §2).

:func:`load` reads like the pipeline it runs::

    spec  = sources.resolve(source)           # path / URL / YAML -> where and how
    raw   = sources.read_raw(spec)            # tables as the source has them
    canon = coerce.canonicalise(raw, ...)     # rename, parse, type; unreadable cells
    problems, warnings = validate.check_tables(canon.tables, ...)
    tables = convert_currency(canon.tables, reporting_currency)
    return CrmData(tables, ...)

Design decisions
----------------
* **Everything is checked before anything is returned.** Parse failures and
  contract violations are collected together and raised as one
  :class:`~kpireport.errors.DataContractError`; warnings ride on
  ``CrmData.warnings``.
* **Row numbers survive.** Every canonical frame is indexed by the 1-based data
  row number of the source (CSV data row N is file line N+1), so later stages
  can point back at a row too.
* **Currencies.** Amounts (``deals.value``, ``revenue.amount``,
  ``costs.amount``) in a currency other than the reporting currency are
  converted with the ``rates`` table (1 unit of ``currency`` = ``rate`` units of
  the reporting currency). A dated rates table applies the latest rate on or
  before the row's date (deals: ``closed_at``, else ``created_at``); rows older
  than the first rate use the first rate. Undated rates apply to every date.
  After conversion the ``currency`` column holds the reporting currency. When
  the source declares no ``currency`` and the data uses exactly one, that one
  is the reporting currency; with none at all it is EUR.
* **Parquet folders are read in place** (issue 10, item 2). A folder that
  :func:`~kpireport.data.sources.parquet_scan` accepts (all Parquet, no
  mapping or format settings) and whose files :func:`_scan_plan` finds clean
  (canonical names and Arrow types; text the parser would not change, checked
  per column with the parser's own test, low-cardinality columns through
  their Parquet dictionary; one currency, none missing) is not read into
  pandas: the contract rules run over ``read_parquet`` views with
  ``file_row_number`` as the row position (same sentences, same row
  numbers), and the result is a :class:`~kpireport.data.model.ScanData`
  whose tables materialise on demand through :func:`canonicalise_table`
  (the same frame as the pandas path) and whose KPI queries run on DuckDB
  views over the files. Anything else keeps the pandas path: correctness
  first, the scan is only an optimisation.
* **Secrets.** The resolved password stays inside :mod:`kpireport.data.sources`;
  ``CrmData.source`` is a description with the password masked.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import zoneinfo
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpireport.data import sources
from kpireport.data.coerce import (
    LOWER_COLUMNS,
    _chunk_is_clean,
    canonicalise,
    canonicalise_table,
    row_numbers,
)
from kpireport.data.model import CrmData, ScanData, ScanTables
from kpireport.data.schema import REQUIRED_TABLES, SCHEMAS
from kpireport.data.validate import MONEY, Rule, check_tables, distinct
from kpireport.errors import DataContractError, SourceError

log = logging.getLogger("kpireport")

DEFAULT_CURRENCY = "EUR"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_ORGANISATION = "Organisation"

SourceLike = str | os.PathLike[str] | CrmData | Mapping[str, pd.DataFrame]


def load(
    source: SourceLike,
    *,
    timezone: str | None = None,
    validate: bool = True,
    date_format: str | None = None,
    as_of: dt.date | pd.Timestamp | str | None = None,
    currency: str | None = None,
    rules: Sequence[Rule] = (),
) -> CrmData:
    """Load CRM data from a source, in canonical form, validated.

    Parameters
    ----------
    source
        One of: a folder of CSV or Parquet files named after the tables
        (``deals.csv``); an Excel workbook (one sheet per table); a SQLAlchemy
        URL (``sqlite:///crm.db``, ``postgresql://...``) or a SQLite file; a
        source YAML (``.yaml``/``.yml``) that points at one of these with
        ``path:`` or ``url:`` and maps the CRM's names onto ours; a dict of
        DataFrames with canonical names; or a :class:`CrmData`, returned as is.
    timezone
        IANA zone of the organisation's calendar; overrides the source's
        ``timezone`` setting (default UTC).
    validate
        Raise :class:`~kpireport.errors.DataContractError` when the data breaks
        the contract (default). ``False`` loads what can be parsed and only logs
        the problems: for exploring a broken export, never for reports.
    date_format
        ``strftime`` format of day/month text dates (e.g. ``"%d/%m/%Y"``);
        overrides the source's ``date_format``. ISO dates are always accepted.
    as_of
        Reference day for warnings about future dates and overdue open deals
        (skipped when None).
    currency
        Reporting currency (ISO 4217); overrides the source's ``currency``.
        Needed when amounts come in several currencies.
    rules
        Extra validation rules of later stages (``kpireport validate`` adds
        the goal-table rule of :data:`kpireport.goals.check.GOAL_TABLE_RULES`).

    Returns
    -------
    CrmData
        Canonical tables (index = 1-based source row number), settings and
        warnings.

    Raises
    ------
    SourceError
        The source cannot be found, opened or mapped, or lacks a required
        table (``sellers``, ``deals``).
    DataContractError
        The data breaks the contract; every problem is listed.
    """
    if isinstance(source, CrmData):
        return source
    if isinstance(source, Mapping):
        spec = sources.SourceSpec("frames", None, "in-memory tables", _default_mappings())
        raw = {str(k): _renumber(v) for k, v in source.items()}
    else:
        spec = sources.resolve(source)
        settings = dict(spec.settings)
        tz = _timezone(timezone or settings.get("timezone") or DEFAULT_TIMEZONE)
        scan = None if date_format else sources.parquet_scan(spec)
        declared_raw = currency or settings.get("currency")
        declared = str(declared_raw).strip().upper() if declared_raw else None
        plan = _scan_plan(scan[0], declared) if scan is not None else None
        if plan is not None:
            return _load_scan(plan, spec, scan[1], tz, declared, timezone, as_of, rules, validate)
        raw = sources.read_raw(spec)
    settings = dict(spec.settings)
    tz = _timezone(timezone or settings.get("timezone") or DEFAULT_TIMEZONE)
    missing = [t for t in REQUIRED_TABLES if t not in raw]
    if missing:
        where = spec.description
        found = ", ".join(sorted(raw)) or "none"
        names = ", ".join(
            f"'{spec.tables[t].name}'" if t in spec.tables else f"'{t}'" for t in missing
        )
        raise SourceError(
            f"The source {where} has no {names} table (required: {', '.join(REQUIRED_TABLES)}; found: {found}).",
            hint="Name files/sheets/tables after the canonical tables or map them under 'tables:' in a source YAML.",
        )
    canon = canonicalise(
        raw,
        timezone=tz,
        mappings=spec.tables,
        date_format=date_format or settings.get("date_format"),
        decimal=settings.get("decimal"),
        thousands=settings.get("thousands"),
        excel=spec.kind == "excel",
    )
    declared_raw = currency or settings.get("currency")
    declared = str(declared_raw).strip().upper() if declared_raw else None
    problems, warnings = check_tables(
        canon.tables, currency=declared, as_of=as_of, flagged=canon.flagged, rules=rules
    )
    warnings = [p for p in canon.problems if p.severity != "error"] + warnings
    problems = [p for p in canon.problems if p.severity == "error"] + problems
    if problems:
        if validate:
            raise DataContractError(problems, warnings=warnings)
        for p in problems:
            log.warning("data problem (validation disabled): %s", p.sentence())
    reporting = declared or _single_currency(canon.tables) or DEFAULT_CURRENCY
    tables = convert_currency(canon.tables, reporting)
    extra = {k: v for k, v in settings.items() if k not in {"timezone", "currency", "organisation"}}
    extra.setdefault("gross_margin", 1.0)
    for p in warnings:
        log.info("data warning: %s", p.sentence())
    said = _defaults_used(spec.description, timezone or settings.get("timezone"), settings)
    if said:  # a folder or file without a source YAML: say what was assumed
        log.log(logging.INFO if spec.kind == "frames" else logging.WARNING, "%s", said)
    return CrmData(
        tables=tables,
        timezone=tz,
        currency=reporting,
        organisation=str(settings.get("organisation") or DEFAULT_ORGANISATION),
        settings=extra,
        source=spec.description,
        warnings=list(warnings),
    )


# ------------------------------------------------------------ Parquet scan
@dataclass
class _ScanPlan:
    """What :func:`_scan_plan` learnt about a Parquet folder that needs no cleaning."""

    paths: dict[str, Path]
    columns: dict[str, list[str]]  # the canonical columns each file has
    rows: dict[str, int]
    firsts: dict[str, dict[str, Any]]  # a non-missing value per column (for the stubs)
    currency: str
    unique: set[tuple[str, str]]  # text columns whose values are strictly increasing


def _scan_plan(paths: Mapping[str, Path], declared: str | None) -> _ScanPlan | None:
    """The plan to read ``paths`` in place, or None when some column needs cleaning.

    A file qualifies when its columns are exactly canonical names (each once,
    every required one present) of the canonical Arrow types (text as
    ``string``, dates as naive ``timestamp[ns]``, numbers as ``double``) and
    its values are what :func:`~kpireport.data.coerce.canonicalise` would
    leave unchanged: text without leading/trailing whitespace or empty
    strings (the parser's own test, :func:`~kpireport.data.coerce._chunk_is_clean`),
    vocabularies already lower case, currency codes upper case, no infinite
    numbers, and amounts in one currency with none missing (so there is
    nothing to convert or fill). Text columns are read one at a time; dates
    and numbers only through the file's metadata (their first value from the
    row-group statistics).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not all(t in paths for t in REQUIRED_TABLES):
        return None
    columns: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    firsts: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    unique: set[tuple[str, str]] = set()
    tasks: list[tuple[str, Path, int, str, str]] = []
    money = {t for t, _ in MONEY}
    for name, path in paths.items():
        try:
            pf = pq.ParquetFile(path)
        except Exception:  # the pandas path says why it cannot be read
            return None
        schema = pf.schema_arrow
        kinds = {c.name: c.kind for c in SCHEMAS[name].columns}
        have = list(schema.names)
        if len(set(have)) != len(have) or not set(have) <= set(kinds):
            return None
        if any(c.required and c.name not in have for c in SCHEMAS[name].columns):
            return None
        rows[name] = pf.metadata.num_rows
        columns[name] = have
        firsts[name] = {}
        for i, col in enumerate(have):
            t, kind = schema.field(col).type, kinds[col]
            if kind == "date":
                ok = pa.types.is_timestamp(t) and t.tz is None and t.unit in ("ns", "us")
                if ok and t.unit == "us" and not _in_ns_range(pf, i):
                    return None  # the parser reports dates outside 1677-2262
            elif kind == "float":
                ok = pa.types.is_float64(t)
            else:
                ok = pa.types.is_string(t) or pa.types.is_large_string(t)
            if not ok:
                return None
            if kind in ("date", "float"):
                first = _first_from_stats(pf, i)
                if first is _UNKNOWN or kind == "float":
                    arr = pf.read(columns=[col]).column(0)
                    if kind == "float" and pc.any(pc.is_inf(arr)).as_py():
                        return None
                    if first is _UNKNOWN:
                        valid = arr.drop_null()
                        first = valid[0].as_py() if len(valid) else None
                firsts[name][col] = first
                continue
            tasks.append((name, path, i, col, kind))
    with ThreadPoolExecutor(max_workers=2) as pool:  # pyarrow reads without the GIL
        judged = list(pool.map(lambda task: _judge_text(*task), tasks))
    for (name, _path, _i, col, _kind), verdict in zip(tasks, judged, strict=True):
        if verdict is None:
            return None
        first, values, increasing = verdict
        firsts[name][col] = first
        if col == "currency" and name in money:
            used |= values
        if increasing:
            unique.add((name, col))  # the duplicate-id rule need not look (validate)
    if len(used) > 1 or (declared and used - {declared}):
        return None  # conversion (or the several-currencies problem): the pandas path
    reporting = declared or (used.pop() if used else DEFAULT_CURRENCY)
    return _ScanPlan(dict(paths), columns, rows, firsts, reporting, unique)


def _judge_text(
    name: str, path: Path, i: int, col: str, kind: str
) -> tuple[Any, set[str], bool] | None:
    """One text column: None when it needs cleaning, else (a value, its currencies, unique)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    arr = _text_column(pq.ParquetFile(path), path, i, col)
    nulls = arr.null_count  # of the column (a dictionary's own nulls say nothing)
    plain = not pa.types.is_dictionary(arr.type)
    if not plain:  # a few distinct values: judge those
        dicts = [ch.dictionary for ch in arr.chunks if len(ch)]
        arr = pa.chunked_array(dicts if nulls < len(arr) else [], arr.type.value_type)
    if not all(_chunk_is_clean(ch) for ch in arr.chunks):
        return None
    if (kind == "category" or (name, col) in LOWER_COLUMNS) and not _all_equal(
        arr, pc.utf8_lower(arr)
    ):
        return None
    values: set[str] = set()
    if col == "currency":
        if not _all_equal(arr, pc.utf8_upper(arr)) or nulls:
            return None  # a missing currency is filled by the pandas path
        values = set(pc.unique(arr).to_pylist())
    valid = arr.drop_null()
    first = valid[0].as_py() if len(valid) else None
    increasing = plain and col in (SCHEMAS[name].id_column, "org_number") and _increasing(valid)
    return first, values, increasing


def _increasing(arr: Any) -> bool:
    import pyarrow.compute as pc

    n = len(arr)
    return n < 2 or bool(pc.all(pc.greater(arr.slice(1), arr.slice(0, n - 1))).as_py())


_UNKNOWN = object()


def _first_from_stats(pf: Any, i: int) -> Any:
    """A non-missing value of column ``i`` from the row-group statistics (``_UNKNOWN``: none kept)."""
    md = pf.metadata
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(i).statistics
        if st is None or not st.has_min_max:
            if md.row_group(g).num_rows and (
                st is None or st.null_count != md.row_group(g).num_rows
            ):
                return _UNKNOWN
            continue
        return st.min
    return (
        None
        if md.num_rows == 0
        or all(md.row_group(g).column(i).statistics is not None for g in range(md.num_row_groups))
        else _UNKNOWN
    )


def _text_column(pf: Any, path: Path, i: int, col: str) -> Any:
    """Text column ``i``; a low-cardinality one (few bytes a value) as a dictionary array.

    Decoding a dictionary-encoded column to strings costs as much as an id
    column; its dictionary holds every distinct value, so the cleaning
    checks need only that.
    """
    import pyarrow.parquet as pq

    md = pf.metadata
    size = sum(md.row_group(g).column(i).total_uncompressed_size for g in range(md.num_row_groups))
    if md.num_rows and size / md.num_rows < 4:
        return pq.read_table(path, columns=[col], read_dictionary=[col]).column(0)
    return pf.read(columns=[col]).column(0)


def _in_ns_range(pf: Any, i: int) -> bool:
    """True when the statistics prove every value of column ``i`` fits ``datetime64[ns]``."""
    import datetime as _dt

    lo, hi = _dt.datetime(1677, 9, 22), _dt.datetime(2262, 4, 10)
    md = pf.metadata
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(i).statistics
        if st is None:
            return False
        if st.has_min_max and not (lo <= st.min and st.max <= hi):
            return False
        if not st.has_min_max and st.null_count != md.row_group(g).num_rows:
            return False
    return True


def _all_equal(a: Any, b: Any) -> bool:
    import pyarrow.compute as pc

    return bool(pc.all(pc.equal(a, b)).as_py() is not False)


_SQL_TYPES = {"date": "TIMESTAMP_NS", "float": "DOUBLE"}


def scan_select(plan: _ScanPlan, name: str, *, positions: bool = False) -> str:
    """The DuckDB ``SELECT`` reading table ``name`` from its file with the canonical columns.

    Missing optional columns are typed ``NULL``; ``positions`` adds ``_pos``
    (0-based row position) and ``_row`` (the 1-based row number the user sees).
    """
    have = set(plan.columns[name])
    cols = []
    for c in SCHEMAS[name].columns:
        if c.name in have and c.kind == "date":  # microsecond files read as the frames' ns
            cols.append(f'CAST("{c.name}" AS TIMESTAMP_NS) AS "{c.name}"')
        elif c.name in have:
            cols.append(f'"{c.name}"')
        else:
            cols.append(f'CAST(NULL AS {_SQL_TYPES.get(c.kind, "VARCHAR")}) AS "{c.name}"')
    path = str(plan.paths[name]).replace("'", "''")
    if positions:
        cols += ["file_row_number AS _pos", "file_row_number + 1 AS _row"]
        return f"SELECT {', '.join(cols)} FROM read_parquet('{path}', file_row_number = true)"
    return f"SELECT {', '.join(cols)} FROM read_parquet('{path}')"


def _load_scan(
    plan: _ScanPlan,
    spec: sources.SourceSpec,
    description: str,
    tz: str,
    declared: str | None,
    timezone: str | None,
    as_of: Any,
    rules: Sequence[Rule],
    validate: bool,
) -> CrmData:
    """:func:`load` for a Parquet folder read in place (module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings = dict(spec.settings)
    currency = plan.currency

    def read(name: str) -> pd.DataFrame:
        raw = sources._read_parquet(plan.paths[name])
        frame = canonicalise_table(name, raw, timezone=tz)[0]
        if name in {t for t, _ in MONEY}:
            frame = convert_currency({name: frame}, currency)[name]
        return frame

    def stub(name: str) -> pd.DataFrame:
        n = 1 if plan.rows[name] else 0
        raw = {}
        for c in plan.columns[name]:
            v = plan.firsts[name].get(c)
            raw[c] = pd.Series(
                [v] * n,
                dtype=_STUB_DTYPES.get(_kind(name, c), "str"),
                index=pd.RangeIndex(1, n + 1),
            )
        frame = pd.DataFrame(raw, index=pd.RangeIndex(1, n + 1))
        return canonicalise_table(name, frame, timezone=tz)[0]

    def column(name: str, col: str) -> pa.ChunkedArray:
        if col not in plan.columns[name]:
            kind = _kind(name, col)
            typ = {"date": pa.timestamp("ns"), "float": pa.float64()}.get(kind, pa.large_string())
            return pa.chunked_array([pa.nulls(plan.rows[name], typ)])
        return pq.read_table(plan.paths[name], columns=[col]).column(0)

    names = list(plan.paths)
    tables = ScanTables(
        names, read, {n: stub(n) for n in names}, plan.rows, column, unique=plan.unique
    )
    views = {n: scan_select(plan, n, positions=True) for n in names}
    problems, warnings = check_tables(
        tables, currency=declared, as_of=as_of, rules=rules, views=views
    )
    if problems:
        if validate:
            raise DataContractError(problems, warnings=warnings)
        for p in problems:
            log.warning("data problem (validation disabled): %s", p.sentence())
    extra = {k: v for k, v in settings.items() if k not in {"timezone", "currency", "organisation"}}
    extra.setdefault("gross_margin", 1.0)
    for p in warnings:
        log.info("data warning: %s", p.sentence())
    said = _defaults_used(description, timezone or settings.get("timezone"), settings)
    if said:
        log.warning("%s", said)
    return ScanData(
        tables=tables,
        timezone=tz,
        currency=currency,
        organisation=str(settings.get("organisation") or DEFAULT_ORGANISATION),
        settings=extra,
        source=description,
        warnings=list(warnings),
        views={n: scan_select(plan, n) for n in names},
    )


_STUB_DTYPES = {"date": "datetime64[ns]", "float": "float64"}


def _kind(table: str, column: str) -> str:
    return next(c.kind for c in SCHEMAS[table].columns if c.name == column)


# ------------------------------------------------------------------ helpers
def _defaults_used(description: str, timezone: Any, settings: Mapping[str, Any]) -> str | None:
    """The sentence naming the defaults a source without settings gets, or None.

    ``The source folder crm/ declares no time zone and no organisation: using
    UTC and 'Organisation' (set timezone: and organisation: in a source YAML,
    or pass timezone=).``
    """
    missing, used, keys = [], [], []
    if not timezone:
        missing.append("no time zone")
        used.append(DEFAULT_TIMEZONE)
        keys.append("timezone:")
    if not settings.get("organisation"):
        missing.append("no organisation")
        used.append(f"'{DEFAULT_ORGANISATION}'")
        keys.append("organisation:")
    if not missing:
        return None
    also = ", or pass timezone=" if not timezone else ""
    return (
        f"The source {description} declares {' and '.join(missing)}: using {' and '.join(used)} "
        f"(set {' and '.join(keys)} in a source YAML{also})."
    )


def _default_mappings() -> dict[str, sources.TableMapping]:
    return {name: sources.TableMapping(name) for name in SCHEMAS}


def _renumber(df: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise SourceError(f"Expected a DataFrame per table, got {type(df).__name__}.")
    out = df.copy()
    out.index = pd.Index(row_numbers(df))
    return out


def _timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise SourceError(
            f"'{name}' is not a known time zone.",
            hint="Use an IANA name such as Europe/Stockholm or UTC.",
        ) from None
    return str(name)


def _single_currency(tables: Mapping[str, pd.DataFrame]) -> str | None:
    used: set[str] = set()
    for table, _ in MONEY:
        if table in tables and "currency" in tables[table].columns:
            used |= {str(c) for c in distinct(tables[table]["currency"])}
    return used.pop() if len(used) == 1 else None


def _row_dates(table: str, df: pd.DataFrame) -> pd.Series:
    if table == "deals":
        return df["closed_at"].fillna(df["created_at"])
    return df["date"]


def _rates_for(cur: pd.Series, when: pd.Series, rates: pd.DataFrame | None) -> pd.Series:
    """Rate per row (NaN where the rates table has none for its currency)."""
    out = pd.Series(np.nan, index=cur.index, dtype="float64")
    if rates is None or not len(rates):
        return out
    r = rates.dropna(subset=["currency", "rate"])
    undated = (
        r[r["date"].isna()].drop_duplicates("currency", keep="last").set_index("currency")["rate"]
    )
    dated = r[r["date"].notna()].sort_values("date")
    if len(dated):
        left = pd.DataFrame(
            {"_i": np.arange(len(cur)), "currency": cur.to_numpy(), "date": when.to_numpy()}
        )
        left = left[left["date"].notna()].sort_values("date")
        right = dated[["currency", "date", "rate"]]
        for direction in ("backward", "forward"):
            m = pd.merge_asof(left, right, on="date", by="currency", direction=direction)
            vals = out.to_numpy().copy()
            pos = m["_i"].to_numpy()
            fill = np.isnan(vals[pos]) & m["rate"].notna().to_numpy()
            vals[pos[fill]] = m["rate"].to_numpy()[fill]
            out = pd.Series(vals, index=cur.index)
    fallback = cur.map(undated)
    return out.fillna(fallback.astype("float64"))


def convert_currency(tables: Mapping[str, pd.DataFrame], currency: str) -> dict[str, pd.DataFrame]:
    """Convert ``deals.value``, ``revenue.amount`` and ``costs.amount`` into ``currency``.

    Rows whose currency has no rate are left unconverted (validation reports
    them); rows without a currency are taken to be in ``currency`` already.

    Parameters
    ----------
    tables
        Canonical frames (a ``rates`` table with currency, rate and date).
    currency
        The reporting currency.

    Returns
    -------
    dict
        The tables, with converted copies of the money tables.
    """
    out = dict(tables)
    rates = tables.get("rates")
    for table, amount in MONEY:
        if table not in tables or "currency" not in tables[table].columns:
            continue
        df = tables[table]
        cur = df["currency"]
        foreign = cur.notna() & (cur != currency)
        if not foreign.any():
            if cur.isna().any():
                df = df.copy()
                df["currency"] = cur.fillna(currency)
                out[table] = df
            continue
        rate = _rates_for(cur[foreign], _row_dates(table, df)[foreign], rates)
        converted = rate.notna()
        if (~converted).any():
            log.warning(
                "%s: %d amount(s) have no exchange rate into %s and stay unconverted",
                table,
                int((~converted).sum()),
                currency,
            )
        df = df.copy()
        idx = rate.index[converted.to_numpy()]
        df.loc[idx, amount] = df.loc[idx, amount] * rate[converted]
        df.loc[idx, "currency"] = currency
        df["currency"] = df["currency"].fillna(currency)
        out[table] = df
    return out


def describe(source: Any) -> str:
    """A safe, human description of a source (password masked), without reading it."""
    if isinstance(source, CrmData):
        return source.source
    if isinstance(source, Mapping):
        return "in-memory tables"
    text = os.fspath(source)
    return sources.mask_url(text) if sources.looks_like_url(text) else text
