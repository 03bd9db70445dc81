"""Publishing report files: atomic files, all-or-nothing report sets, safe CSV exports.

Design decisions
----------------
* **Write, then rename.** Every file is written to a unique temporary name in
  its final directory (same file system), flushed and fsynced, then moved into
  place with :func:`os.replace`, which is atomic on POSIX and Windows. A crash
  at any moment leaves the previous complete file or no file, never a
  truncated one, and two runs writing the same report at once each replace a
  complete file (last one wins).
* **A report's files are one unit** (:func:`commit_report`). Every file is
  first *staged* (written completely in the report's scratch folder, on the
  output folder's file system); only then is the set swapped in: the previous
  set is kept as hard links (no data copied, no space needed), its manifest
  is taken away (the old set is no longer trusted), the new files are renamed
  into place, stale kinds removed, and the new manifest is renamed in *last*.
  The manifest is the commit: a reader (and the re-run check) trusts a report
  only when its manifest exists and the hashes it lists match the files. Any
  failure before that point puts the previous complete set back and moves the
  failed attempt's files to ``failed/``. (Swapping a directory would need one
  folder per report, changing every published path; manifest-last keeps them.)
* **Published files follow the umask**: ``0o666 & ~umask``, like any file a
  program creates (temporary files stay private until they are complete), so a
  shared folder's group can read the pack.
* **CSV cells are data, not formulas.** :func:`safe_csv` prefixes a ``'`` to
  every text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
  return (OWASP "CSV injection"), so a seller called ``=HYPERLINK(...)`` opens
  as text in Excel. Numbers are left alone: ``-5`` as a number is not a formula.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from kpireport.errors import PublishError

#: first characters that make a spreadsheet treat a cell as a formula
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    path
        Final file path; its directory is created when missing.
    data
        The complete file content.

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write_with(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    return atomic_write_text(path, text)


def atomic_write_with(path: Path, writer: Callable[[Any], object]) -> Path:
    """Call ``writer(binary_file)`` on a temporary file, then move it to ``path``.

    The temporary file is removed when ``writer`` raises, so a failure leaves the
    previous ``path`` (or nothing) in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), public_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (Linux ``/proc``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore
    os.umask(mask)
    return mask


def public_mode() -> int:
    """Mode of a published file: ``0o666 & ~umask`` (what ``open()`` would create)."""
    return 0o666 & ~current_umask()


def commit_report(
    staged: dict[str, Path],
    targets: dict[str, Path],
    failed_targets: dict[str, Path],
    *,
    before_commit: Callable[[], None] | None = None,
) -> None:
    """Swap a report's staged files in as one unit, the manifest last.

    Parameters
    ----------
    staged
        Complete files by kind (``ipynb``, ``html``, ``pdf``, ``kpis``,
        ``manifest``), on the same file system as ``targets``; ``manifest`` is
        required.
    targets
        Published path of every kind a report can have; kinds not in
        ``staged`` are stale and removed.
    failed_targets
        Where each kind goes when the swap fails.
    before_commit
        Called just before the manifest goes in; raising stops the commit
        (the run's parent is gone, say) and rolls back.

    Raises
    ------
    PublishError
        When the swap failed: the previous complete set is back in place and
        the attempt's files are in ``failed_targets`` (the caller records why).
    """
    if "manifest" not in staged:
        raise ValueError("a report is committed by its manifest")
    folder = staged["manifest"].parent / "previous"
    folder.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Path] = {}
    placed: list[str] = []
    try:
        for target in targets.values():
            target.parent.mkdir(parents=True, exist_ok=True)
        for kind, target in targets.items():  # keep the previous set: hard links, no copy
            if target.is_file() and not target.is_symlink():
                os.link(target, folder / kind)
                saved[kind] = folder / kind
        with contextlib.suppress(FileNotFoundError):
            os.unlink(targets["manifest"])  # the old set is not trusted while files change
        for kind, src in staged.items():
            if kind != "manifest":
                os.replace(src, targets[kind])
                placed.append(kind)
        for kind, target in targets.items():
            if kind not in staged and kind in saved:
                os.unlink(target)
        if before_commit is not None:
            before_commit()
        os.replace(staged["manifest"], targets["manifest"])  # the commit
    except BaseException as exc:
        _roll_back(staged, targets, failed_targets, saved, placed)
        if isinstance(exc, Exception):
            raise PublishError(
                f"Publishing failed ({type(exc).__name__}: {exc}); the previous report was kept."
            ) from exc
        raise
    finally:
        for b in saved.values():
            with contextlib.suppress(OSError):
                b.unlink()


def _roll_back(
    staged: dict[str, Path],
    targets: dict[str, Path],
    failed_targets: dict[str, Path],
    saved: dict[str, Path],
    placed: list[str],
) -> None:
    """Move the attempt's files to ``failed_targets`` and put the saved set back."""
    for kind in staged:
        if kind == "manifest":
            continue
        src = targets[kind] if kind in placed else staged[kind]
        dest = failed_targets[kind]
        with contextlib.suppress(OSError):
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_file():
                os.replace(src, dest)
    for kind, target in targets.items():
        if kind in saved:
            with contextlib.suppress(OSError):
                os.replace(saved[kind], target)
        elif kind in placed:
            with contextlib.suppress(OSError):
                target.unlink()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` whose text cells cannot be read as spreadsheet formulas.

    Text cells (and column names) starting with one of :data:`FORMULA_PREFIXES`
    get a leading ``'``. Numeric columns are returned unchanged.
    """

    def fix(v: object) -> object:
        if isinstance(v, str) and v.startswith(FORMULA_PREFIXES):
            return "'" + v
        return v

    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            out[col] = s.map(fix, na_action="ignore").astype(object)
    out.columns = [fix(c) if isinstance(c, str) else c for c in out.columns]
    return out


def safe_csv(df: pd.DataFrame, path: Path | str) -> Path:
    """Write ``df`` as UTF-8 CSV, atomically, with formula injection neutralised.

    Text cells are always quoted (a bare carriage return inside a cell would
    otherwise split the row for some readers).

    Parameters
    ----------
    df
        The table to export (the index is not written).
    path
        Destination file.

    Returns
    -------
    Path
        The written path.
    """
    text = neutralise_formulas(df).to_csv(
        index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC
    )
    return atomic_write_text(Path(path), text)
