"""Stage 3: KPIs (docs/KPIS.md) — registry, computation, time series, finance comparisons.

Public API::

    compute_kpis(data, periods, by="organisation", kpis=None, as_of=None,
                 *, unattributed=False, breakdown=None) -> DataFrame
        (breakdown="source": the lead KPIs BREAKDOWN_KPIS per lead source,
        leads without a source in UNKNOWN = "(unknown)")
    pivot_kpis(df) -> DataFrame
    kpi_series(data, kpi, scope="organisation", scope_id=None, grain="month",
               start=None, end=None, as_of=None) -> Series
    cumulative_curve(data, kpi, period, scope="organisation", scope_id=None, as_of=None) -> Series
    daily_matrix(data, kpi, by, start, end, as_of=None) -> DataFrame
    growth_table(data, period, by="organisation", as_of=None) -> DataFrame
    get_kpi(name) -> KpiDef, list_kpis() -> DataFrame, REGISTRY
"""

from kpireport.kpis.compute import BREAKDOWN_KPIS, compute_kpis, pivot_kpis
from kpireport.kpis.engine import UNATTRIBUTED, UNKNOWN
from kpireport.kpis.finance import growth_table
from kpireport.kpis.registry import KPIS, REGISTRY, KpiDef, get_kpi, list_kpis
from kpireport.kpis.series import cumulative_curve, daily_matrix, kpi_series

__all__ = [
    "BREAKDOWN_KPIS",
    "KPIS",
    "REGISTRY",
    "UNATTRIBUTED",
    "UNKNOWN",
    "KpiDef",
    "compute_kpis",
    "cumulative_curve",
    "daily_matrix",
    "get_kpi",
    "growth_table",
    "kpi_series",
    "list_kpis",
    "pivot_kpis",
]
