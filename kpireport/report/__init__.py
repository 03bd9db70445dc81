"""Stage 6: reports — run definitions, papermill execution, nbconvert/WeasyPrint rendering, publishing.

The pipeline reads as :func:`kpireport.report.runner.run`. Names are imported
lazily so that notebooks importing :func:`record_kpis` inside a kernel do not
pay for papermill, nbconvert and WeasyPrint.
"""

from __future__ import annotations

from kpireport._lazy import lazy_exports

_EXPORTS = {
    "run": "kpireport.report.runner",
    "RunResult": "kpireport.report.runner",
    "ReportResult": "kpireport.report.runner",
    "load_plan": "kpireport.report.params",
    "expand": "kpireport.report.plan",
    "record_kpis": "kpireport.report.record",
    "safe_csv": "kpireport.report.publish",
    "load_source": "kpireport.report.snapshot",
    "to_html": "kpireport.report.render",
    "to_pdf": "kpireport.report.render",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
