"""Translations and locale formatting for reports (English and Dutch).

Design decisions
----------------
* **One catalogue in code.** Every label, heading and sentence template the
  reports show lives in :data:`MESSAGES` as ``key -> {language: text}``. A dict
  in code (not YAML files) keeps the catalogue importable inside report kernels
  without package-data look-ups, and a test checks that every key exists in
  every language. Keys are namespaced: ``kpi.*`` (KPI labels), ``status.*``
  (goal statuses), ``heading.*``, ``axis.*``, ``legend.*``, ``col.*`` (table
  columns), ``sentence.*`` (templates filled with :meth:`str.format`), ...
* **Strict look-ups.** :func:`t` raises :class:`I18nError` for an unknown key so
  a typo fails a test instead of printing a raw key in a PDF; pass
  ``default=`` for text that may legitimately be missing (e.g. a KPI added by
  a user). :func:`kpi_label` humanises unknown KPI names instead of failing.
* **Babel does the locale work.** English uses the ``en_GB`` locale (day-month
  order, ``€1,234.56``) and Dutch ``nl_NL`` (``€ 1.234,56``, ``maart 2025``).
  Babel separates symbol and amount with a *non-breaking* space (U+00A0) in
  Dutch; we keep it so a value never wraps across lines in a card or table.
  Compact English amounts use the ``en_US`` short forms (``€1.2M``, ``€250K``)
  because ``en_GB`` writes ``€1.2m``, which readers confuse with "milli".
* **Missing values** (``None``, ``NaN``, ``pd.NA``, ``NaT``) format as an en dash
  ``"–"`` everywhere (docs/KPIS.md: undefined ratios are shown as "–").
* **Percentages are fractions**: ``fmt_percent(0.123) == "12.3%"``, matching the
  KPI engine, which returns hit rates and growth as fractions.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.numbers import (
    format_compact_currency,
    format_compact_decimal,
    format_currency,
    format_decimal,
    get_currency_symbol,
)

from kpireport.constants import LANGUAGE_LOCALES
from kpireport.errors import ParamsError

log = logging.getLogger("kpireport")

#: the languages reports can be written in, with the Babel locale of each
#: (declared once in :data:`kpireport.constants.LANGUAGE_LOCALES`)
LANGUAGES: dict[str, str] = LANGUAGE_LOCALES
DEFAULT_LANGUAGE = "en"
#: what a missing or undefined value is shown as
MISSING = "\u2013"


class I18nError(ParamsError):
    """An unknown language or an unknown translation key was requested."""


# --------------------------------------------------------------------- catalogue
def _m(en: str, nl: str) -> dict[str, str]:
    return {"en": en, "nl": nl}


#: every translatable text: key -> {language: text}
MESSAGES: dict[str, dict[str, str]] = {
    # --- KPI labels (docs/KPIS.md and the activity/pipeline KPIs)
    "kpi.new_leads": _m("New leads", "Nieuwe leads"),
    "kpi.new_organisations": _m("New organisations", "Nieuwe organisaties"),
    "kpi.sql": _m("Sales-qualified leads", "Gekwalificeerde leads (SQL)"),
    "kpi.hit_rate": _m("Hit rate", "Hitrate"),
    "kpi.sales_cycle_days": _m("Sales cycle", "Verkoopcyclus"),
    "kpi.sales_cycle_days_median": _m("Median sales cycle", "Mediane verkoopcyclus"),
    "kpi.avg_deal_value": _m("Average deal value", "Gemiddelde dealwaarde"),
    "kpi.cac": _m("Customer acquisition cost", "Klantacquisitiekosten"),
    "kpi.clv": _m("Customer lifetime value", "Klantlevensduurwaarde"),
    "kpi.revenue": _m("Revenue", "Omzet"),
    "kpi.revenue_growth_mom": _m(
        "Revenue growth vs previous period", "Omzetgroei t.o.v. vorige periode"
    ),
    "kpi.revenue_growth_yoy": _m("Revenue growth vs last year", "Omzetgroei t.o.v. vorig jaar"),
    "kpi.revenue_growth_ytd": _m("Revenue growth year to date", "Omzetgroei lopend jaar"),
    "kpi.meetings_booked": _m("Meetings booked", "Geboekte afspraken"),
    "kpi.quotes_sent": _m("Quotes sent", "Verstuurde offertes"),
    "kpi.calls_made": _m("Calls made", "Gevoerde belgesprekken"),
    "kpi.deals_won": _m("Deals won", "Gewonnen deals"),
    "kpi.deals_lost": _m("Deals lost", "Verloren deals"),
    "kpi.won_value": _m("Order intake", "Orderintake"),
    "kpi.pipeline_value": _m("Pipeline value", "Pijplijnwaarde"),
    "kpi.weighted_pipeline": _m("Weighted pipeline", "Gewogen pijplijn"),
    "kpi.lead_conversion": _m("Lead-to-deal conversion", "Conversie lead naar deal"),
    "kpi.new_customers": _m("New customers", "Nieuwe klanten"),
    "kpi.costs": _m("Costs", "Kosten"),
    "kpi.leads_needed": _m("Leads needed", "Benodigde leads"),
    # --- goal statuses
    "status.achieved": _m("Achieved", "Behaald"),
    "status.on_track": _m("On track", "Op koers"),
    "status.at_risk": _m("At risk", "Risico"),
    "status.off_track": _m("Off track", "Uit koers"),
    "status.missed": _m("Missed", "Niet gehaald"),
    "status.no_data": _m("No data", "Geen gegevens"),
    # --- scopes
    "scope.organisation": _m("Organisation", "Organisatie"),
    "scope.team": _m("Team", "Team"),
    "scope.seller": _m("Seller", "Verkoper"),
    "scope.customer": _m("Customer", "Klant"),
    # --- report titles and headings
    "report.team_report": _m("Team report", "Teamrapport"),
    "report.management_pack": _m("Management pack", "Managementrapportage"),
    "report.finance_growth": _m("Revenue growth", "Omzetgroei"),
    "report.seller_scorecard": _m("Seller scorecard", "Scorekaart verkoper"),
    "report.explore": _m("Exploring KPIs", "KPI's verkennen"),
    "heading.key_figures": _m("Key figures", "Kerncijfers"),
    "heading.goals": _m("Goals", "Doelen"),
    "heading.goal_attainment": _m("Goal attainment", "Doelrealisatie"),
    "heading.development_curve": _m("Development curve", "Ontwikkelingscurve"),
    "heading.seller_leaderboard": _m("Seller leaderboard", "Ranglijst verkopers"),
    "heading.funnel": _m("Funnel", "Trechter"),
    "heading.activity_vs_need": _m("Activity vs need", "Activiteit versus behoefte"),
    "heading.pipeline": _m("Pipeline", "Pijplijn"),
    "heading.revenue_growth": _m("Revenue growth", "Omzetgroei"),
    "heading.seasonal_view": _m(
        "This year vs last year by month", "Dit jaar versus vorig jaar per maand"
    ),
    "heading.top_customers": _m("Top customers", "Topklanten"),
    "heading.teams": _m("Teams", "Teams"),
    "heading.risks": _m("Risks", "Risico's"),
    "heading.forecast": _m("Forecast", "Prognose"),
    "heading.quarter_forecast": _m("Forecast for the quarter", "Prognose voor het kwartaal"),
    "heading.trend": _m("Trend", "Trend"),
    "heading.hit_rate_trend": _m("Hit rate trend", "Verloop hitrate"),
    "heading.activities": _m("Activities", "Activiteiten"),
    "heading.no_data": _m("No data for this period", "Geen gegevens voor deze periode"),
    "heading.period": _m("Period", "Periode"),
    "heading.as_of": _m("As of", "Peildatum"),
    "heading.generated": _m("Generated", "Gemaakt op"),
    # --- chart axes
    "axis.date": _m("Date", "Datum"),
    "axis.day": _m("Day", "Dag"),
    "axis.week": _m("Week", "Week"),
    "axis.month": _m("Month", "Maand"),
    "axis.quarter": _m("Quarter", "Kwartaal"),
    "axis.year": _m("Year", "Jaar"),
    "axis.count": _m("Number", "Aantal"),
    "axis.stage": _m("Stage", "Fase"),
    "stage.unknown": _m("Stage unknown", "Fase onbekend"),
    "axis.funnel_count": _m("Number of leads and deals", "Aantal leads en deals"),
    "axis.cumulative": _m("{kpi}, cumulative", "{kpi}, cumulatief"),
    "axis.attainment": _m("Attainment (% of target)", "Realisatie (% van doel)"),
    "axis.growth": _m("Growth (%)", "Groei (%)"),
    "axis.with_unit": _m("{label} ({unit})", "{label} ({unit})"),
    "unit.count": _m("number", "aantal"),
    "unit.percent": _m("%", "%"),
    "unit.days": _m("days", "dagen"),
    "unit.ratio": _m("ratio", "verhouding"),
    "unit.n_days": _m("{value} days", "{value} dagen"),
    "unit.one_day": _m("{value} day", "{value} dag"),
    # --- chart legends and annotations
    "legend.actual": _m("Actual", "Werkelijk"),
    "legend.actual_to_date": _m("Actual to date", "Werkelijk tot nu"),
    "legend.linear_pace": _m("Linear pace", "Lineair tempo"),
    "legend.seasonal_pace": _m("Seasonal pace", "Seizoenstempo"),
    "legend.forecast": _m("Forecast", "Prognose"),
    "legend.band_80": _m("80% interval", "80%-interval"),
    "legend.band_95": _m("95% interval", "95%-interval"),
    "legend.target": _m("Target", "Doel"),
    "legend.target_value": _m("Target {value}", "Doel {value}"),
    "legend.as_of": _m("As of {date}", "Peildatum {date}"),
    "legend.forecast_end": _m("Forecast {value}", "Prognose {value}"),
    "legend.history": _m("History", "Historie"),
    "legend.weighted": _m("Weighted by probability", "Gewogen met kans"),
    "legend.unweighted": _m("Unweighted", "Ongewogen"),
    "legend.forecast_attainment": _m("Forecast at period end", "Prognose einde periode"),
    "legend.actual_attainment": _m("Actual to date", "Werkelijk tot nu"),
    "legend.at_most": _m("at most", "hoogstens"),
    "growth.mom": _m("vs previous period", "t.o.v. vorige periode"),
    "growth.yoy": _m("vs last year", "t.o.v. vorig jaar"),
    "growth.ytd": _m("year to date vs last year", "lopend jaar t.o.v. vorig jaar"),
    "funnel.leads": _m("Leads", "Leads"),
    "funnel.sql": _m("Qualified leads", "Gekwalificeerde leads"),
    "funnel.deals": _m("Deals", "Deals"),
    "funnel.won": _m("Won", "Gewonnen"),
    "funnel.conversion": _m("{pct} of the step before", "{pct} van de vorige stap"),
    # --- table columns
    "col.kpi": _m("KPI", "KPI"),
    "col.goal": _m("Goal", "Doel"),
    "col.target": _m("Target", "Doel"),
    "col.actual": _m("Actual", "Werkelijk"),
    "col.pace": _m("Expected by now", "Verwacht tot nu"),
    "col.forecast": _m("Forecast", "Prognose"),
    "col.forecast_range": _m("80% range", "80%-bereik"),
    "col.probability": _m("Probability", "Kans"),
    "col.run_rate_needed": _m("Needed per day", "Nodig per dag"),
    "col.attainment": _m("Attainment", "Realisatie"),
    "col.status": _m("Status", "Status"),
    "col.team": _m("Team", "Team"),
    "col.seller": _m("Seller", "Verkoper"),
    "col.customer": _m("Customer", "Klant"),
    "col.stage": _m("Stage", "Fase"),
    "col.value": _m("Value", "Waarde"),
    "col.period": _m("Period", "Periode"),
    "col.previous": _m("Previous period", "Vorige periode"),
    "col.last_year": _m("Last year", "Vorig jaar"),
    "col.lint": _m("Remark", "Opmerking"),
    # --- card texts
    "card.vs_previous": _m("vs previous period", "t.o.v. vorige periode"),
    "card.vs_last_year": _m("vs last year", "t.o.v. vorig jaar"),
    "card.of_goal": _m("{pct} of goal", "{pct} van doel"),
    # --- goal lint
    "lint.unrealistic": _m("Target looks unrealistic", "Doel lijkt onhaalbaar"),
    "lint.unambitious": _m("Target looks unambitious", "Doel lijkt weinig ambitieus"),
    "lint.not_agreed": _m("Not yet agreed", "Nog niet afgesproken"),
    "lint.not_accepted": _m("Not yet agreed", "Nog niet afgesproken"),
    "lint.inactive_owner": _m(
        "the seller is not active in the goal's period",
        "de verkoper is in de periode van het doel niet actief",
    ),
    "lint.undercommitted": _m(
        "the goals below it add up to {gap} less", "de doelen eronder tellen op tot {gap} minder"
    ),
    "lint.overcommitted": _m(
        "the goals below it add up to {gap} more", "de doelen eronder tellen op tot {gap} meer"
    ),
    "goal.growth_vs": _m("{growth} vs {period}", "{growth} t.o.v. {period}"),
    "heading.remarks": _m("Remarks", "Opmerkingen"),
    "category.activity": _m("Activity", "Activiteit"),
    "category.result": _m("Results", "Resultaten"),
    "category.efficiency": _m("Efficiency", "Efficiëntie"),
    "kpi.prospect_hit_rate": _m("Prospect hit rate", "Hitrate prospects"),
    "kpi.products_per_customer": _m("Products per customer", "Producten per klant"),
    "kpi.customer_tenure_months": _m("Customer tenure (months)", "Klantduur (maanden)"),
    "heading.goal_quality": _m("Goal quality", "Kwaliteit van de doelen"),
    "heading.track_record": _m("Track record", "Resultaten over tijd"),
    "col.remark": _m("Remark", "Opmerking"),
    "col.chance": _m("Chance", "Kans"),
    "col.streak": _m("Streak", "Reeks"),
    "quality.intro": _m(
        "Goals that run now or start soon, checked before they are agreed (SMART): "
        "{n} of {total} need a look.",
        "Doelen die nu lopen of binnenkort beginnen, gecontroleerd voordat ze worden "
        "afgesproken (SMART): {n} van {total} verdienen aandacht.",
    ),
    "quality.all_good": _m(
        "All {total} goals that run now or start soon are agreed, realistic and add up.",
        "Alle {total} doelen die nu lopen of binnenkort beginnen zijn afgesproken, haalbaar en "
        "tellen op.",
    ),
    "quality.unrealistic": _m("unrealistic", "onhaalbaar"),
    "quality.unambitious": _m("unambitious", "weinig ambitieus"),
    "quality.asks": _m("asks {growth} vs last year", "vraagt {growth} t.o.v. vorig jaar"),
    "quality.history": _m("last {n} years {lo} to {hi}", "laatste {n} jaar {lo} tot {hi}"),
    "quality.history_one": _m("the year before {lo}", "het jaar ervoor {lo}"),
    "quality.raised": _m("past goals {growth} a year", "eerdere doelen {growth} per jaar"),
    "quality.not_agreed": _m("not yet agreed", "nog niet afgesproken"),
    "col.record": _m("Last goals, oldest first", "Laatste doelen, oudste eerst"),
    "col.reached": _m("Reached", "Gehaald"),
    "grain.month": _m("monthly", "maandelijkse"),
    "grain.quarter": _m("quarterly", "kwartaal"),
    "grain.week": _m("weekly", "wekelijkse"),
    "grain.year": _m("yearly", "jaarlijkse"),
    "grain.day": _m("daily", "dagelijkse"),
    "grain.span": _m("span", "periode"),
    "track.sentence": _m(
        "{reached} of the last {n} {grain} {kpi} goals reached; {streak}.",
        "{reached} van de laatste {n} {grain} doelen voor {kpi} gehaald; {streak}.",
    ),
    "track.hit_streak": _m("{k} in a row", "{k} op rij"),
    "track.miss_streak": _m("{k} missed in a row", "{k} op rij gemist"),
    "track.hit_one": _m("the last one reached", "het laatste gehaald"),
    "track.miss_one": _m("the last one missed", "het laatste gemist"),
    "grain_label.month": _m("monthly", "per maand"),
    "grain_label.quarter": _m("quarterly", "per kwartaal"),
    "grain_label.week": _m("weekly", "per week"),
    "grain_label.year": _m("yearly", "per jaar"),
    "grain_label.day": _m("daily", "per dag"),
    "grain_label.span": _m("date span", "datumperiode"),
    "track.reached_of": _m("{reached} of {n}", "{reached} van {n}"),
    "track.none": _m("No finished goals yet.", "Nog geen afgeronde doelen."),
    "track.goal": _m("{kpi}, {grain}", "{kpi}, {grain}"),
    "quality.undercommitted_team": _m(
        "the team goals add up to {gap} less", "de teamdoelen tellen op tot {gap} minder"
    ),
    "quality.overcommitted_team": _m(
        "the team goals add up to {gap} more", "de teamdoelen tellen op tot {gap} meer"
    ),
    "quality.undercommitted_seller": _m(
        "its sellers' goals add up to {gap} less",
        "de doelen van de verkopers tellen op tot {gap} minder",
    ),
    "quality.overcommitted_seller": _m(
        "its sellers' goals add up to {gap} more",
        "de doelen van de verkopers tellen op tot {gap} meer",
    ),
    # --- periods
    "period.quarter": _m("Q{quarter} {year}", "Q{quarter} {year}"),
    "period.week": _m("week {week}, {year}", "week {week}, {year}"),
    "period.ytd": _m("Year to date, to {date}", "Lopend jaar tot en met {date}"),
    "period.span": _m("{start} – {end}", "{start} – {end}"),
    # --- generated sentences
    "sentence.goal_reached": _m(
        "{scope} reached {pct} of its {kpi} goal.",
        "{scope} behaalde {pct} van het doel voor {kpi}.",
    ),
    "sentence.goal_forecast": _m(
        "{scope} is forecast to reach {pct} of its {kpi} goal by the end of {period} "
        "(probability of reaching it: {prob}).",
        "{scope} haalt naar verwachting {pct} van het doel voor {kpi} aan het eind van {period} "
        "(kans om het te halen: {prob}).",
    ),
    "sentence.run_rate_needed": _m(
        "To reach the target, {scope} needs {value} per day for the rest of the period.",
        "Om het doel te halen heeft {scope} de rest van de periode {value} per dag nodig.",
    ),
    "sentence.vs_previous": _m(
        "{kpi} was {value}, {delta} versus the previous period.",
        "{kpi} was {value}, {delta} ten opzichte van de vorige periode.",
    ),
    "sentence.vs_last_year": _m(
        "{kpi} was {value}, {delta} versus the same period last year.",
        "{kpi} was {value}, {delta} ten opzichte van dezelfde periode vorig jaar.",
    ),
    "sentence.leads_needed": _m(
        "At its current conversion, {scope} needs {n} more leads to reach its {kpi} goal.",
        "Bij de huidige conversie heeft {scope} nog {n} leads nodig om het doel voor {kpi} te halen.",
    ),
    "sentence.goals_summary": _m(
        "{achieved} of {total} goals achieved, {on_track} on track, {at_risk} at risk "
        "and {off_track} off track.",
        "{achieved} van {total} doelen behaald, {on_track} op koers, {at_risk} met risico "
        "en {off_track} uit koers.",
    ),
    "sentence.no_goals": _m(
        "No goals were set for this period.", "Voor deze periode zijn geen doelen gesteld."
    ),
    "sentence.no_risks": _m(
        "No goals are at risk or off track.", "Geen doelen met risico of uit koers."
    ),
    "sentence.kpi_unavailable": _m(
        "{kpi} is unavailable: {reason}.", "{kpi} is niet beschikbaar: {reason}."
    ),
    "sentence.data_as_of": _m("Data up to and including {date}.", "Gegevens tot en met {date}."),
}

#: texts of the report views (kpireport.report.views), keyed without their ``view.`` prefix
VIEW_MESSAGES: dict[str, dict[str, str]] = {
    "summary": {"en": "Summary", "nl": "Samenvatting"},
    "quarter_curve": {"en": "Development curve, {period}", "nl": "Ontwikkelingscurve, {period}"},
    "no_headline_goal": {
        "en": "No order-intake goal was set for this period.",
        "nl": "Voor deze periode is geen doel voor orderintake gesteld.",
    },
    "likely": {"en": "likely", "nl": "waarschijnlijk"},
    "possible": {"en": "possible", "nl": "mogelijk"},
    "unlikely": {"en": "unlikely", "nl": "onwaarschijnlijk"},
    "pace_sentence": {
        "en": "So far {scope} has reached {pct} of its {kpi} goal for {period}; at the current pace it is {chance} ({prob}) to make it.",
        "nl": "{scope} heeft tot nu toe {pct} van het doel voor {kpi} in {period} behaald; in het huidige tempo is het {chance} ({prob}) dat het doel gehaald wordt.",
    },
    "goals_closed": {
        "en": "{achieved} of {total} goals for {period} were achieved, {missed} were missed.",
        "nl": "{achieved} van {total} doelen voor {period} behaald, {missed} niet gehaald.",
    },
    "goal_chart_note": {
        "en": "Volume goals of the organisation and the teams; rate, cycle and cost goals are on the cards and in the tables.",
        "nl": "Volumedoelen van de organisatie en de teams; ratio-, doorlooptijd- en kostendoelen staan op de kaarten en in de tabellen.",
    },
    "graded_in": {
        "en": "Last month we forecast {forecast} of order intake for {period} (80 % range {lo} – {hi}); the actual is {actual}, inside the range.",
        "nl": "Vorige maand voorspelden we {forecast} orderintake voor {period} (80 %-bereik {lo} – {hi}); het werkelijke cijfer is {actual}, binnen het bereik.",
    },
    "graded_out": {
        "en": "Last month we forecast {forecast} of order intake for {period} (80 % range {lo} – {hi}); the actual is {actual}, outside the range.",
        "nl": "Vorige maand voorspelden we {forecast} orderintake voor {period} (80 %-bereik {lo} – {hi}); het werkelijke cijfer is {actual}, buiten het bereik.",
    },
    "funnel_note": {
        "en": "What happened in {period} at each step (leads created, leads qualified, deals created, deals won): a snapshot of the month, not one group of leads followed through, so a step can exceed the one before.",
        "nl": "Wat er in {period} bij elke stap gebeurde (leads aangemaakt, leads gekwalificeerd, deals aangemaakt, deals gewonnen): een momentopname van de maand, niet één groep leads gevolgd, dus een stap kan groter zijn dan de vorige.",
    },
    "pipeline_asof": {
        "en": "Deals open on {date}, by stage; the pipeline value card above shows the end of {period}.",
        "nl": "Open deals op {date}, per fase; de kaart Pijplijnwaarde hierboven toont het einde van {period}.",
    },
    "pipeline_unknown": {
        "en": "Deals open on {date} that have closed since are shown as “Stage unknown”: the CRM export keeps only their current stage and probability, so their stage and weighted value on that day are not known.",
        "nl": "Deals die op {date} open waren en sindsdien gesloten zijn, staan onder “Fase onbekend”: de CRM-export bewaart alleen hun huidige fase en kans, dus hun fase en gewogen waarde op die dag zijn niet bekend.",
    },
    "final_sentence_hit": {
        "en": "{scope} reached {pct} of its {kpi} goal for {period}: goal achieved.",
        "nl": "{scope} behaalde {pct} van het doel voor {kpi} in {period}: doel gehaald.",
    },
    "final_sentence_miss": {
        "en": "{scope} reached {pct} of its {kpi} goal for {period}; {gap} short of the target.",
        "nl": "{scope} behaalde {pct} van het doel voor {kpi} in {period}; {gap} onder het doel.",
    },
    "need_sentence": {
        "en": "To reach the {kpi} goal for {period}, {scope} still needs about {deals} won deals: {leads} new leads, {meetings} meetings and {quotes} quotes at its usual conversion.",
        "nl": "Om het doel voor {kpi} in {period} te halen heeft {scope} nog ongeveer {deals} gewonnen deals nodig: {leads} nieuwe leads, {meetings} afspraken en {quotes} offertes bij de gebruikelijke conversie.",
    },
    "need_done": {
        "en": "{scope} has already reached its {kpi} goal for {period}; no further activity is needed for it.",
        "nl": "{scope} heeft het doel voor {kpi} in {period} al gehaald; daarvoor is geen extra activiteit nodig.",
    },
    "col.needed": {"en": "Still needed", "nl": "Nog nodig"},
    "col.done": {"en": "Done in {period}", "nl": "Gedaan in {period}"},
    "col.rate": {"en": "Usual rate", "nl": "Gebruikelijke ratio"},
    "col.activity": {"en": "Activity", "nl": "Activiteit"},
    "col.rank": {"en": "#", "nl": "#"},
    "col.share": {"en": "Share", "nl": "Aandeel"},
    "col.growth_mom": {"en": "vs prev. month", "nl": "t.o.v. vorige maand"},
    "col.growth_yoy": {"en": "vs last year", "nl": "t.o.v. vorig jaar"},
    "col.growth_ytd": {"en": "YTD vs last year", "nl": "Lopend jaar t.o.v. vorig jaar"},
    "col.revenue_ytd": {"en": "Revenue YTD", "nl": "Omzet lopend jaar"},
    "col.revenue_ytd_ly": {"en": "Same span last year", "nl": "Zelfde periode vorig jaar"},
    "need.deals": {"en": "Won deals", "nl": "Gewonnen deals"},
    "need.opportunities": {
        "en": "Closed deals (won + lost)",
        "nl": "Afgesloten deals (gewonnen + verloren)",
    },
    "need.leads": {"en": "New leads", "nl": "Nieuwe leads"},
    "need.meetings": {"en": "Meetings", "nl": "Afspraken"},
    "need.quotes": {"en": "Quotes", "nl": "Offertes"},
    "risks_intro": {
        "en": "{n} goals need attention: they are at risk, off track or were missed.",
        "nl": "{n} doelen vragen aandacht: ze lopen risico, zijn uit koers of werden niet gehaald.",
    },
    "quarter_intro": {
        "en": "Forecast for {period} at {date}: actual to date plus the simulated rest of the quarter.",
        "nl": "Prognose voor {period} op {date}: werkelijk tot nu plus de gesimuleerde rest van het kwartaal.",
    },
    "trend_org": {"en": "Order intake by month", "nl": "Orderintake per maand"},
    "won_trend": {"en": "Order intake by month", "nl": "Orderintake per maand"},
    "growth_org": {
        "en": "Revenue in {period} was {value}: {mom} vs the previous month, {yoy} vs the same month last year; year to date {ytd} vs the same span last year.",
        "nl": "De omzet in {period} was {value}: {mom} t.o.v. de vorige maand, {yoy} t.o.v. dezelfde maand vorig jaar; lopend jaar {ytd} t.o.v. dezelfde periode vorig jaar.",
    },
    "growth_by_team": {"en": "Growth by team", "nl": "Groei per team"},
    "top_customers_intro": {
        "en": "The {n} largest customers by revenue year to date; growth compares like for like with the same span last year.",
        "nl": "De {n} grootste klanten naar omzet in het lopende jaar; de groei vergelijkt met dezelfde periode vorig jaar.",
    },
    "new_customer": {"en": "new", "nl": "nieuw"},
    "teams_intro": {
        "en": "Key figures of every team in {period}.",
        "nl": "Kerncijfers per team in {period}.",
    },
    "unknown_scope": {
        "en": "{scope} has no sellers in the data.",
        "nl": "{scope} heeft geen verkopers in de gegevens.",
    },
    "activity_goals": {"en": "Activity vs goals", "nl": "Activiteit versus doelen"},
    "ytd_curve_note": {
        "en": "The forecast cone shows the 80 % and 95 % intervals of the simulated period total.",
        "nl": "De prognosewaaier toont de 80%- en 95%-intervallen van het gesimuleerde periodetotaal.",
    },
    "explore_intro": {
        "en": "KPIs of the organisation and every team in {period}.",
        "nl": "KPI's van de organisatie en elk team in {period}.",
    },
}

MESSAGES.update({f"view.{key}": text for key, text in VIEW_MESSAGES.items()})


# ------------------------------------------------------------------- languages
def check_language(language: str | None) -> str:
    """Normalise a language code (``"NL"``, ``"nl-NL"``, ``"en_GB"``) to ``en``/``nl``.

    Raises
    ------
    I18nError
        When the language is not supported.
    """
    code = str(language if language is not None else DEFAULT_LANGUAGE).strip()
    base = code.replace("-", "_").split("_")[0].lower()
    if base not in LANGUAGES:
        raise I18nError(
            f"The language '{code}' is not supported.",
            hint="Use one of: " + ", ".join(sorted(LANGUAGES)) + ".",
        )
    return base


def locale_for(language: str) -> Locale:
    """The Babel :class:`~babel.Locale` used to format numbers and dates in ``language``."""
    return Locale.parse(LANGUAGES[check_language(language)])


def compact_locale(language: str) -> str:
    """The Babel locale of compact amounts: ``en_US`` for English (``€1.2M``, not ``€1.2m``)."""
    lang = check_language(language)
    return "en_US" if lang == "en" else LANGUAGES[lang]


def t(key: str, language: str = DEFAULT_LANGUAGE, *, default: str | None = None, **fmt: Any) -> str:
    """Translate ``key`` into ``language`` and fill its ``{placeholders}``.

    Parameters
    ----------
    key
        A key of :data:`MESSAGES`, e.g. ``"heading.goals"`` or ``"status.on_track"``.
    language
        ``"en"`` or ``"nl"``.
    default
        Text (itself a template) used when ``key`` is unknown; without it an
        unknown key raises.
    **fmt
        Values for the placeholders; format numbers first with the ``fmt_*``
        functions so they follow the locale.

    Raises
    ------
    I18nError
        Unknown language, unknown key (without ``default``) or a missing placeholder.
    """
    lang = check_language(language)
    entry = MESSAGES.get(key)
    if entry is None:
        if default is None:
            raise I18nError(
                f"There is no translation for '{key}'.", hint="Add it to kpireport.i18n.MESSAGES."
            )
        text = default
    else:
        text = entry[lang]
    try:
        return text.format(**fmt)
    except KeyError as exc:
        raise I18nError(f"The text '{key}' needs the value {exc.args[0]!r}.") from exc


def kpi_label(kpi: str, language: str = DEFAULT_LANGUAGE, in_sentence: bool = False) -> str:
    """Label of a KPI; an unknown KPI name is humanised (``leads_by_source`` -> ``Leads by source``).

    ``in_sentence=True`` lower-cases the first letter for use mid-sentence
    (``its order intake goal``) unless the label starts with an acronym (``SQL``).
    """
    label = t(f"kpi.{kpi}", language, default=str(kpi).replace("_", " ").capitalize())
    if in_sentence and len(label) > 1 and not label[1].isupper():
        label = label[0].lower() + label[1:]
    return label


def status_label(status: str | None, language: str = DEFAULT_LANGUAGE) -> str:
    """Label of a goal status; ``None``/NaN means ``no_data``."""
    key = "no_data" if is_missing(status) else str(status)
    return t(f"status.{key}", language, default=key.replace("_", " ").capitalize())


# ------------------------------------------------------------------ formatting
def is_missing(x: object) -> bool:
    """True for ``None``, ``NaN``, ``pd.NA``, ``NaT`` and infinities."""
    if x is None:
        return True
    try:
        if pd.isna(x):  # type: ignore[arg-type]
            return True
    except (TypeError, ValueError):
        return False
    if isinstance(x, int | float):
        return math.isinf(float(x))
    return False


def _round_half_up(value: float, places: int) -> Decimal:
    """Round half away from zero (Babel alone rounds half to even: 4.25 -> 4.2)."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)


def fmt_number(x: object, language: str = DEFAULT_LANGUAGE, decimals: int | None = None) -> str:
    """Format a number with the locale's grouping and decimal separators.

    ``decimals=None`` shows whole numbers without decimals and others with up
    to two (``1,234`` / ``1,234.5``); an integer fixes the number of decimals.

    >>> fmt_number(1234567.891, "nl", decimals=1)
    '1.234.567,9'
    """
    if is_missing(x):
        return MISSING
    loc = locale_for(language)
    value = _round_half_up(float(x), 2 if decimals is None else decimals)  # type: ignore[arg-type]
    if decimals is None:
        pattern = "#,##0.##"
    else:
        pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return format_decimal(value, format=pattern, locale=loc)


def fmt_compact(x: object, language: str = DEFAULT_LANGUAGE, digits: int = 1) -> str:
    """Short form of a large number: ``1.2M`` (en), ``1,2 mln.`` (nl)."""
    if is_missing(x):
        return MISSING
    lang = check_language(language)
    loc = compact_locale(lang)
    return format_compact_decimal(float(x), locale=loc, fraction_digits=digits)  # type: ignore[arg-type]


def currency_symbol(currency: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The symbol readers know for ``currency`` in ``language`` (``€``, ``US$``, ``SEK``)."""
    return get_currency_symbol(str(currency).upper(), locale=locale_for(language))


def fmt_currency(
    x: object,
    currency: str = "EUR",
    language: str = DEFAULT_LANGUAGE,
    compact: bool = False,
    decimals: int = 2,
) -> str:
    """Format an amount of money in the locale's style.

    >>> fmt_currency(1234.56, "EUR", "en")
    '€1,234.56'
    >>> fmt_currency(1234.56, "EUR", "nl") == "€\\xa01.234,56"
    True
    >>> fmt_currency(1_234_567, "EUR", "en", compact=True)
    '€1.2M'

    Parameters
    ----------
    compact
        Short form for axes and cards (``€1.2M``, ``€ 1,2 mln.``) with one decimal.
    decimals
        Decimals of the full form (``0`` for whole amounts).
    """
    if is_missing(x):
        return MISSING
    lang = check_language(language)
    cur = str(currency).upper()
    value = float(x)  # type: ignore[arg-type]
    if compact:
        loc = compact_locale(lang)
        if abs(value) < 1000:
            # below a thousand the compact form is just the rounded amount
            return fmt_currency(value, cur, lang, decimals=0)
        return format_compact_currency(value, cur, locale=loc, fraction_digits=1)
    loc = locale_for(lang)
    pattern = loc.currency_formats["standard"].pattern
    frac = "." + "0" * decimals if decimals > 0 else ""
    pattern = pattern.replace("#,##0.00", "#,##0" + frac)
    return format_currency(
        _round_half_up(value, decimals), cur, format=pattern, locale=loc, currency_digits=False
    )


def _significant_fraction_digits(value: float, significant: int) -> int:
    a = abs(value)
    scale = 1e12 if a >= 1e12 else 1e9 if a >= 1e9 else 1e6 if a >= 1e6 else 1e3
    mantissa = a / scale
    whole = 3 if mantissa >= 100 else 2 if mantissa >= 10 else 1
    return max(0, significant - whole)


def fmt_compact_currency(
    x: object, currency: str = "EUR", language: str = DEFAULT_LANGUAGE, significant: int = 3
) -> str:
    """Compact amount with ``significant`` digits: ``€1.25M``, ``€351K``, ``€ 1,75 mln.``.

    Used for chart labels, where ``€1.2M`` for a target of 1 250 000 would
    misstate it. Amounts below 1 000 are shown whole (``€999``).
    """
    if is_missing(x):
        return MISSING
    lang = check_language(language)
    value = float(x)  # type: ignore[arg-type]
    if abs(value) < 1000:
        return fmt_currency(value, currency, lang, decimals=0)
    digits = _significant_fraction_digits(value, significant)
    loc = compact_locale(lang)
    return format_compact_currency(value, str(currency).upper(), locale=loc, fraction_digits=digits)


def fmt_percent(
    x: object, language: str = DEFAULT_LANGUAGE, signed: bool = False, decimals: int = 1
) -> str:
    """Format a fraction as a percentage: ``0.123`` -> ``12.3%`` (en) / ``12,3%`` (nl).

    ``signed=True`` writes ``+12.3%`` / ``-4.0%`` (zero stays unsigned) for
    changes and growth rates.
    """
    if is_missing(x):
        return MISSING
    value = round(float(x) * 100, decimals)  # type: ignore[arg-type]
    if value == 0:
        value = 0.0  # no "-0.0%"
    body = fmt_number(abs(value) if signed else value, language, decimals=decimals) + "%"
    if signed:
        if value > 0:
            return "+" + body
        if value < 0:
            return "-" + body
    return body


def _as_date(d: object) -> dt.date:
    if isinstance(d, dt.datetime):
        return d.date()
    if isinstance(d, dt.date):
        return d
    return pd.Timestamp(d).date()  # type: ignore[arg-type]


def fmt_date(d: object, language: str = DEFAULT_LANGUAGE, style: str = "long") -> str:
    """Format a date: ``long`` -> ``31 March 2025`` / ``31 maart 2025``.

    ``style`` is a Babel style (``short``, ``medium``, ``long``, ``full``) or a
    CLDR skeleton such as ``"MMMd"`` (``31 Mar``).
    """
    if is_missing(d):
        return MISSING
    loc = locale_for(language)
    day = _as_date(d)
    if style in ("short", "medium", "long", "full"):
        return format_date(day, format=style, locale=loc)
    return format_skeleton(style, day, locale=loc)


def fmt_month(d: object, language: str = DEFAULT_LANGUAGE, short: bool = False) -> str:
    """Month and year: ``March 2025`` / ``maart 2025`` (``short``: ``Mar 2025`` / ``mrt 2025``)."""
    if is_missing(d):
        return MISSING
    return format_date(
        _as_date(d), format="LLL y" if short else "LLLL y", locale=locale_for(language)
    )


def month_names(language: str = DEFAULT_LANGUAGE, width: str = "abbreviated") -> list[str]:
    """The twelve stand-alone month names (January first) in ``language``."""
    names: Mapping[int, str] = locale_for(language).months["stand-alone"][width]
    return [names[i] for i in range(1, 13)]


def fmt_period(label: object, language: str = DEFAULT_LANGUAGE, as_of: object = None) -> str:
    """Human name of a period label (docs/PERIODS.md).

    ``2026`` -> ``2026``; ``2026-Q4`` -> ``Q4 2026``; ``2026-10`` -> ``October 2026``
    / ``oktober 2026``; ``2026-W43`` -> ``week 43, 2026``; ``2026-10-15`` ->
    ``15 October 2026``; ``2026-YTD-10-15`` -> ``Year to date, to 15 October 2026``;
    ``2026-12-01..2027-02-28`` -> ``1 December 2026 – 28 February 2027``.
    Accepts a :class:`~kpireport.periods.Period` too; relative names need ``as_of``.
    """
    from kpireport.constants import Grain
    from kpireport.periods import parse_period

    lang = check_language(language)
    if is_missing(label):
        return MISSING
    p = parse_period(label, as_of)  # type: ignore[arg-type]
    if p.is_date_span:
        return t("period.span", lang, start=fmt_date(p.start, lang), end=fmt_date(p.last_day, lang))
    if p.is_span:
        return t("period.ytd", lang, date=fmt_date(p.last_day, lang))
    if p.grain == Grain.YEAR:
        return str(p.start.year)
    if p.grain == Grain.QUARTER:
        return t("period.quarter", lang, quarter=(p.start.month - 1) // 3 + 1, year=p.start.year)
    if p.grain == Grain.MONTH:
        return fmt_month(p.start, lang)
    if p.grain == Grain.WEEK:
        year, week, _ = p.start.isocalendar()
        return t("period.week", lang, week=week, year=year)
    return fmt_date(p.start, lang)


def fmt_days(x: object, language: str = DEFAULT_LANGUAGE, decimals: int = 1) -> str:
    """A duration in days: ``12.5 days`` / ``12,5 dagen`` (``1 day`` singular)."""
    if is_missing(x):
        return MISSING
    value = float(x)  # type: ignore[arg-type]
    text = fmt_number(value, language, decimals=0 if value == round(value) else decimals)
    key = "unit.one_day" if value == 1 else "unit.n_days"
    return t(key, language, value=text)


def fmt_value(
    x: object,
    unit: str = "count",
    currency: str = "EUR",
    language: str = DEFAULT_LANGUAGE,
    compact: bool = False,
) -> str:
    """Format a KPI value by its unit (``count``, ``currency``, ``percent``, ``days``, ``ratio``).

    Counts are whole numbers (one decimal if fractional, e.g. a forecast);
    currency is shown in whole units (cents are noise in a KPI); percentages
    are fractions with one decimal; days with one decimal; ratios with two.
    """
    if is_missing(x):
        return MISSING
    unit = str(unit)
    if unit == "currency":
        if compact:
            return fmt_compact_currency(x, currency, language)
        return fmt_currency(x, currency, language, decimals=0)
    if unit == "percent":
        return fmt_percent(x, language)
    if unit == "days":
        return fmt_days(x, language)
    if unit == "ratio":
        return fmt_number(x, language, decimals=2)
    if unit != "count":
        log.warning("Unknown unit %r; formatting %r as a number.", unit, x)
    value = float(x)  # type: ignore[arg-type]
    if compact and abs(value) >= 10_000:
        return fmt_compact(value, language, digits=_significant_fraction_digits(value, 3))
    return fmt_number(value, language, decimals=0 if value == round(value) else 1)


def unit_suffix(unit: str, currency: str = "EUR", language: str = DEFAULT_LANGUAGE) -> str:
    """What to write in an axis label's brackets for ``unit``: ``€``, ``%``, ``days``, ``number``."""
    if str(unit) == "currency":
        return currency_symbol(currency, language)
    return t(f"unit.{unit}", language, default=str(unit))


def axis_label(
    label: str, unit: str, currency: str = "EUR", language: str = DEFAULT_LANGUAGE
) -> str:
    """An axis label with its unit: ``Order intake (€)``, ``Hit rate (%)``."""
    return t("axis.with_unit", language, label=label, unit=unit_suffix(unit, currency, language))


__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "MESSAGES",
    "MISSING",
    "I18nError",
    "axis_label",
    "check_language",
    "compact_locale",
    "currency_symbol",
    "fmt_compact",
    "fmt_compact_currency",
    "fmt_currency",
    "fmt_date",
    "fmt_days",
    "fmt_month",
    "fmt_number",
    "fmt_percent",
    "fmt_period",
    "fmt_value",
    "is_missing",
    "kpi_label",
    "locale_for",
    "month_names",
    "status_label",
    "t",
    "unit_suffix",
]
