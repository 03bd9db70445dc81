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
# <!-- Seller scorecard: rendered by kpireport; code cells are hidden. -->

# %% tags=["parameters"]
# Parameters, injected by `kpireport run`; these defaults run on the demo data.
# source: data source ("demo": the fictional demo CRM; there is no fallback);
# period: absolute label (docs/PERIODS.md); as_of: logical date YYYY-MM-DD; language: en or nl.
source = "demo"
period = "2026-10"
as_of = "2026-11-30"
language = "en"
# seller: seller id (fan-out: every seller)
seller = "S005"

# %%
from kpireport.report.views import load_data, show
from kpireport.report.views import seller as report

ctx = report.context(load_data(source, as_of), seller, period, as_of, language)

# %%
show(report.summary(ctx))

# %%
show(report.goals(ctx))

# %%
show(report.track_record(ctx))

# %%
show(report.trend(ctx))
