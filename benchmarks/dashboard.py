"""Dashboard speed with a real browser: first page and selection change on the demo data.

Starts ``kpireport serve`` (a whole CLI process) on a free port, waits for its
warm-up, and drives Debian's headless chromium with Playwright. Targets
(issue 15): first page <= 2 s, selection change <= 0.5 s on cached
computations. Also prints the uncached (cold) times and the server's peak RSS.

    .venv/bin/python benchmarks/dashboard.py [--source SRC] [--as-of 2026-11-20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def start_server(source: str, as_of: str) -> tuple[subprocess.Popen, str, queue.Queue]:
    cmd = [sys.executable, "-m", "kpireport.cli", "serve", "--source", source, "--port", "0",
           "--as-of", as_of]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    url = wait_line(lines, r"dashboard on (http://\S+)/ ").group(1)
    return proc, url, lines


def wait_line(lines: queue.Queue, pattern: str, timeout: float = 300) -> re.Match:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        print("  server:", line.rstrip())
        m = re.search(pattern, line)
        if m:
            return m
    raise SystemExit(f"the server never printed {pattern!r}")


class RssWatch(threading.Thread):
    """Peak RSS of a process tree, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = psutil.Process(pid), 0, False

    def run(self) -> None:
        while not self.stop:
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                return
            time.sleep(0.05)


def first_page(browser, url: str, heading: str, ctx=None) -> float:
    """Navigation start to heading and first chart visible; a new context has an empty cache."""
    own = ctx is None
    ctx = ctx or browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    t = time.perf_counter()
    page.goto(url)
    page.locator("h1", has_text=heading).first.wait_for(timeout=120_000)
    page.locator("figure.chart img").first.wait_for(timeout=120_000)
    secs = time.perf_counter() - t
    page.close()
    if own:
        ctx.close()
    return secs


def change(page, select_index: int, label: str, heading: str) -> float:
    t = time.perf_counter()
    page.locator("select").nth(select_index).select_option(label=label)
    page.locator("h1", has_text=heading).first.wait_for(timeout=120_000)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--source", help="data source (default: the demo CRM, written to a temp folder)"
    )
    ap.add_argument("--as-of", default="2026-11-20")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    source = args.source
    if not source:
        from kpireport.demo import write_demo

        source = str(write_demo(Path(tmp.name), fmt="parquet", as_of="2026-11-30"))
    load_start = psutil.getloadavg()
    t0 = time.perf_counter()
    proc, url, lines = start_server(source, args.as_of)
    rss = RssWatch(proc.pid)
    rss.start()
    t_ready = time.perf_counter() - t0
    wait_line(lines, r"warm-up: ")
    t_warm = time.perf_counter() - t0
    results: dict[str, list[float]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            for _ in range(args.repeat):
                results.setdefault("first page, overview (cached)", []).append(
                    first_page(browser, url + "/", "Nordlys Systems Oy")
                )
            warm_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            first_page(browser, url + "/", "Nordlys Systems Oy", warm_ctx)
            for _ in range(args.repeat):
                results.setdefault("first page, returning visitor (browser cache)", []).append(
                    first_page(browser, url + "/", "Nordlys Systems Oy", warm_ctx)
                )
            warm_ctx.close()
            results["first page, a seller (uncached)"] = [
                first_page(browser, url + "/?seller=S001&period=2026-11", "Seller")
            ]
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(url + "/")
            page.locator("h1", has_text="Nordlys").first.wait_for(timeout=120_000)
            teams = ["Enterprise", "Mid-Market", "SMB", "Partners Öst"]
            for _ in range(args.repeat):
                for team in teams:
                    results.setdefault("selection change, team (cached)", []).append(
                        change(page, 0, f"Team · {team}", f"Team {team} ·")
                    )
            results["selection change, period (uncached)"] = [
                change(page, 1, "2026-10", "October 2026")
            ]
            change(page, 1, "2026-09", "September 2026")  # computes September once
            for _ in range(args.repeat):
                for label, head in (("2026-10", "October 2026"), ("2026-09", "September 2026")):
                    results.setdefault("selection change, period (cached)", []).append(
                        change(page, 1, label, head)
                    )
            browser.close()
    finally:
        rss.stop = True
        proc.terminate()
        proc.wait(10)
    print()
    print(f"server start to 'ready': {t_ready:.1f} s; warm-up done after {t_warm:.1f} s")
    print(f"server peak RSS: {rss.peak / 2**20:.0f} MiB")
    print(f"{'measurement':<46} {'n':>3} {'median':>8} {'max':>8}  target")
    for name, xs in results.items():
        target = "<= 2 s" if name.startswith("first") else "<= 0.5 s"
        print(f"{name:<46} {len(xs):>3} {statistics.median(xs):>7.2f}s {max(xs):>7.2f}s  {target}")
    cores = psutil.cpu_count()
    print(
        f"load average (1/5/15 min) on {cores} cores: at start "
        f"{' '.join(f'{x:.1f}' for x in load_start)}, at end "
        f"{' '.join(f'{x:.1f}' for x in psutil.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
