"""Writing the demo CRM to files a user loads: CSV, Parquet, SQLite or Excel, with a source YAML.

Design decisions
----------------
* **A source YAML beside the data.** :func:`write_demo` returns
  ``out/source.yaml``, which points at the files and declares the
  organisation, time zone and currency, so ``kpireport.load`` of it gives the
  same :class:`~kpireport.data.model.CrmData` as
  :func:`kpireport.demo.source.demo_data`. The folder, database or workbook
  also loads on its own, with the loader's defaults.
* **Atomic files.** Every file is written to a temporary sibling and renamed,
  so a crash (or a second process writing the same folder) never leaves half
  a file behind; ``source.yaml`` is written last.
* **Excel's limit is checked first**: a table longer than a sheet is refused
  with the table names before anything is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from pathlib import Path

import pandas as pd

from kpireport.demo.company import CURRENCY, ORGANISATION, TIMEZONE
from kpireport.demo.generator import DEFAULT_AS_OF, DEFAULT_SEED, generate_demo
from kpireport.errors import SourceError

log = logging.getLogger("kpireport")

FORMATS = ("csv", "parquet", "sqlite", "xlsx")
EXCEL_MAX_ROWS = 1_048_575


def write_demo(
    out: str | os.PathLike[str],
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    fmt: str = "csv",
    as_of: dt.date | pd.Timestamp | str = DEFAULT_AS_OF,
    tables: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write the demo CRM into ``out`` and return the source file to load.

    Parameters
    ----------
    out
        Folder to write into (created if missing).
    seed, scale, as_of
        As for :func:`~kpireport.demo.generator.generate_demo`.
    fmt
        ``csv`` (one file per table, ISO dates), ``parquet`` (one file per
        table), ``sqlite`` (one database ``crm.sqlite``) or ``xlsx`` (one
        workbook ``crm.xlsx``, one sheet per table).
    tables
        Already generated tables to write (skips generation).

    Returns
    -------
    Path
        ``out/source.yaml``, which points at the data and declares the
        organisation, time zone and currency; pass it to ``kpireport.load``.
        (The folder, database or workbook also loads on its own, with default
        settings.)

    Raises
    ------
    SourceError
        For an unknown format, or a table too long for an Excel sheet.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise SourceError(
            f"Unknown demo format '{fmt}'.", hint="Use one of: " + ", ".join(FORMATS) + "."
        )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    data = tables if tables is not None else generate_demo(seed=seed, scale=scale, as_of=as_of)
    if fmt == "csv":
        for name, df in data.items():
            atomic_write(
                folder / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False, date_format=None)
            )
        target = "."
    elif fmt == "parquet":
        for name, df in data.items():
            atomic_write(folder / f"{name}.parquet", lambda p, df=df: df.to_parquet(p, index=False))
        target = "."
    elif fmt == "sqlite":
        atomic_write(folder / "crm.sqlite", lambda p: _write_sqlite(p, data))
        target = "crm.sqlite"
    else:
        too_long = [n for n, df in data.items() if len(df) > EXCEL_MAX_ROWS]
        if too_long:
            raise SourceError(
                f"Table(s) {', '.join(too_long)} have more rows than an Excel sheet holds.",
                hint="Use a smaller --scale or another format (csv, parquet, sqlite).",
            )
        atomic_write(folder / "crm.xlsx", lambda p: _write_excel(p, data))
        target = "crm.xlsx"
    yaml_text = (
        f"# kpireport demo CRM (seed {seed}, scale {scale:g}, as of {pd.Timestamp(as_of).date()}).\n"
        f"path: {target}\n"
        f"organisation: {ORGANISATION}\n"
        f"timezone: {TIMEZONE}\n"
        f"currency: {CURRENCY}\n"
    )
    source = folder / "source.yaml"
    atomic_write(source, lambda p: p.write_text(yaml_text, encoding="utf-8"))
    log.info("demo CRM written to %s (%s)", folder, fmt)
    return source


def atomic_write(path: Path, write) -> None:
    """Write via a temporary sibling and rename, so a crash leaves no half file.

    The sibling's name is unique, so two processes writing the same folder (two
    notebook kernels asking for the same demo) never write into one file.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_sqlite(path: Path, data: dict[str, pd.DataFrame]) -> None:
    import sqlite3

    with sqlite3.connect(path) as con:
        for name, df in data.items():
            df.to_sql(name, con, index=False, if_exists="replace", chunksize=100_000)
    con.close()


def _write_excel(path: Path, data: dict[str, pd.DataFrame]) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, df in data.items():
            df.to_excel(xw, sheet_name=name, index=False)
