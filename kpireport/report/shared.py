"""Results every report of a run needs, computed once per run instead of once per kernel.

The runner writes the data snapshot once (:mod:`kpireport.report.snapshot`);
next to it, in ``<snapshot>/shared/``, it stores goal evaluations that many
reports of a pack repeat (every team report and the management pack evaluate
the same team and organisation goals, with forecasts). Report kernels look
them up through :func:`lookup_goals` and compute on demand when there is no
entry, so notebooks still run on their own (JupyterLab, another source).

Design decisions
----------------
* **Keyed by everything the result depends on**: the data fingerprint (the
  snapshot folder is per fingerprint and its marker is checked), the goal
  period label, the evaluation day, and :func:`code_hash` of the installed
  ``kpireport`` sources. A kernel running other code than the runner (an edit
  in between) computes afresh instead of reading a stale result.
* **Per (period, day) group, all listed scopes at once.** ``evaluate_goals``
  is row-wise: a goal's result depends on the data, its own row, the day and
  (through the history window) the set of running periods, which is the
  single period of the group, exactly as in :func:`kpireport.report.views._evaluate`.
  Tests compare cached and on-demand results row for row.
* **Only with stable goal ids.** ``evaluate_goals`` numbers goals without an
  id by position, which differs between a subset and the whole table; when
  the goal table lacks unique ids, nothing is cached or looked up.
* **Parquet files written atomically** (temporary name, rename), so parallel
  kernels never read half a file; a file that cannot be read is a cache miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger("kpireport")

#: sub-folder of the snapshot holding the shared results
SHARED_DIR = "shared"
#: CrmData objects read from a snapshot, by id (the object is kept to make ids unambiguous)
_REGISTRY: dict[int, tuple[Any, Path]] = {}


@cache
def code_hash() -> str:
    """SHA-256 of the ``kpireport`` package's source files and the report templates.

    Computed once per process; part of every cache key so that a library change
    invalidates cached reports and shared results.
    """
    import kpireport

    root = Path(kpireport.__file__).resolve().parent
    files = sorted(
        p for p in root.rglob("*") if p.suffix in (".py", ".yaml", ".json", ".j2", ".css")
    )
    templates = root.parent / "templates"
    if templates.is_dir():
        files += sorted(p for p in templates.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for p in files:
        if "__pycache__" in p.parts:
            continue
        try:
            data = p.read_bytes()
        except OSError:
            continue
        h.update(p.relative_to(root.parent).as_posix().encode())
        h.update(b"\0")
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


def register(data: Any, folder: Path) -> None:
    """Remember that ``data`` was read from the snapshot ``folder`` (called by the snapshot reader)."""
    _REGISTRY[id(data)] = (data, Path(folder))


def snapshot_folder(data: Any) -> Path | None:
    """The snapshot folder ``data`` was read from, or ``None``."""
    entry = _REGISTRY.get(id(data))
    return entry[1] if entry is not None and entry[0] is data else None


def _has_stable_ids(goals: pd.DataFrame) -> bool:
    return (
        "goal_id" in goals.columns
        and not goals["goal_id"].isna().any()
        and bool(goals["goal_id"].is_unique)
    )


def _path(folder: Path, label: str, day: Any, scope: str) -> Path:
    stamp = pd.Timestamp(day).strftime("%Y-%m-%d")
    name = f"goals-{label}-{stamp}-{scope}-{code_hash()[:16]}.parquet"
    return folder / SHARED_DIR / name


def precompute_goals(
    data: Any, folder: Path, requests: Iterable[tuple[str, str, Any]]
) -> list[Path]:
    """Evaluate the goals of each ``(scope, period label, day)`` once and store them.

    Parameters
    ----------
    data
        The run's validated CrmData (the snapshot's content).
    folder
        The snapshot folder (``<out>/.work/<fingerprint[:16]>``).
    requests
        Distinct ``(scope, period_label, evaluation_day)`` groups to evaluate.

    Returns
    -------
    list of Path
        The files written or already present.
    """
    from kpireport.goals import evaluate_goals

    goals = data.tables.get("goals")
    if goals is None or len(goals) == 0 or not _has_stable_ids(goals):
        return []
    written = []
    for scope, label, day in dict.fromkeys(requests):
        path = _path(folder, label, day, scope)
        if path.exists():
            written.append(path)
            continue
        sub = goals[(goals["period"] == label) & (goals["scope"] == scope)]
        if sub.empty:
            continue
        try:
            result = evaluate_goals(data, sub.reset_index(drop=True), as_of=day)
        except Exception as exc:  # a bad goal: each kernel reports it as before
            log.debug("shared goal evaluation of %s %s skipped: %s", scope, label, exc)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".goals-", suffix=".parquet", dir=path.parent)
        os.close(fd)
        try:
            result.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(path)
    if written:
        index = {"code_hash": code_hash(), "fingerprint": data.fingerprint()}
        (folder / SHARED_DIR / "INDEX.json").write_text(json.dumps(index), encoding="utf-8")
    return written


def lookup_goals(data: Any, own: pd.DataFrame, day: Any) -> pd.DataFrame | None:
    """The stored evaluation of the goal rows ``own`` (one period label) at ``day``, or ``None``.

    Rows come back in the order of ``own``; ``None`` (compute on demand) when
    ``data`` is not a registered snapshot, ids are not stable, or any goal of
    ``own`` is missing from the stored groups.
    """
    folder = snapshot_folder(data)
    if folder is None or own.empty or not _has_stable_ids(own):
        return None
    labels = pd.unique(own["period"])
    if len(labels) != 1:
        return None
    frames = []
    for scope in pd.unique(own["scope"]):
        path = _path(folder, str(labels[0]), day, str(scope))
        if not path.exists():
            return None
        try:
            frames.append(pd.read_parquet(path))
        except Exception as exc:  # unreadable: compute instead
            log.debug("shared goal results %s unreadable: %s", path, exc)
            return None
    stored = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    stored = stored.set_index("goal_id", drop=False)
    ids = own["goal_id"].astype(str)
    if not ids.isin(stored.index).all():
        return None
    out = stored.loc[list(ids)].reset_index(drop=True)
    out.attrs["as_of"] = str(pd.Timestamp(day).date())
    return out
