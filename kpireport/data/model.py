"""The in-memory CRM dataset handed from stage to stage.

A :class:`CrmData` holds one pandas DataFrame per canonical table (docs/DATA.md)
with canonical column names and types: ids as ``string`` dtype, dates as naive
``datetime64[ns]`` in the organisation's local calendar, numbers as
``float64``. It is plain data: stages read it, none mutates it.

Immutability (issue 9, item 8)
------------------------------
pandas cannot make a DataFrame truly read-only, so a dataset is protected in
two layers, both O(number of columns):

* **In-place writes fail.** The numpy arrays behind every table are marked
  read-only when the dataset is built and again whenever
  :meth:`CrmData.cache_token` is taken, so ``data.deals.loc[3, "value"] = 0``
  raises ``ValueError: assignment destination is read-only`` instead of
  changing numbers under a cached KPI view.
* **Replacements are seen.** Assigning a column (``data.deals["value"] *= 2``),
  a table (``data.tables["deals"] = df``) or editing an Arrow-backed text
  column gives the table new backing arrays; :meth:`CrmData.cache_token`
  returns those arrays, and the KPI engine rebuilds its cached view whenever
  one of them is not the very object it was built from.

The supported way to change a dataset is :meth:`CrmData.replace`, which
returns a new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class CrmData:
    """Canonical CRM tables plus the source settings that shaped them.

    Attributes
    ----------
    tables
        Table name -> DataFrame with canonical columns. Optional tables that
        the source lacks are simply absent.
    timezone
        IANA time zone of the organisation's calendar (dates are local).
    currency
        Reporting currency code (ISO 4217), e.g. ``"EUR"``.
    organisation
        Display name of the organisation.
    settings
        Other source settings (e.g. ``gross_margin`` for CLV).
    source
        Human description of where the data came from (never a secret).
    warnings
        Non-fatal validation findings (:class:`kpireport.errors.Problem`).
    engine
        Where the KPI queries run (:mod:`kpireport.kpis.relational`): ``None``
        (default) for an embedded DuckDB over ``tables``, or a
        :class:`~kpireport.kpis.relational.DatabaseEngine` holding the same
        canonical tables, queried in place.
    """

    tables: dict[str, pd.DataFrame]
    timezone: str = "UTC"
    currency: str = "EUR"
    organisation: str = "Organisation"
    settings: dict[str, object] = field(default_factory=dict)
    source: str = ""
    warnings: list = field(default_factory=list)
    engine: object | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for df in self.tables.values():
            _freeze(df)

    def replace(self, tables: Mapping[str, pd.DataFrame] | None = None, **changes: Any) -> CrmData:
        """A new dataset with some tables (merged by name) or attributes replaced.

        ``data.replace(tables={"deals": deals2})`` keeps every other table;
        ``data.replace(currency="SEK")`` changes a setting. The original is unchanged.
        """
        merged = dict(self.tables)
        if tables:
            merged.update(tables)
        return dataclasses.replace(self, tables=merged, **changes)

    def cache_token(self) -> tuple[object, ...]:
        """The objects that hold this dataset's content right now (see the module docstring).

        Two tokens whose elements are the same objects (``is``) describe the
        same content: columns are never written in place (their numpy arrays
        are made read-only here), only replaced. Cost: O(tables x columns).
        """
        out: list[object] = [self.timezone, self.currency]
        for name, df in self.tables.items():
            out += [name, df, df.index, tuple(df.columns)]
            out += _freeze(df)
        return tuple(out)

    def row_counts(self) -> dict[str, int]:
        """Table name -> number of rows (without materialising a lazily read table)."""
        return {name: len(df) for name, df in self.tables.items()}

    def has(self, table: str) -> bool:
        """True when the source provides ``table`` (even if it is empty)."""
        return table in self.tables

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def __getattr__(self, name: str) -> pd.DataFrame:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    def fingerprint(self) -> str:
        """A stable SHA-256 of every table's content (for manifests and caches)."""
        h = hashlib.sha256()
        for name in sorted(self.tables):
            df = self.tables[name]
            h.update(name.encode())
            h.update(",".join(map(str, df.columns)).encode())
            h.update(pd.util.hash_pandas_object(df, index=False).values.tobytes())
        h.update(f"{self.timezone}|{self.currency}".encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.tables.items())
        return (
            f"CrmData({self.organisation!r}, {sizes}, tz={self.timezone}, currency={self.currency})"
        )


def _freeze(df: pd.DataFrame) -> list[object]:
    """Mark the numpy arrays behind ``df`` read-only; return its backing arrays."""
    out: list[object] = []
    mgr = getattr(df, "_mgr", None)
    for blk in getattr(mgr, "blocks", ()):
        values = blk.values
        out.append(values)
        nd = values if isinstance(values, np.ndarray) else getattr(values, "_ndarray", None)
        if isinstance(nd, np.ndarray) and nd.flags.writeable:
            nd.flags.writeable = False
        arrow = getattr(values, "_pa_array", None)
        if arrow is not None:
            out.append(arrow)
    return out


class LazyFrames(MutableMapping):
    """Table name -> DataFrame, each produced by :meth:`_load` on first use and frozen.

    The shared mechanics of the lazy table mappings (:class:`ScanTables` here,
    :class:`kpireport.kpis.cube.LazyTables` for a snapshot with a KPI cube):
    reading once, assignment, removal, iteration in source order and
    :meth:`loaded`. A subclass says how one table is read.
    """

    def __init__(self, names: list[str]) -> None:
        self._names = list(names)
        self._frames: dict[str, pd.DataFrame] = {}

    def _load(self, name: str) -> pd.DataFrame:
        raise NotImplementedError

    def __getitem__(self, name: str) -> pd.DataFrame:
        name = str(name)
        df = self._frames.get(name)
        if df is None:
            if name not in self._names:
                raise KeyError(name)
            df = self._load(name)
            self._frames[name] = df
        return df

    def loaded(self) -> dict[str, pd.DataFrame]:
        """The tables read so far."""
        return dict(self._frames)

    def __setitem__(self, name: str, df: pd.DataFrame) -> None:
        _freeze(df)
        self._frames[str(name)] = df
        if str(name) not in self._names:
            self._names.append(str(name))

    def __delitem__(self, name: str) -> None:
        self._names.remove(str(name))
        self._frames.pop(str(name), None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return str(name) in self._names


class ScanTables(LazyFrames):
    """Table name -> canonical DataFrame, each materialised from its file on first use.

    The tables of a :class:`ScanData` (a Parquet folder that needs no
    cleaning, docs/DATA.md "Large data"). ``tables["deals"]`` reads, types
    and freezes the whole table once (the frame an analyst expects, equal to
    the one the pandas path builds); the questions the engine and the
    validation rules ask without the rows go to :meth:`peek` (a one-row
    stub with the canonical columns and dtypes), :meth:`rows` (the file's
    row count) and :meth:`column` (one column as Arrow, nothing else read).

    Parameters
    ----------
    names
        The tables, in source order.
    read
        ``name -> frame``: materialises one canonical table.
    stubs
        ``name -> one-row (or empty) canonical frame``.
    rows
        ``name -> row count``.
    columns
        ``(name, column) -> pyarrow ChunkedArray`` of one canonical column.
    unique
        ``(name, column)`` pairs known to hold no duplicate (:meth:`surely_unique`).
    """

    def __init__(
        self,
        names: list[str],
        read: Callable[[str], pd.DataFrame],
        stubs: Mapping[str, pd.DataFrame],
        rows: Mapping[str, int],
        columns: Callable[[str, str], Any],
        unique: set[tuple[str, str]] | frozenset = frozenset(),
    ) -> None:
        super().__init__(names)
        self._unique = set(unique)
        self._read = read
        self._stubs = dict(stubs)
        self._rows = dict(rows)
        self._columns = columns
        #: the backing arrays of each frame as it was read (a replaced column is seen)
        self._tokens: dict[str, list[object]] = {}
        #: True once a table was assigned or removed: the files no longer describe the data
        self.replaced = False

    def _load(self, name: str) -> pd.DataFrame:
        df = self._read(name)
        self._tokens[name] = _freeze(df)
        return df

    def peek(self, name: str) -> pd.DataFrame:
        """The table when it is materialised, else its one-row stub (same columns and dtypes)."""
        name = str(name)
        if name in self._frames:
            return self._frames[name]
        if name not in self._names:
            raise KeyError(name)
        return self._stubs[name]

    def rows(self, name: str) -> int:
        """Number of rows of ``name`` (from the file's metadata)."""
        name = str(name)
        return len(self._frames[name]) if name in self._frames else self._rows[name]

    def column(self, name: str, column: str) -> Any:
        """One canonical column as a pyarrow ChunkedArray (the materialised frame's, if read)."""
        import pyarrow as pa

        df = self._frames.get(str(name))
        if df is not None:
            s = df[column]
            arr = getattr(s.array, "__arrow_array__", None)
            out = arr() if arr is not None else pa.array(s.to_numpy(), from_pandas=True)
            return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])
        return self._columns(str(name), column)

    def surely_unique(self, name: str, column: str) -> bool:
        """True when the file's ``column`` was seen strictly increasing (so free of duplicates)."""
        return (str(name), column) in self._unique and str(name) not in self._frames

    def changed(self) -> bool:
        """True when a table was replaced or a materialised frame got a new column array."""
        if self.replaced:
            return True
        for name, df in self._frames.items():
            now = _freeze(df)
            old = self._tokens[name]
            if len(now) != len(old) or any(a is not b for a, b in zip(now, old, strict=True)):
                return True
        return False

    def __setitem__(self, name: str, df: pd.DataFrame) -> None:
        super().__setitem__(name, df)
        self._tokens[str(name)] = []
        self.replaced = True

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self.replaced = True

    def __repr__(self) -> str:
        return f"ScanTables({self._names}, materialised={sorted(self._frames)})"


@dataclass
class ScanData(CrmData):
    """A dataset whose big tables stay in their files until someone asks for rows.

    Built by :func:`kpireport.data.load.load` for a Parquet folder that needs
    no cleaning (docs/DATA.md "Large data"): ``tables`` is a
    :class:`ScanTables`; ``views`` maps each table to the SQL ``SELECT``
    that reads its file with the canonical columns, which the KPI engine
    runs on an embedded DuckDB (:meth:`scan_views`), so no KPI query goes
    through pandas. Replacing a table, or a column of a materialised frame,
    is seen (:meth:`ScanTables.changed`): the KPIs are then computed from
    the frames, like any :class:`CrmData`'s.
    """

    views: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:  # frames are frozen as they are read
        pass

    def scan_views(self) -> dict[str, str] | None:
        """Table -> ``SELECT`` over its file, or None when the frames no longer match the files."""
        tables = self.tables
        if not isinstance(tables, ScanTables) or tables.changed() or not self.views:
            return None
        return dict(self.views)

    def replace(self, tables: Mapping[str, pd.DataFrame] | None = None, **changes: Any) -> CrmData:
        """A new dataset, as :meth:`CrmData.replace`.

        Only the labels (organisation, source, warnings) keep the file scan;
        other tables or settings give a plain :class:`CrmData` over the
        materialised frames.
        """
        if tables is None and set(changes) <= {"organisation", "source", "warnings"}:
            return dataclasses.replace(self, **changes)
        merged = dict(self.tables)
        merged.update(tables or {})
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(CrmData)}
        return CrmData(**{**plain, **changes, "tables": merged})

    def cache_token(self) -> tuple[object, ...]:
        """The files' token while they hold the content, else :meth:`CrmData.cache_token`."""
        if self.scan_views() is None:
            return super().cache_token()
        return (self.timezone, self.currency, self.tables, tuple(self.tables))

    def row_counts(self) -> dict[str, int]:
        tables = self.tables
        if isinstance(tables, ScanTables):
            return {name: tables.rows(name) for name in tables}
        return super().row_counts()

    def fingerprint(self) -> str:
        """:func:`scan_fingerprint` of the files while they hold the content, else the pandas one.

        Hashing in DuckDB reads the files column by column and keeps no
        frame, so ``kpireport run`` no longer materialises every table to
        name its snapshot (issue 10). A replaced table or column falls back
        to :meth:`CrmData.fingerprint`.
        """
        views = self.scan_views()
        if views is None:
            return super().fingerprint()
        return scan_fingerprint(views, self.timezone, self.currency)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v:,}" for k, v in self.row_counts().items())
        return (
            f"CrmData({self.organisation!r}, {sizes}, tz={self.timezone}, currency={self.currency})"
        )


#: domain tag of :func:`scan_fingerprint` (a new hash scheme gets a new tag)
SCAN_FINGERPRINT = "duckdb-scan-v1"


def scan_fingerprint(views: Mapping[str, str], timezone: str, currency: str) -> str:
    """A SHA-256 of tables given as DuckDB ``SELECT`` statements, computed without pandas.

    For each table (sorted by name) it hashes the name, the column names and
    DuckDB types, the row count and the sum (as ``HUGEINT``, so no overflow)
    of DuckDB's 64-bit ``hash`` of every row. The sum is a multiset hash:
    any changed, added, removed or duplicated row changes it (unlike
    ``bit_xor``, where two equal rows cancel), but row *order* does not --
    no KPI depends on it, and an order-sensitive hash would need a
    deterministic row position that a generic ``SELECT`` does not have.
    The value differs from :meth:`CrmData.fingerprint` of the same frames
    (a different scheme, tagged :data:`SCAN_FINGERPRINT`), and may change
    with DuckDB's ``hash`` between DuckDB versions (a cache miss, never a
    wrong hit). Used by :meth:`ScanData.fingerprint` and to check a snapshot
    written from one (docs/DATA.md "Large data").
    """
    import duckdb

    h = hashlib.sha256(SCAN_FINGERPRINT.encode())
    con = duckdb.connect()
    try:
        for name in sorted(views):
            sql = views[name]
            cols = con.execute(f"DESCRIBE {sql}").fetchall()
            count, total = con.execute(
                f"SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM ({sql}) AS t"
            ).fetchone()
            h.update(name.encode())
            h.update(",".join(f"{c[0]}:{c[1]}" for c in cols).encode())
            h.update(f"|{count}|{total}|".encode())
    finally:
        con.close()
    h.update(f"{timezone}|{currency}".encode())
    return h.hexdigest()
