"""Parse raw source columns into the canonical types of :mod:`kpireport.data.schema`.

Every parser returns the converted column *and* a mask of the cells it could
not convert, so that :func:`canonicalise` reports every unreadable cell of a
source at once (lazy validation) instead of failing on the first.

Design decisions
----------------
* **Ids are text.** Strings are only stripped; integers (Excel, SQL, Parquet)
  are printed exactly (``int`` -> ``str``, no ``.0``, no float round trip);
  integral floats print as integers. ``007`` and 19-digit ids survive.
* **Dates.** ISO 8601 (``2026-10-15``, ``2026-10-15 13:45``,
  ``2026-10-15T13:45:00+02:00``, ``...Z``) and year-first ``2026/10/15`` are
  always accepted. Day/month dates such as ``03/04/2026`` are *refused* unless
  the source declares ``date_format``: the loader never guesses the order, even
  when a value like ``31/01/2026`` would reveal it (a column whose first rows
  happen to be unambiguous would otherwise be read one way on Monday and
  refused on Tuesday). Timestamps with an offset are converted to the
  organisation's zone and made naive; naive ones are taken as local already.
  Excel date serials (numbers in a date column of a workbook) are days since
  1899-12-30. Results are ``datetime64[ns]``; dates outside its range
  (1677-2262) are reported as unreadable.
* **Numbers are never silently scaled** (issue 9; docs/DATA.md "Numbers").
  One full-match grammar per setting (:func:`number_pattern`): ASCII digits,
  one decimal separator, and thousands separators only between groups of
  exactly three digits (first group without a leading zero). With
  ``decimal: ","`` a ``.`` (or a space) may group thousands; with ``.`` only a
  declared ``thousands`` may. With nothing declared, values like ``85.000``
  are refused when the column's other values are integers or comma decimals,
  or the column holds money, unless another value proves the decimal point.
  Currency signs/codes are stripped only when separators are declared. Every
  refusal names the ``decimal:``/``thousands:`` setting that would read the
  cells (:func:`suggest_setting`). ``inf`` and ``nan`` text are unreadable.
* **Digits are 0-9.** Full-width or Arabic-Indic digits in a number or date
  column are refused cell by cell (:func:`non_ascii_digits`), never emptied.
* **Headers are never chosen between.** Two source columns that normalise to
  one canonical name (case, spaces, ``-``/``_``) are an error naming both; a
  source column that looks like a misspelt missing optional column is an
  error with "did you mean" (it would otherwise be read as empty).
* **Vocabularies** (deal status, goal scope and direction, activity type, cost
  category) are lower-cased and stripped; currency codes upper-cased. Checking
  them against their vocabulary is validation's job, not the parser's.

Performance (issue 2: 1 M deals, 5 M activities in well under a minute)
----------------------------------------------------------------------
* **Columns already in canonical form are not re-parsed.** A naive
  ``datetime64[ns]`` column (Parquet, SQL, a :class:`CrmData`) is returned as
  is; ``float64`` without infinities too. String columns go through pyarrow
  compute (trim, empty -> missing), and a column whose strings provably have
  no leading/trailing whitespace and no empty value (first and last byte of
  each string read from the Arrow buffers) is wrapped without a copy. Only
  ``object`` columns (Excel cells, SQL driver values) are handled value by value.
* **Each distinct date text is parsed once.** A text date column repeats a few
  thousand days over millions of rows: the uniques are parsed and mapped back
  by code. A column in one exact ISO layout (``%Y-%m-%d``,
  ``%Y-%m-%d %H:%M:%S`` ...) takes one C-level ``to_datetime`` pass; anything
  else goes through the ISO 8601 / day-month rules above, so mixed ISO
  variants in one column (``2026-01-01`` and ``2026-01-01 09:30``), which
  pandas 3 refuses with a single inferred format, still load.
* :func:`str_isin` replaces pandas' ``isin`` on pyarrow strings, which turns
  every value of the set into a Python scalar (minutes for millions of ids).
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpireport.data.schema import SCHEMAS, TableSchema
from kpireport.errors import Problem

_ISO = r"\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?)?"
_AWARE_RE = r"(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$"
_YMD_SLASH = r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})"
_DAY_MONTH = r"\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}(?:[ T].*)?"
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_NS_MIN = pd.Timestamp("1677-09-22")
_NS_MAX = pd.Timestamp("2262-04-10")

#: str columns normalised to lower case (closed or semi-closed vocabularies)
LOWER_COLUMNS = {("activities", "type"), ("costs", "category"), ("goals", "kpi")}


@dataclass
class Canonical:
    """Result of :func:`canonicalise`.

    Attributes
    ----------
    tables
        Canonical frames (every schema column present, canonical dtypes).
    problems
        Missing columns and unreadable cells, one :class:`Problem` per column and cause.
    flagged
        (table, column) -> row labels already reported as unreadable or missing,
        so that later rules do not report the same cells again as empty.
    """

    tables: dict[str, pd.DataFrame]
    problems: list[Problem] = field(default_factory=list)
    flagged: dict[tuple[str, str], pd.Index] = field(default_factory=dict)


# ------------------------------------------------------------------ helpers
def row_numbers(df: pd.DataFrame | pd.Series) -> np.ndarray:
    """The 1-based row numbers a user sees for each row of ``df``.

    Frames from the loader are indexed by row number already; any other frame
    (a default ``RangeIndex`` from 0, a non-numeric index) is numbered by position.
    """
    idx = df.index
    if isinstance(idx, pd.RangeIndex):
        return np.arange(1, len(idx) + 1) if idx.start == 0 else np.asarray(idx)
    if pd.api.types.is_integer_dtype(idx.dtype) and len(idx) and idx.min() >= 1:
        return np.asarray(idx)
    return np.arange(1, len(idx) + 1)


def examples(values: pd.Series, n: int = 3) -> str:
    """Up to ``n`` distinct offending values, quoted, for a message."""
    seen: list[str] = []
    for v in values:
        text = str(v)
        if len(text) > 40:
            text = text[:37] + "..."
        if text not in seen:
            seen.append(text)
        if len(seen) == n:
            break
    return ", ".join(f"'{s}'" for s in seen)


def _is_stringish(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype)


def _strip_strings(s: pd.Series) -> pd.Series:
    """Strip text; empty -> missing. Returns a ``str`` Series."""
    t = s.astype("str").str.strip()
    return t.mask(t == "")


# --------------------------------------------------------------------- ids
def _format_scalar_id(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return np.nan
    if isinstance(v, bool | np.bool_):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        if np.isnan(f):
            return np.nan
        if f.is_integer() and abs(f) < 1e21:
            return str(int(f))
        return repr(f)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return str(v)


def arrow_strings(s: pd.Series) -> pa.Array | pa.ChunkedArray | None:
    """The pyarrow string array behind a pandas string Series, or None.

    Works for the ``str`` dtype of pandas 3 and for ``string`` (both backed by
    pyarrow, so this is zero-copy); any other dtype gives None.
    """
    if isinstance(s.dtype, pd.StringDtype):
        return pa.array(s.array)
    return None


def _chunk_is_clean(ch: pa.Array) -> bool:
    """True when no string of ``ch`` is empty or may start or end with whitespace.

    Reads the first and last byte of every string straight from the Arrow
    buffers (no copy, no per-string call). A byte <= 0x20 or a non-ASCII byte
    at either end is treated as "maybe whitespace" and sends the column through
    the full trim, so the test can only err on the safe side.
    """
    if pa.types.is_large_string(ch.type):
        offset_type = np.int64
    elif pa.types.is_string(ch.type):
        offset_type = np.int32
    else:
        return False
    _validity, offsets, data = ch.buffers()[:3]
    if offsets is None or len(ch) == 0:
        return True
    off = np.frombuffer(offsets, dtype=offset_type)[ch.offset : ch.offset + len(ch) + 1]
    start, end = off[:-1], off[1:]
    filled = end > start
    if ch.null_count:  # a null slot may have any length: judge valid slots only
        valid = np.asarray(ch.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if (valid & ~filled).any():  # an empty string
            return False
        filled &= valid
    elif not filled.all():
        return False
    if data is None:
        return True
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.concatenate([raw[start[filled]], raw[end[filled] - 1]])
    return not bool(((ends <= 0x20) | (ends >= 0x80)).any())


def _text_series(arr: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    """Stripped ``str`` Series from a pyarrow string array; empty -> missing.

    Columns that are already clean (the usual case for ids and canonical
    data) are wrapped without copying.
    """
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    if all(_chunk_is_clean(ch) for ch in chunks):
        return pd.Series(pd.array(arr, dtype="str"), index=index, copy=False)
    t = pc.utf8_trim_whitespace(arr)
    empty = pc.equal(t, "")
    if pc.any(empty).as_py():
        t = pc.if_else(empty, pa.scalar(None, t.type), t)
    return pd.Series(pd.array(t, dtype="str"), index=index, copy=False)


def parse_text(s: pd.Series) -> pd.Series:
    """Ids and free text as pandas ``str`` dtype, stripped, empty = missing.

    Integers print exactly; integral floats print without ``.0``. String and
    integer columns (CSV, Parquet, the canonical ``str`` dtype) take a
    vectorised pyarrow path; only ``object`` columns (Excel, SQL drivers) are
    formatted value by value.
    """
    arr = arrow_strings(s)
    if arr is None and pd.api.types.is_integer_dtype(s.dtype):
        ints = (
            pa.array(s.array)
            if isinstance(s.dtype, pd.api.extensions.ExtensionDtype)
            else pa.array(s.to_numpy())
        )
        arr = pc.cast(ints, pa.large_string())
    if arr is not None:
        return _text_series(arr, s.index)
    t = s.astype(object).map(_format_scalar_id, na_action="ignore")
    t = t.astype("str").str.strip()
    return t.mask(t == "")


def str_isin(
    s: pd.Series, values: pd.Series | pa.Array | pa.ChunkedArray | list[Any] | np.ndarray
) -> np.ndarray:
    """Vectorised ``s.isin(values)`` for string columns; missing is never in.

    pandas' own ``isin`` on a pyarrow ``str`` column turns every value of the
    set into a Python scalar first (minutes for millions of ids); this builds
    the set once in pyarrow.

    Returns
    -------
    numpy.ndarray
        Boolean mask aligned with ``s``.
    """
    arr = arrow_strings(s)
    if arr is None:
        return (s.notna() & s.isin(values)).to_numpy(dtype=bool)
    vals: pa.Array | pa.ChunkedArray | None = None
    if isinstance(values, pa.Array | pa.ChunkedArray):
        vals = values
    elif isinstance(values, pd.Series | pd.Index):
        vals = arrow_strings(pd.Series(values, copy=False))
    if vals is None:
        vals = pa.array([v for v in values if isinstance(v, str)], type=pa.large_string())
    if isinstance(vals, pa.ChunkedArray):
        vals = vals.combine_chunks()
    vals = vals.cast(arr.type).drop_null()
    if not len(vals):
        return np.zeros(len(s), dtype=bool)
    hit = pc.is_in(arr, value_set=vals, skip_nulls=True)
    return np.asarray(hit.to_numpy(zero_copy_only=False), dtype=bool)


# ------------------------------------------------------------------ numbers
#: space-like thousands separators; declaring one of them accepts them all
SPACES = (" ", "\u00a0", "\u202f")
#: thousands separators a source may declare
THOUSANDS = (",", ".", "'", *SPACES)
#: a currency sign or code before or after an amount (read only when separators are declared)
_CUR = r"(?:[€$£¥]|[Kk][Rr]\.?|[A-Z]{3})"
_CUR_PREFIX = _CUR + r"\s*"
_CUR_SUFFIX = r"\s*" + _CUR
#: ``85.000``, ``1.250.000``: digits grouped by three with dots
_DOT_GROUPED = r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+"
#: money columns: an amount is never written with exactly three decimals
MONEY_COLUMNS = {
    ("deals", "value"),
    ("revenue", "amount"),
    ("costs", "amount"),
    ("sellers", "monthly_cost"),
}


def _groupers(decimal: str, thousands: str | None) -> list[str]:
    """Separators allowed between groups of exactly three digits."""
    out: list[str] = []
    if thousands:
        out += list(SPACES) if thousands in SPACES else [thousands]
    if decimal == ",":  # '.' and spaces cannot be the decimal: they group thousands
        out += [g for g in (".", *SPACES) if g not in out]
    return out


def number_pattern(decimal: str = ".", thousands: str | None = None, currency: bool = False) -> str:
    """The full-match regex of a number cell under the given separators.

    Digits are ASCII only. A separator other than the decimal one must group
    exactly three digits (``1.234.567,89``); the first group has no leading
    zero. With ``currency`` a sign or ISO code may precede or follow
    (``€ 85.000,00``, ``85 000 kr``, ``$1,250.00``).
    """
    d = re.escape(decimal)
    plain = rf"(?:[0-9]+(?:{d}[0-9]*)?|{d}[0-9]+)(?:[eE][+-]?[0-9]+)?"
    alts = [plain] + [
        rf"[1-9][0-9]{{0,2}}(?:{re.escape(g)}[0-9]{{3}})+(?:{d}[0-9]*)?"
        for g in _groupers(decimal, thousands)
    ]
    body = rf"[+-]?(?:{'|'.join(alts)})"
    if currency:
        body = rf"(?:{_CUR_PREFIX})?{body}(?:{_CUR_SUFFIX})?"
    return body


def _read_text(
    t: pd.Series, decimal: str, thousands: str | None, currency: bool
) -> tuple[pd.Series, pd.Series]:
    """Numbers from stripped, non-empty text; returns (values, readable mask)."""
    ok = t.str.fullmatch(number_pattern(decimal, thousands, currency)).fillna(False).astype(bool)
    u = t.where(ok)
    if currency:
        u = u.str.replace(rf"^{_CUR_PREFIX}", "", regex=True)
        u = u.str.replace(rf"{_CUR_SUFFIX}$", "", regex=True)
    for g in _groupers(decimal, thousands):
        u = u.str.replace(g, "", regex=False)
    if decimal != ".":
        u = u.str.replace(decimal, ".", regex=False)
    arr = arrow_strings(u)
    try:  # one Arrow cast (the text is validated above); pandas' to_numeric goes per value
        if arr is None:
            raise pa.ArrowInvalid("not Arrow-backed")
        vals = pd.Series(
            np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64"),
            index=u.index,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        vals = pd.to_numeric(u, errors="coerce").astype("float64")
    return vals, ok & vals.notna()


def non_ascii_digits(s: pd.Series) -> pd.Series:
    """Cells of ``s`` holding a digit outside 0-9 (full-width ``１``, Arabic-Indic ``١``)."""
    out = pd.Series(False, index=s.index)
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return out
    if _is_stringish(s) and s.dtype != object:
        maybe = s.str.contains(r"[^\x00-\x7f]", regex=True).fillna(False).astype(bool)
        cand = s[maybe]
    else:
        cand = s[np.fromiter((isinstance(v, str) for v in s.to_numpy(dtype=object)), bool, len(s))]
    if len(cand):
        hit = cand.map(lambda v: any(c.isdigit() and not c.isascii() for c in str(v)))
        out[hit[hit.astype(bool)].index] = True
    return out


@dataclass
class Numbers:
    """Result of :func:`read_numbers`: values and the refused cells by cause.

    Attributes
    ----------
    values
        ``float64``; NaN where missing or refused.
    unreadable
        Cells that are no number under the declared separators.
    dot_grouped
        Cells like ``85.000`` refused because, with no ``decimal`` declared, the
        column reads as thousands grouped with dots (module docstring).
    non_ascii
        Cells with digits outside 0-9.
    """

    values: pd.Series
    unreadable: pd.Series
    dot_grouped: pd.Series
    non_ascii: pd.Series

    @property
    def bad(self) -> pd.Series:
        return self.unreadable | self.dot_grouped | self.non_ascii


def read_numbers(
    s: pd.Series,
    *,
    decimal: str | None = None,
    thousands: str | None = None,
    money: bool = False,
) -> Numbers:
    """Parse a column into ``float64`` without ever scaling a number silently.

    Parameters
    ----------
    s
        Raw column: numbers (Excel, SQL, Parquet) or text.
    decimal
        Declared decimal separator (``"."`` or ``","``); None: not declared
        (read as ``"."``, and dot-grouped thousands are refused).
    thousands
        Declared thousands separator, or None. Declaring either separator also
        accepts a currency sign or code around an amount.
    money
        The column holds amounts (deal values, revenue, costs): with nothing
        declared, a text like ``85.000`` is refused even when every value of
        the column has three decimals.
    """
    none = pd.Series(False, index=s.index)
    if pd.api.types.is_bool_dtype(s.dtype):
        return Numbers(pd.Series(np.nan, index=s.index), s.notna(), none, none.copy())
    if pd.api.types.is_numeric_dtype(s.dtype):
        out = s.astype("Float64").astype("float64") if s.dtype != "float64" else s
        inf = np.isinf(out.to_numpy())
        bad = pd.Series(inf, index=s.index)
        return Numbers(out.where(~bad) if inf.any() else out, bad, none, none.copy())
    declared = decimal is not None or bool(thousands)
    dec = decimal or "."
    textual = _is_stringish(s) and s.dtype != object  # CSV text: no Python numbers inside
    obj = s if textual else s.astype(object)
    if textual:
        isnum = pd.Series(False, index=s.index)
    else:
        isnum = obj.map(
            lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), na_action="ignore"
        )
        isnum = isnum.fillna(False).astype(bool)
    out = pd.Series(np.nan, index=s.index, dtype="float64")
    if isnum.any():
        out[isnum] = obj[isnum].astype("float64")
    bad = pd.Series(False, index=s.index)
    grouped = pd.Series(False, index=s.index)
    nonascii = pd.Series(False, index=s.index)
    if (~isnum).any():
        if textual:
            text = parse_text(s)  # pyarrow trim, no copy when already clean
        else:
            text = _strip_strings(obj[~isnum].where(obj[~isnum].notna(), None))
        t = text if text.notna().all() else text[text.notna()]
        if len(t):
            na = non_ascii_digits(t)
            if na.any():
                nonascii[na[na].index] = True
                t = t[~na]
            vals, ok = _read_text(t, dec, thousands, declared)
            out[vals.index] = vals.where(ok)
            bad[t.index] = ~ok
            if decimal is None and not thousands:
                looks = t.str.fullmatch(_DOT_GROUPED).fillna(False).astype(bool)
                if looks.any():
                    proves_dot = ok & t.str.contains(".", regex=False) & ~looks
                    other = (~ok & ~looks) | t.str.fullmatch(r"[+-]?[0-9]+").fillna(False)
                    if not proves_dot.any() and (money or bool(other.any())):
                        grouped[looks[looks].index] = True
    bad = (bad | pd.Series(np.isinf(out.to_numpy()), index=s.index)) & ~grouped
    return Numbers(out.where(~(bad | grouped | nonascii)), bad, grouped, nonascii)


def parse_numbers(
    s: pd.Series, *, decimal: str | None = None, thousands: str | None = None
) -> tuple[pd.Series, pd.Series]:
    """Parse a column into ``float64``; returns (values, refused mask). See :func:`read_numbers`."""
    r = read_numbers(s, decimal=decimal, thousands=thousands)
    return r.values, r.bad


#: settings tried, in order, to suggest one that reads a refused number
_CANDIDATES: tuple[tuple[str, str | None], ...] = (
    (".", None),
    (".", ","),
    (".", " "),
    (".", "'"),
    (",", None),
    (",", "."),
    (",", " "),
)


def _setting_text(decimal: str, thousands: str | None) -> str:
    parts = [f'decimal: "{decimal}"']
    if thousands:
        parts.append(f'thousands: "{thousands}"')
    return " and ".join(parts)


def suggest_setting(cells: list[str], decimal: str | None, thousands: str | None) -> str:
    """A clause naming the ``decimal:``/``thousands:`` setting that reads ``cells``.

    Settings that keep the declared (or default) decimal separator are tried
    first; a declared setting also reads currency signs.
    """
    dec = decimal or "."
    current = (dec, thousands or None)
    order = sorted(_CANDIDATES, key=lambda c: c[0] != dec)
    t = pd.Series(cells, dtype="str").str.strip()
    for cand in order:
        if cand == current and (decimal is not None or thousands):
            continue
        _vals, ok = _read_text(t, cand[0], cand[1], True)
        if ok.all():
            return f"{_setting_text(*cand)} in the source YAML would read them"
    return (
        "no decimal:/thousands: setting reads them (numbers need digits 0-9, one decimal "
        'separator "." or ",", and thousands in groups of three)'
    )


def describe_setting(decimal: str | None, thousands: str | None) -> str:
    """The separators in force, for a message: ``decimal "." (the default)``."""
    if decimal is None and not thousands:
        return 'decimal "." (the default; nothing declared)'
    text = f'decimal "{decimal or "."}"'
    if thousands:
        text += f' and thousands "{thousands}"'
    return text


# -------------------------------------------------------------------- dates
#: the "no end" sentinel many CRMs and data warehouses write into open end dates
OPEN_END_YEAR = 9999


def open_ended(s: pd.Series) -> pd.Series:
    """Cells holding the open-end sentinel: a date in the year 9999 (``9999-12-31``,
    ``9999-12-31 23:59:59``, ``31.12.9999``, an Excel/SQL datetime of that year).

    Only end-date columns (``Column.open_end``) read them as "no end"; anywhere
    else the year 9999 stays an unreadable date.
    """
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return pd.Series(False, index=s.index)  # datetime64 cannot hold 9999 at all
    if _is_stringish(s) and s.dtype != object:  # CSV text, Arrow strings: one vectorised pass
        return s.str.strip().str.fullmatch(_OPEN_END_TEXT).eq(True)

    def sentinel(v: Any) -> bool:
        if isinstance(v, dt.date):
            return v.year == OPEN_END_YEAR
        if isinstance(v, str):
            t = v.strip()
            return bool(_OPEN_END_TEXT.fullmatch(t))
        return False

    return s.map(sentinel, na_action="ignore").eq(True)  # NaN (empty) is not the sentinel


_OPEN_END_TEXT = re.compile(
    r"9999-12-31(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|31[./-]12[./-]9999(?: \d{2}:\d{2}(?::\d{2})?)?|12/31/9999"
)


def _to_local(ts: pd.Series, timezone: str) -> pd.Series:
    """Aware -> organisation zone -> naive; naive stays as is."""
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        return ts.dt.tz_convert(timezone).dt.tz_localize(None)
    return ts


def _finish(ts: pd.Series, bad: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Bound-check and cast to ``datetime64[ns]``."""
    if ts.dtype == "datetime64[ns]":  # always in range: nothing to check or copy
        return ts, bad
    if not pd.api.types.is_datetime64_dtype(ts.dtype):
        ts = pd.to_datetime(ts, errors="coerce")
    out_of_range = ts.notna() & ((ts < _NS_MIN) | (ts > _NS_MAX))
    bad = bad | out_of_range
    ts = ts.where(~out_of_range).astype("datetime64[ns]")
    return ts, bad


def parse_dates(
    s: pd.Series,
    *,
    timezone: str,
    date_format: str | None = None,
    excel: bool = False,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse a column into naive local ``datetime64[ns]``.

    Parameters
    ----------
    s
        Raw column (strings, datetimes, Excel serial numbers or a datetime dtype).
    timezone
        IANA zone of the organisation; aware values are converted into it.
    date_format
        Declared ``strftime`` format for non-ISO text dates (e.g. ``"%d/%m/%Y"``).
    excel
        Read numbers as Excel date serials (workbooks only).

    Returns
    -------
    values, unreadable, ambiguous
        The parsed column and two boolean masks: cells that are not dates and
        cells refused because their day/month order is not declared.
    """
    idx = s.index
    none = pd.Series(False, index=idx)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        ts, bad = _finish(_to_local(s, timezone), none)
        return ts, bad, none
    out = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns]")
    bad = none.copy()
    ambiguous = none.copy()
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        nums = s.astype("Float64").astype("float64")
        present = nums.notna()
        if excel:
            ok = present & (nums >= 1) & (nums < 2958466)
            out[ok] = _EXCEL_EPOCH + pd.to_timedelta(nums[ok].round(6), unit="D").dt.round("s")
            bad = present & ~ok
        else:
            bad = present
        ts, bad = _finish(out, bad)
        return ts, bad, ambiguous
    if _is_stringish(s) and s.dtype != object:  # CSV text, Parquet/Arrow strings
        text = parse_text(s)
        present = text.notna().to_numpy()
        if not present.any():
            return out, bad, ambiguous
        t = text if present.all() else text[present]
        ts, b, a = _parse_date_text(t, timezone=timezone, date_format=date_format)
        vals = np.full(len(idx), np.datetime64("NaT"), dtype="datetime64[ns]")
        badv, ambv = np.zeros(len(idx), dtype=bool), np.zeros(len(idx), dtype=bool)
        vals[present], badv[present], ambv[present] = ts.to_numpy(), b.to_numpy(), a.to_numpy()
        return (
            pd.Series(vals, index=idx),
            pd.Series(badv, index=idx),
            pd.Series(ambv, index=idx),
        )
    obj = s.astype(object)
    if obj.dtype == object:
        kinds = obj.map(_kind_of, na_action="ignore")
    else:
        kinds = pd.Series(np.where(obj.notna(), "str", None), index=idx)
    # Python/pandas datetimes (Excel cells, SQL drivers)
    dmask = kinds == "datetime"
    if dmask.any():
        vals = obj[dmask]
        aware = vals.map(lambda v: getattr(v, "tzinfo", None) is not None)
        if aware.any():
            conv = (
                pd.to_datetime(vals[aware], utc=True).dt.tz_convert(timezone).dt.tz_localize(None)
            )
            out[conv.index] = conv.astype("datetime64[ns]")
        if (~aware).any():
            out[vals[~aware].index] = pd.to_datetime(vals[~aware].astype(object)).astype(
                "datetime64[ns]"
            )
    nmask = kinds == "number"
    if nmask.any():
        nums = obj[nmask].astype("float64")
        if excel:
            ok = (nums >= 1) & (nums < 2958466)
            out[ok[ok].index] = (
                _EXCEL_EPOCH + pd.to_timedelta(nums[ok].round(6), unit="D").dt.round("s")
            ).astype("datetime64[ns]")
            bad[ok[~ok].index] = True
        else:
            bad[nums.index] = True
    omask = kinds == "other"
    bad[omask[omask].index] = True
    smask = kinds == "str"
    if smask.any():
        text = obj[smask].astype("str").str.strip()
        text = text[text != ""]
        if len(text):
            ts, b, a = _parse_date_text(text, timezone=timezone, date_format=date_format)
            if len(text) == len(idx):  # the common case: every cell is text
                out, bad, ambiguous = ts.set_axis(idx), b.set_axis(idx), a.set_axis(idx)
            else:
                out[ts.index] = ts
                bad[b[b].index] = True
                ambiguous[a[a].index] = True
    ts, bad = _finish(out, bad)
    return ts, bad, ambiguous


def _kind_of(v: Any) -> str:
    if isinstance(v, str):
        return "str"
    if isinstance(v, dt.datetime | dt.date | np.datetime64):
        return "datetime"
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return "number"
    return "other"


def _in_range(parsed: pd.Series) -> np.ndarray:
    """``datetime64[ns]`` values of ``parsed``; out-of-range values become NaT."""
    ok = parsed.isna() | ((parsed >= _NS_MIN) & (parsed <= _NS_MAX))
    return parsed.where(ok).astype("datetime64[ns]").to_numpy()


def _parse_iso(t: pd.Series, timezone: str) -> np.ndarray:
    """Parse ISO text (some aware, some naive) into naive local ``datetime64[ns]`` values."""
    out = np.full(len(t), np.datetime64("NaT"), dtype="datetime64[ns]")
    aware = (
        t.str.contains(_AWARE_RE, regex=True) & t.str.contains(r"\d:\d\d", regex=True)
    ).to_numpy()
    if aware.any():
        a = (
            t[aware]
            .str.replace(r"\s*UTC$", "Z", regex=True)
            .str.replace(r"\s+(?=[+-]\d\d)", "", regex=True)
        )
        conv = pd.to_datetime(a, format="ISO8601", utc=True, errors="coerce")
        out[aware] = _in_range(_to_local(conv, timezone))
    if (~aware).any():
        out[~aware] = _in_range(pd.to_datetime(t[~aware], format="ISO8601", errors="coerce"))
    return out


def _parse_date_text(
    t: pd.Series, *, timezone: str, date_format: str | None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse stripped, non-empty date text; each distinct text is parsed once.

    A date column repeats its values (a few thousand days under millions of
    rows), so the uniques are parsed and the results mapped back by code.
    """
    codes, uniques = pd.factorize(t)
    if len(uniques) < len(t):
        u = pd.Series(uniques, copy=False)
        ts, bad, amb = _parse_unique_date_text(u, timezone=timezone, date_format=date_format)
        return (
            pd.Series(ts.to_numpy()[codes], index=t.index),
            pd.Series(bad.to_numpy()[codes], index=t.index),
            pd.Series(amb.to_numpy()[codes], index=t.index),
        )
    return _parse_unique_date_text(t, timezone=timezone, date_format=date_format)


#: exact ISO layouts tried first: one C-level pass when a whole column uses one of them
_FAST_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


def _parse_fast(t: pd.Series) -> np.ndarray | None:
    """Naive ``datetime64[ns]`` values when every text has one exact ISO layout, else None."""
    first = t.iloc[0]
    for fmt in _FAST_FORMATS:
        if len(first) != len(pd.Timestamp(2000, 1, 1).strftime(fmt)):
            continue
        try:
            parsed = pd.to_datetime(t, format=fmt, errors="raise")
        except (ValueError, TypeError, OverflowError):
            continue
        return _in_range(parsed)
    return None


def _parse_unique_date_text(
    t: pd.Series, *, timezone: str, date_format: str | None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    fast = _parse_fast(t) if len(t) else None
    if fast is not None:
        none = np.zeros(len(t), dtype=bool)
        return (
            pd.Series(fast, index=t.index),
            pd.Series(np.isnat(fast), index=t.index),
            pd.Series(none, index=t.index),
        )
    out = np.full(len(t), np.datetime64("NaT"), dtype="datetime64[ns]")
    ambiguous = np.zeros(len(t), dtype=bool)
    # year-first with slashes or dots: 2026/10/15 -> 2026-10-15 (never ambiguous)
    ymd = t.str.contains(r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}", regex=True)
    if ymd.any():
        t = t.copy()
        t[ymd] = t[ymd].str.replace(_YMD_SLASH, r"\1-\2-\3", regex=True)
    iso = t.str.fullmatch(_ISO).to_numpy(dtype=bool)
    if iso.any():
        out[iso] = _parse_iso(t[iso], timezone)
    rest = t[~iso]
    if len(rest):
        if date_format:
            utc = "%z" in date_format or "%Z" in date_format
            parsed = pd.to_datetime(rest, format=date_format, errors="coerce", utc=utc)
            out[~iso] = _in_range(_to_local(parsed, timezone) if utc else parsed)
        else:
            ambiguous[~iso] = rest.str.fullmatch(_DAY_MONTH).to_numpy(dtype=bool)
    bad = np.isnat(out) & ~ambiguous
    idx = t.index
    return pd.Series(out, index=idx), pd.Series(bad, index=idx), pd.Series(ambiguous, index=idx)


# ------------------------------------------------------------ table level
def normalise_header(c: str) -> str:
    """The comparison form of a column name: ``"Deal ID"`` -> ``"deal_id"``."""
    return re.sub(r"[\s\-]+", "_", str(c).strip().lower())


def _find_columns(columns: list[str], wanted: str) -> list[int]:
    """Positions of the source columns that read as ``wanted`` (exactly or normalised)."""
    target = normalise_header(wanted)
    return [i for i, c in enumerate(columns) if c == wanted or normalise_header(c) == target]


def _find_column(columns: list[str], wanted: str) -> str | None:
    hits = _find_columns(columns, wanted)
    return columns[hits[0]] if len(hits) == 1 else None


def _near_miss(
    src_cols: list[str], wanted: str, schema: TableSchema, columns: Mapping[str, str]
) -> str | None:
    """A source column that is no schema column but looks like a misspelt ``wanted``."""
    import difflib

    known = {normalise_header(c) for c in [*schema.column_names, *columns.values()]}
    target = normalise_header(wanted)
    best, score = None, 0.0
    for c in src_cols:
        n = normalise_header(c)
        if n in known:
            continue
        ratio = difflib.SequenceMatcher(None, n, target).ratio()
        if ratio > score:
            best, score = c, ratio
    return best if score >= 0.8 else None


def _as_decimal(text: str) -> str:
    try:
        return f"{float(text.strip()):g}"
    except ValueError:  # pragma: no cover - only called on dot-grouped cells
        return text


def _empty(kind: str, index: pd.Index) -> pd.Series:
    if kind == "date":
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    if kind == "float":
        return pd.Series(np.nan, index=index, dtype="float64")
    return pd.Series(np.nan, index=index, dtype="str")


def _recode(s: pd.Series, recode: Mapping[str, str] | None) -> pd.Series:
    """Apply a source YAML value mapping (``values:``); each distinct value is looked up once."""
    if not recode:
        return s
    uniques = pd.unique(s.dropna())
    table = {v: recode.get(str(v).strip(), v) for v in uniques}
    if all(k == v for k, v in table.items()):
        return s
    out = s.astype(object).map(table)
    return out.where(s.notna(), None)


def _rows_problem(
    table: str, column: str, s: pd.Series, mask: pd.Series, reason: str, id_values: pd.Series | None
) -> Problem:
    rows = row_numbers(s)[mask.to_numpy()]
    ids: tuple[str, ...] = ()
    if id_values is not None:
        ids = tuple(str(v) for v in id_values[mask].head(10) if isinstance(v, str))
    return Problem(table, reason, column, tuple(int(r) for r in rows[:10]), ids, int(mask.sum()))


def canonicalise_table(
    name: str,
    raw: pd.DataFrame,
    *,
    timezone: str,
    columns: Mapping[str, str] | None = None,
    values: Mapping[str, Mapping[str, str]] | None = None,
    date_format: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    excel: bool = False,
) -> tuple[pd.DataFrame, list[Problem], dict[tuple[str, str], pd.Index]]:
    """Rename, parse and type one table; collect every unreadable cell.

    Parameters
    ----------
    name
        Canonical table name (a key of :data:`kpireport.data.schema.SCHEMAS`).
    raw
        Source frame, indexed by 1-based data row.
    columns
        Canonical column -> source column for renamed columns.
    values
        Canonical column -> {source value: canonical value} recodings.

    Returns
    -------
    frame, problems, flagged
        The canonical frame (exactly the schema's columns, in schema order),
        the problems found, and the cells already reported per column.
    """
    schema: TableSchema = SCHEMAS[name]
    columns = dict(columns or {})
    values = dict(values or {})
    src_cols = [str(c) for c in raw.columns]
    problems: list[Problem] = []
    flagged: dict[tuple[str, str], pd.Index] = {}
    out: dict[str, pd.Series] = {}
    id_values: pd.Series | None = None

    def column_of(canonical: str) -> tuple[pd.Series | None, list[int]]:
        hits = _find_columns(src_cols, columns.get(canonical, canonical))
        return (raw.iloc[:, hits[0]] if len(hits) == 1 else None), hits

    if schema.id_column:
        src, _hits = column_of(schema.id_column)
        if src is not None:
            id_values = parse_text(_recode(src, values.get(schema.id_column)))
    for col in schema.columns:
        wanted = columns.get(col.name, col.name)
        src, hits = column_of(col.name)
        if len(hits) > 1:
            names = " and ".join(f"'{src_cols[i]}' (column {i + 1})" for i in hits)
            problems.append(
                Problem(
                    name,
                    f"the source columns {names} all read as '{col.name}'; kpireport never "
                    "picks one: remove or rename all but one, or map the right one under "
                    f"tables.{name}.columns in the source YAML",
                    col.name,
                )
            )
            flagged[(name, col.name)] = raw.index
            out[col.name] = _empty(col.kind, raw.index)
            continue
        if col.name in columns and src is not None:
            shadow = [
                c
                for c in _find_columns(src_cols, col.name)
                if normalise_header(src_cols[c]) != normalise_header(wanted)
            ]
            if shadow:
                problems.append(
                    Problem(
                        name,
                        f"'{col.name}' is read from '{wanted}' as mapped in the source YAML; "
                        f"the source's own column '{src_cols[shadow[0]]}' is ignored",
                        col.name,
                        severity="warning",
                    )
                )
        if src is None:
            typo = (
                _near_miss(src_cols, col.name, schema, columns) if col.name not in columns else None
            )
            if typo is not None and not col.required:
                problems.append(
                    Problem(
                        name,
                        f"the source column '{typo}' is no kpireport column; did you mean "
                        f"'{col.name}'? Rename it, or map it under tables.{name}.columns in the "
                        f"source YAML ('{col.name}' would otherwise be read as empty)",
                        col.name,
                    )
                )
                flagged[(name, col.name)] = raw.index
            if col.required or col.name in columns:
                renamed = f" (mapped from '{wanted}')" if col.name in columns else ""
                if typo is not None:
                    renamed += f" (did you mean the source column '{typo}'?)"
                problems.append(
                    Problem(
                        name,
                        f"required column is missing{renamed}; the source has: "
                        + ", ".join(src_cols[:15])
                        + (" ..." if len(src_cols) > 15 else "")
                        + f". Map it under tables.{name}.columns in the source YAML",
                        col.name,
                    )
                    if col.required
                    else Problem(
                        name,
                        f"mapped column '{wanted}' is not in the source; the source has: "
                        + ", ".join(src_cols[:15]),
                        col.name,
                    )
                )
                flagged[(name, col.name)] = raw.index
            out[col.name] = _empty(col.kind, raw.index)
            continue
        s = _recode(src, values.get(col.name))
        if col.kind == "date":
            foreign = non_ascii_digits(s)
            if foreign.any():
                problems.append(
                    _rows_problem(
                        name,
                        col.name,
                        s,
                        foreign,
                        f"dates {examples(s[foreign].astype(str))} have digits outside 0-9 "
                        "(full-width or Arabic-Indic); write them as YYYY-MM-DD with the "
                        "digits 0-9",
                        id_values,
                    )
                )
                s = s.mask(foreign)
            if col.open_end:  # 9999-12-31 is the CRMs' "no end": an empty end date
                s = s.mask(open_ended(s))
            fmt = date_format
            ts, bad, amb = parse_dates(s, timezone=timezone, date_format=fmt, excel=excel)
            if amb.any():
                eg = examples(s[amb].astype(str))
                problems.append(
                    _rows_problem(
                        name,
                        col.name,
                        s,
                        amb,
                        f"dates like {eg} could be day/month or month/day; set date_format "
                        '(e.g. "%d/%m/%Y") in the source',
                        id_values,
                    )
                )
            if bad.any():
                eg = examples(s[bad].astype(str))
                problems.append(
                    _rows_problem(
                        name,
                        col.name,
                        s,
                        bad,
                        f"cannot read {eg} as a date (use YYYY-MM-DD"
                        + (f" or {date_format}" if date_format else "")
                        + ")",
                        id_values,
                    )
                )
            refused = amb | bad | foreign
            if refused.any():
                flagged[(name, col.name)] = raw.index[refused.to_numpy()]
            out[col.name] = ts
        elif col.kind == "float":
            r = read_numbers(
                s, decimal=decimal, thousands=thousands, money=(name, col.name) in MONEY_COLUMNS
            )
            where = describe_setting(decimal, thousands)
            if r.non_ascii.any():
                problems.append(
                    _rows_problem(
                        name,
                        col.name,
                        s,
                        r.non_ascii,
                        f"numbers {examples(s[r.non_ascii].astype(str))} have digits outside "
                        "0-9 (full-width or Arabic-Indic); write them with the digits 0-9",
                        id_values,
                    )
                )
            if r.dot_grouped.any():
                cells = s[r.dot_grouped].astype(str)
                problems.append(
                    _rows_problem(
                        name,
                        col.name,
                        s,
                        r.dot_grouped,
                        f"{examples(cells)} look like thousands grouped with '.', but "
                        f"{where} would read them as decimals ({examples(cells, 1)} as "
                        f'{_as_decimal(cells.iloc[0])}); set decimal: "," in the source YAML '
                        'if they are thousands, or decimal: "." if they really are decimals',
                        id_values,
                    )
                )
            if r.unreadable.any():
                cells = s[r.unreadable].astype(str)
                eg = examples(cells)
                sign = (
                    "; a currency sign or code is read only when the source declares its separators"
                    if decimal is None
                    and not thousands
                    and cells.str.contains(_CUR, regex=True).any()
                    else ""
                )
                hint = suggest_setting([str(v).strip() for v in cells.head(20)], decimal, thousands)
                problems.append(
                    _rows_problem(
                        name,
                        col.name,
                        s,
                        r.unreadable,
                        f"cannot read {eg} as a number with {where}{sign}; {hint}",
                        id_values,
                    )
                )
            if r.bad.any():
                flagged[(name, col.name)] = raw.index[r.bad.to_numpy()]
            out[col.name] = r.values
        else:
            text = (
                id_values
                if col.name == schema.id_column and id_values is not None
                else parse_text(s)
            )
            if col.kind == "category" or (name, col.name) in LOWER_COLUMNS:
                text = text.str.lower()
            elif col.name == "currency":
                text = text.str.upper()
            out[col.name] = text
    frame = pd.DataFrame(out, index=raw.index)
    return frame, problems, flagged


def canonicalise(
    raw: Mapping[str, pd.DataFrame],
    *,
    timezone: str,
    mappings: Mapping[str, Any] | None = None,
    date_format: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    excel: bool = False,
) -> Canonical:
    """Canonicalise every table of ``raw`` (unknown table names are ignored).

    ``mappings`` maps table name -> :class:`kpireport.data.sources.TableMapping`
    (or anything with ``columns``, ``values`` and ``date_format`` attributes).
    """
    result = Canonical({})
    for name, df in raw.items():
        if name not in SCHEMAS:
            continue
        m = (mappings or {}).get(name)
        frame, problems, flagged = canonicalise_table(
            name,
            df,
            timezone=timezone,
            columns=getattr(m, "columns", None),
            values=getattr(m, "values", None),
            date_format=getattr(m, "date_format", None) or date_format,
            decimal=decimal,
            thousands=thousands,
            excel=excel,
        )
        result.tables[name] = frame
        result.problems.extend(problems)
        result.flagged.update(flagged)
    return result
