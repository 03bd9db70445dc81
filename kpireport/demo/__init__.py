"""The demo CRM: a deterministic simulator of a fictional B2B company (moved from data/)."""

from kpireport.demo.generator import *  # noqa: F403
from kpireport.demo.generator import (
    BENCHMARK_SCALE,
    CURRENCY,
    DEFAULT_AS_OF,
    FORMATS,
    ORGANISATION,
    TABLES,
    TIMEZONE,
    demo_data,
    generate_demo,
    write_demo,
)

__all__ = [
    "BENCHMARK_SCALE",
    "CURRENCY",
    "DEFAULT_AS_OF",
    "FORMATS",
    "ORGANISATION",
    "TABLES",
    "TIMEZONE",
    "demo_data",
    "generate_demo",
    "write_demo",
]
