"""Exclusive ``flock`` locks that name their holder (output folders, scheduled jobs).

Design decisions
----------------
* **``fcntl.flock`` on a lock file**, never a "lock file exists" check: the
  kernel releases the lock when the holding process dies (even by
  ``kill -9``), so there are no stale locks to clean up.
* **The holder writes who it is** (``pid 123, started …``) into the lock file
  once it holds the lock, so a refused second process can name it.
* **Non-blocking by default.** A second process fails at once (the caller
  raises an error with exit code 75, "try again later"); with ``wait`` it
  blocks until the holder finishes.
* Used by :func:`kpireport.report.runner.run` (one run per output folder) and
  :func:`kpireport.schedule.runner.identity_lock` (one run per job and period).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


def holder_of(fd: int) -> str:
    """What the current holder wrote into the lock file (``pid 123, started …``)."""
    with contextlib.suppress(OSError):
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    return ""


@contextlib.contextmanager
def exclusive_lock(
    path: Path,
    describe: str,
    refuse: Callable[[str], Exception],
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` block.

    Parameters
    ----------
    path
        The lock file (created, with its folder, when missing).
    describe
        Text the holder writes into the file (``pid 123, started …``).
    refuse
        Builds the exception raised when the lock is held and ``wait`` is
        false; receives the holder's text.
    wait
        Block until the lock is free instead of refusing.
    on_wait
        Called with the holder's text before blocking.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_of(fd) or "another process"
            if not wait:
                raise refuse(holder) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, describe.encode(), 0)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def try_lock(path: Path, shared: bool = False) -> int | None:
    """A file descriptor holding a non-blocking lock on ``path``, or ``None`` when it is held.

    Release with :func:`release`. ``shared`` takes a shared lock (readers of a
    data snapshot); an exclusive one then fails while any reader holds it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    """Release and close a lock taken with :func:`try_lock`."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)
