"""Calendar periods (docs/PERIODS.md).

A :class:`Period` is a half-open interval ``[start, end)`` of naive local
timestamps with a grain and a canonical label:

========== ==================
label      grain
========== ==================
``2026``       year
``2026-Q4``    quarter
``2026-10``    month
``2026-W43``   ISO week (Monday start)
``2026-10-15`` day
``2026-12-01..2027-02-28`` a date span (both days included; see docs/GOALS.md)
========== ==================

A date span has grain ``day`` and ``is_span=True``; it shifts by its own
length (:meth:`Period.shift`, so its *previous period* is the equally long
span just before it) and maps to the same days one year earlier
(:meth:`Period.last_year`). A span that ends before it starts is an error.

Relative names (``current-month``, ``previous-month``, ``current-quarter``,
``previous-quarter``, ``current-year``, ``previous-year``, ``current-week``,
``previous-week``, ``today``, ``yesterday``, ``ytd``) resolve against an
explicit ``as_of`` date; nothing here reads the clock.

What is accepted as a period (:func:`parse_period`, and so everywhere a
period is taken: ``compute_kpis``, ``kpi_series(start=, end=)``,
``growth_table``): a label or relative name above, a :class:`Period`, a
``pandas.Period`` (its start and frequency: ``Y``/``A`` year, ``Q`` quarter,
``M`` month, ``W`` week, ``D`` day — a week must start on a Monday), a
``datetime.date``/``datetime.datetime``/``pandas.Timestamp`` (that day) or an
``int`` year (``2026``).

Weeks inside a longer period (:meth:`Period.subperiods`) follow the ISO rule:
a week belongs to the period that contains its Thursday. So the weeks of 2026
are 2026-W01 (29 December 2025 – 4 January 2026) to 2026-W53 and cover
1–4 January; 1–3 January 2027 are in 2026-W53, the last week of 2026, not a
week of 2027. Every week belongs to exactly one year, quarter or month. A
period shorter than a week whose days hold no Thursday gets the week that
contains its first day.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpireport.constants import Grain
from kpireport.errors import PeriodError, parse_choice

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_YTD = re.compile(r"^(\d{4})-YTD-(\d{2})-(\d{2})$", re.IGNORECASE)
_SPAN = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\s*\.\.\s*(\d{4})-(\d{2})-(\d{2})$")

RELATIVE_NAMES = (
    "today",
    "yesterday",
    "current-week",
    "previous-week",
    "current-month",
    "previous-month",
    "current-quarter",
    "previous-quarter",
    "current-year",
    "previous-year",
    "ytd",
)


@dataclass(frozen=True, order=True)
class Period:
    """A half-open calendar interval ``[start, end)``.

    ``grain`` is the calendar unit; ``ytd`` periods (1 January to a day) have
    grain ``None``-like ``"span"`` semantics and carry ``grain=Grain.DAY``
    resolution with ``is_span=True``.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    grain: Grain
    label: str
    is_span: bool = False

    # ------------------------------------------------------------------ basics
    def __str__(self) -> str:
        return self.label

    def __contains__(self, ts: object) -> bool:
        t = pd.Timestamp(ts)  # type: ignore[arg-type]
        return bool(self.start <= t < self.end)

    @property
    def days(self) -> int:
        """Number of calendar days in the period."""
        return int((self.end - self.start) / pd.Timedelta(days=1))

    @property
    def is_date_span(self) -> bool:
        """True for a ``YYYY-MM-DD..YYYY-MM-DD`` span (not a year-to-date or to-date cut)."""
        return self.is_span and ".." in self.label

    @property
    def last_day(self) -> pd.Timestamp:
        return self.end - pd.Timedelta(days=1)

    def elapsed_share(self, as_of: dt.date | pd.Timestamp | str) -> float:
        """Share of the period elapsed at the *end* of day ``as_of`` (0..1)."""
        t = _day(as_of) + pd.Timedelta(days=1)
        total = (self.end - self.start).total_seconds()
        done = (min(max(t, self.start), self.end) - self.start).total_seconds()
        return done / total

    def to_date(self, as_of: dt.date | pd.Timestamp | str) -> Period:
        """The part of this period up to and including day ``as_of``."""
        t = min(max(_day(as_of) + pd.Timedelta(days=1), self.start), self.end)
        return Period(
            self.start, t, self.grain, f"{self.label} to {(t - pd.Timedelta(days=1)).date()}", True
        )

    # ------------------------------------------------------------ navigation
    def shift(self, n: int) -> Period:
        """The period ``n`` grains later (negative: earlier)."""
        if self.is_date_span:
            return span(
                self.start + n * (self.end - self.start), self.end + n * (self.end - self.start)
            )
        if self.is_span:
            raise PeriodError(f"Cannot shift the span '{self.label}' by grains.")
        if self.grain == Grain.DAY:
            return from_start(self.start + pd.Timedelta(days=n), Grain.DAY)
        if self.grain == Grain.WEEK:
            return from_start(self.start + pd.Timedelta(weeks=n), Grain.WEEK)
        months = {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[self.grain]
        return from_start(self.start + pd.DateOffset(months=months * n), self.grain)

    def previous(self) -> Period:
        """The immediately preceding period of the same grain (MoM comparisons)."""
        return self.shift(-1)

    def next(self) -> Period:
        return self.shift(1)

    def last_year(self) -> Period:
        """The same period one year earlier (YoY comparisons).

        ISO weeks map to the same week number of the previous ISO year (week
        53 maps to week 52 when the previous year has none); days map to the
        same calendar date (29 February maps to 28 February); spans map to the
        same span shifted by one calendar year.
        """
        if self.is_span:
            start = self.start - pd.DateOffset(years=1)
            end = self.end - pd.DateOffset(years=1)
            if self.is_date_span:
                return span(start, end)
            return Period(start, end, self.grain, f"{self.label} (previous year)", True)
        if self.grain == Grain.WEEK:
            y, w, _ = self.start.isocalendar()
            w = min(w, _iso_weeks_in_year(y - 1))
            return parse_period(f"{y - 1}-W{w:02d}")
        if self.grain == Grain.DAY:
            return from_start(self.start - pd.DateOffset(years=1), Grain.DAY)
        return self.shift({Grain.MONTH: -12, Grain.QUARTER: -4, Grain.YEAR: -1}[self.grain])

    def ytd(self) -> Period:
        """1 January of this period's year to the end of this period (YTD)."""
        start = pd.Timestamp(year=self.start.year, month=1, day=1)
        last = self.end - pd.Timedelta(days=1)
        return Period(start, self.end, Grain.DAY, f"{self.start.year}-YTD-{last:%m-%d}", True)

    def subperiods(self, grain: Grain | str) -> list[Period]:
        """The periods of ``grain`` whose start lies in this period.

        Weeks: the ISO weeks whose Thursday lies in this period (module
        docstring), so a year's weeks start with its W01 even when W01 starts
        in December; a period without a Thursday gets the week of its first day.
        """
        grain = parse_grain(grain)
        out = []
        if grain == Grain.WEEK:
            p = containing(self.start, grain)
            if p.start + pd.Timedelta(days=3) < self.start:
                p = p.next()
            while p.start + pd.Timedelta(days=3) < self.end:
                out.append(p)
                p = p.next()
            return out or [containing(self.start, grain)]
        p = from_start(self.start, grain)
        if p.start < self.start:
            p = p.next()
        while p.start < self.end:
            out.append(p)
            p = p.next()
        return out

    def days_index(self) -> pd.DatetimeIndex:
        """Every calendar day of the period."""
        return pd.date_range(self.start, self.end - pd.Timedelta(days=1), freq="D")


# ---------------------------------------------------------------- helpers
def parse_grain(grain: Grain | str) -> Grain:
    """``grain`` as a :class:`Grain`; an invalid one raises naming the valid grains."""
    return parse_choice(Grain, grain, "grain", PeriodError)


def _day(value: dt.date | pd.Timestamp | str) -> pd.Timestamp:
    try:
        return pd.Timestamp(value).normalize().tz_localize(None)
    except (ValueError, TypeError) as exc:
        raise PeriodError(f"'{value}' is not a date (expected YYYY-MM-DD).") from exc


def _iso_weeks_in_year(year: int) -> int:
    return dt.date(year, 12, 28).isocalendar()[1]


def label_for(start: pd.Timestamp, grain: Grain | str) -> str:
    """Canonical label of the ``grain`` period starting at ``start``."""
    grain = parse_grain(grain)
    if grain == Grain.YEAR:
        return f"{start.year}"
    if grain == Grain.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if grain == Grain.MONTH:
        return f"{start.year}-{start.month:02d}"
    if grain == Grain.WEEK:
        y, w, _ = start.isocalendar()
        return f"{y}-W{w:02d}"
    return f"{start:%Y-%m-%d}"


def containing(ts: dt.date | pd.Timestamp | str, grain: Grain | str) -> Period:
    """The ``grain`` period that contains the day ``ts``."""
    t = _day(ts)
    grain = parse_grain(grain)
    if grain == Grain.YEAR:
        start = pd.Timestamp(year=t.year, month=1, day=1)
    elif grain == Grain.QUARTER:
        start = pd.Timestamp(year=t.year, month=3 * ((t.month - 1) // 3) + 1, day=1)
    elif grain == Grain.MONTH:
        start = pd.Timestamp(year=t.year, month=t.month, day=1)
    elif grain == Grain.WEEK:
        start = t - pd.Timedelta(days=t.weekday())
    else:
        start = t
    return from_start(start, grain)


def from_start(start: pd.Timestamp, grain: Grain | str) -> Period:
    """The ``grain`` period beginning at ``start`` (which must be a boundary)."""
    grain = parse_grain(grain)
    start = pd.Timestamp(start).normalize()
    if grain == Grain.YEAR:
        end = start + pd.DateOffset(years=1)
    elif grain == Grain.QUARTER:
        end = start + pd.DateOffset(months=3)
    elif grain == Grain.MONTH:
        end = start + pd.DateOffset(months=1)
    elif grain == Grain.WEEK:
        end = start + pd.Timedelta(weeks=1)
    else:
        end = start + pd.Timedelta(days=1)
    return Period(start, pd.Timestamp(end), grain, label_for(start, grain))


def span(start: pd.Timestamp, end: pd.Timestamp) -> Period:
    """The date span ``[start, end)`` labelled ``first..last`` (both days included)."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    last = end - pd.Timedelta(days=1)
    return Period(start, end, Grain.DAY, f"{start:%Y-%m-%d}..{last:%Y-%m-%d}", True)


def parse_period(label: object, as_of: dt.date | pd.Timestamp | str | None = None) -> Period:
    """Parse a period label or resolve a relative name against ``as_of``.

    Parameters
    ----------
    label
        ``2026``, ``2026-Q4``, ``2026-10``, ``2026-W43``, ``2026-10-15``,
        ``2026-YTD-10-15``, a date span ``2026-12-01..2027-02-28`` or one of :data:`RELATIVE_NAMES`.
    as_of
        The reference day for relative names (required for them).

    Raises
    ------
    PeriodError
        When the label is malformed (``2024-13``, ``2026-W54``) or a relative
        name is given without ``as_of``.
    """
    if isinstance(label, Period):
        return label
    if isinstance(label, pd.Period):
        return _from_pandas_period(label)
    if isinstance(label, (dt.date, pd.Timestamp)):  # datetime and Timestamp are dates
        return from_start(_day(label), Grain.DAY)
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if not 1 <= int(label) <= 9999:
            raise PeriodError(f"'{label}' is not a year (expected e.g. 2026).")
        return from_start(pd.Timestamp(year=int(label), month=1, day=1), Grain.YEAR)
    if not isinstance(label, str):
        raise PeriodError(
            f"{label!r} is not a period.",
            hint="Pass a label (2026-10, 2026-Q4, 2026-W43, 2026, previous-month …), "
            "a pandas Period, a date or an int year.",
        )
    text = str(label).strip()
    low = text.lower()
    if low in RELATIVE_NAMES:
        if as_of is None:
            raise PeriodError(
                f"The relative period '{text}' needs an as-of date.",
                hint="Pass as_of (CLI: --as-of YYYY-MM-DD).",
            )
        return _relative(low, _day(as_of))
    try:
        if m := _YEAR.match(text):
            return from_start(pd.Timestamp(year=int(m[1]), month=1, day=1), Grain.YEAR)
        if m := _QUARTER.match(text):
            q = int(m[2])
            return from_start(pd.Timestamp(year=int(m[1]), month=3 * q - 2, day=1), Grain.QUARTER)
        if m := _MONTH.match(text):
            year, month = int(m[1]), int(m[2])
            if not 1 <= month <= 12:
                raise ValueError
            return from_start(pd.Timestamp(year=year, month=month, day=1), Grain.MONTH)
        if m := _WEEK.match(text):
            year, week = int(m[1]), int(m[2])
            if not 1 <= week <= _iso_weeks_in_year(year):
                raise ValueError
            return from_start(pd.Timestamp(dt.date.fromisocalendar(year, week, 1)), Grain.WEEK)
        if m := _DAY.match(text):
            return from_start(pd.Timestamp(dt.date(int(m[1]), int(m[2]), int(m[3]))), Grain.DAY)
        if m := _SPAN.match(text):
            first = pd.Timestamp(dt.date(int(m[1]), int(m[2]), int(m[3])))
            last = pd.Timestamp(dt.date(int(m[4]), int(m[5]), int(m[6])))
            if last < first:
                raise PeriodError(
                    f"The span '{text}' ends before it starts.",
                    hint="Write the first day, two dots, then the last day: 2026-12-01..2027-02-28.",
                )
            return span(first, last + pd.Timedelta(days=1))
        if m := _YTD.match(text):
            end_day = pd.Timestamp(dt.date(int(m[1]), int(m[2]), int(m[3])))
            return containing(end_day, Grain.DAY).ytd()
    except ValueError:
        pass
    raise PeriodError(
        f"'{text}' is not a valid period.",
        hint=(
            "Use 2026, 2026-Q4, 2026-10, 2026-W43, 2026-10-15, 2026-12-01..2027-02-28 or one of: "
            + ", ".join(RELATIVE_NAMES)
            + "."
        ),
    )


_PANDAS_GRAINS = {"Y": Grain.YEAR, "A": Grain.YEAR, "Q": Grain.QUARTER, "M": Grain.MONTH,
                  "W": Grain.WEEK, "D": Grain.DAY}  # fmt: skip


def _from_pandas_period(p: pd.Period) -> Period:
    code = p.freqstr.split("-")[0].upper().rstrip("S").replace("E", "")
    grain = _PANDAS_GRAINS.get(code)
    start = pd.Timestamp(p.start_time).normalize()
    if grain is None:
        raise PeriodError(f"The pandas Period {p} has frequency {p.freqstr}: use Y, Q, M, W or D.")
    if grain == Grain.QUARTER and start.month % 3 != 1:
        raise PeriodError(f"The pandas Period {p} is a fiscal quarter: use calendar quarters (Q).")
    if grain == Grain.YEAR and start.month != 1:
        raise PeriodError(f"The pandas Period {p} is a fiscal year: use calendar years (Y).")
    if grain == Grain.WEEK and start.weekday() != 0:
        raise PeriodError(f"The pandas Period {p} is a week not starting on Monday: use W (W-SUN).")
    return from_start(start, grain)


def _relative(name: str, as_of: pd.Timestamp) -> Period:
    if name == "today":
        return containing(as_of, Grain.DAY)
    if name == "yesterday":
        return containing(as_of, Grain.DAY).previous()
    if name == "ytd":
        return containing(as_of, Grain.DAY).ytd()
    which, grain = name.split("-")
    p = containing(as_of, Grain(grain))
    return p.previous() if which == "previous" else p


def period_range(start: Period | str, end: Period | str, as_of=None) -> list[Period]:
    """Consecutive periods from ``start`` to ``end`` inclusive (same grain)."""
    a, b = parse_period(start, as_of), parse_period(end, as_of)
    if a.grain != b.grain:
        raise PeriodError(f"'{a}' and '{b}' have different grains.")
    out = []
    p = a
    while p.start <= b.start:
        out.append(p)
        p = p.next()
    return out


def is_relative(label: str) -> bool:
    return str(label).strip().lower() in RELATIVE_NAMES
