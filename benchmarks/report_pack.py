"""Benchmark: build a report pack with ``kpireport run`` and with a plain shell loop of CLIs.

The same reports are produced twice:

1. ``kpireport.report.run`` (data loaded once, Parquet snapshot, ``--jobs``
   parallel processes, in-process nbconvert and WeasyPrint);
2. a shell script that, report by report, calls the ``papermill``,
   ``jupyter nbconvert`` and ``weasyprint`` command-line tools (what a team
   without kpireport would write).

It prints the wall time of both, the speed-up and the mean time per stage
(execute / HTML / PDF) per report.

Usage
-----
    python benchmarks/report_pack.py --selftest 8          # fan tests/notebooks/ok.ipynb out over 8 teams
    python benchmarks/report_pack.py --params params/monthly_pack.yaml --source DEMO --as-of 2025-04-01

The second form needs the real notebooks (``notebooks/*.ipynb``) and a demo
source; it is the issue's target: the ~30-report monthly pack in <= 90 s and
>= 3x faster than the shell loop on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def selftest_params(folder: Path, n: int) -> Path:
    """A run definition fanning the ok test notebook out over ``n`` teams."""
    teams = ", ".join(f'"T{i:02d}"' for i in range(1, n + 1))
    path = folder / "selftest.yaml"
    path.write_text(
        f"title: Benchmark report\nnotebook: {ROOT / 'tests/notebooks/ok.ipynb'}\n"
        f"fanout: {{team: [{teams}]}}\nperiod: 2024-01\nas_of: 2024-02-15\nformats: [html, pdf]\n",
        encoding="utf-8",
    )
    return path


def shell_loop(manifests: list[dict], folder: Path, root: Path) -> float:
    """Produce the same reports with a shell loop of CLIs; return its wall time."""
    lines = ["set -e"]
    for i, m in enumerate(manifests):
        nb = shlex.quote(m["notebook"])
        base = folder / f"r{i:03d}"
        params = shlex.quote(json.dumps(m["parameters"]))
        lines += [
            f"{BIN / 'papermill'} {nb} {base}.ipynb -y {params} --no-progress-bar -k python3 >/dev/null 2>&1",
            f"{BIN / 'jupyter'} nbconvert --to html --no-input --template kpireport "
            f"--TemplateExporter.extra_template_basedirs={ROOT / 'templates'} {base}.ipynb >/dev/null 2>&1",
            f"{BIN / 'weasyprint'} {base}.html {base}.pdf >/dev/null 2>&1",
        ]
    script = folder / "loop.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    subprocess.run(["bash", str(script)], check=True, cwd=root)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=Path, default=ROOT / "params/monthly_pack.yaml")
    ap.add_argument("--source", help="data source for the pack (e.g. the demo folder)")
    ap.add_argument("--as-of", dest="as_of")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument(
        "--selftest", type=int, metavar="N", help="benchmark N copies of the ok test notebook"
    )
    ap.add_argument("--skip-loop", action="store_true", help="only time kpireport run")
    args = ap.parse_args(argv)

    from kpireport.report.runner import run

    with tempfile.TemporaryDirectory(prefix="kpireport-bench-") as tmp:
        folder = Path(tmp)
        params = selftest_params(folder, args.selftest) if args.selftest else args.params
        t0 = time.perf_counter()
        result = run(
            params,
            source=args.source,
            as_of=args.as_of,
            out=folder / "pack",
            jobs=args.jobs,
            force=True,
        )
        pack_s = time.perf_counter() - t0
        ok = [r for r in result.reports if r.status == "success"]
        print(
            f"kpireport run: {len(result.reports)} reports ({len(ok)} ok) in {pack_s:.1f} s with {args.jobs} jobs"
        )
        for stage in ("execute", "html", "pdf", "publish"):
            vals = [r.timings[stage] for r in ok if stage in r.timings]
            if vals:
                print(
                    f"  {stage:<8} mean {statistics.mean(vals):5.2f} s  median {statistics.median(vals):5.2f} s  max {max(vals):5.2f} s"
                )
        if result.failed:
            print(result.summary())
        if args.skip_loop or not ok:
            return 0 if result.ok else 1
        manifests = [
            json.loads((result.out / (r.report_id + ".manifest.json")).read_text()) for r in ok
        ]
        loop_dir = folder / "loop"
        loop_dir.mkdir()
        loop_s = shell_loop(manifests, loop_dir, ROOT)
        print(
            f"shell loop (papermill + jupyter nbconvert + weasyprint CLIs): {len(ok)} reports in {loop_s:.1f} s"
        )
        print(f"speed-up: {loop_s / pack_s:.1f}x")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
