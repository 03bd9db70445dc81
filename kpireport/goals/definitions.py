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
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from kpireport.constants import Better, Direction, Scope, Table
from kpireport.data.model import CrmData
from kpireport.errors import GoalError, PeriodError
from kpireport.periods import is_relative, parse_period

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


def _registry() -> dict[str, Any]:
    from kpireport.kpis.registry import REGISTRY

    return REGISTRY


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


def _read_yaml(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise GoalError(f"Goals file '{path}' does not exist.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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
    # YAML turns 2026 into an int and 007 into 7: read every cell back as text
    return pd.DataFrame(raw)


def _goals_frame(goals: Any) -> tuple[pd.DataFrame, list[object]]:
    """:func:`goals_frame` plus the raw ``target`` cells (for error messages).

    The raw cells are returned beside the frame rather than in ``attrs``:
    pandas deep-copies ``attrs`` on every operation, which made row iteration
    over 10 k goals take minutes.
    """
    if isinstance(goals, str | Path):
        df = _read_yaml(Path(goals))
    elif isinstance(goals, pd.DataFrame):
        df = goals.copy()
    elif isinstance(goals, Iterable):
        df = pd.DataFrame(list(goals))
    else:
        raise GoalError(f"Cannot read goals from {type(goals).__name__}.")
    df = df.reset_index(drop=True)
    df.attrs = {}
    for col in GOAL_COLUMNS:
        if col not in df:
            df[col] = pd.NA
    out = pd.DataFrame(index=df.index)
    for col in GOAL_COLUMNS:
        if col == "target":
            out[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        else:
            out[col] = _text(df[col])
    missing_id = out["goal_id"].isna().to_numpy()
    if missing_id.any():
        ids = np.array([f"G{i + 1}" for i in range(len(out))], dtype=object)
        out["goal_id"] = out["goal_id"].where(~missing_id, pd.Series(ids, dtype="str"))
    return out, df["target"].tolist()


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
    elif scope == Scope.CUSTOMER:
        columns = [
            data[t]["company_id"]
            for t in (Table.COMPANIES, Table.REVENUE, Table.DEALS)
            if data.has(t) and "company_id" in data[t]
        ]
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
        Anything :func:`goals_frame` accepts.
    data
        When given, scope ids are checked against its teams, sellers and
        companies.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GOAL_COLUMNS` with ``direction`` filled in.

    Raises
    ------
    GoalError
        Listing every invalid goal (goal id, row, column, reason) at once;
        ``error.problems`` holds the sentences.
    """
    df, raw_target = _goals_frame(goals)
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
    if data is not None:
        for sc in (Scope.TEAM, Scope.SELLER, Scope.CUSTOMER):
            rows = needs_id & ~no_id & (scope == sc.value)
            if rows.any():
                missing = unknown_ids(data, sc, pd.unique(sid[rows]))
                if missing:
                    unknown = rows & np.array([x in missing for x in sid], dtype=bool)
                    add(unknown, 2, lambda i, sc=sc: f"column 'scope_id': unknown {sc} '{sid[i]}'.")
    period = df["period"].to_numpy(dtype=object)
    verdict: dict[object, str | None] = {}
    for label in pd.unique(df["period"].dropna()):
        if is_relative(label):
            verdict[label] = (
                f"'{label}' is relative; a goal needs an absolute period such as 2026-11."
            )
            continue
        try:
            parse_period(label)
            verdict[label] = None
        except PeriodError:
            verdict[label] = (
                f"'{label}' is not a valid period (use 2026, 2026-Q4, 2026-11 or 2026-W45)."
            )
    no_period = df["period"].isna().to_numpy()
    add(no_period, 3, lambda i: "column 'period': a goal needs a period.")
    bad_period = ~no_period & np.array([verdict.get(p) is not None for p in period], dtype=bool)
    add(bad_period, 3, lambda i: f"column 'period': {verdict[period[i]]}")
    bad_target = df["target"].isna().to_numpy() | ~np.isfinite(df["target"].to_numpy())
    add(
        bad_target,
        4,
        lambda i: (
            "column 'target': a goal needs a target."
            if raw_target[i] is None
            or (isinstance(raw_target[i], float) and np.isnan(raw_target[i]))
            else f"column 'target': '{raw_target[i]}' is not a number."
        ),
    )
    direction = df["direction"].to_numpy(dtype=object)
    given = ~df["direction"].isna().to_numpy()
    valid_dir = [d.value for d in Direction]
    bad_dir = given & ~df["direction"].isin(valid_dir).to_numpy()
    add(bad_dir, 5, lambda i: f"column 'direction': '{direction[i]}' must be at_least or at_most.")
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
        raise err
    defaults = (
        np.array([default_direction(k) for k in kpi], dtype=object) if (~given).any() else direction
    )
    df["direction"] = pd.array(np.where(given, direction, defaults), dtype="str")
    return df


def load_goals(data: CrmData, goals: Any = None) -> pd.DataFrame:
    """The validated goals: ``goals`` if given, else the source's ``goals`` table."""
    if goals is None:
        if not data.has(Table.GOALS):
            return validate_goals(pd.DataFrame(columns=list(GOAL_COLUMNS)), data)
        goals = data[Table.GOALS]
    return validate_goals(goals, data)
