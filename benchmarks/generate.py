"""Benchmark: generate the scaled demo CRM, write it as Parquet, load it back.

Usage::

    .venv/bin/python benchmarks/generate.py [--scale 90] [--seed 7] [--out DIR] [--no-validate]

At the default scale (:data:`kpireport.data.demo.BENCHMARK_SCALE`) the demo has
about 1 M deals and 5 M activities. Prints wall-clock seconds for each step,
row counts, in-memory size and peak RSS. Reading back is timed twice: plain
``pandas.read_parquet`` per table, and ``kpireport.data.load.load`` (parse +
validate) when that module is available.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from kpireport.data.demo import BENCHMARK_SCALE, generate_demo, write_demo


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=BENCHMARK_SCALE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the Parquet files (default: temp)"
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="skip kpireport.load (parse + validate)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "demo"
        t0, c0 = time.perf_counter(), time.process_time()
        tables = generate_demo(seed=args.seed, scale=args.scale)
        t_gen, c_gen = time.perf_counter() - t0, time.process_time() - c0
        rss_gen = _peak_rss_mb()
        print(
            f"generate  scale={args.scale:g} seed={args.seed}: {t_gen:6.1f} s wall, {c_gen:.1f} s CPU"
            f"  (peak RSS {rss_gen:,.0f} MB)"
        )
        for name, df in tables.items():
            mb = df.memory_usage(deep=True).sum() / 1e6
            print(f"  {name:<11} {len(df):>12,} rows {mb:>9,.0f} MB")

        t0 = time.perf_counter()
        source = write_demo(out, seed=args.seed, scale=args.scale, fmt="parquet", tables=tables)
        t_write = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.glob("*.parquet")) / 1e6
        print(f"write parquet: {t_write:6.1f} s  ({size:,.0f} MB on disk)")
        del tables

        t0 = time.perf_counter()
        back = {p.stem: pd.read_parquet(p) for p in sorted(out.glob("*.parquet"))}
        t_read = time.perf_counter() - t0
        print(f"read parquet (pandas): {t_read:6.1f} s  ({sum(map(len, back.values())):,} rows)")
        del back

        if not args.no_validate:
            try:
                from kpireport.data.load import load
            except ImportError:
                print("kpireport.data.load not available; skipped")
            else:
                t0 = time.perf_counter()
                data = load(source)
                t_load = time.perf_counter() - t0
                print(f"kpireport load (parse + validate): {t_load:6.1f} s  -> {data!r}")
        print(f"peak RSS: {_peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
