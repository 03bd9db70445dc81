"""Vocabularies and column names, declared once.

Everything that is a closed set of strings in the product (scopes, grains,
deal statuses, goal statuses, units, KPI directions) is a ``StrEnum`` here so
that typos fail loudly and values compare equal to plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """Who a KPI or goal is about."""

    ORGANISATION = "organisation"
    TEAM = "team"
    SELLER = "seller"
    CUSTOMER = "customer"


class Grain(StrEnum):
    """Calendar granularity of a period or a time series."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


#: pandas frequency aliases for each grain (period starts).
GRAIN_FREQ: dict[Grain, str] = {
    Grain.DAY: "D",
    Grain.WEEK: "W-MON",
    Grain.MONTH: "MS",
    Grain.QUARTER: "QS",
    Grain.YEAR: "YS",
}

#: seasonal period length of a series at each grain (one year).
SEASON_LENGTH: dict[Grain, int] = {
    Grain.DAY: 7,
    Grain.WEEK: 52,
    Grain.MONTH: 12,
    Grain.QUARTER: 4,
    Grain.YEAR: 1,
}


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Direction(StrEnum):
    """Goal direction: reach at least the target, or stay at most at it."""

    AT_LEAST = "at_least"
    AT_MOST = "at_most"


class Better(StrEnum):
    """Whether a higher or a lower KPI value is better."""

    HIGHER = "higher"
    LOWER = "lower"


class Unit(StrEnum):
    COUNT = "count"
    CURRENCY = "currency"
    PERCENT = "percent"
    DAYS = "days"
    RATIO = "ratio"


class GoalStatus(StrEnum):
    ACHIEVED = "achieved"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"
    MISSED = "missed"
    NOT_STARTED = "not_started"
    NO_DATA = "no_data"


class Table(StrEnum):
    SELLERS = "sellers"
    COMPANIES = "companies"
    LEADS = "leads"
    DEALS = "deals"
    ACTIVITIES = "activities"
    REVENUE = "revenue"
    COSTS = "costs"
    GOALS = "goals"
    RATES = "rates"


#: the languages reports can be written in, with the Babel locale of each
#: (kpireport.i18n formats with these locales; its catalogue holds exactly these languages)
LANGUAGE_LOCALES: dict[str, str] = {"en": "en_GB", "nl": "nl_NL"}
#: the language codes alone, for argument choices (no Babel import at CLI start)
LANGUAGES: tuple[str, ...] = tuple(LANGUAGE_LOCALES)

ACTIVITY_TYPES = ("call", "meeting", "quote", "email")
COST_CATEGORIES = ("marketing", "sales", "events")

#: column names of the tidy KPI result (docs/ARCHITECTURE.md JSON record shape)
KPI_COLUMNS = ("kpi", "scope", "scope_id", "period", "value")
#: column names of a forecast frame (docs/FORECASTING.md)
FORECAST_COLUMNS = ("mean", "lo_80", "hi_80", "lo_95", "hi_95")
