"""Execution faults: each gives a failed report within bounded time, kept in failed/, nothing published.

One module-scoped pack run executes every faulty notebook next to a good one
(jobs=2): a cell past its timeout, a report past its wall-clock limit (killed
by the parent), ``sys.exit(0)`` and ``raise SystemExit`` before the last cell,
and a kernel killed mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import psutil
import pytest

from kpireport.data.model import CrmData
from kpireport.report.manifest import read_manifest
from kpireport.report.publish import sha256_file
from kpireport.report.runner import run

NB = Path(__file__).resolve().parent / "notebooks"
KPIREPORT = str(Path(sys.executable).with_name("kpireport"))


def tiny_data() -> CrmData:
    sellers = pd.DataFrame({"seller_id": ["S1"], "name": ["Anna"], "team": ["North"]})
    return CrmData({"sellers": sellers}, organisation="Acme")


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
    result = run(pack, source=tiny_data(), out=out, jobs=2)
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


# ------------------------------------------------ issue 9: stop, publish, lock
def nap_notebook(path: Path) -> Path:
    """A notebook that sleeps ``seconds`` in its second cell, then prints."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(
        'seconds = 1.0\nblob = 0\nperiod = "2024-01"\nteam = "North"'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("import time\ntime.sleep(seconds)"),
        nbformat.v4.new_code_cell('print("slept", seconds, "x" * blob)'),
    ]
    nbformat.write(nb, str(path))
    return path


def nap_pack(root: Path, seconds: float, n: int = 2, blob: int = 0) -> Path:
    nb = nap_notebook(root / "nap.ipynb")
    runs = "".join(
        f"  - {{name: nap{i}, notebook: {nb}, parameters: {{seconds: {seconds}, blob: {blob}}}}}\n"
        for i in range(n)
    )
    pack = root / "naps.yaml"
    pack.write_text(f"period: 2024-01\nas_of: 2024-02-15\nformats: [html]\nruns:\n{runs}")
    return pack


def kernels_of(pid: int) -> list[psutil.Process]:
    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in procs:
        try:
            if "ipykernel" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            continue
    return out


def start_run(root: Path, seconds: float, *extra: str) -> tuple[subprocess.Popen, Path]:
    """``kpireport run`` of two napping reports, in its own session (like a terminal job)."""
    out = root / "out"
    proc = subprocess.Popen(
        [KPIREPORT, "run", str(nap_pack(root, seconds)), "--out", str(out), "--jobs", "2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(kernels_of(proc.pid)) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the kernels did not start"
        time.sleep(0.2)
    return proc, out


def published_files(out: Path) -> list[Path]:
    return sorted(p for p in (out / "2024-01").glob("*") if p.is_file()) if out.exists() else []


@pytest.mark.parametrize(
    ("signum", "code", "to_group"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)],
    ids=["sigterm", "ctrl-c"],
)
def test_stopping_the_run_stops_every_report_process_and_kernel(tmp_path, signum, code, to_group):
    """Item 12: SIGTERM on the parent, or Ctrl-C to the job's process group."""
    proc, out = start_run(tmp_path, 60)
    tree = psutil.Process(proc.pid).children(recursive=True)
    assert len(tree) >= 4  # two report processes, two kernels
    t0 = time.monotonic()
    if to_group:
        os.killpg(proc.pid, signum)
    else:
        os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=20)
    gone, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == [] and time.monotonic() - t0 < 10
    assert proc.returncode == code, err
    assert "stopped" in err and "Traceback" not in err
    assert published_files(out) == []
    assert not list((out / ".work").glob("jobs/*"))  # scratch folders removed


def test_parent_killed_with_sigkill_takes_its_reports_along(tmp_path):
    """Item 12: ``kill -9`` of the parent alone: children stop, nothing published afterwards."""
    proc, out = start_run(tmp_path, 6)
    tree = psutil.Process(proc.pid).children(recursive=True)
    time.sleep(1.0)  # the naps are running: they would finish and publish in ~5 s
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    gone, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == [], [p.pid for p in alive]
    time.sleep(8)  # well past the end of the naps
    assert published_files(out) == []
    assert not list((out / ".work").glob("jobs/*"))


def test_second_run_with_wait_runs_after_the_first(tmp_path):
    """Item 15: ``--wait`` blocks on the output folder's lock, then builds."""
    from kpireport.report.runner import output_lock

    out = tmp_path / "out"
    pack = nap_pack(tmp_path, 0.1, n=1)
    import threading

    lines: list[str] = []
    with output_lock(out.resolve()):
        proc = subprocess.Popen(
            [KPIREPORT, "run", str(pack), "--out", str(out), "--wait"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        end = time.monotonic() + 120  # however slow the machine: until the run says it waits
        while not any("Waiting for the run that holds" in ln for ln in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < end, "".join(lines)
            time.sleep(0.2)
        time.sleep(1)  # it keeps waiting while the lock is held
        assert proc.poll() is None and published_files(out) == []
    proc.wait(timeout=180)
    reader.join(10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert [p.name for p in published_files(out)] == [
        "nap0.html", "nap0.ipynb", "nap0.manifest.json",
    ]  # fmt: skip


def test_failed_publish_keeps_the_previous_report_and_the_attempt_in_failed(tmp_path):
    """Item 11: all-or-nothing; a swap that fails half-way puts the old set back."""
    pack = nap_pack(tmp_path, 0.1, n=1)
    out = tmp_path / "out"
    first = run(pack, out=out, formats=["html"])
    assert first.ok
    base = out / "2024-01/nap0"
    before = {f.name: f.read_bytes() for f in published_files(out)}
    assert sorted(before) == ["nap0.html", "nap0.ipynb", "nap0.manifest.json"]
    (out / "2024-01/nap0.pdf").mkdir()  # the PDF cannot be put in place: the swap fails there
    (out / "2024-01/nap0.pdf/keep").write_text("x")
    second = run(pack, out=out, formats=["html", "pdf"], force=True)
    res = second.reports[0]
    assert (res.status, res.error_kind) == ("failed", "publish")
    after = {f.name: f.read_bytes() for f in published_files(out)}
    assert after == before  # the previous complete set, byte for byte
    m = read_manifest(Path(str(base) + ".manifest.json"))
    assert all(sha256_file(out / e["path"]) == e["sha256"] for e in m["outputs"].values())
    failed = out / "failed/2024-01"
    assert sorted(p.name for p in failed.iterdir()) == [
        "nap0.html", "nap0.ipynb", "nap0.manifest.json", "nap0.pdf",
    ]  # fmt: skip
    fm = read_manifest(failed / "nap0.manifest.json")
    assert fm["status"] == "failed" and fm["error"]["kind"] == "publish"
    assert set(fm["outputs"]) == {"ipynb", "html", "pdf"}
    assert (failed / "nap0.pdf").read_bytes().startswith(b"%PDF")
    for kind, entry in fm["outputs"].items():  # the attempt's files, as listed
        assert sha256_file(out / entry["path"]) == entry["sha256"], kind
    umask = os.umask(0)
    os.umask(umask)
    assert {stat.S_IMODE(p.stat().st_mode) for p in failed.iterdir()} == {0o666 & ~umask}


def test_disk_full_while_publishing_keeps_the_previous_report(tmp_path):
    """Item 11: the disk fills while the new files are written: nothing published changes."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        pytest.skip("needs root and mount for a small file system to fill")
    try:
        pack = nap_pack(tmp_path, 0.1, n=1, blob=1_000_000)  # ~1 MB notebook and page
        out = disk / "out"
        assert run(pack, out=out, formats=["html"]).ok
        before = {f.name: f.read_bytes() for f in published_files(out)}
        notebook, page = len(before["nap0.ipynb"]), len(before["nap0.html"])
        assert min(notebook, page) > 1_000_000
        st = os.statvfs(disk)
        free = st.f_bavail * st.f_frsize
        # room for the executed notebook in the scratch folder and one more copy, not the page
        (disk / "filler").write_bytes(b"\0" * (free - notebook - 256 * 1024))
        second = run(pack, out=out, formats=["html"], force=True)
        res = second.reports[0]
        assert (res.status, res.error_kind) == ("failed", "publish")
        assert "No space left on device" in res.error
        assert {f.name: f.read_bytes() for f in published_files(out)} == before
        assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no partial file
        assert not list((out / ".work").glob("jobs/*"))
        failed = read_manifest(out / "failed/2024-01/nap0.manifest.json")
        assert failed["status"] == "failed" and failed["error"]["kind"] == "publish"
        assert set(failed["outputs"]) == {"ipynb"}  # the executed notebook, moved there
        kept = out / failed["outputs"]["ipynb"]["path"]
        assert sha256_file(kept) == failed["outputs"]["ipynb"]["sha256"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)
