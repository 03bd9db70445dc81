"""Vectorised machinery under every KPI: prepared arrays and interval aggregation.

Design decisions
----------------
* **Integer codes once per dataset.** :class:`Prepared` converts the string ids
  of every table into integer codes (seller, team, company) and every date
  column into ``int64`` nanoseconds the first time they are needed, and keeps
  them. :func:`prepared` caches one :class:`Prepared` per :class:`CrmData`
  object (keyed on the object's identity and the identity of its tables; a
  ``weakref.finalize`` drops the entry when the dataset is garbage collected).
  ``CrmData`` is plain data that no stage mutates, so identity is a sound key.
* **Aggregation over many periods at once.** A KPI is evaluated for a list of
  half-open intervals ``[start, end)`` and every scope id in one pass:
  :func:`interval_sums` buckets the rows with ``searchsorted`` on the interval
  bounds and adds them up with ``np.bincount`` on the combined key
  ``(interval, scope code)``. Non-overlapping intervals (the usual case) are
  summed directly (exact float sums); overlapping or nested ones (YTD spans,
  the cumulative curve) through cumulative sums over the sorted breakpoints.
* **Attribution.** Every row has a seller code and a company code (``-1`` when
  missing or unknown). A row's team is its seller's *current* team in the
  ``sellers`` table (the contract has no team history). Rows whose code for
  the requested scope is ``-1`` land in an extra *unattributed* column (the
  last one) so that teams + unattributed reconcile with the organisation.
* **Breakdowns (lead source).** A :class:`Split` on the :class:`Context`
  crosses the scope codes with a per-row category code of one table (the
  lead's ``source``): the combined code is ``scope_col * k + category`` where
  ``scope_col`` already maps unattributed rows to the last scope column, so
  the result is ``(intervals, (scope ids + 1) * k)`` from the same single
  ``bincount`` — no loop per category. Only formulas whose events all come
  from the split table (the lead KPIs) can be broken down; any other event
  raises :class:`~kpireport.errors.KpiError`.
* **Cut-off.** "Ever" look-ups (first won deal, lead conversion) ignore data on
  or after the cut-off (``as_of`` + 1 day), so a report for a past ``as_of``
  never sees the future.
"""

from __future__ import annotations

import logging
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
from kpireport.errors import KpiError
from kpireport.kpis.relational import DuckDBEngine, SqlEngine
from kpireport.periods import Period

log = logging.getLogger("kpireport")

NS_PER_DAY = 86_400 * 10**9
NAT = np.iinfo(np.int64).min
NEVER = np.iinfo(np.int64).max
#: scope_id shown for rows that no team/seller/customer can be attributed to
UNATTRIBUTED = "(unattributed)"
#: breakdown category of rows whose category (lead ``source``) is missing or blank
UNKNOWN = "(unknown)"

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


def _locate(
    t: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Find the interval holding each row of ``t``, when no two intervals overlap.

    Returns
    -------
    tuple of numpy.ndarray or None
        None when intervals overlap. Else ``(order, idx, ok)``: ``order`` sorts
        the intervals by start, ``idx[i]`` is the position (in that order) of
        the last interval starting at or before ``t[i]`` and ``ok[i]`` tells
        whether ``t[i]`` lies inside it.
    """
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    if not np.all(s[1:] >= e[:-1]):
        return None
    idx = np.searchsorted(s, t, side="right") - 1
    ok = idx >= 0
    ok[ok] = t[ok] < e[idx[ok]]
    return order, idx, ok


def interval_sums(
    t: np.ndarray,
    codes: np.ndarray,
    width: int,
    starts: np.ndarray,
    ends: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Sum ``weights`` (or count rows) per ``(interval, code)``.

    Parameters
    ----------
    t
        Row timestamps, ``int64`` ns (``NAT`` rows are ignored).
    codes
        Row scope codes in ``[0, width - 1)``; ``-1`` goes to the last column
        (unattributed).
    width
        Number of scope ids + 1.
    starts, ends
        Interval bounds (``int64`` ns), half-open ``[start, end)``; any order,
        may overlap.
    weights
        Values to add; ``None`` counts rows.

    Returns
    -------
    numpy.ndarray
        ``(len(starts), width)`` float array.
    """
    n_int = len(starts)
    out_shape = (n_int, width)
    if n_int == 0 or len(t) == 0:
        return np.zeros(out_shape)
    c = np.where(codes < 0, width - 1, codes).astype(np.int64, copy=False)
    located = _locate(t, starts, ends)
    if located is not None:
        order, idx, ok = located
        key = idx[ok] * width + c[ok]
        w = None if weights is None else weights[ok]
        tot = np.bincount(key, weights=w, minlength=n_int * width).reshape(out_shape)
        out = np.empty(out_shape)
        out[order] = tot
        return out
    bps = np.unique(np.concatenate([starts, ends]))
    seg = np.searchsorted(bps, t, side="right") - 1
    ok = (seg >= 0) & (seg < len(bps) - 1)
    key = seg[ok] * width + c[ok]
    w = None if weights is None else weights[ok]
    nseg = len(bps) - 1
    tot = np.bincount(key, weights=w, minlength=nseg * width).reshape(nseg, width)
    cum = np.vstack([np.zeros((1, width)), np.cumsum(tot, axis=0)])
    return cum[np.searchsorted(bps, ends)] - cum[np.searchsorted(bps, starts)]


def interval_index(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
    """For each interval, the positions of the rows of ``t`` inside it.

    Used by non-additive aggregations (medians). Non-overlapping intervals are
    bucketed in one ``searchsorted``; overlapping ones fall back to one mask per
    interval.
    """
    located = _locate(t, starts, ends)
    if located is not None:
        order, idx, ok = located
        pos = np.flatnonzero(ok)
        grp = order[idx[pos]]
        srt = np.argsort(grp, kind="stable")
        pos, grp = pos[srt], grp[srt]
        bounds = np.searchsorted(grp, np.arange(len(starts) + 1))
        return [pos[bounds[i] : bounds[i + 1]] for i in range(len(starts))]
    return [np.flatnonzero((t >= a) & (t < b)) for a, b in zip(starts, ends, strict=True)]


# ------------------------------------------------------------------- events
class Events:
    """Rows of one table reduced to what aggregation needs.

    ``seller`` and ``company`` are integer codes (``-1`` = none); ``team``
    overrides the team derived from the seller (cost rows carry a team tag).
    Codes of a table are loaded lazily from :class:`Prepared` (a seller-scope
    request never builds company codes).
    """

    def __init__(
        self,
        seller: np.ndarray | None = None,
        company: np.ndarray | None = None,
        team: np.ndarray | None = None,
        *,
        prep: Prepared | None = None,
        table: str | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        self._seller, self._company, self.team = seller, company, team
        self._prep, self._table, self._mask = prep, table, mask

    def _load(self, kind: str) -> np.ndarray:
        assert self._prep is not None and self._table is not None
        codes = (
            self._prep.seller_codes(self._table)
            if kind == "seller"
            else self._prep.company_codes(self._table)
        )
        return codes if self._mask is None else codes[self._mask]

    @property
    def seller(self) -> np.ndarray:
        if self._seller is None:
            self._seller = self._load("seller")
        return self._seller

    @property
    def company(self) -> np.ndarray:
        if self._company is None:
            self._company = self._load("company")
        return self._company

    @property
    def table(self) -> str | None:
        """The table the events are rows of (``None`` for synthetic events)."""
        return self._table

    @property
    def rows(self) -> np.ndarray:
        """Row positions of the events in :attr:`table` (``int64``)."""
        if self._prep is None or self._table is None:
            raise KpiError("These events are not rows of one table.")
        m = self._mask
        if m is None:
            return np.arange(len(self._prep.frame(self._table)), dtype=np.int64)
        m = np.asarray(m)
        return np.flatnonzero(m) if m.dtype == bool else m.astype(np.int64, copy=False)

    def take(self, mask: np.ndarray) -> Events:
        """The events selected by a boolean mask or an index array."""
        team = None if self.team is None else self.team[mask]
        sub = None
        if self._prep is not None and self._table is not None:
            sub = mask if self._mask is None else self.rows[mask]
        if self._prep is not None and self._seller is None and self._company is None:
            return Events(team=team, prep=self._prep, table=self._table, mask=sub)
        return Events(
            self.seller[mask],
            self.company[mask],
            team,
            prep=self._prep,
            table=self._table,
            mask=sub,
        )


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


def arrow_index_in(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (``-1`` for missing/unknown), hash-based."""
    arr = arrow_strings(values)
    vs = pa.array(index.astype("str").to_numpy(dtype=object), type=arr.type, from_pandas=True)
    res = pc.index_in(arr, value_set=vs)
    return res.fill_null(-1).to_numpy().astype(np.int64)


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

    def sql_engine(self) -> SqlEngine:
        """The engine the relational KPI queries run on (:mod:`kpireport.kpis.relational`).

        ``CrmData.engine`` when set (a database queried in place), else an
        embedded DuckDB over this dataset's tables, created on first use.
        """
        if self._sql_engine is not None:
            return self._sql_engine
        return self.memo(("duckdb",), lambda: DuckDBEngine.from_frames(self.tables))

    # ------------------------------------------------------------ look-ups
    def has(self, table: str) -> bool:
        return table in self.tables

    def frame(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def memo(self, key: tuple, fn: Callable[[], T]) -> T:
        """Compute ``fn()`` once per key."""
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def times(self, table: str, column: str) -> np.ndarray:
        """``int64`` ns timestamps of ``table.column``."""
        return self.memo(("t", table, column), lambda: to_ns(self.frame(table)[column]))

    def floats(self, table: str, column: str) -> np.ndarray:
        """``float64`` values of ``table.column`` (NaN kept)."""
        return self.memo(
            ("f", table, column),
            lambda: pd.to_numeric(self.frame(table)[column]).to_numpy(
                dtype="float64", na_value=np.nan
            ),
        )

    def text_equals(self, table: str, column: str, value: str) -> np.ndarray:
        """Bool mask: ``table.column`` stripped and lower-cased equals ``value``.

        Dictionary-encodes the column once, so each comparison only touches
        the distinct values.
        """

        def encode() -> tuple[np.ndarray, list[str]]:
            enc = pc.dictionary_encode(arrow_strings(self.frame(table)[column])).combine_chunks()
            idx = enc.indices.fill_null(-1).to_numpy().astype(np.int64)
            words = [str(w).strip().lower() for w in enc.dictionary.to_pylist()]
            return idx, words

        def build() -> np.ndarray:
            idx, words = self.memo(("dict", table, column), encode)
            hits = np.array([w == value for w in words] + [False])
            return hits[idx]

        return self.memo(("eq", table, column, value), build)

    def seller_codes(self, table: str) -> np.ndarray:
        """Seller code of each row of ``table`` (``-1`` = none or unknown)."""

        def build() -> np.ndarray:
            df = self.frame(table)
            if "seller_id" not in df:
                return np.full(len(df), -1, dtype=np.int64)
            return arrow_index_in(df["seller_id"], self.seller_ids)

        return self.memo(("seller_codes", table), build)

    def team_codes(self, table: str) -> np.ndarray:
        """Team code of each row from the row's own ``team`` column (cost rows)."""
        return self.memo(
            ("team_codes", table), lambda: arrow_index_in(self.frame(table)["team"], self.team_ids)
        )

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
                    arrays.append(arrow_strings(self.frame(table)["company_id"]))
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

    def local_codes(self, table: str, column: str) -> np.ndarray:
        """Dictionary codes of one id column on its own (``-1`` = missing).

        Cheaper than :meth:`company_codes` when only identity *within* the
        table matters (grouping), not the customer scope id.
        """

        def build() -> np.ndarray:
            enc = pc.dictionary_encode(arrow_strings(self.frame(table)[column])).combine_chunks()
            return enc.indices.fill_null(-1).to_numpy().astype(np.int64)

        return self.memo(("local", table, column), build)

    def company_codes(self, table: str) -> np.ndarray:
        """Company (customer) code of each row of ``table`` (``-1`` = none)."""
        codes = self._company_encoding()[1].get(table)
        if codes is None:
            return np.full(len(self.frame(table)), -1, dtype=np.int64)
        return codes

    @property
    def customer_ids(self) -> pd.Index:
        """Company ids: the ``companies`` table plus any id referenced elsewhere."""
        return self._company_encoding()[0]

    def events(self, table: str) -> Events:
        """Lazily coded events of every row of ``table``."""
        team = self.team_codes(table) if table == Table.COSTS else None
        return Events(team=team, prep=self, table=table)

    def lead_sources(self) -> tuple[np.ndarray, pd.Index]:
        """Source code of each lead and the source labels (code order).

        Labels are the distinct stripped ``leads.source`` values, sorted, then
        :data:`UNKNOWN` when some lead has no (or a blank) source. Values are
        kept verbatim otherwise (``Web`` and ``web`` are two sources).
        """

        def build() -> tuple[np.ndarray, pd.Index]:
            if not self.has(Table.LEADS):
                return np.zeros(0, dtype=np.int64), pd.Index([UNKNOWN], dtype="str")
            df = self.frame(Table.LEADS)
            if "source" not in df:
                raw = pd.Series(pd.NA, index=df.index, dtype="str")
            else:
                raw = df["source"].astype("str").str.strip()
            raw = raw.where(raw != "")
            codes, uniques = pd.factorize(raw, sort=True)
            codes = np.asarray(codes, dtype=np.int64)
            labels = [str(u) for u in uniques]
            missing = codes < 0
            if missing.any() or not labels:
                codes = np.where(missing, len(labels), codes)
                labels.append(UNKNOWN)
            return codes, pd.Index(labels, dtype="str", name="source")

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

    def codes_for(self, ev: Events, scope: Scope) -> np.ndarray:
        """Scope code of each event (``-1`` = unattributed)."""
        if scope == Scope.ORGANISATION:
            return np.zeros(len(ev.seller), dtype=np.int64)
        if scope == Scope.SELLER:
            return ev.seller
        if scope == Scope.CUSTOMER:
            return ev.company
        if ev.team is not None:
            return ev.team
        out = np.full(len(ev.seller), -1, dtype=np.int64)
        ok = ev.seller >= 0
        out[ok] = self.seller_team[ev.seller[ok]]
        return out

    def seller_active(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """``(intervals, sellers)`` bool: seller active on some day of the interval.

        ``active_to`` is the last active day (inclusive); missing bounds are open.
        """
        lo, hi = self.seller_bounds()
        return (lo[None, :] < ends[:, None]) & (hi[None, :] > starts[:, None])

    def seller_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Active ``[from, to + 1 day)`` of each seller as ns (open bounds = +-inf)."""

        def build() -> tuple[np.ndarray, np.ndarray]:
            s = self.frame(Table.SELLERS)
            n = len(s)
            lo = to_ns(s["active_from"]) if "active_from" in s else np.full(n, NAT)
            hi = to_ns(s["active_to"]) if "active_to" in s else np.full(n, NAT)
            hi = np.where(hi == NAT, NEVER, hi + NS_PER_DAY)
            return lo, hi

        return self.memo(("seller_bounds",), build)


_PREPARED: dict[int, tuple[tuple[int, ...], Prepared]] = {}


def prepared(data: CrmData) -> Prepared:
    """The cached :class:`Prepared` view of ``data`` (built on first use)."""
    key = id(data)
    stamp = (
        tuple(id(df) for df in data.tables.values())
        + tuple(map(id, data.tables))
        + (id(getattr(data, "engine", None)),)
    )
    hit = _PREPARED.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    prep = Prepared(data)
    if hit is None:
        weakref.finalize(data, _PREPARED.pop, key, None)
    _PREPARED[key] = (stamp, prep)
    return prep


# ------------------------------------------------------------------ context
@dataclass(frozen=True)
class Split:
    """A breakdown of one table's rows into categories (module docstring).

    Attributes
    ----------
    name
        Name of the breakdown (``source``); also the result column.
    table
        The table whose rows carry a category.
    codes
        Category code of each row of ``table``, in ``[0, len(labels))``.
    labels
        The category labels, in code order.
    """

    name: str
    table: str
    codes: np.ndarray
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

    def codes(self, ev: Events) -> np.ndarray:
        c = self.prep.codes_for(ev, self.scope)
        if self.select is not None:
            c = np.where(c == self.select, 0, -1)
        split = self.split
        if split is None:
            return c
        if ev.table != split.table:
            raise KpiError(
                f"This KPI cannot be broken down by {split.name}: it counts rows that are not "
                f"{split.table}."
            )
        c = np.where(c < 0, self.scope_width - 1, c)
        return c * split.k + split.codes[ev.rows]

    def sums(
        self,
        table: str,
        time_col: str,
        value_col: str | None = None,
        mask: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Count (or sum ``value_col``/``weights`` of) rows of ``table`` dated in each interval."""
        t = self.prep.times(table, time_col)
        ev = self.prep.events(table)
        w = (
            weights
            if weights is not None
            else (None if value_col is None else self.prep.floats(table, value_col))
        )
        if mask is not None:
            t, ev = t[mask], ev.take(mask)
            w = None if w is None else w[mask]
        if w is not None:
            w = np.nan_to_num(w, nan=0.0)
        return self.event_sums(t, ev, w)

    def event_sums(
        self, t: np.ndarray, ev: Events, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Count or sum arbitrary events per ``(interval, scope code)``."""
        return interval_sums(t, self.codes(ev), self.width, self.starts, self.ends, weights)

    def cell_notes(self) -> np.ndarray:
        """An empty ``(intervals, width)`` note array."""
        return np.full((len(self.starts), self.width), None, dtype=object)
