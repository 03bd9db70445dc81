"""The wheel is the product: build it, install it in a fresh venv outside the checkout, run the demo.

The venv has no access to the checkout or the test environment's packages
(no ``--system-site-packages``, no ``PYTHONPATH``, working directory in a temp
folder); dependencies come from pip's cache / the configured find-links, so the
install takes ~1 min on a warm cache and the demo pack ~1–2 min on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = (
    "kpireport/resources/params/monthly_pack.yaml",
    "kpireport/resources/params/team_monthly.yaml",
    "kpireport/resources/notebooks/team_report.ipynb",
    "kpireport/resources/notebooks/explore.ipynb",
    "kpireport/resources/templates/kpireport/index.html.j2",
    "kpireport/resources/templates/kpireport/kpireport.css",
    "kpireport/resources/templates/kpireport/conf.json",
    "kpireport/resources/presets/salesforce.yaml",
    "kpireport/resources/presets/dynamics.yaml",
)


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["HOME"] = os.environ.get("HOME", str(tmp))  # keeps pip's cache
    env.pop("KPIREPORT_PARAMS", None)
    env["MPLCONFIGDIR"] = str(tmp / "mpl")
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(dist)],
        check=True,
        cwd=dist,
        capture_output=True,
    )
    (found,) = dist.glob("kpireport-*.whl")
    return found


def test_wheel_contains_the_report_resources(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in SHIPPED if n not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not any(n.startswith(("tests/", "notebooks/", "params/", "templates/")) for n in names)


def test_installed_wheel_builds_the_demo_pack_outside_the_checkout(wheel: Path, tmp_path: Path):
    env = _clean_env(tmp_path)
    venv_dir = tmp_path / "venv"
    venv.create(venv_dir, with_pip=True)
    py = venv_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, env=env,
                   cwd=tmp_path, capture_output=True)  # fmt: skip
    where = subprocess.run(
        [str(py), "-c", "import kpireport, kpireport.resources as r; "
         "print(kpireport.__file__); print(r.resource_dir('params'))"],
        check=True, env=env, cwd=tmp_path, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(venv_dir) for p in where), where

    out = tmp_path / "X"
    proc = subprocess.run(
        [str(venv_dir / "bin" / "kpireport"), "demo", "--out", str(out),
         "--as-of", "2026-05-12", "--scale", "0.3", "--jobs", "2"],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    month = out / "reports" / "2026-04"
    pdfs = sorted(p.name for p in month.rglob("*.pdf"))
    assert "management-pack-2026-04.pdf" in pdfs
    assert any(p.startswith("team-report-") for p in pdfs)
    assert any(p.startswith("seller-scorecard-") for p in pdfs)
    manifests = [json.loads(p.read_text()) for p in month.rglob("*manifest.json")]
    assert manifests and all(m["status"] == "success" for m in manifests)
    assert not (out / "reports" / "failed").exists() or not any(
        (out / "reports" / "failed").iterdir()
    )
    assert "reports ready" in proc.stdout
