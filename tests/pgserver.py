"""A throw-away PostgreSQL server for the tests (issue 10: KPIs computed in place).

``postgres_url`` starts a real server from Debian's ``postgresql`` package
(``.ci/run`` installs it): ``initdb --no-locale`` in a temporary folder (byte
order for text, like DuckDB), ``pg_ctl start`` on a free port on 127.0.0.1,
stopped at the end of the session. As root the cluster belongs to the
``postgres`` system user (the server refuses to run as root). The server's
time zone is deliberately exotic (``Pacific/Chatham``): KPI queries must not
depend on the session time zone. When no server can be started the tests that
need it are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpireport.data.model import CrmData
from kpireport.data.schema import SCHEMAS


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    hits = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return hits[-1] if hits else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("PostgreSQL cannot run as root and runuser is missing")
    return [runuser, "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh PostgreSQL database (module docstring)."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed (pip install 'kpireport[postgres]')")
    root = Path(tempfile.mkdtemp(prefix="kpireport-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    started = False
    try:
        run = subprocess.run(
            _as_server_user([initdb, "-D", str(data), "-U", "kpi", "-A", "trust", "--no-locale",
                             "-E", "UTF8"]),
            capture_output=True,
            text=True,
        )  # fmt: skip
        if run.returncode != 0:
            pytest.skip(f"initdb failed: {run.stderr.strip()[-300:]}")
        opts = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {sock} -c timezone=Pacific/Chatham "
            "-c fsync=off -c shared_buffers=32MB"
        )
        run = subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"),
                             "-w", "-t", "60", "start"]),
            capture_output=True,
            text=True,
        )  # fmt: skip
        if run.returncode != 0:
            log = (root / "log").read_text() if (root / "log").exists() else run.stderr
            pytest.skip(f"PostgreSQL did not start: {log.strip()[-300:]}")
        started = True
        yield f"postgresql+psycopg://kpi@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
            )
        shutil.rmtree(root, ignore_errors=True)


_PG_TYPES = {"date": "timestamp", "float": "double precision"}


def load_into_postgres(url: str, data: CrmData) -> str:
    """Copy ``data``'s canonical tables into a new schema; return the schema name."""
    import psycopg

    schema = "crm_" + uuid.uuid4().hex[:10]
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        for name, df in data.tables.items():
            kinds = {c.name: c.kind for c in SCHEMAS[name].columns} if name in SCHEMAS else {}
            cols = list(df.columns)
            ddl = ", ".join(f'"{c}" {_PG_TYPES.get(kinds.get(c, ""), "text")}' for c in cols)
            conn.execute(f'CREATE TABLE "{schema}"."{name}" ({ddl})')
            quoted = ", ".join(f'"{c}"' for c in cols)
            with conn.cursor().copy(f'COPY "{schema}"."{name}" ({quoted}) FROM STDIN') as copy:
                for row in df.itertuples(index=False):
                    copy.write_row([_py(v) for v in row])
    return schema


def _py(v: object) -> object:
    if v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v
