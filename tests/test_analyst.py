"""kpireport as an analyst meets it (issue 13): completion, init, presets, tidy results, plot inputs."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["kpireport", "kpireport.report", "kpireport.schedule"])
def test_lazy_packages_list_their_api_for_tab_completion(module: str) -> None:
    mod = importlib.import_module(module)
    listed = dir(mod)
    assert listed == sorted(mod.__all__)
    assert not {"annotations", "Any", "importlib"} & set(listed)
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_jedi_completes_the_lazy_exports() -> None:
    jedi = pytest.importorskip("jedi")
    import kpireport

    names = {c.name for c in jedi.Interpreter("kpireport.", [{"kpireport": kpireport}]).complete()}
    assert {"load", "compute_kpis", "pivot_kpis", "evaluate_goals", "kpi_trend"} <= names
    assert "importlib" not in names
