"""Stage 6: reports — run definitions, papermill execution, nbconvert/WeasyPrint rendering, publishing.

The pipeline reads as :func:`kpireport.report.runner.run`. Names are imported
lazily so that notebooks importing :func:`record_kpis` inside a kernel do not
pay for papermill, nbconvert and WeasyPrint.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run": "kpireport.report.runner",
    "RunResult": "kpireport.report.runner",
    "ReportResult": "kpireport.report.runner",
    "load_plan": "kpireport.report.params",
    "expand": "kpireport.report.params",
    "record_kpis": "kpireport.report.record",
    "safe_csv": "kpireport.report.publish",
    "load_source": "kpireport.report.snapshot",
    "to_html": "kpireport.report.render",
    "to_pdf": "kpireport.report.render",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kpireport.report' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API, so ``dir()`` and Jupyter's Tab completion list the lazy exports."""
    return sorted(__all__)
