"""Machine-readable output shared by the commands that print tables (``kpis``, ``goals``, ``forecast``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

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
