"""The per-run data snapshot that report kernels read.

The runner loads and validates the source once, then writes
``<out>/.work/<fingerprint[:16]>/``: one Parquet file per canonical table, a
``source.yaml`` (``path: .`` plus time zone, currency, organisation and
``gross_margin``) that :func:`kpireport.load` accepts like any source file, and
a ``SNAPSHOT.json`` marker with the fingerprint. Notebooks receive the path of
``source.yaml`` as their ``source`` parameter.

Design decisions
----------------
* **Readable by the ordinary loader**, so an analyst can re-run an executed
  notebook by hand with the same ``source`` value.
* **Fast path in kernels.** :func:`load_source` reads a snapshot straight into
  :class:`~kpireport.data.model.CrmData` without re-parsing or re-validating
  (it was validated once, in the runner) and checks the fingerprint, falling
  back to :func:`kpireport.load` for any other source.
* **Written once, atomically**: a temporary folder renamed into place; a
  snapshot of the same fingerprint is reused. No credentials are written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MARKER = "SNAPSHOT.json"
#: source settings copied into the snapshot's ``source.yaml``
_SETTINGS = ("gross_margin",)


def write_snapshot(data: Any, folder: Path) -> Path:
    """Write ``data`` (a CrmData) into ``folder``; return the ``source.yaml`` path."""
    import yaml

    source_yaml = folder / "source.yaml"
    if (folder / MARKER).exists():
        return source_yaml
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=folder.parent))
    try:
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
            "source": str(data.source or ""),
        }
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
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        settings = yaml.safe_load((folder / "source.yaml").read_text(encoding="utf-8"))
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
    if data.fingerprint() != marker.get("fingerprint"):
        raise SourceError(
            f"The data snapshot '{folder}' does not match its fingerprint; re-run the report."
        )
    return data


def is_snapshot(source: Any) -> bool:
    """True when ``source`` is the ``source.yaml`` of a snapshot."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    p = Path(source)
    return p.name == "source.yaml" and (p.parent / MARKER).is_file()


def load_source(source: Any) -> Any:
    """Load a report's ``source`` parameter: a snapshot fast, anything else via :func:`kpireport.load`."""
    if is_snapshot(source):
        return read_snapshot(source)
    from kpireport.data.load import load

    return load(source)
