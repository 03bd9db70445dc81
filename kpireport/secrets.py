"""Mask credentials in any text that leaves kpireport: messages, logs, manifests, history.

Database URLs carry passwords in two places: the user-info part
(``postgresql://u:PASSWORD@host/db``) and the query string
(``postgresql://u@host/crm?password=PASSWORD``, ``sslpassword=``, ``token=``,
``secret=``, ``api_key=``, any ``*_password=``). :func:`mask_secrets` replaces
both with ``***`` wherever a URL appears in a text, and also the values of
environment variables whose names look like credentials.

Design decisions
----------------
* **Mask at every boundary, by pattern and by value.** The loader resolves
  ``${CRM_DB_PASSWORD}`` into the URL, so a message built from the URL holds
  the value. The pattern catches the URL forms whatever the value; the value
  check catches a secret that turns up anywhere else (a driver's error text).
* **Query keys are matched by name**, case-insensitively: any key containing
  ``password``, ``passwd``, ``pwd``, ``passphrase``, ``secret``, ``token``,
  ``api_key``/``apikey``, ``access_key``, ``private_key``, ``credential`` or
  ``auth``. A key like ``sslmode`` or ``sslkey`` (a path) is left alone.
* Pure text functions, no imports beyond the standard library, so the CLI,
  logging filters, the report runner and the scheduler can all use them.
"""

from __future__ import annotations

import logging
import os
import re

#: parts of query-string keys that hold credentials
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "accesskey",
    "private_key",
    "credential",
    "auth",
)
_KEY = "|".join(re.escape(k) for k in SECRET_KEY_PARTS)
#: ``?password=x`` / ``&my_token=x`` / ``;secret=x`` (value up to the next separator)
_QUERY = re.compile(
    rf"(?i)([?&;](?:[A-Za-z0-9_.\-]*?(?:{_KEY})[A-Za-z0-9_.\-]*)=)([^&;#\s'\"<>)\]]+)"
)
#: ``scheme://user:password@`` (also ``scheme://:password@``)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@'\"]*:)([^@\s'\"/]+)@")
_ENV_SECRET = re.compile(rf"(?i)(?:{_KEY}|pass$)")
_NOT_SECRET_ENV = {"PWD", "OLDPWD"}
MASK = "***"


def secret_env_values() -> list[str]:
    """Values (4+ characters) of environment variables whose names look like credentials."""
    values = [
        v
        for k, v in os.environ.items()
        if k not in _NOT_SECRET_ENV and _ENV_SECRET.search(k) and len(v) >= 4
    ]
    return sorted(set(values), key=len, reverse=True)


def mask_secrets(text: object, values: list[str] | tuple[str, ...] | None = None) -> str:
    """``text`` with URL passwords, secret query values and secret env values replaced by ``***``.

    Parameters
    ----------
    text
        Any text (converted with ``str``).
    values
        Secret values to mask as well; default: :func:`secret_env_values`.

    Examples
    --------
    >>> mask_secrets("postgresql+psycopg://u@db/crm?sslmode=require&password=hunter2", [])
    'postgresql+psycopg://u@db/crm?sslmode=require&password=***'
    >>> mask_secrets("mysql://u:hunter2@db/crm", [])
    'mysql://u:***@db/crm'
    """
    out = str(text)
    out = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", out)
    out = _QUERY.sub(lambda m: m.group(1) + MASK, out)
    for v in secret_env_values() if values is None else values:
        if v and len(v) >= 4:
            out = out.replace(v, MASK)
    return out


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in every record it passes (message and arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        masked = mask_secrets(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_masking(logger: logging.Logger | None = None) -> None:
    """Mask secrets in the records of ``logger`` (default: ``kpireport``) and of the root handlers."""
    flt = MaskingFilter()
    target = logger or logging.getLogger("kpireport")
    if not any(isinstance(f, MaskingFilter) for f in target.filters):
        target.addFilter(flt)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(flt)


class MaskingStream:
    """A text stream wrapper that masks secrets in everything written (the CLI's stdout/stderr).

    The secret environment values are read once, when the wrapper is made.
    """

    def __init__(self, stream) -> None:  # noqa: ANN001 - any text stream
        self._stream = stream
        self._values = secret_env_values()

    def write(self, text: str) -> int:
        self._stream.write(mask_secrets(text, self._values))
        return len(text)

    def __getattr__(self, name: str):  # noqa: ANN204 - delegate flush, fileno, isatty, ...
        return getattr(self._stream, name)
