"""Tests for kpireport.i18n: translations and locale formatting (en_GB / nl_NL via Babel).

Expected strings are what Babel produces; Dutch separates the currency symbol
with a non-breaking space (U+00A0), written ``NB`` below.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from kpireport import i18n
from kpireport.errors import KpiReportError, ParamsError
from kpireport.i18n import (
    MESSAGES,
    I18nError,
    fmt_compact_currency,
    fmt_currency,
    fmt_date,
    fmt_month,
    fmt_number,
    fmt_percent,
    fmt_period,
    fmt_value,
    kpi_label,
    t,
)

NB = "\u00a0"
DASH = "\u2013"


# ------------------------------------------------------------------ catalogue
def test_every_message_has_every_language_and_the_same_placeholders() -> None:
    import string

    for key, entry in MESSAGES.items():
        assert set(entry) == set(i18n.LANGUAGES), key
        fields = [
            {f for _, f, _, _ in string.Formatter().parse(entry[lang]) if f}
            for lang in i18n.LANGUAGES
        ]
        assert fields[0] == fields[1], key


def test_the_catalogue_holds_exactly_the_declared_languages() -> None:
    """constants.LANGUAGES (what the CLI offers without importing Babel) is the i18n list."""
    import argparse

    from kpireport import constants
    from kpireport.cli import demo

    assert constants.LANGUAGES == ("en", "nl")
    assert i18n.LANGUAGES is constants.LANGUAGE_LOCALES
    assert i18n.LANGUAGES == {"en": "en_GB", "nl": "nl_NL"}
    assert {lang for entry in MESSAGES.values() for lang in entry} == set(constants.LANGUAGES)
    sub = argparse.ArgumentParser().add_subparsers()
    demo.register(sub)
    (parser,) = sub.choices.values()
    (action,) = [a for a in parser._actions if a.dest == "language"]
    assert tuple(action.choices) == constants.LANGUAGES


@pytest.mark.parametrize(
    "kpi",
    [
        "new_leads",
        "new_organisations",
        "sql",
        "hit_rate",
        "sales_cycle_days",
        "avg_deal_value",
        "cac",
        "clv",
        "revenue",
        "revenue_growth_mom",
        "revenue_growth_yoy",
        "revenue_growth_ytd",
        "meetings_booked",
        "quotes_sent",
        "calls_made",
        "deals_won",
        "deals_lost",
        "won_value",
        "pipeline_value",
        "weighted_pipeline",
        "lead_conversion",
        "new_customers",
        "costs",
        "sales_cycle_days_median",
        "leads_needed",
    ],
)
def test_every_kpi_has_a_label_in_both_languages(kpi: str) -> None:
    assert f"kpi.{kpi}" in MESSAGES
    assert kpi_label(kpi, "en") and kpi_label(kpi, "nl")


def test_statuses_and_headings() -> None:
    assert [
        i18n.status_label(s, "nl")
        for s in ("achieved", "on_track", "at_risk", "off_track", "missed", "no_data")
    ] == [
        "Behaald",
        "Op koers",
        "Risico",
        "Uit koers",
        "Niet gehaald",
        "Geen gegevens",
    ]
    assert i18n.status_label(np.nan, "en") == "No data"
    assert t("heading.no_data", "en") == "No data for this period"
    assert t("heading.no_data", "nl") == "Geen gegevens voor deze periode"
    assert t("heading.seller_leaderboard", "nl") == "Ranglijst verkopers"


def test_sentence_template_in_both_languages() -> None:
    en = t(
        "sentence.goal_reached",
        "en",
        scope="North",
        pct=fmt_percent(0.87, "en"),
        kpi=kpi_label("won_value", "en", in_sentence=True),
    )
    nl = t(
        "sentence.goal_reached",
        "nl",
        scope="North",
        pct=fmt_percent(0.87, "nl"),
        kpi=kpi_label("won_value", "nl", in_sentence=True),
    )
    assert en == "North reached 87.0% of its order intake goal."
    assert nl == "North behaalde 87,0% van het doel voor orderintake."


def test_unknown_key_language_and_placeholder_are_clear_errors() -> None:
    with pytest.raises(I18nError, match="no translation for 'heading.nope'"):
        t("heading.nope")
    assert t("heading.nope", default="Fallback {x}", x=1) == "Fallback 1"
    with pytest.raises(I18nError, match="'fr' is not supported") as info:
        fmt_number(1, "fr")
    assert isinstance(info.value, ParamsError) and isinstance(info.value, KpiReportError)
    assert "en, nl" in str(info.value)
    with pytest.raises(I18nError, match="needs the value 'pct'"):
        t("card.of_goal", "en")


def test_language_codes_are_normalised() -> None:
    assert i18n.check_language("NL") == "nl"
    assert i18n.check_language("nl-NL") == "nl"
    assert i18n.check_language("en_GB") == "en"
    assert i18n.check_language(None) == "en"


def test_unknown_kpi_is_humanised_and_acronyms_keep_case() -> None:
    assert kpi_label("leads_by_source") == "Leads by source"
    assert kpi_label("sql", "nl", in_sentence=True) == "gekwalificeerde leads (SQL)"
    assert kpi_label("cac", "en", in_sentence=True) == "customer acquisition cost"


# ----------------------------------------------------------------- numbers
def test_currency_en_and_nl() -> None:
    assert fmt_currency(1234.56, "EUR", "en") == "€1,234.56"
    assert fmt_currency(1234.56, "EUR", "nl") == f"€{NB}1.234,56"
    assert fmt_currency(-1234.56, "EUR", "en") == "-€1,234.56"
    assert fmt_currency(-1234.56, "EUR", "nl") == f"€{NB}-1.234,56"
    assert fmt_currency(1234.56, "EUR", "nl", decimals=0) == f"€{NB}1.235"
    assert fmt_currency(0.125, "EUR", "en") == "€0.13"  # half away from zero, not to even
    assert fmt_currency(1234.5, "SEK", "en") == "SEK1,234.50"


def test_compact_currency() -> None:
    assert fmt_currency(1_234_567, "EUR", "en", compact=True) == "€1.2M"
    assert fmt_currency(1_234_567, "EUR", "nl", compact=True) == f"€{NB}1,2{NB}mln."
    assert fmt_currency(250_000, "EUR", "en", compact=True) == "€250K"
    assert fmt_currency(999, "EUR", "en", compact=True) == "€999"
    assert fmt_compact_currency(1_250_000, "EUR", "en") == "€1.25M"
    assert fmt_compact_currency(351_250, "EUR", "en") == "€351K"
    assert fmt_compact_currency(1_750_000, "EUR", "nl") == f"€{NB}1,75{NB}mln."


def test_numbers_and_percentages() -> None:
    assert fmt_number(1234567.891, "en") == "1,234,567.89"
    assert fmt_number(1234567.891, "nl") == "1.234.567,89"
    assert fmt_number(12.0, "nl") == "12"
    assert fmt_number(4.25, "en", decimals=1) == "4.3"
    assert fmt_percent(0.1234, "en") == "12.3%"
    assert fmt_percent(0.1234, "nl") == "12,3%"
    assert fmt_percent(0.05, "en", signed=True) == "+5.0%"
    assert fmt_percent(-0.04, "nl", signed=True) == "-4,0%"
    assert fmt_percent(-0.00001, "en", signed=True) == "0.0%"  # no "-0.0%"
    assert fmt_percent(1.5, "en", decimals=0) == "150%"


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, pd.NaT, float("inf")])
def test_missing_values_are_a_dash_everywhere(missing: object) -> None:
    assert fmt_number(missing) == DASH
    assert fmt_currency(missing, "EUR", "nl") == DASH
    assert fmt_currency(missing, "EUR", "en", compact=True) == DASH
    assert fmt_percent(missing, "en", signed=True) == DASH
    assert fmt_date(missing) == DASH
    assert fmt_month(missing, "nl") == DASH
    for unit in ("count", "currency", "percent", "days", "ratio"):
        assert fmt_value(missing, unit, "EUR", "nl") == DASH


def test_fmt_value_dispatches_on_unit() -> None:
    assert fmt_value(1234567.4, "currency", "EUR", "en") == "€1,234,567"
    assert fmt_value(1234567.4, "currency", "EUR", "nl") == f"€{NB}1.234.567"
    assert fmt_value(1234567.4, "currency", "EUR", "en", compact=True) == "€1.23M"
    assert fmt_value(0.253, "percent", language="nl") == "25,3%"
    assert fmt_value(12.55, "days", language="en") == "12.6 days"
    assert fmt_value(1, "days", language="nl") == "1 dag"
    assert fmt_value(3.14159, "ratio", language="nl") == "3,14"
    assert fmt_value(42, "count", language="en") == "42"
    assert fmt_value(1234.25, "count", language="nl") == "1.234,3"


# ------------------------------------------------------------------- dates
def test_dates_and_months() -> None:
    d = dt.date(2025, 3, 31)
    assert fmt_date(d, "en") == "31 March 2025"
    assert fmt_date(d, "nl") == "31 maart 2025"
    assert fmt_date(pd.Timestamp("2025-03-31 15:00"), "nl", "medium") == "31 mrt 2025"
    assert fmt_date("2025-03-31", "en", "short") == "31/03/2025"
    assert fmt_date(d, "nl", "MMMd") == "31 mrt"
    assert fmt_month(d, "en") == "March 2025"
    assert fmt_month(d, "nl") == "maart 2025"
    assert fmt_month("2026-11-01", "nl", short=True) == "nov 2026"
    assert i18n.month_names("nl")[:3] == ["jan", "feb", "mrt"]


@pytest.mark.parametrize(
    ("label", "en", "nl"),
    [
        ("2026", "2026", "2026"),
        ("2026-Q4", "Q4 2026", "Q4 2026"),
        ("2026-10", "October 2026", "oktober 2026"),
        ("2026-W43", "week 43, 2026", "week 43, 2026"),
        ("2026-10-15", "15 October 2026", "15 oktober 2026"),
        (
            "2026-YTD-10-15",
            "Year to date, to 15 October 2026",
            "Lopend jaar tot en met 15 oktober 2026",
        ),
    ],
)
def test_fmt_period(label: str, en: str, nl: str) -> None:
    assert fmt_period(label, "en") == en
    assert fmt_period(label, "nl") == nl


def test_fmt_period_relative_needs_as_of() -> None:
    from kpireport.errors import PeriodError

    assert fmt_period("previous-month", "nl", as_of="2026-11-18") == "oktober 2026"
    with pytest.raises(PeriodError):
        fmt_period("previous-month", "en")


def test_axis_label_has_unit() -> None:
    assert (
        i18n.axis_label(kpi_label("won_value", "nl"), "currency", "EUR", "nl") == "Orderintake (€)"
    )
    assert i18n.axis_label("Cycle", "days", "EUR", "en") == "Cycle (days)"
    assert i18n.axis_label("Revenue", "currency", "USD", "en") == "Revenue (US$)"


def test_compact_locale_uses_en_us_short_forms_for_english() -> None:
    assert i18n.compact_locale("en") == "en_US"  # en_GB would write €1.2m
    assert i18n.compact_locale("nl") == "nl_NL"
    with pytest.raises(I18nError):
        i18n.compact_locale("fr")
