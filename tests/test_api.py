"""The public API at the package root, and the no-clock rule of the library."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

import kpireport

LIBRARY = Path(kpireport.__file__).parent
#: the only places allowed to read "today": the CLI's defaults (docs/DATA.md, periods)
CLOCK_ALLOWED = {"cli/data.py", "cli/report.py", "cli/schedule.py"}
#: clock reads that are wall-clock metadata, never a business date, by (file, function):
#: each takes no part in any number (the lock file's "started" line, the dashboard's
#: "loaded at" default of an injectable ``now`` parameter)
CLOCK_METADATA = {
    ("report/runner.py", "output_lock"): "the lock holder's start time, for the refusal message",
    ("dashboard/store.py", "__init__"): "default of DataStore(now=...), the 'loaded at' line",
}
CLOCK_CALLS = {"now", "today", "utcnow"}


def test_root_exports_are_the_functions_even_after_submodule_imports():
    import kpireport.data.load
    import kpireport.data.validate
    import kpireport.forecasting

    assert callable(kpireport.load)
    assert kpireport.forecast is kpireport.forecasting.forecast  # the function, never the package
    from kpireport import forecast

    assert forecast is kpireport.forecast and kpireport.load.__name__ == "load"
    assert callable(kpireport.validate) and kpireport.validate.__name__ == "validate"
    y = pd.Series(np.arange(24.0) + 10, index=pd.date_range("2024-01-01", periods=24, freq="MS"))
    fc = kpireport.forecast(y, 3)
    assert list(fc.columns[:5]) == ["mean", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert fc["mean"].tolist() == [34.0, 35.0, 36.0]
    for name in (
        "compute_kpis",
        "kpi_series",
        "evaluate_goals",
        "parse_period",
        "development_curve",
    ):
        assert callable(getattr(kpireport, name)), name


def test_no_library_function_reads_the_clock_except_the_cli_defaults():
    offenders = []
    for path in LIBRARY.rglob("*.py"):
        rel = path.relative_to(LIBRARY).as_posix()
        if rel in CLOCK_ALLOWED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = {}  # node -> innermost enclosing function name
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(func):
                    owner[node] = func.name  # inner functions are walked later: they win
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCK_CALLS
                and (rel, owner.get(node, "<module>")) not in CLOCK_METADATA
            ):
                offenders.append(f"{rel}:{node.lineno} ({owner.get(node, '<module>')})")
    assert offenders == []


def test_help_works_for_every_command(capsys):
    import pytest

    from kpireport.cli import build_parser, main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"validate", "demo-data", "kpis", "goals", "forecast", "run", "demo"} <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0, name
    assert "usage: kpireport" in capsys.readouterr().out
