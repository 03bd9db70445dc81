"""One exception root for kpireport, one subclass per pipeline stage.

Every error carries the structured facts a user needs to fix the problem
(table, column, rows, cell, ...) and renders as one clear sentence per problem.
The CLI prints ``str(error)`` and exits non-zero; it never shows a traceback for
a :class:`KpiReportError` unless ``KPIREPORT_DEBUG=1`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


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


class ExecutionError(KpiReportError):
    """A notebook failed while executing (exception, timeout, dead kernel, early exit)."""


class OutputLockedError(ExecutionError):
    """Another ``kpireport run`` holds the lock of the output folder."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class RunInterruptedError(ExecutionError):
    """The run was stopped by SIGTERM or SIGINT; every report process was stopped."""

    exit_code = 143

    def __init__(self, message: str, signum: int = 15) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class RenderError(KpiReportError):
    """A notebook executed but could not be rendered to HTML or PDF."""


class ScheduleError(KpiReportError):
    """A schedule file (``params/schedules.yaml``) or a scheduled job is invalid."""

    exit_code = 2


class ScheduleLockedError(ScheduleError):
    """Another process is already running the same scheduled job for the same period."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class DeliveryError(KpiReportError):
    """An e-mail could not be delivered (SMTP refused, authentication failed, ...)."""
