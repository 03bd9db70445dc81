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
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # kpireport dashboard
#
# The live dashboard as a notebook: run it in JupyterLab to see it inline, or serve it with
# `panel serve dashboard.ipynb` (every visitor of that server shares one load of the data).
# Logins and scope grants are `kpireport serve --auth`'s job; see docs/DASHBOARD.md.

# %% tags=["parameters"]
# parameters
source = "demo"  # folder, workbook, source YAML or database URL; "demo": the demo company
as_of = "2026-11-20"  # the dashboard's today
goals = None  # optional goals file

# %%
import panel as pn

from kpireport.dashboard.notebook import app

pn.extension()
app(source, as_of=as_of, goals=goals).servable(title="kpireport dashboard")
