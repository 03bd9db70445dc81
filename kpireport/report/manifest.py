"""Per-report manifests: what was run, on which data, with which result.

A manifest (``<report>.manifest.json``, written last) records the parameters
(secrets are never parameters, and credential-like names are dropped anyway),
the data fingerprint, the notebook's SHA-256, package versions, start/end time
(UTC, audit only: the logical date of the report is ``as_of``), timings per
stage, status, error and the SHA-256 of every output.

The *cache key* hashes everything that determines a report's content
(notebook, parameters except the snapshot path, data fingerprint, formats,
header facts, kpireport version, :func:`code_hash` of the kpireport sources
and report templates); a re-run skips a report whose manifest says
``success`` with the same key and whose outputs still match their hashes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from kpireport.report.params import looks_secret
from kpireport.report.publish import sha256_file

MANIFEST_VERSION = 1
_PACKAGES = ("kpireport", "pandas", "papermill", "nbconvert", "nbclient", "weasyprint")


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a report."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "unknown"
    return out


@cache
def code_hash(root: Path | None = None) -> str:
    """SHA-256 over the ``kpireport`` package's source files and the report templates.

    Computed once per process (~10 ms). Part of the cache key, so a re-run after
    a library change (an editable install does not change ``__version__``)
    rebuilds its reports instead of skipping them.
    """
    root = (root or Path(__file__).parent.parent).resolve()  # the kpireport package
    suffixes = {".py", ".yaml", ".yml", ".json", ".j2", ".css", ".tpl"}
    files = [p for p in root.rglob("*") if p.suffix in suffixes and "__pycache__" not in p.parts]
    templates = root.parent / "templates"  # a template folder beside the package (tests)
    if templates.is_dir():
        files += [p for p in templates.rglob("*") if p.is_file()]
    h = hashlib.sha256()
    for p in sorted(files):
        try:
            content = p.read_bytes()
        except OSError:
            continue
        h.update(p.relative_to(root.parent).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(content).digest())
    return h.hexdigest()


def utc_iso(timestamp: float) -> str:
    """ISO 8601 UTC text of a POSIX timestamp (audit times in manifests)."""
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="seconds")


def public_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters safe to record: credential-like names removed."""
    return {k: v for k, v in params.items() if not looks_secret(k)}


def cache_key(parts: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``parts``."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``, or ``None`` when missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def output_entry(path: Path, root: Path, content: Path | None = None) -> dict[str, Any]:
    """``{path (relative to root), sha256, bytes}`` of one output file.

    ``content`` is the file to hash when it is still staged elsewhere.
    """
    data = Path(content if content is not None else path)
    return {
        "path": Path(path).relative_to(root).as_posix(),
        "sha256": sha256_file(data),
        "bytes": data.stat().st_size,
    }


def is_current(manifest_path: Path, key: str, root: Path) -> bool:
    """True when a published report is complete, successful and built from ``key``.

    Every output listed must exist with the recorded hash: a crash between
    writing a file and writing its manifest, or a file edited by hand, makes
    the report stale.
    """
    m = read_manifest(manifest_path)
    if not m or m.get("status") != "success" or m.get("cache_key") != key:
        return False
    for entry in (m.get("outputs") or {}).values():
        p = Path(root) / entry.get("path", "")
        try:
            if not p.is_file() or sha256_file(p) != entry.get("sha256"):
                return False
        except OSError:
            return False
    return True
