# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploring KPIs
#
# This notebook shows how to use `kpireport` as a library: load a source, compute any KPI for any scope and period, evaluate goals, forecast and plot. Everything is a pandas DataFrame or Series; every chart is a matplotlib figure.

# %% tags=["parameters"]
# Parameters: any kpireport source (folder, workbook, database URL, source YAML).
# "demo": the demo CRM is written (Parquet) to a temporary folder and used.
source = "demo"
period = "2026-10"
as_of = "2026-11-30"
language = "en"

# %% [markdown]
# ## 1. Load and validate a source
#
# `kpireport.load` validates the data contract and raises one error listing every problem.

# %%
import pandas as pd

import kpireport
from kpireport.report import views

pd.options.display.float_format = "{:,.2f}".format  # 263,500.00, never 2.635000e+05
if source == "demo":
    source = str(views.demo_source(as_of=as_of))
data = kpireport.load(source)
pd.Series({str(name): len(df) for name, df in data.tables.items()}, name="rows")

# %% [markdown]
# ## 2. The KPI catalogue

# %%
kpireport.list_kpis()[["label", "unit", "better", "additive"]]

# %% [markdown]
# ## 3. Compute KPIs for any scope
#
# Tidy long form: `kpi, scope, scope_id, period, value, unit, note, name, period_start`; `kpireport.pivot_kpis(kpis)` gives the wide view.

# %%
kpis = kpireport.compute_kpis(
    data,
    [period],
    by="team",
    kpis=["won_value", "deals_won", "hit_rate", "sales_cycle_days"],
    as_of=as_of,
)
kpis.head(12)

# %%
# a report section: displayed, and its numbers recorded for `kpireport run`
views.show(views.explore.overview(data, period, as_of, language))

# %% [markdown]
# ## 4. Goals at the as-of date

# %%
goals = kpireport.evaluate_goals(data, as_of=as_of, scope="team", current_only=True)
goals[["kpi", "scope_id", "period", "target", "actual", "forecast", "probability", "status"]]

# %% [markdown]
# ## 5. A monthly series and its forecast

# %%
series = kpireport.kpi_series(data, "won_value", grain="month", end=period, as_of=as_of)
from kpireport import forecast

fc = forecast(series, horizon=6)
print(fc.attrs.get("model"))
fc.round(0)

# %% [markdown]
# ## 6. Plot

# %%
from kpireport.plots import kpi_trend

kpi_trend(
    series.iloc[-24:],
    forecast=fc,
    unit="currency",
    currency=data.currency,
    kpi="won_value",
    language=language,
)
