"""The demo CRM: a deterministic simulator of a fictional B2B company, *Nordlys Systems Oy*.

It produces data in the canonical form of the contract (:mod:`kpireport.data.schema`),
three full years plus the ``as_of`` year, at any scale, from a seed::

    from kpireport import demo
    tables = demo.generate_demo(seed=7, scale=1.0, as_of="2026-11-30")  # dict of DataFrames
    data = demo.demo_data(as_of="2026-11-30")                            # CrmData
    src = demo.write_demo("out/", fmt="parquet")                         # out/source.yaml
    src = demo.demo_source(as_of="2026-12-02")                           # keyed temp folder

Modules: :mod:`~kpireport.demo.company` (the company and its teams),
:mod:`~kpireport.demo.names` (people and companies),
:mod:`~kpireport.demo.seasonality` (season, growth, working days, close dates),
:mod:`~kpireport.demo.generator` (the simulation), :mod:`~kpireport.demo.goals`
(targets as a planner sets them), :mod:`~kpireport.demo.columns` (arrays to
canonical columns), :mod:`~kpireport.demo.export` (files and source YAML) and
:mod:`~kpireport.demo.source` (the demo as ``CrmData`` or a keyed folder).

Design decisions
----------------
* **Outside the loading pipeline.** The demo *produces* data: it sits directly
  above ``data/`` in the stack (it uses the contract and ``CrmData``) and
  nothing in ``data/`` imports it (``tests/test_architecture.py``). The loader
  knows no source called ``"demo"``: ``kpireport.load("demo")`` is a missing
  path, with a hint pointing here.
* **Where the name "demo" is resolved.** The hand-off from the source name
  ``"demo"`` (``--source demo``, ``source: demo``, the notebooks' default) to
  this package lives in the callers above it, each importing
  ``kpireport.demo`` lazily: ``report`` (the runner's data loading,
  ``report.views.load_data`` and ``report.views.demo_source``, which the
  notebooks call), ``dashboard`` and ``cli``. A hand-off inside ``data.load``
  would be an import from a lower stage to a higher one (or a registry filled
  as a side effect of importing the demo), and the demo must never become a
  fallback for a missing source (docs/REPORTS.md, "No demo fallback").
* **Byte-identical across refactors.** The simulation's random draws happen in
  a fixed order; ``tests/test_demo.py`` pins a fingerprint of the default
  tables, so moving code around cannot change the demo silently.
"""

from kpireport.demo.company import CURRENCY, ORGANISATION, TIMEZONE
from kpireport.demo.export import FORMATS, write_demo
from kpireport.demo.generator import (
    BENCHMARK_SCALE,
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    TABLES,
    generate_demo,
)
from kpireport.demo.source import demo_data, demo_key, demo_source

__all__ = [
    "BENCHMARK_SCALE",
    "CURRENCY",
    "DEFAULT_AS_OF",
    "DEFAULT_SEED",
    "FORMATS",
    "ORGANISATION",
    "TABLES",
    "TIMEZONE",
    "demo_data",
    "demo_key",
    "demo_source",
    "generate_demo",
    "write_demo",
]
