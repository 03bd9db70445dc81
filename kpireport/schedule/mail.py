"""E-mail delivery over SMTP: building messages and sending them with bounded retries.

Design decisions
----------------
* **The standard library, for real.** Messages are :class:`email.message.EmailMessage`
  with the default (RFC 6532-aware) policy: PDF attachments are
  ``application/pdf``, HTML ``text/html``, and non-ASCII file names are
  encoded per RFC 2231 (``filename*=utf-8''...``) by the policy itself.
  Sending uses :mod:`smtplib` with STARTTLS (``starttls``) or implicit TLS
  (``ssl``), verified against the system CA store or ``ca_file``.
* **The password lives only in an environment variable** named by
  ``password_env`` and is read at send time; it is never logged, stored, or
  put into an exception message. Logging in over an unencrypted connection
  (``security: none``) is refused except on a loopback address.
* **Transient vs deterministic.** A refused or dropped connection, a timeout
  and 4xx replies (``421 service not available``) are *transient* and retried
  a bounded number of times with exponential backoff; an authentication
  failure or another 5xx reply is *deterministic* and fails at once (retrying
  a wrong password only locks the account). The ``sleep`` function is
  injectable so tests need not wait.
* **Size limit.** When the attachments of one message exceed the job's
  maximum, the message lists the files' archive paths (or URLs under
  ``archive_url``) instead of attaching them.
* **One way to send.** Report messages and failure alerts both go through
  :func:`deliver` (build, then send with the job's retries); the body of a
  report message names the pack's ``index.html`` first (docs/SCHEDULING.md).
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from kpireport.errors import DeliveryError
from kpireport.schedule.config import SmtpConfig

log = logging.getLogger("kpireport")


@dataclass(frozen=True)
class Attachment:
    """A file to attach: where it is, the name the recipient sees, its archive link."""

    path: Path
    filename: str
    link: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class SendOutcome:
    """Result of sending one message: ``ok``, attempts used, message id, error sentence."""

    ok: bool
    attempts: int
    message_id: str
    error: str | None = None
    transient: bool = False
    refused: dict[str, str] = field(default_factory=dict)


def safe_filename(name: str) -> str:
    """A file name a mail client can save: no path separators or control characters."""
    cleaned = "".join(" " if (c in '/\\:*?"<>|' or ord(c) < 32) else c for c in name)
    cleaned = " ".join(cleaned.split()).strip(" .")
    return cleaned or "report"


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
    attach: bool = True,
    domain: str | None = None,
) -> EmailMessage:
    """One e-mail with ``body`` and, when ``attach``, the files attached.

    Parameters
    ----------
    sender, to, subject, body
        Envelope and text (UTF-8; non-ASCII subjects are encoded per RFC 2047).
    attachments
        Files in the order they should appear.
    attach
        False to leave the files out (the body then lists their links).
    domain
        Domain of the Message-ID (default: the sender's).

    Returns
    -------
    EmailMessage
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=domain or sender.rsplit("@", 1)[-1].strip("> "))
    msg.set_content(body, charset="utf-8")
    if attach:
        for a in attachments:
            ctype = mimetypes.guess_type(a.filename)[0] or "application/octet-stream"
            maintype, subtype = ctype.split("/", 1)
            data = a.path.read_bytes()
            if maintype == "text":
                msg.add_attachment(
                    data.decode("utf-8"), subtype=subtype, filename=a.filename, charset="utf-8"
                )
            else:
                msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=a.filename)
    return msg


def smtp_password(config: SmtpConfig, env: dict[str, str] | None = None) -> str | None:
    """The SMTP password from ``config.password_env`` (``None`` when no login is configured).

    Raises
    ------
    DeliveryError
        When a login is configured but the variable is not set.
    """
    if not config.user:
        return None
    env = os.environ if env is None else env
    name = config.password_env or ""
    value = env.get(name)
    if not value:
        raise DeliveryError(
            f"The SMTP password is not set: export the environment variable {name} "
            f"(named by 'password_env' in the schedule file)."
        )
    return value


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: connection refused/dropped, timeouts, 4xx replies."""
    if isinstance(
        exc, smtplib.SMTPAuthenticationError | ssl.SSLError | smtplib.SMTPNotSupportedError
    ):
        return False  # wrong password, untrusted certificate, no STARTTLS: retrying will not help
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(
        exc,
        (
            smtplib.SMTPServerDisconnected,
            smtplib.SMTPConnectError,
            ConnectionError,
            TimeoutError,
            socket.timeout,
            socket.gaierror,
            OSError,
        ),
    )


def describe(exc: BaseException, config: SmtpConfig) -> str:
    """One sentence about an SMTP failure (never contains the password)."""
    where = f"{config.host}:{config.port}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return (
            f"SMTP authentication failed at {where} for user '{config.user}' "
            f"({exc.smtp_code}); check the password in ${config.password_env}."
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(f"{a} ({c})" for a, (c, _) in exc.recipients.items())
        return f"The SMTP server {where} refused the recipients {refused}."
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"The SMTP server {where} replied {exc.smtp_code} {text}."
    if isinstance(exc, ConnectionRefusedError):
        return f"The SMTP server {where} refused the connection."
    if isinstance(exc, ssl.SSLError):
        return f"TLS with the SMTP server {where} failed: {exc.reason or exc}."
    if isinstance(exc, smtplib.SMTPException | OSError):
        return f"SMTP delivery via {where} failed: {type(exc).__name__}: {exc}."
    return f"SMTP delivery via {where} failed: {type(exc).__name__}."


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if config.security == "ssl":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout, context=context
        )
    else:
        server = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    try:
        server.ehlo()
        if config.security == "starttls":
            server.starttls(context=context)
            server.ehlo()
    except BaseException:
        server.close()
        raise
    return server


def send_once(config: SmtpConfig, msg: EmailMessage, password: str | None) -> dict[str, str]:
    """Connect, log in, send ``msg`` and quit; return refused recipients (``{}`` when all accepted)."""
    if password is not None and config.security == "none" and not _is_loopback(config.host):
        raise DeliveryError(
            f"Refusing to send the SMTP password unencrypted to {config.host}; "
            "set security: starttls or ssl."
        )
    server = _connect(config)
    try:
        if password is not None and config.user:
            server.login(config.user, password)
        refused = server.send_message(msg)
    finally:
        try:
            server.quit()
        except (smtplib.SMTPException, OSError):
            server.close()
    return {k: f"{v[0]} {v[1]!r}" for k, v in (refused or {}).items()}


def send(
    config: SmtpConfig,
    msg: EmailMessage,
    *,
    retries: int = 3,
    backoff_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    env: dict[str, str] | None = None,
) -> SendOutcome:
    """Send ``msg``, retrying transient failures ``retries`` times with exponential backoff.

    Parameters
    ----------
    config
        SMTP settings.
    msg
        The message (its ``Message-ID`` identifies it in the history).
    retries
        Extra attempts after a transient failure (0: one attempt only).
    backoff_seconds
        Wait before the first retry; doubled before each further one.
    sleep
        Waits between attempts (injectable for tests).
    env
        Environment to read the password from (default ``os.environ``).

    Returns
    -------
    SendOutcome
        Never raises for SMTP failures; ``ok`` is False with one sentence in ``error``.
    """
    message_id = str(msg["Message-ID"])
    try:
        password = smtp_password(config, env)
    except DeliveryError as exc:
        return SendOutcome(False, 0, message_id, str(exc))
    attempt = 0
    while True:
        attempt += 1
        try:
            refused = send_once(config, msg, password)
        except DeliveryError as exc:
            return SendOutcome(False, attempt, message_id, str(exc))
        except Exception as exc:  # smtplib/socket/ssl errors
            transient = is_transient(exc)
            error = describe(exc, config)
            if transient and attempt <= retries:
                wait = backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "%s Retrying in %.1f s (attempt %d of %d).",
                    error,
                    wait,
                    attempt + 1,
                    retries + 1,
                )
                sleep(wait)
                continue
            if transient:
                error += f" Gave up after {attempt} attempts."
            log.error("%s", error)
            return SendOutcome(False, attempt, message_id, error, transient=transient)
        return SendOutcome(True, attempt, message_id, None, refused=refused)


def deliver(
    config: SmtpConfig,
    *,
    to: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
    attach: bool = True,
    retries: int = 3,
    backoff_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    env: dict[str, str] | None = None,
) -> SendOutcome:
    """Build one message from ``config.sender`` and send it with bounded retries.

    The one send path of the scheduler (report messages and failure alerts):
    :func:`build_message` then :func:`send`; see them for the parameters.

    Returns
    -------
    SendOutcome
        Never raises for SMTP failures.
    """
    msg = build_message(
        sender=config.sender, to=to, subject=subject, body=body,
        attachments=attachments, attach=attach,
    )  # fmt: skip
    return send(config, msg, retries=retries, backoff_seconds=backoff_seconds, sleep=sleep, env=env)
