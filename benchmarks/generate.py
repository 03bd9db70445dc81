"""Benchmark: generate the scaled demo CRM, write it as Parquet, load it back.

Usage::

    .venv/bin/python benchmarks/generate.py [--scale 90] [--seed 7] [--out DIR] [--no-validate]

At the default scale (:data:`kpireport.demo.BENCHMARK_SCALE`) the demo has
about 1 M deals and 5 M activities. For each step it prints wall-clock seconds
*and* CPU seconds of this process (the machine is shared: when others load it,
CPU time is the steadier figure), row counts, in-memory size and the peak RSS
so far. Reading back is timed twice: plain ``pandas.read_parquet`` per table
(the floor), and ``kpireport.load`` on the written ``source.yaml`` (read +
parse + validate + currency conversion), followed by
``kpireport.data.validate.validate`` on the loaded data (what a notebook does
when it re-checks a :class:`~kpireport.data.model.CrmData`). The machine's
load average is printed at the start and at the end.

Targets (issue 2): ``kpireport.load`` at scale 90 under 60 s and 6 GB peak RSS
on a 2-core machine; load + validate at scale 1 under 2 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from kpireport.demo import BENCHMARK_SCALE, DEFAULT_SEED, generate_demo, write_demo


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)"


class _Timer:
    wall: float = 0.0
    cpu: float = 0.0

    def __str__(self) -> str:
        return f"{self.wall:7.1f} s wall, {self.cpu:6.1f} s CPU, peak RSS {_peak_rss_mb():,.0f} MB"


@contextmanager
def _timed() -> Iterator[_Timer]:
    t = _Timer()
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        yield t
    finally:
        t.wall, t.cpu = time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=BENCHMARK_SCALE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the Parquet files (default: temp)"
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="skip kpireport.load (parse + validate)"
    )
    args = parser.parse_args(argv)
    print(f"load average at start: {_load_average()}")

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "demo"
        with _timed() as t:
            tables = generate_demo(seed=args.seed, scale=args.scale)
        n_rows = sum(map(len, tables.values()))
        print(f"generate       scale={args.scale:g} seed={args.seed}: {t}  ({n_rows:,} rows)")
        for name, df in tables.items():
            mb = df.memory_usage(deep=True).sum() / 1e6
            print(f"  {name:<11} {len(df):>12,} rows {mb:>9,.0f} MB")

        with _timed() as t:
            source = write_demo(out, seed=args.seed, scale=args.scale, fmt="parquet", tables=tables)
        size = sum(p.stat().st_size for p in out.glob("*.parquet")) / 1e6
        print(f"write Parquet:  {t}  ({size:,.0f} MB on disk)")
        del tables

        with _timed() as t:
            back = {p.stem: pd.read_parquet(p) for p in sorted(out.glob("*.parquet"))}
        print(f"read_parquet:   {t}  ({sum(map(len, back.values())):,} rows; pandas only)")
        del back

        if not args.no_validate:
            import kpireport
            from kpireport.data.validate import validate

            with _timed() as t:
                data = kpireport.load(source)
            n_loaded = sum(map(len, data.tables.values()))
            print(f"kpireport.load: {t}  ({n_loaded:,} rows; read + parse + validate)")
            print(f"  -> {data!r}")
            with _timed() as t:
                report = validate(data)
            print(
                f"validate(data): {t}  ({'valid' if report.ok else 'INVALID'}, {len(report.warnings)} warning(s))"
            )
        print(f"peak RSS: {_peak_rss_mb():,.0f} MB")
    print(f"load average at end: {_load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
