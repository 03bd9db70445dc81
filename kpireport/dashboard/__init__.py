"""The live KPI dashboard (``kpireport serve``), built with Panel on the Bokeh/Tornado server.

Modules, in the order a request meets them:

* :mod:`~kpireport.dashboard.server` — the web server: address rule, login, warm-up.
* :mod:`~kpireport.dashboard.access` — users file, scrypt hashes, scope grants.
* :mod:`~kpireport.dashboard.store` — loading, freshness (mtime / TTL), last good data, cache.
* :mod:`~kpireport.dashboard.app` — one Panel session: selectors, URL, banner, PDF button.
* :mod:`~kpireport.dashboard.pages` — what each page shows (escaped HTML from the report blocks).
* :mod:`~kpireport.dashboard.pdf` — the matching report as PDF.

Why Panel (not Voilà): it serves plain Python functions *and* notebooks
(``panel serve notebooks/dashboard.ipynb``), runs every session in one
process so computed pages are shared through one cache, and lets us plug our
own login into Bokeh's auth-provider hook. Everything shown is built
server-side per session from permitted scopes only. See ``docs/DASHBOARD.md``.
"""

from kpireport.dashboard.access import Grants, add_user, hash_password, load_users, verify_password
from kpireport.dashboard.pages import Page, Selection, build_page
from kpireport.dashboard.store import DataStore, Snapshot

__all__ = [
    "DataStore",
    "Grants",
    "Page",
    "Selection",
    "Snapshot",
    "add_user",
    "build_page",
    "hash_password",
    "load_users",
    "verify_password",
]
