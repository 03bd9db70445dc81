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
* **Secrets.** The resolved password stays inside :mod:`kpireport.data.sources`;
  ``CrmData.source`` is a description with the password masked.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from kpireport.data import sources
from kpireport.data.coerce import canonicalise, row_numbers
from kpireport.data.model import CrmData
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
