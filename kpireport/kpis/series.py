"""KPI time series: regular series, the within-period cumulative curve, daily matrices.

Design decisions
----------------
* A series is a list of consecutive calendar periods evaluated in one
  vectorised call (:func:`kpireport.kpis.compute.evaluate`); the index holds
  the period starts with a fixed frequency (``MS``, ``W-MON``, ``D``, ``QS``,
  ``YS``) and has no gaps: additive KPIs are 0 where nothing happened, ratios
  NaN where undefined.
* Default span: from the period containing the first dated record of the
  KPI's tables to the period containing ``as_of`` (or the last record). With
  ``as_of`` the last period is cut "to date" and later periods are dropped.
* The future is not zero (docs/KPIS.md, :func:`kpireport.kpis.compute.period_status`):
  periods starting after the last day of the data (or ``as_of`` when
  earlier; :func:`kpireport.kpis.compute.known_end`) are NaN, the period
  that contains that day is evaluated up to it (every KPI, seller costs
  included) and, when it goes beyond it, is flagged in ``attrs["partial"]`` (its label) and
  ``attrs["partial_start"]`` (its start); both are ``None`` otherwise.
  :func:`kpireport.forecast` warns when handed such a series.
* A single scope id is evaluated by mapping every other id to
  *unattributed*, so a series for one customer costs no more than one for
  the organisation.
* The cumulative curve evaluates, for every day d of the period, the KPI over
  ``[P.start, d + 1 day)``: for additive KPIs that is the running total; for
  ratios it is the ratio to date; for pipeline KPIs the snapshot at the end of
  d. Days after ``as_of`` are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpireport.constants import GRAIN_FREQ, Grain, Scope
from kpireport.data.model import CrmData
from kpireport.errors import KpiError, PeriodError
from kpireport.kpis.compute import (
    _DATE_COLUMNS,
    DateLike,
    PeriodLike,
    cut_intervals,
    evaluate,
    known_end,
    period_status,
    resolve_kpis,
    resolve_scope,
)
from kpireport.kpis.engine import NAT, UNATTRIBUTED, prepared
from kpireport.periods import (
    Period,
    _day,
    containing,
    from_start,
    is_relative,
    parse_grain,
    parse_period,
)


def _select(data: CrmData, scope: Scope, scope_id: object) -> int | None:
    if scope == Scope.ORGANISATION:
        return None
    if scope_id is None:
        raise KpiError(f"A {scope} series needs a scope_id.", hint=f"Pass the {scope} id.")
    ids = prepared(data).scope_ids(scope)
    code = ids.get_indexer([str(scope_id)])[0]
    if code < 0:
        sample = ", ".join(map(str, ids[:5]))
        raise KpiError(f"Unknown {scope} '{scope_id}'.", hint=f"Known ids include: {sample}.")
    return int(code)


def _bound(value: PeriodLike | DateLike, grain: Grain, *, last: bool = False) -> Period:
    """The ``grain`` period containing the first (``last``: the last) day of ``value``.

    ``value`` is anything :func:`~kpireport.periods.parse_period` accepts
    (label, relative name with ``as_of``, Period, pandas Period, date, int
    year) or a date string such as ``2026-10-15 12:00``.
    """
    try:
        p = parse_period(value)
    except PeriodError:
        if not isinstance(value, str):
            raise
        return containing(_day(value), grain)
    return containing(p.last_day if last else p.start, grain)


def _data_span(data: CrmData, tables: tuple[str, ...]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    prep = prepared(data)
    lo, hi = None, None
    for table, col in _DATE_COLUMNS:
        span = prep.date_range(table, col) if table in tables else None
        if span is not None:
            lo = span[0] if lo is None else min(lo, span[0])
            hi = span[1] if hi is None else max(hi, span[1])
    if lo is None:
        return None
    return pd.Timestamp(int(lo)), pd.Timestamp(int(hi))


def kpi_series(
    data: CrmData,
    kpi: str,
    scope: str | Scope = Scope.ORGANISATION,
    scope_id: object = None,
    grain: str | Grain = Grain.MONTH,
    start: PeriodLike | DateLike | None = None,
    end: PeriodLike | DateLike | None = None,
    as_of: DateLike | None = None,
) -> pd.Series:
    """A regular, gap-free time series of one KPI for one scope id.

    Parameters
    ----------
    data
        The canonical dataset.
    kpi
        KPI name.
    scope, scope_id
        Whose series (``scope_id`` is ignored for the organisation).
    grain
        ``day``, ``week``, ``month``, ``quarter`` or ``year``.
    start, end
        First and last period: anything a period argument accepts (a label,
        a relative name resolved against ``as_of``, a Period, a pandas
        Period, a date or Timestamp, an int year; docs/PERIODS.md). The
        series starts with the ``grain`` period containing the first day of
        ``start`` and ends with the one containing the last day of ``end``
        (``end="2026"`` by month ends with 2026-12).
        Defaults: the span of the KPI's data, ending with the period that
        contains ``as_of``.
    as_of
        Cuts the last period "to date" and drops later periods. Without it
        the period holding the data's last day is cut there.

    Returns
    -------
    pandas.Series
        Named ``kpi``, indexed by period start with frequency
        ``GRAIN_FREQ[grain]``; ``attrs["periods"]`` holds the labels,
        ``attrs["unit"]`` the unit, ``attrs["partial"]`` the label of the
        partial period (``None`` when every period is complete) and
        ``attrs["partial_start"]`` its start. Periods after the last day of
        the data (or ``as_of``) are NaN, not 0 (module docstring).
    """
    grain = parse_grain(grain)
    scope = resolve_scope(scope)
    kdef = resolve_kpis(kpi, scope)[0]
    select = _select(data, scope, scope_id)
    if isinstance(start, str) and is_relative(start):
        start = parse_period(start, as_of)
    if isinstance(end, str) and is_relative(end):
        end = parse_period(end, as_of)
    span = _data_span(data, kdef.tables)
    if start is None:
        if span is None:
            raise KpiError(f"No dated data for '{kdef.name}': pass start and end explicitly.")
        start = span[0]
    if end is None:
        if as_of is not None:
            end = _day(as_of)
        elif span is not None:
            end = span[1]
        else:
            raise KpiError(f"No dated data for '{kdef.name}': pass end explicitly.")
    first, last = _bound(start, grain), _bound(end, grain, last=True)
    if as_of is not None:
        last = min(last, containing(as_of, grain))
    if last.start < first.start:
        raise KpiError(f"The series would be empty: start {first} is after end {last}.")
    index = pd.date_range(first.start, last.start, freq=GRAIN_FREQ[grain])
    periods = [from_start(s, grain) for s in index]
    prep = prepared(data)
    starts, ends = cut_intervals(periods, as_of, prep)
    values, _ = evaluate(data, kdef, scope, periods, starts, ends, as_of, select)
    future, partial, _ = period_status(prep, periods, as_of)
    out = pd.Series(np.where(future, np.nan, values[:, 0]), index=index, name=kdef.name)
    out.index.name = "period_start"
    out.attrs["periods"] = [p.label for p in periods]
    out.attrs["unit"] = str(kdef.unit)
    last = int(np.flatnonzero(partial)[-1]) if partial.any() else None
    out.attrs["partial"] = None if last is None else periods[last].label
    out.attrs["partial_start"] = None if last is None else periods[last].start
    return out


def cumulative_curve(
    data: CrmData,
    kpi: str,
    period: PeriodLike,
    scope: str | Scope = Scope.ORGANISATION,
    scope_id: object = None,
    as_of: DateLike | None = None,
) -> pd.Series:
    """The KPI to date on every day of ``period`` (the development curve).

    Value on day d = the KPI over ``[period.start, d + 1 day)``: the running
    total for additive KPIs, the ratio to date otherwise. Days after ``as_of``
    are NaN. Every day is evaluated up to the known end at most (the data's
    last day when that is before ``as_of``;
    :func:`~kpireport.kpis.compute.known_end`), so the days after the data's
    end repeat its value (seller costs stop accruing there too) and the curve
    ends on the value ``compute_kpis`` gives the period.

    Returns
    -------
    pandas.Series
        Daily ``DatetimeIndex`` (freq ``D``) covering the whole period.
    """
    scope = resolve_scope(scope)
    kdef = resolve_kpis(kpi, scope)[0]
    select = _select(data, scope, scope_id)
    p = parse_period(period, as_of)
    days = p.days_index()
    out = pd.Series(np.nan, index=days, name=kdef.name)
    out.index.name = "date"
    known = days if as_of is None else days[days <= _day(as_of)]
    if len(known):
        ends = (known + pd.Timedelta(days=1)).as_unit("ns").asi8.astype(np.int64)
        cut = known_end(prepared(data), as_of)[0]
        if cut != NAT:
            ends = np.maximum(np.minimum(ends, cut), p.start.value)
        starts = np.full(len(ends), p.start.value, dtype=np.int64)
        values, _ = evaluate(data, kdef, scope, [p] * len(ends), starts, ends, as_of, select)
        out.iloc[: len(known)] = values[:, 0]
    out.attrs["period"] = p.label
    out.attrs["unit"] = str(kdef.unit)
    return out


def daily_matrix(
    data: CrmData,
    kpi: str,
    by: str | Scope,
    start: DateLike,
    end: DateLike,
    as_of: DateLike | None = None,
) -> pd.DataFrame:
    """Daily values of one KPI for every id of a scope (days × scope ids).

    ``start`` and ``end`` are inclusive days. Days after ``as_of`` are dropped.
    The organisation's single column is named ``organisation``; rows without a
    team/seller/company are in the ``(unattributed)`` column.
    """
    scope = resolve_scope(by)
    kdef = resolve_kpis(kpi, scope)[0]
    last = _day(end) if as_of is None else min(_day(end), _day(as_of))
    days = pd.date_range(_day(start), last, freq="D")
    periods = [from_start(d, Grain.DAY) for d in days]
    starts = days.as_unit("ns").asi8.astype(np.int64)
    ends = starts + pd.Timedelta(days=1).value
    values, _ = evaluate(data, kdef, scope, periods, starts, ends, as_of)
    ids = prepared(data).scope_ids(scope)
    if scope == Scope.ORGANISATION:
        return pd.DataFrame({Scope.ORGANISATION.value: values[:, 0]}, index=days).rename_axis(
            "date"
        )
    cols = [*map(str, ids), UNATTRIBUTED]
    return pd.DataFrame(values, index=days, columns=cols).rename_axis("date")
