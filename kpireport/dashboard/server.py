"""The dashboard's web server: Panel on Bokeh/Tornado, our login, the address rule, warm-up.

Design decisions
----------------
* **Address rule.** Without ``--auth`` the server binds to 127.0.0.1 only
  (and says so); with it, it binds to the address given (default
  ``0.0.0.0``) and every page and websocket needs a login.
* **Our own login** (:class:`LoginHandler`) instead of Panel's basic auth,
  whose credentials file holds plain-text passwords: it checks the scrypt
  hashes of :mod:`kpireport.dashboard.access` and sets a signed,
  ``HttpOnly``, ``SameSite=Lax`` cookie (Tornado's secure cookie, key from
  ``KPIREPORT_COOKIE_SECRET`` or random per start). Bokeh refuses the
  document and the websocket of a request whose :meth:`AuthProvider.get_user`
  is None, and signed session ids (``sign_sessions``) stop a client from
  forging a session.
* **Warm-up.** After start, a background thread computes the default pages
  (organisation overview and every team for the running month) once, so
  the first visitors read them from the cache; it checks every
  :data:`WARM_CHECK_SECONDS` for a new data version (changed file, database
  past its TTL) and warms the pages of that version too. Seller and goal
  pages are computed on their first visit (about 2-3 s, then cached).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import sys
import threading
import time
from typing import Any

from kpireport.dashboard.access import User, authenticate
from kpireport.dashboard.app import LOGIN_DAYS, USER_COOKIE, AppContext, create_session
from kpireport.dashboard.pages import Selection, build_page
from kpireport.dashboard.store import DataStore
from kpireport.errors import KpiReportError

log = logging.getLogger("kpireport")

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kpireport dashboard · log in</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; background: #f4f6f8; color: #1f2933; margin: 0;
       padding: 0 1rem; }}
form {{ max-width: 22rem; margin: 12vh auto; background: #fff; padding: 1.5rem; border-radius: 8px;
       border: 1px solid #d9dee3; box-sizing: border-box; }}
h1 {{ font-size: 1.3rem; color: #1f4e79; margin-top: 0; }}
label {{ display: block; margin: 0.8rem 0 0.2rem; font-size: 0.9rem; }}
input {{ width: 100%; box-sizing: border-box; padding: 0.5rem; font-size: 1rem; }}
button {{ margin-top: 1rem; width: 100%; padding: 0.6rem; font-size: 1rem; background: #1f4e79; color: #fff;
         border: 0; border-radius: 4px; }}
.error {{ color: #b3261e; font-weight: bold; }}
</style></head><body>
<form method="post" action="login">
<h1>kpireport dashboard</h1>
{error}
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form></body></html>"""


def _handlers(users: dict[str, User]) -> tuple[type, type]:
    from tornado.web import RequestHandler

    class LoginHandler(RequestHandler):
        """``GET /login``: the form; ``POST /login``: check the password hash, set the cookie."""

        def get(self) -> None:
            self.set_header("Cache-Control", "no-store")
            self.write(LOGIN_PAGE.format(error=""))

        def post(self) -> None:
            name = self.get_body_argument("username", "")
            password = self.get_body_argument("password", "")
            user = authenticate(users, name, password)
            self.set_header("Cache-Control", "no-store")
            if user is None:
                log.warning("dashboard: failed login")
                self.set_status(401)
                self.write(
                    LOGIN_PAGE.format(
                        error='<p class="error" role="alert">Wrong user name or password.</p>'
                    )
                )
                return
            self.set_signed_cookie(
                USER_COOKIE, user.name, expires_days=LOGIN_DAYS, httponly=True, samesite="Lax"
            )
            self.redirect("./")  # relative: works under --prefix and behind a proxy

    class LogoutHandler(RequestHandler):
        """``GET /logout``: forget the cookie."""

        def get(self) -> None:
            self.clear_cookie(USER_COOKIE)
            self.redirect("login")

    return LoginHandler, LogoutHandler


def auth_provider(users: dict[str, User]) -> Any:
    """A Bokeh :class:`~bokeh.server.auth_provider.AuthProvider` over the users file."""
    from bokeh.server.auth_provider import AuthProvider

    login, logout = _handlers(users)

    class KpiReportAuth(AuthProvider):
        @property
        def get_user(self) -> Any:
            def get_user(handler: Any) -> str | None:
                raw = handler.get_signed_cookie(USER_COOKIE, max_age_days=LOGIN_DAYS)
                name = raw.decode("utf-8") if raw else None
                return name if name in users else None

            return get_user

        @property
        def login_url(self) -> str:
            return "/login"

        @property
        def login_handler(self) -> type:
            return login

        @property
        def logout_url(self) -> str:
            return "/logout"

        @property
        def logout_handler(self) -> type:
            return logout

    return KpiReportAuth()


def free_port(address: str) -> int:
    """A free TCP port on ``address`` (for ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address if address != "0.0.0.0" else "", 0))
        return int(s.getsockname()[1])


def warm(ctx: AppContext, teams: bool = True) -> int:
    """Compute the default pages once (overview and every team, running month); returns the count."""
    from kpireport.dashboard.access import Grants

    snap = ctx.store.current()
    if snap is None:
        return 0
    sels = [Selection()]
    if teams:
        sels += [Selection("team", t) for t in snap.teams]
    n = 0
    for sel in sels:
        try:
            build_page(ctx.store, snap, sel, Grants.everything(), ctx.as_of)
            n += 1
        except Exception:  # noqa: BLE001 - warm-up is best effort; the page shows its own error
            log.exception("dashboard: warming %s failed", sel)
    return n


#: seconds between the warm-up thread's checks for a new data version
WARM_CHECK_SECONDS = 30.0


def rewarm(ctx: AppContext, last_version: int | None, teams: bool = True) -> tuple[int | None, int]:
    """Warm the default pages when the data has a new version since ``last_version``.

    Returns (the version now warmed, pages computed). A changed file (or a database
    past its TTL) is re-read here, so after a change the first visitor again finds
    the overview and team pages computed, not only after the first start.
    """
    snap = ctx.store.current()
    if snap is None or snap.version == last_version:
        return last_version, 0
    return snap.version, warm(ctx, teams=teams)


def make_server(
    ctx: AppContext,
    *,
    port: int = 8050,
    address: str | None = None,
    websocket_origins: list[str] | None = None,
    prefix: str = "",
) -> Any:
    """A started-later Panel/Bokeh server for ``ctx`` (call ``.start()`` and run its IO loop)."""
    import panel as pn

    auth = ctx.users is not None
    if not auth:
        address = "127.0.0.1"  # RELIABILITY "Access": no login, loopback only
    address = address or "0.0.0.0"
    if port == 0:
        port = free_port(address)
    hosts = {"localhost", "127.0.0.1"} | (
        {socket.gethostname()} if address != "127.0.0.1" else set()
    )
    origins = list(websocket_origins or []) + [f"{h}:{port}" for h in sorted(hosts)]
    kwargs: dict[str, Any] = {
        "port": port,
        "address": address,
        "websocket_origin": origins,
        "show": False,
        "verbose": False,
        "start": False,
        "title": "kpireport dashboard",
        "cookie_secret": ctx.cookie_secret,
        "sign_sessions": True,
        "secret_key": ctx.cookie_secret,
        "generate_session_ids": True,
        "session_token_expiration": 3600,
        "location": True,
    }
    if prefix:
        kwargs["prefix"] = prefix
    if auth:
        kwargs["auth_provider"] = auth_provider(ctx.users)

    def app() -> Any:  # a plain function: Panel calls it once per session
        return create_session(ctx)

    return pn.serve({"/": app}, **kwargs)


def serve(
    source: str,
    *,
    as_of: dt.date,
    goals: str | None = None,
    port: int = 8050,
    address: str | None = None,
    users: dict[str, User] | None = None,
    ttl: float = 900,
    websocket_origins: list[str] | None = None,
    prefix: str = "",
    warm_up: bool = True,
    out: Any = sys.stderr,
) -> None:
    """Load ``source`` and serve the dashboard until interrupted.

    Raises
    ------
    KpiReportError
        When the source cannot be loaded at start (nothing is served then).
    """
    secret = os.environ.get("KPIREPORT_COOKIE_SECRET") or secrets.token_hex(32)
    store = DataStore(source, goals=goals, ttl=ttl)
    t0 = time.perf_counter()
    snap = store.current()
    if snap is None:
        raise KpiReportError(f"The dashboard cannot start: {store.error}")
    ctx = AppContext(store=store, as_of=as_of, users=users, cookie_secret=secret)
    server = make_server(
        ctx, port=port, address=address, websocket_origins=websocket_origins, prefix=prefix
    )
    server.start()
    host = server.address or "127.0.0.1"
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{server.port}{prefix}/"
    print(
        f"kpireport dashboard on {url} (data as of {snap.data_as_of}, loaded in "
        f"{time.perf_counter() - t0:.1f} s, today = {as_of.isoformat()})",
        file=out,
        flush=True,
    )
    if users is None:
        print(
            "No --auth: listening on 127.0.0.1 only, every visitor sees every scope.",
            file=out,
            flush=True,
        )
    else:
        print(f"Login required: {len(users)} user(s); listening on {host}.", file=out, flush=True)
    if warm_up:

        def run() -> None:
            last: int | None = None
            while True:
                t = time.perf_counter()
                try:
                    version, n = rewarm(ctx, last)
                except Exception:  # noqa: BLE001 - never let the warm-up thread die
                    log.exception("dashboard: warm-up failed")
                    version, n = last, 0
                if version != last:
                    print(
                        f"warm-up: {n} pages computed in {time.perf_counter() - t:.1f} s "
                        f"(data version {version})",
                        file=out,
                        flush=True,
                    )
                    last = version
                time.sleep(WARM_CHECK_SECONDS)

        threading.Thread(target=run, name="kpireport-warm-up", daemon=True).start()
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
