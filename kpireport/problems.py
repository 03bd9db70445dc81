"""Collecting every problem of a YAML file before raising once (run definitions, schedules).

Both ``params/*.yaml`` (:mod:`kpireport.report.params`) and
``params/schedules.yaml`` (:mod:`kpireport.schedule.config`) are read as
text-only YAML and checked key by key; every finding is a sentence naming the
file (and run or job) and the user fixes them all in one go. This module is
the one place for that: :func:`read_yaml` (every scalar stays text, duplicate
keys refused), :class:`Problems` (the collector and its field checks) and
:func:`did_you_mean`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from kpireport.errors import KpiReportError, ParamsError

#: YAML spellings of "no value" (``BaseLoader`` keeps them as text)
NULLS = frozenset({"", "~", "null", "Null", "NULL"})


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def null(value: Any) -> Any:
    """``None`` for a YAML null spelling (``~``, ``null``, empty), else ``value``."""
    return None if isinstance(value, str) and value.strip() in NULLS else value


def as_list(value: Any) -> list[str]:
    """A comma-separated string or a YAML list as a list of stripped strings."""
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, list):
        return [str(s).strip() for s in value]
    return []


# ------------------------------------------------------------------ YAML
class _StrictLoader(yaml.BaseLoader):
    """``BaseLoader`` (every scalar is text) that refuses duplicate keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise ParamsError(
                f"Duplicate key '{key}' at line {key_node.start_mark.line + 1} of {node.start_mark.name}."
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """Read a YAML file with every scalar kept as text and duplicate keys refused.

    Raises
    ------
    ParamsError
        When the file cannot be read, is not YAML or repeats a key.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ParamsError(f"The run definition '{path}' cannot be read: {exc.strerror}.") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - BaseLoader builds only str/list/dict
    except yaml.YAMLError as exc:
        raise ParamsError(f"The run definition '{path}' is not valid YAML: {exc}") from None


# ------------------------------------------------------------- collector
class Problems(list[str]):
    """Every problem found in a file, one sentence each; :meth:`raise_if_any` raises once.

    A list (helpers that take ``problems: list[str]`` append to it) with the
    field checks both YAML readers share.
    """

    def unknown_keys(self, doc: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
        """One problem per key of ``doc`` not in ``allowed``, with a "did you mean"."""
        allowed = list(allowed)
        for key in doc:
            if key not in allowed:
                self.append(f"{where}: unknown key '{key}'{did_you_mean(str(key), allowed)}.")

    def one_of(self, value: str, choices: Iterable[str], what: str, where: str) -> bool:
        """True when ``value`` is one of ``choices``; else a problem naming them."""
        choices = list(choices)
        if value in choices:
            return True
        self.append(
            f"{where}: {what} '{value}' is not one of {', '.join(choices)}"
            f"{did_you_mean(value, choices)}."
        )
        return False

    def seconds(self, value: Any, key: str, where: str, default: float) -> float:
        """A positive, finite number of seconds (``default`` when null or wrong)."""
        value = null(value)
        if value is None:
            return default
        try:
            f = float(value)
            if not math.isfinite(f) or f <= 0:
                raise ValueError
            return f
        except (TypeError, ValueError):
            self.append(f"{where}: '{key}' must be a positive number of seconds, got {value!r}.")
            return default

    def non_negative(self, value: Any, kind: type, where: str, default: Any) -> Any:
        """A non-negative ``int`` or ``float`` (``default`` when empty or wrong)."""
        if value is None or value == "":
            return default
        try:
            v = kind(str(value))
        except ValueError:
            self.append(f"{where}: '{value}' is not a {'whole ' if kind is int else ''}number.")
            return default
        if v < 0:
            self.append(f"{where}: '{value}' must not be negative.")
            return default
        return v

    def raise_if_any(self, error: type[KpiReportError], what: str) -> None:
        """Raise ``error`` with the one problem, or all of them under "The <what> has N problems"."""
        if not self:
            return
        if len(self) == 1:
            raise error(self[0])
        raise error(f"The {what} has {len(self)} problems:\n" + "\n".join("  - " + p for p in self))
