"""Where report tasks run: the local process pool or a Dask cluster, behind one interface.

See docs/SCALING.md.

Design decisions
----------------
* **One interface, one unit of work.** An executor gets the run's
  :class:`~kpireport.report.execute.Task` list and calls ``on_done(task,
  outcome)`` as each report finishes. The unit is the same on every backend:
  :func:`kpireport.report.execute.run_tasks` for one task, i.e. one report
  process (forked, with the kernel as its child) supervised by its caller.
  So every guarantee of the local runner holds on Dask too: the per-report
  wall-clock timeout and the kill of the report's process tree are enforced
  *on the worker*, right beside the kernel; the report process publishes
  through the one atomic publisher; failures are failed reports, never
  exceptions that stop the run.
* **Local** (the default) is today's pool: ``jobs`` report processes at once,
  forked from the run's process after the heavy modules are loaded. With
  ``warm`` (``--warm-kernels N``) N more report processes are started ahead
  of their turn and start their own kernel with the report modules imported
  (single use: one kernel per report, killed with it).
* **Dask** uses a ``distributed`` client: a scheduler address
  (``tcp://host:8786``) or, without one, a ``LocalCluster`` of ``jobs`` worker
  processes with one thread each. Workers that declare the resource
  ``kpireport=N`` (the LocalCluster's declare 1) count as N report slots,
  others as their threads; the run keeps no more reports in flight than
  there are slots, so a report waits in the run, not queued on a busy worker
  (where that worker's death would cost it an attempt it never started). Each
  worker loads the heavy modules once and forks its report processes from
  there. Workers must reach the output folder and the snapshot under the same
  paths as the run (a shared mount; see :func:`kpireport.report.snapshot.snapshot_root`).
* **Warm kernels on Dask** (``--warm-kernels N``): each worker keeps N
  reports waiting with their kernel started and the report modules imported,
  besides its report slots. The run keeps ``slots + N`` reports in flight per
  worker (the ``LocalCluster``'s workers get ``1 + N`` threads); a task on
  the worker starts its report process at once, which warms its kernel, and
  lets it go only when a report slot of the worker is free (a semaphore of
  the worker's ``kpireport`` resource), so its time limit counts from there.
  Kernels stay single use. A report whose worker dies while it waited for
  its turn had not started: it is submitted again without using its retry
  (the worker marks ``<scratch>.turn`` when a report's turn comes).
* **A lost worker costs one retry.** When a worker process dies under a
  report (out of memory, killed, its machine gone), Dask raises
  ``KilledWorker``; the report is submitted once more and, if its worker dies
  again, recorded as failed (``worker_lost``) in ``failed/`` by the run. The
  ``LocalCluster`` is started with ``allowed-failures: 0`` so that one retry
  is exactly one; a cluster you start yourself applies its own
  ``distributed.scheduler.allowed-failures`` before that.
* **Report processes under a daemonic worker.** Dask worker processes are
  daemonic by default and ``multiprocessing`` refuses children of daemonic
  processes. The ``LocalCluster`` is started with ``distributed.worker.daemon:
  False``; on a cluster whose workers are daemonic the flag is lifted for the
  moment of the fork (:func:`_allow_children`). That is safe here because a
  report process watches its parent (``PR_SET_PDEATHSIG`` and a ppid poll,
  :func:`kpireport.report.execute.watch_parent`): when the worker dies, the
  report process kills its kernel and exits.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kpireport.errors import FailureKind, ParamsError
from kpireport.report import execute

log = logging.getLogger("kpireport")

OnDone = Callable[[execute.Task, dict[str, Any]], None]

#: Dask worker resource: report slots of a worker (one report process per slot)
RESOURCE = "kpireport"

#: executor names accepted by ``kpireport run --executor``
EXECUTORS = ("local", "dask")


class LocalExecutor:
    """Today's process pool: at most ``jobs`` report processes forked from this process."""

    name = "local"

    def __init__(self, jobs: int | None = None, warm: int = 0) -> None:
        self.jobs = jobs or os.cpu_count() or 1
        self.warm = warm

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def run(self, tasks: Sequence[execute.Task], on_done: OnDone) -> None:
        """Produce every report; ``on_done`` is called as each finishes."""
        if not tasks:
            return
        prewarm(any("pdf" in t.spec.formats for t in tasks))
        execute.run_tasks(tasks, self.jobs, on_done, warm=self.warm)


class DaskExecutor:
    """Report tasks on a Dask ``distributed`` cluster (``scheduler`` address or a LocalCluster).

    Parameters
    ----------
    scheduler
        ``tcp://host:8786`` of a running scheduler; ``None`` starts a
        ``LocalCluster`` of ``jobs`` worker processes for the run.
    jobs
        Worker processes of the LocalCluster (default: CPU cores).
    retries
        Submissions after a report's worker died (default 1).
    """

    name = "dask"

    #: submissions of a report whose worker died before its turn came (warm kernels)
    not_started_retries = 3

    def __init__(
        self,
        scheduler: str | None = None,
        jobs: int | None = None,
        retries: int = 1,
        warm: int = 0,
    ) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ParamsError(
                "--executor dask needs Dask's distributed package: pip install 'kpireport[dask]'."
            ) from None
        self.scheduler = scheduler
        self.jobs = jobs or os.cpu_count() or 1
        self.retries = retries
        self.warm = max(0, warm)
        self.client: Any = None
        self.cluster: Any = None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None

    def start(self) -> None:
        """Connect (or start the LocalCluster) in the background; :meth:`run` waits for it.

        The runner calls this before it loads the data, so the cluster's
        start-up and the workers' :func:`prewarm` overlap the load, the
        checks and the snapshot. Idempotent.
        """
        if self._starting is not None:
            return
        if not log.isEnabledFor(logging.INFO):  # Dask's own INFO chatter only with -v
            for name in ("distributed", "dask"):
                logging.getLogger(name).setLevel(logging.WARNING)

        def connect() -> None:
            from distributed import Client

            try:
                if self.scheduler:
                    self.client = Client(self.scheduler, timeout="30s")
                else:
                    self.cluster = local_cluster(self.jobs, self.warm)
                    self.client = Client(self.cluster)
                # the heavy modules loaded on every worker before the first report arrives
                self.client.run(prewarm, True)
            except BaseException as exc:  # raised in run()
                self._start_error = exc

        self._starting = threading.Thread(target=connect, name="kpireport-dask-start", daemon=True)
        self._starting.start()

    def _ready(self) -> None:
        self.start()
        assert self._starting is not None
        self._starting.join()
        if self._start_error is not None:
            raise self._start_error

    def __enter__(self) -> DaskExecutor:
        self._ready()
        return self

    def close(self) -> None:
        """Close the client and the LocalCluster (after a start that is still under way too)."""
        self.__exit__()

    def __exit__(self, *exc: Any) -> None:
        if self._starting is not None:
            self._starting.join()
        with contextlib.suppress(Exception):
            if self.client is not None:
                self.client.close()
        with contextlib.suppress(Exception):
            if self.cluster is not None:
                self.cluster.close()
        self.client = self.cluster = None
        self._starting = self._start_error = None

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the cluster's workers (for tests and diagnostics)."""
        return list(self.client.run(os.getpid).values())

    def run(self, tasks: Sequence[execute.Task], on_done: OnDone) -> None:
        """Submit every report, retry those whose worker died, call ``on_done`` as they finish."""
        from distributed import wait
        from distributed.scheduler import KilledWorker

        if not tasks:
            return
        pdf = any("pdf" in t.spec.formats for t in tasks)
        pending: dict[Any, tuple[execute.Task, int, float]] = {}
        queue: list[tuple[execute.Task, int]] = [(t, 0) for t in tasks]
        early_deaths: dict[str, int] = {}  # report id → worker deaths before its turn
        warm = self.warm

        def capacity() -> int:
            """Reports in flight: each worker's slots (``kpireport`` resource, else threads),
            plus up to ``warm`` waiting with a warm kernel where the worker has the threads."""
            workers = self.client.scheduler_info(n_workers=-1).get("workers", {}).values()
            total = 0
            for w in workers:
                threads = int(w.get("nthreads", 1))
                slots = int((w.get("resources") or {}).get(RESOURCE, max(1, threads - warm)))
                total += slots + max(0, min(warm, threads - slots))
            return max(1, total)

        def submit(task: execute.Task, attempt: int) -> None:
            fut = self.client.submit(
                produce_on_worker, task, pdf, warm > 0,
                key=f"kpireport-{attempt}-{early_deaths.get(task.spec.report_id, 0)}-{task.spec.report_id}",
                pure=False, retries=0,
            )  # fmt: skip
            pending[fut] = (task, attempt, time.time())

        def fill() -> None:
            """Keep no more reports in flight than there are slots: none waits on a busy worker."""
            room = capacity() - len(pending)
            while queue and room > 0:
                submit(*queue.pop(0))
                room -= 1

        try:
            fill()
            while pending:
                done, _ = wait(list(pending), return_when="FIRST_COMPLETED")
                for fut in done:
                    task, attempt, started = pending.pop(fut)
                    outcome: dict[str, Any] | None = None
                    marker = turn_marker(task)
                    turned = marker.exists()
                    marker.unlink(missing_ok=True)
                    if fut.status == "finished":
                        outcome = fut.result()
                    else:
                        exc = fut.exception()
                        rid = task.spec.report_id
                        if (
                            isinstance(exc, KilledWorker)
                            and warm
                            and not turned
                            and early_deaths.get(rid, 0) < self.not_started_retries
                        ):  # it was waiting with a warm kernel: it never started
                            early_deaths[rid] = early_deaths.get(rid, 0) + 1
                            log.warning(
                                "The worker of %s died before its turn; submitting it again.", rid
                            )
                            queue.insert(0, (task, attempt))
                            fill()
                            continue
                        if isinstance(exc, KilledWorker) and attempt < self.retries:
                            log.warning(
                                "The worker of %s died; submitting it again.", task.spec.report_id
                            )
                            queue.insert(0, (task, attempt + 1))
                            fill()
                            continue
                        if isinstance(exc, KilledWorker):
                            kind, msg = (
                                FailureKind.WORKER_LOST,
                                f"The Dask worker running the report died {attempt + 1} times "
                                "(out of memory, killed or its machine lost); gave up.",
                            )
                        else:
                            kind, msg = FailureKind.INTERNAL, f"{type(exc).__name__}: {exc}"
                        outcome = execute._parent_failure(task, started, kind, msg)
                    on_done(task, outcome)
                fill()
        finally:  # stopped or failed: no report keeps running for this run
            if pending:
                roots = [str(t.work_root) for t, _, _ in pending.values()]
                for t, _, _ in pending.values():
                    with contextlib.suppress(OSError):
                        turn_marker(t).unlink(missing_ok=True)
                with contextlib.suppress(Exception):
                    self.client.cancel(list(pending), force=True)
                with contextlib.suppress(Exception):
                    self.client.run(stop_reports, roots)


def local_cluster(workers: int, warm: int = 0) -> Any:
    """A ``LocalCluster`` of ``workers`` processes with one report slot each, set up for reports.

    Each worker has ``1 + warm`` threads: one report slot (resource
    ``kpireport=1``) and ``warm`` reports waiting with a warm kernel.

    Worker processes may start report processes (not daemonic); a worker
    that dies under a report fails that attempt at once (``allowed-failures:
    0``, the run retries it once); a worker is given one report at a time
    (``worker-saturation: 1.0``); memory is the report processes', so the
    worker's own memory limit never terminates it; no dashboard port is opened.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set(
        {
            "distributed.worker.daemon": False,
            "distributed.scheduler.allowed-failures": 0,
            "distributed.scheduler.worker-saturation": 1.0,
            "distributed.worker.memory.terminate": False,
        }
    ):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1 + max(0, warm),
            processes=True,
            dashboard_address=":0",  # a free port, never a fixed 8787
            host="127.0.0.1",
            silence_logs=logging.ERROR,
            resources={RESOURCE: 1},
        )


def make_executor(
    name: str = "local", *, jobs: int | None = None, scheduler: str | None = None, warm: int = 0
) -> LocalExecutor | DaskExecutor:
    """The executor called ``name`` (``local`` or ``dask``).

    Raises
    ------
    ParamsError
        For an unknown name, or a scheduler address without ``dask``.
    """
    if name not in EXECUTORS:
        raise ParamsError(f"--executor '{name}' is not one of: {', '.join(EXECUTORS)}.")
    if warm < 0:
        raise ParamsError(f"--warm-kernels {warm}: give 0 or more kernels.")
    if name == "local":
        if scheduler:
            raise ParamsError("--scheduler needs --executor dask.")
        return LocalExecutor(jobs, warm)
    return DaskExecutor(scheduler, jobs, warm=warm)


def turn_marker(task: execute.Task) -> Path:
    """``<scratch>.turn``: written on the worker when a report's turn comes (warm kernels)."""
    return Path(str(task.work_root) + ".turn")


# ------------------------------------------------------------ on the worker
_WARM: dict[str, bool] = {}
#: one prewarm, one daemon-flag change and one slot semaphore at a time (worker threads)
_LOCK = threading.Lock()
_CHILDREN = {"allowed": 0, "was": None}
_SLOTS: dict[str, threading.Semaphore] = {}


def prewarm(pdf: bool = True) -> None:
    """Import and warm the heavy modules once per process so forked report processes share them.

    nbconvert's template is compiled and, with ``pdf``, WeasyPrint's fonts
    prepared (:func:`kpireport.report.render.prewarm`), instead of in every child.
    """
    key = f"pdf={pdf}"
    with _LOCK:
        if _WARM.get(key):
            return
        import papermill  # noqa: F401

        from kpireport.report import render

        render.prewarm(pdf)
        _WARM[key] = True


@contextlib.contextmanager
def _allow_children() -> Iterator[None]:
    """Let a daemonic worker process start report processes (see the module notes).

    Counted: with warm kernels several worker threads are inside at once, and
    the flag comes back only when the last one leaves.
    """
    config = mp.current_process()._config  # type: ignore[attr-defined]
    with _LOCK:
        if _CHILDREN["allowed"] == 0:
            _CHILDREN["was"] = config.get("daemon")
            config["daemon"] = False
        _CHILDREN["allowed"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _CHILDREN["allowed"] -= 1
            if _CHILDREN["allowed"] == 0 and _CHILDREN["was"] is not None:
                config["daemon"] = _CHILDREN["was"]


#: report processes running on this worker, by scratch folder
_RUNNING: dict[str, int] = {}
#: scratch folders of reports whose run was stopped
_STOPPED: set[str] = set()


def worker_slots() -> threading.Semaphore:
    """This worker's report slots: its ``kpireport`` resource (else 1), as a semaphore."""
    with _LOCK:
        if "slots" not in _SLOTS:
            n = 1
            with contextlib.suppress(Exception):
                from distributed import get_worker

                w = get_worker()
                resources = getattr(getattr(w, "state", None), "total_resources", None)
                n = int((resources or {}).get(RESOURCE, 1))
            _SLOTS["slots"] = threading.Semaphore(max(1, n))
        return _SLOTS["slots"]


def produce_on_worker(task: execute.Task, pdf: bool = True, warm: bool = False) -> dict[str, Any]:
    """Run on a Dask worker: produce one report in its own supervised process.

    With ``warm`` the report process starts at once and warms its kernel,
    and is let go when one of the worker's report slots is free
    (:func:`worker_slots`); its time limit counts from then.
    """
    import warnings

    prewarm(pdf)
    key = str(task.work_root)
    slots = worker_slots() if warm else None
    held: list[bool] = []

    def turn(_t: execute.Task) -> None:
        assert slots is not None
        slots.acquire()
        held.append(True)
        with contextlib.suppress(OSError):
            turn_marker(task).touch()

    try:
        with _allow_children(), warnings.catch_warnings():
            # the worker has threads; the report process only runs produce_report
            warnings.simplefilter("ignore", DeprecationWarning)
            return execute.run_tasks(
                [task], 1,
                on_start=lambda _t, pid: _RUNNING.__setitem__(key, pid),
                stopped=lambda _t: key in _STOPPED,
                warm=1 if warm else 0,
                turn=turn if warm else None,
            )[0]  # fmt: skip
    finally:
        if held and slots is not None:
            slots.release()
        _RUNNING.pop(key, None)
        _STOPPED.discard(key)


def stop_reports(work_roots: Sequence[str]) -> int:
    """On a worker: kill the report processes (and kernels) of these scratch folders.

    A stopped run calls this on every worker, because cancelling a Dask task
    does not stop a task that is already running. Returns how many were killed.
    """
    killed = 0
    for root in work_roots:
        pid = _RUNNING.pop(str(root), None)
        if pid is not None:
            _STOPPED.add(str(root))
            killed += bool(execute.kill_tree(pid))
    return killed
