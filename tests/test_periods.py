"""Periods (SPEC §4): labels, relative names, navigation, tiling properties."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpireport.constants import Grain
from kpireport.errors import PeriodError
from kpireport.periods import containing, parse_period, period_range

T = pd.Timestamp


@pytest.mark.parametrize(
    ("label", "start", "end", "grain"),
    [
        ("2026", "2026-01-01", "2027-01-01", Grain.YEAR),
        ("2026-Q4", "2026-10-01", "2027-01-01", Grain.QUARTER),
        ("2026-q1", "2026-01-01", "2026-04-01", Grain.QUARTER),
        ("2026-10", "2026-10-01", "2026-11-01", Grain.MONTH),
        ("2024-02", "2024-02-01", "2024-03-01", Grain.MONTH),
        ("2026-W43", "2026-10-19", "2026-10-26", Grain.WEEK),
        ("2026-W01", "2025-12-29", "2026-01-05", Grain.WEEK),  # ISO week 1 starts in 2025
        ("2020-W53", "2020-12-28", "2021-01-04", Grain.WEEK),
        ("2026-10-15", "2026-10-15", "2026-10-16", Grain.DAY),
    ],
)
def test_absolute_labels(label, start, end, grain):
    p = parse_period(label)
    assert (p.start, p.end, p.grain) == (T(start), T(end), grain)
    assert p.label == label.upper() if "q" in label else p.label == label


@pytest.mark.parametrize(
    "bad",
    ["2024-13", "2024-00", "2026-W54", "2025-W53", "2026-02-30", "26-10", "Q4", "", "next-month"],
)
def test_invalid_labels_are_refused(bad):
    with pytest.raises(PeriodError, match="not a valid period"):
        parse_period(bad)


@pytest.mark.parametrize(
    ("name", "as_of", "label"),
    [
        ("current-month", "2026-11-30", "2026-11"),
        ("previous-month", "2026-12-01", "2026-11"),
        ("previous-month", "2026-01-15", "2025-12"),
        ("current-quarter", "2026-11-30", "2026-Q4"),
        ("previous-quarter", "2026-01-02", "2025-Q4"),
        ("current-week", "2026-11-30", "2026-W49"),
        ("previous-week", "2026-11-30", "2026-W48"),
        ("current-year", "2026-03-01", "2026"),
        ("yesterday", "2026-03-01", "2026-02-28"),
    ],
)
def test_relative_names(name, as_of, label):
    assert parse_period(name, as_of=as_of).label == label


def test_relative_without_as_of_is_refused():
    with pytest.raises(PeriodError, match="needs an as-of date"):
        parse_period("previous-month")


def test_ytd_span_and_last_year():
    p = parse_period("ytd", as_of="2026-03-15")
    assert (p.start, p.end) == (T("2026-01-01"), T("2026-03-16"))
    ly = p.last_year()
    assert (ly.start, ly.end) == (T("2025-01-01"), T("2025-03-16"))
    assert parse_period("2026-03").ytd().end == T("2026-04-01")


def test_navigation():
    assert parse_period("2026-01").previous().label == "2025-12"
    assert parse_period("2026-Q1").previous().label == "2025-Q4"
    assert parse_period("2026-10").last_year().label == "2025-10"
    assert parse_period("2026-W01").previous().label == "2025-W52"
    assert parse_period("2020-W53").last_year().label == "2019-W52"  # 2019 has 52 weeks
    assert parse_period("2024-02-29").last_year().label == "2023-02-28"
    assert [p.label for p in parse_period("2026-Q4").subperiods("month")] == [
        "2026-10",
        "2026-11",
        "2026-12",
    ]


def test_membership_is_half_open():
    p = parse_period("2026-10")
    assert T("2026-10-31 23:59:59") in p
    assert T("2026-11-01 00:00") not in p
    assert T("2026-10-01 00:00") in p


def test_elapsed_share():
    p = parse_period("2026-11")  # 30 days
    assert p.elapsed_share("2026-11-15") == pytest.approx(0.5)
    assert p.elapsed_share("2026-10-15") == 0.0
    assert p.elapsed_share("2026-12-15") == 1.0


dates = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 12, 31))


@settings(max_examples=200, deadline=None)
@given(d=dates, grain=st.sampled_from(list(Grain)))
def test_containing_period_holds_the_day_and_round_trips(d, grain):
    p = containing(d, grain)
    assert T(d) in p
    assert parse_period(p.label) == p


@settings(max_examples=100, deadline=None)
@given(d=dates, grain=st.sampled_from(list(Grain)), n=st.integers(1, 30))
def test_periods_tile_time_without_gaps_or_overlaps(d, grain, n):
    first = containing(d, grain)
    periods = [first]
    for _ in range(n):
        periods.append(periods[-1].next())
    for a, b in zip(periods, periods[1:], strict=False):
        assert a.end == b.start  # no gap, no overlap
        assert a.start < a.end
    assert period_range(periods[0].label, periods[-1].label) == periods
    assert periods[-1].shift(-n) == first


def test_date_spans() -> None:
    from kpireport.errors import PeriodError as _PeriodError

    p = parse_period("2026-12-01..2027-02-28")
    assert (p.start, p.end, p.days, p.is_span, p.is_date_span) == (
        pd.Timestamp("2026-12-01"), pd.Timestamp("2027-03-01"), 90, True, True,
    )  # fmt: skip
    assert p.previous().label == "2026-09-02..2026-11-30"  # the 90 days before
    assert p.last_year().label == "2025-12-01..2026-02-28"
    # a span to the end of February ends at the end of February a year earlier, leap day included
    assert parse_period("2024-12-01..2025-02-28").last_year().label == "2023-12-01..2024-02-29"
    assert parse_period("2026-10-15..2026-10-15").days == 1
    with pytest.raises(_PeriodError, match="ends before it starts"):
        parse_period("2026-03-01..2026-02-01")
    with pytest.raises(_PeriodError):
        parse_period("2026-02-01..2026-02-30")


# ------------------------------------------- every period argument accepts the same things
@pytest.mark.parametrize(
    ("value", "label"),
    [
        (pd.Period("2026-10", "M"), "2026-10"),
        (pd.Period("2026Q4", "Q"), "2026-Q4"),
        (pd.Period("2026", "Y"), "2026"),
        (pd.Period("2026-10-15", "D"), "2026-10-15"),
        (pd.Period("2026-10-15", "W"), "2026-W42"),  # 12-18 October 2026
        (pd.Timestamp("2026-10-15 13:45"), "2026-10-15"),
        (dt.date(2026, 10, 15), "2026-10-15"),
        (dt.datetime(2026, 10, 15, 8), "2026-10-15"),
        (2026, "2026"),
    ],
)
def test_parse_period_accepts_pandas_periods_dates_and_int_years(value, label):
    assert parse_period(value).label == label


def test_parse_period_refuses_what_is_not_a_period():
    with pytest.raises(PeriodError, match="frequency h"):
        parse_period(pd.Period("2026-10-15 10:00", "h"))
    with pytest.raises(PeriodError, match="fiscal quarter"):
        parse_period(pd.Period("2026Q1", "Q-JAN"))  # February-April
    with pytest.raises(PeriodError, match="is not a period"):
        parse_period(20.5)
    with pytest.raises(PeriodError, match="is not a period"):
        parse_period(True)


def test_weeks_of_a_year_follow_the_iso_thursday_rule():
    weeks = parse_period("2026").subperiods("week")
    # 1 January 2026 is a Thursday: 2026-W01 runs 29 Dec 2025 - 4 Jan 2026 and is 2026's
    assert weeks[0].label == "2026-W01" and weeks[0].start == T("2025-12-29")
    assert weeks[-1].label == "2026-W53" and len(weeks) == 53  # 28 Dec 2026 - 3 Jan 2027
    # 1-3 January 2027 (Fri-Sun) are in 2026-W53: 2027's weeks start on Monday 4 January
    w27 = parse_period("2027").subperiods("week")
    assert w27[0].label == "2027-W01" and w27[0].start == T("2027-01-04") and len(w27) == 52
    # a month: the weeks whose Thursday is in it (October 2026: Thursdays 1, 8, 15, 22, 29)
    assert [p.label for p in parse_period("2026-10").subperiods("week")] == [
        "2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44",
    ]  # fmt: skip
    # a Saturday has no Thursday: the week that contains it
    assert [p.label for p in parse_period("2026-10-17").subperiods("week")] == ["2026-W42"]


def test_invalid_grain_lists_the_valid_ones():
    with pytest.raises(PeriodError, match="Valid grains: day, week, month, quarter, year"):
        parse_period("2026").subperiods("months")
    with pytest.raises(PeriodError, match="Unknown grain 'Months'"):
        containing("2026-10-15", "Months")
    assert containing("2026-10-15", " Month ").label == "2026-10"  # case and spaces forgiven
