"""A realistic, deterministic demo CRM (SPEC §2 tables) for a fictional B2B company.

The company is *Nordlys Systems Oy*, a Finnish B2B software vendor (currency
EUR, calendar ``Europe/Helsinki``) with four sales teams whose deal sizes and
sales cycles differ: Enterprise (median deal ~60 k, cycles of months),
Mid-Market, SMB (median ~4 k, cycles of weeks) and a partner team
("Partners Öst"). Data covers three full calendar years before the ``as_of``
year plus that year up to and including ``as_of``.

Design decisions
----------------
* **Generated as a process, not as independent columns.** Sellers join (with a
  three-month ramp-up) and leave; their active days per month times a team
  rate, a growth trend and a monthly season give Poisson lead counts per
  seller-month; leads get a source, are sales-qualified (``qualified_at``) with
  a per-source probability, and some become deals; other deals (upsell,
  renewals) have no lead. Each deal gets a team-typical value and sales cycle,
  then a close date that is *moved* the way real closes move: July and late
  December closes slip to the next month (holidays), early-quarter closes are
  pulled into the last days of March, June and September (quarter-end push),
  and weekend closes move to the nearest weekday. Deals whose close date is
  after ``as_of`` are open, with a stage and probability from their progress;
  a few old lost-to-be deals stay open as stale "zombies".
* **Fully vectorised.** Every row-level quantity is drawn with numpy on whole
  arrays; the only Python loops run over teams, sellers or periods (a few
  hundred iterations at most). Counts per seller-month are expanded to rows
  with ``np.repeat``. Ids and labels are built with pyarrow compute.
* **Deterministic.** One ``numpy.random.Generator`` per part, spawned from
  ``SeedSequence(seed)``, always consumed in the same order; nothing reads the
  clock (``as_of`` is a parameter).
* **Scale.** ``scale`` multiplies the number of sellers (per team) and the pool
  of pre-existing companies; leads, deals, activities and revenue follow the
  sellers, so every table grows linearly. At ``scale=1`` there are about 24
  sellers and 11 k deals; :data:`BENCHMARK_SCALE` (90) gives ~1 M deals and ~5 M
  activities.
* **Hand-overs.** When a seller leaves, their open deals, later activities and
  later invoices go to the most senior colleague of the same team who stays;
  the deal keeps its creator's history (activities before the hand-over keep
  the original seller).
* **Goals** are set like a planner sets them, before the period and from
  complete months only: a monthly plan per scope = the deseasonalised mean
  month of the last six complete months x the organisation's (shrunk)
  seasonal index x its growth to the month x a 0–8 % stretch (ratios: the
  pooled last six months with a small improvement). Quarter targets are the
  sum of their months' plans, week targets the plan per working day of each
  day's month summed over the week's Monday–Friday, so month, quarter and
  week targets agree. New sellers get their team's median. Some goals are
  reached and some missed. A few goals lack ``agreed_by`` (including every
  current goal of the newest seller) so the goal lint has something to say.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpireport.data.model import CrmData
from kpireport.data.schema import SCHEMAS
from kpireport.errors import SourceError

log = logging.getLogger("kpireport")

ORGANISATION = "Nordlys Systems Oy"
TIMEZONE = "Europe/Helsinki"
CURRENCY = "EUR"
DEFAULT_AS_OF = "2026-11-30"
#: scale at which the demo has about 1 M deals and 5 M activities
BENCHMARK_SCALE = 90.0
TABLES = ("sellers", "companies", "leads", "deals", "activities", "revenue", "costs", "goals")
FORMATS = ("csv", "parquet", "sqlite", "xlsx")
EXCEL_MAX_ROWS = 1_048_575

SOURCES = ("web", "event", "referral", "cold call", "partner")
#: P(lead is sales-qualified), P(deal | SQL), multiplier on the team win rate
SOURCE_QUALIFY = np.array([0.30, 0.35, 0.60, 0.15, 0.45])
SOURCE_DEAL = np.array([0.75, 0.70, 0.85, 0.65, 0.80])
SOURCE_WIN = np.array([1.00, 0.90, 1.50, 0.70, 1.20])
#: probability that a weekend lead keeps its weekend date (web forms work on Sundays)
SOURCE_WEEKEND = np.array([0.30, 0.02, 0.02, 0.0, 0.02])

#: relative volume of new leads/deals per calendar month (Jan..Dec)
SEASON = np.array([0.95, 1.05, 1.10, 1.05, 1.05, 0.95, 0.55, 0.80, 1.15, 1.15, 1.10, 0.75])
#: yearly productivity growth per seller (headcount adds the rest)
PRODUCTIVITY_GROWTH = 0.10
PRICE_GROWTH = 0.04

STAGES = ("qualification", "needs analysis", "proposal", "negotiation", "closed won", "closed lost")
STAGE_PROBABILITY = np.array([0.10, 0.25, 0.50, 0.75, 1.0, 0.0])
ACTIVITY_TYPES = ("call", "email", "meeting", "quote")
DEAL_ACTIVITY_MIX = np.array([0.30, 0.35, 0.22, 0.13])
PROSPECTING_MIX = np.array([0.60, 0.35, 0.05, 0.0])
INDUSTRIES = (
    "Manufacturing", "Retail", "Logistics", "Healthcare", "Financial services",
    "Public sector", "IT & software", "Construction", "Energy", "Education",
)  # fmt: skip
FIRST_NAMES = (
    "Björn", "Aino", "Mikko", "Sanna", "Jukka", "Elina", "Oskar", "Laura", "Ville", "Henna",
    "Antti", "Johanna", "Timo", "Maria", "Eero", "Kaisa", "Lars", "Saara", "Petteri", "Noora",
    "Jari", "Emma", "Tuomas", "Riikka", "Sami", "Linnea", "Olli", "Katja", "Anders", "Päivi",
)  # fmt: skip
LAST_NAMES = (
    "Åkesson", "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Heikkinen",
    "Koskinen", "Järvinen", "Lehtonen", "Lindqvist", "Saarinen", "Salminen", "Holmström",
    "Tuominen", "Rantanen", "Karjalainen", "Söderberg", "Leinonen",
)  # fmt: skip
COMPANY_WORDS = (
    "Aalto", "Kivi", "Meri", "Revontuli", "Tunturi", "Polar", "Boreal", "Saimaa", "Kaamos",
    "Lumi", "Nordic", "Baltic", "Helmi", "Väre", "Sisu", "Kelo", "Aurora", "Tammi", "Koivu", "Ilma",
)  # fmt: skip
COMPANY_TRADES = (
    "Logistics", "Metal", "Foods", "Health", "Energy", "Systems", "Build", "Retail", "Data",
    "Consulting", "Pharma", "Paper", "Marine", "Solutions", "Tech",
)  # fmt: skip
COMPANY_FORMS = ("Oy", "Oy", "Oy", "Ab", "Oyj", "AB", "AS", "GmbH", "Ltd")
SALES_DIRECTOR = "Marja Ström"
CEO = "Jonas Lind"


@dataclass(frozen=True)
class TeamProfile:
    """How one sales team sells (all rates at scale 1, per fully ramped seller)."""

    name: str
    sellers: int
    manager: str
    deals_per_month: float  # deals created per seller-month
    no_lead_share: float  # share of deals without a lead (upsell, renewal)
    deal_median: float
    deal_sigma: float
    value_round: float
    cycle_median: float  # days from created to closed
    win_rate: float
    subscription_share: float  # won deals billed as a recurring subscription (value = ACV)
    churn: float  # monthly probability a subscription stops
    activities_per_deal: float
    prospecting_per_day: float  # logged prospecting activities per working day
    monthly_cost: float  # fully loaded seller cost per month
    marketing: float  # monthly team marketing budget
    source_mix: tuple[float, float, float, float, float]


TEAMS: tuple[TeamProfile, ...] = (
    TeamProfile("Enterprise", 5, "Kaisa Rautio", 3.0, 0.35, 60_000, 0.5, 500, 110, 0.27,
                0.55, 0.010, 14, 0.5, 10_000, 14_000, (0.20, 0.25, 0.20, 0.30, 0.05)),
    TeamProfile("Mid-Market", 7, "Mats Lindholm", 9.0, 0.25, 18_000, 0.55, 100, 55, 0.32,
                0.45, 0.018, 6, 0.7, 8_000, 20_000, (0.40, 0.15, 0.10, 0.30, 0.05)),
    TeamProfile("SMB", 8, "Heidi Nurmi", 22.0, 0.20, 4_000, 0.5, 10, 24, 0.37,
                0.35, 0.030, 2.5, 0.9, 6_500, 28_000, (0.60, 0.05, 0.08, 0.25, 0.02)),
    TeamProfile("Partners Öst", 4, "Pekka Öhman", 6.0, 0.25, 25_000, 0.55, 100, 70, 0.34,
                0.40, 0.018, 5, 0.4, 7_500, 8_000, (0.10, 0.10, 0.10, 0.05, 0.65)),
)  # fmt: skip

#: goals the demo sets: (scope, grain, kpi)
GOAL_PLAN: tuple[tuple[str, str, str], ...] = (
    ("organisation", "month", "revenue"),
    ("organisation", "month", "won_value"),
    ("organisation", "month", "deals_won"),
    ("organisation", "month", "new_leads"),
    ("organisation", "month", "hit_rate"),
    ("organisation", "month", "cac"),
    ("organisation", "month", "sales_cycle_days"),
    ("organisation", "quarter", "revenue"),
    ("organisation", "quarter", "won_value"),
    ("organisation", "quarter", "new_leads"),
    ("organisation", "quarter", "cac"),
    ("organisation", "week", "new_leads"),
    ("organisation", "week", "meetings_booked"),
    ("team", "month", "won_value"),
    ("team", "month", "deals_won"),
    ("team", "month", "meetings_booked"),
    ("team", "month", "hit_rate"),
    ("team", "month", "sales_cycle_days"),
    ("team", "quarter", "revenue"),
    ("team", "quarter", "won_value"),
    ("team", "week", "meetings_booked"),
    ("seller", "month", "won_value"),
    ("seller", "month", "deals_won"),
    ("seller", "month", "meetings_booked"),
    ("seller", "quarter", "won_value"),
    ("seller", "quarter", "hit_rate"),
    ("seller", "week", "meetings_booked"),
    ("seller", "week", "quotes_sent"),
    ("customer", "month", "revenue"),
    ("customer", "quarter", "revenue"),
    ("customer", "week", "meetings_booked"),
)
AT_MOST_KPIS = ("cac", "sales_cycle_days")
#: goal plan: months behind a target's level, shrinkage of the seasonal index
#: towards 1, and the stretch range on top of the forecast-like plan
LEVEL_MONTHS = 6
SEASON_SHRINK = 0.5
STRETCH = (0.98, 1.08)
N_KEY_CUSTOMERS = 4


# --------------------------------------------------------------------------- public API
def generate_demo(
    seed: int = 7, scale: float = 1.0, as_of: dt.date | pd.Timestamp | str = DEFAULT_AS_OF
) -> dict[str, pd.DataFrame]:
    """Generate every canonical table of a realistic demo CRM.

    Parameters
    ----------
    seed
        Random seed; the same seed, scale and ``as_of`` give identical frames.
    scale
        Multiplies the number of sellers and companies and so every row count.
        ``1`` gives ~24 sellers and ~11 k deals; :data:`BENCHMARK_SCALE` ~1 M
        deals and ~5 M activities.
    as_of
        Last day of data. The data starts on 1 January three years earlier.

    Returns
    -------
    dict of str to DataFrame
        ``sellers, companies, leads, deals, activities, revenue, costs, goals``
        with the canonical columns of :mod:`kpireport.data.schema` in canonical
        dtypes (ids ``str``, dates naive ``datetime64[ns]``, numbers ``float64``).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    day = pd.Timestamp(as_of).normalize()
    g = _Generator(int(seed), float(scale), day)
    return g.run()


def demo_data(
    seed: int = 7, scale: float = 1.0, as_of: dt.date | pd.Timestamp | str = DEFAULT_AS_OF
) -> CrmData:
    """The demo CRM as :class:`~kpireport.data.model.CrmData` (see :func:`generate_demo`)."""
    tables = generate_demo(seed=seed, scale=scale, as_of=as_of)
    return CrmData(
        tables,
        timezone=TIMEZONE,
        currency=CURRENCY,
        organisation=ORGANISATION,
        settings={"gross_margin": 0.8},
        source=f"kpireport demo (seed {seed}, scale {scale:g}, as of {pd.Timestamp(as_of).date()})",
    )


def write_demo(
    out: str | os.PathLike[str],
    seed: int = 7,
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
        As for :func:`generate_demo`.
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
            _atomic(
                folder / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False, date_format=None)
            )
        target = "."
    elif fmt == "parquet":
        for name, df in data.items():
            _atomic(folder / f"{name}.parquet", lambda p, df=df: df.to_parquet(p, index=False))
        target = "."
    elif fmt == "sqlite":
        _atomic(folder / "crm.sqlite", lambda p: _write_sqlite(p, data))
        target = "crm.sqlite"
    else:
        too_long = [n for n, df in data.items() if len(df) > EXCEL_MAX_ROWS]
        if too_long:
            raise SourceError(
                f"Table(s) {', '.join(too_long)} have more rows than an Excel sheet holds.",
                hint="Use a smaller --scale or another format (csv, parquet, sqlite).",
            )
        _atomic(folder / "crm.xlsx", lambda p: _write_excel(p, data))
        target = "crm.xlsx"
    yaml_text = (
        f"# kpireport demo CRM (seed {seed}, scale {scale:g}, as of {pd.Timestamp(as_of).date()}).\n"
        f"path: {target}\n"
        f"organisation: {ORGANISATION}\n"
        f"timezone: {TIMEZONE}\n"
        f"currency: {CURRENCY}\n"
    )
    source = folder / "source.yaml"
    _atomic(source, lambda p: p.write_text(yaml_text, encoding="utf-8"))
    log.info("demo CRM written to %s (%s)", folder, fmt)
    return source


# --------------------------------------------------------------------------- writers
def _atomic(path: Path, write) -> None:
    """Write via a temporary sibling and rename, so a crash leaves no half file."""
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    if tmp.exists():
        tmp.unlink()
    write(tmp)
    os.replace(tmp, path)


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


# --------------------------------------------------------------------------- helpers
_NAT = np.iinfo(np.int64).min


#: the 10 000 four-digit strings "0000".."9999" as bytes, for fast id formatting
_DIGITS4 = np.frombuffer(
    "".join(f"{i:04d}" for i in range(10_000)).encode(), dtype=np.uint8
).reshape(10_000, 4)


def _ids(prefix: str, idx: np.ndarray, width: int) -> pd.Series:
    """``prefix`` + zero-padded ``idx + 1`` as a ``str`` Series; negative idx -> NaN.

    The digits are written into a fixed-width byte matrix with numpy and handed
    to pyarrow as one string buffer (no per-row Python): ~10x faster than
    formatting, which matters for 5 M activity ids. ``width`` is fixed per id
    kind so that the same id is spelt the same in every table.
    """
    idx = np.asarray(idx, dtype=np.int64)
    n = idx.shape[0]
    mask = idx < 0
    num = (np.maximum(idx, -1) + 1).astype(np.uint64)
    if n and len(str(int(num.max()))) > width:  # pragma: no cover - widths are sized by the caller
        raise ValueError(f"id {prefix}{int(num.max())} does not fit {width} digits")
    prefix_bytes = np.frombuffer(prefix.encode(), dtype=np.uint8)
    k = prefix_bytes.shape[0]
    row = k + width
    chars = np.empty((n, row), dtype=np.uint8)
    chars[:, :k] = prefix_bytes
    pos = row
    while pos > k:
        block = np.take(_DIGITS4, (num % 10_000).astype(np.intp), axis=0)
        take = min(4, pos - k)
        chars[:, pos - take : pos] = block[:, 4 - take :]
        num //= 10_000
        pos -= take
    offsets = np.arange(n + 1, dtype=np.int64) * row
    validity = pa.py_buffer(np.packbits(~mask, bitorder="little")) if mask.any() else None
    arr = pa.Array.from_buffers(
        pa.large_string(),
        n,
        [validity, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1))],
        null_count=int(mask.sum()),
    )
    return pd.Series(pd.array(arr, dtype="str"))


def _arrow_labels(codes: np.ndarray, names: tuple[str, ...] | list[str] | np.ndarray) -> pa.Array:
    """Category codes -> pyarrow large_string array of names; negative codes -> null.

    Built directly from one byte buffer (names padded to a matrix, gathered by
    code, padding dropped), which is several times faster than casting a
    dictionary array for millions of rows.
    """
    codes = np.asarray(codes, dtype=np.int64)
    n = codes.shape[0]
    mask = codes < 0
    encoded = [str(x).encode() for x in names]
    lengths = np.array([len(b) for b in encoded], dtype=np.int64)
    width = max(1, int(lengths.max()))
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for i, b in enumerate(encoded):
        table[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
    safe = np.where(mask, 0, codes)
    row_len = np.where(mask, 0, lengths[safe])
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=offsets[1:])
    gathered = np.take(table, safe, axis=0)
    keep = np.arange(width)[None, :] < row_len[:, None]
    data = gathered[keep]
    validity = pa.py_buffer(np.packbits(~mask, bitorder="little")) if mask.any() else None
    return pa.Array.from_buffers(
        pa.large_string(),
        n,
        [validity, pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=int(mask.sum()),
    )


def _labels(codes: np.ndarray, names: tuple[str, ...] | list[str] | np.ndarray) -> pd.Series:
    """Category codes -> ``str`` Series of names; negative codes -> NaN."""
    return pd.Series(pd.array(_arrow_labels(codes, names), dtype="str"))


def _dates(days: np.ndarray, seconds: np.ndarray | None = None) -> pd.Series:
    """Day numbers (days since 1970-01-01; ``_NAT`` = missing) -> datetime64[ns] Series."""
    days = np.asarray(days, dtype=np.int64)
    missing = days == _NAT
    ns = np.where(missing, 0, days) * 86_400_000_000_000
    if seconds is not None:
        ns = ns + np.asarray(seconds, dtype=np.int64) * 1_000_000_000
    ns[missing] = _NAT
    return pd.Series(ns.view("datetime64[ns]"))


def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 for day numbers (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def _to_workday(days: np.ndarray, keep: np.ndarray | float, rng: np.random.Generator,
                lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:  # fmt: skip
    """Move weekend days to the nearest weekday inside ``[lo, hi]`` unless kept.

    Saturdays go to Friday, Sundays to Monday (or the other way round when
    that leaves the window); a day keeps its weekend date with prob. ``keep``.
    """
    wd = _weekday(days)
    move = (wd >= 5) & (rng.random(days.shape[0]) >= keep)
    first = np.where(wd == 5, -1, 1)
    out = np.where(move, days + first, days)
    bad = move & ((out < lo) | (out > hi))
    out = np.where(bad, days + np.where(wd == 5, 2, -2), out)
    return np.clip(out, lo, hi)


def _month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of day numbers (via a lookup table over the days' range)."""
    days = np.asarray(days, dtype=np.int64)
    if days.shape[0] < 1000:
        return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    lo, hi = int(days.min()), int(days.max())
    table = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return table[days - lo]


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index of each repeated element and its position within its group."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(counts.shape[0]), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(owner.shape[0]) - np.repeat(starts, counts)
    return owner, pos


def _choice_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per element using the probability row ``probs[rows]``."""
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(rows.shape[0])
    return (u[:, None] > cum[rows]).sum(axis=1)


def _frame(table: str, columns: dict[str, object]) -> pd.DataFrame:
    """Assemble a canonical frame: schema column order, canonical dtypes, all-NA fill."""
    schema = SCHEMAS[table]
    n = len(next(iter(columns.values())))
    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        values = columns.get(col.name)
        if values is None:
            if col.kind == "date":
                values = pd.Series(np.full(n, _NAT).view("datetime64[ns]"))
            elif col.kind == "float":
                values = pd.Series(np.full(n, np.nan))
            else:
                values = pd.Series(np.full(n, np.nan), dtype="str")
        s = pd.Series(values).reset_index(drop=True)
        if col.kind == "date":
            s = s.astype("datetime64[ns]")
        elif col.kind == "float":
            s = s.astype("float64")
        else:
            s = s.astype("str")
        out[col.name] = s
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- generator
class _Generator:
    """One generation run; each ``_make_*`` step adds arrays to ``self``."""

    def __init__(self, seed: int, scale: float, as_of: pd.Timestamp) -> None:
        self.scale = scale
        self.as_of = as_of
        self.d0 = int(np.datetime64(f"{as_of.year - 3}-01-01", "D").astype(np.int64))
        self.d1 = int(np.datetime64(as_of.date(), "D").astype(np.int64))
        # generation starts half a year early so that January of the first year
        # already has a pipeline; rows dated before d0 are dropped at the end
        months = np.arange(
            np.datetime64(f"{as_of.year - 4}-07", "M"), np.datetime64(as_of.date(), "M") + 1
        )
        self.month_keys = months.astype(np.int64)
        self.ms = months.astype("datetime64[D]").astype(np.int64)  # month starts
        self.me = np.minimum((months + 1).astype("datetime64[D]").astype(np.int64), self.d1 + 1)
        self.month_of_year = (self.month_keys % 12).astype(np.int64)  # 0 = January
        self.growth = (1 + PRODUCTIVITY_GROWTH) ** ((self.ms - self.d0) / 365.25)
        streams = np.random.SeedSequence(seed).spawn(9)
        self.rng = {
            name: np.random.default_rng(s)
            for name, s in zip(
                (
                    "sellers",
                    "leads",
                    "deals",
                    "close",
                    "activities",
                    "revenue",
                    "costs",
                    "goals",
                    "companies",
                ),
                streams,
                strict=True,
            )
        }
        t = TEAMS
        self.t_median = np.array([x.deal_median for x in t])
        self.t_sigma = np.array([x.deal_sigma for x in t])
        self.t_round = np.array([x.value_round for x in t])
        self.t_cycle = np.array([x.cycle_median for x in t])
        self.t_win = np.array([x.win_rate for x in t])
        self.t_sub = np.array([x.subscription_share for x in t])
        self.t_churn = np.array([x.churn for x in t])
        self.t_apd = np.array([x.activities_per_deal for x in t])
        self.t_prospect = np.array([x.prospecting_per_day for x in t])
        self.t_mix = np.array([x.source_mix for x in t])
        self.t_lead_conv = self.t_mix @ (SOURCE_QUALIFY * SOURCE_DEAL)

    def run(self) -> dict[str, pd.DataFrame]:
        self._make_sellers()
        self._make_leads()
        self._make_deals()
        self._make_activities()
        self._make_revenue()
        self._make_costs()
        tables = {
            "sellers": self.sellers_df,
            "companies": self._companies_df(),
            "leads": self.leads_df,
            "deals": self.deals_df,
            "activities": self.activities_df,
            "revenue": self.revenue_df,
            "costs": self.costs_df,
        }
        tables["goals"] = self._make_goals()
        return tables

    # ------------------------------------------------------------------ sellers
    def _make_sellers(self) -> None:
        rng = self.rng["sellers"]
        span = self.d1 - self.d0
        team, af, at = [], [], []
        for ti, prof in enumerate(TEAMS):
            n = max(2, round(prof.sellers * self.scale))
            n_join = max(1, round(0.30 * n))
            n_leave = max(1, round(0.17 * n)) if n >= 3 else 0
            start = self.d0 - rng.integers(90, 7 * 365, n)
            # joiners come later more often (growth); start on the 1st of a month
            join_day = self.d0 + 60 + (np.sqrt(rng.random(n_join)) * (span - 150)).astype(np.int64)
            start[:n_join] = (
                _month_index(join_day)
                .astype("datetime64[M]")
                .astype("datetime64[D]")
                .astype(np.int64)
            )
            end = np.full(n, _NAT)
            leave_day = self.d0 + 200 + rng.integers(0, span - 260, n_leave)
            leave_end = (_month_index(leave_day) + 1).astype("datetime64[M]").astype(
                "datetime64[D]"
            ).astype(np.int64) - 1
            end[n_join : n_join + n_leave] = leave_end
            team.append(np.full(n, ti))
            af.append(start)
            at.append(end)
        team_a, af_a, at_a = np.concatenate(team), np.concatenate(af), np.concatenate(at)
        order = np.lexsort((team_a, af_a))  # hire order -> seller ids
        self.s_team, self.s_from, self.s_to = team_a[order], af_a[order], at_a[order]
        n = self.s_team.shape[0]
        self.sw = max(3, len(str(n)))  # seller id digits
        # Björn Åkesson is the longest-serving seller: index 0 has first and last name 0
        i = np.arange(n)
        first = i % len(FIRST_NAMES)
        last = (first + i // len(FIRST_NAMES)) % len(LAST_NAMES)
        self.s_name = np.array(
            [f"{FIRST_NAMES[a]} {LAST_NAMES[b]}" for a, b in zip(first, last, strict=True)]
        )
        base_cost = np.array([x.monthly_cost for x in TEAMS])[self.s_team]
        self.s_cost = np.round(base_cost * rng.uniform(0.85, 1.2, n), -1)
        self.s_end = np.where(self.s_to == _NAT, self.d1, self.s_to)  # last active day within data
        # successor: the most senior colleague of the same team who never leaves
        stays = self.s_to == _NAT
        self.successor = np.arange(n)
        for ti in range(len(TEAMS)):
            cand = np.flatnonzero(stays & (self.s_team == ti))
            if cand.size == 0:
                cand = np.flatnonzero(stays)
            senior = cand[np.argmin(self.s_from[cand])]
            leavers = np.flatnonzero(~stays & (self.s_team == ti))
            self.successor[leavers] = senior
        # active days per seller-month and a three-month ramp-up for new sellers
        lo = np.maximum(self.ms[None, :], self.s_from[:, None])
        hi = np.minimum(self.me[None, :], self.s_end[:, None] + 1)
        self.lo, self.hi = lo, hi
        self.exposure = np.clip(hi - lo, 0, None).astype(float)
        tenure = (self.ms[None, :] - self.s_from[:, None]) / 30.44
        self.ramp = np.clip((tenure + 1) / 4, 0.25, 1.0)
        self.sellers_df = _frame(
            "sellers",
            {
                "seller_id": _ids("S", i, self.sw),
                "name": pd.Series(self.s_name, dtype="str"),
                "team": _labels(self.s_team, [x.name for x in TEAMS]),
                "monthly_cost": self.s_cost,
                "active_from": _dates(self.s_from),
                "active_to": _dates(self.s_to),
            },
        )

    def _volume(self, per_month: np.ndarray) -> np.ndarray:
        """Expected events per seller-month for a per-seller monthly rate by team."""
        return (
            self.exposure / 30.44 * self.ramp * SEASON[self.month_of_year][None, :]
            * self.growth[None, :] * per_month[self.s_team][:, None]
        )  # fmt: skip

    def _days_in_cells(self, rng, seller: np.ndarray, month: np.ndarray) -> np.ndarray:
        lo, hi = self.lo[seller, month], self.hi[seller, month]
        return lo + (rng.random(seller.shape[0]) * (hi - lo)).astype(np.int64)

    # ------------------------------------------------------------------ leads and companies
    def _make_leads(self) -> None:
        rng = self.rng["leads"]
        dpm = np.array([x.deals_per_month for x in TEAMS])
        nls = np.array([x.no_lead_share for x in TEAMS])
        lam = self._volume(dpm * (1 - nls) / self.t_lead_conv)
        counts = rng.poisson(lam)
        seller, month = np.divmod(
            np.repeat(np.arange(counts.size), counts.ravel()), counts.shape[1]
        )
        source = _choice_rows(rng, self.t_mix, self.s_team[seller])
        day = self._days_in_cells(rng, seller, month)
        day = _to_workday(
            day, SOURCE_WEEKEND[source], rng, self.lo[seller, month], self.hi[seller, month] - 1
        )
        order = np.lexsort((seller, day))
        seller, day, source = seller[order], day[order], source[order]
        n = day.shape[0]
        # companies: ~78 % of leads are a new prospect, the rest an existing company
        n_pre = max(50, round(600 * self.scale))
        is_new = rng.random(n) < 0.78
        new_before = np.cumsum(is_new) - is_new
        existing = (rng.random(n) * (n_pre + new_before)).astype(np.int64)
        company = np.where(is_new, n_pre + new_before, existing)
        self.n_pre = n_pre
        self.newco_lead_day = day[is_new]
        self.n_companies = n_pre + int(is_new.sum())
        qual = rng.random(n) < SOURCE_QUALIFY[source]
        q_day = day + 1 + rng.gamma(2.0, 6.0, n).astype(np.int64)
        q_day = _to_workday(q_day, 0.0, rng, day + 1, q_day + 2)
        qual &= q_day <= self.d1
        self.l_day, self.l_seller, self.l_source, self.l_company = day, seller, source, company
        self.l_qual, self.l_qday = qual, np.where(qual, q_day, _NAT)

    def _leads_df(self, keep: np.ndarray) -> pd.DataFrame:
        n = int(keep.sum())
        return _frame(
            "leads",
            {
                "lead_id": _ids("L", np.arange(n), 7),
                "created_at": _dates(self.l_day[keep]),
                "company_id": _ids("C", self.l_company[keep], 7),
                "seller_id": _ids("S", self.l_seller[keep], self.sw),
                "source": _labels(self.l_source[keep], SOURCES),
                "qualified_at": _dates(self.l_qday[keep]),
            },
        )

    def _companies_df(self) -> pd.DataFrame:
        rng = self.rng["companies"]
        n_new = self.newco_lead_day.shape[0]
        n = self.n_pre + n_new
        created = np.empty(n, dtype=np.int64)
        created[: self.n_pre] = self.d0 - rng.integers(30, 10 * 365, self.n_pre)
        created[self.n_pre :] = self.newco_lead_day - rng.integers(0, 4, n_new)
        # Finnish business ids: 7 digits + check digit, some with leading zeros; unique
        i = np.arange(n, dtype=np.int64)
        body = (i * 7_654_321 + 1_234_567) % 10_000_000
        check = (body * 7 + 3) % 10
        body_s = pc.utf8_lpad(pa.array(body).cast(pa.string()), 7, padding="0")
        org = pc.binary_join_element_wise(body_s, pa.array(check).cast(pa.string()), "-")
        w1 = rng.integers(0, len(COMPANY_WORDS), n)
        w2 = rng.integers(0, len(COMPANY_TRADES), n)
        w3 = rng.integers(0, len(COMPANY_FORMS), n)
        combos = [
            f"{a} {b} {c}" for a in COMPANY_WORDS for b in COMPANY_TRADES for c in COMPANY_FORMS
        ]
        name = _labels((w1 * len(COMPANY_TRADES) + w2) * len(COMPANY_FORMS) + w3, combos)
        return _frame(
            "companies",
            {
                "company_id": _ids("C", i, 7),
                "org_number": pd.Series(pd.array(org, dtype="str")),
                "name": name,
                "industry": _labels(rng.integers(0, len(INDUSTRIES), n), INDUSTRIES),
                "created_at": _dates(created),
            },
        )

    # ------------------------------------------------------------------ deals
    def _make_deals(self) -> None:
        rng = self.rng["deals"]
        # deals from qualified leads
        lead = np.flatnonzero(
            self.l_qual & (rng.random(self.l_qual.shape[0]) < SOURCE_DEAL[self.l_source])
        )
        lday = self.l_qday[lead] + rng.integers(0, 8, lead.shape[0])
        lday = _to_workday(lday, 0.0, rng, self.l_qday[lead], lday + 2)
        keep = lday <= self.d1
        lead, lday = lead[keep], lday[keep]
        # deals without a lead: upsell and renewals at existing companies
        dpm = np.array([x.deals_per_month for x in TEAMS])
        nls = np.array([x.no_lead_share for x in TEAMS])
        counts = rng.poisson(self._volume(dpm * nls))
        nseller, nmonth = np.divmod(
            np.repeat(np.arange(counts.size), counts.ravel()), counts.shape[1]
        )
        nday = self._days_in_cells(rng, nseller, nmonth)
        nday = _to_workday(nday, 0.0, rng, self.lo[nseller, nmonth], self.hi[nseller, nmonth] - 1)
        known = self.n_pre + np.searchsorted(self.newco_lead_day, nday, side="left")
        ncompany = np.where(
            rng.random(nday.shape[0]) < 0.5,
            (rng.random(nday.shape[0]) * self.n_pre).astype(np.int64),
            (rng.random(nday.shape[0]) * known).astype(np.int64),
        )
        created = np.concatenate([lday, nday])
        seller0 = np.concatenate([self.l_seller[lead], nseller])
        company = np.concatenate([self.l_company[lead], ncompany])
        lead_idx = np.concatenate([lead, np.full(nday.shape[0], -1)])
        win_mult = np.concatenate([SOURCE_WIN[self.l_source[lead]], np.full(nday.shape[0], 1.3)])
        order = np.lexsort((seller0, created))
        created, seller0, company, lead_idx, win_mult = (
            a[order] for a in (created, seller0, company, lead_idx, win_mult)
        )
        n = created.shape[0]
        team = self.s_team[seller0]
        years = (created - self.d0) / 365.25
        raw = np.exp(np.log(self.t_median[team]) + self.t_sigma[team] * rng.standard_normal(n))
        value = (
            np.maximum(np.round(raw * (1 + PRICE_GROWTH) ** years / self.t_round[team]), 1)
            * self.t_round[team]
        )
        win = rng.random(n) < np.clip(self.t_win[team] * win_mult, 0.02, 0.9)
        cycle = np.exp(np.log(self.t_cycle[team]) + 0.5 * rng.standard_normal(n))
        cycle = np.clip(np.where(win, cycle, 0.8 * cycle), 3, 400).astype(np.int64)
        planned = created + cycle
        close = self._move_closes(planned, created)
        closed = close <= self.d1
        zombie = (
            closed & ~win & (close < self.d1 - 90) & (close >= self.d0) & (rng.random(n) < 0.03)
        )
        closed &= ~zombie
        status = np.where(closed, np.where(win, 1, 2), 0)  # 0 open, 1 won, 2 lost
        # open deals: stage from progress; a seller-maintained expected close date
        progress = (self.d1 - created) / np.maximum(close - created, 1)
        stage = np.select([progress < 0.25, progress < 0.5, progress < 0.8], [0, 1, 2], 3)
        stage = np.where(zombie, np.where(rng.random(n) < 0.5, 0, 2), stage)
        stage = np.where(status == 1, 4, np.where(status == 2, 5, stage))
        expected = close + np.round(rng.normal(0, 7, n)).astype(np.int64)
        expected = np.maximum(expected, self.d1 + 1)
        stale = rng.random(n) < 0.12
        expected = np.where(
            stale, np.maximum(self.d1 - rng.integers(1, 45, n), created + 1), expected
        )
        expected = np.where(zombie, planned, expected)
        expected = np.where(closed, np.minimum(planned, self.d1), expected)
        self.d_closed = np.where(closed, close, _NAT)
        end = np.where(closed, close, self.d1)
        handover = end > self.s_end[seller0]
        seller = np.where(handover, self.successor[seller0], seller0)
        self.d_created, self.d_end, self.d_seller0, self.d_seller = created, end, seller0, seller
        self.d_company, self.d_value, self.d_status, self.d_team = company, value, status, team
        # keep deals created in the data span, or created before it and closed in it (or open)
        keep = (created >= self.d0) | (end >= self.d0)
        self.deal_map = np.where(keep, np.cumsum(keep) - 1, -1)
        lead_keep = self.l_day >= self.d0
        lead_keep[lead_idx[keep & (lead_idx >= 0)]] = True
        lead_map = np.where(lead_keep, np.cumsum(lead_keep) - 1, -1)
        self.leads_df = self._leads_df(lead_keep)
        lead_new = np.where(lead_idx >= 0, lead_map[np.maximum(lead_idx, 0)], -1)
        k = keep
        self.deals_df = _frame(
            "deals",
            {
                "deal_id": _ids("D", np.arange(int(k.sum())), 7),
                "seller_id": _ids("S", seller[k], self.sw),
                "created_at": _dates(created[k]),
                "status": _labels(status[k], ("open", "won", "lost")),
                "value": value[k],
                "company_id": _ids("C", company[k], 7),
                "lead_id": _ids("L", lead_new[k], 7),
                "stage": _labels(stage[k], STAGES),
                "probability": STAGE_PROBABILITY[stage[k]],
                "closed_at": _dates(self.d_closed[k]),
                "expected_close_at": _dates(expected[k]),
                "currency": _labels(np.zeros(int(k.sum()), dtype=np.int32), (CURRENCY,)),
            },
        )

    def _move_closes(self, planned: np.ndarray, created: np.ndarray) -> np.ndarray:
        """Close dates as they really happen: holiday slips, quarter-end pushes, weekdays."""
        rng = self.rng["close"]
        n = planned.shape[0]
        d = planned.copy()
        date = d.astype("datetime64[D]")
        month0 = date.astype("datetime64[M]")
        moy = month0.astype(np.int64) % 12  # 0 = January
        dom = (date - month0.astype("datetime64[D]")).astype(np.int64)  # 0-based day of month
        # quarter-end push: closes early in Apr/Jul/Oct pulled into the last week of the quarter
        pull = np.isin(moy, (3, 6, 9)) & (dom < 21) & (rng.random(n) < 0.5)
        pulled = month0.astype("datetime64[D]").astype(np.int64) - rng.integers(1, 8, n)
        pull &= pulled > created + 2
        d = np.where(pull, pulled, d)
        moy = np.where(pull, (moy - 1) % 12, moy)
        dom = np.where(pull, 27, dom)
        # holidays: July and late-December closes slip into the next month
        slip = ((moy == 6) & (rng.random(n) < 0.45)) | (
            (moy == 11) & (dom >= 10) & (rng.random(n) < 0.7)
        )
        d = np.where(slip, d + rng.integers(21, 35, n), d)
        return _to_workday(d, 0.0, rng, created, d + 2)

    # ------------------------------------------------------------------ activities
    def _make_activities(self) -> None:
        rng = self.rng["activities"]
        length = self.d_end - self.d_created
        rel = np.clip(length / self.t_cycle[self.d_team], 0.3, 1.6)
        counts = 1 + rng.poisson((self.t_apd[self.d_team] - 1) * rel)
        deal, pos = _expand(counts)
        day = self.d_created[deal] + (rng.random(deal.shape[0]) * (length[deal] + 1)).astype(
            np.int64
        )
        day = np.where(pos == 0, self.d_created[deal], day)
        day = _to_workday(day, 0.02, rng, self.d_created[deal], self.d_end[deal])
        kind = _choice_rows(
            rng, DEAL_ACTIVITY_MIX[None, :], np.zeros(deal.shape[0], dtype=np.int64)
        )
        kind = np.where(pos == 0, 2, kind)  # every deal starts with a meeting
        s0 = self.d_seller0[deal]
        seller = np.where(day > self.s_end[s0], self.successor[s0], s0)
        # prospecting: calls and e-mails to companies without a deal
        counts = rng.poisson(
            self.exposure * self.ramp * 5 / 7 * self.t_prospect[self.s_team][:, None]
        )
        pseller, pmonth = np.divmod(
            np.repeat(np.arange(counts.size), counts.ravel()), counts.shape[1]
        )
        pday = self._days_in_cells(rng, pseller, pmonth)
        pday = _to_workday(pday, 0.01, rng, self.lo[pseller, pmonth], self.hi[pseller, pmonth] - 1)
        known = self.n_pre + np.searchsorted(self.newco_lead_day, pday, side="left")
        pcompany = (rng.random(pday.shape[0]) * known).astype(np.int64)
        pkind = _choice_rows(rng, PROSPECTING_MIX[None, :], np.zeros(pday.shape[0], dtype=np.int64))
        all_day = np.concatenate([day, pday])
        all_seller = np.concatenate([seller, pseller])
        all_kind = np.concatenate([kind, pkind])
        all_company = np.concatenate([self.d_company[deal], pcompany])
        all_deal = np.concatenate([self.deal_map[deal], np.full(pday.shape[0], -1)])
        # working hours 08:00-17:00 in 5-minute steps; meetings on the half hour
        n = all_day.shape[0]
        seconds = rng.integers(8 * 12, 17 * 12, n) * 300
        seconds = np.where(all_kind == 2, seconds // 1800 * 1800, seconds)
        sort_key = ((all_day - self.ms[0]) * self.s_team.shape[0] + all_seller) * 86_400 + seconds
        order = np.argsort(sort_key, kind="stable")
        order = order[all_day[order] >= self.d0]
        n = order.shape[0]
        all_day, all_seller, all_kind, all_company, all_deal, seconds = (
            a[order] for a in (all_day, all_seller, all_kind, all_company, all_deal, seconds)
        )
        self.a_day, self.a_seller, self.a_kind, self.a_company = (
            all_day,
            all_seller,
            all_kind,
            all_company,
        )
        self.activities_df = _frame(
            "activities",
            {
                "activity_id": _ids("A", np.arange(n), 8),
                "seller_id": _ids("S", all_seller, self.sw),
                "type": _labels(all_kind, ACTIVITY_TYPES),
                "occurred_at": _dates(all_day, seconds),
                "company_id": _ids("C", all_company, 7),
                "deal_id": _ids("D", all_deal, 7),
            },
        )

    # ------------------------------------------------------------------ revenue
    def _make_revenue(self) -> None:
        rng = self.rng["revenue"]
        won = np.flatnonzero(self.d_status == 1)
        nw = won.shape[0]
        sub = rng.random(nw) < self.t_sub[self.d_team[won]]
        # one-off deals: one invoice (licence or services) within three weeks of closing
        one = won[~sub]
        o_day = self.d_closed[one] + rng.integers(0, 21, one.shape[0])
        o_day = _to_workday(o_day, 0.0, rng, o_day - 2, o_day + 2)
        o_product = np.where(rng.random(one.shape[0]) < 0.7, 0, 1)
        parts = [
            (o_day, self.d_value[one], self.d_seller0[one], self.d_company[one], one, o_product)
        ]
        # subscriptions (value = annual contract value), billed monthly or quarterly until churn
        s = won[sub]
        parts.append(self._subscriptions(rng, self.d_closed[s], self.d_value[s], self.d_seller0[s],
                                         self.d_company[s], s, self.d_team[s]))  # fmt: skip
        # customers from before the data starts (no deal in the CRM export)
        at_start = np.flatnonzero((self.s_from <= self.d0) & (self.s_end >= self.d0))
        n_leg = max(10, round(0.7 * self.n_pre))
        l_seller = at_start[rng.integers(0, at_start.shape[0], n_leg)]
        l_team = self.s_team[l_seller]
        l_acv = np.round(
            np.exp(
                np.log(self.t_median[l_team]) + self.t_sigma[l_team] * rng.standard_normal(n_leg)
            ),
            -1,
        )
        l_first = self.d0 - rng.integers(0, 90, n_leg)
        parts.append(self._subscriptions(rng, l_first, l_acv, l_seller, np.arange(n_leg),
                                         np.full(n_leg, -1), l_team, legacy=True))  # fmt: skip
        day, amount, seller0, company, deal, product = (
            np.concatenate(x) for x in zip(*parts, strict=True)
        )
        keep = (day <= self.d1) & (day >= self.d0)
        day, amount, seller0, company, deal, product = (
            a[keep] for a in (day, amount, seller0, company, deal, product)
        )
        # credit notes: ~3 % of invoices partly or fully credited a few weeks later
        cn = np.flatnonzero(rng.random(day.shape[0]) < 0.03)
        share = np.array([1.0, 0.5, 0.25, 0.1])[rng.integers(0, 4, cn.shape[0])]
        c_day = day[cn] + rng.integers(5, 45, cn.shape[0])
        c_keep = c_day <= self.d1
        cn, share, c_day = cn[c_keep], share[c_keep], c_day[c_keep]
        is_credit = np.concatenate([np.zeros(day.shape[0], bool), np.ones(cn.shape[0], bool)])
        day = np.concatenate([day, c_day])
        amount = np.concatenate([amount, -np.round(amount[cn] * share, 2)])
        seller0, company, deal, product = (
            np.concatenate([a, a[cn]]) for a in (seller0, company, deal, product)
        )
        seller = np.where(day > self.s_end[seller0], self.successor[seller0], seller0)
        deal = np.where(deal >= 0, self.deal_map[np.maximum(deal, 0)], -1)
        order = np.lexsort((company, day))
        day, amount, seller, company, deal, product, is_credit = (
            a[order] for a in (day, amount, seller, company, deal, product, is_credit)
        )
        n = day.shape[0]
        ids = np.where(is_credit, -1, np.cumsum(~is_credit) - 1)
        cids = np.where(is_credit, np.cumsum(is_credit) - 1, -1)
        invoice = _ids("INV", ids, 7).fillna(_ids("CN", cids, 6))
        self.r_day, self.r_amount, self.r_seller, self.r_company = day, amount, seller, company
        self.revenue_df = _frame(
            "revenue",
            {
                "invoice_id": invoice,
                "company_id": _ids("C", company, 7),
                "date": _dates(day),
                "amount": amount,
                "product": _labels(product, ("Licence", "Services", "Subscription")),
                "seller_id": _ids("S", seller, self.sw),
                "deal_id": _ids("D", deal, 7),
                "currency": _labels(np.zeros(n, dtype=np.int32), (CURRENCY,)),
            },
        )

    def _subscriptions(self, rng, start, acv, seller, company, deal, team, legacy: bool = False):
        """Invoice rows of recurring subscriptions from ``start`` until churn or ``as_of``."""
        m = start.shape[0]
        freq = np.where(rng.random(m) < 0.7, 1, 3)
        first = start + (0 if legacy else rng.integers(0, 14, m))
        lifetime = rng.geometric(self.t_churn[team])  # months until the customer stops
        first_month = _month_index(first)
        months_left = _month_index(np.full(m, self.d1)) - first_month
        n_inv = np.minimum(-(-lifetime // freq), months_left // freq + 1)
        n_inv = np.maximum(n_inv, 0)
        idx, pos = _expand(n_inv)
        month = first_month[idx] + pos * freq[idx]
        dom = np.minimum(
            first[idx]
            - first_month[idx].astype("datetime64[M]").astype("datetime64[D]").astype(np.int64),
            27,
        )
        day = month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + dom
        years = pos * freq[idx] // 12
        amount = np.round(acv[idx] / 12 * freq[idx] * 1.03**years, 2)
        return day, amount, seller[idx], company[idx], deal[idx], np.full(idx.shape[0], 2)

    # ------------------------------------------------------------------ costs
    def _make_costs(self) -> None:
        rng = self.rng["costs"]
        nm, nt = self.ms.shape[0], len(TEAMS)
        season = SEASON[self.month_of_year]
        rows: list[tuple[np.ndarray, ...]] = []
        mkt = np.array([x.marketing for x in TEAMS])
        month = np.repeat(np.arange(nm), nt)
        team = np.tile(np.arange(nt), nm)
        # team marketing (campaigns follow the season), sales tools per active seller, events
        amount = (
            mkt[team]
            * self.scale
            * self.growth[month]
            * season[month]
            * rng.uniform(0.8, 1.2, nm * nt)
        )
        rows.append((self.ms[month], amount, np.zeros(nm * nt, int), team))
        seats = np.zeros((nt, nm))
        for ti in range(nt):
            seats[ti] = (self.exposure[self.s_team == ti] > 0).sum(axis=0)
        rows.append((self.ms[month], 145.0 * seats[team, month], np.ones(nm * nt, int), team))
        moy = self.month_of_year[month]
        ev = np.isin(moy, (2, 3, 4, 8, 9, 10)) & (rng.random(nm * nt) < 0.6)
        ev_day = self.ms[month] + rng.integers(0, 28, nm * nt)
        ev_amount = rng.uniform(6_000, 30_000, nm * nt) * self.scale
        rows.append((ev_day[ev], ev_amount[ev], np.full(ev.sum(), 2), team[ev]))
        # organisation-wide: brand marketing, CRM and data subscriptions, the October conference
        m = np.arange(nm)
        rows.append(
            (
                self.ms,
                22_000 * self.scale * self.growth * rng.uniform(0.85, 1.15, nm),
                np.zeros(nm, int),
                np.full(nm, -1),
            )
        )
        rows.append((self.ms, 6_500 * self.scale * np.ones(nm), np.full(nm, 3), np.full(nm, -1)))
        octo = m[self.month_of_year == 9]
        rows.append(
            (
                self.ms[octo] + 14,
                65_000 * self.scale * self.growth[octo],
                np.full(octo.shape[0], 2),
                np.full(octo.shape[0], -1),
            )
        )
        day, amount, cat, team = (np.concatenate(x) for x in zip(*rows, strict=True))
        keep = (day <= self.d1) & (day >= self.d0)
        day, amount, cat, team = day[keep], np.round(amount[keep], 2), cat[keep], team[keep]
        order = np.lexsort((cat, team, day))
        day, amount, cat, team = day[order], amount[order], cat[order], team[order]
        self.c_day, self.c_amount = day, amount
        self.costs_df = _frame(
            "costs",
            {
                "date": _dates(day),
                "category": _labels(cat, ("marketing", "sales", "events", "other")),
                "amount": amount,
                "team": _labels(team, [x.name for x in TEAMS]),
                "currency": _labels(np.zeros(day.shape[0], dtype=np.int32), (CURRENCY,)),
            },
        )

    # ------------------------------------------------------------------ goals
    def _make_goals(self) -> pd.DataFrame:
        return _GoalSetter(self).run()


class _GoalSetter:
    """Goals set from last year's actuals of the same period and scope (see module doc)."""

    def __init__(self, g: _Generator) -> None:
        self.g = g
        self.rng = g.rng["goals"]
        won = g.d_status == 1
        closed = g.d_status > 0
        self.events = {
            # kpi: (days, seller, company, value)
            "revenue": (g.r_day, g.r_seller, g.r_company, g.r_amount),
            "won_value": (g.d_closed[won], g.d_seller[won], g.d_company[won], g.d_value[won]),
            "deals_won": (g.d_closed[won], g.d_seller[won], g.d_company[won], np.ones(won.sum())),
            "new_leads": (g.l_day, g.l_seller, g.l_company, np.ones(g.l_day.shape[0])),
            "meetings_booked": self._acts(2),
            "quotes_sent": self._acts(3),
            "closed": (
                g.d_closed[closed],
                g.d_seller[closed],
                g.d_company[closed],
                np.ones(closed.sum()),
            ),
            "cycle": (
                g.d_closed[won],
                g.d_seller[won],
                g.d_company[won],
                (g.d_closed - g.d_created)[won].astype(float),
            ),
        }
        rev = pd.Series(g.r_amount).groupby(g.r_company).sum()
        prev_year = (g.r_day >= g.d1 - 730) & (g.r_day < g.d1 - 365)
        top = (
            pd.Series(g.r_amount[prev_year])
            .groupby(g.r_company[prev_year])
            .sum()
            .nlargest(N_KEY_CUSTOMERS)
        )
        self.key_customers = (
            top.index.to_numpy() if len(top) else rev.nlargest(N_KEY_CUSTOMERS).index.to_numpy()
        )
        # account owner of a key customer: the seller with most revenue there
        owners = {}
        for c in self.key_customers:
            m = g.r_company == c
            owners[c] = int(pd.Series(g.r_amount[m]).groupby(g.r_seller[m]).sum().idxmax())
        self.account_owner = owners
        self.cust_pos = np.full(g.n_companies, -1)
        self.cust_pos[self.key_customers] = np.arange(len(self.key_customers))

    def _acts(self, kind: int):
        g = self.g
        m = g.a_kind == kind
        return g.a_day[m], g.a_seller[m], g.a_company[m], np.ones(m.sum())

    # -- period keys: months since 1970-01, quarters since 1970-Q1, weeks by their Monday
    @staticmethod
    def _key(days: np.ndarray, grain: str) -> np.ndarray:
        if grain == "week":
            return days - _weekday(days)
        m = _month_index(days)
        return m if grain == "month" else m // 3

    @staticmethod
    def _bounds(key: int, grain: str) -> tuple[int, int, str]:
        if grain == "week":
            d = np.datetime64(int(key), "D").astype(dt.date)
            y, w, _ = d.isocalendar()
            return int(key), int(key) + 7, f"{y}-W{w:02d}"
        months = 1 if grain == "month" else 3
        m0 = int(key) * months
        start = int(np.datetime64(m0, "M").astype("datetime64[D]").astype(np.int64))
        end = int(np.datetime64(m0 + months, "M").astype("datetime64[D]").astype(np.int64))
        year = 1970 + m0 // 12
        label = f"{year}-{m0 % 12 + 1:02d}" if grain == "month" else f"{year}-Q{m0 % 12 // 3 + 1}"
        return start, end, label

    def _grid(self, grain: str) -> tuple[int, int, int]:
        """First period key, key step and number of periods from d0 to next month."""
        g = self.g
        k0 = int(self._key(np.array([g.d0]), grain)[0])
        k1 = int(self._key(np.array([g.d1]), grain)[0])
        step = 7 if grain == "week" else 1
        return k0, step, (k1 - k0) // step + 2

    def _scope_pos(
        self, scope: str, seller: np.ndarray, company: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """Row of each record in the scope matrix (-1: not in any scope) and the row count."""
        g = self.g
        if scope == "organisation":
            return np.zeros(seller.shape[0], dtype=np.int64), 1
        if scope == "team":
            return g.s_team[seller], len(TEAMS)
        if scope == "seller":
            return seller, g.s_team.shape[0]
        return self.cust_pos[company], len(self.key_customers)

    def _sum(self, name: str, scope: str, grain: str) -> np.ndarray:
        """Sum of an event value as a dense (scope row x period) matrix."""
        days, seller, company, value = self.events[name]
        k0, step, n_p = self._grid(grain)
        sp, n_s = self._scope_pos(scope, seller, company)
        pp = (self._key(days, grain) - k0) // step
        ok = (sp >= 0) & (pp >= 0) & (pp < n_p)
        code = sp[ok] * n_p + pp[ok]
        return np.bincount(code, weights=value[ok], minlength=n_s * n_p).reshape(n_s, n_p)

    def _actual(self, kpi: str, scope: str, grain: str) -> np.ndarray:
        """Actual KPI per (scope row, period); NaN where undefined or (additive) zero."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if kpi == "hit_rate":
                closed = self._sum("closed", scope, grain)
                return np.where(closed > 0, self._sum("deals_won", scope, grain) / closed, np.nan)
            if kpi == "sales_cycle_days":
                n = self._sum("deals_won", scope, grain)
                return np.where(n > 0, self._sum("cycle", scope, grain) / n, np.nan)
            if kpi == "cac":
                return self._cac(grain)
            total = self._sum(kpi, scope, grain)
            return np.where(total > 0, total, np.nan)

    def _cac(self, grain: str) -> np.ndarray:
        g = self.g
        k0, step, n_p = self._grid(grain)
        won = g.d_status == 1
        first_won = pd.Series(g.d_closed[won]).groupby(g.d_company[won]).min().to_numpy()

        def by_period(days: np.ndarray, values: np.ndarray) -> np.ndarray:
            pp = (self._key(days, grain) - k0) // step
            ok = (pp >= 0) & (pp < n_p)
            return np.bincount(pp[ok], weights=values[ok], minlength=n_p)

        days_in_month = np.diff(np.append(g.ms, g.ms[-1] + 31))
        salary = (g.exposure / days_in_month[None, :] * g.s_cost[:, None]).sum(axis=0)
        spend = by_period(g.c_day, g.c_amount) + by_period(g.ms, salary)
        new = by_period(first_won, np.ones(first_won.shape[0]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(new > 0, spend / new, np.nan)[None, :]

    def _periods(self, grain: str) -> list[tuple[int, int, int, str]]:
        """Goal periods: from the second year of data to the current (and next) month."""
        g = self.g
        k0, step, _ = self._grid(grain)
        first = int(self._key(np.array([g.d0 + 365]), grain)[0])
        if grain == "week":
            first = g.d0 + 365 + (7 - int(_weekday(np.array([g.d0 + 365]))[0])) % 7
        last = int(self._key(np.array([g.d1]), grain)[0])
        keys = list(range(first, last + 1, step))
        if grain == "month":
            keys.append(last + 1)  # next month's goals are already agreed
        return [((k - k0) // step, *self._bounds(k, grain)) for k in keys]

    def run(self) -> pd.DataFrame:
        g = self.g
        frames = []
        for scope, grain, kpi in GOAL_PLAN:
            frames.append(self._goals_for(scope, grain, kpi))
        goals = pd.concat(frames, ignore_index=True)
        n = len(goals)
        # owners and who agreed: seller goals are agreed with the team manager, etc.
        managers = np.array([x.manager for x in TEAMS] + [SALES_DIRECTOR], dtype=object)
        scope = goals["scope"].to_numpy()
        key = goals["key"].to_numpy()
        owner = np.empty(n, dtype=object)
        agreed = np.empty(n, dtype=object)
        is_org, is_team = scope == "organisation", scope == "team"
        is_seller, is_cust = scope == "seller", scope == "customer"
        owner[is_org], agreed[is_org] = SALES_DIRECTOR, CEO
        owner[is_team] = managers[key[is_team]]
        agreed[is_team] = SALES_DIRECTOR
        owner[is_seller] = g.s_name[key[is_seller]]
        agreed[is_seller] = managers[g.s_team[key[is_seller]]]
        cust_owner = np.array(
            [self.account_owner.get(int(k), 0) for k in key[is_cust]], dtype=np.int64
        )
        owner[is_cust] = g.s_name[cust_owner]
        agreed[is_cust] = managers[g.s_team[cust_owner]]
        not_agreed = self.rng.random(n) < 0.03
        newest = int(np.argmax(np.where(g.s_to == _NAT, g.s_from, _NAT)))
        current = goals["start"].to_numpy() <= g.d1
        current &= goals["end"].to_numpy() > g.d1
        not_agreed |= is_seller & (key == newest) & current
        agreed[not_agreed] = None
        sid_seller = np.where(is_seller, key, -1)
        sid_cust = np.where(is_cust, key, -1)
        scope_id = _ids("S", sid_seller, g.sw).fillna(_ids("C", sid_cust, 7))
        team_names = np.array([x.name for x in TEAMS], dtype=object)
        scope_id = scope_id.where(
            ~is_team, pd.Series(team_names[np.where(is_team, key, 0)], dtype="str")
        )
        return _frame(
            "goals",
            {
                "kpi": pd.Series(goals["kpi"].to_numpy(), dtype="str"),
                "scope": pd.Series(scope, dtype="str"),
                "scope_id": scope_id,
                "period": pd.Series(goals["period"].to_numpy(), dtype="str"),
                "target": goals["target"].to_numpy(),
                "direction": pd.Series(
                    np.where(goals["kpi"].isin(AT_MOST_KPIS), "at_most", "at_least"), dtype="str"
                ),
                "owner": pd.Series(owner, dtype="str"),
                "agreed_by": pd.Series(agreed, dtype="str"),
                "goal_id": _ids("G", np.arange(n), 6),
            },
        )

    # -- targets: a monthly plan per scope, from which quarters and weeks are derived
    def _month_grid(self) -> tuple[int, int, int]:
        """First month key (d0), number of grid months (to next month) and the current month."""
        k0 = int(self._key(np.array([self.g.d0]), "month")[0])
        cur = int(self._key(np.array([self.g.d1]), "month")[0]) - k0
        return k0, cur + 2, cur

    def _monthly_plan(self, scope: str, kpi: str) -> np.ndarray:
        """Unrounded monthly targets ``(scope rows, grid months)`` (NaN: no plan).

        Set the way a planner does before the month starts, from complete
        months only: additive KPIs = the scope's deseasonalised mean month
        over the last :data:`LEVEL_MONTHS` complete months (smoother than one
        month last year, which matters for lumpy Enterprise deals) x the
        organisation's seasonal index of the month (:meth:`_season`) x the
        organisation's growth from the middle of that window to the month x
        a stretch in :data:`STRETCH`. Sellers use their own fully ramped
        months (their team's median without three of them); key customers'
        subscription revenue is planned flat (no season, no trend, ±4 %). Ratios = the pooled value
        of the same months x a small improvement (hit rate up 0–6 %, cycle
        and CAC from 6 % down to 2 % up).
        """
        g = self.g
        _, n_m, cur = self._month_grid()
        rng = self.rng
        rows = self._scope_pos(scope, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))[1]
        plan = np.full((rows, n_m), np.nan)
        u = rng.random((rows, n_m))
        ratio = kpi in ("hit_rate", "sales_cycle_days", "cac")
        if ratio:
            if kpi == "hit_rate":
                num, den = (
                    self._sum("deals_won", scope, "month"),
                    self._sum("closed", scope, "month"),
                )
            elif kpi == "sales_cycle_days":
                num, den = (
                    self._sum("cycle", scope, "month"),
                    self._sum("deals_won", scope, "month"),
                )
            else:
                num, den = self._cac_parts()
        else:
            x = self._sum(kpi, scope, "month")
            org = self._sum(kpi, "organisation", "month")[0]
        active = None
        if scope == "seller":
            k0 = self._month_grid()[0]
            pos = np.searchsorted(g.month_keys, k0 + np.arange(n_m))
            pos = np.clip(pos, 0, g.month_keys.shape[0] - 1)
            full = g.exposure[:, pos] >= 0.9 * (g.me - g.ms)[pos][None, :]
            full &= (k0 + np.arange(n_m))[None, :] <= g.month_keys[pos][None, :]
            active = full & (g.ramp[:, pos] >= 1.0)
        for j in range(12, n_m):
            e = min(j, cur)  # months before e are complete when the plan is made
            if ratio:
                w = slice(e - LEVEL_MONTHS, e)
                with np.errstate(divide="ignore", invalid="ignore"):
                    base = num[:, w].sum(axis=1) / den[:, w].sum(axis=1)
                if kpi == "hit_rate":
                    plan[:, j] = np.minimum(base * (1.0 + 0.06 * u[:, j]), 0.95)
                else:
                    plan[:, j] = base * (0.94 + 0.08 * u[:, j])
                continue
            season = self._season(org, e) if scope != "customer" else np.ones(12)
            months = np.arange(e - LEVEL_MONTHS, e)
            deseason = x[:, months] / season[months % 12][None, :]
            if active is not None:  # sellers: their own ramped months, else the team median
                act = active[:, months]
                n_act = act.sum(axis=1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    level = np.where(act, deseason, 0.0).sum(axis=1) / n_act
                level = np.where(n_act >= 3, level, np.nan)
                med = pd.Series(level).groupby(g.s_team).median()
                level = np.where(np.isnan(level), med.reindex(g.s_team).to_numpy(), level)
            else:
                level = deseason.mean(axis=1)
            stretch = STRETCH[0] + (STRETCH[1] - STRETCH[0]) * u[:, j]
            if scope == "customer":  # an account's subscriptions: flat, plus or minus a little
                plan[:, j] = level * (0.96 + 0.08 * u[:, j])
                continue
            plan[:, j] = level * season[j % 12] * self._trend(org, j, e) * stretch
        return plan

    @staticmethod
    def _season(org: np.ndarray, e: int) -> np.ndarray:
        """Seasonal index per calendar month from the organisation's months before ``e``.

        Each month over the mean of a 12-month window around it, averaged per
        calendar month, shrunk half-way to 1 (a planner does not trust one
        year's bump) and normalised to mean 1.
        """
        ratios: list[list[float]] = [[] for _ in range(12)]
        for i in range(e):
            lo = max(0, min(i - 6, e - 12))
            mean = org[lo : lo + 12].mean()
            if mean > 0:
                ratios[i % 12].append(org[i] / mean)
        raw = np.array([np.mean(r) if r else 1.0 for r in ratios])
        si = 1.0 + SEASON_SHRINK * (raw - 1.0)
        return si / si.mean()

    @staticmethod
    def _trend(org: np.ndarray, j: int, e: int) -> float:
        """Growth from the middle of the level window (before ``e``) to month ``j``."""
        if e >= 24 and org[e - 24 : e - 12].sum() > 0:
            yearly = org[e - 12 : e].sum() / org[e - 24 : e - 12].sum()
        else:
            yearly = 1.10
        yearly = float(np.clip(yearly, 0.95, 1.25))
        return yearly ** ((j - (e - (LEVEL_MONTHS + 1) / 2)) / 12)

    def _cac_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Monthly spend and new customers of the organisation (1 x grid months)."""
        g = self.g
        k0, n_m, _ = self._month_grid()
        won = g.d_status == 1
        first_won = pd.Series(g.d_closed[won]).groupby(g.d_company[won]).min().to_numpy()

        def by_month(days: np.ndarray, values: np.ndarray) -> np.ndarray:
            pp = self._key(days, "month") - k0
            ok = (pp >= 0) & (pp < n_m)
            return np.bincount(pp[ok], weights=values[ok], minlength=n_m)

        days_in_month = np.diff(np.append(g.ms, g.ms[-1] + 31))
        salary = (g.exposure / days_in_month[None, :] * g.s_cost[:, None]).sum(axis=0)
        spend = by_month(g.c_day, g.c_amount) + by_month(g.ms, salary)
        new = by_month(first_won, np.ones(first_won.shape[0]))
        return spend[None, :], new[None, :]

    def _goals_for(self, scope: str, grain: str, kpi: str) -> pd.DataFrame:
        """Goals of one (scope, grain, KPI): months from the plan, quarters = the sum of
        their months (ratios: the plan of the first month), weeks = the plan per
        working day of each day's month, summed over the week's working days."""
        g = self.g
        plan = self._monthly_plan(scope, kpi)
        k0m, n_m, _ = self._month_grid()
        periods = self._periods(grain)
        start = np.array([p[1] for p in periods])
        end = np.array([p[2] for p in periods])
        label = np.array([p[3] for p in periods], dtype=object)
        m_start = self._key(start, "month") - k0m
        ratio = kpi in ("hit_rate", "sales_cycle_days", "cac")
        if grain == "month" or ratio:
            per = plan[:, np.clip(m_start, 0, n_m - 1)]
        elif grain == "quarter":
            idx = np.clip(m_start[:, None] + np.arange(3)[None, :], 0, n_m - 1)
            per = plan[:, idx].sum(axis=2)
        else:
            k0d = self._month_grid()[0]
            m_bounds = np.arange(k0d, k0d + n_m + 1).astype("datetime64[M]").astype("datetime64[D]")
            workdays = np.busday_count(m_bounds[:-1], m_bounds[1:]).astype(float)
            days = start[:, None] + np.arange(5)[None, :]  # Mon..Fri of each week
            mi = np.clip(self._key(days.ravel(), "month") - k0m, 0, n_m - 1).reshape(days.shape)
            per = (plan[:, mi] / workdays[mi][None, :, :]).sum(axis=2)
        n_s = per.shape[0]
        sk = np.repeat(np.arange(n_s), len(periods))
        pi = np.tile(np.arange(len(periods)), n_s)
        if scope == "seller":  # goals only for sellers in place (and ramped) at the period start
            ok = (g.s_from[sk] + 28 <= start[pi]) & (g.s_end[sk] >= start[pi]) & (start[pi] <= g.d1)
            sk, pi = sk[ok], pi[ok]
        target = per[sk, pi]
        if kpi == "hit_rate":
            target = np.round(target, 2)
        elif kpi == "cac":
            target = np.round(target, -1)
        elif kpi == "sales_cycle_days":
            target = np.round(target)
        elif kpi in ("revenue", "won_value"):
            step = np.where(target >= 50_000, 1000.0, 100.0)
            target = np.round(target / step) * step
        else:
            target = np.where(np.isfinite(target), np.maximum(np.ceil(target - 0.25), 1.0), target)
        keep = np.isfinite(target) & (target > 0)
        return pd.DataFrame(
            {
                "kpi": kpi,
                "scope": scope,
                "key": (self.key_customers[sk] if scope == "customer" else sk)[keep],
                "period": label[pi[keep]],
                "start": start[pi[keep]],
                "end": end[pi[keep]],
                "target": target[keep],
            }
        )
