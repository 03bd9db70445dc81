"""Write the report notebooks of ``kpireport/resources/notebooks/`` with nbformat (run: ``python kpireport/resources/notebooks/build_notebooks.py``).

The notebooks are generated so that they stay thin, consistent and reviewable:
each is a ``parameters`` cell (exactly the parameters the runner injects, with
defaults that run on the demo data), one cell that builds the view with
:mod:`kpireport.report.views` and records the numbers shown, and one
``view.show(section)`` cell per section. No business logic lives here.
Generated notebooks carry no outputs; commit them as written.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
#: defaults of the demo: the demo data ends on 2026-11-30, so the last complete month is 2026-10
DEMO_AS_OF = "2026-11-30"
DEMO_PERIOD = "2026-10"

#: notebook metadata exactly as JupyterLab writes it for the ipykernel of the project's Python
#: (3.11, as in CI), so a notebook opens without the unsaved-changes marker
KERNEL = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": "3.11.7",
    },
}


def _params(*extra: str) -> str:
    lines = [
        "# Parameters, injected by `kpireport run`; these defaults run on the demo data.",
        '# source: data source ("demo": the fictional demo CRM; there is no fallback);',
        "# period: absolute label (docs/PERIODS.md); as_of: logical date YYYY-MM-DD; language: en or nl.",
        'source = "demo"',
        f'period = "{DEMO_PERIOD}"',
        f'as_of = "{DEMO_AS_OF}"',
        'language = "en"',
        *extra,
    ]
    return "\n".join(lines)


def _hidden(source: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def report_notebook(
    title: str, params: str, build: str, sections: list[str]
) -> nbformat.NotebookNode:
    """A thin report notebook: parameters, build the view, show each section."""
    nb = new_notebook(metadata=dict(KERNEL))
    nb.cells.append(
        new_markdown_cell(f"<!-- {title}: rendered by kpireport; code cells are hidden. -->")
    )
    nb.cells[-1].metadata["tags"] = ["remove-cell"]
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    nb.cells.append(
        _hidden(
            "from kpireport.report import views\n\n"
            "data = views.load_data(source, as_of)\n"
            f"view = {build}\n"
            "view.record()  # the numbers shown, for the KPI table of the report"
        )
    )
    for name in sections:
        nb.cells.append(new_code_cell(f'view.show("{name}")'))
    return nb


NOTEBOOKS = {
    "team_report": report_notebook(
        "Team report",
        _params("# team: team name (fan-out: every team)", 'team = "Mid-Market"'),
        "views.team_report_view(data, team, period, as_of, language)",
        [
            "summary",
            "development",
            "goals",
            "funnel",
            "leaderboard",
            "activity",
            "pipeline",
            "track_record",
        ],
    ),
    "seller_scorecard": report_notebook(
        "Seller scorecard",
        _params("# seller: seller id (fan-out: every seller)", 'seller = "S005"'),
        "views.seller_scorecard_view(data, seller, period, as_of, language)",
        ["summary", "goals", "track_record", "trend"],
    ),
    "management_pack": report_notebook(
        "Management pack",
        _params(
            "# output_root: the run's output folder, set by `kpireport run` (its history.sqlite",
            "# grades last month's forecast); empty: no grading",
            'output_root = ""',
        ),
        "views.management_pack_view(data, period, as_of, language, history=output_root or None)",
        ["summary", "attainment", "teams", "risks", "forecast", "goal_quality"],
    ),
    "finance_growth": report_notebook(
        "Finance growth report",
        _params("# top_n: number of top customers shown", "top_n = 10"),
        "views.finance_growth_view(data, period, as_of, language, top_n=top_n)",
        ["summary", "teams", "customers", "seasonal"],
    ),
}


def explore_notebook() -> nbformat.NotebookNode:
    """The analysts' notebook: load a source, compute any KPI for any scope, forecast, plot."""
    nb = new_notebook(metadata=dict(KERNEL))
    md = new_markdown_cell
    code = new_code_cell
    p = code(
        "# Parameters: any kpireport source (folder, workbook, database URL, source YAML).\n"
        '# "demo": the demo CRM is written (Parquet) to a temporary folder and used.\n'
        'source = "demo"\n'
        f'period = "{DEMO_PERIOD}"\n'
        f'as_of = "{DEMO_AS_OF}"\n'
        'language = "en"'
    )
    p.metadata["tags"] = ["parameters"]
    nb.cells = [
        md(
            "# Exploring KPIs\n\n"
            "This notebook shows how to use `kpireport` as a library: load a source, compute any KPI "
            "for any scope and period, evaluate goals, forecast and plot. Everything is a pandas "
            "DataFrame or Series; every chart is a matplotlib figure."
        ),
        p,
        md(
            "## 1. Load and validate a source\n\n`kpireport.load` validates the data contract and "
            "raises one error listing every problem."
        ),
        code(
            "import pandas as pd\n\n"
            "import kpireport\n"
            "from kpireport.report import views\n\n"
            'pd.options.display.float_format = "{:,.2f}".format  # 263,500.00, never 2.635000e+05\n'
            'if source == "demo":\n'
            "    source = str(views.demo_source(as_of=as_of))\n"
            "data = kpireport.load(source)\n"
            'pd.Series({str(name): len(df) for name, df in data.tables.items()}, name="rows")'
        ),
        md("## 2. The KPI catalogue"),
        code('kpireport.list_kpis()[["label", "unit", "better", "additive"]]'),
        md(
            "## 3. Compute KPIs for any scope\n\nTidy long form: `kpi, scope, scope_id, period, value, "
            "unit, note, name, period_start`; `kpireport.pivot_kpis(kpis)` gives the wide view."
        ),
        code(
            'kpis = kpireport.compute_kpis(data, [period], by="team", '
            'kpis=["won_value", "deals_won", "hit_rate", "sales_cycle_days"], as_of=as_of)\n'
            "kpis.head(12)"
        ),
        code(
            "from kpireport.report import record_kpis\n\n"
            "overview = views.explore_overview(data, period, as_of, language)\n"
            "record_kpis(overview.kpis)\n"
            'overview.show("overview")'
        ),
        md("## 4. Goals at the as-of date"),
        code(
            'goals = kpireport.evaluate_goals(data, as_of=as_of, scope="team", current_only=True)\n'
            'goals[["kpi", "scope_id", "period", "target", "actual", "forecast", "probability", "status"]]'
        ),
        md("## 5. A monthly series and its forecast"),
        code(
            'series = kpireport.kpi_series(data, "won_value", grain="month", end=period, as_of=as_of)\n'
            "from kpireport import forecast\n\n"
            "fc = forecast(series, horizon=6)\n"
            'print(fc.attrs.get("model"))\n'
            "fc.round(0)"
        ),
        md("## 6. Plot"),
        code(
            "from kpireport.plots import kpi_trend\n\n"
            'kpi_trend(series.iloc[-24:], forecast=fc, unit="currency", currency=data.currency, '
            'kpi="won_value", language=language)'
        ),
    ]
    return nb


def main() -> None:
    """Write every notebook next to this script."""
    for name, nb in {**NOTEBOOKS, "explore": explore_notebook()}.items():
        for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives no diff
            cell.id = f"{name.replace('_', '-')}-{i:02d}"
        nbformat.validate(nb)
        path = HERE / f"{name}.ipynb"
        path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
