"""Regenerate ``report.ipynb``, the purpose-built notebook of tests/test_schedule.py.

Run: ``.venv/bin/python tests/data/schedule/make_notebook.py``

The notebook is tiny on purpose (a kernel costs seconds). It declares every
context parameter a schedule run injects (``team`` for team fan-outs,
``seller`` for seller fan-outs) and two fault switches:

* ``fail_flag``: path of a file; while it exists and names this report's scope
  id, the notebook raises ``ValueError`` (a *deterministic* failure, like
  invalid data). Deleting the file "fixes the data" without changing the
  notebook or its parameters, so a re-run's cache key is unchanged.
* ``die_marker``: path of a file; when set and the file does not exist yet,
  the notebook creates it and kills its own kernel (a *transient* failure:
  the retry finds the marker and succeeds).

Recorded KPIs (``<report>.kpis.csv``), hand-checkable from the period label
``YYYY-MM``: ``hit_rate`` = 0.70 + month / 100 for the period (November:
0.81, December: 0.82) and a forecast of ``hit_rate`` for the *next* period:
mean 0.80, 80 % interval 0.71..0.89; ``deals`` = number of the scope's
sellers (organisation: all sellers); a goal status ``at_risk`` for the
organisation's ``hit_rate``.
"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

PARAMS = """source = None
period = "2026-11"
as_of = "2026-12-01"
language = "en"
team = ""
seller = ""
fail_flag = ""
die_marker = ""
"""

CELLS = [
    """import os
from pathlib import Path

import pandas as pd

from kpireport.report.record import record_kpis

scope_id = team or seller or None
scope = "team" if team else "seller" if seller else "organisation"
if fail_flag and Path(fail_flag).exists() and Path(fail_flag).read_text().strip() == str(scope_id):
    raise ValueError(f"invalid data for {scope_id}: deal D2 has no close date")
if die_marker and not Path(die_marker).exists():
    Path(die_marker).write_text("died once")
    os.kill(os.getpid(), 9)""",
    """sellers = pd.read_parquet(Path(source).parent / "sellers.parquet") if source else pd.DataFrame(
    {"seller_id": [], "team": []})
if team:
    n = int((sellers["team"] == team).sum())
elif seller:
    n = int((sellers["seller_id"] == seller).sum())
else:
    n = len(sellers)
year, month = (int(x) for x in period.split("-"))
hit_rate = round(0.70 + month / 100, 4)
nxt = f"{year + month // 12}-{month % 12 + 1:02d}"
print(f"{scope} {scope_id}: hit rate {hit_rate:.0%}, {n} sellers")""",
    """from IPython.display import HTML, display
import html as _html

display(HTML('<div class="kpi-cards"><div class="kpi-card"><div class="kpi-label">Hit rate</div>'
             f'<div class="kpi-value">{hit_rate:.0%}</div></div></div>'
             f'<p>Scope: {_html.escape(str(scope_id))}</p>'))""",
    """record_kpis(pd.DataFrame({
    "kpi": ["hit_rate", "deals", "hit_rate"],
    "scope": [scope] * 3,
    "scope_id": [scope_id] * 3,
    "period": [period, period, nxt],
    "value": [hit_rate, float(n), None],
    "forecast": [None, None, 0.80],
    "lo_80": [None, None, 0.71],
    "hi_80": [None, None, 0.89],
    "status": ["at_risk" if scope == "organisation" else "on_track", None, None],
}))""",
]


def main() -> None:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    p = nbf.v4.new_code_cell(PARAMS)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbf.v4.new_markdown_cell("# Schedule test report"), p]
    nb.cells += [nbf.v4.new_code_cell(src) for src in CELLS]
    nbf.write(nb, HERE / "report.ipynb")


if __name__ == "__main__":
    main()
