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
    python benchmarks/report_pack.py                         # the demo monthly pack (demo data written to a temp dir)
    python benchmarks/report_pack.py --params kpireport/resources/params/monthly_pack.yaml --source DEMO --as-of 2026-05-12

With ``--executors local,dask`` the same pack is built once per executor,
side by side (issue 11): ``dask`` is a 2-worker ``LocalCluster`` started by
the run (``--jobs`` workers). For each it prints the wall time, the peak
resident memory of the whole process tree (the run, workers, report
processes and kernels, sampled every 0.2 s) and the peak of the largest
subtree under the run (a report process with its kernel locally; a Dask
nanny with its worker, report process and kernel), and whether the KPI
tables of the executors are identical.

    python benchmarks/report_pack.py --executors local,dask --skip-loop
    python benchmarks/report_pack.py --executors local,warm,dask,dask-warm --warm-kernels 1

(``warm``: local with ``--warm-kernels``; ``dask-warm``: Dask with
``--warm-kernels`` per worker.)

The real-pack mode runs the report notebooks (``kpireport/resources/notebooks/*.ipynb``) on the
demo CRM (written as Parquet into a temporary folder unless ``--source`` is
given); issue 11's target: >= 8x faster than the shell loop on a 2-core
machine (about 1.2 s of wall time per report) and Dask within 1.3x of local.
The shell loop gets the source path as its ``source`` parameter (replacing
the run's snapshot in the manifest's parameters), so each of its notebooks
loads the data itself, as a loop without kpireport's snapshot would. A
failing step of the loop stops it and its command and log are printed.
Per report it prints kernel start, report-module imports, the notebook's
cells, HTML, PDF and publish (``*_ahead``: a warm kernel started before the
report's turn). The machine's
load average is printed before and after: other work on the machine slows
both sides.
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
        f"fanout: {{team: [{teams}]}}\nperiod: 2024-01\nas_of: 2024-02-15\nformats: [html, pdf]\n"
        "source: demo\n",
        encoding="utf-8",
    )
    return path


def shell_loop(
    manifests: list[dict], folder: Path, root: Path, source: str | None = None
) -> tuple[float, dict[str, float]]:
    """Produce the same reports with a shell loop of CLIs; return wall time and seconds per stage.

    Each step's output goes to ``<report>.<stage>.log``; when a step fails the
    loop stops and :class:`LoopFailedError` carries the step, its command and the
    end of its log (stderr included). Timings use bash arithmetic on
    ``date +%s%N`` (no ``bc``, which a fresh machine lacks).
    """
    stages_tsv = folder / "stages.tsv"
    lines = [
        "t() { date +%s%N; }",
        f": > {shlex.quote(str(stages_tsv))}",
        "step() {  # step STAGE LOG CMD...: time one CLI call, stop the loop with its log on failure",
        "  local stage=$1 log=$2; shift 2; local s; s=$(t)",
        '  "$@" > "$log" 2>&1 || { local rc=$?',
        '    echo "STEP FAILED: $stage (exit $rc)" >&2; echo "COMMAND: $*" >&2',
        '    tail -n 40 "$log" >&2; exit 1; }',
        f'  printf "%s\\t%s\\n" "$stage" "$(( $(t) - s ))" >> {shlex.quote(str(stages_tsv))}',
        "}",
    ]
    for i, m in enumerate(manifests):
        nb = shlex.quote(m["notebook"])
        base = folder / f"r{i:03d}"
        parameters = dict(m["parameters"])
        if source:  # the loop loads the data itself, not kpireport's snapshot
            parameters["source"] = source
        params = shlex.quote(json.dumps(parameters))
        stages = {
            "execute": f"{BIN / 'papermill'} {nb} {base}.ipynb -y {params} --no-progress-bar -k python3",
            "html": f"{BIN / 'jupyter'} nbconvert --to html --no-input --template kpireport "
            f"--TemplateExporter.extra_template_basedirs={ROOT / 'kpireport/resources/templates'} {base}.ipynb",
            "pdf": f"{BIN / 'weasyprint'} {base}.html {base}.pdf",
        }
        lines += [f"step {stage} {base}.{stage}.log {cmd}" for stage, cmd in stages.items()]
    script = folder / "loop.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    done = subprocess.run(["bash", str(script)], cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise LoopFailedError(done.stderr.strip() or f"loop.sh exited {done.returncode}")
    per: dict[str, list[float]] = {}
    for line in stages_tsv.read_text().splitlines():
        stage, ns = line.split("\t")
        per.setdefault(stage, []).append(int(ns) / 1e9)
    return wall, {k: statistics.mean(v) for k, v in per.items()}


class LoopFailedError(RuntimeError):
    """A step of the shell loop failed; the message holds the step, command and its log."""


def load_average() -> str:
    """The 1/5/15-minute load average (other work on the machine slows every timing)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def demo_source(folder: Path, as_of: str) -> str:
    """Write the demo CRM (Parquet) into ``folder``; return its source YAML."""
    from kpireport.demo import write_demo

    return str(write_demo(folder / "data", fmt="parquet", as_of=as_of))


class RssSampler:
    """Peak RSS of this process tree, total and per subtree under this process (psutil)."""

    def __init__(self, every: float = 0.2) -> None:
        import threading

        self.every = every
        self.total = 0
        self.subtree = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, proc) -> int:
        import psutil

        try:
            return proc.memory_info().rss
        except psutil.Error:
            return 0

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            try:
                kids = me.children(recursive=False)
            except psutil.Error:
                kids = []
            total = self._rss(me)
            for k in kids:
                try:
                    tree = [k, *k.children(recursive=True)]
                except psutil.Error:
                    tree = [k]
                sub = sum(self._rss(p) for p in tree)
                total += sub
                self.subtree = max(self.subtree, sub)
            self.total = max(self.total, total)
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def time_run(params: Path, args: argparse.Namespace, out: Path, executor: str):
    """Build the pack once with ``executor``; print its timings and peak RSS."""
    from kpireport.report.runner import run

    load0 = load_average()
    cpu0, wall0 = os.times(), time.time()
    t0 = time.perf_counter()
    with RssSampler() as rss:
        result = run(
            params, source=args.source, as_of=args.as_of, out=out, jobs=args.jobs,
            force=True, executor="dask" if executor.startswith("dask") else "local",
            warm_kernels=args.warm_kernels if executor in ("warm", "dask-warm") else 0,
        )  # fmt: skip
    pack_s = time.perf_counter() - t0
    ok = [r for r in result.reports if r.status == "success"]
    print(
        f"kpireport run --executor {executor}: {len(result.reports)} reports ({len(ok)} ok) "
        f"in {pack_s:.1f} s with {args.jobs} jobs ({pack_s / max(1, len(ok)):.2f} s per report); "
        f"load {load0} before, {load_average()} after"
    )
    print(
        f"  peak RSS {rss.total / 2**20:.0f} MiB for the whole process tree; largest subtree "
        f"{rss.subtree / 2**20:.0f} MiB ({'a Dask worker with its reports' if executor.startswith('dask') else 'a report process with its kernel'})"
    )
    cpu1 = os.times()
    cpu_s = sum(
        getattr(cpu1, k) - getattr(cpu0, k)
        for k in ("user", "system", "children_user", "children_system")
    )
    starts = [
        json.loads((result.out / (r.report_id + ".manifest.json")).read_text())["started_at"]
        for r in ok
    ]
    if starts:
        from datetime import datetime

        first = min(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in starts)
        print(
            f"  setup    {first - wall0:5.2f} s  (load + validate + snapshot + prewarm / cluster start, before the first report)"
        )
    print(f"  per report ({len(ok)} reports; *_ahead: a warm kernel, before the report's turn):")
    for stage in STAGES:
        vals = [r.timings[stage] for r in ok if stage in r.timings]
        if vals:
            print(
                f"  {stage:<13} mean {statistics.mean(vals):5.2f} s  median {statistics.median(vals):5.2f} s  max {max(vals):5.2f} s"
            )
    if not executor.startswith("dask"):  # Dask workers are not children the run waits for
        print(
            f"  CPU      {cpu_s:.0f} s of {pack_s * (os.cpu_count() or 1):.0f} core-seconds ({cpu_s / pack_s:.2f} cores busy on average)"
        )
    if result.failed:
        print(result.summary())
    return result, pack_s


#: the per-report breakdown: kernel start, report-module imports, cells, HTML, PDF, publish
STAGES = ("kernel", "imports", "kernel_ahead", "imports_ahead", "execute", "html", "pdf", "publish")


def kpi_tables(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*.kpis.csv"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--params", type=Path, default=ROOT / "kpireport/resources/params/monthly_pack.yaml"
    )
    ap.add_argument("--source", help="data source for the pack (e.g. the demo folder)")
    ap.add_argument("--as-of", dest="as_of")
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument(
        "--selftest", type=int, metavar="N", help="benchmark N copies of the ok test notebook"
    )
    ap.add_argument("--skip-loop", action="store_true", help="only time kpireport run")
    ap.add_argument(
        "--executors",
        default="local",
        help="comma-separated executors to time side by side: local,warm,dask,dask-warm "
        "(warm, dask-warm: with --warm-kernels; default local)",
    )
    ap.add_argument("--warm-kernels", type=int, default=2, help="kernels started ahead (warm)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kpireport-bench-") as tmp:
        folder = Path(tmp)
        params = selftest_params(folder, args.selftest) if args.selftest else args.params
        if not args.selftest:
            from kpireport.demo import DEFAULT_AS_OF

            args.as_of = args.as_of or DEFAULT_AS_OF
            if not args.source:
                args.source = demo_source(folder, args.as_of)
                print(f"demo data written to {args.source}")
        print(f"load average before: {load_average()} on {os.cpu_count()} cores")
        timed: dict[str, tuple[float, Path]] = {}
        results = {}
        for executor in [e.strip() for e in args.executors.split(",") if e.strip()]:
            results[executor], secs = time_run(params, args, folder / f"pack-{executor}", executor)
            timed[executor] = (secs, results[executor].out)
        first = next(iter(results))  # the shell loop is compared with the first executor
        result, pack_s = results[first], timed[first][0]
        ok = [r for r in result.reports if r.status == "success"]
        all_ok = all(r.ok for r in results.values())
        if len(timed) > 1:
            base_s, base_out = timed[next(iter(timed))]
            for name, (secs, out) in list(timed.items())[1:]:
                mine, base = kpi_tables(out), kpi_tables(base_out)
                same = mine == base
                print(
                    f"{name} vs {next(iter(timed))}: {secs / base_s:.2f}x the wall time; "
                    f"KPI tables identical: {same} ({len(mine)} tables)"
                )
                for key in sorted(set(mine) | set(base)):
                    if mine.get(key) != base.get(key):
                        a = (base.get(key) or "").splitlines()
                        b = (mine.get(key) or "").splitlines()
                        diff = [
                            f"    - {x}\n    + {y}" for x, y in zip(a, b, strict=False) if x != y
                        ]
                        print(f"  differs: {key} ({len(a)} vs {len(b)} rows)", *diff[:3], sep="\n")
        if args.skip_loop or not ok:
            return 0 if all_ok else 1
        manifests = [
            json.loads((result.out / (r.report_id + ".manifest.json")).read_text()) for r in ok
        ]
        loop_dir = folder / "loop"
        loop_dir.mkdir()
        source = None if args.selftest else str(Path(args.source).resolve())
        load0 = load_average()
        try:
            loop_s, loop_stages = shell_loop(manifests, loop_dir, ROOT, source)
        except LoopFailedError as exc:
            print(f"shell loop failed:\n{exc}")
            return 1
        print(
            f"shell loop (papermill + jupyter nbconvert + weasyprint CLIs): {len(ok)} reports in "
            f"{loop_s:.1f} s ({loop_s / len(ok):.2f} s per report); load {load0} before, "
            f"{load_average()} after"
        )
        for stage, mean in loop_stages.items():
            print(f"  {stage:<8} mean {mean:5.2f} s")
        print(f"speed-up: {loop_s / pack_s:.1f}x")
        print(f"load average after: {load_average()}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
