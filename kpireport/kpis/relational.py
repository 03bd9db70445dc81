"""Relational KPI layer: KPI aggregates as SQL, executed where the data lives.

This is the first stage of the single KPI engine of docs/ARCHITECTURE.md
("KPI engine"): the KPI formulas of :mod:`kpireport.kpis.definitions` that
aggregate rows per period and scope are written as relational queries and run
by **DuckDB** (embedded, nothing to start) over the dataset's tables, or by
any SQL database that holds the canonical tables (PostgreSQL is tested),
where only the aggregates come back.

Design decisions
----------------
* **Raw SQL plus SQLGlot, not Ibis.** Ibis 12 (the current release) cannot
  create or register a table on DuckDB 2.0 (its ``DROP VIEW IF EXISTS``
  statement is rejected by the parser), and the queries here are a small,
  fixed set of shapes (interval join, group by scope key, one window
  function). They are written once in DuckDB's dialect and transpiled by
  SQLGlot for any other database (:class:`DatabaseEngine`), with a cache per
  statement. Only portable constructs are used (``VALUES`` CTE, ``CASE``,
  ``COALESCE``, ``LOWER(TRIM())``, ``EXTRACT(EPOCH FROM …)``, ``MEDIAN`` →
  ``PERCENTILE_CONT(0.5) WITHIN GROUP``, ``ROW_NUMBER() OVER``).
* **Periods come in as literals, never truncated in SQL.** The evaluated
  intervals (:func:`kpireport.kpis.compute.cut_intervals`: ISO weeks,
  months, "to date" cuts) are computed in Python on the organisation's local
  calendar and sent as a ``VALUES`` table of half-open ``[s, e)`` naive
  timestamps. Timestamps are naive local time in every backend (``TIMESTAMP``
  / ``timestamp without time zone``), so no backend applies a session time
  zone and ISO-week/DST boundaries are the same everywhere.
* **Scope keys are normalised in SQL, mapped to columns in Python.** A row's
  key is its seller id (only when that seller exists in ``sellers``), its
  seller's *current* team, its ``company_id``, or a constant for the
  organisation; a row without one gets ``NULL`` and lands in the
  unattributed column. With a single-series request (``Context.select``)
  every other id becomes ``NULL`` too, so every SQL group is exactly one
  result column (medians stay exact). The (few) result rows are placed into
  the ``(intervals, width)`` array the formulas return, by
  ``Index.get_indexer`` on the scope ids.
* **Text comparisons** use ``LOWER(TRIM(column)) = 'value'`` (statuses and
  activity types); lead sources use ``NULLIF(TRIM(source), '')``. String
  order (the "smaller deal id" tie-break) is byte order: DuckDB's default,
  and PostgreSQL databases must use the ``C`` collation (``initdb
  --no-locale``) to agree with it.
* **One connection per dataset.** A :class:`~kpireport.data.model.CrmData`
  built from pandas frames gets an in-memory DuckDB connection with every
  table registered as an Arrow table (zero-copy for numbers, dates and
  Arrow-backed strings), kept in the dataset's
  :class:`~kpireport.kpis.engine.Prepared` cache. ``CrmData.engine`` set to a
  :class:`DatabaseEngine` sends the same queries to that database instead.
* **Exact sums.** Money amounts (and the seconds of a sales cycle or a
  customer's tenure) are summed as ``DECIMAL(38, 6)`` (:func:`exact_sum`):
  each value rounded once to 6 decimals, every partial sum — per day, per
  interval — exact, and only the final total cast to ``DOUBLE``, its
  correctly rounded value. A parallel engine adds ``DOUBLE``s in an order that
  varies with its threads (revenue ``2682153.8000000003`` in one run,
  ``2682153.8`` in the next); exact sums make every result, and so the
  ``*.kpis.csv`` files, byte-reproducible on DuckDB and PostgreSQL alike
  (``numeric``; a ``double precision`` goes through its text form, since a
  direct cast keeps 15 digits). The few result rows that share one cell are
  added with :func:`math.fsum` (:func:`add_cells`), never in row order. The
  cost is about 20 % on the summing scans.
* Identical SQL text gives identical results on immutable data, so results
  are memoised per statement in the dataset's cache; KPIs that read the same
  rows share one statement (the three activity counts group by type, the
  won/lost deal KPIs by status).
* **Fewer rows before the interval join.** A static date range (the span of
  the requested intervals) filters rows first; additive measures on midnight
  bounds (every calendar period and "to date" cut) are summed per day before
  the day totals are joined with the intervals; pipeline snapshots start from
  per-day deal totals. Results come back as Arrow columns (DuckDB) and are
  placed into the arrays with numpy.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from kpireport.constants import Scope, Table
from kpireport.errors import KpiError

if TYPE_CHECKING:
    from kpireport.kpis.engine import Context

log = logging.getLogger("kpireport")

#: the breakdown label of rows without one (leads without a source); re-exported by .engine
UNKNOWN = "(unknown)"

NAT = np.iinfo(np.int64).min
NS_PER_DAY = 86_400 * 10**9


class SqlEngine(Protocol):
    """Something that runs a DuckDB-dialect SELECT and returns its rows."""

    name: str

    def fetch(self, sql: str) -> list[tuple]:
        """Run ``sql`` (DuckDB dialect) and return every row."""
        ...

    def columns(self, sql: str) -> list[np.ndarray]:
        """Run ``sql`` (DuckDB dialect) and return its columns (:func:`as_arrays`)."""
        ...


class DuckDBEngine:
    """An embedded DuckDB connection over a dataset's tables."""

    name = "duckdb"

    def __init__(self, con: object) -> None:
        self.con = con
        self._lock = threading.Lock()

    @classmethod
    def from_frames(cls, tables: Mapping[str, pd.DataFrame]) -> DuckDBEngine:
        """Register every pandas table in a new in-memory DuckDB (through Arrow)."""
        import duckdb

        con = duckdb.connect(":memory:")
        for name, df in tables.items():
            con.register(name, to_arrow(df))
        return cls(con)

    def fetch(self, sql: str) -> list[tuple]:
        # a DuckDB connection is not safe for concurrent use from several threads
        with self._lock:
            return self.con.execute(sql).fetchall()

    def columns(self, sql: str) -> list[np.ndarray]:
        """Run ``sql``; every result column as a numpy array (see :func:`as_arrays`)."""
        with self._lock:
            rel = self.con.sql(sql)
            to_table = getattr(rel, "to_arrow_table", None) or rel.fetch_arrow_table
            return as_arrays(to_table())


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """A frame as an Arrow table; ``object`` columns (mixed ids) become text first.

    Canonical frames (``str``, ``datetime64``, ``float64`` columns) convert
    without copying the data; the caller's frame is never modified.
    """
    mixed = [c for c in df.columns if df[c].dtype == object]
    if mixed:
        df = df.assign(**{str(c): df[c].astype("str") for c in mixed})
    return pa.Table.from_pandas(df, preserve_index=False)


#: SQLAlchemy dialect name -> SQLGlot dialect name
_DIALECTS = {"postgresql": "postgres", "mssql": "tsql"}


class DatabaseEngine:
    """A SQL database holding the canonical tables, queried in place.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``postgresql+psycopg://user@host:port/db``).
    schema
        Optional schema (or dataset) holding the tables.
    """

    def __init__(self, url: str, schema: str | None = None) -> None:
        import sqlalchemy as sa

        self._engine = sa.create_engine(url)
        self.name = self._engine.dialect.name
        self.dialect = _DIALECTS.get(self.name, self.name)
        self.schema = schema
        self._sql: dict[str, str] = {}

    def translate(self, sql: str) -> str:
        """``sql`` transpiled from DuckDB's dialect to the database's (cached)."""
        out = self._sql.get(sql)
        if out is None:
            import sqlglot

            tree = sqlglot.parse_one(sql, read="duckdb")
            if self.dialect == "postgres":
                tree = tree.transform(_exact_through_text)
            out = tree.sql(dialect=self.dialect)
            self._sql[sql] = out
        return out

    def fetch(self, sql: str) -> list[tuple]:
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            if self.schema:
                conn.exec_driver_sql(f"SET search_path TO {quote_ident(self.schema)}")
            return [tuple(r) for r in conn.execute(sa.text(self.translate(sql))).all()]

    def dispose(self) -> None:
        self._engine.dispose()

    def columns(self, sql: str) -> list[np.ndarray]:
        """Run ``sql``; every result column as a numpy array (see :func:`as_arrays`)."""
        rows = self.fetch(sql)
        width = len(rows[0]) if rows else 0
        cols = [pa.array([r[j] for r in rows], from_pandas=True) for j in range(width)]
        return as_arrays(pa.table({f"c{j}": c for j, c in enumerate(cols)}))


def _exact_through_text(node: object) -> object:
    """PostgreSQL: ``CAST(x AS DECIMAL(38, 6))`` becomes ``CAST(CAST(x AS TEXT) AS …)``.

    PostgreSQL converts a ``double precision`` to ``numeric`` through 15
    significant digits only (``250000000000000.5`` becomes
    ``250000000000001``); its text form is the shortest exact one, as in
    DuckDB, so the exact sums of :func:`exact_sum` agree on both.
    """
    from sqlglot import exp

    if isinstance(node, exp.Cast) and node.to.sql(dialect="duckdb") == EXACT:
        inner = exp.Cast(this=node.this, to=exp.DataType.build("TEXT"))
        return exp.Cast(this=inner, to=node.to)
    return node


def as_arrays(table: pa.Table) -> list[np.ndarray]:
    """Columns of a (small) result: numbers as ``float64`` (NULL -> NaN), others as objects."""
    out = []
    for col in table.columns:
        t = col.type
        if pa.types.is_decimal(t):
            # Arrow's decimal -> double cast is not always correctly rounded
            out.append(np.array([np.nan if v is None else float(v) for v in col.to_pylist()]))
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            out.append(col.cast(pa.float64()).to_numpy())
        else:
            out.append(np.array(col.to_pylist(), dtype=object))
    return out


# --------------------------------------------------------------------- SQL text
def quote(value: object) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ts(ns: int) -> str:
    """A naive ``TIMESTAMP`` literal for ``int64`` nanoseconds."""
    return f"TIMESTAMP '{pd.Timestamp(int(ns)).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def text_is(column: str, value: str) -> str:
    """Predicate: ``column`` stripped and lower-cased equals ``value``."""
    return f"LOWER(TRIM({column})) = {quote(value.lower())}"


def cycle_days(alias: str = "r") -> str:
    """Days from ``created_at`` to ``closed_at`` as a double."""
    return f"(EXTRACT(EPOCH FROM ({alias}.closed_at - {alias}.created_at)) / 86400.0)"


def cycle_seconds(alias: str = "r") -> str:
    """Seconds from ``created_at`` to ``closed_at`` (microseconds: exact in :data:`EXACT`)."""
    return f"EXTRACT(EPOCH FROM ({alias}.closed_at - {alias}.created_at))"


#: the exact type every summed amount is added in (module docstring, "Exact sums")
EXACT = "DECIMAL(38, 6)"


def exact_sum(expr: str) -> str:
    """SQL: the exact sum of ``expr`` (``NULL`` counts as 0), as :data:`EXACT`.

    Each value is rounded once to 6 decimals (a millionth of a cent, or of a
    second) and the sum is exact, so it does not depend on the order the
    engine adds rows in (threads, row groups). Cast it to ``DOUBLE`` with
    :func:`as_double` only once every partial sum has been added.
    """
    return f"SUM(CAST(COALESCE({expr}, 0) AS {EXACT}))"


def as_double(expr: str) -> str:
    """SQL: ``expr`` as ``DOUBLE`` (an exact decimal becomes its correctly rounded double)."""
    return f"CAST({expr} AS DOUBLE)"


def before_cutoff(column: str, cutoff: int) -> str:
    """Predicate: ``column`` is set and earlier than the cut-off."""
    if cutoff == NAT:
        return "FALSE"
    return f"({column} IS NOT NULL AND {column} < {ts(cutoff)})"


def values(starts: np.ndarray, ends: np.ndarray) -> str:
    """The CTE ``iv(i, s, e)``: interval number and half-open bounds, as literals."""
    rows = ", ".join(
        f"({i}, {ts(a)}, {ts(b)})" for i, (a, b) in enumerate(zip(starts, ends, strict=True))
    )
    return f"iv(i, s, e) AS (VALUES {rows})"


def day_aligned(starts: np.ndarray, ends: np.ndarray) -> bool:
    """True when every interval bound is a midnight (periods, "to date" cuts)."""
    return bool(np.all(starts % NS_PER_DAY == 0) and np.all(ends % NS_PER_DAY == 0))


def has_column(ctx: Context, table: str, column: str) -> bool:
    prep = ctx.prep
    return prep.has(table) and column in prep.frame(table)


def _key(ctx: Context, table: str) -> tuple[str, bool]:
    """The scope-key expression of rows ``r`` of ``table`` and whether it needs ``sellers s``."""
    scope = ctx.scope
    if scope == Scope.ORGANISATION:
        return "0", False
    if scope == Scope.CUSTOMER:
        return ("r.company_id" if has_column(ctx, table, "company_id") else "NULL"), False
    if scope == Scope.TEAM and table == Table.COSTS:
        if not has_column(ctx, table, "team"):
            return "NULL", False
        # a tag of no seller's team is unattributed (NULL): one result row per column
        return "CASE WHEN r.team IN (SELECT team FROM sellers) THEN r.team END", False
    if not has_column(ctx, table, "seller_id"):
        return "NULL", False
    return ("s.team" if scope == Scope.TEAM else "s.seller_id"), True


def aggregate(
    ctx: Context,
    table: str,
    measures: Mapping[str, str],
    *,
    time: str | None = None,
    where: str | None = None,
    relation: str | None = None,
    join: str | None = None,
    fill: float = 0.0,
    group: str | None = None,
    groups: tuple[str, ...] = (),
) -> dict:
    """Aggregate rows of ``table`` per ``(interval, result column)``.

    Parameters
    ----------
    ctx
        The evaluation request (scope, intervals, selection, split).
    table
        Canonical table the rows are (decides the scope key).
    measures
        Result name -> aggregate SQL over rows ``r`` (``COUNT(*)``,
        ``SUM(COALESCE(r.value, 0))``, ``MEDIAN(…)``).
    time
        Column dating a row: rows with ``s <= r.time < e`` belong to interval
        ``i``. Ignored when ``join`` is given.
    where
        Extra predicate over ``r``.
    relation
        A FROM-able relation to use instead of the table (``(SELECT …)``).
    join
        The join condition of ``r`` with the intervals ``iv`` (snapshots).
    fill
        Value of cells without rows: 0 for additive measures (``COUNT``,
        ``SUM``: on midnight bounds they are pre-aggregated per day), NaN for
        the others (``MEDIAN``).
    group, groups
        An extra grouping expression (``LOWER(TRIM(r.type))``) and the values
        of it to return: one scan answers several KPIs (the statement, and so
        its memoised result, is the same for each).

    Returns
    -------
    dict
        Measure name -> ``(intervals, ctx.width)`` float array; with
        ``group``: group value -> that dict.
    """
    n_int = len(ctx.starts)

    def empty() -> dict[str, np.ndarray]:
        return {name: np.full((n_int, ctx.width), fill) for name in measures}

    out = empty() if group is None else {g: empty() for g in groups}
    if n_int == 0:
        return out
    key, joins, select_id = scope_key(ctx, table)
    no_split(ctx, table)
    split = ctx.split
    cat = "NULL"
    if split is not None and has_column(ctx, split.table, "source"):
        cat = "NULLIF(TRIM(r.source), '')"
    src = relation or table
    day = join is None and fill == 0.0 and day_aligned(ctx.starts, ctx.ends)
    # exact (decimal) sums stay exact through the per-day totals; every result
    # leaves the engine as a DOUBLE
    aggs = ", ".join(
        f"{expr if day else as_double(expr)} AS m{j}" for j, expr in enumerate(measures.values())
    )
    conds = [where] if where else []
    if join is None:
        # a static range on the row's date first: prunes rows (and row groups,
        # index ranges) before the interval join
        conds.append(f"r.{time} >= {ts(ctx.starts.min())} AND r.{time} < {ts(ctx.ends.max())}")
    filt = " WHERE " + " AND ".join(conds) if conds else ""
    dims = f"{key} AS k, {cat} AS c, {group or 'NULL'} AS g"
    if day:
        # additive measures on midnight bounds: pre-aggregate per day, then
        # join the (small) day totals with the intervals
        outer = ", ".join(as_double(f"SUM(d.m{j})") for j in range(len(measures)))
        sql = (
            f"WITH {values(ctx.starts, ctx.ends)}, d AS ("
            f"SELECT DATE_TRUNC('day', r.{time}) AS t, {dims}, {aggs} "
            f"FROM {src} r{joins}{filt} GROUP BY 1, 2, 3, 4) "
            f"SELECT iv.i, d.k, d.c, d.g, {outer} FROM d JOIN iv ON d.t >= iv.s AND d.t < iv.e "
            "GROUP BY 1, 2, 3, 4"
        )
    else:
        on = join or f"r.{time} >= iv.s AND r.{time} < iv.e"
        sql = (
            f"WITH {values(ctx.starts, ctx.ends)} "
            f"SELECT iv.i, {dims}, {aggs} FROM {src} r{joins} JOIN iv ON {on}{filt} "
            "GROUP BY 1, 2, 3, 4"
        )
    cols = fetch_columns(ctx, sql)
    if not len(cols) or not len(cols[0]):
        return out
    i = cols[0].astype(np.int64)
    col = result_columns(ctx, cols[1], cols[2], select_id)
    g = cols[3]
    targets = [(out, slice(None))] if group is None else [(out[v], g == v) for v in groups]
    for target, sel in targets:
        for j, name in enumerate(measures):
            v = cols[4 + j][sel]
            if fill == 0.0:
                add_cells(target[name], i[sel], col[sel], np.nan_to_num(v, nan=0.0))
            else:
                target[name][i[sel], col[sel]] = v
    return out


def add_cells(target: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
    """Add ``values`` into ``target[rows, cols]``, the same whatever the order of the rows.

    Result rows come back in an order that varies with the engine's threads.
    Usually each cell gets one row (the scope keys are known ids or ``NULL``);
    a cell that gets several is added with :func:`math.fsum` (the correctly
    rounded sum of those values), never in row order.
    """
    if not len(values):
        return
    flat = np.ravel_multi_index((rows, cols), target.shape)
    cells, first, count = np.unique(flat, return_index=True, return_counts=True)
    view = target.reshape(-1)
    if len(cells) == len(flat):
        view[flat] += values
        return
    view[flat[first[count == 1]]] += values[first[count == 1]]
    order = np.argsort(flat, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(count)])
    for n, cell in enumerate(cells):
        if count[n] > 1:
            part = values[order[bounds[n] : bounds[n + 1]]]
            view[cell] = math.fsum([view[cell], *part.tolist()])


def no_split(ctx: Context, table: str) -> None:
    """Refuse a breakdown (``ctx.split``) of a KPI that counts rows of ``table``."""
    split = ctx.split
    if split is not None and split.table != table:
        raise KpiError(
            f"This KPI cannot be broken down by {split.name}: it counts rows that are not "
            f"{split.table}."
        )


def scope_key(ctx: Context, table: str) -> tuple[str, str, object | None]:
    """Scope key of rows ``r`` of ``table``: SQL expression, joins, selected id.

    The key is ``NULL`` for rows that belong to no scope id (and, with a
    single-series request, for every other id); see the module docstring.
    """
    key, needs_sellers = _key(ctx, table)
    select_id = None
    if ctx.select is not None and ctx.scope != Scope.ORGANISATION:
        select_id = ctx.prep.scope_ids(ctx.scope)[ctx.select]
        key = f"CASE WHEN {key} = {quote(select_id)} THEN {key} END"
    joins = " LEFT JOIN sellers s ON s.seller_id = r.seller_id" if needs_sellers else ""
    return key, joins, select_id


def result_columns(
    ctx: Context, keys: tuple | list, cats: tuple | list, select_id: object | None
) -> np.ndarray:
    """Result column of each (scope key, category) pair."""
    sw = ctx.scope_width
    if ctx.scope == Scope.ORGANISATION:
        code = np.zeros(len(keys), dtype=np.int64)
    elif select_id is not None:
        code = np.array([0 if k is not None else -1 for k in keys], dtype=np.int64)
    else:
        ids = ctx.prep.scope_ids(ctx.scope)
        code = np.asarray(ids.get_indexer(pd.Index(list(keys), dtype="str")), dtype=np.int64)
    code = np.where(code < 0, sw - 1, code)
    split = ctx.split
    if split is None:
        return code
    labels = [UNKNOWN if c is None else str(c) for c in cats]
    cat = np.asarray(split.labels.get_indexer(pd.Index(labels, dtype="str")), dtype=np.int64)
    cat = np.where(cat < 0, split.labels.get_indexer([UNKNOWN])[0], cat)
    return code * split.k + cat


def fetch_columns(ctx: Context, sql: str) -> list[np.ndarray]:
    """Run ``sql`` on the dataset's engine, columns as numpy arrays, memoised per statement."""
    prep = ctx.prep
    return prep.memo(("sqlc", sql), lambda: prep.sql_engine().columns(sql))


def scalar(ctx: Context, sql: str) -> object:
    """The single value of a one-row, one-column query."""
    rows = fetch(ctx, sql)
    return rows[0][0] if rows else None


def fetch(ctx: Context, sql: str) -> list[tuple]:
    """Run ``sql`` on the dataset's engine, memoised per statement."""
    prep = ctx.prep
    return prep.memo(("sql", sql), lambda: _run(prep.sql_engine(), sql))


def _run(engine: SqlEngine, sql: str) -> list[tuple]:
    log.debug("%s: %s", engine.name, sql)
    return engine.fetch(sql)
