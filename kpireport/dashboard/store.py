"""The dashboard's data: loaded once, re-read when the source changes, shared by every visitor.

Design decisions
----------------
* **One store per server**, shared by all sessions (Panel runs every
  session in the server process). :meth:`DataStore.current` returns the
  last good :class:`Snapshot`; it re-reads the source when a file's
  modification time or size changed (folders: every file in them; a source
  YAML: the YAML and the files its ``path:`` points at), and for a database
  URL when :attr:`DataStore.ttl` seconds (default 15 min) have passed.
* **Last good data wins.** A source that fails to load (bad file, database
  down, contract broken) keeps the previous snapshot and sets
  :attr:`Snapshot.error` to one sentence, which the page shows as a banner —
  never a traceback. Before any good load the page says only that.
* **Computed once.** :meth:`DataStore.cached` memoises page content per
  snapshot version and key, with one lock per key, so a hundred visitors
  opening the same team page compute it once; a new snapshot version makes
  old entries unreachable (they are dropped, LRU-bounded).
* **Clocks.** The wall clock is used only for "loaded at"/TTL bookkeeping
  (a monotonic timer); the business day "today" is the ``as_of`` the CLI
  passes in (docs/PERIODS.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpireport.errors import KpiReportError

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

log = logging.getLogger("kpireport")

#: default re-read interval for database sources, in seconds
DEFAULT_TTL = 15 * 60
#: at most this many cached page parts are kept
CACHE_SIZE = 512


@dataclass
class Snapshot:
    """One loaded version of the data and the facts the page shows about it."""

    data: CrmData
    goals: Any
    version: int
    loaded_at: dt.datetime
    load_seconds: float
    data_as_of: str
    error: str | None = None
    teams: list[str] = field(default_factory=list)
    sellers: dict[str, str] = field(default_factory=dict)
    team_of: dict[str, str] = field(default_factory=dict)


def _is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def _signature(paths: list[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            if p.is_dir():
                for f in sorted(p.iterdir()):
                    if f.is_file():
                        st = f.stat()
                        out.append((str(f), st.st_mtime_ns, st.st_size))
            else:
                st = p.stat()
                out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), None, None))
    return tuple(out)


def _watched(source: str, goals: str | None) -> list[Path]:
    """Files and folders whose change means "re-read" (the source, what a YAML points at, goals)."""
    paths: list[Path] = []
    p = Path(source)
    paths.append(p)
    if p.suffix.lower() in (".yaml", ".yml") and p.is_file():
        import yaml

        try:
            spec = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            spec = {}
        target = spec.get("path") if isinstance(spec, dict) else None
        if target:
            paths.append((p.parent / str(target)).resolve())
    if goals:
        paths.append(Path(goals))
    return paths


def _data_as_of(data: CrmData) -> str:
    """The last day with any record (deals, activities, leads, revenue), ISO, or ''."""
    import pandas as pd

    last = []
    for table, col in (
        ("deals", "created_at"),
        ("deals", "closed_at"),
        ("activities", "occurred_at"),
        ("leads", "created_at"),
        ("revenue", "date"),
    ):
        df = data.tables.get(table)
        if df is not None and len(df) and col in df:
            m = df[col].max()
            if pd.notna(m):
                last.append(pd.Timestamp(m))
    return str(max(last).date()) if last else ""


class DataStore:
    """Loads a source, keeps the last good snapshot, and caches what pages compute from it.

    Parameters
    ----------
    source
        Anything :func:`kpireport.load` accepts (path or URL), or a callable
        returning a :class:`~kpireport.data.model.CrmData` (notebooks; re-called
        after ``ttl`` like a database).
    goals
        Optional goals file (YAML/CSV) replacing the source's goals table.
    ttl
        Seconds between re-reads of a database source (files are watched by
        modification time instead).
    now
        Wall-clock function for the "loaded at" time shown on the page.
    """

    def __init__(
        self,
        source: str | Callable[[], Any],
        goals: str | None = None,
        ttl: float = DEFAULT_TTL,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone(),
    ) -> None:
        self.source = source
        self.goals_path = goals
        self.ttl = float(ttl)
        self._now = now
        self._lock = threading.RLock()
        self._snapshot: Snapshot | None = None
        self._error: str | None = None
        self._signature: tuple | None = None
        self._checked = 0.0
        self._version = 0
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._key_locks: dict[tuple, threading.Lock] = {}

    # ------------------------------------------------------------ loading
    def _load(self) -> tuple[Any, Any]:
        from kpireport.data.load import load
        from kpireport.goals import load_goals

        data = self.source() if callable(self.source) else load(str(self.source))
        goals = load_goals(data, self.goals_path) if self.goals_path else None
        return data, goals

    def _needs_reload(self) -> tuple[bool, tuple | None]:
        if self._snapshot is None:
            return True, self._current_signature()
        if callable(self.source) or _is_url(str(self.source)):  # nothing to watch: a TTL
            return (time.monotonic() - self._checked) >= self.ttl, None
        sig = self._current_signature()
        return sig != self._signature, sig

    def _current_signature(self) -> tuple | None:
        if callable(self.source) or _is_url(str(self.source)):
            return None
        return _signature(_watched(str(self.source), self.goals_path))

    def refresh(self, force: bool = False) -> Snapshot | None:
        """Re-read the source if it changed (or ``force``); returns the current snapshot."""
        with self._lock:
            need, sig = self._needs_reload()
            if not (need or force):
                return self._snapshot
            t0 = time.perf_counter()
            try:
                data, goals = self._load()
            except KpiReportError as exc:
                self._fail(str(exc), sig)
                return self._snapshot
            except Exception as exc:  # noqa: BLE001 - any load failure keeps the last good data
                log.exception("dashboard: loading the source failed")
                self._fail(f"{type(exc).__name__}: {exc}", sig)
                return self._snapshot
            self._version += 1
            s = data.tables["sellers"]
            self._snapshot = Snapshot(
                data=data,
                goals=goals,
                version=self._version,
                loaded_at=self._now(),
                load_seconds=time.perf_counter() - t0,
                data_as_of=_data_as_of(data),
                teams=sorted({str(t) for t in s["team"].dropna()}),
                sellers=dict(
                    zip(s["seller_id"].astype("str"), s["name"].astype("str"), strict=True)
                ),
                team_of=dict(
                    zip(s["seller_id"].astype("str"), s["team"].astype("str"), strict=True)
                ),
            )
            self._signature = sig
            self._checked = time.monotonic()
            self._error = None
            self._cache.clear()
            log.info("dashboard: source loaded (version %d)", self._version)
            return self._snapshot

    def _fail(self, message: str, sig: tuple | None) -> None:
        self._checked = time.monotonic()
        # remember the failing signature, so a broken file is not re-read on every request
        self._signature = sig
        # one line for the banner: the headline and the first problems, never a traceback
        lines = [ln.strip(" -•\t") for ln in message.strip().splitlines() if ln.strip()]
        first = " ".join(lines[:4]) or "unknown error"
        if len(first) > 400:
            first = first[:397] + "…"
        self._error = first
        if self._snapshot is not None:
            self._snapshot.error = first
        log.warning("dashboard: the source failed to load: %s", first)

    def current(self) -> Snapshot | None:
        """The snapshot to show (re-read first when the source changed); None before any good load."""
        return self.refresh()

    @property
    def error(self) -> str | None:
        """The last load failure (one sentence), or None after a good load."""
        return self._error

    # ------------------------------------------------------------ cache
    def cached(self, snapshot: Snapshot, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per snapshot version and ``key``; later calls (any session) reuse it."""
        full = (snapshot.version, *key)
        with self._lock:
            if full in self._cache:
                self._cache.move_to_end(full)
                return self._cache[full]
            lock = self._key_locks.setdefault(full, threading.Lock())
        with lock:
            with self._lock:
                if full in self._cache:
                    return self._cache[full]
            value = compute()
            with self._lock:
                self._cache[full] = value
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
                self._key_locks.pop(full, None)
            return value
