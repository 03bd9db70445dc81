"""The KPI registry: one declared :class:`KpiDef` per KPI (docs/KPIS.md).

Design decisions
----------------
* **Explicit, in one place.** :data:`REGISTRY` is built from the literal list
  :data:`KPIS` below; nothing registers itself on import. Adding a KPI is one
  formula function in :mod:`kpireport.kpis.definitions` plus one entry here
  (plus its test).
* **The docstring is the definition.** ``KpiDef.definition`` is the formula
  function's docstring; ``kpireport kpis --list`` and :func:`list_kpis` show it.
* ``tables`` are the tables a KPI cannot do without: when one is missing the
  KPI is *unavailable* (value NaN and a note with the reason), never zero.
  ``columns`` are optional columns that must hold at least one value when the
  table has rows (e.g. ``leads.qualified_at`` for ``sql``).
* ``additive`` means the KPI of a period is the sum of the KPI of its
  sub-periods (counts and sums): only those are paced and forecast. Ratios,
  means and pipeline snapshots are not additive.
* ``category`` sorts every KPI as an *activity* (what sellers do: calls,
  meetings, quotes, leads), a *result* (what it brings: won value, revenue,
  customers, pipeline) or an *efficiency* KPI (how well one becomes the other:
  hit rates, conversion, cycle, CAC, CLV and its drivers); report cards group
  by it.
* ``bounds`` is the range a goal target may take (``0 ≤ target`` for counts
  and amounts, ``0..1`` for rates given as fractions, unbounded for growth
  rates); :func:`kpireport.goals.validate_goals` refuses targets outside it.
* ``leads_needed`` (reverse funnel) is a goal-dependent quantity and belongs to
  :mod:`kpireport.goals`; it is not registered here.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from kpireport.constants import Better, Scope, Table, Unit
from kpireport.errors import KpiError
from kpireport.kpis import definitions as d

ALL_SCOPES: tuple[Scope, ...] = (Scope.ORGANISATION, Scope.TEAM, Scope.SELLER, Scope.CUSTOMER)
INTERNAL_SCOPES: tuple[Scope, ...] = (Scope.ORGANISATION, Scope.TEAM, Scope.SELLER)


@dataclass(frozen=True)
class KpiDef:
    """A declared KPI.

    Attributes
    ----------
    name
        Identifier used in goals, parameters and the CLI.
    label
        Human-readable name for reports.
    unit
        :class:`~kpireport.constants.Unit` of the value.
    better
        Whether higher or lower values are better.
    tables
        Tables the KPI needs; without one of them it is unavailable.
    additive
        True when the value over a period is the sum over its sub-periods.
    scopes
        Scopes the KPI is defined for.
    formula
        The function computing it; its docstring is the exact definition.
    columns
        ``table.column`` entries that must hold at least one value.
    category
        ``activity``, ``result`` or ``efficiency`` (module docstring).
    bounds
        ``(low, high)``: the range of a valid goal target.
    """

    name: str
    label: str
    unit: Unit
    better: Better
    tables: tuple[str, ...]
    additive: bool
    scopes: tuple[Scope, ...]
    formula: Callable[..., d.Result]
    columns: tuple[str, ...] = ()
    category: str = "result"
    bounds: tuple[float, float] = (0.0, math.inf)

    @property
    def definition(self) -> str:
        """The exact definition: the formula's docstring, dedented."""
        return inspect.cleandoc(self.formula.__doc__ or "")

    @property
    def summary(self) -> str:
        """The first sentence/line of the definition."""
        return self.definition.split("\n\n")[0].replace("\n", " ")

    @property
    def doc(self) -> str:
        """Alias of :attr:`definition` (ARCHITECTURE contract)."""
        return self.definition


H, L = Better.HIGHER, Better.LOWER
LEADS, DEALS, ACT, REV, COSTS, COMP, SELL = (
    Table.LEADS,
    Table.DEALS,
    Table.ACTIVITIES,
    Table.REVENUE,
    Table.COSTS,
    Table.COMPANIES,
    Table.SELLERS,
)

#: Every KPI, in catalogue order.
KPIS: tuple[KpiDef, ...] = (
    KpiDef("new_leads", "New leads", Unit.COUNT, H, (LEADS,), True, ALL_SCOPES, d.new_leads),
    KpiDef("new_organisations", "New organisations", Unit.COUNT, H, (COMP, DEALS), True,
           INTERNAL_SCOPES, d.new_organisations),
    KpiDef("sql", "Sales-qualified leads", Unit.COUNT, H, (LEADS,), True, ALL_SCOPES, d.sql,
           ("leads.qualified_at",)),
    KpiDef("lead_conversion", "Lead-to-deal conversion", Unit.PERCENT, H, (LEADS, DEALS), False,
           ALL_SCOPES, d.lead_conversion, ("deals.lead_id",)),
    KpiDef("hit_rate", "Hit rate", Unit.PERCENT, H, (DEALS,), False, ALL_SCOPES, d.hit_rate),
    KpiDef("prospect_hit_rate", "Prospect hit rate", Unit.PERCENT, H, (DEALS, ACT), False,
           ALL_SCOPES, d.prospect_hit_rate),
    KpiDef("sales_cycle_days", "Sales cycle (mean days)", Unit.DAYS, L, (DEALS,), False,
           ALL_SCOPES, d.sales_cycle_days),
    KpiDef("sales_cycle_days_median", "Sales cycle (median days)", Unit.DAYS, L, (DEALS,), False,
           ALL_SCOPES, d.sales_cycle_days_median),
    KpiDef("avg_deal_value", "Average deal value", Unit.CURRENCY, H, (DEALS,), False, ALL_SCOPES,
           d.avg_deal_value),
    KpiDef("deals_won", "Deals won", Unit.COUNT, H, (DEALS,), True, ALL_SCOPES, d.deals_won),
    KpiDef("deals_lost", "Deals lost", Unit.COUNT, L, (DEALS,), True, ALL_SCOPES, d.deals_lost),
    KpiDef("won_value", "Order intake (won value)", Unit.CURRENCY, H, (DEALS,), True, ALL_SCOPES,
           d.won_value),
    KpiDef("pipeline_value", "Pipeline value", Unit.CURRENCY, H, (DEALS,), False, ALL_SCOPES,
           d.pipeline_value),
    KpiDef("weighted_pipeline", "Weighted pipeline", Unit.CURRENCY, H, (DEALS,), False, ALL_SCOPES,
           d.weighted_pipeline, ("deals.probability",)),
    KpiDef("new_customers", "New customers", Unit.COUNT, H, (DEALS,), True, ALL_SCOPES,
           d.new_customers),
    KpiDef("meetings_booked", "Meetings booked", Unit.COUNT, H, (ACT,), True, ALL_SCOPES,
           d.meetings_booked),
    KpiDef("quotes_sent", "Quotes sent", Unit.COUNT, H, (ACT,), True, ALL_SCOPES, d.quotes_sent),
    KpiDef("calls_made", "Calls made", Unit.COUNT, H, (ACT,), True, ALL_SCOPES, d.calls_made),
    KpiDef("revenue", "Revenue", Unit.CURRENCY, H, (REV,), True, ALL_SCOPES, d.revenue),
    KpiDef("revenue_growth_mom", "Revenue growth MoM", Unit.PERCENT, H, (REV,), False, ALL_SCOPES,
           d.revenue_growth_mom),
    KpiDef("revenue_growth_yoy", "Revenue growth YoY", Unit.PERCENT, H, (REV,), False, ALL_SCOPES,
           d.revenue_growth_yoy),
    KpiDef("revenue_growth_ytd", "Revenue growth YTD", Unit.PERCENT, H, (REV,), False, ALL_SCOPES,
           d.revenue_growth_ytd),
    KpiDef("costs", "Sales & marketing costs", Unit.CURRENCY, L, (COSTS, SELL), True,
           INTERNAL_SCOPES, d.costs),
    KpiDef("cac", "Customer acquisition cost", Unit.CURRENCY, L, (COSTS, DEALS), False,
           INTERNAL_SCOPES, d.cac),
    KpiDef("clv", "Customer lifetime value", Unit.CURRENCY, H, (REV,), False, INTERNAL_SCOPES,
           d.clv),
    KpiDef("products_per_customer", "Products per customer", Unit.RATIO, H, (REV,), False,
           INTERNAL_SCOPES, d.products_per_customer),
    KpiDef("customer_tenure_months", "Customer tenure (months)", Unit.RATIO, H, (REV,), False,
           INTERNAL_SCOPES, d.customer_tenure_months),
)  # fmt: skip

#: the KPI categories, in the order report cards show them
CATEGORIES: tuple[str, ...] = ("activity", "result", "efficiency")

_ACTIVITY = ("new_leads", "sql", "meetings_booked", "quotes_sent", "calls_made")
_EFFICIENCY = (
    "lead_conversion", "hit_rate", "prospect_hit_rate", "sales_cycle_days",
    "sales_cycle_days_median", "avg_deal_value", "cac", "clv", "products_per_customer",
    "customer_tenure_months",
)  # fmt: skip
_FRACTION = ("lead_conversion", "hit_rate", "prospect_hit_rate")
_SIGNED = ("revenue_growth_mom", "revenue_growth_yoy", "revenue_growth_ytd")


def _classified(k: KpiDef) -> KpiDef:
    from dataclasses import replace

    category = (
        "activity" if k.name in _ACTIVITY else "efficiency" if k.name in _EFFICIENCY else "result"
    )
    bounds = (
        (0.0, 1.0)
        if k.name in _FRACTION
        else (-math.inf, math.inf)
        if k.name in _SIGNED
        else (0.0, math.inf)
    )
    return replace(k, category=category, bounds=bounds)


KPIS = tuple(_classified(k) for k in KPIS)

#: name -> definition
REGISTRY: dict[str, KpiDef] = {k.name: k for k in KPIS}


def get_kpi(name: str | KpiDef) -> KpiDef:
    """Look a KPI up by name.

    Raises
    ------
    KpiError
        When the name is unknown; the message lists the valid names.
    """
    if isinstance(name, KpiDef):
        return name
    try:
        return REGISTRY[str(name).strip()]
    except KeyError:
        raise KpiError(
            f"Unknown KPI '{name}'.",
            hint="Valid KPIs: " + ", ".join(REGISTRY) + ".",
        ) from None


def list_kpis() -> pd.DataFrame:
    """The registry as a DataFrame (one row per KPI, indexed by name)."""
    rows = [
        {
            "name": k.name,
            "label": k.label,
            "unit": str(k.unit),
            "better": str(k.better),
            "additive": k.additive,
            "category": k.category,
            "tables": ", ".join(k.tables),
            "scopes": ", ".join(k.scopes),
            "definition": k.definition,
        }
        for k in KPIS
    ]
    return pd.DataFrame(rows).set_index("name")
