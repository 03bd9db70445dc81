"""Machine-readable output shared by the commands that print tables (``kpis``, ``goals``, ``forecast``)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np
import pandas as pd

from kpireport.report.publish import neutralise_formulas


def write_machine_readable(
    df: pd.DataFrame, fmt: str, out: TextIO, records: Callable[[pd.DataFrame], list[dict[str, Any]]]
) -> bool:
    """Write ``df`` as JSON records or formula-safe CSV.

    Returns
    -------
    bool
        True when written; False for ``table``, which each command formats itself.
    """
    if fmt == "json":
        json.dump(records(df), out, indent=2, ensure_ascii=False, allow_nan=False)
        out.write("\n")
        return True
    if fmt == "csv":
        neutralise_formulas(df).to_csv(out, index=False)
        return True
    return False


def fmt_value(value: float, unit: str) -> str:
    """A number for the terminal tables, by KPI unit (``–`` for missing)."""
    if value is None or math.isnan(value):
        return "–"
    if unit == "percent":
        return f"{value:.1%}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "days":
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def goal_records(df: pd.DataFrame) -> list[dict[str, object]]:
    """JSON records of an :func:`~kpireport.goals.evaluate_goals` frame (NaN -> null)."""
    out = []
    cols = list(df.columns)
    for row in df.itertuples(index=False):
        rec: dict[str, object] = {}
        for col, v in zip(cols, row, strict=True):
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                rec[col] = None
            elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                rec[col] = int(v) if isinstance(v, (int, np.integer)) else float(v)
            else:
                rec[col] = str(v)
        out.append(rec)
    return out
