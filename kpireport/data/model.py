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
from collections.abc import Mapping
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
