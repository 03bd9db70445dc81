"""Evaluation context of every KPI: the dataset's scopes, intervals and cache.

The rows themselves are aggregated by SQL (:mod:`kpireport.kpis.relational`,
embedded DuckDB or a database in place); this module holds what the queries
are asked for and where their (small) results go.

Design decisions
----------------
* **One cache per dataset.** :func:`prepared` keeps one :class:`Prepared` per
  :class:`CrmData` object (keyed on the object's identity, on
  :meth:`CrmData.cache_token` — the very arrays behind every column, kept
  alive by the entry so an id is never reused — and on the identity of its
  ``engine``; a ``weakref.finalize`` drops the entry when the dataset is
  garbage collected). It holds the dataset's SQL engine (an embedded DuckDB
  over the tables, created on first use, or ``CrmData.engine``), the memoised
  query results and the scope ids. A replaced column or table
  (``data.deals["value"] *= 2``) changes the token, so the DuckDB
  registration and every memoised result are rebuilt; in-place writes are
  refused by read-only arrays (docs/DATA.md).
* **Many periods at once.** A KPI is evaluated for a list of half-open
  intervals ``[start, end)`` (the periods cut at ``as_of``) and every scope id
  in one query per formula: the intervals travel as a ``VALUES`` table and the
  result is a ``(intervals, scope ids + 1)`` array.
* **Attribution.** A row's team is its seller's *current* team in the
  ``sellers`` table (the contract has no team history). Rows without a
  (known) seller/team/company for the requested scope land in an extra
  *unattributed* column (the last one), so that teams + unattributed
  reconcile with the organisation.
* **Scope ids come from the small tables**: teams and sellers from
  ``sellers``; customers are the ``companies`` ids followed by any id only
  referenced elsewhere (one Arrow dictionary encoding, :meth:`Prepared.customer_ids`).
* **Breakdowns (lead source).** A :class:`Split` on the :class:`Context`
  crosses the scope columns with the categories of one table (the lead's
  ``source``): column ``scope column * k + category``. Only formulas whose
  rows all come from the split table (the lead KPIs) can be broken down; any
  other raises :class:`~kpireport.errors.KpiError`.
* **Cut-off.** "Ever" look-ups (lead conversion, the typical sales cycle, CLV)
  ignore data on or after the cut-off (``as_of`` + 1 day), so a report for a
  past ``as_of`` never sees the future.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpireport.constants import Scope, Table
from kpireport.data.model import CrmData
from kpireport.kpis.cube import PERSISTED
from kpireport.kpis.relational import UNKNOWN, DuckDBEngine, SqlEngine
from kpireport.periods import Period

log = logging.getLogger("kpireport")

NS_PER_DAY = 86_400 * 10**9
NAT = np.iinfo(np.int64).min
NEVER = np.iinfo(np.int64).max
#: scope_id shown for rows that no team/seller/customer can be attributed to
UNATTRIBUTED = "(unattributed)"
#: breakdown category of rows whose category (lead ``source``) is missing or blank:
#: :data:`~kpireport.kpis.relational.UNKNOWN` (imported above)

T = TypeVar("T")


# --------------------------------------------------------------------- helpers
def to_ns(values: pd.Series) -> np.ndarray:
    """Return a date column as ``int64`` nanoseconds (``NaT`` -> ``NAT``)."""
    if not pd.api.types.is_datetime64_dtype(values.dtype):
        values = pd.to_datetime(values)
    return values.to_numpy(dtype="datetime64[ns]").view("i8")


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where the denominator is zero (never inf)."""
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def arrow_strings(values: pd.Series) -> pa.ChunkedArray:
    """A text/id column as a pyarrow string array (zero-copy for ``str`` dtype)."""
    arr = getattr(values.array, "__arrow_array__", None)
    out = (
        arr()
        if arr is not None
        else pa.array(values.astype("str").to_numpy(dtype=object), pa.string(), from_pandas=True)
    )
    if isinstance(out, pa.Array):
        out = pa.chunked_array([out])
    if not (pa.types.is_string(out.type) or pa.types.is_large_string(out.type)):
        out = out.cast(pa.string())
    return out


# ----------------------------------------------------------------- prepared
class Prepared:
    """Integer-coded, cached view of a :class:`CrmData` for fast aggregation."""

    def __init__(self, data: CrmData) -> None:
        # the tables, not the CrmData: the cache must not keep the dataset alive
        self.tables = data.tables
        sellers = data.tables[Table.SELLERS]
        self.seller_ids = pd.Index(sellers["seller_id"].astype("str"), name="seller_id")
        team = sellers["team"].astype("str")
        self.team_ids = pd.Index(sorted(team.dropna().unique()), name="team", dtype="str")
        self.seller_team = np.asarray(self.team_ids.get_indexer(team), dtype=np.int64)
        self._cache: dict[tuple, object] = {}
        self._sql_engine = getattr(data, "engine", None)
        # a Parquet folder read in place (kpireport.data.model.ScanData): the
        # queries run on DuckDB views over its files, never on pandas frames
        views = getattr(data, "scan_views", None)
        self._views = views() if views is not None else None
        # a report kernel's snapshot dataset: its query results come from the
        # run's KPI cube, a look-up it lacks is a counted miss (kpireport.kpis.cube)
        self.cube = getattr(data, "cube", None)
        if self.cube is not None:
            self._cache.update(self.cube.entries)

    def sql_engine(self) -> SqlEngine:
        """The engine the relational KPI queries run on (:mod:`kpireport.kpis.relational`).

        ``CrmData.engine`` when set (a database queried in place), else an
        embedded DuckDB over this dataset's tables, created on first use.
        """
        if self._sql_engine is not None:
            return self._sql_engine
        if self.cube is not None:  # a cube miss: DuckDB over the snapshot's Parquet files
            return self.memo(("duckdb",), self.cube.engine)
        if self._views:
            return self.memo(("duckdb",), lambda: _view_engine(self._views))
        return self.memo(("duckdb",), lambda: DuckDBEngine.from_frames(self.tables))

    # ------------------------------------------------------------ look-ups
    def has(self, table: str) -> bool:
        return table in self.tables

    def frame(self, table: str) -> pd.DataFrame:
        """``table`` for questions about its shape (columns, rows, any value in a column).

        On a cube dataset a raw table not read yet is its one-row stub
        (:meth:`kpireport.kpis.cube.LazyTables.peek`); values are read
        through ``self.tables`` (:meth:`floats`, :meth:`_company_encoding`).
        """
        peek = getattr(self.tables, "peek", None)
        return peek(table) if peek is not None else self.tables[table]

    def memo(self, key: tuple, fn: Callable[[], T]) -> T:
        """Compute ``fn()`` once per key."""
        if key not in self._cache:
            if self.cube is not None and key[0] in PERSISTED:
                self.cube.missed(key)
            self._cache[key] = fn()
        return self._cache[key]

    def query(self, sql: str) -> list[tuple]:
        """The rows of ``sql`` on the engine, memoised (and kept in the cube) as ``("sql", sql)``.

        For the few look-ups outside the KPI formulas (a report's funnel
        counts, the stage win rates, the goal ids a goal table names): they
        are answered by the run's cube like every KPI query.
        """
        return self.memo(("sql", sql), lambda: self.sql_engine().fetch(sql))

    def rows(self, sql: str, like: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``sql`` as a frame with ``like``'s columns and dtypes, memoised.

        ``sql`` selects ``like``'s columns in order (``SELECT * FROM table
        WHERE …``); rows keep the table's order (DuckDB preserves insertion
        order), the index is a ``RangeIndex``. Kept in the cube as a Parquet
        frame under ``("frame", sql)``: for a small per-run table such as the
        deals open on ``as_of`` (:func:`kpireport.goals.evaluate.open_deals_at`).
        Treat the result as read-only (copy before changing it).
        """

        def build() -> pd.DataFrame:
            cols = self.sql_engine().columns(sql) or [np.array([], object)] * len(like.columns)
            out = {}
            for name, values in zip(like.columns, cols, strict=True):
                dtype = like[name].dtype
                if pd.api.types.is_datetime64_dtype(dtype):
                    values = pd.to_datetime(pd.Series(values, dtype=object))
                out[name] = pd.Series(values).astype(dtype)
            return pd.DataFrame(out, columns=like.columns)

        return self.memo(("frame", sql), build)

    def date_range(self, table: str, column: str) -> tuple[int, int] | None:
        """Earliest and latest ``table.column`` as ``int64`` ns (``None``: no dates).

        One ``MIN``/``MAX`` query on the engine (:meth:`sql_engine`).
        """

        def build() -> tuple[int, int] | None:
            if not self.has(table) or column not in self.frame(table):
                return None
            lo, hi = self.sql_engine().fetch(f"SELECT MIN({column}), MAX({column}) FROM {table}")[0]
            if lo is None:
                return None
            return pd.Timestamp(lo).value, pd.Timestamp(hi).value

        return self.memo(("range", table, column), build)

    def floats(self, table: str, column: str) -> np.ndarray:
        """``float64`` values of ``table.column`` (NaN kept)."""
        return self.memo(
            ("f", table, column),
            lambda: (
                self._column(table, column).to_numpy().astype("float64")
                if hasattr(self.tables, "column")
                else pd.to_numeric(self.tables[table][column]).to_numpy(
                    dtype="float64", na_value=np.nan
                )
            ),
        )

    def _column(self, table: str, column: str) -> pa.ChunkedArray:
        """One column as Arrow; a table read in place gives it without reading the others."""
        col = getattr(self.tables, "column", None)
        if col is not None:
            return col(table, column)
        return arrow_strings(self.tables[table][column])

    def _company_encoding(
        self,
        tables: tuple[str, ...] = (
            Table.COMPANIES,
            Table.DEALS,
            Table.REVENUE,
            Table.LEADS,
            Table.ACTIVITIES,
        ),
    ) -> tuple[pd.Index, dict[str, np.ndarray]]:
        """One dictionary encoding of ``company_id`` over several tables.

        The ids are the ``companies`` table's (in its order) followed by any id
        only referenced elsewhere; one hash pass over the columns, no sort.
        The default (every table) defines the customer scope ids; a subset is
        cheaper when only identity across those tables matters.
        """

        def build() -> tuple[pd.Index, dict[str, np.ndarray]]:
            names, arrays = [], []
            for table in tables:
                if self.has(table) and "company_id" in self.frame(table):
                    names.append(table)
                    arrays.append(self._column(table, "company_id"))
            if not arrays:
                return pd.Index([], dtype="str", name="company_id"), {}
            if len({a.type for a in arrays}) > 1:
                arrays = [a.cast(pa.large_string()) for a in arrays]
            chunks = [c for a in arrays for c in a.chunks]
            enc = pc.dictionary_encode(
                pa.chunked_array(chunks, type=arrays[0].type)
            ).combine_chunks()
            idx = enc.indices.fill_null(-1).to_numpy().astype(np.int64)
            ids = pd.Index(
                enc.dictionary.to_pandas(types_mapper=pd.ArrowDtype).astype("str"),
                name="company_id",
            )
            bounds = np.cumsum([0, *map(len, arrays)])
            return ids, {n: idx[bounds[i] : bounds[i + 1]] for i, n in enumerate(names)}

        return self.memo(("company_encoding", tables), build)

    @property
    def customer_ids(self) -> pd.Index:
        """Company ids: the ``companies`` table plus any id referenced elsewhere."""
        return self._company_encoding()[0]

    def lead_sources(self) -> pd.Index:
        """The lead-source labels of the ``source`` breakdown, in column order.

        The distinct stripped, non-blank ``leads.source`` values (one query),
        sorted, then :data:`UNKNOWN` when some lead has no (or a blank) source.
        Values are kept verbatim otherwise (``Web`` and ``web`` are two sources).
        """

        def build() -> pd.Index:
            if not self.has(Table.LEADS) or "source" not in self.frame(Table.LEADS):
                return pd.Index([UNKNOWN], dtype="str", name="source")
            rows = self.sql_engine().fetch("SELECT DISTINCT NULLIF(TRIM(source), '') FROM leads")
            values = [r[0] for r in rows]
            labels = sorted(str(v) for v in values if v is not None)
            if None in values or not labels:
                labels.append(UNKNOWN)
            return pd.Index(labels, dtype="str", name="source")

        return self.memo(("lead_sources",), build)

    # ----------------------------------------------------------- scopes
    def scope_ids(self, scope: Scope) -> pd.Index:
        """The ids of ``scope`` in code order (organisation: one ``None`` id)."""
        if scope == Scope.ORGANISATION:
            return pd.Index([None], dtype="object")
        if scope == Scope.TEAM:
            return self.team_ids
        if scope == Scope.SELLER:
            return self.seller_ids
        return self.customer_ids

    def seller_active(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``(intervals, sellers)`` bool: seller active on some day of the interval.

        ``active_to`` is the last active day (inclusive); missing bounds are open.
        """
        lo, hi = self.seller_bounds()
        return (lo[None, :] < ends[:, None]) & (hi[None, :] > starts[:, None])

    def seller_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Active ``[from, to + 1 day)`` of each seller as ns (open bounds = +-inf)."""

        def build() -> tuple[np.ndarray, np.ndarray]:
            s = self.tables[Table.SELLERS]
            n = len(s)
            lo = to_ns(s["active_from"]) if "active_from" in s else np.full(n, NAT)
            hi = to_ns(s["active_to"]) if "active_to" in s else np.full(n, NAT)
            hi = np.where(hi == NAT, NEVER, hi + NS_PER_DAY)
            return lo, hi

        return self.memo(("seller_bounds",), build)


def _view_engine(views: dict[str, str]) -> DuckDBEngine:
    """An embedded DuckDB whose tables are the ``SELECT``s of a dataset read in place."""
    import duckdb

    from kpireport.kpis.relational import quote_ident

    con = duckdb.connect(":memory:")
    for name, select in views.items():
        con.execute(f"CREATE VIEW {quote_ident(name)} AS {select}")
    return DuckDBEngine(con)


_PREPARED: dict[int, tuple[tuple[object, ...], Prepared]] = {}
#: caches inherited through fork(), kept alive and never used again
_INHERITED: list[dict] = []


def _after_fork_in_child() -> None:
    """A forked child (the report runner forks) starts with an empty cache.

    DuckDB's threads and locks do not survive a fork, so the parent's
    connections must not be used in the child, and must not be destroyed there
    either (the destructor would wait for threads that do not exist): they are
    parked in :data:`_INHERITED` for the life of the child.
    """
    _INHERITED.append(dict(_PREPARED))
    _PREPARED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def prepared(data: CrmData) -> Prepared:
    """The cached :class:`Prepared` view of ``data`` (built on first use)."""
    key = id(data)
    # the entry keeps the token's objects (and the engine) alive: ids stay unique
    token = (*data.cache_token(), getattr(data, "engine", None))
    hit = _PREPARED.get(key)
    if hit is not None and _same(hit[0], token):
        return hit[1]
    prep = Prepared(data)
    if hit is None:
        weakref.finalize(data, _PREPARED.pop, key, None)
    _PREPARED[key] = (token, prep)
    return prep


def _same(old: tuple[object, ...], new: tuple[object, ...]) -> bool:
    """True when two cache tokens describe the same content.

    Arrays, frames and engines must be the very same objects; plain values
    (names, column lists, settings) are taken afresh by every token and
    compared by value.
    """
    return len(old) == len(new) and all(
        a is b or (isinstance(a, str | tuple) and type(a) is type(b) and a == b)
        for a, b in zip(old, new, strict=True)
    )


# ------------------------------------------------------------------ context
@dataclass(frozen=True)
class Split:
    """A breakdown of one table's rows into categories (module docstring).

    Attributes
    ----------
    name
        Name of the breakdown (``source``); also the result column.
    table
        The table whose rows carry a category (its ``source`` column).
    labels
        The category labels, in code order.
    """

    name: str
    table: str
    labels: pd.Index

    @property
    def k(self) -> int:
        """Number of categories."""
        return len(self.labels)


@dataclass
class Context:
    """One evaluation request: a dataset, a scope and a list of intervals.

    Attributes
    ----------
    prep
        The prepared dataset.
    scope
        Scope of the result columns.
    periods
        The full calendar periods (for navigation: previous, last year, YTD).
    starts, ends
        The evaluated intervals (``int64`` ns): the periods, cut at ``as_of``.
    cutoff
        Data on or after this instant is ignored by "ever" look-ups.
    select
        When set, only this scope code is kept (column 0); everything else is
        unattributed. Used by single-series requests.
    split
        When set, every scope column is crossed with the split's categories:
        column ``scope_col * split.k + category`` (see the module docstring).
    """

    prep: Prepared
    scope: Scope
    periods: Sequence[Period]
    starts: np.ndarray
    ends: np.ndarray
    cutoff: int
    select: int | None = None
    settings: dict = field(default_factory=dict)
    split: Split | None = None

    @property
    def scope_width(self) -> int:
        """Number of scope columns (scope ids + unattributed)."""
        n = 1 if self.select is not None else len(self.prep.scope_ids(self.scope))
        return n + 1

    @property
    def width(self) -> int:
        """Number of result columns (scope columns x split categories)."""
        return self.scope_width * (1 if self.split is None else self.split.k)

    def with_intervals(self, starts: np.ndarray, ends: np.ndarray) -> Context:
        """The same request over other intervals (comparison periods)."""
        return Context(
            self.prep,
            self.scope,
            self.periods,
            starts,
            ends,
            self.cutoff,
            self.select,
            self.settings,
            self.split,
        )

    def cell_notes(self) -> np.ndarray:
        """An empty ``(intervals, width)`` note array."""
        return np.full((len(self.starts), self.width), None, dtype=object)
