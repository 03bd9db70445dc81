"""The shipped notebooks are jupytext pairs and the report notebooks hold no business logic.

The ``.py`` (percent format) beside each ``.ipynb`` in
``kpireport/resources/notebooks`` is the reviewed source; the ``.ipynb`` is what
``kpireport run`` executes (and what the wheel ships). Issue 13 item 10.
"""

from __future__ import annotations

import ast
import importlib

import pytest

from kpireport.resources import resource_dir

jupytext = pytest.importorskip("jupytext")

NB = resource_dir("notebooks")
#: report notebook -> the views module its sections come from
REPORTS = {
    "team_report": "team",
    "seller_scorecard": "seller",
    "management_pack": "management",
    "finance_growth": "finance",
}


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_notebook_is_paired_with_its_percent_script():
    ipynbs = {p.stem for p in NB.glob("*.ipynb")}
    scripts = {p.stem for p in NB.glob("*.py")}
    assert ipynbs == scripts and set(REPORTS) <= ipynbs
    assert not (NB / "build_notebooks.py").exists()  # the .py files are the source now


@pytest.mark.parametrize("name", sorted(p.stem for p in NB.glob("*.ipynb")))
def test_ipynb_is_in_sync_with_its_py(name):
    ipynb = jupytext.read(NB / f"{name}.ipynb")
    script = jupytext.read(NB / f"{name}.py")
    assert ipynb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert _cells(ipynb) == _cells(script), (
        f"{name}.ipynb differs from {name}.py; run: jupytext --sync kpireport/resources/notebooks/{name}.py"
    )
    # and the round trip through the text format changes nothing
    again = jupytext.reads(jupytext.writes(ipynb, fmt="py:percent"), fmt="py:percent")
    assert _cells(again) == _cells(ipynb)
    assert not any(c.get("outputs") for c in ipynb.cells if c.cell_type == "code")


def _is_kpireport_call(node: ast.AST, names: set[str]) -> bool:
    """A call of an imported kpireport name whose arguments are names, constants or such calls."""
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    root = f
    while isinstance(root, ast.Attribute):
        root = root.value
    if not (isinstance(root, ast.Name) and root.id in names):
        return False
    args = [*node.args, *(k.value for k in node.keywords)]
    return all(_is_kpireport_call(a, names) for a in args)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_report_notebooks_hold_no_business_logic(name):
    nb = jupytext.read(NB / f"{name}.py")
    code = [c for c in nb.cells if c.cell_type == "code"]
    params, rest = code[0], code[1:]
    assert params.metadata.get("tags") == ["parameters"]
    for stmt in ast.parse(params.source).body:  # the parameters cell: constants only
        assert isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant), ast.unparse(
            stmt
        )
    imported: set[str] = set()
    shown: list[str] = []
    for cell in rest:
        for stmt in ast.parse(cell.source).body:
            if isinstance(stmt, ast.ImportFrom):
                assert stmt.module.startswith("kpireport"), ast.unparse(stmt)
                imported |= {a.asname or a.name for a in stmt.names}
                continue
            value = stmt.value if isinstance(stmt, (ast.Assign, ast.Expr)) else None
            if isinstance(stmt, ast.Assign):
                assert [ast.unparse(t) for t in stmt.targets] == ["ctx"], ast.unparse(stmt)
            assert value is not None and _is_kpireport_call(value, imported | {"ctx"}), (
                f"{name}: not a call into kpireport: {ast.unparse(stmt)}"
            )
            if isinstance(stmt, ast.Expr):  # show(report.<section>(ctx))
                inner = stmt.value.args[0]
                assert ast.unparse(stmt.value.func) == "show" and len(rest) > 1
                shown.append(inner.func.attr)
    module = importlib.import_module(f"kpireport.report.views.{REPORTS[name]}")
    assert sorted(shown) == sorted(module.SECTIONS) and len(shown) == len(set(shown))
    # one section per cell: the cells after the context are exactly the show() calls
    assert len(rest) == 1 + len(shown)
