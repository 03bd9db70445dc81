"""Presentation logic of the report notebooks: numbers → cards, tables, charts and sentences.

A report notebook is thin (docs/ARCHITECTURE.md, "thin notebooks"): its
parameters cell, one cell building the report's context, and one cell per
section calling that section's public function::

    from kpireport.report.views import load_data, show, team as report

    ctx = report.context(load_data(source, as_of), team, period, as_of, language)
    show(report.summary(ctx))

Everything a reader sees — which KPIs, which comparisons, which goals, the
sentences — is decided in this package, where it can be imported, reused and
tested:

* :mod:`~kpireport.report.views.base`: :class:`Section`, :class:`ReportView`,
  :func:`show`, rendering and loading;
* :mod:`~kpireport.report.views.blocks`: numbers, formatting and the building
  blocks shared by the reports (KPI cards, goal tables, development curves,
  track record);
* one module per report: :mod:`~kpireport.report.views.team`,
  :mod:`~kpireport.report.views.seller`,
  :mod:`~kpireport.report.views.management`,
  :mod:`~kpireport.report.views.finance`, and
  :mod:`~kpireport.report.views.explore` for the exploration notebook.

The ``*_view`` functions build every section of a report at once (tests, the
dashboard's PDF). See docs/REPORTS.md ("Customising a report").
"""

from __future__ import annotations

from kpireport.report.views import explore, finance, management, seller, team
from kpireport.report.views.base import (
    CHART_DPI,
    ReportContext,
    ReportView,
    Section,
    demo_source,
    empty_kpis,
    figure_html,
    load_data,
    no_data,
    show,
    vt,
)
from kpireport.report.views.blocks import (
    HEADLINE_KPIS,
    TEAM_COLUMNS,
    development_curve_figure,
    goal_remarks,
    goal_sentence,
    goal_table,
    grouped_cards,
    growth_text,
    kpi_card_block,
    track_record_section,
)
from kpireport.report.views.explore import explore_overview
from kpireport.report.views.finance import CLV_CARD_KPIS, finance_growth_view
from kpireport.report.views.management import (
    ORG_CARD_KPIS,
    goal_quality_section,
    management_pack_view,
)
from kpireport.report.views.seller import SELLER_CARD_KPIS, seller_scorecard_view
from kpireport.report.views.team import TEAM_CARD_KPIS, team_report_view

# helpers the dashboard (kpireport.dashboard.pages) and tests use from the former views.py
from kpireport.report.views.blocks import _activity_need as _activity_need  # isort: skip
from kpireport.report.views.blocks import _fmt as _fmt  # isort: skip
from kpireport.report.views.blocks import _open_pipeline as _open_pipeline  # isort: skip

__all__ = [
    "CHART_DPI",
    "HEADLINE_KPIS",
    "CLV_CARD_KPIS",
    "ORG_CARD_KPIS",
    "SELLER_CARD_KPIS",
    "TEAM_CARD_KPIS",
    "TEAM_COLUMNS",
    "ReportContext",
    "ReportView",
    "Section",
    "demo_source",
    "development_curve_figure",
    "empty_kpis",
    "explore",
    "explore_overview",
    "figure_html",
    "finance",
    "finance_growth_view",
    "goal_quality_section",
    "goal_remarks",
    "goal_sentence",
    "goal_table",
    "grouped_cards",
    "growth_text",
    "kpi_card_block",
    "load_data",
    "management",
    "management_pack_view",
    "no_data",
    "seller",
    "seller_scorecard_view",
    "show",
    "team",
    "team_report_view",
    "track_record_section",
    "vt",
]
