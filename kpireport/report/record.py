"""Kernel-side helper: hand "the numbers shown" back to the report runner.

A notebook calls :func:`record_kpis` with the tidy KPI table it displays. The
table travels inside the executed notebook as a display output with the private
MIME type :data:`KPI_MIME` (a JSON object), tagged in its output metadata; the
publisher extracts it into ``<report>.kpis.csv`` and the renderer drops it from
the HTML. No file paths are shared between kernel and runner, so parallel
reports cannot overwrite each other's tables, and the numbers are part of the
audited executed notebook.

This module is imported inside report kernels: it must stay light (pandas and
IPython only, no papermill/nbconvert).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

#: MIME type of the recorded KPI table inside an executed notebook
KPI_MIME = "application/vnd.kpireport.kpis+json"
#: output metadata marking a recorded KPI table
KPI_META = {"kpireport": {"kind": "kpis"}}


def _json_value(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()  # numpy scalar -> Python
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    if isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


def kpi_payload(df: pd.DataFrame) -> dict[str, Any]:
    """JSON-safe ``{"columns": [...], "records": [[...], ...]}`` of ``df``.

    ``NaN``/``inf``/``NA`` become ``null`` (an undefined KPI is not zero).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError("record_kpis expects a pandas DataFrame")
    cols = [str(c) for c in df.columns]
    if "kpi" not in cols or "value" not in cols:
        raise ValueError("record_kpis needs at least the columns 'kpi' and 'value'")
    records = [[_json_value(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return {"columns": cols, "records": records}


def record_kpis(df: pd.DataFrame) -> None:
    """Record ``df`` (tidy: ``kpi, scope, scope_id, period, value``) as the report's KPI table.

    Call once per table shown; several calls are concatenated. Nothing is
    displayed in the rendered report.
    """
    from IPython.display import display

    display({KPI_MIME: kpi_payload(df)}, raw=True, metadata=KPI_META)


def is_kpi_output(output: dict[str, Any]) -> bool:
    """True when a notebook output is a table recorded by :func:`record_kpis`."""
    meta = output.get("metadata") or {}
    return (
        KPI_MIME in (output.get("data") or {})
        or (meta.get("kpireport") or {}).get("kind") == "kpis"
    )


def extract_kpis(nb: Any) -> pd.DataFrame | None:
    """Concatenate every recorded KPI table of an executed notebook (``None`` if none)."""
    frames = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = (out.get("data") or {}).get(KPI_MIME)
            if isinstance(data, dict) and "columns" in data:
                frames.append(pd.DataFrame(data["records"], columns=data["columns"]))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)
