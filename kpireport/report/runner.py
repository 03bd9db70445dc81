"""``run()``: the report pipeline, one step per call.

    load run definitions → refuse runs without a source → check the output
    folder → load and validate the data once → expand the fan-out and validate
    every parameter and output path → take the output folder's lock → write
    one data snapshot (in the cache) → skip what is current → execute, render
    and publish in parallel → summary

Design decisions
----------------
* **Check everything before executing anything.** Run definitions, notebooks'
  parameter cells, constant parameters, periods, sources, the output folder
  (a file, read-only, not writable), the data, every report's parameters and
  every output path (two reports on one path, or one overwriting another
  scope's published report: both are named) are validated before a single
  kernel starts or the output folder is touched; a problem raises
  :class:`~kpireport.errors.ParamsError` (or the loader's
  ``DataContractError``) listing everything found.
* **Never the demo by default.** A run whose notebook declares ``source`` (or
  that fans out) needs a source; ``"demo"`` is the demo CRM, asked for by name.
* **One run per output folder.** An ``flock`` on ``<out>/.locks/run.lock``
  (:mod:`kpireport.report.lock`, the scheduler's pattern): a second run exits
  75 naming the holder, or waits with ``wait=True``.
* **Data once, shared by snapshot, outside the reports.** The source is loaded
  and validated once per distinct source; kernels read a Parquet snapshot in
  the cache folder (see :mod:`kpireport.report.snapshot`), injected as the
  ``source`` parameter; the output folder that gets shared never holds a copy
  of the CRM data. The snapshot of a fingerprint is written once, atomically,
  and is identical for every run on the same data, so concurrent runs can
  share it; it never holds credentials.
* **Stopping is clean.** SIGTERM/SIGINT become
  :class:`~kpireport.errors.RunInterruptedError`, which unwinds
  :func:`kpireport.report.execute.run_tasks` (every report process and kernel
  killed); scratch folders are removed. Report processes watch their parent
  (:func:`kpireport.report.execute.watch_parent`).
* **One place submits report tasks** (:func:`_build` → ``execute.run_tasks``)
  and one publisher (:func:`kpireport.report.publish.commit_report`) puts
  files in place, so another executor can replace the process pool.
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
* **Executors and shards change where, not what** (docs/SCALING.md): the
  same tasks go to the local pool or a Dask cluster
  (:mod:`kpireport.report.executors`); ``shard=(i, n)`` keeps the reports of
  one stable part of the plan; every run saves the whole plan and rewrites
  the pack's ``index.html`` (:mod:`kpireport.report.pack`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpireport._version import __version__
from kpireport.constants import Scope
from kpireport.errors import FailureKind, OutputLockedError, ParamsError, RunInterruptedError
from kpireport.report import execute
from kpireport.report.cube import build_cubes
from kpireport.report.executors import DaskExecutor, LocalExecutor, make_executor, prewarm
from kpireport.report.lock import exclusive_lock
from kpireport.report.manifest import cache_key, code_hash, is_current, read_manifest
from kpireport.report.pack import (
    PLANS_DIR,
    parse_shard,
    plan_name,
    shard_of,
    write_index,
    write_plan,
)
from kpireport.report.params import (
    DEMO_SOURCE,
    RunDef,
    load_plan,
    missing_sources,
)
from kpireport.report.plan import (
    ReportSpec,
    describe,
    expand,
    finish,
    resolve_period,
    select_only,
)
from kpireport.report.slug import slug
from kpireport.report.snapshot import (
    SnapshotUse,
    is_remote,
    prune_snapshots,
    publish_snapshot,
    remote_root,
    remove_legacy_snapshots,
    snapshot_folder,
    snapshot_root,
    write_snapshot,
)
from kpireport.secrets import mask_secrets

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

log = logging.getLogger("kpireport")

_LABELS = {
    "en": {
        Scope.TEAM: "Team",
        Scope.SELLER: "Seller",
        Scope.ORGANISATION: "Whole organisation",
        "as_of": "Data as of {date}",
    },
    "nl": {
        Scope.TEAM: "Team",
        Scope.SELLER: "Verkoper",
        Scope.ORGANISATION: "Hele organisatie",
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
    error_kind: FailureKind | None = None
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
def _load_data(source: Any, as_of: str | None) -> CrmData:
    from kpireport.data.model import CrmData

    if isinstance(source, CrmData):
        return source
    if source == DEMO_SOURCE:  # asked for by name, never a fallback
        from kpireport.demo import DEFAULT_AS_OF, demo_data

        return demo_data(as_of=as_of or DEFAULT_AS_OF)
    from kpireport.data.load import load  # lazy: the loader is heavy

    return load(source, as_of=as_of) if as_of else load(source)


def source_secret_names(source: Any) -> tuple[str, ...]:
    """Environment variables a source names (:func:`kpireport.data.sources.secret_env_names`)."""
    from kpireport.data.sources import secret_env_names

    return secret_env_names(source)


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
    if spec.scope == Scope.ORGANISATION:
        scope = labels[Scope.ORGANISATION]
    elif spec.scope == Scope.SELLER and spec.scope_name != spec.scope_id:
        scope = f"{labels[Scope.SELLER]} {spec.scope_name} ({spec.scope_id})"
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
    wait: bool = False,
    shard: tuple[int, int] | str | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    snapshots: str | os.PathLike[str] | None = None,
    warm_kernels: int = 0,
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
    wait
        When another run holds the output folder, wait for it instead of
        raising :class:`~kpireport.errors.OutputLockedError`.
    shard
        ``(i, n)`` or ``"i/n"``: build only the reports of shard ``i`` of ``n``
        (:func:`kpireport.report.pack.shard_of`); the whole plan is still
        saved, so ``collect`` can check the pack (docs/SCALING.md).
    executor, scheduler
        ``"local"`` (process pool, default) or ``"dask"`` with a scheduler
        address, or a LocalCluster of ``jobs`` workers when none is given
        (:mod:`kpireport.report.executors`).
    snapshots
        Folder or ``file://`` URL the data snapshot is written to and read
        from by every worker (default: the cache folder).
    warm_kernels
        Local executor: reports whose process and kernel are started ahead
        of their turn, with the report modules imported (default 0).

    Returns
    -------
    RunResult
        Per-report status; ``result.ok`` is False when any report failed.

    Raises
    ------
    ParamsError
        When a run definition or parameter is invalid, a run has no source,
        two reports share a path or one would overwrite another scope's
        report, or the output folder is unusable (nothing was executed).
    OutputLockedError
        When another run holds the output folder (and not ``wait``).
    RunInterruptedError
        On SIGTERM/SIGINT: every report process and kernel was stopped.
    DataContractError, SourceError
        When the data cannot be loaded or breaks the contract.
    """
    runs = _load_runs(params_path, source, period, as_of, formats, default_as_of)
    shard = parse_shard(shard) if isinstance(shard, str) else shard
    root = snapshot_root(snapshots)
    backend = make_executor(executor, jobs=jobs, scheduler=scheduler, warm=warm_kernels)
    out_dir = check_output_folder(out or "reports")
    with _stop_signals(), contextlib.ExitStack() as held:
        if isinstance(backend, DaskExecutor):  # the cluster starts while the data loads
            held.callback(backend.close)
            backend.start()
        everything = _plan(
            runs, source, as_of, out_dir, only, held, root, remote=remote_root(snapshots)
        )
        plans = everything
        if shard is not None:
            plans = [p for p in everything if shard_of(p.spec.report_id, shard[1]) == shard[0]]
        out_dir.mkdir(parents=True, exist_ok=True)
        lock_name = "run.lock" if shard is None else f"shard-{shard[0]}-of-{shard[1]}.lock"
        with output_lock(out_dir, wait=wait, name=lock_name):
            problems = existing_collisions([p.spec for p in plans], out_dir)
            if problems:
                raise ParamsError(problems[0] if len(problems) == 1 else "\n".join(problems))
            remove_legacy_snapshots(out_dir)  # no copy of the CRM data beside the reports
            name = plan_name(params_path)
            if not only or not (out_dir / PLANS_DIR / f"{name}.json").is_file():
                # a run narrowed by --only keeps the pack's whole plan for collect
                write_plan(out_dir, name, [p.spec for p in everything])
            try:
                return _build(plans, runs, out_dir, force, on_report, backend)
            finally:  # also after a stop: the index shows what is there
                try:
                    write_index(out_dir)
                except (OSError, ParamsError) as exc:
                    log.warning("Could not write the pack index in %s: %s", out_dir, exc)


def plan_reports(
    params_path: Path | str,
    *,
    source: Any = None,
    period: str | None = None,
    as_of: str | None = None,
    only: Sequence[str] | None = None,
    formats: Sequence[str] | None = None,
    default_as_of: str | None = None,
    out: Path | str | None = None,
) -> list[ReportSpec]:
    """Every report :func:`run` would plan (data loaded, nothing executed or written).

    Raises
    ------
    ParamsError, DataContractError, SourceError
        As :func:`run` does before executing anything.
    """
    runs = _load_runs(params_path, source, period, as_of, formats, default_as_of)
    out_dir = Path(out or "reports").expanduser().resolve()
    with contextlib.ExitStack() as held:
        return [p.spec for p in _plan(runs, source, as_of, out_dir, only, held, None, False)]


def _load_runs(
    params_path: Path | str,
    source: Any,
    period: str | None,
    as_of: str | None,
    formats: Sequence[str] | None,
    default_as_of: str | None,
) -> list[RunDef]:
    """The run definitions with the overrides applied; a run without a source is refused."""
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
    if source is None and missing_sources(runs):  # refused, with the other problems found
        problems = []
        for r in runs:
            try:
                resolve_period(r, as_of)
            except ParamsError as exc:
                problems.append(str(exc))
        problems += missing_sources(runs)
        raise ParamsError(problems[0] if len(problems) == 1 else "\n".join(problems))
    return runs


def _plan(
    runs: Sequence[RunDef],
    source: Any,
    as_of: str | None,
    out_dir: Path,
    only: Sequence[str] | None,
    held: contextlib.ExitStack,
    snapshots: Path | None = None,
    use: bool = True,
    remote: str | None = None,
) -> list[_Plan]:
    """Load the data, expand every report and check the output paths (no kernel yet).

    The snapshot path (``snapshots``, default the cache folder) is all a
    report task knows of the data: kernels get it as their ``source``.
    """
    plans: list[_Plan] = []
    for src, group in _group_by_source(runs, source):
        data = _load_data(src, as_of or group[0].as_of) if src is not None else None
        fingerprint = data.fingerprint() if data is not None else "no-data"
        snapshot = snapshot_folder(fingerprint, snapshots) if data is not None else None
        if snapshot is not None and use:  # in use from now on: never pruned under our kernels
            held.callback(SnapshotUse(snapshot).close)
        specs = expand(
            group, out=out_dir, data=data, as_of=as_of,
            source_param=(
                (f"{remote}/{snapshot.name}/source.yaml" if remote else str(snapshot / "source.yaml"))
                if snapshot
                else None
            ),
        )  # fmt: skip
        secret_names = source_secret_names(src)
        for spec in specs:
            plans.append(_Plan(spec, data, fingerprint, snapshot, secret_names))
    plans = [plans[i] for i in select_only([p.spec for p in plans], only)]
    finish([p.spec for p in plans])  # two reports on one path are refused
    return plans


def _build(
    plans: list[_Plan],
    runs: Sequence[RunDef],
    out_dir: Path,
    force: bool,
    on_report: Callable[[ReportResult, int, int], None] | None,
    backend: LocalExecutor | DaskExecutor | None = None,
) -> RunResult:
    """Write the snapshots, skip what is current, execute the rest: the one place tasks are submitted."""
    tasks: list[execute.Task] = []
    results: dict[str, ReportResult] = {}
    written: set[Path] = set()
    nb_hash: dict[Path, str] = {}
    code = code_hash()  # the installed kpireport sources: a library change re-runs reports
    jobs_dir = out_dir / ".work" / "jobs"
    try:
        for plan in plans:
            spec, data, fingerprint, snapshot = (
                plan.spec,
                plan.data,
                plan.fingerprint,
                plan.snapshot,
            )
            if snapshot is not None and snapshot not in written:
                write_snapshot(data, snapshot)
                written.add(snapshot)
                source = str(spec.parameters.get("source", ""))
                if is_remote(source):  # --snapshots URL: kernels fetch it from there
                    publish_snapshot(snapshot, source[: -len(f"/{snapshot.name}/source.yaml")])
                prune_snapshots(root=snapshot.parent)  # the latest few; never one in use
            sha = nb_hash.setdefault(spec.notebook, _sha256(spec.notebook))
            organisation = _organisation(runs, spec, data)
            meta = header_meta(spec, organisation, fingerprint)
            params_for_key = {
                k: v
                for k, v in spec.parameters.items()
                if k not in ("source", "output_root", "history")
            }
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
            jobs_dir.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=slug(spec.report_id)[:40] + "-", dir=jobs_dir))
            tasks.append(
                execute.Task(
                    spec=spec, out=out_dir, work_root=work, fingerprint=fingerprint, cache_key=key,
                    notebook_sha256=sha, meta=meta, secret_env=plan.secret_names,
                    source_description=mask_secrets(str(getattr(data, "source", "") or "")),
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
            # the KPIs the reports will show, computed once (report/cube.py)
            build_cubes(plans, tasks)
            with backend or LocalExecutor() as ex:
                ex.run(tasks, finished)
    finally:  # stopped or not: no scratch folder stays behind
        for t in tasks:
            shutil.rmtree(t.work_root, ignore_errors=True)
        with contextlib.suppress(OSError):
            jobs_dir.rmdir()
    reports = [results[p.spec.report_id] for p in plans]
    return RunResult(out_dir, reports, {p.spec.report_id: p.fingerprint for p in plans})


@dataclass(frozen=True)
class _Plan:
    """One planned report and the data it reads."""

    spec: ReportSpec
    data: CrmData
    fingerprint: str
    snapshot: Path | None
    secret_names: tuple[str, ...]


# --------------------------------------------------------- output folder
def check_output_folder(out: Path | str) -> Path:
    """The resolved output folder, checked to be usable, or one clear error.

    The folder is not created here (a run refused for its parameters leaves
    nothing behind): an existing folder is probed with a temporary file, a
    missing one through its nearest existing parent.

    Raises
    ------
    ParamsError
        When ``out`` is a file, lies on a read-only file system or cannot be
        written (nothing has been loaded or executed).
    """
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ParamsError(f"The output folder '{path}' is a file; pass a folder with --out.")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ParamsError(f"The output folder '{path}' would be inside the file '{parent}'.")
    with contextlib.suppress(OSError, AttributeError):
        if os.statvfs(parent).f_flag & os.ST_RDONLY:
            raise ParamsError(
                f"The output folder '{path}' is on a read-only file system; pass a writable --out."
            )
    if parent != path:
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ParamsError(
                f"The output folder '{path}' cannot be created: '{parent}' is not writable."
            )
        return path
    try:
        fd, probe = tempfile.mkstemp(prefix=".kpireport-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ParamsError(
            f"The output folder '{path}' is not writable ({exc.strerror or exc}); "
            "pass a writable --out."
        ) from None
    return path


@contextlib.contextmanager
def output_lock(out_dir: Path, *, wait: bool = False, name: str = "run.lock") -> Iterator[Path]:
    """One run at a time per output folder (``<out>/.locks/run.lock``).

    A shard of a run takes its own lock (``shard-3-of-10.lock``): the shards of
    one pack write disjoint reports and may run at once into one folder.

    Raises
    ------
    OutputLockedError
        When another run holds the folder and ``wait`` is false (exit code 75).
    """
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")  # audit only

    def refuse(holder: str) -> Exception:
        return OutputLockedError(
            f"The output folder '{out_dir}' is in use by another kpireport run ({holder}); "
            "not starting a second run into it. Pass --wait to wait for it, or try again later."
        )

    def waiting(holder: str) -> None:
        log.warning("Waiting for the run that holds '%s' (%s).", out_dir, holder)

    with exclusive_lock(
        out_dir / ".locks" / name,
        f"pid {os.getpid()}, started {started}",
        refuse,
        wait=wait,
        on_wait=waiting,
    ) as path:
        yield path


def existing_collisions(specs: Sequence[ReportSpec], out_dir: Path) -> list[str]:
    """One sentence per planned report whose path holds another scope's published report."""
    problems = []
    for spec in specs:
        m = read_manifest(out_dir / f"{spec.report_id}.manifest.json")
        if not m:
            continue
        mine = (spec.scope, spec.scope_id, spec.period)
        theirs = (m.get("scope"), m.get("scope_id"), m.get("period"))
        if theirs != mine:
            scope = m.get("scope")
            who = (
                "the organisation"
                if scope == Scope.ORGANISATION
                else f"{scope} '{m.get('scope_name')}'"
            )
            problems.append(
                f"The report of {describe(spec)} would overwrite the published report of {who} "
                f"for {m.get('period')} (run '{m.get('run')}') at '{spec.report_id}'; "
                "make the output pattern distinct (include the scope and {period})."
            )
    return problems


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`RunInterruptedError` for the run (main thread only).

    The exception unwinds :func:`kpireport.report.execute.run_tasks`, which kills
    every report process with its kernel; the scratch folders are removed and
    nothing more is published.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        raise RunInterruptedError(
            f"The run was stopped by {name}; every report process and kernel was stopped "
            "and nothing more was published.",
            signum=signum,
        )

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _group_by_source(runs: Sequence[RunDef], source: Any) -> list[tuple[Any, list[RunDef]]]:
    if source is not None:
        return [(source, list(runs))]
    groups: dict[str | None, list[RunDef]] = {}
    for r in runs:
        groups.setdefault(r.source, []).append(r)
    return list(groups.items())


def _organisation(runs: Sequence[RunDef], spec: ReportSpec, data: CrmData) -> str:
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
        error=mask_secrets(error.get("message") if isinstance(error, dict) else error)
        if error
        else None,
        error_kind=FailureKind.parse(error.get("kind")) if isinstance(error, dict) else None,
        timings=dict(outcome.get("timings") or {}),
        outputs=dict(outcome.get("outputs") or {}),
        failed_path=outcome.get("failed_path"),
    )


def _prewarm(pdf: bool = True) -> None:
    """Load the heavy modules once (kept for callers; see :func:`kpireport.report.executors.prewarm`)."""
    prewarm(pdf)
