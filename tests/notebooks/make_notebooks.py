"""Regenerate the purpose-named test notebooks of tests/test_report*.py (run: python tests/notebooks/make_notebooks.py)."""

from pathlib import Path

import nbformat as nbf

out = Path(__file__).resolve().parent
out.mkdir(parents=True, exist_ok=True)


def nb(cells, params=None):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.metadata["language_info"] = {"name": "python"}
    cs = []
    if params is not None:
        c = nbf.v4.new_code_cell(params)
        c.metadata["tags"] = ["parameters"]
        cs.append(c)
    for src in cells:
        if src.startswith("#md\n"):
            cs.append(nbf.v4.new_markdown_cell(src[4:]))
        else:
            cs.append(nbf.v4.new_code_cell(src))
    n.cells = cs
    return n


STD = """title = "Test report"
team = "North"
period = "2024-01"
as_of = "2024-02-15"
language = "en"
source = None
threshold: float = 1.5
count = 3
flag = False
"""

ok = nb(
    [
        "#md\n# Sales report\n\nThis notebook is executed by the test-suite.",
        """import html
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd

from kpireport.report.record import record_kpis

n_sellers = None
if source is not None:
    sellers = pd.read_parquet(Path(source).parent / "sellers.parquet")
    n_sellers = int((sellers["team"] == team).sum())
value = count * 1000 + (n_sellers or 0)
print(f"Team {team} in {period}: value {value}")""",
        """from IPython.display import HTML, display

display(HTML(
    '<div class="kpi-cards"><div class="kpi-card"><div class="kpi-label">Value</div>'
    f'<div class="kpi-value">{value:,}</div>'
    '<div class="kpi-delta up">+5 %</div></div></div>'
))""",
        """fig, ax = plt.subplots(figsize=(6, 3))
ax.plot([1, 2, 3], [1, 4, 9])
ax.set_xlabel("day")
ax.set_ylabel("value (EUR)")
plt.show()""",
        """table = pd.DataFrame({"team": [team], "value": [value], "threshold": [threshold], "flag": [flag]})
table""",
        """record_kpis(pd.DataFrame({"kpi": ["value", "sellers"], "scope": ["team", "team"],
                           "scope_id": [team, team], "period": [period, period],
                           "value": [float(value), float("nan") if n_sellers is None else float(n_sellers)]}))""",
        "#md\nEnd of report.",
    ],
    STD,
)
nbf.write(ok, out / "ok.ipynb")

raises = nb(
    [
        "x = 1",
        'raise ValueError("deliberate failure in raises.ipynb")',
        'print("never reached")',
    ],
    'team = "North"\nperiod = "2024-01"\n',
)
nbf.write(raises, out / "raises.ipynb")

sleeps = nb(
    [
        "import time\ntime.sleep(120)",
        'print("never reached")',
    ],
    'team = "North"\nperiod = "2024-01"\n',
)
nbf.write(sleeps, out / "sleeps.ipynb")

sys_exit = nb(
    [
        'print("before exit")',
        "import sys\nsys.exit(0)",
        'print("after exit")',
    ],
    'team = "North"\nperiod = "2024-01"\n',
)
nbf.write(sys_exit, out / "sys_exit.ipynb")

raise_se = nb(
    [
        'print("before exit")',
        "raise SystemExit",
        'print("after exit")',
    ],
    'team = "North"\nperiod = "2024-01"\n',
)
nbf.write(raise_se, out / "raise_system_exit.ipynb")

kills = nb(
    [
        'print("about to die")',
        "import os\nos.kill(os.getpid(), 9)",
        'print("never reached")',
    ],
    'team = "North"\nperiod = "2024-01"\n',
)
nbf.write(kills, out / "kills_kernel.ipynb")

nop = nb(['team = "North"', "print(team)"], None)
nbf.write(nop, out / "no_parameters.ipynb")

secret = nb(
    [
        """import os
for name in ("KPIREPORT_TEST_DB_PASSWORD", "KPIREPORT_TEST_API_TOKEN"):
    print(name, "=", os.environ.get(name, "<absent>"))
print("environment keys with PASSWORD:", [k for k in os.environ if "PASSWORD" in k])""",
    ],
    'team = "North"\nperiod = "2024-01"\nsource = None\n',
)
nbf.write(secret, out / "prints_secret.ipynb")
kills_worker = nb(
    [
        """import os
from pathlib import Path

import psutil

with open(attempts_file, "a") as f:  # one line per attempt
    f.write(f"{os.getpid()}\\n")
report_process = psutil.Process(os.getppid())  # the kernel's parent: the report process
worker = report_process.parent()  # its parent: the Dask worker
if worker.pid != int(runner_pid):  # never the test run itself
    worker.kill()""",
        'print("never reached")',
    ],
    'team = "North"\nperiod = "2024-01"\nattempts_file = ""\nrunner_pid = 0\n',
)
nbf.write(kills_worker, out / "kills_worker.ipynb")
print(sorted(p.name for p in out.iterdir()))
