"""The canonical data contract (docs/DATA.md), declared as data.

Each :class:`TableSchema` lists its columns with a *kind* that says how the
loader parses it and how the validator checks it:

``id``        string identifier (leading zeros and long numbers survive)
``str``       free text (CRM text; never markup)
``date``      calendar date or timestamp, converted to the organisation's
              local calendar and stored as naive ``datetime64[ns]``
``float``     number
``category``  a closed vocabulary (``choices``)

Declaration lives here; execution lives in :mod:`kpireport.data.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kpireport.constants import DealStatus, Direction, Scope, Table


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | str | date | float | category
    required: bool = False
    choices: tuple[str, ...] | None = None
    nullable: bool = True
    description: str = ""
    #: an end date where the CRM writes ``9999-12-31`` for "no end" (read as empty)
    open_end: bool = False


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    id_column: str | None = None
    required: bool = False
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def columns_of_kind(self, kind: str) -> list[str]:
        return [c.name for c in self.columns if c.kind == kind]


def _c(name: str, kind: str, required: bool = False, **kw: object) -> Column:
    return Column(name, kind, required, nullable=not required, **kw)  # type: ignore[arg-type]


SCHEMAS: dict[str, TableSchema] = {
    Table.SELLERS: TableSchema(
        Table.SELLERS,
        (
            _c("seller_id", "id", True),
            _c("name", "str", True),
            _c("team", "str", True),
            _c("monthly_cost", "float"),
            _c("active_from", "date"),
            _c("active_to", "date", open_end=True),
        ),
        id_column="seller_id",
        required=True,
        description="Sales people and the team each belongs to.",
    ),
    Table.COMPANIES: TableSchema(
        Table.COMPANIES,
        (
            _c("company_id", "id", True),
            _c("org_number", "id", True),
            _c("name", "str"),
            _c("industry", "str"),
            _c("created_at", "date"),
        ),
        id_column="company_id",
        description="Customer and prospect organisations.",
    ),
    Table.LEADS: TableSchema(
        Table.LEADS,
        (
            _c("lead_id", "id", True),
            _c("created_at", "date", True),
            _c("company_id", "id"),
            _c("seller_id", "id"),
            _c("source", "str"),
            _c("qualified_at", "date"),
        ),
        id_column="lead_id",
        description="Leads, with their source and the date they were sales-qualified.",
    ),
    Table.DEALS: TableSchema(
        Table.DEALS,
        (
            _c("deal_id", "id", True),
            _c("seller_id", "id", True),
            _c("created_at", "date", True),
            _c("status", "category", True, choices=tuple(s.value for s in DealStatus)),
            _c("value", "float", True),
            _c("company_id", "id"),
            _c("lead_id", "id"),
            _c("stage", "str"),
            _c("probability", "float"),
            _c("closed_at", "date"),
            _c("expected_close_at", "date", open_end=True),
            _c("currency", "str"),
        ),
        id_column="deal_id",
        required=True,
        description="Opportunities: open, won or lost.",
    ),
    Table.ACTIVITIES: TableSchema(
        Table.ACTIVITIES,
        (
            _c("activity_id", "id", True),
            _c("seller_id", "id", True),
            _c("type", "str", True),
            _c("occurred_at", "date", True),
            _c("company_id", "id"),
            _c("deal_id", "id"),
        ),
        id_column="activity_id",
        description="Calls, meetings, quotes, e-mails logged by sellers.",
    ),
    Table.REVENUE: TableSchema(
        Table.REVENUE,
        (
            _c("invoice_id", "id", True),
            _c("company_id", "id", True),
            _c("date", "date", True),
            _c("amount", "float", True),
            _c("product", "str"),
            _c("seller_id", "id"),
            _c("deal_id", "id"),
            _c("currency", "str"),
        ),
        id_column="invoice_id",
        description="Invoiced revenue; credit notes are negative amounts.",
    ),
    Table.COSTS: TableSchema(
        Table.COSTS,
        (
            _c("date", "date", True),
            _c("category", "str", True),
            _c("amount", "float", True),
            _c("team", "str"),
            _c("currency", "str"),
        ),
        description="Sales and marketing costs (salaries come from sellers.monthly_cost).",
    ),
    Table.GOALS: TableSchema(
        Table.GOALS,
        (
            _c("kpi", "str", True),
            _c("scope", "category", True, choices=tuple(s.value for s in Scope)),
            _c("scope_id", "id"),
            _c("period", "str", True),
            _c("target", "float"),  # or a growth (docs/GOALS.md); one of them is required
            _c("direction", "category", choices=tuple(d.value for d in Direction)),
            _c("owner", "str"),
            _c("agreed_by", "str"),
            _c("goal_id", "id"),
            _c("growth", "float"),
            _c("baseline", "str"),
        ),
        description="SMART goals: KPI, scope, period, target.",
    ),
    Table.RATES: TableSchema(
        Table.RATES,
        (
            _c("currency", "str", True),
            _c("rate", "float", True),
            _c("date", "date"),
        ),
        description="Exchange rates: 1 unit of `currency` = `rate` units of the reporting currency.",
    ),
}

REQUIRED_TABLES: tuple[str, ...] = tuple(n for n, s in SCHEMAS.items() if s.required)
