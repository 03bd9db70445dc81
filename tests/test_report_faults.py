"""Execution faults: each gives a failed report within bounded time, kept in failed/, nothing published.

One module-scoped pack run executes every faulty notebook next to a good one
(jobs=2): a cell past its timeout, a report past its wall-clock limit (killed
by the parent), ``sys.exit(0)`` and ``raise SystemExit`` before the last cell,
and a kernel killed mid-run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from kpireport.report.runner import run

NB = Path(__file__).resolve().parent / "notebooks"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("faults")
    pack = root / "faults.yaml"
    pack.write_text(
        f"""
period: 2024-01
as_of: 2024-02-15
formats: [html]
runs:
  - {{name: cell_timeout, notebook: {NB / "sleeps.ipynb"}, cell_timeout: 2}}
  - {{name: report_timeout, notebook: {NB / "sleeps.ipynb"}, cell_timeout: 100, report_timeout: 6}}
  - {{name: sys_exit, notebook: {NB / "sys_exit.ipynb"}}}
  - {{name: raise_system_exit, notebook: {NB / "raise_system_exit.ipynb"}}}
  - {{name: kills_kernel, notebook: {NB / "kills_kernel.ipynb"}}}
  - {{name: good, notebook: {NB / "ok.ipynb"}}}
""",
        encoding="utf-8",
    )
    out = root / "out"
    t0 = time.monotonic()
    result = run(pack, out=out, jobs=2)
    elapsed = time.monotonic() - t0
    return {
        "out": out,
        "result": result,
        "elapsed": elapsed,
        "by_run": {r.run: r for r in result.reports},
    }


@pytest.mark.parametrize(
    ("name", "kind", "cell_text"),
    [
        ("cell_timeout", "timeout", "time.sleep(120)"),
        ("report_timeout", "timeout", "time.sleep(120)"),
        ("sys_exit", "early_exit", "sys.exit(0)"),
        ("raise_system_exit", "early_exit", "raise SystemExit"),
        ("kills_kernel", "dead_kernel", "os.kill(os.getpid(), 9)"),
    ],
)
def test_fault_is_a_failed_report_kept_with_its_cell(faults, name, kind, cell_text):
    res = faults["by_run"][name]
    assert (res.status, res.error_kind) == ("failed", kind)
    out, file = faults["out"], name.replace("_", "-")  # run names become slugs
    assert not list(out.glob(f"2024-01/{file}.*"))  # nothing published
    failed = nbformat.read(out / f"failed/2024-01/{file}.ipynb", as_version=4)
    assert cell_text in failed.cells[0].source  # the failing cell is shown on top
    m = json.loads((out / f"failed/2024-01/{file}.manifest.json").read_text())
    assert m["status"] == "failed" and m["error"]["kind"] == kind
    assert cell_text in m["error"]["cell_source"]


def test_good_report_in_the_same_batch_is_published(faults):
    res = faults["by_run"]["good"]
    assert res.status == "success"
    assert (faults["out"] / "2024-01/good.html").exists()
    assert not (faults["out"] / "2024-01/good.pdf").exists()  # formats: [html]
    assert not faults["result"].ok and len(faults["result"].failed) == 5


def test_faults_fail_within_bounded_time(faults):
    # 6 reports on 2 workers; the sleeping notebooks would take 120 s each without timeouts
    assert faults["elapsed"] < 90
    assert faults["by_run"]["report_timeout"].timings["execute"] < 20


def test_no_kernel_is_left_behind(faults):
    out = str(faults["out"])
    leftovers = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if "ipykernel_launcher" in cmd and out in (p.cwd() or ""):
                leftovers.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    assert leftovers == []
    assert not list((faults["out"] / ".work").glob("jobs/*"))  # scratch folders cleaned
