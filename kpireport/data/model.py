"""The in-memory CRM dataset handed from stage to stage.

A :class:`CrmData` holds one pandas DataFrame per canonical table (docs/DATA.md)
with canonical column names and types: ids as ``string`` dtype, dates as naive
``datetime64[ns]`` in the organisation's local calendar, numbers as
``float64``. It is plain data: stages read it, none mutates it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

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
    """

    tables: dict[str, pd.DataFrame]
    timezone: str = "UTC"
    currency: str = "EUR"
    organisation: str = "Organisation"
    settings: dict[str, object] = field(default_factory=dict)
    source: str = ""
    warnings: list = field(default_factory=list)

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
