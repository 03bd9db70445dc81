"""Benchmark: one run with and without the per-run KPI cube (issue 10 item 4), side by side.

The same run definition is built twice as whole ``kpireport run`` processes
under ``/usr/bin/time -v``: once with ``KPIREPORT_CUBE=0`` (every kernel reads
the snapshot whole and recomputes its KPIs) and once with the cube, each with
its own empty cache folder (so both write their snapshot). It prints the wall
time and peak RSS of the run process, the time the runner spent on the cube
(``CUBE.json``), each report's execute seconds from its manifest, the load
average before and after each, and whether every ``*.kpis.csv`` is the same:
byte for byte (the engine's sums are exact DECIMAL sums), and to 1e-9
relative.

Measured (docs/SCALING.md, "The KPI cube", second step; 2-core machine, load 3–6):
team_monthly at scale 90, 4 teams — without the cube 45.1 s execute per report,
2 min 55 s and 3,655 MB peak RSS in all; with it 8.5 s per report, 2 min 25 s,
3,679 MB (the runner holds the data), cube pass 23.5 s; 4 of 4 ``kpis.csv``
byte-identical. Demo pack (26 reports): 1 min 41 s against 1 min 19 s, 26 of 26
byte-identical.

Usage
-----
    kpireport demo-data --scale 90 --format parquet --as-of 2026-11-30 --out /tmp/big90
    python benchmarks/kpi_cube.py --source /tmp/big90/source.yaml            # team_monthly, 2 jobs
    python benchmarks/kpi_cube.py --params kpireport/resources/params/monthly_pack.yaml --source DEMO
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _build(params: str, source: str, as_of: str, jobs: int, cube: bool, tmp: Path) -> dict:
    out, cache = tmp / ("out-cube" if cube else "out-plain"), tmp / ("cache-" + str(cube))
    env = {**os.environ, "KPIREPORT_CACHE": str(cache), "KPIREPORT_CUBE": "1" if cube else "0"}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "kpireport.cli", "run", params,
           "--source", source, "--as-of", as_of, "--jobs", str(jobs), "--out", str(out)]  # fmt: skip
    load0 = os.getloadavg()[0]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    load1 = os.getloadavg()[0]
    err = proc.stderr
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", err).group(1)
    execute = {
        m.name.removesuffix(".manifest.json"): json.loads(m.read_text())["timings_s"].get("execute")
        for m in out.rglob("*.manifest.json")
    }
    cubes = list(cache.rglob("cube/CUBE.json"))
    return {
        "exit": proc.returncode, "wall": wall, "rss_mb": rss, "load": (load0, load1),
        "execute": execute, "out": out,
        "cube": json.loads(cubes[0].read_text()) if cubes else None,
    }  # fmt: skip


def _bytes_differ(a: Path, b: Path) -> list[str]:
    """The ``*.kpis.csv`` of ``a`` that are not byte-identical in ``b``."""
    out = []
    for fa in sorted(a.rglob("*.kpis.csv")):
        fb = b / fa.relative_to(a)
        if not fb.exists() or fa.read_bytes() != fb.read_bytes():
            out.append(str(fa.relative_to(a)))
    return out


def _same_kpis(a: Path, b: Path) -> list[str]:
    diffs = []
    for fa in sorted(a.rglob("*.kpis.csv")):
        fb = b / fa.relative_to(a)
        x, y = pd.read_csv(fa), pd.read_csv(fb) if fb.exists() else None
        if y is None or x.shape != y.shape:
            diffs.append(f"{fa.relative_to(a)}: shape")
            continue
        keys = [c for c in x.columns if c != "value"]
        vx = pd.to_numeric(x["value"], errors="coerce").to_numpy(float)
        vy = pd.to_numeric(y["value"], errors="coerce").to_numpy(float)
        if not (x[keys].astype(str).equals(y[keys].astype(str))) or not np.allclose(
            vx, vy, rtol=1e-9, atol=0, equal_nan=True
        ):
            diffs.append(str(fa.relative_to(a)))
    return diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="kpireport/resources/params/team_monthly.yaml")
    ap.add_argument("--source", required=True, help="source YAML, or DEMO for the scale-1 demo")
    ap.add_argument("--as-of", default="2026-11-30")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kpi-cube-bench-"))
    source = args.source
    if source == "DEMO":
        sys.path.insert(0, str(ROOT))
        from kpireport.report.views import demo_source

        source = str(demo_source(tmp / "demo", as_of=args.as_of))
    res = {c: _build(args.params, source, args.as_of, args.jobs, c, tmp) for c in (False, True)}
    for cube, r in res.items():
        ex = [v for v in r["execute"].values() if v is not None]
        print(
            f"{'cube   ' if cube else 'no cube'}: exit {r['exit']}, wall {r['wall']}, "
            f"peak RSS {r['rss_mb']:.0f} MB, load {r['load'][0]:.1f} -> {r['load'][1]:.1f}, "
            f"{len(ex)} reports, execute mean {np.mean(ex):.1f} s (min {min(ex):.1f}, max {max(ex):.1f})"
        )
        if r["cube"]:
            c = r["cube"]
            print(f"         cube: {c['entries']} entries, {c['groups']} groups, {c['seconds']} s")
    diffs = _same_kpis(res[False]["out"], res[True]["out"])
    n = len(list(res[False]["out"].rglob("*.kpis.csv")))
    print(f"kpis.csv: {n - len(diffs)} of {n} equal (1e-9 relative)", *diffs, sep="\n  ")
    differ = _bytes_differ(res[False]["out"], res[True]["out"])
    print(f"kpis.csv: {n - len(differ)} of {n} byte-identical", *differ, sep="\n  ")


if __name__ == "__main__":
    main()
