"""The demo company as a source: in memory (:func:`demo_data`) or as a folder (:func:`demo_source`).

Design decisions
----------------
* **A demo folder is keyed on everything that shapes it.** :func:`demo_source`
  writes into ``<tmp>/kpireport-demo/<as_of>_seed<seed>_scale<scale>_v<version>``
  (:func:`demo_key`), so asking for another ``as_of``, seed, scale or a newer
  kpireport gives another folder. Before, one ``<tmp>/kpireport-demo`` folder was
  reused whatever it held, and ``explore.ipynb`` run with ``as_of=2026-12-02``
  silently showed November's data and December zeros. A folder the caller
  names is checked against the stamp (``demo.json``, written last) and
  rewritten when it was made for other parameters.
* **One default seed.** :data:`~kpireport.demo.generator.DEFAULT_SEED` is the
  seed of ``kpireport demo``, ``kpireport demo-data``, the notebooks and the
  dashboard; the notebooks' ``source = "demo"`` and the CLI give the same data.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from kpireport._version import __version__
from kpireport.data.model import CrmData
from kpireport.demo.company import CURRENCY, ORGANISATION, TIMEZONE
from kpireport.demo.export import atomic_write, write_demo
from kpireport.demo.generator import DEFAULT_AS_OF, DEFAULT_SEED, generate_demo

#: the file in a demo folder that records what it was generated for (written last)
STAMP = "demo.json"

DateLike = dt.date | pd.Timestamp | str


def demo_data(
    seed: int = DEFAULT_SEED, scale: float = 1.0, as_of: DateLike = DEFAULT_AS_OF
) -> CrmData:
    """The demo CRM as :class:`~kpireport.data.model.CrmData` (see :func:`~kpireport.demo.generator.generate_demo`)."""
    tables = generate_demo(seed=seed, scale=scale, as_of=as_of)
    return CrmData(
        tables,
        timezone=TIMEZONE,
        currency=CURRENCY,
        organisation=ORGANISATION,
        settings={"gross_margin": 0.8},
        source=f"kpireport demo (seed {seed}, scale {scale:g}, as of {pd.Timestamp(as_of).date()})",
    )


def demo_key(
    as_of: DateLike = DEFAULT_AS_OF, seed: int = DEFAULT_SEED, scale: float = 1.0
) -> dict[str, str]:
    """What a demo folder holds: ``as_of``, seed, scale and the kpireport version that wrote it."""
    return {
        "as_of": pd.Timestamp(as_of).date().isoformat(),
        "seed": str(int(seed)),
        "scale": f"{float(scale):g}",
        "version": __version__,
    }


def demo_source(
    folder: str | os.PathLike[str] | None = None,
    as_of: DateLike | None = None,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
) -> Path:
    """The source YAML of the demo CRM for ``(as_of, seed, scale)``, written (Parquet) unless current.

    Parameters
    ----------
    folder
        Where to write. Default: ``<tmp>/kpireport-demo/<key>``, one folder per
        :func:`demo_key`, reused while it holds exactly that data. A folder
        given here is reused only when its stamp matches, else rewritten.
    as_of
        Last day of the demo data (default :data:`~kpireport.demo.generator.DEFAULT_AS_OF`).
    seed, scale
        As for :func:`~kpireport.demo.generator.generate_demo`.

    Returns
    -------
    Path
        ``folder/source.yaml``; pass it to ``kpireport.load``.
    """
    key = demo_key(as_of or DEFAULT_AS_OF, seed, scale)
    if folder is None:
        name = f"{key['as_of']}_seed{key['seed']}_scale{key['scale']}_v{key['version']}"
        folder = Path(tempfile.gettempdir()) / "kpireport-demo" / name
    folder = Path(folder)
    src, stamp = folder / "source.yaml", folder / STAMP
    if src.is_file() and _stamp(stamp) == key:
        return src
    stamp.unlink(missing_ok=True)  # a folder being rewritten is never taken as current
    write_demo(folder, seed=seed, scale=scale, fmt="parquet", as_of=key["as_of"])
    atomic_write(stamp, lambda p: p.write_text(json.dumps(key, indent=1) + "\n", encoding="utf-8"))
    return src


def _stamp(path: Path) -> dict[str, str] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
