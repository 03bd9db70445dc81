"""The Dask executor (issue 11) on a real ``LocalCluster`` of 2 worker processes.

* the same pack through the local and the Dask executor: the same reports
  published with identical numbers (``*.kpis.csv``), the snapshot read from a
  ``file://`` URL;
* on a cluster the test starts (so it can watch the workers): a report that
  raises and one that hangs fail alone and within their time limit, and no
  kernel is left behind on the workers (psutil);
* a report that kills its worker is retried once, then reported failed, while
  the other reports are published.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from kpireport.data.model import CrmData
from kpireport.report.runner import run

pytest.importorskip("distributed")

NB = Path(__file__).resolve().parent / "notebooks"
KPIREPORT = [sys.executable, "-m", "kpireport.cli"]

pytestmark = pytest.mark.slow


def tiny_data() -> CrmData:
    """Five sellers in four teams; the ok notebook's value is 3000 + sellers of the team."""
    sellers = pd.DataFrame(
        {
            "seller_id": ["S1", "S2", "S3", "S4", "S5"],
            "name": ["Anna", "Bo", "Cato", "Dirk", "Eva"],
            "team": ["North", "North", "South", "East", "West"],
        }
    ).astype("str")
    return CrmData({"sellers": sellers}, organisation="Acme")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def kpis_of(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.kpis.csv"))}


def kernels_under(pids: list[int]) -> list[int]:
    """ipykernel processes descending from any of ``pids``."""
    found = []
    for pid in pids:
        try:
            for c in psutil.Process(pid).children(recursive=True):
                try:
                    if "ipykernel" in " ".join(c.cmdline()):
                        found.append(c.pid)
                except psutil.Error:
                    continue
        except psutil.NoSuchProcess:
            continue
    return found


def kernels_in(folder: Path) -> list[int]:
    """ipykernel processes whose working directory is inside ``folder``."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "ipykernel" in " ".join(p.info["cmdline"] or []) and str(folder) in p.cwd():
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def cluster():
    from distributed import Client

    from kpireport.report.executors import local_cluster

    c = local_cluster(2)
    client = Client(c)
    yield {"cluster": c, "client": client}
    client.close()
    c.close()


def worker_pids(client) -> list[int]:
    return list(client.run(os.getpid).values())


def test_dask_publishes_the_same_reports_with_the_same_numbers(tmp_path):
    pack = write(
        tmp_path / "teams.yaml",
        f"""
title: Team report
notebook: {NB / "ok.ipynb"}
fanout: team
period: 2024-01
as_of: 2024-02-15
formats: [html, pdf]
output: "{{period}}/{{team}}"
""",
    )
    data = tiny_data()
    local = run(pack, source=data, out=tmp_path / "local", jobs=2)
    snaps = tmp_path / "shared" / "snapshots"
    dask = run(
        pack, source=data, out=tmp_path / "dask", jobs=2, executor="dask",
        snapshots=snaps.as_uri(),
    )  # fmt: skip
    assert local.ok and dask.ok, dask.summary()
    assert [r.status for r in dask.reports] == ["success"] * 4
    assert kpis_of(tmp_path / "dask") == kpis_of(tmp_path / "local")
    north = kpis_of(tmp_path / "dask")["2024-01/north.kpis.csv"]
    assert "value,team,North,2024-01,3002.0" in north.replace(
        '"', ""
    )  # 3 * 1000 + two sellers of North
    # the kernels read the snapshot written under the file:// URL
    manifest = json.loads((tmp_path / "dask" / "2024-01/north.manifest.json").read_text())
    assert manifest["parameters"]["source"].startswith(str(snaps))
    assert (tmp_path / "dask" / "2024-01/north.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "dask" / "index.html").is_file()
    # a re-run skips every report, as with the local executor
    again = run(pack, source=data, out=tmp_path / "dask", jobs=2, executor="dask")
    assert [r.status for r in again.reports] == ["skipped"] * 4


def test_raising_and_hanging_reports_fail_alone_within_their_time_limit(tmp_path, cluster):
    pack = write(
        tmp_path / "faults.yaml",
        f"""
period: 2024-01
as_of: 2024-02-15
formats: [html]
runs:
  - {{name: hangs, notebook: {NB / "sleeps.ipynb"}, cell_timeout: 100, report_timeout: 8}}
  - {{name: raises, notebook: {NB / "raises.ipynb"}}}
  - {{name: good, notebook: {NB / "ok.ipynb"}}}
  - {{name: good2, notebook: {NB / "ok.ipynb"}, output: "{{period}}/good2"}}
""",
    )
    out = tmp_path / "out"
    address = cluster["cluster"].scheduler_address
    t0 = time.monotonic()
    result = run(pack, source=tiny_data(), out=out, executor="dask", scheduler=address)
    elapsed = time.monotonic() - t0
    by_run = {r.run: r for r in result.reports}
    assert by_run["good"].status == by_run["good2"].status == "success"
    assert by_run["raises"].status == "failed" and by_run["raises"].error_kind == "exception"
    assert by_run["hangs"].status == "failed" and by_run["hangs"].error_kind == "timeout"
    assert "8 s" in by_run["hangs"].error
    assert by_run["hangs"].timings["execute"] < 30  # the notebook would sleep 120 s
    assert elapsed < 100
    assert (out / "failed" / "2024-01" / "hangs.manifest.json").is_file()
    assert not (out / "2024-01" / "hangs.html").exists()
    time.sleep(1)
    assert kernels_under(worker_pids(cluster["client"])) == []
    assert kernels_in(out) == []
    assert not list((out / ".work").glob("jobs/*"))


def test_a_killed_worker_is_retried_once_then_the_report_fails(tmp_path, cluster):
    attempts = tmp_path / "attempts.txt"
    pack = write(
        tmp_path / "kill.yaml",
        f"""
period: 2024-01
as_of: 2024-02-15
formats: [html]
runs:
  - name: kills_worker
    notebook: {NB / "kills_worker.ipynb"}
    parameters: {{attempts_file: "{attempts}", runner_pid: {os.getpid()}}}
  - {{name: good, notebook: {NB / "ok.ipynb"}}}
  - {{name: good2, notebook: {NB / "ok.ipynb"}, output: "{{period}}/good2"}}
""",
    )
    out = tmp_path / "out"
    client = cluster["client"]
    before = set(worker_pids(client))
    result = run(
        pack, source=tiny_data(), out=out, executor="dask",
        scheduler=cluster["cluster"].scheduler_address,
    )  # fmt: skip
    by_run = {r.run: r for r in result.reports}
    assert by_run["good"].status == by_run["good2"].status == "success"
    bad = by_run["kills_worker"]
    assert bad.status == "failed" and bad.error_kind == "worker_lost"
    assert "died 2 times" in bad.error
    assert len(attempts.read_text().split()) == 2  # the first attempt and one retry
    manifest = json.loads((out / "failed" / "2024-01" / "kills-worker.manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["error"]["kind"] == "worker_lost"
    # the nanny replaced the killed workers; their report processes took their kernels along
    client.wait_for_workers(2, timeout=120)
    after = set(worker_pids(client))
    assert len(before - after) >= 1
    deadline = time.monotonic() + 10
    while kernels_in(out) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert kernels_in(out) == []
    assert kernels_under(list(after)) == []


def test_stopping_a_dask_run_stops_its_reports_on_the_workers(tmp_path, cluster):
    pack = write(
        tmp_path / "naps.yaml",
        f"""
period: 2024-01
as_of: 2024-02-15
formats: [html]
runs:
  - {{name: nap1, notebook: {NB / "sleeps.ipynb"}, cell_timeout: 300, report_timeout: 300}}
  - {{name: nap2, notebook: {NB / "sleeps.ipynb"}, cell_timeout: 300, report_timeout: 300}}
""",
    )
    out = tmp_path / "out"
    client = cluster["client"]
    workers = worker_pids(client)
    address = cluster["cluster"].scheduler_address
    proc = subprocess.Popen(
        [*KPIREPORT, "run", str(pack), "--source", "demo", "--out", str(out),
         "--executor", "dask", "--scheduler", address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(kernels_under(workers)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(kernels_under(workers)) == 2, proc.stderr.read() if proc.poll() else ""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err
    deadline = time.monotonic() + 15
    while kernels_under(workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert kernels_under(workers) == []
    assert [p.name for p in out.rglob("*.html")] == ["index.html"]  # no report published
    assert not list(out.glob("failed/**/*.manifest.json"))  # and none kept as failed
    assert "2 reports: 0 published, 0 failed, 2 not built." in (out / "index.html").read_text()


# ------------------------------------------------- warm kernels on the workers
def test_warm_kernels_on_dask_workers_are_single_use_and_keep_the_time_limit(tmp_path, monkeypatch):
    """Each worker keeps a report waiting with a warm kernel beside the one it runs.

    The leak notebook checks that its kernel holds nothing of the warm-up or
    an earlier report, no secret environment variable, runs in its own
    scratch folder and has the report modules imported; a hanging report
    still fails at its 8 s limit (counted from its turn); while it hangs, more
    kernels are alive on the workers than there are report slots (the warm
    ones waiting); afterwards no kernel, scratch folder or turn marker is left.
    """
    import threading

    from distributed import Client
    from test_scaling import LEAK_CELLS, team_notebook

    from kpireport.report.executors import local_cluster

    monkeypatch.setenv("KPIREPORT_TEST_DB_PASSWORD", "dask-warm-s3cr3t")  # workers inherit it
    team_notebook(tmp_path / "leak.ipynb", LEAK_CELLS)
    pack = write(
        tmp_path / "warm.yaml",
        f"""
period: 2024-01
as_of: 2024-02-15
formats: [html]
runs:
  - {{name: hangs, notebook: {NB / "sleeps.ipynb"}, cell_timeout: 100, report_timeout: 8}}
  - {{name: leak, notebook: {tmp_path / "leak.ipynb"}, fanout: team, output: "{{period}}/leak-{{team}}"}}
  - {{name: good, notebook: {NB / "ok.ipynb"}}}
""",
    )
    out = tmp_path / "out"
    cluster = local_cluster(2, warm=1)
    client = Client(cluster)
    try:
        workers = worker_pids(client)
        assert {w["nthreads"] for w in client.scheduler_info()["workers"].values()} == {2}
        most = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                most[0] = max(most[0], len(kernels_under(workers)))
                stop.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            result = run(
                pack, source=tiny_data(), out=out, executor="dask",
                scheduler=cluster.scheduler_address, warm_kernels=1,
            )  # fmt: skip
        finally:
            stop.set()
            sampler.join()
        by_run = {r.run: r for r in result.reports}
        hangs = by_run["hangs"]
        assert hangs.status == "failed" and hangs.error_kind == "timeout", result.summary()
        assert "8 s" in hangs.error and hangs.timings["execute"] < 30
        leaks = [r for r in result.reports if r.run == "leak"]
        assert len(leaks) == 4 and all(r.status == "success" for r in leaks), result.summary()
        assert by_run["good"].status == "success"
        tables = {k: v.replace('"', "") for k, v in kpis_of(out).items()}
        for team in ("north", "south", "east", "west"):
            table = tables[f"2024-01/leak-{team}.kpis.csv"]
            assert "warmed,team," in table and table.rstrip().endswith(",1.0")  # imports done
        assert "value,team,North,2024-01,3002.0" in tables["2024-01/good.kpis.csv"]
        # every report's kernel was started before its turn
        assert all("kernel_ahead" in r.timings for r in leaks)
        assert most[0] >= 3  # 2 report slots, and at least one warm kernel waiting
        time.sleep(1)
        assert kernels_under(workers) == []
        assert kernels_in(out) == []
        assert not list((out / ".work").glob("jobs/*"))
    finally:
        client.close()
        cluster.close()
