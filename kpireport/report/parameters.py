"""Notebook parameters: what a notebook declares, coercing values to it, refusing secrets.

Design decisions (the run-definition side is in :mod:`kpireport.report.params`)
--------------------------------------------------------------------------------
* **Strings stay strings.** Run definitions are read as text
  (:func:`kpireport.problems.read_yaml`); each value is then converted by *the
  notebook's declared type* (annotation, else the type of the default):
  ``team: 007`` stays ``"007"`` and ``country: NO`` stays ``"NO"`` for string
  parameters, while ``top_n: 007`` becomes ``7`` for an ``int`` parameter. An
  untyped parameter with a ``None`` default keeps the text (annotate it, e.g.
  ``limit: int | None = None``, to get another type).
* **The notebook declares what it accepts.** Declared parameters come from
  ``papermill.inspect_notebook`` (the cell tagged ``parameters``); a notebook
  without one is refused. Unknown names are refused with a "did you mean"
  (papermill itself only warns and runs with the default: a report for the
  wrong period).
* **Only JSON primitives are injected** (``str``, ``int``, finite ``float``,
  ``bool``, ``None``); lists, mappings and anything else are refused, so a value
  can never become code.
* **Secrets are never parameters.** Names that look like credentials
  (password, token, secret, api key, ...) are refused, and so is any value
  equal to the value of such an environment variable. Environment values are
  never expanded into parameters.
"""

from __future__ import annotations

import ast
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpireport.errors import KpiReportError, ParamsError
from kpireport.periods import parse_period
from kpireport.problems import NULLS, did_you_mean

if TYPE_CHECKING:
    from kpireport.report.params import RunDef

#: parameters filled by the runner, never under ``parameters:``
CONTEXT_PARAMS = (
    "period", "as_of", "language", "source", "team", "seller", "output_root", "history",
)  # fmt: skip

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_INT = re.compile(r"^[-+]?\d+$")

_SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api_key",
    "credential",
    "private_key",
    "privatekey",
)
_SECRET_EXACT = {"pwd", "pass", "auth"}
#: environment variables that look like credentials but are not (``PWD`` is the working directory)
_NOT_SECRET_ENV = {"PWD", "OLDPWD"}


def looks_secret(name: str) -> bool:
    """True when a parameter or environment variable name looks like a credential."""
    low = str(name).lower().replace("-", "_")
    return low in _SECRET_EXACT or any(w in low for w in _SECRET_WORDS)


def secret_env_values(extra_names: Iterable[str] = ()) -> dict[str, str]:
    """Environment variables that hold secrets: credential-like names plus ``extra_names``.

    Values shorter than 4 characters are ignored (too short to recognise).
    """
    names = {n for n in os.environ if looks_secret(n) and n not in _NOT_SECRET_ENV} | set(
        extra_names
    )
    return {n: os.environ[n] for n in sorted(names) if len(os.environ.get(n, "")) >= 4}


# ------------------------------------------------------- declared params
@dataclass(frozen=True)
class ParamSpec:
    """One parameter a notebook declares in its ``parameters`` cell.

    ``kind`` is ``str``, ``int``, ``float``, ``bool``, ``any`` (untyped ``None``
    default: text is kept) or ``unsupported`` (a list/dict parameter).
    """

    name: str
    kind: str
    nullable: bool
    default: Any = None


_TYPE_NAMES = {"str": "str", "int": "int", "float": "float", "bool": "bool"}


def _spec_from_inspect(name: str, info: Mapping[str, Any]) -> ParamSpec:
    default_src = str(info.get("default") or "None")
    try:
        default = ast.literal_eval(default_src)
        literal = True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        default, literal = None, False
    annotation = str(info.get("inferred_type_name") or "None").replace(" ", "")
    if annotation != "None":
        m = re.fullmatch(r"Optional\[(\w+)\]", annotation)
        parts = [m[1], "None"] if m else annotation.split("|")
        nullable = "None" in parts or default is None
        kinds = {_TYPE_NAMES.get(p, "unsupported") for p in parts if p != "None"}
        kind = kinds.pop() if len(kinds) == 1 else "unsupported"
        return ParamSpec(name, kind, nullable, default)
    if not literal or default is None:
        return ParamSpec(name, "any", True, default)
    for typ, kind in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if isinstance(default, typ):
            return ParamSpec(name, kind, False, default)
    return ParamSpec(name, "unsupported", False, default)


def declared_parameters(notebook: Path) -> dict[str, ParamSpec]:
    """The parameters a notebook declares, by name.

    Raises
    ------
    ParamsError
        When the notebook cannot be read or has no cell tagged ``parameters``.
    """
    import nbformat
    import papermill

    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except (OSError, ValueError) as exc:
        raise ParamsError(f"The notebook '{notebook}' cannot be read: {exc}") from None
    if not any("parameters" in (c.get("metadata", {}).get("tags") or []) for c in nb.cells):
        raise ParamsError(
            f"The notebook '{notebook}' has no cell tagged 'parameters'.",
            hint="Tag the cell that sets the default parameters with 'parameters'.",
        )
    found = papermill.inspect_notebook(str(notebook))
    return {name: _spec_from_inspect(name, info) for name, info in found.items()}


def coerce(name: str, value: Any, spec: ParamSpec) -> Any:
    """Convert a YAML/CLI value to the type ``spec`` declares.

    Raises
    ------
    ValueError
        With a sentence saying what was expected.
    """
    if isinstance(value, (list, tuple, dict, set)):
        raise ValueError(f"parameter '{name}' must be a single value, not a {type(value).__name__}")
    if spec.kind == "unsupported":
        raise ValueError(
            f"parameter '{name}' is declared with a type that cannot be set from a run definition"
        )
    if value is None or (isinstance(value, str) and spec.kind != "str" and value.strip() in NULLS):
        if spec.nullable:
            return None
        raise ValueError(f"parameter '{name}' needs a {spec.kind} value, got nothing")
    if spec.kind in ("str", "any"):
        if isinstance(value, str):
            return value
        if spec.kind == "any" and isinstance(value, (bool, int, float)):
            return _finite(name, value)
        raise ValueError(f"parameter '{name}' must be text, got {value!r}")
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"parameter '{name}' must be true or false, got {value!r}")
    if spec.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT.match(value.strip()):
            return int(value.strip())
        raise ValueError(f"parameter '{name}' must be a whole number, got {value!r}")
    # float
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(name, float(value))
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
        if number is not None:
            return _finite(name, number)
    raise ValueError(f"parameter '{name}' must be a number, got {value!r}")


def _finite(name: str, v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"parameter '{name}' must be a finite number, got {v!r}")
    return v


def check_constants(run: RunDef, where: str, problems: list[str]) -> None:
    """Check and coerce a run's constant ``parameters:`` against its notebook's declaration.

    Appends one sentence to ``problems`` per credential-like name, context
    parameter set under ``parameters:``, undeclared name (with a "did you
    mean"), secret value or ill-typed value; the fan-out scope must be declared.
    """
    secrets = set(secret_env_values().values())
    for name, value in run.parameters.items():
        if looks_secret(name):
            problems.append(
                f"{where}: parameter '{name}' looks like a credential; secrets are never parameters "
                "(name an environment variable in the source file instead)."
            )
            continue
        if name in CONTEXT_PARAMS:
            problems.append(
                f"{where}: set '{name}' at the top level of the run definition (or on the command line), not under 'parameters'."
            )
            continue
        if name not in run.declared:
            problems.append(
                f"{where}: the notebook {run.notebook.name} has no parameter '{name}'"
                f"{did_you_mean(name, run.declared)}."
            )
            continue
        if isinstance(value, str) and value in secrets:
            problems.append(
                f"{where}: parameter '{name}' holds the value of a secret environment variable."
            )
            continue
        try:
            value = coerce(name, value, run.declared[name])
            if isinstance(value, str) and (name.endswith("_period")):
                value = parse_period(value, run.as_of).label
            run.parameters[name] = value
        except (ValueError, KpiReportError) as exc:
            problems.append(f"{where}: {exc}.")
    if run.fanout in ("team", "seller") and run.fanout not in run.declared:
        problems.append(
            f"{where}: fanout '{run.fanout}' needs the notebook {run.notebook.name} to declare a '{run.fanout}' parameter."
        )
