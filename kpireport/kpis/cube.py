"""The per-run KPI cube: the engine's query results, computed once, read by every report.

``kpireport run`` loads and validates the source once and writes a data
snapshot (:mod:`kpireport.report.snapshot`). The cube is written beside it,
in ``<snapshot>/cube/``, by one batched pass in the runner
(:mod:`kpireport.report.cube`); a report kernel then answers its KPIs, goal
actuals, series and development curves from the cube instead of loading the
raw tables. docs/ARCHITECTURE.md ("The KPI cube") shows the flow.

Design decisions
----------------
* **The cube is the engine's own cache, persisted.** Every KPI number is
  aggregated by a SQL statement whose result the engine memoises per dataset
  (:class:`~kpireport.kpis.engine.Prepared`, keyed ``("sqlc", sql)``,
  ``("sql", sql)``, plus the ``range``/``data_end``/``lead_sources`` look-ups).
  The cube stores exactly those entries under exactly those keys, so the
  views, goals and series code run unchanged and produce the same numbers:
  a query a kernel issues is either in the cube (a hit) or run on the raw
  data (a *miss*, logged and counted, :attr:`Cube.misses`).
* **Tidy Parquet.** ``queries.parquet`` has one row per entry (``entry``,
  ``kind``, ``key`` — the SQL text or look-up name —, ``ncols``, ``nrows``,
  ``types``: one letter per column, ``F`` a float column, ``O`` an object
  column); ``values.parquet`` has one row per value (``entry``, ``col``,
  ``row``, ``num`` for float columns, ``text`` and a type ``tag`` for object
  values: ``s`` text, ``i`` integer (as text: nanosecond timestamps exceed
  a double), ``f`` float, ``b`` bool, ``t`` timestamp, ``d`` date, ``n``
  null). Floats round-trip bit for bit.
* **Per-run tables.** Two memo kinds hold a DataFrame (:data:`FRAMES`): the
  rows of a ``SELECT`` over one table (``("frame", sql)``,
  :meth:`~kpireport.kpis.engine.Prepared.rows`: the deals open on
  ``as_of``, tens of thousands of rows at scale 90) and the validated goal
  table (``("goals",)``, :func:`kpireport.goals.definitions.load_goals`).
  Each is one Parquet file ``frames/<entry>.parquet`` (dtypes and order
  kept), listed in ``queries.parquet`` with ``types`` ``P``; a kernel gets
  them read-only (callers copy).
* **Lazy raw tables.** A kernel's dataset is a :class:`CubeData` whose
  ``tables`` is a :class:`LazyTables` mapping: a table is read from the
  snapshot's Parquet only when some code indexes it (a *table miss*, logged
  and counted), except the small tables every report lists
  (:data:`SMALL_TABLES`: seller names and teams, goals). Questions about a
  table's *shape* (does it exist, has it rows, does a column hold any value)
  are answered by a one-row *stub* frame written with the cube
  (:meth:`LazyTables.peek`), which is all the engine asks before it looks a
  query up.
* **A miss still gives the right answer.** On a query miss the engine runs the
  statement on an embedded DuckDB whose tables are views over the snapshot's
  Parquet files (:meth:`Cube.engine`): no table is pulled into pandas for it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kpireport.data.model import CrmData, LazyFrames, _freeze

log = logging.getLogger("kpireport")

#: the folder of the cube inside a snapshot
CUBE_DIR = "cube"
#: the index of the cube (entry count, stub shapes)
CUBE_MARKER = "CUBE.json"
#: memo kinds of :class:`~kpireport.kpis.engine.Prepared` the cube persists
PERSISTED = frozenset({"sql", "sqlc", "range", "data_end", "lead_sources", "frame", "goals"})
#: memo kinds whose value is a DataFrame, kept as one Parquet file each (``frames/<entry>.parquet``)
FRAMES = frozenset({"frame", "goals"})
#: environment switch: ``0`` turns the cube off (kernels load the snapshot whole)
CUBE_ENV = "KPIREPORT_CUBE"
#: tables every report lists, always read whole (small: one row per seller / goal)
SMALL_TABLES = frozenset({"sellers", "goals"})


def enabled() -> bool:
    """False when ``KPIREPORT_CUBE=0`` (a switch for comparisons)."""
    return os.environ.get(CUBE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# ----------------------------------------------------------------- encoding
def _tag(v: object) -> tuple[str, str | None]:
    """An object value as ``(tag, text)`` (module docstring)."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return "n", None
    if isinstance(v, str):
        return "s", v
    if isinstance(v, bool | np.bool_):
        return "b", "1" if v else "0"
    if isinstance(v, int | np.integer):
        return "i", str(int(v))
    if isinstance(v, float | np.floating):
        return "f", repr(float(v))
    if isinstance(v, pd.Timestamp):
        return "t", str(v.value)
    if isinstance(v, dt.datetime):
        return "t", str(pd.Timestamp(v).value)
    if isinstance(v, dt.date):
        return "d", v.isoformat()
    raise TypeError(f"cannot store a {type(v).__name__} in the KPI cube")


def _untag(tag: str, text: str | None) -> object:
    if tag == "n":
        return None
    if tag == "s":
        return text
    if tag == "b":
        return text == "1"
    if tag == "i":
        return int(text)
    if tag == "f":
        return float(text)
    if tag == "t":
        return pd.Timestamp(int(text)).to_pydatetime()
    return dt.date.fromisoformat(text)


def _as_columns(kind: str, value: object) -> list[np.ndarray]:
    """A memo value as a list of columns (float64 or object arrays)."""
    if kind == "sqlc":
        return list(value)
    if kind == "sql":
        rows = list(value)
        width = len(rows[0]) if rows else 0
        return [np.array([r[j] for r in rows], dtype=object) for j in range(width)]
    if kind == "range":
        return [] if value is None else [np.array(list(value), dtype=object)]
    if kind == "data_end":
        return [np.array([value], dtype=object)]
    if kind == "lead_sources":
        return [np.array([str(x) for x in value], dtype=object)]
    raise ValueError(kind)


def _from_columns(kind: str, cols: list[np.ndarray]) -> object:
    if kind == "sqlc":
        return cols
    if kind == "sql":
        n = len(cols[0]) if cols else 0
        return [tuple(c[i] for c in cols) for i in range(n)]
    if kind == "range":
        return None if not cols else (int(cols[0][0]), int(cols[0][1]))
    if kind == "data_end":
        return int(cols[0][0])
    return pd.Index(list(cols[0]), dtype="str", name="source")


def _entry_key(key: tuple) -> str:
    """The text stored for a memo key (its tail after the kind)."""
    if key[0] in ("sql", "sqlc", "frame"):
        return key[1]
    return json.dumps([str(k) for k in key[1:]])


def _memo_key(kind: str, text: str) -> tuple:
    if kind in ("sql", "sqlc", "frame"):
        return (kind, text)
    return (kind, *json.loads(text))


def write_entries(entries: Mapping[tuple, object], folder: Path) -> int:
    """Write the persistable memo ``entries`` as tidy Parquet into ``folder``; return their count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    q: dict[str, list] = {"entry": [], "kind": [], "key": [], "ncols": [], "nrows": [], "types": []}
    v: dict[str, list] = {"entry": [], "col": [], "row": [], "num": [], "text": [], "tag": []}
    n = 0
    for key, value in entries.items():
        kind = key[0]
        if kind not in PERSISTED:
            continue
        if kind in FRAMES:  # a per-run table: its own Parquet file, dtypes kept
            (folder / "frames").mkdir(parents=True, exist_ok=True)
            value.to_parquet(folder / "frames" / f"{n}.parquet")
            for name, x in zip(
                ("entry", "kind", "key", "ncols", "nrows", "types"),
                (n, kind, _entry_key(key), value.shape[1], len(value), "P"),
                strict=True,
            ):
                q[name].append(x)
            n += 1
            continue
        cols = _as_columns(kind, value)
        nrows = len(cols[0]) if cols else 0
        types = "".join("F" if c.dtype == np.float64 else "O" for c in cols)
        for j, c in enumerate(cols):
            v["entry"].append(np.full(nrows, n, np.int32))
            v["col"].append(np.full(nrows, j, np.int16))
            v["row"].append(np.arange(nrows, dtype=np.int32))
            if c.dtype == np.float64:
                v["num"].append(c)
                v["text"].append(np.full(nrows, None, dtype=object))
                v["tag"].append(np.full(nrows, "F", dtype=object))
            else:
                pairs = [_tag(x) for x in c]
                v["num"].append(np.full(nrows, np.nan))
                v["text"].append(np.array([p[1] for p in pairs], dtype=object))
                v["tag"].append(np.array([p[0] for p in pairs], dtype=object))
        for name, x in zip(
            ("entry", "kind", "key", "ncols", "nrows", "types"),
            (n, kind, _entry_key(key), len(cols), nrows, types),
            strict=True,
        ):
            q[name].append(x)
        n += 1
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "entry": pa.array(q["entry"], pa.int32()),
                "kind": pa.array(q["kind"], pa.string()),
                "key": pa.array(q["key"], pa.large_string()),
                "ncols": pa.array(q["ncols"], pa.int16()),
                "nrows": pa.array(q["nrows"], pa.int32()),
                "types": pa.array(q["types"], pa.string()),
            }
        ),
        folder / "queries.parquet",
    )

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.array([], dtype=dtype)

    pq.write_table(
        pa.table(
            {
                "entry": pa.array(cat(v["entry"], np.int32)),
                "col": pa.array(cat(v["col"], np.int16)),
                "row": pa.array(cat(v["row"], np.int32)),
                "num": pa.array(cat(v["num"], np.float64)),
                "text": pa.array(cat(v["text"], object), pa.string(), from_pandas=True),
                "tag": pa.array(cat(v["tag"], object), pa.string()),
            }
        ),
        folder / "values.parquet",
    )
    return n


def read_entries(folder: Path) -> dict[tuple, object]:
    """The memo entries written by :func:`write_entries`, under the engine's keys."""
    import pyarrow.parquet as pq

    q = pq.read_table(folder / "queries.parquet").to_pydict()
    vals = pq.read_table(folder / "values.parquet")
    entry = vals["entry"].to_numpy()
    col = vals["col"].to_numpy()
    num = vals["num"].to_numpy()
    text = vals["text"].to_pylist()
    tag = vals["tag"].to_pylist()
    # values are written entry by entry, column by column, row by row
    bounds = np.flatnonzero(np.diff(entry * 65536 + col)) + 1
    starts = np.concatenate([[0], bounds]) if len(entry) else np.array([], np.int64)
    ends = np.concatenate([bounds, [len(entry)]]) if len(entry) else np.array([], np.int64)
    spans = {
        (int(entry[a]), int(col[a])): (int(a), int(b)) for a, b in zip(starts, ends, strict=True)
    }
    out: dict[tuple, object] = {}
    for i, kind in enumerate(q["kind"]):
        e, types, nrows = q["entry"][i], q["types"][i], q["nrows"][i]
        if kind in FRAMES:
            frame = pd.read_parquet(folder / "frames" / f"{e}.parquet")
            _freeze(frame)
            out[_memo_key(kind, q["key"][i])] = frame
            continue
        cols = []
        for j, t in enumerate(types):
            a, b = spans.get((e, j), (0, 0))
            if t == "F":
                cols.append(num[a:b].copy() if nrows else np.array([], np.float64))
            else:
                cols.append(
                    np.array([_untag(g, x) for g, x in zip(tag[a:b], text[a:b], strict=True)],
                             dtype=object)
                )  # fmt: skip
        out[_memo_key(kind, q["key"][i])] = _from_columns(kind, cols)
    return out


# ----------------------------------------------------------------- stubs
def stub_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A one-row frame with ``df``'s columns and dtypes (zero rows when ``df`` is empty).

    A column's value is its first non-missing value, missing when it has none:
    enough for "has the table rows", "is the column there", "does it hold any
    value" (:meth:`LazyTables.peek`).
    """
    if not len(df):
        return df.iloc[:0].copy()
    row = {}
    for c in df.columns:
        s = df[c]
        i = s.first_valid_index()
        row[c] = s.iloc[:1] if i is None else s.loc[[i]].iloc[:1]
    out = pd.DataFrame({c: v.to_numpy() for c, v in row.items()}, columns=df.columns)
    return out.astype(df.dtypes.to_dict())


# ----------------------------------------------------------------- cube
class Cube:
    """A cube folder opened by a kernel: its memo entries, stubs and miss counters."""

    def __init__(self, folder: Path, snapshot: Path) -> None:
        self.folder = Path(folder)
        self.snapshot = Path(snapshot)
        self.meta = json.loads((self.folder / CUBE_MARKER).read_text(encoding="utf-8"))
        self.entries = read_entries(self.folder)
        #: query keys (kind, short text) asked for that the cube did not hold
        self.misses: list[tuple[str, str]] = []
        #: raw tables read from the snapshot
        self.table_reads: list[str] = []

    def missed(self, key: tuple) -> None:
        """Record a memo look-up the cube could not answer (the engine runs it on raw data)."""
        text = " ".join(str(k) for k in key[1:])
        self.misses.append((str(key[0]), text[:200]))
        log.info("KPI cube miss (%s): %s", key[0], text[:200])

    def stub(self, table: str) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "stubs" / f"{table}.parquet")

    def engine(self) -> Any:
        """An embedded DuckDB whose tables are views over the snapshot's Parquet files."""
        import duckdb

        from kpireport.kpis.relational import DuckDBEngine, quote, quote_ident

        con = duckdb.connect(":memory:")
        for name in self.meta["tables"]:
            path = str(self.snapshot / f"{name}.parquet")
            con.execute(
                f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM read_parquet({quote(path)})"
            )
        return DuckDBEngine(con)


class LazyTables(LazyFrames):
    """Table name -> DataFrame, each read from the snapshot on first use (module docstring)."""

    def __init__(self, names: list[str], snapshot: Path, cube: Cube | None) -> None:
        super().__init__(names)
        self._snapshot = Path(snapshot)
        self._cube = cube
        self._stubs: dict[str, pd.DataFrame] = {}

    def _load(self, name: str) -> pd.DataFrame:
        if name not in SMALL_TABLES and self._cube is not None:
            self._cube.table_reads.append(name)
            log.info("KPI cube miss: the raw table '%s' is read from the snapshot", name)
        df = pd.read_parquet(self._snapshot / f"{name}.parquet")
        _freeze(df)
        return df

    def peek(self, name: str) -> pd.DataFrame:
        """The table when it is loaded or small, else its one-row stub (:func:`stub_frame`)."""
        name = str(name)
        if name in self._frames or name in SMALL_TABLES or self._cube is None:
            return self[name]
        if name not in self._names:
            raise KeyError(name)
        if name not in self._stubs:
            self._stubs[name] = self._cube.stub(name)
        return self._stubs[name]

    def __repr__(self) -> str:
        return f"LazyTables({self._names}, loaded={sorted(self._frames)})"


@dataclass
class CubeData(CrmData):
    """A snapshot dataset whose KPI queries are answered by its cube (module docstring).

    ``tables`` is a :class:`LazyTables`; :meth:`fingerprint` is the snapshot's
    (checked when it was written); ``cube`` is the opened :class:`Cube`.
    """

    cube: Cube | None = field(default=None, repr=False, compare=False)
    snapshot_fingerprint: str = ""

    def __post_init__(self) -> None:  # tables are frozen as they are read
        pass

    def replace(self, tables: Mapping[str, pd.DataFrame] | None = None, **changes: Any) -> CrmData:
        """A new dataset, as :meth:`CrmData.replace`; it no longer reads the cube.

        The cube's results belong to this content: other tables or settings
        (time zone, currency, gross margin) give a plain :class:`CrmData`,
        every table read from the snapshot. Only the labels (organisation,
        source, warnings) keep the cube.
        """
        if tables is None and set(changes) <= {"organisation", "source", "warnings"}:
            return dataclasses.replace(self, **changes)
        merged = dict(self.tables)
        merged.update(tables or {})
        plain = {f.name: getattr(self, f.name) for f in dataclasses.fields(CrmData)}
        return CrmData(**{**plain, **changes, "tables": merged})

    def cache_token(self) -> tuple[object, ...]:
        tables = self.tables
        if not isinstance(tables, LazyTables):
            return super().cache_token()
        # the raw tables are the snapshot's, never replaced; the small ones are
        # checked like any CrmData's (a replaced column is seen)
        out: list[object] = [self.timezone, self.currency, tables, tuple(tables)]
        for name in sorted(SMALL_TABLES & set(tables)):
            df = tables[name]
            out += [name, df, df.index, tuple(df.columns)]
            out += _freeze(df)
        return tuple(out)

    def fingerprint(self) -> str:
        return self.snapshot_fingerprint or super().fingerprint()


def misses(data: Any) -> dict[str, list]:
    """The cube misses of a kernel's dataset so far: ``{"queries": [...], "tables": [...]}``."""
    cube = getattr(data, "cube", None)
    if cube is None:
        return {"queries": [], "tables": []}
    return {"queries": list(cube.misses), "tables": list(cube.table_reads)}
