"""The per-run data snapshot that report kernels read, kept in a cache outside the reports.

The runner loads and validates the source once, then writes
``<cache>/snapshots/<fingerprint[:16]>/``: one Parquet file per canonical
table, a ``source.yaml`` (``path: .`` plus time zone, currency, organisation
and ``gross_margin``) that :func:`kpireport.load` accepts like any source
file, and a ``SNAPSHOT.json`` marker with the fingerprint. Notebooks receive
the path of ``source.yaml`` as their ``source`` parameter.

Design decisions
----------------
* **Never beside the reports.** The output folder is what gets shared with
  management; a full copy of the CRM data does not belong there. The cache is
  ``$KPIREPORT_CACHE`` or the user's cache folder (``~/.cache/kpireport`` on
  Linux, via platformdirs); manifests keep only the fingerprint. A snapshot
  left in ``<out>/.work/`` by an older version is removed by the next run.
* **Latest N kept** (:data:`KEEP`, default 2): after a run writes its
  snapshot, older ones are removed, except those another run is using (each
  run holds a shared ``flock`` on ``<fingerprint[:16]>.lock`` while its
  kernels read the snapshot; pruning needs the exclusive lock).
  ``kpireport clean`` removes every snapshot not in use.
* **Readable by the ordinary loader**, so an analyst can re-run an executed
  notebook by hand with the same ``source`` value.
* **Fast path in kernels.** :func:`load_source` reads a snapshot straight into
  :class:`~kpireport.data.model.CrmData` without re-parsing or re-validating
  (it was validated once, in the runner) and checks the fingerprint, falling
  back to :func:`kpireport.load` for any other source.
* **The KPI cube beside the tables.** ``<snapshot>/cube/`` holds the query
  results the run's reports need, computed once by the runner
  (:mod:`kpireport.report.cube`, :mod:`kpireport.kpis.cube`). When it is
  there (and ``KPIREPORT_CUBE`` is not ``0``) :func:`read_snapshot` returns a
  :class:`~kpireport.kpis.cube.CubeData` whose tables are read only when
  indexed, without re-hashing them for the fingerprint (the cube records it).
* **A file scan is copied by DuckDB** (issue 10): for a
  :class:`~kpireport.data.model.ScanData` still read from its Parquet
  files, each table is written with ``COPY (<its view>) TO ... (FORMAT
  parquet)`` and the fingerprint is
  :func:`~kpireport.data.model.scan_fingerprint` (the marker says so in
  ``fingerprint_method``, and :func:`read_snapshot` checks it the same
  way), so the runner builds no pandas frame of the big tables. Other data
  is written by pandas with the pandas fingerprint, as before.
* **Written once, atomically**: a temporary folder renamed into place; a
  snapshot of the same fingerprint is reused. No credentials are written
  (the source description in the marker is masked).
* **Any fsspec URL for remote workers** (``--snapshots s3://bucket/kpi``,
  ``gs://``, ``simplecache::file://…``; docs/SCALING.md): the run writes the
  snapshot in its own cache as always, then uploads it to
  ``<url>/<fingerprint[:16]>/`` (:func:`publish_snapshot`, the marker last,
  so a complete marker means a complete snapshot), and kernels get the URL of
  its ``source.yaml``. :func:`load_source` downloads it once per machine into
  the local cache (:func:`fetch_snapshot`, atomically) and reads it from
  there. fsspec picks the file system by the URL; credentials come from the
  file system's own configuration (``AWS_*``, ``~/.aws``), never from kpireport.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpireport.report.lock import release, try_lock
from kpireport.secrets import mask_secrets

if TYPE_CHECKING:
    from kpireport.data.model import CrmData

MARKER = "SNAPSHOT.json"
#: snapshots kept in the cache after a run (the newest ones)
KEEP = 2
#: environment variable naming the cache folder
CACHE_ENV = "KPIREPORT_CACHE"
#: source settings copied into the snapshot's ``source.yaml``
_SETTINGS = ("gross_margin",)
#: marker value: the fingerprint is :func:`kpireport.data.model.scan_fingerprint` of the files
SCAN_METHOD = "duckdb-scan-v1"


def write_snapshot(data: CrmData, folder: Path) -> Path:
    """Write ``data`` (a CrmData) into ``folder``; return the ``source.yaml`` path."""
    import yaml

    source_yaml = folder / "source.yaml"
    if (folder / MARKER).exists():
        return source_yaml
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=folder.parent))
    try:
        views = _scan_views(data)
        if views is not None:
            _copy_views(views, tmp)
        else:
            for name, df in data.tables.items():
                df.to_parquet(tmp / f"{name}.parquet", index=False)
        settings: dict[str, Any] = {
            "path": ".",
            "timezone": data.timezone,
            "currency": data.currency,
            "organisation": data.organisation,
        }
        for key in _SETTINGS:
            value = (data.settings or {}).get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                settings[key] = float(value)
        text = yaml.safe_dump(settings, allow_unicode=True, sort_keys=False)
        (tmp / "source.yaml").write_text(text, encoding="utf-8")
        marker = {
            "fingerprint": data.fingerprint(),
            "tables": sorted(data.tables),
            "source": mask_secrets(str(data.source or "")),
        }
        if views is not None:  # read_snapshot checks it the same way
            marker["fingerprint_method"] = SCAN_METHOD
        (tmp / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:  # another run wrote the same snapshot first
            if not (folder / MARKER).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return source_yaml


def read_snapshot(source_yaml: Path | str) -> Any:
    """Read a snapshot written by :func:`write_snapshot` into a CrmData (no re-validation).

    Raises
    ------
    kpireport.errors.SourceError
        When the folder is not a complete snapshot or its fingerprint does not match.
    """
    import pandas as pd
    import yaml

    from kpireport.data.model import CrmData
    from kpireport.errors import SourceError

    folder = Path(source_yaml).parent
    cube = _open_cube(folder)
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        settings = yaml.safe_load((folder / "source.yaml").read_text(encoding="utf-8"))
        if cube is not None:
            return _cube_data(folder, marker, settings, cube)
        tables = {name: pd.read_parquet(folder / f"{name}.parquet") for name in marker["tables"]}
    except (OSError, ValueError, KeyError) as exc:
        raise SourceError(f"'{folder}' is not a complete kpireport data snapshot: {exc}") from None
    extra = {k: settings[k] for k in _SETTINGS if k in settings}
    data = CrmData(
        tables,
        timezone=settings.get("timezone", "UTC"),
        currency=settings.get("currency", "EUR"),
        organisation=settings.get("organisation", "Organisation"),
        settings=extra,
        source=marker.get("source", ""),
    )
    if _fingerprint(data, folder, marker) != marker.get("fingerprint"):
        raise SourceError(
            f"The data snapshot '{folder}' does not match its fingerprint; re-run the report."
        )
    return data


def _scan_views(data: CrmData) -> dict[str, str] | None:
    """The DuckDB views of a dataset still read from its files (a ScanData), else ``None``."""
    scan_views = getattr(data, "scan_views", None)
    return scan_views() if callable(scan_views) else None


def _copy_views(views: dict[str, str], folder: Path) -> None:
    """Write each view to ``<folder>/<table>.parquet`` in DuckDB, no pandas frame built.

    ``COPY`` keeps the rows in file order (DuckDB's ``preserve_insertion_order``)
    and the canonical column order and types of the view, so
    ``pd.read_parquet`` gives the frame ``to_parquet`` of the materialised
    table would have written (tests/test_report.py, the snapshot tests).
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        for name, sql in views.items():
            target = str(folder / f"{name}.parquet").replace("'", "''")
            con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet)")
    finally:
        con.close()


def _fingerprint(data: CrmData, folder: Path, marker: dict) -> str:
    """The fingerprint of a read snapshot, by the method its marker names."""
    if marker.get("fingerprint_method") != SCAN_METHOD:
        return data.fingerprint()
    from kpireport.data.model import scan_fingerprint

    views = {}
    for name in marker["tables"]:
        path = str(folder / f"{name}.parquet").replace("'", "''")
        views[name] = f"SELECT * FROM read_parquet('{path}')"
    return scan_fingerprint(views, data.timezone, data.currency)


def _open_cube(folder: Path) -> Any:
    """The snapshot's KPI cube when the run wrote one for this data (else ``None``)."""
    from kpireport.kpis.cube import CUBE_DIR, CUBE_MARKER, Cube, enabled

    if not enabled() or not (folder / CUBE_DIR / CUBE_MARKER).is_file():
        return None
    try:
        cube = Cube(folder / CUBE_DIR, folder)
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return None
    return cube if cube.meta.get("fingerprint") == marker.get("fingerprint") else None


def _cube_data(folder: Path, marker: dict, settings: dict, cube: Any) -> Any:
    """A dataset reading its KPIs from the cube and a raw table only when asked (a miss).

    The fingerprint was checked when the snapshot was written; hashing every
    table again here would read them all (:mod:`kpireport.kpis.cube`).
    """
    from kpireport.kpis.cube import CubeData, LazyTables

    extra = {k: settings[k] for k in _SETTINGS if k in settings}
    return CubeData(
        LazyTables(list(marker["tables"]), folder, cube),
        timezone=settings.get("timezone", "UTC"),
        currency=settings.get("currency", "EUR"),
        organisation=settings.get("organisation", "Organisation"),
        settings=extra,
        source=marker.get("source", ""),
        cube=cube,
        snapshot_fingerprint=marker["fingerprint"],
    )


def is_snapshot(source: Any) -> bool:
    """True when ``source`` is the ``source.yaml`` of a snapshot."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    p = Path(source)
    return p.name == "source.yaml" and (p.parent / MARKER).is_file()


def load_source(source: Any) -> Any:
    """Load a report's ``source`` parameter: a snapshot fast, anything else via :func:`kpireport.load`.

    A snapshot at an fsspec URL (``s3://…/source.yaml``) is fetched into the
    local cache first (:func:`fetch_snapshot`).
    """
    if isinstance(source, str) and is_remote(source) and source.endswith("/source.yaml"):
        source = fetch_snapshot(source)
    if is_snapshot(source):
        return read_snapshot(source)
    from kpireport.data.load import load

    return load(source)


# ------------------------------------------------------------------ cache
def cache_dir() -> Path:
    """The kpireport cache folder: ``$KPIREPORT_CACHE`` or the user's cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("kpireport", appauthor=False))


def snapshots_dir() -> Path:
    """Where data snapshots live (``<cache>/snapshots``)."""
    return cache_dir() / "snapshots"


def snapshot_folder(fingerprint: str, root: Path | None = None) -> Path:
    """The snapshot folder of a data fingerprint (under ``root``, default :func:`snapshots_dir`)."""
    return (root or snapshots_dir()) / fingerprint[:16]


def is_remote(location: str | os.PathLike[str] | None) -> bool:
    """True for an fsspec URL other than a plain ``file://`` one (``s3://…``, ``simplecache::…``)."""
    if location is None:
        return False
    text = os.fspath(location)
    if "::" in text:
        return True
    if "://" not in text:
        return False
    from urllib.parse import urlparse

    url = urlparse(text)
    return not (url.scheme == "file" and url.netloc in ("", "localhost"))


def remote_root(location: str | os.PathLike[str] | None) -> str | None:
    """The fsspec URL snapshots are uploaded to, or ``None`` for a local folder.

    Raises
    ------
    ParamsError
        When fsspec, or the package of the URL's file system (``s3fs`` for
        ``s3://``), is not installed, or the URL is not one fsspec knows.
    """
    if not is_remote(location):
        return None
    from kpireport.errors import ParamsError

    text = os.fspath(location).rstrip("/")  # type: ignore[arg-type]
    try:
        import fsspec.core
    except ImportError:
        raise ParamsError(
            f"--snapshots '{text}': an object-store URL needs fsspec: pip install "
            "'kpireport[remote]' (and the file system's package, e.g. s3fs for s3://)."
        ) from None
    try:
        fsspec.core.url_to_fs(text)
    except ImportError as exc:
        raise ParamsError(f"--snapshots '{text}': {exc}") from None
    except (ValueError, KeyError) as exc:
        raise ParamsError(f"--snapshots '{text}' is not a URL fsspec can open: {exc}") from None
    return text


def _fs(url: str) -> tuple[Any, str]:
    import fsspec.core

    return fsspec.core.url_to_fs(url)


def publish_snapshot(folder: Path, root_url: str) -> str:
    """Upload the snapshot ``folder`` to ``<root_url>/<folder name>/``; return its ``source.yaml`` URL.

    Skipped when a complete copy is there (its marker); the marker is
    uploaded last, so a reader never takes a half-uploaded snapshot.
    """
    url = f"{root_url.rstrip('/')}/{folder.name}"
    fs, path = _fs(url)
    if not fs.exists(f"{path}/{MARKER}"):
        fs.makedirs(path, exist_ok=True)
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.name != MARKER)
        for f in [*files, folder / MARKER]:
            fs.put_file(str(f), f"{path}/{f.name}")
    return f"{url}/source.yaml"


def fetch_snapshot(source_url: str) -> Path:
    """The local ``source.yaml`` of the snapshot at ``source_url``, downloaded once into the cache.

    Raises
    ------
    kpireport.errors.SourceError
        When the URL holds no complete snapshot.
    """
    from kpireport.errors import SourceError

    url = source_url[: -len("/source.yaml")]
    name = url.rstrip("/").rsplit("/", 1)[-1]
    folder = snapshots_dir() / name
    if (folder / MARKER).is_file():  # this machine has it (wrote or fetched it)
        return folder / "source.yaml"
    try:
        fs, path = _fs(url)
        marker = json.loads(fs.cat_file(f"{path}/{MARKER}"))
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=folder.parent))
        try:
            for table in marker["tables"]:
                fs.get_file(f"{path}/{table}.parquet", str(tmp / f"{table}.parquet"))
            fs.get_file(f"{path}/source.yaml", str(tmp / "source.yaml"))
            (tmp / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
            try:
                os.rename(tmp, folder)
            except OSError:  # another kernel fetched it first
                if not (folder / MARKER).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, ValueError, KeyError) as exc:
        raise SourceError(
            f"No complete kpireport data snapshot at '{mask_secrets(url)}': {exc}"
        ) from None
    return folder / "source.yaml"


def snapshot_root(location: str | os.PathLike[str] | None) -> Path | None:
    """The folder a run writes its snapshots to: a path or a ``file://`` URL (docs/SCALING.md).

    Remote workers read the snapshot from there, so it must be a folder every
    worker reaches under the same path (a shared mount). ``None`` keeps the
    cache folder, and so does an fsspec URL (:func:`remote_root`): the run
    writes there, then uploads.

    Raises
    ------
    ParamsError
        For an fsspec URL that cannot be used (:func:`remote_root`).
    """
    if location is None or remote_root(location) is not None:
        return None
    text = os.fspath(location)
    if "://" in text:
        from urllib.parse import unquote, urlparse

        text = unquote(urlparse(text).path)
    return Path(text).expanduser().resolve()


class SnapshotUse:
    """A shared lock that keeps a snapshot from being pruned while a run reads it.

    Taking it also marks the snapshot as recently used (the lock file's time).
    """

    def __init__(self, folder: Path) -> None:
        self.lock = folder.with_name(folder.name + ".lock")
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        self.fd = try_lock(self.lock, shared=True)
        with _suppress():
            os.utime(self.lock)

    def close(self) -> None:
        release(self.fd)
        self.fd = None


def _suppress():
    import contextlib

    return contextlib.suppress(OSError)


def _remove_unused(folder: Path) -> bool:
    """Remove one snapshot unless a run holds its lock; True when removed."""
    lock = folder.with_name(folder.name + ".lock")
    fd = try_lock(lock)
    if fd is None:
        return False
    try:
        shutil.rmtree(folder, ignore_errors=True)
        with _suppress():
            lock.unlink()
    finally:
        release(fd)
    return not folder.exists()


def _snapshots(root: Path | None = None) -> list[Path]:
    root = root or snapshots_dir()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]

    def used(p: Path) -> float:
        lock = p.with_name(p.name + ".lock")
        try:
            return lock.stat().st_mtime
        except OSError:
            return p.stat().st_mtime

    return sorted(folders, key=used, reverse=True)


def prune_snapshots(keep: int = KEEP, root: Path | None = None) -> list[Path]:
    """Remove all but the ``keep`` most recently used snapshots (none that are in use)."""
    removed = []
    for folder in _snapshots(root)[max(0, keep) :]:
        if _remove_unused(folder):
            removed.append(folder)
    return removed


def clean_snapshots() -> tuple[list[Path], list[Path]]:
    """Remove every snapshot not in use; return ``(removed, in_use)``."""
    removed, kept = [], []
    for folder in _snapshots():
        (removed if _remove_unused(folder) else kept).append(folder)
    return removed, kept


def remove_legacy_snapshots(out: Path) -> list[Path]:
    """Remove data snapshots an older kpireport left inside ``<out>/.work/``."""
    work = Path(out) / ".work"
    removed = []
    if work.is_dir():
        for p in work.iterdir():
            if p.is_dir() and (p / MARKER).is_file():
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed
