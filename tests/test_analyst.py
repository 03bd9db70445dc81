"""kpireport as an analyst meets it (issue 13): completion, init, presets, tidy results, plot inputs."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


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


# ------------------------------------------------------------------ kpireport init (item 2)
def _cli(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "kpireport.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_init_scaffolds_a_project_and_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    proj = tmp_path / "acme-sales"
    res = _cli("init", str(proj))
    assert res.returncode == 0, res.stderr
    for rel in ("source.yaml", "goals.yaml", "README.md", "params/team_monthly.yaml",
                "params/monthly_pack.yaml", "notebooks/team_report.ipynb",
                "notebooks/explore.ipynb"):  # fmt: skip
        assert (proj / rel).is_file(), rel
    source = yaml.safe_load((proj / "source.yaml").read_text())
    assert source == {"path": "data/", "organisation": "Acme Sales", "timezone": "UTC",
                      "goals": "goals.yaml"}  # fmt: skip
    assert (
        yaml.safe_load((proj / "params/team_monthly.yaml").read_text())["source"]
        == "../source.yaml"
    )
    sched = yaml.safe_load((proj / "params/schedules.yaml").read_text())
    assert {j["source"] for j in sched["jobs"].values()} == {"../source.yaml"}
    again = _cli("init", str(proj))
    assert again.returncode != 0
    assert again.stderr.strip().splitlines()[-1].startswith("error: The folder")
    (proj / "notebooks" / "explore.ipynb").write_text("{}")
    assert _cli("init", str(proj), "--force").returncode == 0
    assert (proj / "notebooks" / "explore.ipynb").read_text() == "{}"  # edits are kept


def test_goals_yaml_examples_cover_every_scope_and_are_valid(tmp_path: Path) -> None:
    from kpireport.data.demo import demo_data
    from kpireport.goals import evaluate_goals
    from kpireport.resources.project import GOALS_TEMPLATE

    lines = GOALS_TEMPLATE.split("# Remove the [] above and uncomment to start:\n")[1]
    uncommented = "\n".join(line[2:] for line in lines.splitlines())
    goals = yaml.safe_load(uncommented)["goals"]
    assert {g["scope"] for g in goals} == {"organisation", "team", "seller", "customer"}
    path = tmp_path / "goals.yaml"
    path.write_text(uncommented)
    data = demo_data(as_of="2027-12-31")
    res = evaluate_goals(data, str(path), as_of="2027-12-31")
    assert len(res) == len(goals) == 5


def test_init_with_preset_then_run_uses_the_project_notebook_and_goals(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    assert _cli("init", str(proj), "--preset", "salesforce").returncode == 0
    assert (proj / "presets" / "salesforce.yaml").is_file()
    assert yaml.safe_load((proj / "source.yaml").read_text())["preset"] == "presets/salesforce.yaml"
    for csv in (ROOT / "tests/data/presets/salesforce").glob("*.csv"):
        shutil.copy(csv, proj / "data" / csv.name)
    (proj / "goals.yaml").write_text(
        "goals:\n  - {kpi: won_value, scope: team, scope_id: Enterprise, period: 2026-11,"
        " target: 123456, owner: Head of Enterprise}\n"
    )
    nb = json.loads((proj / "notebooks/team_report.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "id": "mine", "metadata": {},
                        "source": ["Edited in the project: PROJECT-COPY-MARKER"]})  # fmt: skip
    (proj / "notebooks/team_report.ipynb").write_text(json.dumps(nb))
    res = _cli("run", "team_monthly", "--as-of", "2026-12-01", "--only", "Enterprise",
               "--format", "html", "--out", "reports", cwd=str(proj))  # fmt: skip
    assert res.returncode == 0, res.stderr
    html = (proj / "reports/2026-11/teams/team-report-enterprise-2026-11.html").read_text()
    assert "PROJECT-COPY-MARKER" in html
    assert "123,456" in html  # the goal from goals.yaml
    # outside the project the packaged notebook is used
    other = _cli("run", "team_monthly", "--as-of", "2026-12-01", "--only", "Enterprise",
                 "--format", "html", "--out", str(tmp_path / "r2"), "--source",
                 str(proj / "source.yaml"), cwd=str(tmp_path))  # fmt: skip
    assert other.returncode == 0, other.stderr
    html2 = (tmp_path / "r2/2026-11/teams/team-report-enterprise-2026-11.html").read_text()
    assert "PROJECT-COPY-MARKER" not in html2 and "123,456" in html2
