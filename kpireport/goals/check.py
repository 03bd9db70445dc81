"""The SMART check: one verdict per goal and letter, before anyone agrees (docs/GOALS.md).

Design decisions
----------------
* **Every goal gets five verdicts**, even a broken one: the validation
  problems of :func:`~kpireport.goals.validate_goals` are mapped to their
  letter (KPI, scope, scope id, unknown keys, duplicates → **S**; target,
  growth, baseline, direction → **M**; period → **T**) instead of stopping
  at the first. Only the goals that validate are evaluated for **R**.
* **S** a registry KPI and a scope (id) that exists; **M** a numeric or
  growth target; **A** ``agreed_by`` set; **T** a period with an end that is
  not over at ``as_of`` (its last day is not before ``as_of``).
* **R** comes from :func:`~kpireport.goals.evaluate_goals` with
  ``upcoming=True``: the probability of reaching the target, where the target
  sits in the simulated distribution (its percentile), the growth it asks
  against the same period last year, the growth of the last three years
  (same period, year on year) and how fast earlier goals of the same KPI,
  scope id and grain were raised a year (goals in the checked list and the
  source's goals table). A probability under :data:`R_UNREALISTIC` is
  ``unrealistic``, over :data:`R_UNAMBITIOUS` ``unambitious``; no forecast
  (too little history, a ratio without closed deals) is ``unknown``.
* **The goal-table rules of validation live here**, not in the data layer
  (which must not know the KPI registry, a later stage): a goal whose ``kpi``
  is not a registry KPI is an error of the source's ``goals`` table
  (:data:`GOAL_TABLE_RULES`). :func:`validate` — ``kpireport.validate`` —
  and ``kpireport validate`` run the data contract and these rules in one
  report.
* Verdicts are ``pass``, ``fail`` or ``unknown``; ``kpireport goals check``
  exits 1 when any goal fails S, M or T (A and R are advice: a goal may be
  checked before it is agreed, and realism is a judgement).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from kpireport.constants import Scope, Table
from kpireport.data.model import CrmData
from kpireport.errors import GoalError, PeriodError
from kpireport.goals.definitions import goal_rows, goals_frame, validate_goals
from kpireport.periods import Period, _day, parse_period

if TYPE_CHECKING:
    from kpireport.data.validate import ValidationReport
    from kpireport.errors import Problem


def unknown_goal_kpis(tables: Mapping[str, pd.DataFrame]) -> Iterable[Problem | None]:
    """Rule: every ``goals.kpi`` is a KPI of the registry (the one list of KPI names)."""
    from kpireport.data.coerce import examples, str_isin
    from kpireport.data.validate import _finding
    from kpireport.kpis.registry import REGISTRY

    df = tables.get("goals")
    if df is None or "kpi" not in df.columns:
        return []
    bad = df["kpi"].notna().to_numpy() & ~str_isin(df["kpi"], sorted(REGISTRY))
    return [_finding(df, bad, "goals", "kpi", f"unknown KPI {examples(df.loc[bad, 'kpi'])}")]


#: the validation rules of the source's goal table that need the goal/KPI stages
GOAL_TABLE_RULES = (unknown_goal_kpis,)


def validate(
    data: CrmData | Mapping[str, pd.DataFrame],
    *,
    as_of: Any = None,
    timezone: str | None = None,
    currency: str | None = None,
    date_format: str | None = None,
) -> ValidationReport:
    """The data contract and the goal-table rules, in one report (``kpireport.validate``).

    Parameters
    ----------
    data
        A :class:`~kpireport.data.model.CrmData` or a dict of DataFrames with
        canonical table and column names (docs/DATA.md).
    as_of
        Reference day for the future-date and overdue-deal warnings (skipped
        when None; never read from the clock).
    timezone, currency, date_format
        As :func:`kpireport.data.validate.validate`.

    Returns
    -------
    ValidationReport
        What :func:`kpireport.data.validate.validate` reports, plus
        :data:`GOAL_TABLE_RULES` (a goal naming an unknown KPI). Never raises
        on bad data.
    """
    from kpireport.data.validate import validate as validate_data

    return validate_data(
        data,
        as_of=as_of,
        timezone=timezone,
        currency=currency,
        date_format=date_format,
        rules=GOAL_TABLE_RULES,
    )


#: probability below which a target is unrealistic, above which it is unambitious
R_UNREALISTIC = 0.2
R_UNAMBITIOUS = 0.95
LETTERS = ("S", "M", "A", "R", "T")
#: validation problem order (see validate_goals) -> SMART letter
_LETTER_OF = {-1: "S", 0: "S", 1: "S", 2: "S", 3: "T", 4: "M", 5: "M", 6: "S"}

CHECK_COLUMNS = (
    "goal_id", "kpi", "scope", "scope_id", "period", "target", "direction", "agreed_by",
    *LETTERS, *(f"{x}_note" for x in LETTERS), "probability", "percentile", "forecast",
    "lo_80", "hi_80", "last_year", "asked_growth", "past_growth_min", "past_growth_max",
    "past_growth_years", "goal_raise", "growth_unit", "commit_gap", "lint",
)  # fmt: skip

_NUMERIC = (
    "probability", "percentile", "forecast", "lo_80", "hi_80", "last_year", "asked_growth",
    "past_growth_min", "past_growth_max", "past_growth_years", "goal_raise", "commit_gap",
)  # fmt: skip


def check_goals(
    data: CrmData,
    goals: Any = None,
    as_of: Any = None,
    *,
    n_paths: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The SMART verdicts of every goal at ``as_of``.

    Parameters
    ----------
    data
        The canonical dataset.
    goals
        Goals as :func:`~kpireport.goals.load_goals` accepts them (default:
        the source's goals table).
    as_of
        The day of the check. Required.
    n_paths, seed
        Simulation size and seed of the R forecasts.

    Returns
    -------
    pandas.DataFrame
        One row per goal, columns :data:`CHECK_COLUMNS`: the verdict of each
        letter (``pass``/``fail``/``unknown``) and a sentence on it
        (``S_note`` …), plus the numbers behind R.
    """
    if as_of is None:
        raise GoalError("check_goals needs an as_of date.", hint="Pass as_of='YYYY-MM-DD'.")
    asof = _day(as_of)
    rows = goal_rows(goals, data)
    frame = goals_frame(rows) if rows else goals_frame([])
    n = len(frame)
    out = pd.DataFrame({c: [None] * n for c in CHECK_COLUMNS}, dtype=object)
    for c in ("goal_id", "kpi", "scope", "scope_id", "period", "agreed_by"):
        out[c] = frame[c].astype(object).where(frame[c].notna(), None).to_numpy()
    out["target"] = pd.Series([r.get("target", r.get("growth")) for r in rows], dtype=object)
    if n == 0:
        return out
    notes: dict[str, list[list[str]]] = {x: [[] for _ in range(n)] for x in LETTERS}
    try:  # a file is validated as a file (duplicates are a file's problem)
        valid = validate_goals(goals if isinstance(goals, str | Path) else rows, data)
        bad_rows: set[int] = set()
    except GoalError as exc:
        problems = getattr(exc, "rows", [])
        bad_rows = {r for r, _, _ in problems}
        for r, order, sentence in problems:
            notes[_LETTER_OF.get(order, "S")][r].append(_after_where(sentence))
        ok = [i for i in range(n) if i not in bad_rows]
        valid = validate_goals([rows[i] for i in ok], data) if ok else None
    if valid is not None:
        valid.index = [i for i in range(n) if i not in bad_rows]
    out["R"] = "unknown"
    out["R_note"] = "not judged: the goal is not valid"
    _letters_from_problems(out, notes)
    _agreed(out, frame)
    _time(out, frame, asof, notes)
    if valid is not None and len(valid):
        for c in ("target", "direction"):
            out.loc[valid.index, c] = valid[c].to_numpy(object)
        out.loc[valid.index, "growth_unit"] = valid["growth_unit"].to_numpy(object)
        _realistic(out, data, valid, rows, asof, n_paths, seed)
    for x in LETTERS:
        out[f"{x}_note"] = [
            "; ".join(v) if v else out.at[i, f"{x}_note"] for i, v in enumerate(notes[x])
        ]
    for c in _NUMERIC:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    out.attrs["as_of"] = str(asof.date())
    return out.loc[:, list(CHECK_COLUMNS)]


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _after_where(sentence: str) -> str:
    """``"goal G1 (row 1), column 'kpi': unknown…"`` -> ``"column 'kpi': unknown…"``."""
    head, _, rest = sentence.partition(")")
    return rest.lstrip(",: ") if head.startswith("goal ") else sentence


def _letters_from_problems(out: pd.DataFrame, notes: dict[str, list[list[str]]]) -> None:
    for x in ("S", "M"):
        out[x] = ["fail" if v else "pass" for v in notes[x]]
    out["S_note"] = [
        f"{k} for {'the organisation' if sc == Scope.ORGANISATION else f'{sc} {sid}'}"
        for k, sc, sid in zip(out["kpi"], out["scope"], out["scope_id"], strict=True)
    ]
    out["M_note"] = [None if _missing(t) else f"target {t}" for t in out["target"]]
    out["T"] = ["fail" if v else "pass" for v in notes["T"]]


def _agreed(out: pd.DataFrame, frame: pd.DataFrame) -> None:
    who = frame["agreed_by"].astype(object)
    ok = who.notna() & (who.fillna("").astype(str).str.strip() != "")
    out["A"] = np.where(ok, "pass", "fail")
    out["A_note"] = [
        f"agreed by {w}" if k else "nobody has agreed it yet (agreed_by is empty)"
        for w, k in zip(who, ok, strict=True)
    ]


def _time(out: pd.DataFrame, frame: pd.DataFrame, asof: pd.Timestamp, notes) -> None:
    t_note = []
    for i, label in enumerate(frame["period"]):
        if notes["T"][i]:
            t_note.append(None)
            continue
        try:
            p = parse_period(label)
        except (PeriodError, TypeError):
            t_note.append(None)
            continue
        if p.last_day < asof:
            out.at[i, "T"] = "fail"
            notes["T"][i].append(f"{p.label} is already over (it ended on {p.last_day.date()})")
            t_note.append(None)
        elif p.start > asof:
            days = int((p.start - asof) / pd.Timedelta(days=1))
            t_note.append(
                f"{p.label} ends on {p.last_day.date()}; it starts in {days} "
                f"day{'s' if days != 1 else ''}"
            )
        else:
            left = int((p.end - asof) / pd.Timedelta(days=1)) - 1
            t_note.append(f"{p.label} ends on {p.last_day.date()}; {left} days left")
    out["T_note"] = t_note


def _realistic(
    out: pd.DataFrame,
    data: CrmData,
    valid: pd.DataFrame,
    rows: list[dict],
    asof: pd.Timestamp,
    n_paths: int,
    seed: int,
) -> None:
    from kpireport.goals.evaluate import _evaluate
    from kpireport.kpis.registry import REGISTRY

    totals: dict[int, np.ndarray] = {}
    ev = _evaluate(
        data, valid.reset_index(drop=True), asof, upcoming=True, n_paths=n_paths, seed=seed,
        totals=totals,
    )  # fmt: skip
    ev.index = valid.index
    past_goals = _past_goals(data, valid)
    for j, (i, r) in enumerate(ev.iterrows()):
        kdef = REGISTRY[r["kpi"]]
        rate = str(kdef.unit) == "percent"
        target = float(r["target"])
        for c in ("probability", "forecast", "lo_80", "hi_80", "commit_gap"):
            out.at[i, c] = float(r[c]) if np.isfinite(r[c]) else np.nan
        out.at[i, "lint"] = r["lint"]
        parts = []
        prob = float(r["probability"])
        sims = totals.get(j)
        if sims is not None and np.isfinite(prob):
            pct = float(np.mean(np.asarray(sims) < target))
            out.at[i, "percentile"] = pct
            parts.append(
                f"{prob:.0%} chance of reaching it; the target sits at the "
                f"{_ordinal(round(pct * 100))} percentile of the forecast"
            )
            # prob is the chance of success for either direction
            word = (
                "unrealistic"
                if prob < R_UNREALISTIC
                else "unambitious"
                if prob > R_UNAMBITIOUS
                else "realistic"
            )
            out.at[i, "R"] = "pass" if word == "realistic" else "fail"
            parts.insert(0, word)
        elif out.at[i, "T"] == "fail":
            out.at[i, "R"] = "unknown"
            parts.append(f"not judged: the period is over ({r['status']})")
        else:
            out.at[i, "R"] = "unknown"
            parts.append("no forecast (too little history for this KPI and scope)")
        hist = _yearly_history(data, r, asof)
        if hist is not None:
            ly, growths = hist
            out.at[i, "last_year"] = ly
            if np.isfinite(ly) and (rate or ly > 0):
                asked = target - ly if rate else target / ly - 1
                out.at[i, "asked_growth"] = asked
                parts.append(f"this asks {_g(asked, rate)} vs last year")
            if growths:
                out.at[i, "past_growth_min"] = min(growths)
                out.at[i, "past_growth_max"] = max(growths)
                out.at[i, "past_growth_years"] = len(growths)
                span = (
                    _g(growths[0], rate)
                    if len(growths) == 1
                    else f"{_g(min(growths), rate)} to {_g(max(growths), rate)}"
                )
                parts.append(
                    f"the last {len(growths)} year{'s' if len(growths) > 1 else ''} grew {span}"
                )
        raise_ = _goal_raise(past_goals, r, rate)
        if raise_ is not None:
            out.at[i, "goal_raise"] = raise_
            parts.append(f"past goals rose {_g(raise_, rate)} a year")
        out.at[i, "R_note"] = "; ".join(parts)
        growth = valid.at[i, "growth"]
        target_text = f"{target:,.2f}".rstrip("0").rstrip(".") if not rate else f"{target:.1%}"
        if np.isfinite(growth):
            out.at[i, "M_note"] = (
                f"{target_text} ({_g(growth, valid.at[i, 'growth_unit'] == 'pp')} vs "
                f"{valid.at[i, 'baseline_period']})"
            )
        else:
            out.at[i, "M_note"] = target_text


def _ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``82nd``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _g(x: float, points: bool) -> str:
    """A growth as text: ``+14 %`` (or ``+2.0 pp`` for a rate)."""
    if points:
        return f"{x * 100:+.1f} pp"
    return f"{x * 100:+.0f} %"


def _yearly_history(
    data: CrmData, r: pd.Series, asof: pd.Timestamp
) -> tuple[float, list[float]] | None:
    """Last year's value of the goal's period and the growth of the 3 years before it.

    The same period 1…4 years earlier, complete at ``as_of``; growths are
    year on year (``v_k / v_{k+1} − 1``, or the difference for rates) where
    both years have a positive value.
    """
    from kpireport.goals.values import _values
    from kpireport.kpis.registry import REGISTRY

    p = parse_period(r["period"])
    years: list[Period] = []
    q = p
    for _ in range(4):
        q = q.last_year()
        if q.end - pd.Timedelta(days=1) > asof:
            continue
        years.append(q)
    if not years:
        return None
    sid = "" if r["scope"] == Scope.ORGANISATION else str(r["scope_id"])
    vals = _values(data, r["scope"], [r["kpi"]], years, [sid] if sid else [], asof)
    v = [float(vals.get((r["kpi"], sid, y.label), np.nan)) for y in years]
    rate = str(REGISTRY[r["kpi"]].unit) == "percent"
    ly = v[0] if years[0].label == p.last_year().label else np.nan
    growths = []
    for a, b in zip(v[:-1], v[1:], strict=False):
        if rate and np.isfinite(a) and np.isfinite(b):
            growths.append(a - b)
        elif np.isfinite(a) and np.isfinite(b) and b > 0:
            growths.append(a / b - 1)
    return ly, growths[:3]


def _past_goals(data: CrmData, valid: pd.DataFrame) -> pd.DataFrame:
    """Every goal known: the checked ones and the source's goals table (validated)."""
    frames = [valid]
    if data.has(Table.GOALS) and len(data[Table.GOALS]):
        with contextlib.suppress(GoalError):  # a broken table is validate's business
            frames.append(validate_goals(data[Table.GOALS], data))
    return pd.concat(frames, ignore_index=True)


def _goal_raise(goals: pd.DataFrame, r: pd.Series, rate: bool) -> float | None:
    """Mean yearly raise of earlier goals of the same KPI, scope id and grain (last 3)."""
    p = parse_period(r["period"])
    same = goals[
        (goals["kpi"] == r["kpi"])
        & (goals["scope"] == r["scope"])
        & (goals["scope_id"].fillna("") == ("" if pd.isna(r["scope_id"]) else r["scope_id"]))
    ]
    by_label = {}
    for label, target in zip(same["period"], same["target"], strict=True):
        try:
            q = parse_period(label)
        except PeriodError:
            continue
        if q.grain == p.grain and q.is_span == p.is_span and q.start < p.start:
            by_label[q.label] = float(target)
    raises = []
    for label, target in sorted(by_label.items(), reverse=True):
        before = by_label.get(parse_period(label).last_year().label)
        if before is None:
            continue
        if rate:
            raises.append(target - before)
        elif before > 0:
            raises.append(target / before - 1)
        if len(raises) == 3:
            break
    return float(np.mean(raises)) if raises else None


def smart_failures(checked: pd.DataFrame) -> pd.DataFrame:
    """The goals that fail S, M or T (what makes ``kpireport goals check`` exit 1)."""
    return checked[(checked[["S", "M", "T"]] == "fail").any(axis=1)]
