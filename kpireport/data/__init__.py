"""Stage 1: load CRM data from a source and validate it against the contract.

Modules: :mod:`~kpireport.data.schema` (the contract as data),
:mod:`~kpireport.data.model` (``CrmData``), :mod:`~kpireport.data.sources`
(finding and reading a source), :mod:`~kpireport.data.coerce` (canonical
types), :mod:`~kpireport.data.load` (``load``), :mod:`~kpireport.data.validate`
(``validate``). The demo CRM that produces such data is :mod:`kpireport.demo`
(above this stage; nothing here imports it). The functions
``load`` and ``validate`` are re-exported at the package root
(``kpireport.load``); ``kpireport.data.load`` is the module.
"""

from kpireport.data.model import CrmData

__all__ = ["CrmData"]
