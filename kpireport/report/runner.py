"""``run()``: the report pipeline, one step per call.

    load run definitions → resolve periods → load and validate the data once →
    expand the fan-out and validate every parameter → write one data snapshot →
    skip what is current → execute, render and publish in parallel → summary

Design decisions
----------------
* **Check everything before executing anything.** Run definitions, notebooks'
  parameter cells, constant parameters, periods, the data and every report's
  parameters are validated before a single kernel starts or the output folder
  is touched; a problem raises :class:`~kpireport.errors.ParamsError` (or the
  loader's ``DataContractError``) listing everything found.
* **Data once, shared by snapshot.** The source is loaded and validated once
  per distinct source; kernels read a Parquet snapshot at
  ``<out>/.work/<fingerprint[:16]>/`` (see :mod:`kpireport.report.snapshot`),
  injected as the ``source`` parameter. The snapshot of a fingerprint is
  written once, atomically, and is identical for every run on the same data,
  so concurrent runs can share it; it never holds credentials.
* **Re-runs redo only what failed or changed**: a report is skipped when its
  manifest says ``success`` for the same cache key (notebook hash, parameters,
  data fingerprint, formats, header, kpireport version and a hash of the
  installed kpireport sources and templates, so a library change between runs
  is never skipped) and its outputs still
  match their hashes, unless ``force=True``.
* **Heavy set-up once, in the parent.** papermill, nbconvert (and its
  template) and WeasyPrint (with its fonts prepared, see
  :mod:`kpireport.report.render`) are loaded before report processes fork.
* **One failed report does not stop the others**; :class:`RunResult` says
  which failed and :attr:`RunResult.ok` whether all succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpireport import __version__
from kpireport.errors import ParamsError
from kpireport.report import execute
from kpireport.report.manifest import cache_key, code_hash, is_current
from kpireport.report.params import ReportSpec, RunDef, did_you_mean, expand, load_plan
from kpireport.report.slug import slug
from kpireport.report.snapshot import write_snapshot

log = logging.getLogger("kpireport")

_LABELS = {
    "en": {
        "team": "Team",
        "seller": "Seller",
        "organisation": "Whole organisation",
        "as_of": "Data as of {date}",
    },
    "nl": {
        "team": "Team",
        "seller": "Verkoper",
        "organisation": "Hele organisatie",
        "as_of": "Gegevens tot en met {date}",
    },
}


@dataclass
class ReportResult:
    """Outcome of one report: ``status`` is ``success``, ``skipped`` or ``failed``."""

    report_id: str
    run: str
    scope: str
    scope_id: str | None
    period: str
    status: str
    error: str | None = None
    error_kind: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    failed_path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class RunResult:
    """Outcome of a run: every report's result and where they are."""

    out: Path
    reports: list[ReportResult]
    fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no report failed."""
        return all(r.ok for r in self.reports)

    @property
    def failed(self) -> list[ReportResult]:
        return [r for r in self.reports if not r.ok]

    def summary(self) -> str:
        """A plain-text table: report, status, seconds per stage, error."""
        rows = [("report", "status", "execute", "html", "pdf", "error")]
        for r in self.reports:
            t = r.timings
            rows.append(
                (
                    r.report_id,
                    r.status,
                    *(f"{t[k]:.1f}s" if k in t else "-" for k in ("execute", "html", "pdf")),
                    (r.error or "")[:90],
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
            for row in rows
        ]
        n_ok = sum(r.status == "success" for r in self.reports)
        n_skip = sum(r.status == "skipped" for r in self.reports)
        lines.append(
            f"{n_ok} published, {n_skip} up to date, {len(self.failed)} failed; output in {self.out}"
        )
        return "\n".join(line.rstrip() for line in lines)


# ------------------------------------------------------------------ data
def _load_data(source: Any, as_of: str | None) -> Any:
    from kpireport.data.model import CrmData

    if isinstance(source, CrmData):
        return source
    from kpireport.data.load import load  # lazy: the loader is heavy

    return load(source, as_of=as_of) if as_of else load(source)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def source_secret_names(source: Any) -> tuple[str, ...]:
    """Environment variables a source file names (``password_env``, ``${VAR}``)."""
    if not isinstance(source, (str, os.PathLike)):
        return ()
    path = Path(source)
    names: set[str] = set()
    if path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        with contextlib.suppress(OSError):
            text = path.read_text(encoding="utf-8-sig")
            names.update(_ENV_REF.findall(text))
            names.update(
                re.findall(r"^\s*\w*_env\s*:\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)", text, re.MULTILINE)
            )
    names.update(_ENV_REF.findall(str(source)))
    return tuple(sorted(names))


# ---------------------------------------------------------------- header
def header_meta(spec: ReportSpec, organisation: str, fingerprint: str) -> dict[str, str]:
    """The facts shown in a report's header and footer (escaped by the template)."""
    labels = _LABELS.get(spec.language, _LABELS["en"])
    try:
        from kpireport.i18n import fmt_date, fmt_period

        period_label = fmt_period(spec.period, spec.language)
        as_of_label = labels["as_of"].format(date=fmt_date(spec.as_of, spec.language))
    except Exception:  # i18n not available: labels as written
        period_label, as_of_label = spec.period, labels["as_of"].format(date=spec.as_of)
    if spec.scope == "organisation":
        scope = labels["organisation"]
    elif spec.scope == "seller" and spec.scope_name != spec.scope_id:
        scope = f"{labels['seller']} {spec.scope_name} ({spec.scope_id})"
    else:
        scope = f"{labels[spec.scope]} {spec.scope_name}"
    return {
        "title": spec.title,
        "organisation": organisation,
        "scope": scope,
        "period": spec.period,
        "period_label": period_label,
        "as_of": spec.as_of,
        "as_of_label": as_of_label,
        "language": spec.language,
        "version": __version__,
        "footer": f"kpireport {__version__} · {spec.report_id} · data {fingerprint[:12]}",
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------- run
def run(
    params_path: Path | str,
    *,
    source: Any = None,
    period: str | None = None,
    as_of: str | None = None,
    out: Path | str | None = None,
    only: Sequence[str] | None = None,
    formats: Sequence[str] | None = None,
    jobs: int | None = None,
    force: bool = False,
    default_as_of: str | None = None,
    on_report: Callable[[ReportResult, int, int], None] | None = None,
) -> RunResult:
    """Build every report of a run definition or pack.

    Parameters
    ----------
    params_path
        Run definition or pack YAML (``params/team_monthly.yaml``).
    source
        Data source (path, URL, source YAML, dict of DataFrames or
        :class:`~kpireport.data.model.CrmData`); overrides the files' ``source``.
    period, as_of
        Period label (absolute or relative) and logical date (``YYYY-MM-DD``);
        override the files. Relative periods resolve against ``as_of``.
    out
        Output root (default ``reports``).
    only
        Build only the reports of these scope ids or run names.
    formats
        Subset of ``("html", "pdf")``; overrides the files.
    jobs
        Reports executed at once (default: number of CPU cores).
    force
        Rebuild reports that are up to date.
    default_as_of
        Logical date used when neither ``as_of`` nor the files set one (the
        CLI passes today's date here).
    on_report
        Progress callback ``(result, done, total)`` called as reports finish.

    Returns
    -------
    RunResult
        Per-report status; ``result.ok`` is False when any report failed.

    Raises
    ------
    ParamsError
        When a run definition or parameter is invalid (nothing was executed).
    DataContractError, SourceError
        When the data cannot be loaded or breaks the contract.
    """
    overrides: dict[str, Any] = {}
    if period is not None:
        overrides["period"] = period
    if as_of is not None:
        overrides["as_of"] = as_of
    if formats is not None:
        overrides["formats"] = list(formats)
    if isinstance(source, (str, os.PathLike)):
        overrides["source"] = os.fspath(source)
    runs = load_plan(params_path, overrides)
    if default_as_of is not None:
        for r in runs:
            r.as_of = r.as_of or default_as_of
    out_dir = Path(out or "reports").expanduser().resolve()

    groups = _group_by_source(runs, source)
    plans: list[tuple[ReportSpec, Any, str, Path | None, tuple[str, ...]]] = []
    for src, group in groups:
        data = _load_data(src, as_of or group[0].as_of) if src is not None else None
        fingerprint = data.fingerprint() if data is not None else "no-data"
        snapshot = out_dir / ".work" / fingerprint[:16] if data is not None else None
        specs = expand(
            group, out=out_dir, data=data, as_of=as_of,
            source_param=str(snapshot / "source.yaml") if snapshot else None,
        )  # fmt: skip
        secret_names = source_secret_names(src)
        for spec in specs:
            plans.append((spec, data, fingerprint, snapshot, secret_names))
    plans = _filter_only(plans, only)
    ids = [p[0].report_id for p in plans]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise ParamsError(
            f"Two reports would be written to '{dups[0]}'; make the output patterns distinct."
        )

    tasks, results = [], {}
    written: set[Path] = set()
    nb_hash: dict[Path, str] = {}
    code = code_hash()  # the installed kpireport sources: a library change re-runs reports
    for spec, data, fingerprint, snapshot, secret_names in plans:
        if snapshot is not None and snapshot not in written:
            write_snapshot(data, snapshot)
            written.add(snapshot)
        sha = nb_hash.setdefault(spec.notebook, _sha256(spec.notebook))
        organisation = _organisation(runs, spec, data)
        meta = header_meta(spec, organisation, fingerprint)
        params_for_key = {k: v for k, v in spec.parameters.items() if k != "source"}
        key = cache_key(
            {"notebook": sha, "parameters": params_for_key, "fingerprint": fingerprint,
             "formats": sorted(spec.formats), "meta": {k: v for k, v in meta.items() if k != "footer"},
             "version": __version__, "code": code, "timeouts": [spec.cell_timeout]}
        )  # fmt: skip
        base = out_dir / spec.report_id
        if not force and is_current(Path(str(base) + ".manifest.json"), key, out_dir):
            results[spec.report_id] = ReportResult(
                spec.report_id, spec.run, spec.scope, spec.scope_id, spec.period, "skipped"
            )
            continue
        jobs_dir = out_dir / ".work" / "jobs"
        jobs_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=slug(spec.report_id)[:40] + "-", dir=jobs_dir))
        tasks.append(
            execute.Task(
                spec=spec, out=out_dir, work_root=work, fingerprint=fingerprint, cache_key=key,
                notebook_sha256=sha, meta=meta, secret_env=secret_names,
                source_description=str(getattr(data, "source", "") or ""),
            )
        )  # fmt: skip

    total = len(plans)
    done = [len(results)]

    def finished(task: execute.Task, outcome: dict[str, Any]) -> None:
        res = _result(task.spec, outcome)
        results[task.spec.report_id] = res
        done[0] += 1
        if on_report is not None:
            on_report(res, done[0], total)

    if tasks:
        _prewarm(any("pdf" in t.spec.formats for t in tasks))
        execute.run_tasks(tasks, jobs or os.cpu_count() or 1, finished)
    with contextlib.suppress(OSError):
        (out_dir / ".work" / "jobs").rmdir()
    reports = [results[p[0].report_id] for p in plans]
    return RunResult(out_dir, reports, {p[0].report_id: p[2] for p in plans})


def _filter_only(plans: list[tuple], only: Sequence[str] | None) -> list[tuple]:
    """Keep the reports whose scope id or run name is in ``only``; refuse unmatched values."""
    if not only:
        return plans
    names = {p[0].run for p in plans} | {p[0].scope_id for p in plans if p[0].scope_id is not None}
    unmatched = [o for o in only if o not in names]
    if unmatched:
        raise ParamsError(
            "; ".join(f"--only '{o}' matches no report{did_you_mean(o, names)}" for o in unmatched)
            + "."
        )
    return [p for p in plans if p[0].run in only or p[0].scope_id in only]


def _group_by_source(runs: Sequence[RunDef], source: Any) -> list[tuple[Any, list[RunDef]]]:
    if source is not None:
        return [(source, list(runs))]
    groups: dict[str | None, list[RunDef]] = {}
    for r in runs:
        groups.setdefault(r.source, []).append(r)
    return list(groups.items())


def _organisation(runs: Sequence[RunDef], spec: ReportSpec, data: Any) -> str:
    for r in runs:
        if r.name == spec.run and r.organisation:
            return str(r.organisation)
    return str(getattr(data, "organisation", "") or "")


def _result(spec: ReportSpec, outcome: dict[str, Any]) -> ReportResult:
    error = outcome.get("error") or None
    return ReportResult(
        report_id=spec.report_id,
        run=spec.run,
        scope=spec.scope,
        scope_id=spec.scope_id,
        period=spec.period,
        status=outcome.get("status", "failed"),
        error=error.get("message") if isinstance(error, dict) else error,
        error_kind=error.get("kind") if isinstance(error, dict) else None,
        timings=dict(outcome.get("timings") or {}),
        outputs=dict(outcome.get("outputs") or {}),
        failed_path=outcome.get("failed_path"),
    )


def _prewarm(pdf: bool = True) -> None:
    """Import and warm the heavy modules once in the parent so forked children share them.

    nbconvert's template is compiled and, with ``pdf``, WeasyPrint's fonts
    prepared (:func:`kpireport.report.render.prewarm`), instead of in every child.
    """
    import papermill  # noqa: F401

    from kpireport.report import render

    render.prewarm(pdf)
