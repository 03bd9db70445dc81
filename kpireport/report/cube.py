"""The runner's batched pass that fills a run's KPI cube (:mod:`kpireport.kpis.cube`).

After the snapshot is written, and only for the reports that will execute,
:func:`build_cubes` computes every query the reports will ask and writes the
results into ``<snapshot>/cube/``; the kernels then read their numbers from
there (docs/ARCHITECTURE.md, "The KPI cube").

Design decisions
----------------
* **The reports' own code decides what is computed.** The queries a report
  issues depend on its view (periods, comparison periods, goals of its scope,
  development curves, series); restating that in a second place would drift.
  So the pass evaluates, in the runner and on the data it already holds, the
  view statements of the report's notebook (``ctx = report.context(...)``
  and each ``show(report.<section>(ctx))``, or an older single
  ``view = views.<name>_view(...)``) with the report's parameters (found by
  parsing the notebook; nothing else of the notebook runs, and only
  notebooks with such statements take part) —
  for **one representative report per group** (same notebook, same
  parameters but the fan-out id). The engine caches per SQL statement, and
  nearly every statement covers all scope ids at once (``GROUP BY`` the scope
  key), so one evaluation answers the group.
* **Only groups of two or more.** A report alone in its group (the
  management pack, the finance report) would be evaluated twice — in the
  runner, serially, and again in its kernel for everything the cube does not
  hold (goal lists, forecasts) — to save nothing: its kernel reads the cube's
  stubs and runs its queries on DuckDB over the snapshot's Parquet instead,
  without loading the tables into pandas.
* **Per-scope statements are replayed, not re-evaluated.** The few statements
  that select one scope id (single-series requests: development curves,
  seller trends) are answered for every other id of the group: an additive
  one (counts, sums) by one query with the selection widened to all the ids,
  split per id (:func:`_replay_additive`); any other by re-issuing it with
  the id replaced. A report whose
  view asks something its representative did not (another headline KPI) gets
  a miss, counted and answered from the raw data in its kernel.
* **Merged with the snapshot's previous cube.** Entries are keyed by the SQL
  text on immutable data, so an entry of an earlier run stays true; the new
  cube is the union, written to a temporary folder and renamed into place.
* **The goal table is validated once, here.** The pass validates the
  source's goal table (:func:`kpireport.goals.definitions.load_goals`,
  growth baselines resolved) and the cube keeps the result, so no kernel
  validates it again (a 700 k-row table at scale 90 took seconds per call).
* ``KPIREPORT_CUBE=0`` turns the cube off (kernels then load the snapshot
  whole, as before): a switch for comparisons, not a setting to need.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kpireport.kpis.cube import enabled

log = logging.getLogger("kpireport")


#: the package whose functions a report notebook's statements may call
_VIEWS = "kpireport.report.views"


def notebook_calls(notebook: Path) -> tuple[dict[str, Any], list[tuple[str | None, ast.expr]], dict[str, str]] | None:  # fmt: skip
    """The notebook's parameter defaults and the view statements the cube pass evaluates.

    Two notebook shapes take part (docs/REPORTS.md): the per-section one —
    ``from kpireport.report.views import team as report``, ``ctx =
    report.context(load_data(source, as_of), ...)`` and one
    ``show(report.<section>(ctx))`` per cell — and the older single
    ``view = views.<name>_view(...)`` statement. Returned: the defaults, the
    ``(target name or None, call)`` statements in notebook order, and the
    aliases of the view modules. Nothing else of the notebook is run; ``None``
    when it has no such statement.
    """
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    defaults: dict[str, Any] = {}
    calls: list[tuple[str | None, ast.expr]] = []
    modules: dict[str, str] = {}

    def on_view(call: ast.expr) -> bool:
        return (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and (call.func.value.id in modules or call.func.value.id == "views")
        )

    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        try:
            tree = ast.parse("".join(src) if isinstance(src, list) else src)
        except SyntaxError:
            continue
        is_params = "parameters" in cell.get("metadata", {}).get("tags", [])
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module == _VIEWS:
                for alias in stmt.names:
                    modules[alias.asname or alias.name] = alias.name
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target, value = stmt.targets[0], stmt.value
                if not isinstance(target, ast.Name):
                    continue
                if is_params:
                    with contextlib.suppress(ValueError):
                        defaults[target.id] = ast.literal_eval(value)
                elif on_view(value):
                    calls.append((target.id, value))
            elif (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Name)
                and stmt.value.func.id == "show"
                and len(stmt.value.args) == 1
                and on_view(stmt.value.args[0])
            ):
                calls.append((None, stmt.value.args[0]))
    return (defaults, calls, modules) if calls else None


def evaluate_notebook(data: Any, notebook: Path, parameters: dict[str, Any]) -> list[Any]:
    """Evaluate the notebook's view statements (:func:`notebook_calls`) on ``data``.

    ``load_data(...)`` stands for ``data``; returns the value of every
    statement (contexts, sections or a whole view) in notebook order. Figures
    are closed.
    """
    import importlib

    found = notebook_calls(notebook)
    if found is None:
        return []
    defaults, calls, modules = found
    from kpireport.report import views

    names: dict[str, Any] = {**defaults, **parameters, "data": data, "views": views}
    names["load_data"] = lambda *args, **kwargs: data
    for alias, name in modules.items():
        with contextlib.suppress(ImportError):
            names[alias] = importlib.import_module(f"{_VIEWS}.{name}")
    results = []
    try:
        for target, call in calls:
            code = compile(ast.Expression(call), str(notebook), "eval")
            value = eval(code, {"__builtins__": {}}, names)  # noqa: S307 - parsed view calls only
            if target is not None:
                names[target] = value
            results.append(value)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    return results


def _evaluate_view(data: Any, spec: Any) -> None:
    """Evaluate the report's view statements on ``data`` (module docstring)."""
    evaluate_notebook(data, spec.notebook, spec.parameters)


def _group_key(spec: Any) -> tuple:
    params = {
        k: v
        for k, v in spec.parameters.items()
        if k not in ("source", "output_root", spec.scope) and not isinstance(v, dict | list)
    }
    return (str(spec.notebook), spec.scope, tuple(sorted((k, repr(v)) for k, v in params.items())))


def fill(data: Any, specs: Sequence[Any]) -> dict[str, float]:
    """Compute, on ``data``, every query ``specs`` will ask (module docstring); return counts."""
    from kpireport.kpis import relational
    from kpireport.kpis.engine import prepared

    prep = prepared(data)
    groups: dict[tuple, list[Any]] = {}
    for spec in specs:
        groups.setdefault(_group_key(spec), []).append(spec)
    evaluated = replayed = 0
    for group in groups.values():
        if len(group) < 2:  # nothing to share: its kernel computes it once anyway (docstring)
            continue
        rep = group[0]
        before = set(prep._cache)
        try:
            _evaluate_view(data, rep)
        except Exception as exc:  # the kernel reports it; the cube just lacks its queries
            log.info("KPI cube: %s could not be evaluated ahead (%s)", rep.report_id, exc)
            continue
        evaluated += 1
        prep = prepared(data)
        if rep.scope_id is None or len(group) == 1:
            continue
        marker = f"= {relational.quote(rep.scope_id)} THEN"
        new = [k for k in prep._cache if k not in before and k[0] in ("sql", "sqlc")]
        selective = [k for k in new if marker in k[1]]
        ctx = SimpleNamespace(prep=prep)
        others = [str(spec.scope_id) for spec in group[1:]]
        for kind, sql in selective:
            if kind == "sqlc" and _replay_additive(prep, sql, str(rep.scope_id), others):
                replayed += len(others)
                continue
            for sid in others:
                text = sql.replace(marker, f"= {relational.quote(sid)} THEN")
                (relational.fetch_columns if kind == "sqlc" else relational.fetch)(ctx, text)
                replayed += 1
    # the source's goal table, validated once for every kernel of the run (goals.load_goals)
    from kpireport.goals.definitions import load_goals

    try:
        load_goals(data)
    except Exception as exc:  # an invalid goal table: each kernel reports it
        log.info("KPI cube: the goal table could not be validated ahead (%s)", exc)
    return {"groups": len(groups), "evaluated": evaluated, "replayed": replayed}


#: the outer SELECT of an additive, day-aggregated statement (kpis.relational.aggregate)
_ADDITIVE_TAIL = re.compile(
    r"\) SELECT iv\.i, d\.k, d\.c, d\.g, SUM\(d\.m\d+\)(?:, SUM\(d\.m\d+\))* FROM d JOIN iv "
    r"ON d\.t >= iv\.s AND d\.t < iv\.e GROUP BY 1, 2, 3, 4$"
)


def _replay_additive(prep: Any, sql: str, rep: str, others: list[str]) -> bool:
    """Answer a single-scope statement for every id in ``others`` with one query.

    Only for additive statements (counts and sums per day, then per
    interval): the statement is run once with the selection widened to every
    id, and each id's result is its own rows (exactly the rows its own
    statement returns) plus the rest per ``(interval, category, group)`` as
    the unattributed rows (the totals minus its rows: a single-series request
    reads only its own column, the unattributed one may differ in the last
    bit). Returns False (nothing done) for any other statement.
    """
    import numpy as np
    import pandas as pd

    from kpireport.kpis.relational import quote

    if not _ADDITIVE_TAIL.search(sql):
        return False
    m = re.search(r"CASE WHEN (\S+) = " + re.escape(quote(rep)) + r" THEN \1 END", sql)
    if m is None or sql.count(m.group(0)) != 1:
        return False
    key = m.group(1)
    ids = [rep, *others]
    wide = sql.replace(
        m.group(0), f"CASE WHEN {key} IN ({', '.join(quote(i) for i in ids)}) THEN {key} END"
    )
    cols = prep.sql_engine().columns(wide)
    names = ["i", "k", "c", "g"] + [f"m{j}" for j in range(len(cols) - 4)]
    df = pd.DataFrame(dict(zip(names, cols, strict=True)))
    measures = names[4:]
    dims = ["i", "c", "g"]
    total = df.groupby(dims, dropna=False, sort=False)[measures].sum()
    own = {k: g for k, g in df.groupby("k", sort=False)}

    def objects(values: Any) -> np.ndarray:
        return np.array([None if v is None or v != v else v for v in values], dtype=object)

    for sid in others:
        mine = own.get(sid, df.iloc[:0])
        rest = total.sub(mine.groupby(dims, dropna=False)[measures].sum(), fill_value=0.0)
        rest = rest.reset_index()
        out = [
            np.concatenate([mine["i"].to_numpy(float), rest["i"].to_numpy(float)]),
            objects([*mine["k"], *([None] * len(rest))]),
            objects([*mine["c"], *rest["c"]]),
            objects([*mine["g"], *rest["g"]]),
            *(np.concatenate([mine[c].to_numpy(float), rest[c].to_numpy(float)]) for c in measures),
        ]
        text = sql.replace(m.group(0), f"CASE WHEN {key} = {quote(sid)} THEN {key} END")
        prep.memo(("sqlc", text), lambda out=out: out)
    return True


def build_cubes(plans: Sequence[Any], tasks: Sequence[Any]) -> None:
    """Write the KPI cube of every snapshot the ``tasks`` read (the runner's setup step).

    ``plans`` are the runner's planned reports (``.spec``, ``.data``,
    ``.snapshot``); only those with a task (not current) are computed.
    """
    if not enabled() or not tasks:
        return
    todo = {t.spec.report_id for t in tasks}
    by_snapshot: dict[Path, tuple[Any, list[Any]]] = {}
    for p in plans:
        if p.snapshot is not None and p.data is not None and p.spec.report_id in todo:
            by_snapshot.setdefault(p.snapshot, (p.data, []))[1].append(p.spec)
    for snapshot, (data, specs) in by_snapshot.items():
        write_cube(data, specs, snapshot)


def write_cube(data: Any, specs: Sequence[Any], snapshot: Path) -> Path:
    """Fill the cube of ``specs`` on ``data`` and write it to ``<snapshot>/cube`` (atomically)."""
    from kpireport.kpis.cube import CUBE_DIR, CUBE_MARKER, read_entries, stub_frame, write_entries
    from kpireport.kpis.engine import prepared

    t0 = time.perf_counter()
    folder = Path(snapshot) / CUBE_DIR
    stats = fill(data, specs)
    entries = dict(prepared(data)._cache)
    if (folder / CUBE_MARKER).exists():  # an earlier run's entries stay true on the same data
        with contextlib.suppress(OSError, ValueError, KeyError):
            entries = {**read_entries(folder), **entries}
    tmp = Path(tempfile.mkdtemp(prefix=".cube-", dir=snapshot))
    try:
        n = write_entries(entries, tmp)
        (tmp / "stubs").mkdir()
        # a scanned Parquet folder answers from its own one-row stubs: writing the
        # cube's stubs must not read its big tables into pandas
        peek = getattr(data.tables, "peek", None)
        for name in list(data.tables):
            df = peek(name) if peek is not None else data.tables[name]
            stub_frame(df).to_parquet(tmp / "stubs" / f"{name}.parquet", index=False)
        marker = json.loads((Path(snapshot) / "SNAPSHOT.json").read_text(encoding="utf-8"))
        meta = {
            "fingerprint": marker["fingerprint"],
            "tables": sorted(data.tables),
            "entries": n,
            **stats,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        (tmp / CUBE_MARKER).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        old = Path(tempfile.mkdtemp(prefix=".cube-old-", dir=snapshot))
        old.rmdir()
        with contextlib.suppress(FileNotFoundError):  # another run (a shard) may move it first
            os.rename(folder, old)
        try:
            os.rename(tmp, folder)
        except OSError:  # another run's cube landed first: its entries are as true, ours miss
            log.info("KPI cube: another run wrote %s first; kept it", folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info(
        "KPI cube: %d entries for %d reports in %.1f s (%s)",
        n, len(specs), time.perf_counter() - t0, stats,
    )  # fmt: skip
    return folder
