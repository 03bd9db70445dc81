"""Measure ipykernel zmq port collisions under concurrent kernel starts (papermill issue #511).

jupyter_client picks a kernel's five TCP ports by binding port 0, reading the
port and closing the socket; the kernel binds them later. Two kernels started
at the same moment can be handed the same port in that window, and one of
them fails with ``ZMQError: Address already in use``.

Two measurements:

1. **Allocation only** (cheap): ``--concurrent`` connection files written at
   once, as that many simultaneous kernel starts would, ``--rounds`` times;
   counts rounds in which two of them share a port (no kernel is started).
2. **Real kernels**: ``--kernels`` kernels started at the same time (one
   process each, as report processes do), ``--kernel-rounds`` times; counts
   starts that fail.

    python benchmarks/kernel_ports.py --concurrent 16 --rounds 2000 --kernels 8 --kernel-rounds 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path


def allocate(folder: str, i: int) -> list[int]:
    from jupyter_client.connect import write_connection_file

    fname, info = write_connection_file(str(Path(folder) / f"k{i}.json"), transport="tcp")
    return [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]


def start_one(_: int) -> str:
    """Start one kernel, wait until it answers, shut it down; ``ok`` or the error."""
    from jupyter_client.manager import start_new_kernel

    try:
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    return "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--concurrent", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--kernels", type=int, default=8)
    ap.add_argument("--kernel-rounds", type=int, default=3)
    args = ap.parse_args()

    clashes = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.concurrent) as pool:
        for r in range(args.rounds):
            folder = Path(tmp) / str(r)
            folder.mkdir()
            batch = pool.map(partial(allocate, str(folder)), range(args.concurrent))
            ports = [p for ps in batch for p in ps]
            clashes += len(ports) != len(set(ports))
    print(
        f"allocation: {args.rounds} rounds of {args.concurrent} simultaneous kernels "
        f"({5 * args.concurrent} ports each): {clashes} round(s) with a shared port "
        f"({time.perf_counter() - t0:.1f} s)"
    )

    results: list[str] = []
    t0 = time.perf_counter()
    ctx = mp.get_context("fork")
    for _ in range(args.kernel_rounds):
        with ctx.Pool(args.kernels) as p:
            results += p.map(start_one, range(args.kernels))
    failed = [r for r in results if r != "ok"]
    print(
        f"real kernels: {len(results)} started in {args.kernel_rounds} rounds of {args.kernels} "
        f"at once: {len(failed)} failed ({time.perf_counter() - t0:.1f} s); load {os.getloadavg()}"
    )
    for f in sorted(set(failed)):
        print(f"  {failed.count(f)} x {f}")
    print(json.dumps({"clash_rounds": clashes, "kernel_failures": len(failed)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
