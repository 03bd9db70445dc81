"""Goal definitions: where goals come from and what makes one valid (SPEC §5).

Design decisions
----------------
* Goals come from the source's ``goals`` table or from a YAML file
  (``goals: [{kpi, scope, scope_id, period, target, direction, owner,
  agreed_by}]``); both end up as one tidy DataFrame with the columns of the
  ``goals`` contract plus ``goal_id`` (given, or ``G1``, ``G2``… by position).
* Validation collects *every* problem at once (unknown KPI, KPI not defined for
  the scope, unknown scope or scope id, unparsable or relative period, missing
  or non-numeric target, unknown direction) and raises one
  :class:`~kpireport.errors.GoalError` listing them, each naming the goal's
  row; nothing is evaluated with a broken goal list.
* A goal's period must be absolute (``2026-11``): a goal is time-bound, and a
  relative period would silently move with the run date.
* ``direction`` defaults to ``at_most`` for KPIs where lower is better
  (``cac``, ``sales_cycle_days``…) when the goal does not say, and to
  ``at_least`` otherwise.
* **The goals file is as strict as the goals table** (issue 9): an unknown
  key (``taget:``) is refused with a did-you-mean; two goals for the same KPI,
  scope, scope id, period and direction are refused; a negative, boolean
  (YAML ``yes``) or non-numeric target and a target outside the KPI's range
  (:attr:`~kpireport.kpis.registry.KpiDef.bounds`: ``0..1`` for rates) are
  refused; ``scope`` and ``direction`` are case-insensitive (``Team``). The
  YAML is read without YAML's date resolver, so ``period: 2026-02-30`` is the
  one-line period error rather than a traceback and ``2026-11-15`` stays text.
* **Growth targets** (issue 14, docs/GOALS.md): ``target: "+14%"`` or
  ``growth: 0.14`` with ``baseline: last-year`` (default), ``previous-period``
  or a period label resolve *at load time* to baseline actual × (1 + growth);
  ``"+2pp"`` adds percentage points to a rate KPI (a percent growth of a rate
  is refused as ambiguous). The goal keeps ``growth``, ``growth_unit``
  (``%``/``pp``), ``baseline_period`` and ``baseline_value`` so every view
  can show both ("€ 8.35 M, +14 % vs Q4 2025"). A baseline that is missing
  (no history) or not positive is an error naming the goal.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from kpireport.constants import Better, Direction, Scope, Table, Unit
from kpireport.data.model import CrmData
from kpireport.errors import GoalError, PeriodError
from kpireport.periods import Period, is_relative, parse_period

#: at most this many problems are listed in one GoalError message
MAX_SHOWN = 50

GOAL_COLUMNS = (
    "goal_id",
    "kpi",
    "scope",
    "scope_id",
    "period",
    "target",
    "direction",
    "owner",
    "agreed_by",
)
#: extra keys a goal may give (growth targets)
GROWTH_COLUMNS = ("growth", "baseline")
#: what a resolved growth goal carries besides :data:`GOAL_COLUMNS`
RESOLVED_COLUMNS = ("growth", "growth_unit", "baseline", "baseline_period", "baseline_value")
#: every key a goal in a YAML file (or a list of mappings) may have
GOAL_KEYS = (*GOAL_COLUMNS, *GROWTH_COLUMNS)
#: a baseline counts as complete when the data reaches within this many days of its end
BASELINE_SLACK_DAYS = 7
DAY = pd.Timedelta(days=1)
#: the ``baseline`` words (besides an explicit period label)
BASELINES = ("last-year", "previous-period")
_GROWTH_TEXT = re.compile(r"^([+-]?\s*\d+(?:[.,]\d+)?)\s*(%|pp)$", re.IGNORECASE)


def _registry() -> dict[str, Any]:
    from kpireport.kpis.registry import REGISTRY

    return REGISTRY


def goal_rows(goals: Any, data: CrmData | None = None) -> list[dict]:
    """The goals as given, one mapping per goal (the YAML items, list or table rows).

    ``goals=None`` means the source's goals table of ``data``.
    """
    if goals is None:
        if data is None or not data.has(Table.GOALS):
            return []
        goals = data[Table.GOALS]
    if isinstance(goals, str | Path):
        goals = _read_yaml(Path(goals))
    if isinstance(goals, pd.DataFrame):
        return [
            {k: v for k, v in r.items() if not _is_missing(v)}
            for r in goals.to_dict(orient="records")
        ]
    return [dict(r) for r in goals]


def goals_frame(goals: Any) -> pd.DataFrame:
    """Normalise goals given as a DataFrame, a list of dicts or a YAML path.

    Parameters
    ----------
    goals
        A DataFrame with the ``goals`` contract columns, an iterable of
        mappings, or the path of a YAML file holding ``goals: [...]`` (or a
        bare list).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GOAL_COLUMNS`, ids and texts as strings, ``target`` as
        float where parsable (validation reports the rest).
    """
    return _goals_frame(goals)[0]


class _TextDatesLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The (C, when built) safe loader without the timestamp resolver: ``2026-02-30`` stays text.

    With the resolver an impossible date raises ``ValueError`` from inside
    PyYAML (a traceback, not a goal error) and a valid one becomes a
    ``datetime.date``; as text both go through the period parser.
    """


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _TextDatesLoader.__mro__[1].yaml_implicit_resolvers.items()
}


def _read_yaml(path: Path) -> list[Mapping]:
    if not path.exists():
        raise GoalError(f"Goals file '{path}' does not exist.")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextDatesLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise GoalError(f"Goals file '{path}' is not valid YAML: {exc}.") from exc
    if isinstance(raw, Mapping):
        raw = raw.get("goals", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(isinstance(r, Mapping) for r in raw):
        raise GoalError(
            f"Goals file '{path}' must hold a list of goals under 'goals:'.",
            hint="Each goal is a mapping with kpi, scope, scope_id, period and target.",
        )
    # YAML turns 2026 into an int and 007 into 7: every cell is read back as text
    return raw


def _unknown_keys(rows: list[Mapping]) -> list[tuple[int, str]]:
    """``(row, sentence)`` for every key of a goal mapping that is not a goal key."""
    out = []
    for i, row in enumerate(rows):
        for key in row:
            if str(key) in GOAL_KEYS:
                continue
            close = difflib.get_close_matches(str(key), GOAL_KEYS, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            out.append((i, f"unknown key '{key}'.{hint}"))
    return out


def _goals_frame(goals: Any) -> tuple[pd.DataFrame, list[object], list[tuple[int, str]]]:
    """:func:`goals_frame` plus the raw ``target`` cells and the unknown keys.

    The raw cells are returned beside the frame rather than in ``attrs``:
    pandas deep-copies ``attrs`` on every operation, which made row iteration
    over 10 k goals take minutes. Unknown keys are looked for in a YAML file
    and a list of mappings (a DataFrame is a table: its columns come from
    the data contract or the caller).
    """
    unknown: list[tuple[int, str]] = []
    if isinstance(goals, str | Path):
        goals = _read_yaml(Path(goals))
    if isinstance(goals, pd.DataFrame):
        df = goals.copy()
    elif isinstance(goals, Iterable):
        rows = list(goals)
        if all(isinstance(r, Mapping) for r in rows):
            unknown = _unknown_keys(rows)
        df = pd.DataFrame(rows)
    else:
        raise GoalError(f"Cannot read goals from {type(goals).__name__}.")
    df = df.reset_index(drop=True)
    df.attrs = {}
    for col in (*GOAL_COLUMNS, *GROWTH_COLUMNS):
        if col not in df:
            df[col] = pd.NA
    out = pd.DataFrame(index=df.index)
    for col in GOAL_COLUMNS:
        if col == "target":
            t = df[col]
            if t.dtype.kind in "if":  # a numeric column: no text, no booleans
                out[col] = t.astype(float)
            else:
                out[col] = pd.Series(
                    [_plain_number(v) for v in t.to_numpy(dtype=object)], index=df.index
                )
        else:
            out[col] = _text(df[col])
    for col in ("scope", "direction"):  # closed vocabularies: `Team` is `team`
        out[col] = out[col].str.lower()
    out["growth"] = pd.Series(
        [_plain_number(v) for v in df["growth"].to_numpy(dtype=object)], index=df.index
    )
    out["baseline"] = _text(df["baseline"]).str.lower()
    missing_id = out["goal_id"].isna().to_numpy()
    if missing_id.any():
        ids = np.array([f"G{i + 1}" for i in range(len(out))], dtype=object)
        out["goal_id"] = out["goal_id"].where(~missing_id, pd.Series(ids, dtype="str"))
    return out, df["target"].tolist(), unknown


def _is_missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _plain_number(v: object) -> float:
    """``v`` as a float when it is a plain number (int, float, numeric text), else NaN.

    Booleans (YAML ``yes``/``no``/``true``) are not numbers here.
    """
    if _is_missing(v) or isinstance(v, bool | np.bool_):
        return math.nan
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return math.nan


def _growth_text(v: object) -> tuple[float, str] | None:
    """``"+14%"`` -> ``(0.14, "%")``, ``"+2pp"`` -> ``(0.02, "pp")``; None otherwise."""
    if not isinstance(v, str):
        return None
    m = _GROWTH_TEXT.match(v.strip())
    if not m:
        return None
    return float(m[1].replace(" ", "").replace(",", ".")) / 100, m[2].lower()


def _text(col: pd.Series) -> pd.Series:
    """A column as pandas ``str`` dtype, missing kept missing, ``7.0`` kept ``7``."""
    if col.dtype == "str":
        return col.str.strip()
    values = col.to_numpy(dtype=object)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out[i] = None
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v).strip()
    return pd.Series(pd.array(out, dtype="str"), index=col.index)


def default_direction(kpi: str) -> str:
    reg = _registry()
    if kpi in reg and reg[kpi].better == Better.LOWER:
        return Direction.AT_MOST.value
    return Direction.AT_LEAST.value


def scope_ids(data: CrmData, scope: Scope) -> set[str]:
    """Every valid id of ``scope`` in ``data`` (teams, sellers or companies)."""
    if scope == Scope.TEAM:
        return set(data.sellers["team"].dropna().astype(str))
    if scope == Scope.SELLER:
        return set(data.sellers["seller_id"].dropna().astype(str))
    if scope == Scope.CUSTOMER:
        ids: set[str] = set()
        for table in (Table.COMPANIES, Table.REVENUE, Table.DEALS):
            if data.has(table) and "company_id" in data[table]:
                ids |= set(data[table]["company_id"].dropna().astype(str))
        return ids
    return set()


def unknown_ids(data: CrmData, scope: Scope, ids: Iterable[object]) -> set[str]:
    """The ids among ``ids`` that are not a known ``scope`` id of ``data``.

    Looks the (few) goal ids up in the data columns instead of building the
    set of every company id, which is what makes validation fast.
    """
    todo = {str(i) for i in ids}
    if scope == Scope.TEAM:
        columns = [data.sellers["team"]]
    elif scope == Scope.SELLER:
        columns = [data.sellers["seller_id"]]
    elif scope == Scope.CUSTOMER:  # large tables: one query on the engine (memoised, in the cube)
        from kpireport.kpis.engine import prepared
        from kpireport.kpis.relational import quote

        prep = prepared(data)
        tables = [
            t
            for t in (Table.COMPANIES, Table.REVENUE, Table.DEALS)
            if prep.has(t) and "company_id" in prep.frame(t)
        ]
        if not todo or not tables:
            return todo
        wanted = ", ".join(quote(i) for i in sorted(todo))  # sorted: one statement per id set
        sql = " UNION ".join(
            f"SELECT DISTINCT CAST(company_id AS VARCHAR) FROM {t} "
            f"WHERE CAST(company_id AS VARCHAR) IN ({wanted})"
            for t in tables
        )
        return todo - {str(r[0]) for r in prep.query(sql)}
    else:
        return set()
    for col in columns:
        if not todo:
            break
        found = col[col.isin(list(todo))]
        todo -= set(found.astype(str))
    return todo


def validate_goals(goals: Any, data: CrmData | None = None) -> pd.DataFrame:
    """Check every goal and return the normalised goal table.

    Vectorised: each check runs on whole columns (unique KPIs, scopes and
    period labels are looked up once), so 10 k goals validate in well under a
    second.

    Parameters
    ----------
    goals
        Anything :func:`goals_frame` accepts. A YAML file is also checked for
        duplicate goals (same KPI, scope, scope id, period and direction), as
        the data contract checks the source's goals table; a list or a
        DataFrame may hold several what-if targets for one KPI.
    data
        When given, scope ids are checked against its teams, sellers and
        companies, and growth targets are resolved against its history
        (without data a growth goal keeps a NaN target).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GOAL_COLUMNS` with ``direction`` filled in, then
        :data:`RESOLVED_COLUMNS` (NaN/missing for absolute targets).

    Raises
    ------
    GoalError
        Listing every invalid goal (goal id, row, column, reason) at once;
        ``error.problems`` holds the sentences.
    """
    from_file = isinstance(goals, str | Path)
    df, raw_target, unknown_keys = _goals_frame(goals)
    # a goal table validated before (it has the resolved columns): its growth goals
    # already carry their absolute target; keep their growth facts, do not resolve again
    carried = None
    if isinstance(goals, pd.DataFrame) and set(RESOLVED_COLUMNS) <= set(goals.columns):
        carried = goals.reset_index(drop=True).loc[:, list(RESOLVED_COLUMNS)]
        done = (np.isfinite(df["target"].to_numpy(float)) & df["growth"].notna()).to_numpy()
        df.loc[done, "growth"] = np.nan
        df.loc[done, "baseline"] = None
        raw_target = [df["target"].iat[i] if done[i] else v for i, v in enumerate(raw_target)]
    reg = _registry()
    n = len(df)
    problems: list[tuple[int, int, str]] = []  # (row, column order, sentence)
    where = (
        "goal "
        + df["goal_id"].astype(str)
        + " (row "
        + pd.Series(np.arange(1, n + 1)).astype(str)
        + ")"
    ).tolist()

    def add(mask: np.ndarray, order: int, message) -> None:
        for i in np.flatnonzero(mask):
            problems.append((int(i), order, f"{where[i]}, {message(i)}"))

    for i, sentence in unknown_keys:
        problems.append((i, -1, f"{where[i]}: {sentence}"))
    kpi = df["kpi"].to_numpy(dtype=object)
    scope = df["scope"].to_numpy(dtype=object)
    sid = df["scope_id"].to_numpy(dtype=object)
    known_kpi = df["kpi"].isin(list(reg)).to_numpy()

    def unknown_kpi(i: int) -> str:
        close = difflib.get_close_matches(str(kpi[i]), list(reg), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"column 'kpi': unknown KPI '{kpi[i]}'.{hint}"

    add(~known_kpi, 0, unknown_kpi)
    valid_scopes = [s.value for s in Scope]
    known_scope = df["scope"].isin(valid_scopes).to_numpy()
    add(
        ~known_scope,
        1,
        lambda i: (
            f"column 'scope': unknown scope '{scope[i]}' (use one of {', '.join(sorted(valid_scopes))})."
        ),
    )
    both = known_kpi & known_scope
    pairs = {(k, sc) for k, sc in zip(kpi[both], scope[both], strict=True)}
    bad_pairs = {(k, sc) for k, sc in pairs if Scope(sc) not in reg[k].scopes}
    if bad_pairs:
        bad = np.array([(k, sc) in bad_pairs for k, sc in zip(kpi, scope, strict=True)]) & both
        add(
            bad, 1, lambda i: f"column 'kpi': KPI '{kpi[i]}' is not defined for scope '{scope[i]}'."
        )
    needs_id = known_scope & (scope != Scope.ORGANISATION.value)
    no_id = needs_id & df["scope_id"].isna().to_numpy()
    add(no_id, 2, lambda i: f"column 'scope_id': a {scope[i]} goal needs a scope_id.")
    unknown_id = np.zeros(n, dtype=bool)
    if data is not None:
        for sc in (Scope.TEAM, Scope.SELLER, Scope.CUSTOMER):
            rows = needs_id & ~no_id & (scope == sc.value)
            if rows.any():
                missing = unknown_ids(data, sc, pd.unique(sid[rows]))
                if missing:
                    unknown = rows & np.array([x in missing for x in sid], dtype=bool)
                    unknown_id |= unknown
                    add(unknown, 2, lambda i, sc=sc: f"column 'scope_id': unknown {sc} '{sid[i]}'.")
    period = df["period"].to_numpy(dtype=object)
    verdict: dict[object, str | None] = {}
    parsed: dict[object, Period] = {}
    for label in pd.unique(df["period"].dropna()):
        if is_relative(label):
            verdict[label] = (
                f"'{label}' is relative; a goal needs an absolute period such as 2026-11."
            )
            continue
        try:
            parsed[label] = parse_period(label)
            verdict[label] = None
        except PeriodError as exc:
            verdict[label] = (
                exc.message
                if ".." in str(label)
                else f"'{label}' is not a valid period (use 2026, 2026-Q4, 2026-11, 2026-W45 "
                "or 2026-12-01..2027-02-28)."
            )
    no_period = df["period"].isna().to_numpy()
    add(no_period, 3, lambda i: "column 'period': a goal needs a period.")
    bad_period = ~no_period & np.array([verdict.get(p) is not None for p in period], dtype=bool)
    add(bad_period, 3, lambda i: f"column 'period': {verdict[period[i]]}")

    # ---- targets: absolute numbers, or growth against a baseline
    target = df["target"].to_numpy(float).copy()
    growth = df["growth"].to_numpy(float).copy()
    unit = np.full(n, None, dtype=object)
    unit[np.isfinite(growth)] = "%"
    text_growth = [_growth_text(v) for v in raw_target]
    for i, tg in enumerate(text_growth):
        if tg is not None:
            growth[i], unit[i] = tg
    is_growth = unit != None  # noqa: E711
    raw_growth = df["growth"].to_numpy(float)
    given_growth = np.array([not _is_missing(v) for v in df["growth"]], dtype=bool)
    missing_target = np.array([_is_missing(v) for v in raw_target], dtype=bool)
    both_given = (
        is_growth & ~missing_target & np.array([tg is None for tg in text_growth], dtype=bool)
    )
    add(
        both_given,
        4,
        lambda i: (
            "a goal gives either a target or a growth, not both "
            f"(target {raw_target[i]!r}, growth {raw_growth[i]:g})."
        ),
    )
    bad_growth_value = given_growth & ~np.isfinite(raw_growth)
    add(bad_growth_value, 4, lambda i: "column 'growth': not a number (write 0.14 for +14 %).")

    def target_problem(i: int) -> str:
        v = raw_target[i]
        if _is_missing(v):
            return "column 'target': a goal needs a target (or a growth such as '+14%')."
        if isinstance(v, bool | np.bool_):
            return (
                f"column 'target': '{v}' is a yes/no value, not a number "
                "(YAML reads yes, no, on and off as yes/no)."
            )
        return f"column 'target': '{v}' is not a number."

    bad_target = ~is_growth & ~np.isfinite(target) & ~bad_growth_value
    add(bad_target, 4, target_problem)
    bounds = np.array(
        [
            reg[k].bounds if ok else (-math.inf, math.inf)
            for k, ok in zip(kpi, known_kpi, strict=True)
        ],
        dtype=float,
    ).reshape(n, 2)
    rate = np.array(
        [ok and reg[k].unit == Unit.PERCENT for k, ok in zip(kpi, known_kpi, strict=True)],
        dtype=bool,
    )
    with np.errstate(invalid="ignore"):
        out_of_range = (
            ~is_growth & np.isfinite(target) & ((target < bounds[:, 0]) | (target > bounds[:, 1]))
        )

    def range_problem(i: int) -> str:
        lo, hi = bounds[i]
        v = f"{target[i]:g}"
        if target[i] < 0 and lo == 0:
            return f"column 'target': {v} is negative; a {kpi[i]} target is at least 0."
        hint = f" (write {target[i] / 100:.2f} for {v} %)" if 2 <= target[i] <= 100 else ""
        return f"column 'target': {v} is outside the range of {kpi[i]} ({lo:g} to {hi:g}){hint}."

    add(out_of_range, 4, range_problem)
    # growth: % for amounts and counts, pp for rates; a known baseline
    pp_on_amount = is_growth & known_kpi & (unit == "pp") & ~rate
    add(
        pp_on_amount,
        4,
        lambda i: (
            f"column 'target': '{raw_target[i]}' is in percentage points, which only a rate "
            f"KPI has; write a growth in percent such as '+14%' for {kpi[i]}."
        ),
    )
    pct_on_rate = is_growth & known_kpi & (unit == "%") & rate
    add(
        pct_on_rate,
        4,
        lambda i: (
            f"column 'target': a percent growth of the rate {kpi[i]} is ambiguous; "
            "give percentage points such as '+2pp'."
        ),
    )
    not_additive = (
        is_growth
        & known_kpi
        & ~rate
        & np.array(
            [ok and not reg[k].additive for k, ok in zip(kpi, known_kpi, strict=True)], dtype=bool
        )
        & np.array(
            [ok and reg[k].unit != Unit.CURRENCY for k, ok in zip(kpi, known_kpi, strict=True)]
        )
    )
    add(
        not_additive,
        4,
        lambda i: (
            f"column 'target': {kpi[i]} is not additive; a growth target works for "
            "counts, amounts and (in pp) rates."
        ),
    )
    baseline = df["baseline"].to_numpy(dtype=object)
    base_period: list[Period | None] = [None] * n
    bad_base = np.zeros(n, dtype=bool)
    base_given_alone = ~is_growth & ~df["baseline"].isna().to_numpy()
    add(
        base_given_alone,
        4,
        lambda i: (
            f"column 'baseline': '{baseline[i]}' is given but the target is not a growth "
            "(write target: '+14%')."
        ),
    )
    base_msg: dict[int, str] = {}
    for i in np.flatnonzero(is_growth & ~bad_period & ~no_period):
        p = parsed[period[i]]
        b = baseline[i] if not _is_missing(baseline[i]) else "last-year"
        try:
            if b == "last-year":
                base_period[i] = p.last_year()
            elif b == "previous-period":
                base_period[i] = p.previous()
            elif is_relative(b):
                raise PeriodError(b)
            else:
                base_period[i] = parse_period(b)
        except PeriodError:
            bad_base[i] = True
            base_msg[i] = (
                f"column 'baseline': unknown baseline '{b}' (use last-year, previous-period "
                "or a period label such as 2025-Q4)."
            )
    add(bad_base, 4, lambda i: base_msg[i])

    # ---- duplicates in a goals file: one target per KPI, scope, scope id, period and
    # direction (data/validate checks the source's goals table the same way; a list
    # given to evaluate_goals may compare several targets for one KPI on purpose)
    direction = df["direction"].to_numpy(dtype=object)
    given = ~df["direction"].isna().to_numpy()
    valid_dir = [d.value for d in Direction]
    bad_dir = given & ~df["direction"].isin(valid_dir).to_numpy()
    add(bad_dir, 5, lambda i: f"column 'direction': '{direction[i]}' must be at_least or at_most.")
    defaults = (
        np.array([default_direction(k) for k in kpi], dtype=object) if (~given).any() else direction
    )
    full_dir = np.where(given, direction, defaults)
    canon = np.array([parsed[p].label if p in parsed else p for p in period], dtype=object)
    key = pd.DataFrame(
        {
            "kpi": kpi,
            "scope": scope,
            "sid": np.where(scope == Scope.ORGANISATION.value, None, sid),
            "period": canon,
            "direction": full_dir,
        }
    ).astype(str)
    dup = key.duplicated(keep="first").to_numpy() if from_file else np.zeros(n, dtype=bool)
    if dup.any():
        first = key.reset_index().groupby(list(key.columns), sort=False, dropna=False)["index"]
        first = first.transform("first")
        first = first.to_numpy().astype(int)
        add(
            dup,
            6,
            lambda i: (
                f"same KPI, scope, scope_id and period as {where[first[i]]}: a goal has one target."
            ),
        )

    # ---- resolve growth targets against the data's history
    base_value = np.full(n, np.nan)
    todo = np.flatnonzero(
        is_growth & known_kpi & known_scope & ~bad_base & ~no_id & ~unknown_id
        & np.isfinite(growth) & ~pp_on_amount & ~pct_on_rate & ~not_additive
        & np.array([bp is not None for bp in base_period], dtype=bool)
    )  # fmt: skip
    if data is not None and len(todo):
        base_value[todo], data_end = _baseline_values(
            data, df.iloc[todo], [base_period[i] for i in todo]
        )
        pp = unit == "pp"
        with np.errstate(invalid="ignore"):
            resolved = np.where(pp, base_value + growth, base_value * (1 + growth))
        for i in todo:
            b, label = base_value[i], base_period[i].label
            if not np.isfinite(b) or (unit[i] == "%" and b <= 0):
                who = _who(scope[i], sid[i])
                if np.isfinite(b):
                    why = f"{kpi[i]} of {who} in {label} is {b:g}"
                elif data_end is not None and base_period[i].end - DAY > data_end:
                    why = f"the data ends on {data_end.date()}, before the baseline {label} does"
                else:
                    why = f"{kpi[i]} of {who} has no history in {label}"
                problems.append(
                    (
                        int(i),
                        4,
                        f"{where[i]}, column 'target': a growth target needs a baseline, but {why}.",
                    )
                )
            elif not bounds[i][0] <= resolved[i] <= bounds[i][1]:
                problems.append(
                    (
                        int(i),
                        4,
                        f"{where[i]}, column 'target': {b:g} in {label} plus {growth[i] * 100:+g}pp "
                        f"is {resolved[i]:g}, outside the range of {kpi[i]} "
                        f"({bounds[i][0]:g} to {bounds[i][1]:g}).",
                    )
                )
            else:
                # amounts in whole currency units (nobody agrees to € 4 852 843.20);
                # counts and rates without float noise (3648, not 3647.99…)
                digits = 0 if reg[kpi[i]].unit == Unit.CURRENCY else 6
                target[i] = round(float(resolved[i]), digits)
    if problems:
        problems.sort()
        sentences = [p[2] for p in problems]
        n_bad = len({p[0] for p in problems})
        shown = sentences[:MAX_SHOWN]
        more = len(sentences) - len(shown)
        body = "\n".join("  - " + p for p in shown)
        if more:
            body += f"\n  - … and {more} more problem{'s' if more != 1 else ''}."
        err = GoalError(
            f"{n_bad} goal{'s are' if n_bad != 1 else ' is'} invalid:\n{body}",
            hint="Fix the goals and run again.",
        )
        err.problems = sentences  # type: ignore[attr-defined]
        # (row, column order, sentence): check_goals maps them to SMART letters
        err.rows = problems  # type: ignore[attr-defined]
        raise err
    df["direction"] = pd.array(full_dir, dtype="str")
    df["target"] = target
    df["growth"] = np.where(is_growth, growth, np.nan)
    df["growth_unit"] = pd.array(unit, dtype="str")
    df["baseline"] = pd.array(
        [
            (baseline[i] if not _is_missing(baseline[i]) else "last-year") if is_growth[i] else None
            for i in range(n)
        ],
        dtype="str",
    )
    df["baseline_period"] = pd.array(
        [bp.label if bp is not None else None for bp in base_period], dtype="str"
    )
    df["baseline_value"] = base_value
    if carried is not None:
        keep = carried["growth"].notna().to_numpy() & ~is_growth
        for col in RESOLVED_COLUMNS:
            df[col] = df[col].where(~keep, carried[col].to_numpy())
    return df.loc[:, [*GOAL_COLUMNS, *RESOLVED_COLUMNS]]


def _who(scope: str, sid: object) -> str:
    return "the organisation" if scope == Scope.ORGANISATION.value else f"{scope} '{sid}'"


def _baseline_values(
    data: CrmData, goals: pd.DataFrame, plist: list[Period]
) -> tuple[np.ndarray, pd.Timestamp | None]:
    """The KPI value of every goal's scope id over its baseline period (NaN: no history),
    and the last day of the data.

    A period without a single row of the KPI's tables for the scope id is
    *no history* (NaN), not 0: the goal cannot grow from nothing. A baseline
    that is still running or lies beyond the data is no history either.
    """
    from kpireport.goals.values import _values

    out = np.full(len(goals), np.nan)
    frame = goals.assign(_p=[p.label for p in plist], _i=np.arange(len(goals)))
    by_label = {p.label: p for p in plist}
    for sc, sub in frame.groupby("scope", sort=False):
        ps = [by_label[lab] for lab in pd.unique(sub["_p"])]
        asof = max(p.end for p in ps) - pd.Timedelta(days=1)
        ids = [str(x) for x in pd.unique(sub["scope_id"].dropna())]
        lookup = _values(data, sc, list(pd.unique(sub["kpi"])), ps, ids, asof)
        keys = pd.MultiIndex.from_arrays(
            [
                sub["kpi"].astype(object),
                (
                    sub["scope_id"].astype(object).fillna("")
                    if sc != Scope.ORGANISATION.value
                    else pd.Series([""] * len(sub), dtype=object)
                ),
                sub["_p"].astype(object),
            ]
        )
        out[sub["_i"].to_numpy()] = lookup.reindex(keys).to_numpy(float)
    # a baseline the data does not cover to (within a week of) its end is no history:
    # a baseline still running would silently give a too-low target
    last = _data_end(data)
    for j, p in enumerate(plist):
        uncovered = last is None or p.end - pd.Timedelta(days=BASELINE_SLACK_DAYS + 1) > last
        if uncovered or (out[j] == 0 and not _any_rows(data, goals.iloc[j], p)):
            out[j] = np.nan
    return out, last


def _data_end(data: CrmData) -> pd.Timestamp | None:
    """The last day any dated row of the data falls on (None without dated rows)."""
    ends = []
    for table, col in (
        (Table.DEALS, "closed_at"), (Table.DEALS, "created_at"), (Table.REVENUE, "date"),
        (Table.ACTIVITIES, "occurred_at"), (Table.LEADS, "created_at"), (Table.COSTS, "date"),
    ):  # fmt: skip
        if data.has(table) and col in data[table] and len(data[table]):
            m = data[table][col].max()
            if pd.notna(m):
                ends.append(pd.Timestamp(m).normalize())
    return max(ends) if ends else None


def _any_rows(data: CrmData, goal: pd.Series, p: Period) -> bool:
    """True when the KPI's first table has a row in ``p`` at all (any scope id)."""
    kdef = _registry()[goal["kpi"]]
    table = kdef.tables[0]
    col = {
        Table.DEALS: "created_at", Table.REVENUE: "date", Table.ACTIVITIES: "occurred_at",
        Table.LEADS: "created_at", Table.COSTS: "date", Table.COMPANIES: "created_at",
    }.get(table)  # fmt: skip
    if not data.has(table) or col is None or col not in data[table]:
        return False
    when = data[table][col]
    return bool(((when >= p.start) & (when < p.end)).any())


def load_goals(data: CrmData, goals: Any = None) -> pd.DataFrame:
    """The validated goals: ``goals`` if given, else the source's ``goals`` table.

    The source's table is validated once per dataset: the result is memoised
    by the KPI engine's per-dataset cache (``("goals",)``, rebuilt when a
    table changes) and kept in the run's KPI cube, so a report kernel reads
    the goals the runner validated instead of validating them again on every
    call (docs/ARCHITECTURE.md, "The KPI cube"). A fresh copy is returned.
    """
    if goals is None:
        from kpireport.kpis.engine import prepared

        def build() -> pd.DataFrame:
            if not data.has(Table.GOALS):
                return validate_goals(pd.DataFrame(columns=list(GOAL_COLUMNS)), data)
            return validate_goals(data[Table.GOALS], data)

        return prepared(data).memo(("goals",), build).copy()
    return validate_goals(goals, data)
