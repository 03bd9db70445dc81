"""The exploration notebook's overview: KPIs of the organisation and every team (one section)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from kpireport import i18n
from kpireport.constants import Scope
from kpireport.i18n import check_language, kpi_label
from kpireport.periods import parse_period
from kpireport.report.views.base import ReportView, Section, no_data, vt
from kpireport.report.views.blocks import TEAM_COLUMNS, _fmt, _tidy

if TYPE_CHECKING:
    from kpireport.data.model import CrmData


def overview(data: CrmData, period: str, as_of: str, language: str = "en") -> Section:
    """A table of :data:`~kpireport.report.views.blocks.TEAM_COLUMNS` for the organisation and every team."""
    from kpireport.kpis import compute_kpis, pivot_kpis
    from kpireport.plots import html_table

    lang = check_language(language)
    p = parse_period(period, as_of)
    kpis = list(TEAM_COLUMNS)
    df = pd.concat(
        [
            compute_kpis(data, [p], by=by, kpis=kpis, as_of=as_of)
            for by in (Scope.ORGANISATION, Scope.TEAM)
        ],
        ignore_index=True,
    )
    s = Section("overview", i18n.t("heading.key_figures", lang))
    s.sentence(vt("explore_intro", lang, period=i18n.fmt_period(p.label, lang)))
    wide = pivot_kpis(df) if len(df) else df
    if isinstance(wide, pd.DataFrame) and len(wide):
        wide = wide.reset_index()
        keep = [c for c in wide.columns if c in ("scope", "scope_id", *kpis)]
        wide = wide[keep]
        fm = {k: (lambda v, k=k: _fmt(k, v, lang, data.currency)) for k in kpis}
        s.add(html_table(wide, fm, lang, columns={k: kpi_label(k, lang) for k in kpis}))
    else:
        s.add(no_data(lang))
    s.kpis = _tidy(df)
    return s


def explore_overview(data: CrmData, period: str, as_of: str, language: str = "en") -> ReportView:
    """A small overview for the exploration notebook: KPIs of the organisation and every team."""
    lang = check_language(language)
    view = ReportView(i18n.t("report.explore", lang), lang, [overview(data, period, as_of, lang)])
    view.kpis = view.sections[0].kpis
    return view
