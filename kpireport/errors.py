"""One exception root for kpireport, one subclass per pipeline stage.

Every error carries the structured facts a user needs to fix the problem
(table, column, rows, cell, ...) and renders as one clear sentence per problem.
The CLI prints ``str(error)`` and exits non-zero; it never shows a traceback for
a :class:`KpiReportError` unless ``KPIREPORT_DEBUG=1`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeVar


class KpiReportError(Exception):
    """Root of every error kpireport raises on purpose.

    Parameters
    ----------
    message
        One sentence that says what is wrong.
    hint
        Optional sentence that says how to fix it.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


@dataclass(frozen=True)
class Problem:
    """One data-contract finding: where it is and why it is wrong.

    ``rows`` holds the first offending row numbers as a user sees them in the
    file (1-based data rows, header excluded) and ``ids`` the matching ids when
    the table has an id column.
    """

    table: str
    reason: str
    column: str | None = None
    rows: Sequence[int] = field(default_factory=tuple)
    ids: Sequence[str] = field(default_factory=tuple)
    count: int = 0
    severity: str = "error"  # "error" or "warning"
    source: str | None = None

    def sentence(self, max_items: int = 5) -> str:
        """Render the problem as one sentence naming table, column and rows."""
        where = f"table '{self.table}'"
        if self.source:
            where = f"{self.source}: {where}"
        if self.column:
            where += f", column '{self.column}'"
        detail = ""
        if self.rows:
            shown = ", ".join(str(r) for r in list(self.rows)[:max_items])
            n = self.count or len(self.rows)
            more = f" and {n - max_items} more" if n > max_items else ""
            label = "row" if n == 1 else "rows"
            detail = f" ({n} {label}: {shown}{more}"
            if self.ids:
                detail += "; ids " + ", ".join(str(i) for i in list(self.ids)[:max_items])
            detail += ")"
        return f"{where}: {self.reason}{detail}."


class DataContractError(KpiReportError):
    """The source does not satisfy the data contract (docs/DATA.md).

    Carries every problem found, so a user fixes them all in one go.
    """

    def __init__(self, problems: Sequence[Problem], *, warnings: Sequence[Problem] = ()) -> None:
        self.problems = list(problems)
        self.warnings = list(warnings)
        n = len(self.problems)
        head = f"The data has {n} problem{'s' if n != 1 else ''}:"
        body = "\n".join("  - " + p.sentence() for p in self.problems)
        super().__init__(f"{head}\n{body}")


class SourceError(KpiReportError):
    """A source cannot be found, opened or mapped (file, workbook, database, YAML)."""


class PeriodError(KpiReportError):
    """A period label cannot be parsed or resolved (docs/PERIODS.md)."""

    exit_code = 2


class KpiError(KpiReportError):
    """An unknown KPI, or a KPI that cannot be computed for this request."""


class GoalError(KpiReportError):
    """A goal definition is invalid (unknown KPI, scope, scope id or period)."""


class ForecastError(KpiReportError):
    """A forecast request is invalid (not raised for hard series: those fall back)."""


class ParamsError(KpiReportError):
    """A run definition or its parameters are invalid; nothing was executed."""

    exit_code = 2


class FailureKind(StrEnum):
    """Why a report failed: the ``error.kind`` of its manifest and history row.

    The value is the string written to manifests, ``history.sqlite`` and the
    CLI, so outputs of earlier versions read the same. :attr:`transient` says
    whether the fault is in the machinery (a rebuild may succeed: the
    scheduler retries it) rather than in the notebook or the data.
    """

    EXCEPTION = "exception"  # a cell raised
    EARLY_EXIT = "early_exit"  # sys.exit / SystemExit in a cell
    INCOMPLETE = "incomplete"  # a code cell never ran
    TIMEOUT = "timeout"  # a cell or the whole report exceeded its time limit
    DEAD_KERNEL = "dead_kernel"  # the kernel died while executing
    KERNEL_START = "kernel_start"  # the kernel did not start
    EXECUTION = "execution"  # papermill failed otherwise
    RENDER = "render"  # executed, but not rendered to HTML/PDF
    SECRET = "secret"  # an output holds a secret's value
    PUBLISH = "publish"  # swapping the files in failed
    INTERNAL = "internal"  # the report process raised outside the notebook
    CRASH = "crash"  # the report process died
    WORKER_LOST = "worker_lost"  # the Dask worker died on every attempt
    STOPPED = "stopped"  # the run was stopped

    @property
    def transient(self) -> bool:
        """True when rebuilding the report may succeed (the scheduler retries it)."""
        return self in _TRANSIENT

    @classmethod
    def parse(cls, value: Any) -> FailureKind | None:
        """The kind named by ``value`` (a manifest's string), ``None`` when unknown or empty."""
        try:
            return cls(value) if value else None
        except ValueError:
            return None


_TRANSIENT = frozenset({FailureKind.DEAD_KERNEL, FailureKind.KERNEL_START, FailureKind.INTERNAL})


class ExecutionError(KpiReportError):
    """A report failed while executing, rendering or publishing.

    Modelled on papermill's ``PapermillExecutionError``: it carries the
    failing cell's index and the notebook exception's name and value, and its
    class says why (:attr:`kind`, a :class:`FailureKind`). Each kind has one
    subclass (:meth:`of_kind`); :meth:`to_dict` is the manifest's ``error``.

    Parameters
    ----------
    message
        One sentence that says what went wrong.
    cell_index
        Index of the failing cell in the notebook, when known.
    cell_source
        That cell's source (secrets redacted), for the failed copy and manifest.
    ename, evalue
        Name and value of the exception raised in the notebook, when one was.
    exec_count
        Execution count of the failing cell (papermill's).
    attempts
        Kernel starts tried (kernel-start failures).
    """

    kind: ClassVar[FailureKind] = FailureKind.EXECUTION
    _by_kind: ClassVar[dict[FailureKind, type[ExecutionError]]] = {}

    def __init__(
        self,
        message: str,
        *,
        cell_index: int | None = None,
        ename: str | None = None,
        evalue: str | None = None,
        exec_count: int | None = None,
        attempts: int | None = None,
        cell_source: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.cell_index = cell_index
        self.cell_source = cell_source
        self.ename = ename
        self.evalue = evalue
        self.exec_count = exec_count
        self.attempts = attempts

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:  # the first class declaring a kind owns it
            ExecutionError._by_kind.setdefault(cls.kind, cls)

    @property
    def transient(self) -> bool:
        """True when rebuilding the report may succeed."""
        return self.kind.transient

    @classmethod
    def of_kind(cls, kind: FailureKind | str, message: str, **facts: Any) -> ExecutionError:
        """An error of the subclass for ``kind`` (the base class for an unknown one)."""
        k = FailureKind.parse(kind) or FailureKind.EXECUTION
        return cls._by_kind.get(k, ExecutionError)(message, **facts)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``error``: ``kind`` (the enum's value), ``message`` and the known facts."""
        out: dict[str, Any] = {"kind": self.kind.value, "message": self.message}
        for key in ("cell_index", "cell_source", "ename", "evalue", "exec_count", "attempts"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


ExecutionError._by_kind[FailureKind.EXECUTION] = ExecutionError


class CellExecutionError(ExecutionError):
    """A notebook cell raised (papermill's ``PapermillExecutionError``)."""

    kind = FailureKind.EXCEPTION


class EarlyExitError(ExecutionError):
    """A cell called ``sys.exit`` or raised ``SystemExit``: the rest did not run."""

    kind = FailureKind.EARLY_EXIT


class IncompleteNotebookError(ExecutionError):
    """A code cell never ran, though papermill reported success."""

    kind = FailureKind.INCOMPLETE


class ReportTimeoutError(ExecutionError):
    """A cell exceeded ``cell_timeout`` or the report exceeded ``report_timeout``."""

    kind = FailureKind.TIMEOUT


class DeadKernelError(ExecutionError):
    """The kernel died while executing the notebook (transient)."""

    kind = FailureKind.DEAD_KERNEL


class KernelStartError(ExecutionError):
    """The kernel did not start (transient)."""

    kind = FailureKind.KERNEL_START


class SecretLeakError(ExecutionError):
    """A report output holds the value of a secret environment variable."""

    kind = FailureKind.SECRET


class PublishError(ExecutionError):
    """Swapping a report's files in failed; the previous set was restored."""

    kind = FailureKind.PUBLISH


class InternalReportError(ExecutionError):
    """The report process raised outside the notebook (transient)."""

    kind = FailureKind.INTERNAL


class ReportCrashError(ExecutionError):
    """The report process died without a result."""

    kind = FailureKind.CRASH


class WorkerLostError(ExecutionError):
    """The Dask worker running the report died on every attempt."""

    kind = FailureKind.WORKER_LOST


class ReportStoppedError(ExecutionError):
    """The run was stopped while the report was running."""

    kind = FailureKind.STOPPED


class OutputLockedError(ExecutionError):
    """Another ``kpireport run`` holds the lock of the output folder."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class RunInterruptedError(ExecutionError):
    """The run was stopped by SIGTERM or SIGINT; every report process was stopped."""

    exit_code = 143

    def __init__(self, message: str, signum: int = 15) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class RenderError(ExecutionError):
    """A notebook executed but could not be rendered to HTML or PDF."""

    kind = FailureKind.RENDER


class ScheduleError(KpiReportError):
    """A schedule file (``params/schedules.yaml``) or a scheduled job is invalid."""

    exit_code = 2


class ScheduleLockedError(ScheduleError):
    """Another process is already running the same scheduled job for the same period."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class DeliveryError(KpiReportError):
    """An e-mail could not be delivered (SMTP refused, authentication failed, ...)."""


_E = TypeVar("_E", bound=StrEnum)


def parse_choice(enum: type[_E], value: object, noun: str, error: type[KpiReportError]) -> _E:
    """``value`` as a member of ``enum`` (case and surrounding spaces ignored).

    An unknown value raises ``error`` in one sentence that lists the valid
    ones ("Unknown scope 'teams'. Valid scopes: organisation, team, …") —
    the one parser behind every ``scope=`` and ``grain=`` argument.
    """
    if isinstance(value, enum):
        return value
    try:
        return enum(str(value).strip().lower())
    except ValueError:
        raise error(
            f"Unknown {noun} '{value}'.",
            hint=f"Valid {noun}s: " + ", ".join(m.value for m in enum) + ".",
        ) from None
