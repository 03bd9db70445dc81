"""``compute_kpis``: every requested KPI × scope id × period in one tidy frame.

Design decisions
----------------
* **Tidy long form.** The result has the columns ``kpi, scope,
  scope_id, period, value`` (:data:`kpireport.constants.KPI_COLUMNS`) followed
  by ``unit``, ``note``, ``name`` (what a person reads for the id) and
  ``period_start`` (the period's first day, a datetime). ``scope_id`` is NaN for the organisation;
  ``period`` is the period label (docs/PERIODS.md) of the requested period; ``note`` explains a NaN
  or flags a value (``unavailable: …``, ``new: …``, ``immature cohort: …``,
  ``lifetime capped …``), else NaN. The evaluated intervals (after the cut at
  the known end, below) are in ``df.attrs["intervals"]`` (label -> (start, end)).
* **"To date".** Every period is cut at the *known end*: the end of the
  ``as_of`` day, or the end of the data's last day when that is earlier (no
  cut without ``as_of`` and without dated records). A period that contains
  the known end is evaluated from its start up to it, for every KPI — seller
  costs (``monthly_cost`` pro rata) included, so a quarter holding the data's
  end counts the same days as its months and the months sum to the quarter;
  growth KPIs compare it with the same number of days before. Periods that
  ended before are unchanged. Relative labels (``current-month`` …) need
  ``as_of``.
* **The future is not zero** (docs/KPIS.md). The *data's end* is the last day
  holding a dated record: the latest ``created_at``/``closed_at`` of deals,
  ``created_at``/``qualified_at`` of leads, ``date`` of revenue and costs,
  ``occurred_at`` of activities (:func:`data_end`; plan dates such as
  ``expected_close_at`` or a seller's ``active_to`` do not count). A period
  that starts after the known end has value NaN for every KPI, with the note
  ``in the future: after as_of YYYY-MM-DD`` (``as_of`` is the earlier) or
  ``after the data: last record YYYY-MM-DD``. A period that contains the
  known end but goes beyond it is *partial*: evaluated to date (above), with
  ``complete`` False. Every other period is complete. (A dataset without
  dates and without ``as_of``: every period complete, nothing cut.)
* **Which scope ids.** Organisation: one row. Team: every team of the
  ``sellers`` table, activity or not. Seller: every seller active on some day
  of the period (``active_from``/``active_to``; missing bounds are open) or
  with a non-zero value in it. Customer: every company with a non-zero value
  in the period. With ``unattributed=True`` an extra ``(unattributed)`` id
  collects the rows without a team/seller/company, so teams + unattributed
  reconcile with the organisation for additive KPIs.
* **Unavailable KPIs** (a needed table is missing, or a needed column is
  empty) give NaN with the reason in ``note`` — never zero.
* Requesting a KPI explicitly for a scope it is not defined for (``cac`` per
  customer) raises :class:`~kpireport.errors.KpiError`; with ``kpis=None`` such
  KPIs are skipped.
* **Lead-source breakdown** (docs/KPIS.md, ``breakdown="source"``). Only the lead
  KPIs (:data:`BREAKDOWN_KPIS`: ``new_leads``, ``sql``, ``lead_conversion``)
  can be broken down; ``kpis=None`` then means those three, and any other KPI
  raises :class:`~kpireport.errors.KpiError` naming the valid ones. The
  result gets a ``source`` column right after the five KPI columns (which
  keep their names and order: consumers select them by name), before
  ``unit, note``. Each kept ``(period, scope id)`` cell — kept by the same
  rules as without breakdown, judged on the cell's values over all sources —
  gets one row per source of the dataset (stripped ``leads.source`` values,
  sorted, then ``(unknown)`` when some lead has no source), zeros included,
  so the rows are the same for every period and the additive KPIs of the
  sources sum exactly to the un-broken-down value. ``lead_conversion`` of a
  source is that source's converted leads / its leads (NaN without leads).
  The breakdown is computed in the same query (grouped by scope key and
  stripped source; result column ``scope column * sources + source``), see
  :mod:`kpireport.kpis.relational`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from kpireport.constants import KPI_COLUMNS, Scope, Table
from kpireport.data.model import CrmData
from kpireport.errors import KpiError, parse_choice
from kpireport.kpis.engine import (
    NAT,
    NS_PER_DAY,
    UNATTRIBUTED,
    Context,
    Prepared,
    Split,
    prepared,
)
from kpireport.kpis.registry import KPIS, KpiDef, get_kpi
from kpireport.periods import Period, _day, parse_period

log = logging.getLogger("kpireport")

DateLike = dt.date | pd.Timestamp | str
#: what a period argument accepts (docs/PERIODS.md): a label or relative name,
#: a Period, a pandas Period, a date/Timestamp (that day) or an int year
PeriodLike = str | Period | pd.Period | dt.date | pd.Timestamp | int

#: columns of the result after the five KPI_COLUMNS
EXTRA_COLUMNS = ("unit", "note", "name", "period_start", "complete")
#: the breakdowns ``compute_kpis`` accepts
BREAKDOWNS = ("source",)
#: the KPIs that can be broken down by lead source (docs/KPIS.md)
BREAKDOWN_KPIS = ("new_leads", "sql", "lead_conversion")

_DATE_COLUMNS = (
    (Table.DEALS, "created_at"),
    (Table.DEALS, "closed_at"),
    (Table.LEADS, "created_at"),
    (Table.LEADS, "qualified_at"),
    (Table.REVENUE, "date"),
    (Table.ACTIVITIES, "occurred_at"),
    (Table.COSTS, "date"),
)


# ---------------------------------------------------------------- resolving
def resolve_periods(
    periods: PeriodLike | Iterable[PeriodLike], as_of: DateLike | None
) -> list[Period]:
    """Parse one or several periods (relative labels against ``as_of``), de-duplicated.

    A single period is anything :func:`~kpireport.periods.parse_period`
    accepts (a label, relative name, Period, pandas Period, date, Timestamp or
    int year); anything else iterable is a list of them.
    """
    if isinstance(periods, (str, Period, pd.Period, dt.date, int, np.integer)) or not isinstance(
        periods, Iterable
    ):
        periods = [periods]
    out: list[Period] = []
    for p in periods:
        period = parse_period(p, as_of)
        if period not in out:
            out.append(period)
    if not out:
        raise KpiError("No period was given.", hint="Pass a label such as 2026-10.")
    return out


def resolve_kpis(kpis: str | KpiDef | Iterable[str | KpiDef] | None, scope: Scope) -> list[KpiDef]:
    """The requested KPIs (all that support ``scope`` when ``None``)."""
    if kpis is None:
        return [k for k in KPIS if scope in k.scopes]
    if isinstance(kpis, (str, KpiDef)):
        kpis = [kpis]
    out = []
    for name in kpis:
        k = get_kpi(name)
        if scope not in k.scopes:
            raise KpiError(
                f"The KPI '{k.name}' is not defined for the {scope} scope.",
                hint="It supports: " + ", ".join(k.scopes) + ".",
            )
        if k not in out:
            out.append(k)
    return out


def resolve_scope(by: str | Scope) -> Scope:
    """``by`` as a :class:`Scope`; an unknown one raises a KpiError naming the valid scopes."""
    return parse_choice(Scope, by, "scope", KpiError)


def data_end(prep: Prepared) -> int:
    """End of the data: midnight after the last day holding a dated record (``NAT``: none).

    The dated columns are the event dates of :data:`_DATE_COLUMNS` (deals
    created/closed, leads created/qualified, revenue, activities, costs);
    plan dates (``expected_close_at``, a seller's ``active_from``/``active_to``)
    and goals do not count (docs/KPIS.md, "the future is not zero").
    """

    def build() -> int:
        last = NAT
        for table, col in _DATE_COLUMNS:
            span = prep.date_range(table, col)
            if span is not None:
                last = max(last, span[1])
        if last == NAT:
            return NAT
        return int(pd.Timestamp(last).normalize().value + NS_PER_DAY)

    return prep.memo(("data_end",), build)


def known_end(prep: Prepared, as_of: DateLike | None) -> tuple[int, str | None]:
    """The cut of every period: ``(end, note)`` of what is known (module docstring).

    ``end`` (``int64`` ns, exclusive) is the earlier of the end of ``as_of``
    and :func:`data_end`; ``note`` is the note of the periods after it
    (``in the future: after as_of …`` or ``after the data: last record …``).
    ``(NAT, None)`` when there is neither ``as_of`` nor a dated record.
    """
    cut, note = data_end(prep), None
    if cut != NAT:
        note = f"after the data: last record {pd.Timestamp(cut - NS_PER_DAY).date()}"
    if as_of is not None:
        a = (_day(as_of) + pd.Timedelta(days=1)).value
        if cut == NAT or a < cut:
            cut, note = a, f"in the future: after as_of {_day(as_of).date()}"
    return cut, note


def cutoff_of(prep: Prepared, as_of: DateLike | None) -> int:
    """The engine's cut-off (``Context.cutoff``): the known end, :func:`known_end`."""
    return known_end(prep, as_of)[0]


def period_status(
    prep: Prepared, periods: Sequence[Period], as_of: DateLike | None
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(future, partial, note)`` of each period against the known end (module docstring).

    ``future``/``partial`` are bool arrays over ``periods``; ``note`` is the
    note of the future periods (``None`` when nothing is known to end).
    """
    n = len(periods)
    cut, note = known_end(prep, as_of)
    if cut == NAT:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool), None
    starts = np.array([p.start.value for p in periods], dtype=np.int64)
    ends = np.array([p.end.value for p in periods], dtype=np.int64)
    future = starts >= cut
    partial = ~future & (ends > cut)
    return future, partial, note


def unavailable_reason(prep: Prepared, kpi: KpiDef) -> str | None:
    """Why ``kpi`` cannot be computed on this dataset (``None`` when it can)."""
    missing = [t for t in kpi.tables if not prep.has(t)]
    if missing:
        names = ", ".join(f"'{t}'" for t in missing)
        return f"unavailable: needs the {names} table{'s' if len(missing) > 1 else ''}"
    for ref in kpi.columns:
        table, column = ref.split(".")
        if not prep.has(table):
            continue
        df = prep.frame(table)
        if len(df) and (column not in df or df[column].isna().all()):
            return f"unavailable: column '{ref}' has no values"
    return None


# ------------------------------------------------------------------ evaluate
def evaluate(
    data: CrmData,
    kpi: KpiDef,
    scope: Scope,
    periods: Sequence[Period],
    starts: np.ndarray,
    ends: np.ndarray,
    as_of: DateLike | None = None,
    select: int | None = None,
    split: Split | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate one KPI over explicit intervals.

    Returns
    -------
    values, notes
        ``(intervals, scope ids + 1)`` arrays; the last column is unattributed.
        With ``split``: ``(intervals, (scope ids + 1) * split.k)``, column
        ``scope column * split.k + category``.
    """
    prep = prepared(data)
    ctx = Context(
        prep, scope, periods, starts, ends, cutoff_of(prep, as_of), select, data.settings, split
    )
    reason = unavailable_reason(prep, kpi)
    if reason is not None:
        notes = ctx.cell_notes()
        notes[:] = reason
        return np.full(notes.shape, np.nan), notes
    with np.errstate(invalid="ignore", divide="ignore"):
        res = kpi.formula(ctx)
    if isinstance(res, tuple):
        return res
    return res, ctx.cell_notes()


def cut_intervals(
    periods: Sequence[Period], as_of: DateLike | None, prep: Prepared | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``int64`` ns bounds of the periods, cut at the known end.

    With ``prep`` the cut is :func:`known_end` (the end of ``as_of`` or of the
    data, whichever is earlier), the one that makes later periods NaN, so a
    partial period is evaluated over exactly the days before it and the
    months of a quarter sum to the quarter. Without ``prep``: the end of
    ``as_of`` only (no cut without it).
    """
    starts = np.array([p.start.value for p in periods], dtype=np.int64)
    ends = np.array([p.end.value for p in periods], dtype=np.int64)
    if prep is not None:
        cut = known_end(prep, as_of)[0]
    else:
        cut = NAT if as_of is None else (_day(as_of) + pd.Timedelta(days=1)).value
    if cut != NAT:
        ends = np.maximum(np.minimum(ends, cut), starts)
    return starts, ends


def compute_kpis(
    data: CrmData,
    periods: PeriodLike | Iterable[PeriodLike],
    by: str | Scope = Scope.ORGANISATION,
    kpis: str | Iterable[str] | None = None,
    as_of: DateLike | None = None,
    *,
    unattributed: bool = False,
    breakdown: str | None = None,
    scope_id: object | Iterable[object] | None = None,
) -> pd.DataFrame:
    """Compute KPIs for every scope id and period, in tidy long form.

    Parameters
    ----------
    data
        The canonical dataset.
    periods
        A period or a list of them: a label or relative name (docs/PERIODS.md),
        a :class:`~kpireport.periods.Period`, a ``pandas.Period``, a
        ``datetime.date``/``pandas.Timestamp`` (that day) or an int year.
    by
        ``organisation``, ``team``, ``seller`` or ``customer``.
    kpis
        KPI names (default: every KPI defined for the scope).
    as_of
        Reference day: resolves relative labels and cuts periods "to date".
    unattributed
        Add an ``(unattributed)`` scope id for rows without team/seller/company.
    breakdown
        ``"source"``: break the lead KPIs down by the lead's source (module
        docstring); ``None`` (default): no breakdown.
    scope_id
        Keep only this scope id (or these): a team name, a ``seller_id`` or a
        ``company_id``. An id the data does not have raises, with the nearest
        valid ids ("did you mean").

    Returns
    -------
    pandas.DataFrame
        Columns ``kpi, scope, scope_id, period, value, unit, note, name,
        period_start, complete``; one row per KPI × period × scope id (see the
        module docstring for which ids). ``name`` is what a person reads for
        the id (the seller's or company's name, the team, the organisation);
        ``period_start`` is the first day of ``period`` as a datetime;
        ``complete`` is False for a partial period (it contains the last day
        of the data, or ``as_of`` when earlier, and goes beyond it) and for a
        period after that day, whose value is NaN with the note ``in the
        future: …`` / ``after the data: …`` — never 0 (module docstring). With a
        breakdown, a ``source`` column after ``value`` and one row per KPI ×
        period × scope id × source.

    Raises
    ------
    KpiError
        Unknown KPI, scope, scope id or breakdown, a KPI requested for a scope
        it does not support, or a KPI that cannot be broken down.
    PeriodError
        A malformed label, or a relative one without ``as_of``.
    """
    scope = resolve_scope(by)
    plist = resolve_periods(periods, as_of)
    split = resolve_breakdown(breakdown, prepared(data))
    if split is not None and kpis is None:
        kpis = [name for name in BREAKDOWN_KPIS if scope in get_kpi(name).scopes]
    defs = resolve_kpis(kpis, scope)
    if split is not None:
        _check_breakdown_kpis(defs, split)
    prep = prepared(data)
    starts, ends = cut_intervals(plist, as_of, prep)
    ids = prep.scope_ids(scope)
    width = len(ids) + 1
    k = 1 if split is None else split.k
    shape = (len(defs), len(plist), width, k)
    values = np.empty(shape)
    notes = np.empty(shape, dtype=object)
    for i, kdef in enumerate(defs):
        v, n = evaluate(data, kdef, scope, plist, starts, ends, as_of, split=split)
        values[i], notes[i] = v.reshape(shape[1:]), n.reshape(shape[1:])
        log.debug("computed %s by %s for %d periods", kdef.name, scope, len(plist))
    future, partial, future_note = period_status(prep, plist, as_of)
    if future.any():
        values[:, future] = np.nan
        notes[:, future] = future_note
    # which (period, scope id) cells get rows: judged over all categories at once
    flat = values.transpose(0, 3, 1, 2).reshape(len(defs) * k, len(plist), width)
    keep = _kept_cells(prep, scope, flat, starts, ends, unattributed)
    k_idx, p_idx, s_idx, c_idx = np.nonzero(np.broadcast_to(keep[:, :, None], shape))
    id_values = np.append(ids.to_numpy(dtype=object), UNATTRIBUTED)
    names = np.array([kdef.name for kdef in defs], dtype=object)
    units = np.array([str(kdef.unit) for kdef in defs], dtype=object)
    labels = np.array([p.label for p in plist], dtype=object)
    note = notes[k_idx, p_idx, s_idx, c_idx]
    columns = {
        "kpi": _strings(names, k_idx),
        "scope": _strings(
            np.array([str(scope)], dtype=object), np.zeros(len(k_idx), dtype=np.int64)
        ),
        "scope_id": _strings(id_values, s_idx),
        "period": _strings(labels, p_idx),
        "value": values[k_idx, p_idx, s_idx, c_idx],
    }
    if split is not None:
        columns[split.name] = _strings(split.labels.to_numpy(dtype=object), c_idx)
    columns["unit"] = _strings(units, k_idx)
    columns["note"] = pd.Series(pd.array(note, dtype="str"))
    df = pd.DataFrame(columns)
    df.attrs["intervals"] = {
        p.label: (pd.Timestamp(int(a)), pd.Timestamp(int(b)))
        for p, a, b in zip(plist, starts, ends, strict=True)
    }
    df.attrs["as_of"] = None if as_of is None else str(_day(as_of).date())
    _add_readable_columns(df, data, scope, plist)
    incomplete = {p.label for p, f, q in zip(plist, future, partial, strict=True) if f or q}
    df["complete"] = ~df["period"].isin(incomplete).to_numpy()
    df.attrs["partial"] = [p.label for p, q in zip(plist, partial, strict=True) if q]
    if scope_id is not None:
        df = _filter_scope_ids(df, data, scope, scope_id, ids)
    return df


def scope_names(data: CrmData, scope: Scope) -> dict[str, str]:
    """Scope id -> the name a person reads (sellers' and companies' names; teams are names)."""
    if scope == Scope.SELLER and Table.SELLERS in data.tables:
        s = data.tables[Table.SELLERS]
        return dict(zip(s["seller_id"].astype(str), s["name"].astype(str), strict=True))
    if scope == Scope.CUSTOMER and Table.COMPANIES in data.tables:
        c = data.tables[Table.COMPANIES].dropna(subset=["name"])
        return dict(zip(c["company_id"].astype(str), c["name"].astype(str), strict=True))
    return {}


def _add_readable_columns(
    df: pd.DataFrame, data: CrmData, scope: Scope, plist: Sequence[Period]
) -> None:
    """Append ``name`` and ``period_start`` (see :func:`compute_kpis`), in place."""
    ids = df["scope_id"]
    if scope == Scope.ORGANISATION:
        org = str((data.settings or {}).get("organisation") or "Organisation")
        name = pd.Series(org, index=df.index, dtype="str")
    elif scope == Scope.TEAM:
        name = ids.copy()
    else:
        names = scope_names(data, scope)
        name = ids.map(names).fillna(ids).astype("str") if names else ids.copy()
    df["name"] = name
    starts = {p.label: p.start for p in plist}
    df["period_start"] = pd.to_datetime(df["period"].map(starts)).astype("datetime64[ns]")


def _filter_scope_ids(
    df: pd.DataFrame, data: CrmData, scope: Scope, wanted: object, ids: pd.Index
) -> pd.DataFrame:
    import difflib

    if scope == Scope.ORGANISATION:
        raise KpiError(
            "scope_id= does not apply to the organisation; pass by='team', 'seller' or 'customer'."
        )
    want = [wanted] if isinstance(wanted, str) or not isinstance(wanted, Iterable) else list(wanted)
    want = [str(w) for w in want]
    known = set(map(str, ids)) | {UNATTRIBUTED}
    unknown = [w for w in want if w not in known]
    if unknown:
        names = {v: k for k, v in scope_names(data, scope).items()}
        bad = unknown[0]
        near = difflib.get_close_matches(bad, sorted(known - {UNATTRIBUTED}), n=3, cutoff=0.6)
        by_name = names.get(bad)
        hint = (
            f" ('{bad}' is the name of {scope} {by_name}: pass the id)"
            if by_name
            else (f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else "")
        )
        shown = sorted(known - {UNATTRIBUTED})
        listing = ", ".join(shown[:12]) + (" ..." if len(shown) > 12 else "")
        sep = " " if hint.endswith("?") else ". "
        raise KpiError(f"The {scope} '{bad}' is not in the data{hint}{sep}Valid: {listing}.")
    out = df[df["scope_id"].isin(want)].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


def resolve_breakdown(breakdown: str | None, prep: Prepared) -> Split | None:
    """The :class:`~kpireport.kpis.engine.Split` of a breakdown name (``None``: none)."""
    if breakdown is None:
        return None
    name = str(breakdown).strip().lower()
    if name not in BREAKDOWNS:
        raise KpiError(
            f"Unknown breakdown '{breakdown}'.",
            hint="Valid breakdowns: " + ", ".join(BREAKDOWNS) + ".",
        )
    return Split(name, Table.LEADS, prep.lead_sources())


def _check_breakdown_kpis(defs: Sequence[KpiDef], split: Split) -> None:
    bad = [kdef.name for kdef in defs if kdef.name not in BREAKDOWN_KPIS]
    if bad:
        raise KpiError(
            f"Cannot break down {', '.join(repr(b) for b in bad)} by {split.name}.",
            hint="Only the lead KPIs can be broken down by source: "
            + ", ".join(BREAKDOWN_KPIS)
            + ".",
        )


def _strings(values: np.ndarray, codes: np.ndarray) -> pd.Series:
    """``values[codes]`` as a ``str`` column, built with one Arrow ``take``."""
    arr = pa.array(list(values), type=pa.large_string(), from_pandas=True).take(pa.array(codes))
    return pd.Series(pd.array(arr.cast(pa.string()), dtype="str"))


def _kept_cells(
    prep: Prepared,
    scope: Scope,
    values: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    unattributed: bool,
) -> np.ndarray:
    """``(periods, width)`` bool: which scope ids get rows (module docstring)."""
    n_p, width = values.shape[1], values.shape[2]
    keep = np.zeros((n_p, width), dtype=bool)
    if scope in (Scope.ORGANISATION, Scope.TEAM):
        keep[:, : width - 1] = True
    else:
        with np.errstate(invalid="ignore"):
            nonzero = np.any(np.nan_to_num(values, nan=0.0) != 0, axis=0)
        keep[:, : width - 1] = nonzero[:, : width - 1]
        if scope == Scope.SELLER:
            keep[:, : width - 1] |= prep.seller_active(starts, ends)
    if unattributed and scope != Scope.ORGANISATION:
        keep[:, width - 1] = True
    return keep


def pivot_kpis(df: pd.DataFrame) -> pd.DataFrame:
    """Wide view of a :func:`compute_kpis` result: rows scope id, columns KPI.

    With several periods the rows are ``(period, scope_id)``. The
    organisation's row is labelled ``organisation``. Column order follows the
    order of the KPIs in ``df``. A breakdown result (``source`` column) has
    ``source`` as the last index level.
    """
    extra = [c for c in BREAKDOWNS if c in df.columns]
    frame = df.loc[:, [*KPI_COLUMNS, *extra]].copy()
    frame["scope_id"] = frame["scope_id"].fillna(frame["scope"])
    index = ["scope_id"] if frame["period"].nunique() <= 1 else ["period", "scope_id"]
    index += extra
    wide = frame.pivot_table(
        index=index, columns="kpi", values="value", aggfunc="first", dropna=False, sort=False
    )
    wide = wide.reindex(columns=pd.unique(frame["kpi"]))
    wide.columns.name = None
    return wide
