"""Planning reports: from checked run definitions to one :class:`ReportSpec` per report.

:func:`expand` resolves each run's period against its logical date, fans it
out over its scopes (the organisation, every team, every active seller or a
list) and names each report's output path inside the output root;
:func:`finish` applies ``--only`` and refuses two reports on one path — the
one place for both, across every source of a run.

Design decisions
----------------
* **Periods are resolved once, from the logical date.** A relative period
  (``previous-month``) is resolved with :func:`kpireport.periods.parse_period`
  against the run's ``as_of``, and the notebook receives the absolute label;
  invalid labels (``2024-13``) are refused here.
* **Context parameters are injected only when declared** (``period``,
  ``as_of``, ``language``, ``source``, ``output_root`` and the fan-out scope
  ``team``/``seller``), typed like the notebook declares them.
* **Output paths are slugs inside the root.** Scope ids whose slugs collide
  get a hash suffix; a name longer than
  :data:`~kpireport.report.slug.MAX_SLUG` has its scope fields shortened (each
  keeps a hash of its full value); nothing resolves outside the output root.
* **Every problem at once** in one :class:`~kpireport.errors.ParamsError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpireport.constants import Scope
from kpireport.errors import KpiReportError, ParamsError
from kpireport.history.store import db_path
from kpireport.periods import parse_period
from kpireport.problems import Problems, did_you_mean
from kpireport.report.parameters import coerce, secret_env_values
from kpireport.report.slug import MAX_SLUG, resolve_inside, short_hash, slug, slug_path

if TYPE_CHECKING:
    from kpireport.data.model import CrmData
    from kpireport.report.params import RunDef

#: placeholders allowed in an output pattern
OUTPUT_FIELDS = (
    "period",
    "as_of",
    "language",
    "run",
    "scope",
    "scope_id",
    "name",
    "team",
    "seller",
)


@dataclass(frozen=True)
class ReportSpec:
    """One report to produce: a notebook, its final parameters and its output name."""

    report_id: str
    run: str
    title: str
    notebook: Path
    scope: str
    scope_id: str | None
    scope_name: str
    period: str
    as_of: str
    language: str
    formats: tuple[str, ...]
    parameters: dict[str, Any]
    cell_timeout: float
    start_timeout: float
    report_timeout: float


# ---------------------------------------------------------------- expansion
def resolve_period(run: RunDef, as_of: str | None) -> tuple[str, str]:
    """``(absolute period label, as_of ISO date)`` of a run.

    Raises
    ------
    ParamsError
        When the period is missing or invalid, or relative without ``as_of``.
    """
    where = f"{run.origin.name} (run '{run.name}')"
    as_of = as_of or run.as_of
    if as_of is None:
        raise ParamsError(f"{where}: no as-of date; set 'as_of' or pass --as-of YYYY-MM-DD.")
    try:
        day = parse_period(str(as_of)).start  # a day label: YYYY-MM-DD
        if parse_period(str(as_of)).days != 1:
            raise ValueError
    except (KpiReportError, ValueError):
        raise ParamsError(f"{where}: as_of '{as_of}' is not a date (YYYY-MM-DD).") from None
    if run.period is None:
        raise ParamsError(
            f"{where}: no period; set 'period' (e.g. previous-month or 2026-03) or pass --period."
        )
    try:
        label = parse_period(str(run.period), day).label
    except KpiReportError as exc:
        raise ParamsError(f"{where}: {exc}") from None
    return label, f"{day:%Y-%m-%d}"


@dataclass(frozen=True)
class Target:
    """One fan-out target: scope kind, id (``None`` for the organisation) and display name."""

    kind: Scope
    id: str | None
    name: str


def _active_sellers(sellers: Any, period: str) -> set[str]:
    """Ids of the sellers active on some day of ``period``."""
    import pandas as pd

    from kpireport.periods import parse_period

    p = parse_period(period)
    start = (
        pd.to_datetime(sellers["active_from"], errors="coerce")
        if "active_from" in sellers
        else None
    )
    end = pd.to_datetime(sellers["active_to"], errors="coerce") if "active_to" in sellers else None
    keep = pd.Series(True, index=sellers.index)
    if start is not None:
        keep &= start.isna() | (start < p.end)
    if end is not None:
        keep &= end.isna() | (end >= p.start)
    return set(sellers.loc[keep, "seller_id"].astype(str))


def fanout_scopes(
    run: RunDef, data: CrmData | None, problems: list[str], period: str | None = None
) -> list[Target]:
    """The scopes a run fans out over (every team, every seller, a list, or the organisation).

    "Every seller" means every seller active on some day of ``period``
    (``active_from``/``active_to``, missing bounds open): a scorecard for a
    seller who left years ago would be a report of empty sections. An
    explicit list is taken as given.
    """
    where = f"{run.origin.name} (run '{run.name}')"
    if run.fanout == "none":
        return [
            Target(
                Scope.ORGANISATION,
                None,
                run.organisation or getattr(data, "organisation", None) or "Organisation",
            )
        ]
    sellers = data.tables.get("sellers") if data is not None else None
    known: dict[str, str] = {}
    if sellers is not None:
        if run.fanout == Scope.TEAM:
            for team in sorted({str(t) for t in sellers["team"].dropna()}):
                known[team] = team
        else:
            for sid, name in sorted(
                zip(sellers["seller_id"].astype(str), sellers["name"].astype(str), strict=True)
            ):
                known[sid] = name
    if run.fanout_ids is None:
        if sellers is None:
            problems.append(f"{where}: fanout '{run.fanout}' needs a data source (pass --source).")
            return []
        active = _active_sellers(sellers, period) if run.fanout == Scope.SELLER and period else None
        return [
            Target(Scope(run.fanout), i, n)
            for i, n in known.items()
            if active is None or i in active
        ]
    out = []
    for i in run.fanout_ids:
        if sellers is not None and i not in known:
            problems.append(f"{where}: unknown {run.fanout} '{i}'{did_you_mean(i, known)}.")
            continue
        out.append(Target(Scope(run.fanout), i, known.get(i, i)))
    return out


def expand(
    runs: Sequence[RunDef],
    *,
    out: Path,
    data: CrmData | None = None,
    as_of: str | None = None,
    source_param: str | None = None,
) -> list[ReportSpec]:
    """One validated :class:`ReportSpec` per report of every run.

    Parameters
    ----------
    runs
        Checked runs from :func:`load_plan`.
    out
        Output root: every report path is resolved inside it.
    data
        The loaded :class:`~kpireport.data.model.CrmData` (for fan-out over
        every team/seller and display names), or ``None``.
    as_of
        Logical date overriding the runs' ``as_of``.
    source_param
        Value injected as ``source`` (the data snapshot's ``source.yaml``).

    Returns
    -------
    list[ReportSpec]
        Every report of every run; pass the specs of all sources through
        :func:`finish` (``--only``, output collisions).

    Raises
    ------
    ParamsError
        Listing every problem (types, missing fan-out parameters, unknown
        scope ids, invalid output patterns).
    """
    problems = Problems()
    specs: list[ReportSpec] = []
    secrets = set(secret_env_values().values())
    for run in runs:
        where = f"{run.origin.name} (run '{run.name}')"
        try:
            period, day = resolve_period(run, as_of)
        except ParamsError as exc:
            problems.append(str(exc))
            continue
        scopes = fanout_scopes(run, data, problems, period)
        # scope ids whose slugs collide get a hash suffix so outputs stay apart
        slugs: dict[str, list[str]] = {}
        for sc in scopes:
            slugs.setdefault(slug(sc.id), []).append(str(sc.id))
        for sc in scopes:
            context: dict[str, Any] = {"period": period, "as_of": day, "language": run.language}
            if source_param is not None:
                context["source"] = source_param
            context["output_root"] = str(out)
            history = db_path(out)  # the run history grades forecasts (management pack)
            context["history"] = str(history) if history.is_file() else ""
            if sc.kind != Scope.ORGANISATION:
                context[sc.kind.value] = sc.id
            params: dict[str, Any] = {}
            for name, value in context.items():
                if name in run.declared:
                    try:
                        params[name] = coerce(name, value, run.declared[name])
                    except ValueError as exc:
                        problems.append(f"{where}: {exc}.")
            params.update(run.parameters)
            for name, value in params.items():
                if isinstance(value, str) and value in secrets:
                    problems.append(
                        f"{where}: parameter '{name}' holds the value of a secret environment variable."
                    )
            sid = slug(sc.id) if sc.id is not None else None
            if sid is not None and len(set(slugs[sid])) > 1:
                sid = f"{sid}-{short_hash(str(sc.id))}"
            fields = {
                "period": period,
                "as_of": day,
                "language": run.language,
                "run": slug(run.name),
                "scope": sc.kind.value,
                "scope_id": sid or Scope.ORGANISATION.value,
                "name": slug(sc.name),
                "team": sid if sc.kind == Scope.TEAM else None,
                "seller": sid if sc.kind == Scope.SELLER else None,
            }
            pattern = run.output or (
                "{period}/{run}" if sc.kind == Scope.ORGANISATION else "{period}/{run}-{scope_id}"
            )
            try:
                rel = _format_output(pattern, fields)
                resolve_inside(out, rel)
            except (ParamsError, KeyError, ValueError) as exc:
                problems.append(f"{where}: output pattern '{pattern}': {exc}")
                continue
            specs.append(
                ReportSpec(
                    report_id=rel,
                    run=run.name,
                    title=run.title,
                    notebook=run.notebook,
                    scope=sc.kind.value,
                    scope_id=sc.id,
                    scope_name=sc.name,
                    period=period,
                    as_of=day,
                    language=run.language,
                    formats=run.formats,
                    parameters=params,
                    cell_timeout=run.cell_timeout,
                    start_timeout=run.start_timeout,
                    report_timeout=run.report_timeout,
                )
            )
    problems.raise_if_any(ParamsError, "run definition")
    return specs


def select_only(specs: Sequence[ReportSpec], only: Sequence[str] | None) -> list[int]:
    """Indices of the reports whose run name or scope id is in ``only`` (all without ``only``).

    Raises
    ------
    ParamsError
        Naming every ``only`` value that matches no report, with a "did you mean".
    """
    if not only:
        return list(range(len(specs)))
    names = {s.run for s in specs} | {s.scope_id for s in specs if s.scope_id is not None}
    problems = Problems(
        f"--only '{o}' matches no report{did_you_mean(o, names)}." for o in only if o not in names
    )
    problems.raise_if_any(ParamsError, "command line")
    return [i for i, s in enumerate(specs) if s.run in only or s.scope_id in only]


def finish(specs: Sequence[ReportSpec], only: Sequence[str] | None = None) -> list[ReportSpec]:
    """The reports ``only`` selects, refused when two would be written to one path.

    The one check for both, over the reports of every source of a run.
    """
    kept = [specs[i] for i in select_only(specs, only)]
    Problems(duplicate_paths(kept)).raise_if_any(ParamsError, "plan")
    return kept


def duplicate_paths(specs: Sequence[ReportSpec]) -> list[str]:
    """One sentence per output path that two planned reports share, naming both."""
    first: dict[str, ReportSpec] = {}
    problems = []
    for spec in specs:
        other = first.setdefault(spec.report_id, spec)
        if other is not spec:
            problems.append(
                f"The reports of {describe(other)} and {describe(spec)} would both be written "
                f"to '{spec.report_id}'; make the output patterns distinct."
            )
    return problems


_FIELD = re.compile(r"\{([^{}]*)\}")
#: output fields that name the scope: the only ones shortened when a name is too long
SCOPE_FIELDS = ("scope_id", "name", "team", "seller")
#: shortest a shortened scope part may become (before its hash)
_MIN_SCOPE = 8


def _format_output(pattern: str, fields: Mapping[str, Any]) -> str:
    """The slugged relative path of ``pattern`` with ``fields`` filled in.

    A component longer than :data:`~kpireport.report.slug.MAX_SLUG` has its
    scope fields shortened (each keeps a hash of its full value); the other
    fields (``{period}``, ``{as_of}``, ...) are never cut, so the name keeps
    what makes it unique.
    """

    def fill(part: str, values: Mapping[str, Any]) -> str:
        def repl(m: re.Match[str]) -> str:
            key = m.group(1)
            if key not in OUTPUT_FIELDS:
                raise ValueError(f"unknown field {{{key}}}{did_you_mean(key, OUTPUT_FIELDS)}")
            value = values.get(key)
            if value is None:
                raise ValueError(f"{{{key}}} is not defined for this run's fan-out")
            return str(value)

        return _FIELD.sub(repl, part)

    out = []
    for part in str(pattern).replace("\\", "/").split("/"):
        if not part.strip(" ."):
            continue
        text = slug(fill(part, fields), max_length=None)
        if len(text) > MAX_SLUG:
            keys = [m.group(1) for m in _FIELD.finditer(part) if m.group(1) in SCOPE_FIELDS]
            if not keys:
                raise ValueError(
                    f"the name '{text}' is longer than {MAX_SLUG} characters; shorten the pattern"
                )
            cut = -(-(len(text) - MAX_SLUG) // len(keys)) + 7  # room for "-<hash>"
            short = dict(fields)
            for key in set(keys):
                value = str(fields[key])
                if len(value) - cut < _MIN_SCOPE:
                    raise ValueError(
                        f"the name '{text}' is longer than {MAX_SLUG} characters even with "
                        f"{{{key}}} shortened; shorten the pattern"
                    )
                short[key] = f"{value[: len(value) - cut].rstrip('-')}-{short_hash(value)}"
            text = slug(fill(part, short), max_length=None)
        out.append(text)
    return slug_path("/".join(out))


def describe(spec: ReportSpec) -> str:
    """``team 'North' for 2026-10 (run 'team_monthly')``: a report, in words."""
    scope = (
        "the organisation"
        if spec.scope == Scope.ORGANISATION
        else f"{spec.scope} '{spec.scope_name}'"
    )
    return f"{scope} for {spec.period} (run '{spec.run}')"
