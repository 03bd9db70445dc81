"""The dashboard as a Panel object for notebooks and ``panel serve`` (``notebooks/dashboard.ipynb``).

``app(source, as_of=...)`` returns the same page :func:`kpireport serve
<kpireport.dashboard.server.serve>` builds for a visitor, so a notebook cell
shows it inline in JupyterLab and ``panel serve dashboard.ipynb`` serves it.

Design decisions
----------------
* **One store per source in the process.** ``panel serve`` executes the
  notebook once per visitor; the :class:`~kpireport.dashboard.store.DataStore`
  is kept in this module (keyed by source, goals and TTL), so every visitor of
  the same server shares one load and one page cache, as with ``kpireport serve``.
* **No login here.** Access per person is the job of ``kpireport serve
  --auth``; a notebook app shows every scope and is meant for the analyst's
  own machine (``panel serve`` binds to localhost by default). See
  ``docs/DASHBOARD.md``.
* **No clock read**: ``as_of`` is a required argument (the notebook's
  parameter cell holds it).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from kpireport.dashboard.app import AppContext, create_session
from kpireport.dashboard.store import DEFAULT_TTL, DataStore
from kpireport.errors import KpiReportError
from kpireport.report.params import DEMO_SOURCE

_STORES: dict[tuple[str, str | None, float], DataStore] = {}
_LOCK = threading.Lock()


def _store(source: str, goals: str | None, ttl: float, as_of: dt.date) -> DataStore:
    demo = str(source) == DEMO_SOURCE
    key = (f"{DEMO_SOURCE}@{as_of}" if demo else str(source), goals, float(ttl))
    with _LOCK:
        if key not in _STORES:
            if demo:  # the fictional demo company, generated for this as_of (never a stale copy)
                from kpireport.demo import demo_data

                origin: Any = lambda: demo_data(as_of=as_of.isoformat())  # noqa: E731
            else:
                origin = str(source)
            _STORES[key] = DataStore(origin, goals=goals, ttl=ttl)
        return _STORES[key]


def app(
    source: str,
    *,
    as_of: str | dt.date,
    goals: str | None = None,
    ttl: float = DEFAULT_TTL,
    language: str = "en",
) -> Any:
    """The dashboard page for one visitor, as a Panel layout (call ``.servable()`` to serve it).

    Parameters
    ----------
    source
        Anything :func:`kpireport.load` accepts (folder, workbook, source YAML, database URL),
        or ``"demo"`` for the fictional demo company as of ``as_of`` (the notebook's default).
    as_of
        The dashboard's "today" (ISO date or :class:`datetime.date`).
    goals
        Optional goals file replacing the source's goals table.
    ttl
        Seconds between re-reads of a database source (files are watched by mtime).
    language
        Report language (``en`` or ``nl``).

    Raises
    ------
    KpiReportError
        When ``as_of`` is not a date, or the source cannot be loaded the first time.
    """
    try:
        day = as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(str(as_of))
    except ValueError:
        raise KpiReportError(
            f"The dashboard's as_of {as_of!r} is not a date (use YYYY-MM-DD)."
        ) from None
    store = _store(source, goals, ttl, day)
    if store.current() is None:
        raise KpiReportError(f"The dashboard cannot start: {store.error}")
    return create_session(AppContext(store=store, as_of=day, language=language))
