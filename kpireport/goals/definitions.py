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

import pandas as pd
import yaml

from kpireport.constants import Better, Direction, Scope, Table
from kpireport.data.model import CrmData
from kpireport.errors import GoalError, PeriodError
from kpireport.periods import is_relative, parse_period

GOAL_COLUMNS = ("goal_id", "kpi", "scope", "scope_id", "period", "target", "direction", "owner", "agreed_by")


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
    if isinstance(goals, str | Path):
        path = Path(goals)
        if not path.exists():
            raise GoalError(f"Goals file '{path}' does not exist.")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise GoalError(f"Goals file '{path}' is not valid YAML: {exc}.") from exc
        if isinstance(raw, Mapping):
            raw = raw.get("goals", [])
        if not isinstance(raw, list):
            raise GoalError(f"Goals file '{path}' must hold a list under 'goals:'.")
        df = pd.DataFrame(raw)
    elif isinstance(goals, pd.DataFrame):
        df = goals.copy()
    elif isinstance(goals, Iterable):
        df = pd.DataFrame(list(goals))
    else:
        raise GoalError(f"Cannot read goals from {type(goals).__name__}.")
    df = df.reset_index(drop=True)
    for col in GOAL_COLUMNS:
        if col not in df:
            df[col] = pd.NA
    out = pd.DataFrame(index=df.index)
    for col in GOAL_COLUMNS:
        if col == "target":
            out[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        else:
            vals = df[col].map(lambda v: v if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA else str(v))
            out[col] = pd.array(vals, dtype="str")
    missing_id = out["goal_id"].isna()
    out.loc[missing_id, "goal_id"] = [f"G{i + 1}" for i in out.index[missing_id]]
    out.attrs["raw_target"] = df["target"].tolist()
    return out


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


def validate_goals(goals: Any, data: CrmData | None = None) -> pd.DataFrame:
    """Check every goal and return the normalised goal table.

    Raises
    ------
    GoalError
        Listing every invalid goal (row, column, reason) at once.
    """
    df = goals_frame(goals)
    reg = _registry()
    problems: list[str] = []
    raw_target = df.attrs.get("raw_target", [None] * len(df))
    directions = []
    valid_scopes = {s.value for s in Scope}
    id_cache: dict[Scope, set[str]] = {}
    for i, row in df.iterrows():
        where = f"goal {row['goal_id']} (row {i + 1})"
        kpi = row["kpi"]
        if pd.isna(kpi) or kpi not in reg:
            close = difflib.get_close_matches(str(kpi), list(reg), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            problems.append(f"{where}, column 'kpi': unknown KPI '{kpi}'.{hint}")
        scope = row["scope"]
        if pd.isna(scope) or scope not in valid_scopes:
            problems.append(
                f"{where}, column 'scope': unknown scope '{scope}' (use one of {', '.join(sorted(valid_scopes))})."
            )
        else:
            sc = Scope(scope)
            if kpi in reg and sc not in reg[kpi].scopes:
                problems.append(f"{where}: KPI '{kpi}' is not defined for scope '{sc}'.")
            if sc != Scope.ORGANISATION:
                if pd.isna(row["scope_id"]):
                    problems.append(f"{where}, column 'scope_id': a {sc} goal needs a scope_id.")
                elif data is not None:
                    if sc not in id_cache:
                        id_cache[sc] = scope_ids(data, sc)
                    known = id_cache[sc]
                    if row["scope_id"] not in known:
                        problems.append(f"{where}, column 'scope_id': unknown {sc} '{row['scope_id']}'.")
        period = row["period"]
        if pd.isna(period):
            problems.append(f"{where}, column 'period': a goal needs a period.")
        elif is_relative(period):
            problems.append(
                f"{where}, column 'period': '{period}' is relative; a goal needs an absolute period such as 2026-11."
            )
        else:
            try:
                parse_period(period)
            except PeriodError:
                problems.append(f"{where}, column 'period': '{period}' is not a valid period.")
        if pd.isna(row["target"]):
            problems.append(f"{where}, column 'target': '{raw_target[i]}' is not a number.")
        direction = row["direction"]
        if pd.isna(direction):
            direction = default_direction(kpi) if kpi in reg else Direction.AT_LEAST.value
        elif direction not in {d.value for d in Direction}:
            problems.append(f"{where}, column 'direction': '{direction}' must be at_least or at_most.")
        directions.append(direction)
    if problems:
        n = len(problems)
        raise GoalError(
            f"{n} goal{'s are' if n != 1 else ' is'} invalid:\n" + "\n".join("  - " + p for p in problems),
            hint="Fix the goals and run again.",
        )
    df["direction"] = pd.array(directions, dtype="str")
    return df


def load_goals(data: CrmData, goals: Any = None) -> pd.DataFrame:
    """The validated goals: ``goals`` if given, else the source's ``goals`` table."""
    if goals is None:
        if not data.has(Table.GOALS):
            return validate_goals(pd.DataFrame(columns=list(GOAL_COLUMNS)), data)
        goals = data[Table.GOALS]
    return validate_goals(goals, data)
