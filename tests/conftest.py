"""Shared test set-up: the kpireport cache (data snapshots) lives in a temporary folder."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _kpireport_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``KPIREPORT_CACHE`` at a per-session folder (subprocesses inherit it)."""
    old = os.environ.get("KPIREPORT_CACHE")
    os.environ["KPIREPORT_CACHE"] = str(tmp_path_factory.mktemp("kpireport-cache"))
    yield
    if old is None:
        os.environ.pop("KPIREPORT_CACHE", None)
    else:
        os.environ["KPIREPORT_CACHE"] = old
