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

# %% [markdown] tags=["remove-cell"]
# <!-- Management pack: rendered by kpireport; code cells are hidden. -->

# %% tags=["parameters"]
# Parameters, injected by `kpireport run`; these defaults run on the demo data.
# source: data source ("demo": the fictional demo CRM; there is no fallback);
# period: absolute label (docs/PERIODS.md); as_of: logical date YYYY-MM-DD; language: en or nl.
source = "demo"
period = "2026-10"
as_of = "2026-11-30"
language = "en"
# history: the run history (history.sqlite), set by `kpireport run`; it grades last
# month's forecast. Empty: no grading.
history = ""

# %%
from kpireport.report.views import load_data, show
from kpireport.report.views import management as report

ctx = report.context(load_data(source, as_of), period, as_of, language, history=history)

# %%
show(report.summary(ctx))

# %%
show(report.attainment(ctx))

# %%
show(report.teams(ctx))

# %%
show(report.risks(ctx))

# %%
show(report.forecast(ctx))

# %%
show(report.goal_quality(ctx))
