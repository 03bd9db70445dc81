"""Atomic publishing of report files and safe CSV exports.

Design decisions
----------------
* **Write, then rename.** Every file is written to a unique temporary name in
  its final directory (same file system), flushed and fsynced, then moved into
  place with :func:`os.replace`, which is atomic on POSIX and Windows. A crash
  at any moment leaves the previous complete file or no file, never a
  truncated one, and two runs writing the same report at once each replace a
  complete file (last one wins).
* **The manifest is written last.** A reader (or the re-run check) trusts a
  report only when its manifest exists and the hashes it lists match the files.
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
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


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
