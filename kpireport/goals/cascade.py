"""Cascading goals down (organisation → teams → sellers) and checking that they add up.

Design decisions
----------------
* **Children from the data.** An organisation goal cascades to the teams (or
  sellers) that have a seller active on some day of the goal's period; a team
  goal to the team's sellers active in the period (a seller's current team,
  as everywhere in kpireport). A goal without such children is an error.
* **Weights.** ``share`` (default): each child's value of the KPI over the
  trailing 12 complete months before ``as_of`` (the reverse funnel's window);
  ``equal``; or an explicit mapping (or YAML file) ``child id -> weight`` that
  must cover every child, name no other id, hold no negative weight and not
  sum to zero.
* **Rounded sensibly, summing exactly.** Counts are split in whole units,
  amounts in a round unit of about a thousandth of the parent (€ 8 350 000 →
  € 1 000; € 60 000 → € 10), by the largest-remainder method; what the unit
  cannot express goes to the largest child. The children add up to the parent
  to the cent.
* **Rates are not split.** A rate or mean goal (``hit_rate``) gives each child
  the parent's target.
* **The lint checks the other way** (:func:`commitment_gaps`): for an additive
  goal with child goals (same KPI, period and direction, one scope down), the
  children's sum minus the parent's target is the ``commit_gap``; beyond
  :data:`COMMIT_TOLERANCE` of the target it is ``undercommitted`` (negative)
  or ``overcommitted`` (positive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from kpireport.constants import Scope, Unit
from kpireport.data.model import CrmData
from kpireport.errors import GoalError
from kpireport.goals.definitions import GOAL_COLUMNS, load_goals
from kpireport.periods import Period, _day, parse_period

#: a children's sum within this share of the parent target is "adds up" (hand rounding)
COMMIT_TOLERANCE = 0.005
#: the scope one level down, and the scopes a cascade may go to
CHILD_SCOPES = {
    Scope.ORGANISATION: (Scope.TEAM, Scope.SELLER),
    Scope.TEAM: (Scope.SELLER,),
}


def _active_sellers(data: CrmData, p: Period) -> pd.DataFrame:
    """Sellers active on at least one day of ``p`` (no dates: always active)."""
    s = data.sellers
    keep = np.ones(len(s), dtype=bool)
    if "active_from" in s:
        frm = pd.to_datetime(s["active_from"])
        keep &= (frm.isna() | (frm.dt.normalize() < p.end)).to_numpy()
    if "active_to" in s:
        to = pd.to_datetime(s["active_to"])
        keep &= (to.isna() | (to.dt.normalize() >= p.start)).to_numpy()
    return s[keep]


def children_of(data: CrmData, goal: pd.Series, to: Scope) -> list[str]:
    """The child ids of ``goal`` at scope ``to`` that are active in its period, sorted."""
    p = parse_period(goal["period"])
    active = _active_sellers(data, p)
    if goal["scope"] == Scope.TEAM:
        active = active[active["team"].astype(str) == str(goal["scope_id"])]
    col = "team" if to == Scope.TEAM else "seller_id"
    return sorted(active[col].dropna().astype(str).unique().tolist())


def _weights(
    data: CrmData, goal: pd.Series, to: Scope, kids: list[str], by: Any, as_of
) -> np.ndarray:
    where = f"goal {goal['goal_id']}"
    if isinstance(by, str | Path) and str(by) not in ("share", "equal"):
        path = Path(by)
        if not path.exists():
            raise GoalError(f"{where}: the weights file '{path}' does not exist.")
        try:
            by = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise GoalError(
                f"{where}: the weights file '{path}' is not valid YAML: {exc}."
            ) from exc
        if not isinstance(by, Mapping):
            raise GoalError(
                f"{where}: the weights file '{path}' must map each {to} to a weight "
                "(North: 0.6, South: 0.4)."
            )
    if isinstance(by, Mapping):
        given = {str(k): v for k, v in by.items()}
        missing = [k for k in kids if k not in given]
        extra = [k for k in given if k not in kids]
        bad = [k for k, v in given.items() if not _weight_ok(v)]
        problems = []
        if missing:
            problems.append(f"no weight for {to} {', '.join(missing)}")
        if extra:
            problems.append(f"a weight for {', '.join(extra)}, not a {to} of this goal")
        if bad:
            problems.append(f"weights that are not non-negative numbers ({', '.join(bad)})")
        if problems:
            raise GoalError(
                f"{where}: the weights give {'; '.join(problems)}.",
                hint=f"Give one weight per {to}: {', '.join(kids)}.",
            )
        w = np.array([float(given[k]) for k in kids])
        if w.sum() <= 0:
            raise GoalError(f"{where}: the weights sum to zero; nothing to split the goal by.")
        return w
    if by == "equal":
        return np.ones(len(kids))
    if by != "share":
        raise GoalError(f"{where}: unknown --by '{by}' (use share, equal or a weights.yaml).")
    from kpireport.goals.funnel import trailing_year
    from kpireport.kpis import compute_kpis

    window = trailing_year(as_of)
    df = compute_kpis(data, [window], by=to, kpis=[goal["kpi"]], as_of=as_of)
    vals = df.set_index(df["scope_id"].astype(str))["value"]
    w = np.array([float(vals.get(k, 0.0)) for k in kids])
    w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
    if w.sum() <= 0:
        raise GoalError(
            f"{where}: no {to} of this goal has any {goal['kpi']} in the 12 months to "
            f"{window.end.date()}, so there is no share to split by.",
            hint="Use --by equal or a weights file.",
        )
    return w


def _weight_ok(v: object) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return math.isfinite(v) and v >= 0


def round_unit(target: float, unit: str) -> float:
    """The unit a child target is rounded to: 1 for counts, ~1/1000 of the parent for amounts."""
    if unit == Unit.COUNT:
        return 1.0
    if target <= 0:
        return 0.01
    return max(0.01, 10.0 ** (math.floor(math.log10(target)) - 3))


def split(target: float, weights: np.ndarray, unit: float) -> np.ndarray:
    """Split ``target`` by ``weights`` in multiples of ``unit``, summing exactly to ``target``.

    Largest remainder: every child gets the whole units of its share, the
    units left go to the largest remainders (ties: the larger weight, then
    the first child); what ``unit`` cannot express goes to the largest child.
    Works in cents, so the children sum to the parent to the cent.
    """
    cents = round(target * 100)
    step = max(1, round(unit * 100))
    exact = weights / weights.sum() * (cents // step)
    base = np.floor(exact).astype(np.int64)
    left = int(cents // step - base.sum())
    order = np.lexsort((np.arange(len(weights)), -weights, -(exact - base)))
    base[order[:left]] += 1
    out = base * step
    out[int(np.argmax(weights))] += cents - int(out.sum())
    return out / 100


def cascade_goal(
    data: CrmData,
    goal_id: str,
    to: str | Scope,
    *,
    by: str | Path | Mapping[str, float] = "share",
    goals: Any = None,
    as_of=None,
) -> pd.DataFrame:
    """Child goals of goal ``goal_id`` at scope ``to``.

    Parameters
    ----------
    data
        The canonical dataset.
    goal_id
        The parent goal (from ``goals``, default the source's goals table).
    to
        ``team`` or ``seller`` (a scope below the parent's).
    by
        ``"share"`` (trailing 12-month share of the KPI), ``"equal"``, a
        mapping ``child id -> weight`` or the path of a YAML file holding one.
    goals
        Goals as :func:`~kpireport.goals.load_goals` accepts them.
    as_of
        The day the shares are measured to (required for ``share``).

    Returns
    -------
    pandas.DataFrame
        One unagreed goal per child (columns of the goal file:
        ``goal_id`` = ``<parent>-<child>``, ``kpi``, ``scope``, ``scope_id``,
        ``period``, ``target``, ``direction``, ``owner``, ``agreed_by``),
        targets summing exactly to the parent's for additive KPIs.

    Raises
    ------
    GoalError
        Unknown goal, a scope that is not below the goal's, a goal without
        children in the data, weights that miss a child or sum to zero.
    """
    from kpireport.kpis.registry import REGISTRY

    g = load_goals(data, goals)
    rows = g[g["goal_id"] == str(goal_id)]
    if rows.empty:
        raise GoalError(
            f"There is no goal '{goal_id}' to cascade.",
            hint="Goal ids: " + ", ".join(g["goal_id"].head(20)) + ".",
        )
    goal = rows.iloc[0]
    where = f"goal {goal_id}"
    try:
        to = Scope(str(to).lower())
    except ValueError:
        raise GoalError(f"{where}: cannot cascade to '{to}' (use team or seller).") from None
    below = CHILD_SCOPES.get(Scope(goal["scope"]), ())
    if to not in below:
        raise GoalError(
            f"{where} is a {goal['scope']} goal; it cascades to "
            + (" or ".join(below) if below else "nothing")
            + f", not to {to}."
        )
    if by == "share" and as_of is None:
        raise GoalError(f"{where}: a cascade by share needs an as_of date.")
    kids = children_of(data, goal, to)
    if not kids:
        raise GoalError(
            f"{where}: {goal['scope']} {goal['scope_id'] or ''} has no {to} active in "
            f"{goal['period']}, so there is nothing to cascade to.".replace("  ", " ")
        )
    kdef = REGISTRY[goal["kpi"]]
    target = float(goal["target"])
    if kdef.additive:
        w = _weights(data, goal, to, kids, by, _day(as_of) if as_of is not None else None)
        targets = split(target, w, round_unit(target, str(kdef.unit)))
    else:
        targets = np.full(len(kids), target)
    out = pd.DataFrame(
        {
            "goal_id": [f"{goal_id}-{k}" for k in kids],
            "kpi": goal["kpi"],
            "scope": str(to),
            "scope_id": kids,
            "period": goal["period"],
            "target": targets,
            "direction": goal["direction"],
            "owner": None,
            "agreed_by": None,
        }
    )
    return out.loc[:, list(GOAL_COLUMNS)]


def commitment_gaps(goals: pd.DataFrame, data: CrmData) -> pd.Series:
    """Children's sum minus the target of every additive goal with child goals (else NaN).

    Children of an organisation goal are the team goals (or, without team
    goals, the seller goals) of the same KPI, period and direction; children
    of a team goal are the goals of the team's sellers.
    """
    from kpireport.kpis.registry import REGISTRY

    gap = pd.Series(np.nan, index=goals.index)
    if goals.empty:
        return gap
    team_of = data.sellers.drop_duplicates("seller_id").set_index("seller_id")["team"].astype(str)
    add = goals["kpi"].map(lambda k: k in REGISTRY and REGISTRY[k].additive).astype(bool)
    sub = goals[add]
    key = ["kpi", "period", "direction"]
    teams = sub[sub["scope"] == Scope.TEAM]
    sellers = sub[sub["scope"] == Scope.SELLER].assign(
        _team=lambda d: d["scope_id"].astype(str).map(team_of)
    )
    team_sum = teams.groupby(key)["target"].sum()
    seller_sum = sellers.groupby(key)["target"].sum()
    seller_team_sum = sellers.groupby([*key, "_team"])["target"].sum()
    for i, r in sub.iterrows():
        k = (r["kpi"], r["period"], r["direction"])
        if r["scope"] == Scope.ORGANISATION:
            total = team_sum.get(k, np.nan)
            if not np.isfinite(total):
                total = seller_sum.get(k, np.nan)
        elif r["scope"] == Scope.TEAM:
            total = seller_team_sum.get((*k, str(r["scope_id"])), np.nan)
        else:
            continue
        if np.isfinite(total):
            gap[i] = float(total) - float(r["target"])
    return gap


def commitment_flags(gap: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``undercommitted`` / ``overcommitted`` / ``""`` from :func:`commitment_gaps`."""
    with np.errstate(invalid="ignore"):
        tol = COMMIT_TOLERANCE * np.abs(target)
        under = np.isfinite(gap) & (gap < -tol)
        over = np.isfinite(gap) & (gap > tol)
    return np.where(under, "undercommitted", np.where(over, "overcommitted", ""))


def cascade_yaml(children: pd.DataFrame, *, parent: str, by: str, as_of) -> str:
    """The child goals as YAML list items (to append under ``goals:``)."""
    lines = [f"  # cascaded from {parent} by {by} (as of {as_of})"]
    for r in children.to_dict(orient="records"):
        item = {k: v for k, v in r.items() if v is not None and not _nan(v)}
        if isinstance(item.get("target"), float) and item["target"].is_integer():
            item["target"] = int(item["target"])
        text = yaml.safe_dump(
            item, default_flow_style=True, sort_keys=False, width=1000, allow_unicode=True
        )
        lines.append("  - " + text.strip())
    return "\n".join(lines) + "\n"


def _nan(v: object) -> bool:
    return isinstance(v, float) and math.isnan(v)


def append_goals(path: str | Path, block: str, data: CrmData) -> None:
    """Append YAML goal items to a goals file (created if missing), validated first.

    The new file is written next to it and validated as a whole (unknown
    keys, duplicates, targets); only then it replaces the old one, so an
    invalid result writes nothing.
    """
    from kpireport.goals.definitions import validate_goals

    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else "goals:\n"
    raw = yaml.safe_load(old) if old.strip() else None
    if raw is None:
        old = "goals:\n"
    elif isinstance(raw, list):
        block = "\n".join(line[2:] for line in block.splitlines()) + "\n"
    elif not (isinstance(raw, Mapping) and isinstance(raw.get("goals"), list | None)):
        raise GoalError(f"Goals file '{path}' must hold a list of goals under 'goals:'.")
    new = old + ("" if old.endswith("\n") else "\n") + block
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_text(new, encoding="utf-8")
    try:
        validate_goals(tmp, data)
    except GoalError:
        tmp.unlink()
        raise
    tmp.replace(path)
