"""Lazy re-exports for package ``__init__`` modules (PEP 562), written once.

``kpireport``, ``kpireport.report`` and ``kpireport.schedule`` re-export
names from their sub-modules without importing them: a report kernel that
needs one small function does not pay for papermill, WeasyPrint or pandas.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``exports`` comes from its module.

    ``__dir__`` lists the module's ``__all__`` so that ``dir()`` and Jupyter's
    Tab completion show the lazy names.
    """

    def module_getattr(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def module_dir() -> list[str]:
        return sorted(getattr(importlib.import_module(package), "__all__", exports))

    return module_getattr, module_dir
