"""Execute report notebooks with papermill, one process per report, and publish them.

Design decisions
----------------
* **One process per report, at most ``jobs`` at a time.** Each report runs in
  its own child process (``fork`` where available, so the parent's imports are
  shared; ``spawn`` elsewhere) that executes, renders and publishes it. Kernels
  of parallel reports never share a process, a working directory or an output
  file: every report gets its own scratch folder as the kernel's ``cwd``
  (figures or files a notebook writes land there), and nbclient allocates
  kernel ports per kernel.
* **Bounded time, no leaked kernels.** papermill gets a per-cell
  ``execution_timeout`` and a ``start_timeout``; the parent enforces a
  wall-clock ``report_timeout`` per report and, on expiry or when the child
  dies, kills the child *and all its descendants* (the kernel) with psutil.
  The child also kills any descendant left over after papermill returns.
* **Failed means failed.** A notebook that raises (papermill's
  ``PapermillExecutionError``), times out (``CellTimeoutError``), loses its
  kernel (``DeadKernelError``) or stops early is failed. Stopping early is the
  subtle case: ``sys.exit(0)`` or ``raise SystemExit`` in a cell does *not*
  raise in papermill (IPython catches it and the run "succeeds" with the rest
  of the notebook unexecuted), so :func:`check_complete` requires every
  non-empty code cell to have run and no cell to hold an error output.
  Failed notebooks go to ``<out>/failed/`` with an error cell on top naming the
  failing cell; nothing is published as HTML/PDF.
* **All or nothing.** A report's files are staged in its scratch folder and
  swapped in by :func:`kpireport.report.publish.commit_report` (manifest
  last); a failed swap restores the previous set and keeps the attempt, with
  its files, in ``failed/``.
* **A report process stops with its run.** :func:`watch_parent` turns SIGTERM
  and SIGINT into "kill the kernel, remove the scratch folder, exit" and, on
  Linux, asks for SIGTERM when the parent dies (``PR_SET_PDEATHSIG`` via
  ``ctypes``), with a parent-pid watch thread as a second line; publishing
  checks the parent is alive just before the manifest goes in. The parent
  kills every running report tree when it is stopped.
* **A kernel that fails to start is started once more.** jupyter_client
  picks a kernel's TCP ports by binding port 0 and releasing it; a kernel
  starting at the same moment in another report process can take the same
  port (papermill #511). Nothing has run then, so the start is retried
  (:data:`KERNEL_START_ATTEMPTS`).
* **Secrets stay out of kernels.** The child removes credential-like
  environment variables (and those the source names) from its environment
  before starting the kernel, which inherits it; every output is scanned for
  their values before publishing, and a hit fails the report (values are
  redacted in the failed copy).
"""

from __future__ import annotations

import contextlib
import html
import logging
import math
import multiprocessing as mp
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from kpireport.errors import (
    CellExecutionError,
    DeadKernelError,
    EarlyExitError,
    ExecutionError,
    FailureKind,
    IncompleteNotebookError,
    InternalReportError,
    KernelStartError,
    PublishError,
    RenderError,
    ReportStoppedError,
    ReportTimeoutError,
    SecretLeakError,
)
from kpireport.report.manifest import (
    MANIFEST_VERSION,
    output_entry,
    public_parameters,
    utc_iso,
    versions,
)
from kpireport.report.params import ReportSpec, secret_env_values
from kpireport.report.publish import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    commit_report,
    safe_csv,
)
from kpireport.secrets import mask_secrets

log = logging.getLogger("kpireport")

#: seconds the parent waits for a child to exit after it sent its result
_JOIN_GRACE = 30.0
#: kernel starts per report: a start that fails before any cell ran is retried
#: (ports chosen by jupyter_client can be taken by a simultaneous start; measured
#: by benchmarks/kernel_ports.py, see docs/SCALING.md)
KERNEL_START_ATTEMPTS = 2


@dataclass(frozen=True)
class Task:
    """Everything a child process needs to produce one report."""

    spec: ReportSpec
    out: Path
    work_root: Path
    fingerprint: str
    cache_key: str
    notebook_sha256: str
    meta: dict[str, str]
    secret_env: tuple[str, ...] = ()
    source_description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> Path:
        """Published path without extension (``<out>/<report_id>``)."""
        return self.out / self.spec.report_id

    @property
    def failed_base(self) -> Path:
        """Failed-copy path without extension (``<out>/failed/<report_id>``)."""
        return self.out / "failed" / self.spec.report_id


def paths(base: Path) -> dict[str, Path]:
    """Output files of a report, by kind."""
    b = str(base)
    return {
        "ipynb": Path(b + ".ipynb"),
        "html": Path(b + ".html"),
        "pdf": Path(b + ".pdf"),
        "kpis": Path(b + ".kpis.csv"),
        "manifest": Path(b + ".manifest.json"),
    }


# ---------------------------------------------------------------- process tree
def kill_tree(pid: int, include_parent: bool = True, timeout: float = 5.0) -> int:
    """Kill a process and all its descendants; return how many were signalled."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency
        if include_parent:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        return int(include_parent)
    try:
        proc = psutil.Process(pid)
        procs = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    if include_parent:
        procs.append(proc)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=timeout)
    return len(procs)


# ----------------------------------------------------------------- checks
def check_complete(nb: Any) -> ExecutionError | None:
    """Why an executed notebook is not complete, or ``None`` when it is.

    A notebook is complete when no cell holds an error output and every code
    cell with source has an execution count (``sys.exit`` before the last cell
    leaves the rest unexecuted without papermill raising).
    """
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                ename, evalue = o.get("ename", "Error"), o.get("evalue", "")
                if ename == "SystemExit":
                    return EarlyExitError(
                        f"The notebook stopped early (SystemExit) in cell {i}.",
                        cell_index=i, ename=ename,
                    )  # fmt: skip
                return CellExecutionError(
                    f"{ename}: {evalue}", cell_index=i, ename=ename, evalue=evalue
                )
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() and cell.get("execution_count") is None:
            return IncompleteNotebookError(
                f"The notebook stopped before cell {i} ran.", cell_index=i
            )
    return None


def failing_cell(nb: Any) -> int | None:
    """Index of the cell that failed or was running when execution stopped."""
    for i, cell in enumerate(nb.cells):
        status = (cell.get("metadata", {}).get("papermill") or {}).get("status")
        if cell.cell_type == "code" and status in ("failed", "running"):
            return i
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(
            o.get("output_type") == "error" for o in cell.get("outputs", [])
        ):
            return i
    for i, cell in enumerate(
        nb.cells
    ):  # started (nbclient timing) but never answered: the kernel died here
        timing = cell.get("metadata", {}).get("execution") or {}
        if (
            cell.cell_type == "code"
            and "iopub.status.busy" in timing
            and "shell.execute_reply" not in timing
        ):
            return i
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.strip() and cell.get("execution_count") is None:
            return i
    return None


def _classify(exc: BaseException) -> ExecutionError:
    """The :class:`~kpireport.errors.ExecutionError` for what papermill or nbclient raised."""
    from nbclient.exceptions import CellTimeoutError
    from nbclient.exceptions import DeadKernelError as NbDeadKernel
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return CellExecutionError(
            f"{exc.ename}: {exc.evalue}".strip(),
            ename=exc.ename, evalue=exc.evalue, exec_count=exc.exec_count,
        )  # fmt: skip
    if isinstance(exc, CellTimeoutError):
        first = str(exc).splitlines()[0] if str(exc) else ""
        return ReportTimeoutError(f"A cell exceeded the cell timeout: {first}")
    if isinstance(exc, NbDeadKernel):
        return DeadKernelError("The kernel died while executing the notebook.")
    if isinstance(exc, TimeoutError | RuntimeError) and "kernel" in str(exc).lower():
        return KernelStartError(f"The kernel did not start: {exc}")
    return ExecutionError(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------- publishing
def _scrub(text: str, secrets: dict[str, str]) -> str:
    for value in secrets.values():
        text = text.replace(value, "***")
    return text


def _find_secret(texts: Sequence[str], secrets: dict[str, str]) -> str | None:
    for name, value in secrets.items():
        if any(value in t for t in texts):
            return name
    return None


def manifest_for(
    task: Task,
    status: str,
    error: dict[str, Any] | None,
    timings: dict[str, float],
    started: float,
    finished: float,
    outputs: dict[str, Any],
) -> dict[str, Any]:
    """The manifest dict of one report."""
    spec = task.spec
    return {
        "manifest_version": MANIFEST_VERSION,
        "report": spec.report_id,
        "run": spec.run,
        "title": spec.title,
        "notebook": str(spec.notebook),
        "notebook_sha256": task.notebook_sha256,
        "scope": spec.scope,
        "scope_id": spec.scope_id,
        "scope_name": spec.scope_name,
        "period": spec.period,
        "as_of": spec.as_of,
        "language": spec.language,
        "formats": list(spec.formats),
        "parameters": public_parameters(spec.parameters),
        "data_fingerprint": task.fingerprint,
        "source": mask_secrets(task.source_description),
        "versions": versions(),
        "started_at": utc_iso(started),
        "finished_at": utc_iso(finished),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "status": status,
        "error": error,
        "outputs": outputs,
        "cache_key": task.cache_key,
    }


def publish_failed(
    task: Task,
    nb: Any | None,
    error: ExecutionError,
    timings: dict[str, float],
    started: float,
    secrets: dict[str, str] | None = None,
    keep: Sequence[str] = (),
) -> Path:
    """Keep a failed notebook in ``<out>/failed/`` with the error on top; publish nothing.

    ``keep`` names the kinds (``ipynb``, ``html``, ``pdf``, ``kpis``) of this
    attempt already moved to ``failed/`` (publishing failed); they are kept as
    they are and listed in the failed manifest (the error is in the manifest),
    other leftovers there are removed. Writing only the manifest matters when
    the disk is full.
    """
    import nbformat

    secrets = secrets or {}
    if nb is None:
        nb = nbformat.read(str(task.spec.notebook), as_version=4)
    idx = error.cell_index
    if idx is None:
        idx = error.cell_index = failing_cell(nb)
    if idx is not None and idx < len(nb.cells):
        error.cell_source = _scrub(nb.cells[idx].source, secrets)[:2000]
    error.message = mask_secrets(_scrub(str(error.message), secrets))[:4000]
    if error.evalue is not None:
        error.evalue = mask_secrets(_scrub(str(error.evalue), secrets))[:4000]
    where = f" in cell {idx}" if idx is not None else ""
    body = (
        f'<div class="kpireport-error"><strong>Report failed ({html.escape(error.kind)}){where}:</strong> '
        f"{html.escape(error.message)}"
    )
    if error.cell_source:
        body += f"<pre>{html.escape(error.cell_source)}</pre>"
    body += "</div>"
    cell = nbformat.v4.new_markdown_cell(body)
    cell.metadata["tags"] = ["kpireport-error"]
    nb.cells.insert(0, cell)
    record = error.to_dict()
    if idx is not None:
        record["cell_index_in_failed_copy"] = idx + 1
    files = paths(task.failed_base)
    if "ipynb" not in keep or not files["ipynb"].is_file():  # else: the attempt's own notebook
        atomic_write_text(files["ipynb"], _scrub(nbformat.writes(nb), secrets))
    outputs = {"ipynb": output_entry(files["ipynb"], task.out)}
    for kind, f in files.items():  # the attempt's other files (a failed publish moved them here)
        if kind in ("ipynb", "manifest") or not f.is_file():
            continue
        if kind in (keep or ()):
            outputs[kind] = output_entry(f, task.out)
        else:  # left by an earlier attempt: not part of this one
            with contextlib.suppress(OSError):
                f.unlink()
    manifest = manifest_for(task, "failed", record, timings, started, time.time(), outputs)
    atomic_write_json(files["manifest"], manifest)
    return files["ipynb"]


def produce_report(
    task: Task,
    km: Any | None = None,
    secrets: dict[str, str] | None = None,
    warm_timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Execute, check, render and publish one report (runs in a child process).

    ``km`` is a kernel already started for this report (:func:`warm_kernel`);
    it is used once, for the first attempt, and killed with this process's
    other children. Without one the report starts its own the same way, so
    the timings split ``kernel`` (start until ready), ``imports`` (the report
    modules) and ``execute`` (the notebook's cells); ``warm_timings`` are
    those of a kernel started ahead of the report's turn (recorded as
    ``kernel_ahead`` / ``imports_ahead``: off the report's critical path).
    ``secrets`` are the secret values read before the environment was
    cleaned for it.

    Returns
    -------
    dict
        ``report_id, status ("success"|"failed"), error, timings, outputs, failed_path``.
    """
    import nbformat
    import papermill

    from kpireport.report.render import to_html, to_pdf

    spec = task.spec
    started = time.time()
    timings: dict[str, float] = {}
    secrets = clean_environment(task) if secrets is None else secrets
    scratch = task.work_root  # unique per report (made by the runner)
    scratch.mkdir(parents=True, exist_ok=True)
    executed = scratch / "executed.ipynb"
    result: dict[str, Any] = {"report_id": spec.report_id, "timings": timings, "outputs": {}}

    def fail(error: ExecutionError, nb: Any | None) -> dict[str, Any]:
        path = publish_failed(task, nb, error, timings, started, secrets)
        result.update(status="failed", error=error.to_dict(), failed_path=str(path))
        return result

    error: ExecutionError | None = None
    if km is not None and not _alive(km):  # it died while waiting: a fresh one
        km = None
    if km is not None:
        timings.update({f"{k}_ahead": v for k, v in (warm_timings or {}).items()})
    else:  # started here, timed apart from the cells; papermill starts one if this fails
        km = warm_kernel(task, timings)
    t0 = time.perf_counter()
    for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
        error = None
        warm = {"km": km} if km is not None and attempt == 1 else {}
        try:
            papermill.execute_notebook(
                str(spec.notebook),
                str(executed),
                parameters=spec.parameters,
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                report_mode=True,
                cwd=str(scratch),
                execution_timeout=spec.cell_timeout,
                # papermill's client takes whole seconds (a float fails every report)
                start_timeout=max(1, math.ceil(spec.start_timeout)),
                **warm,
            )
        except Exception as exc:  # every execution fault is a failed report
            error = _classify(exc)
        finally:
            kill_tree(os.getpid(), include_parent=False)
        if not isinstance(error, KernelStartError):
            break
        # the kernel never started (no cell ran): a zmq port taken between
        # jupyter_client choosing it and the kernel binding it (papermill #511)
        error.attempts = attempt
        log.warning("The kernel of %s did not start (attempt %d).", spec.report_id, attempt)
    timings["execute"] = time.perf_counter() - t0
    nb = None
    if executed.exists():
        with contextlib.suppress(Exception):
            nb = nbformat.read(str(executed), as_version=4)
    if error is None and nb is None:
        error = ExecutionError("papermill wrote no executed notebook.")
    if error is None:
        error = check_complete(nb)
    if error is not None:
        out = fail(error, nb)
        shutil.rmtree(scratch, ignore_errors=True)
        return out

    try:
        t0 = time.perf_counter()
        page = to_html(nb, task.meta)
        timings["html"] = time.perf_counter() - t0
        pdf = None
        if "pdf" in spec.formats:
            t0 = time.perf_counter()
            pdf = to_pdf(page, base_url=scratch)
            timings["pdf"] = time.perf_counter() - t0
    except Exception as exc:
        err = exc if isinstance(exc, RenderError) else RenderError(str(exc))
        out = fail(err, nb)
        shutil.rmtree(scratch, ignore_errors=True)
        return out

    nb_text = nbformat.writes(nb)
    leaked = _find_secret([nb_text, page], secrets)
    if leaked:
        out = fail(
            SecretLeakError(
                "The report output contains the value of the secret environment variable "
                f"{leaked}; nothing was published."
            ),
            nb,
        )
        shutil.rmtree(scratch, ignore_errors=True)
        return out

    outcome = publish_report(task, nb, nb_text, page, pdf, timings, started, secrets)
    result.update(outcome)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def clean_environment(task: Task) -> dict[str, str]:
    """Remove secrets and ``MPLBACKEND`` from this process's environment; return the secrets.

    Kernels inherit the environment of the report process that starts them.
    """
    secrets = secret_env_values(task.secret_env)
    for name in secrets:
        os.environ.pop(name, None)
    # a batch-friendly MPLBACKEND=Agg in the caller's environment would reach the
    # kernel and silently drop every inline chart from the report
    os.environ.pop("MPLBACKEND", None)
    return secrets


#: run silently in a pre-warmed kernel: loads the report modules, leaves no name behind
WARM_CODE = """\
import importlib as _kpireport_importlib
for _kpireport_module in ("numpy", "pandas", "matplotlib.pyplot", "kpireport",
                          "kpireport.report.views", "kpireport.report.record"):
    try:
        _kpireport_importlib.import_module(_kpireport_module)
    except ImportError:
        pass
del _kpireport_importlib, _kpireport_module
"""


def warm_kernel(task: Task, timings: dict[str, float] | None = None) -> Any | None:
    """Start this report's kernel now, in its scratch folder, with the report modules imported.

    Called in the report process after :func:`clean_environment`: while it
    waits for its turn (``warm`` in :func:`run_tasks`) or when its turn has
    come; the kernel is this process's child, used by one report and killed
    with it. ``timings`` receives ``kernel`` (start until ready) and
    ``imports`` seconds. ``None`` when it does not start (papermill then
    starts one, with the retry of :data:`KERNEL_START_ATTEMPTS`).

    An *async* kernel manager, as papermill's own: nbclient notices a kernel
    that dies while a cell runs only through it (with a blocking
    ``KernelManager`` the report waited for its time limit instead).
    """
    import asyncio

    from jupyter_client.manager import AsyncKernelManager

    km = None
    try:
        t0 = time.perf_counter()
        task.work_root.mkdir(parents=True, exist_ok=True)
        km = AsyncKernelManager(kernel_name="python3")
        asyncio.run(km.start_kernel(cwd=str(task.work_root)))
        kc = km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=max(1, math.ceil(task.spec.start_timeout)))
            t1 = time.perf_counter()
            kc.execute_interactive(
                WARM_CODE,
                silent=True,
                store_history=False,
                timeout=120,
                output_hook=lambda _m: None,
            )
            if timings is not None:
                timings.update(kernel=t1 - t0, imports=time.perf_counter() - t1)
        finally:
            kc.stop_channels()
        return km
    except Exception as exc:
        log.warning("Starting the kernel of %s failed: %s", task.spec.report_id, exc)
        if km is not None:
            with contextlib.suppress(Exception):
                asyncio.run(km.shutdown_kernel(now=True))
        return None


def _alive(km: Any) -> bool:
    import asyncio
    import inspect

    with contextlib.suppress(Exception):
        alive = km.is_alive()
        return bool(asyncio.run(alive) if inspect.isawaitable(alive) else alive)
    return False


def publish_report(
    task: Task,
    nb: Any,
    nb_text: str,
    page: str,
    pdf: bytes | None,
    timings: dict[str, float],
    started: float,
    secrets: dict[str, str],
) -> dict[str, Any]:
    """Publish one checked report as a unit: stage every file, then swap them in.

    The one publisher: every successful report goes through here. Staging
    writes the files completely in the report's scratch folder;
    :func:`~kpireport.report.publish.commit_report` swaps them in, manifest
    last. When staging fails (disk full) the published report is untouched;
    when the swap fails the previous set is restored. Either way the
    attempt's files that were written are kept in ``failed/`` with a failed
    manifest. When the run's parent is gone, nothing is published or kept.

    Returns
    -------
    dict
        ``status``, ``error``, ``outputs`` (kind → relative path) and
        ``failed_path`` for the report's result.
    """
    from kpireport.report.record import extract_kpis

    spec = task.spec
    t0 = time.perf_counter()
    files, failed_files = paths(task.base), paths(task.failed_base)
    stage = task.work_root / "stage"
    staged: dict[str, Path] = {}
    try:  # every file complete before anything published changes
        stage.mkdir(parents=True, exist_ok=True)
        staged["ipynb"] = atomic_write_text(stage / "ipynb", nb_text)
        if "html" in spec.formats:
            staged["html"] = atomic_write_text(stage / "html", page)
        if pdf is not None:
            staged["pdf"] = atomic_write_bytes(stage / "pdf", pdf)
        kpis = extract_kpis(nb)
        if kpis is not None:
            staged["kpis"] = safe_csv(kpis, stage / "kpis")
        outputs = {k: output_entry(files[k], task.out, content=f) for k, f in staged.items()}
        timings["publish"] = time.perf_counter() - t0
        manifest = manifest_for(task, "success", None, timings, started, time.time(), outputs)
        staged["manifest"] = atomic_write_json(stage / "manifest", manifest)
    except OSError as exc:  # disk full while staging: the published report is untouched
        moved = []
        if "ipynb" not in staged:  # papermill's own copy, moved (a rename needs no space)
            staged["ipynb"] = task.work_root / "executed.ipynb"
        for kind, f in staged.items():
            with contextlib.suppress(OSError):
                failed_files[kind].parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, failed_files[kind])
                moved.append(kind)
        message = (
            f"Writing the report's files failed ({exc.strerror or exc}); "
            "the previous report was kept."
        )
        return _kept_failed(task, nb, moved, message, timings, started, secrets)
    try:
        _parent_alive()
        with _signals_held():  # a stop signal waits until the swap is complete or undone
            commit_report(staged, files, failed_files, before_commit=_parent_alive)
    except ParentGoneError:
        _stop_report(task, signal.SIGTERM)
    except PublishError as exc:
        if isinstance(exc.__cause__, ParentGoneError):  # nothing of this attempt is kept
            for f in failed_files.values():
                with contextlib.suppress(OSError):
                    f.unlink()
            _stop_report(task, signal.SIGTERM)
        moved = [k for k in staged if k != "manifest" and failed_files[k].is_file()]
        return _kept_failed(task, nb, moved, str(exc), timings, started, secrets)
    for f in failed_files.values():  # an earlier failed attempt is history now
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    return {
        "status": "success",
        "error": None,
        "outputs": {k: v["path"] for k, v in outputs.items()},
    }


def _kept_failed(
    task: Task,
    nb: Any,
    moved: list[str],
    message: str,
    timings: dict[str, float],
    started: float,
    secrets: dict[str, str],
) -> dict[str, Any]:
    """The outcome of a failed publish; the attempt's files ``moved`` to ``failed/`` are listed."""
    error = PublishError(message)
    path = None
    try:
        path = publish_failed(task, nb, error, timings, started, secrets, keep=moved)
    except OSError as exc:  # the disk is still full
        log.error("Could not keep the failed report %s: %s", task.spec.report_id, exc)
    return {
        "status": "failed", "error": error.to_dict(), "failed_path": str(path) if path else None
    }  # fmt: skip


# ------------------------------------------------------- parent and signals
#: pid of the run's parent process, set in each report process
_PARENT: dict[str, Any] = {}

#: Linux ``prctl`` option: signal this process when its parent dies
_PR_SET_PDEATHSIG = 1


class ParentGoneError(Exception):
    """The run's parent process is gone: nothing may be published."""


def _parent_alive() -> None:
    """Raise :class:`ParentGoneError` when the process that started this report has exited."""
    parent = _PARENT.get("pid")
    if parent is not None and os.getppid() != parent:
        raise ParentGoneError("the run's parent process is gone; nothing was published")


@contextlib.contextmanager
def _signals_held() -> Any:
    """Defer SIGTERM/SIGINT for the block (a few renames), then deliver them."""
    stops = {signal.SIGTERM, signal.SIGINT}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    except (AttributeError, ValueError, OSError):  # no signal masks: run unprotected
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _stop_report(task: Task, signum: int) -> None:
    """Stop this report process now: kill its kernel, remove its scratch folder, exit."""
    with contextlib.suppress(Exception):
        kill_tree(os.getpid(), include_parent=False, timeout=2.0)
    shutil.rmtree(task.work_root, ignore_errors=True)
    os._exit(128 + signum)


def watch_parent(task: Task, parent_pid: int) -> None:
    """Make this report process stop when the run's parent stops.

    * SIGTERM and SIGINT stop the report at once: its kernel is killed, its
      scratch folder removed, nothing is published.
    * On Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` sends that SIGTERM when the
      parent dies, even by ``kill -9``; elsewhere (and as a second line) a
      thread polls ``os.getppid()`` twice a second. Publishing checks once
      more that the parent is alive just before the manifest goes in.
    """
    import threading

    _PARENT["pid"] = parent_pid
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda n, _f: _stop_report(task, n))
    if hasattr(signal, "pthread_sigmask"):  # the parent holds stops while it forks
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the watch was set
        _stop_report(task, signal.SIGTERM)

    def poll() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=poll, name="kpireport-parent-watch", daemon=True).start()


# --------------------------------------------------------------- the pool
def _quiet_kernel_output(task: Task) -> None:
    """Send this report process's stdout/stderr (and so its kernel's) to ``kernel.log``.

    A Jupyter kernel writes its own chatter ("running over TCP without
    encryption", "KeyboardInterrupt caught in kernel") to the stderr it
    inherits; in a batch that floods the user's terminal. The notebook's own
    outputs travel over the kernel protocol and are unaffected; the log stays
    in the report's scratch folder for debugging.
    """
    with contextlib.suppress(OSError):
        task.work_root.mkdir(parents=True, exist_ok=True)
        fd = os.open(task.work_root / "kernel.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def _child(task: Task, conn: Any, parent_pid: int, go: Any = None) -> None:
    watch_parent(task, parent_pid)
    _quiet_kernel_output(task)
    try:
        km = secrets = None
        ahead: dict[str, float] = {}
        if go is not None:  # pre-warmed: start the kernel now, run when the parent says go
            secrets = clean_environment(task)
            km = warm_kernel(task, ahead)
            go.recv()
        outcome = produce_report(task, km=km, secrets=secrets, warm_timings=ahead)
    except BaseException as exc:  # report the crash instead of dying silently
        outcome = {
            "report_id": task.spec.report_id,
            "status": "failed",
            "timings": {},
            "outputs": {},
            "error": InternalReportError(mask_secrets(f"{type(exc).__name__}: {exc}")).to_dict(),
        }
    finally:
        kill_tree(os.getpid(), include_parent=False)
    try:
        conn.send(outcome)
    finally:
        conn.close()


def _context() -> Any:
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def run_tasks(
    tasks: Sequence[Task],
    jobs: int,
    on_done: Callable[[Task, dict[str, Any]], None] | None = None,
    on_start: Callable[[Task, int], None] | None = None,
    stopped: Callable[[Task], bool] | None = None,
    warm: int = 0,
    turn: Callable[[Task], None] | None = None,
) -> list[dict[str, Any]]:
    """Produce every report, ``jobs`` at a time, each in its own process.

    Parameters
    ----------
    tasks
        The reports to produce.
    jobs
        Maximum number of reports executing at once.
    on_done
        Called in the parent with ``(task, outcome)`` as each report finishes.
    on_start
        Called with ``(task, pid)`` when a report process has started.
    stopped
        ``stopped(task)`` is true when the report's process was killed because
        its run was stopped (a Dask worker, :mod:`kpireport.report.executors`):
        no failed copy is kept.
    warm
        Report processes started ahead of their turn, each starting its own
        kernel with the report modules imported (:func:`warm_kernel`) and
        waiting; a report's time limit counts from its turn. 0 (default):
        each report starts its kernel when its turn comes.
    turn
        With ``warm``: called (and may block) before a waiting report is let
        go, e.g. until a report slot of its Dask worker is free
        (:func:`kpireport.report.executors.produce_on_worker`).

    Returns
    -------
    list[dict]
        One outcome per task, in task order.
    """
    ctx = _context()
    pending = list(enumerate(tasks))
    running: dict[Any, tuple[int, Task, Any, float, float]] = {}
    #: started ahead of their turn (``warm``): (i, task, proc, result pipe, go pipe)
    waiting: list[tuple[int, Task, Any, Any, Any]] = []
    outcomes: dict[int, dict[str, Any]] = {}
    jobs = max(1, jobs)

    def spawn(i: int, task: Task, ahead: bool) -> tuple[int, Task, Any, Any, Any]:
        recv, send = ctx.Pipe(duplex=False)
        go_recv, go_send = ctx.Pipe(duplex=False) if ahead else (None, None)
        proc = ctx.Process(
            target=_child, args=(task, send, os.getpid(), go_recv), name=f"kpireport-{i}"
        )
        with _signals_held():  # a stop signal lands after the child is on the books
            proc.start()
            waiting.append((i, task, proc, recv, go_send))
            if on_start is not None:
                on_start(task, proc.pid)
        send.close()
        if go_recv is not None:
            go_recv.close()
        return waiting[-1]

    def release(entry: tuple[int, Task, Any, Any, Any]) -> None:
        i, task, proc, recv, go_send = entry
        waiting.remove(entry)
        if go_send is not None:
            if turn is not None:
                turn(task)
            try:
                go_send.send(True)
                go_send.close()
            except OSError:  # it died while waiting (its kernel with it): start it afresh
                if stopped is not None and stopped(task):  # killed by a stop: not again
                    running[recv] = (i, task, proc, time.time(), time.monotonic())
                    return
                kill_tree(proc.pid)
                recv.close()
                release(spawn(i, task, False))
                return
        running[recv] = (i, task, proc, time.time(), time.monotonic() + task.spec.report_timeout)

    def fill() -> None:
        while waiting and len(running) < jobs:
            release(waiting[0])
        while pending and len(running) + len(waiting) < jobs + max(0, warm):
            i, task = pending.pop(0)
            entry = spawn(i, task, warm > 0)
            if len(running) < jobs:
                release(entry)

    try:
        while pending or running or waiting:
            fill()
            now = time.monotonic()
            next_deadline = min(d for *_, d in running.values())
            wait(list(running), timeout=max(0.05, next_deadline - now))
            for conn in list(running):
                i, task, proc, started, deadline = running[conn]
                outcome: dict[str, Any] | None = None
                finished = False
                if conn.poll():
                    try:
                        outcome = conn.recv()
                    except (EOFError, OSError):
                        outcome = None
                    finished = True
                elif time.monotonic() >= deadline:
                    kill_tree(proc.pid)
                    outcome = _parent_failure(
                        task,
                        started,
                        FailureKind.TIMEOUT,
                        f"The report exceeded its time limit of {task.spec.report_timeout:g} s and was stopped.",
                    )
                    finished = True
                if not finished:
                    continue
                proc.join(_JOIN_GRACE)
                if proc.is_alive():
                    kill_tree(proc.pid)
                    proc.join(5)
                if outcome is None and stopped is not None and stopped(task):
                    # its run was stopped: nothing is published or kept, as when the run's
                    # own process kills its reports
                    shutil.rmtree(task.work_root, ignore_errors=True)
                    outcome = {
                        "report_id": task.spec.report_id, "status": "failed", "outputs": {},
                        "timings": {}, "error": ReportStoppedError("The run was stopped.").to_dict(),
                    }  # fmt: skip
                if outcome is None:
                    code = proc.exitcode
                    outcome = _parent_failure(
                        task,
                        started,
                        FailureKind.CRASH,
                        f"The report process died (exit code {code}).",
                    )
                conn.close()
                del running[conn]
                outcomes[i] = outcome
                if on_done is not None:
                    on_done(task, outcome)
    finally:  # stopped (signal, error): no report process or kernel outlives the run
        for conn, (_, task, proc, _, _) in running.items():
            if proc.pid is not None:
                kill_tree(proc.pid)
            conn.close()
            shutil.rmtree(task.work_root, ignore_errors=True)
        for _, task, proc, conn, go_send in waiting:
            if proc.pid is not None:
                kill_tree(proc.pid)
            conn.close()
            if go_send is not None:
                go_send.close()
            shutil.rmtree(task.work_root, ignore_errors=True)
    return [outcomes[i] for i in range(len(tasks))]


def _parent_failure(task: Task, started: float, kind: FailureKind, message: str) -> dict[str, Any]:
    """Record a report the parent had to stop (timeout) or that crashed."""
    import nbformat

    error = ExecutionError.of_kind(kind, message)
    nb = None
    # papermill saves the notebook as cells complete: keep what there is
    candidate = task.work_root / "executed.ipynb"
    if candidate.exists():
        with contextlib.suppress(Exception):
            nb = nbformat.read(str(candidate), as_version=4)
    timings = {"execute": time.time() - started}
    try:
        path = publish_failed(task, nb, error, timings, started, secret_env_values(task.secret_env))
    except Exception as exc:  # pragma: no cover - disk full etc.
        log.error("Could not keep the failed report %s: %s", task.spec.report_id, exc)
        path = None
    shutil.rmtree(task.work_root, ignore_errors=True)
    return {
        "report_id": task.spec.report_id,
        "status": "failed",
        "error": error.to_dict(),
        "timings": timings,
        "outputs": {},
        "failed_path": str(path) if path else None,
    }
