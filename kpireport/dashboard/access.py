"""Who may see what on the dashboard: the users file, salted password hashes and scope grants.

Design decisions
----------------
* **Users file.** ``users.yaml`` maps a user name to a password hash and the
  scopes granted::

      users:
        anna:
          password: scrypt$16384$8$1$<salt hex>$<hash hex>
          scopes: [organisation]
        sam:
          password: scrypt$...
          scopes: ["seller:S017"]

  ``kpireport serve --add-user NAME --auth users.yaml --scope team:SMB``
  writes it (atomically, mode 0600); a plain-text password is never stored
  and a file holding one is refused.
* **Hashes.** :func:`hashlib.scrypt` (n=2**14, r=8, p=1, 16-byte random salt,
  32-byte key), compared with :func:`hmac.compare_digest`. An unknown user
  costs one scrypt too, so timing does not tell which user names exist.
* **Grants.** ``organisation`` grants everything; ``team:X`` grants team X,
  the sellers of team X and their goals (a team manager follows their
  sellers); ``seller:S`` grants that seller only. Anything not granted is
  *not permitted*, and the dashboard builds no content for it — not even the
  name — so the served HTML and websocket payload cannot leak it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kpireport.constants import Scope
from kpireport.errors import KpiReportError

#: scrypt cost parameters (about 50 ms per check on a laptop core)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCOPE_KINDS = (Scope.ORGANISATION.value, Scope.TEAM.value, Scope.SELLER.value)


class AccessError(KpiReportError):
    """A users file or a grant that cannot be used."""

    exit_code = 2


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$<salt hex>$<key hex>`` for ``password`` with a random (or given) salt."""
    if not password:
        raise AccessError("A password cannot be empty.")
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` hash (constant-time comparison)."""
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(bytes.fromhex(key)),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, bytes.fromhex(key))


_DUMMY_HASH = hash_password("not a real password", salt=b"\0" * 16)


def parse_scope(text: str) -> tuple[str, str | None]:
    """``"team:SMB"`` -> ``("team", "SMB")``, ``"organisation"`` -> ``("organisation", None)``."""
    text = str(text).strip()
    if text == Scope.ORGANISATION:
        return Scope.ORGANISATION.value, None
    kind, sep, sid = text.partition(":")
    if not sep or kind not in (Scope.TEAM, Scope.SELLER) or not sid.strip():
        raise AccessError(
            f"'{text}' is not a scope.", hint="Use organisation, team:<team> or seller:<seller id>."
        )
    return kind, sid.strip()


@dataclass(frozen=True)
class Grants:
    """The scopes one user may see."""

    organisation: bool = False
    teams: frozenset[str] = frozenset()
    sellers: frozenset[str] = frozenset()

    @classmethod
    def everything(cls) -> Grants:
        """The grants of the dashboard without ``--auth`` (bound to 127.0.0.1)."""
        return cls(organisation=True)

    @classmethod
    def from_scopes(cls, scopes: Iterable[str]) -> Grants:
        """Grants from ``["organisation", "team:SMB", "seller:S017"]``."""
        org, teams, sellers = False, set(), set()
        for s in scopes:
            kind, sid = parse_scope(s)
            if kind == Scope.ORGANISATION:
                org = True
            elif kind == Scope.TEAM:
                teams.add(str(sid))
            else:
                sellers.add(str(sid))
        return cls(org, frozenset(teams), frozenset(sellers))

    def allows(self, scope: str, scope_id: str | None, team_of: dict[str, str]) -> bool:
        """May this user see ``scope``/``scope_id``? ``team_of`` maps seller id -> team."""
        if self.organisation:
            return True
        if scope == Scope.TEAM:
            return str(scope_id) in self.teams
        if scope == Scope.SELLER:
            sid = str(scope_id)
            return sid in self.sellers or team_of.get(sid) in self.teams
        return False


@dataclass(frozen=True)
class User:
    """One entry of the users file."""

    name: str
    password_hash: str
    grants: Grants


def load_users(path: str | os.PathLike[str]) -> dict[str, User]:
    """Read ``users.yaml``; refuses plain-text passwords and unknown scopes (one sentence each)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise AccessError(f"Cannot read the users file {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise AccessError(f"The users file {path} is not valid YAML: {exc}.") from None
    users = raw.get("users") if isinstance(raw, dict) else None
    if not isinstance(users, dict):
        raise AccessError(f"The users file {path} has no 'users:' mapping.")
    out: dict[str, User] = {}
    for name, entry in users.items():
        if not isinstance(entry, dict):
            raise AccessError(f"User '{name}' in {path} is not a mapping.")
        pw = str(entry.get("password") or "")
        if not pw.startswith("scrypt$") or pw.count("$") != 5:
            raise AccessError(
                f"User '{name}' in {path} has no scrypt password hash (plain-text passwords are refused).",
                hint="Write users with: kpireport serve --add-user NAME --auth FILE --scope ...",
            )
        scopes = entry.get("scopes") or []
        if isinstance(scopes, str):
            scopes = [scopes]
        out[str(name)] = User(str(name), pw, Grants.from_scopes(scopes))
    return out


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    """The user when ``name``/``password`` match, else None (same cost for unknown names)."""
    user = users.get(name)
    ok = verify_password(password, user.password_hash if user else _DUMMY_HASH)
    return user if (user is not None and ok) else None


def add_user(path: str | os.PathLike[str], name: str, password: str, scopes: list[str]) -> None:
    """Add or replace ``name`` in the users file (created if missing) with a fresh salted hash."""
    if not name or any(c in name for c in ":\n\r\t ") or len(name) > 64:
        raise AccessError(f"'{name}' is not a usable user name (no spaces or ':', at most 64).")
    if not scopes:
        raise AccessError(
            "A user needs at least one scope.", hint="--scope organisation|team:X|seller:S"
        )
    for s in scopes:
        parse_scope(s)
    path = Path(path)
    data: dict[str, Any] = {"users": {}}
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        data.setdefault("users", {})
    data["users"][name] = {"password": hash_password(password), "scopes": list(scopes)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml.safe_dump(data, fh, sort_keys=True, allow_unicode=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
