"""Benchmark: a sample of seller scorecards from the scaled demo (issue 11's 500-scorecard target).

The scale-90 demo has 2,160 sellers (1,794 active through October 2026).
Building 500 scorecards takes hours on a shared 2-core machine before the
engine's per-run KPI cube (issue 10), so this builds an evenly spread sample
of ``--n`` of them with ``--jobs`` report processes and prints the set-up
(load + validate + snapshot), the per-report breakdown, peak RSS of the
process tree and of the largest report subtree, and the load average. Scale
the per-report figure to 500 or 2,000 yourself (docs/SCALING.md does).

Usage
-----
    kpireport demo-data --out /tmp/s90 --scale 90 --format parquet --as-of 2026-11-30
    python benchmarks/scorecards_at_scale.py --source /tmp/s90/source.yaml --n 12
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_pack import ROOT, RssSampler, load_average  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", required=True, help="source.yaml of the scaled demo (Parquet)")
    ap.add_argument("--as-of", dest="as_of", default="2026-11-30")
    ap.add_argument("--n", type=int, default=12, help="scorecards in the sample")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)

    import pandas as pd

    from kpireport.report.runner import run

    folder = Path(args.source).parent
    sellers = pd.read_parquet(folder / "sellers.parquet")
    period_start, period_end = "2026-10-01", "2026-10-31"  # previous-month of the default as-of
    active = sellers[
        (sellers.active_from <= period_start)
        & (sellers.active_to.isna() | (sellers.active_to >= period_end))
    ]
    ids = list(active.seller_id)
    sample = ids[:: max(1, len(ids) // args.n)][: args.n]
    print(f"{len(sellers)} sellers, {len(ids)} active through the period; sample of {len(sample)}")
    load0, wall0, t0 = load_average(), time.time(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kpireport-scale-") as tmp, RssSampler() as rss:
        res = run(
            ROOT / "kpireport/resources/params/seller_monthly.yaml", source=args.source,
            as_of=args.as_of, out=Path(tmp) / "out", jobs=args.jobs, force=True, only=sample,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        ok = [r for r in res.reports if r.status == "success"]
        starts = [
            json.loads((res.out / (r.report_id + ".manifest.json")).read_text())["started_at"]
            for r in ok
        ]
    print(
        f"{len(res.reports)} scorecards ({len(ok)} ok) in {wall:.1f} s with {args.jobs} jobs; "
        f"load {load0} before, {load_average()} after"
    )
    if starts:
        first = min(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in starts)
        reports_s = wall - (first - wall0)
        print(
            f"  setup {first - wall0:.1f} s (load + validate + snapshot); reports {reports_s:.1f} s "
            f"({reports_s / len(ok):.1f} s per scorecard with {args.jobs} jobs)"
        )
    print(
        f"  peak RSS {rss.total / 2**20:,.0f} MiB (process tree, shared pages counted per process); "
        f"largest subtree {rss.subtree / 2**20:,.0f} MiB (a report process and its kernel)"
    )
    for stage in ("kernel", "imports", "execute", "html", "pdf", "publish"):
        vals = [r.timings[stage] for r in ok if stage in r.timings]
        if vals:
            print(f"  {stage:<8} mean {statistics.mean(vals):6.2f} s  max {max(vals):6.2f} s")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
