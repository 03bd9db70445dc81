"""Failures are types: FailureKind, ExecutionError subclasses and their manifest form."""

from __future__ import annotations

import sqlite3

import pytest

from kpireport.errors import (
    CellExecutionError,
    DeadKernelError,
    ExecutionError,
    FailureKind,
    KernelStartError,
    KpiReportError,
    PublishError,
    RenderError,
    ReportTimeoutError,
    WorkerLostError,
)
from kpireport.report import publish


def test_kinds_keep_the_strings_of_earlier_manifests():
    # the values are what manifests and history.sqlite hold: they must not change
    assert sorted(k.value for k in FailureKind) == sorted(
        ["exception", "early_exit", "incomplete", "timeout", "dead_kernel", "kernel_start",
         "execution", "render", "secret", "publish", "internal", "crash", "worker_lost",
         "stopped"]
    )  # fmt: skip
    assert FailureKind("dead_kernel") is FailureKind.DEAD_KERNEL
    assert FailureKind.TIMEOUT == "timeout" and f"{FailureKind.TIMEOUT}" == "timeout"
    assert FailureKind.parse("no such kind") is None and FailureKind.parse(None) is None


def test_only_machinery_faults_are_transient():
    transient = {k.value for k in FailureKind if k.transient}
    assert transient == {"dead_kernel", "kernel_start", "internal"}


@pytest.mark.parametrize("kind", list(FailureKind))
def test_every_kind_has_its_own_execution_error_class(kind):
    err = ExecutionError.of_kind(kind, "it failed", cell_index=3)
    assert isinstance(err, ExecutionError) and isinstance(err, KpiReportError)
    assert err.kind is kind and err.transient == kind.transient
    assert err.to_dict() == {"kind": kind.value, "message": "it failed", "cell_index": 3}
    if kind is not FailureKind.EXECUTION:
        assert type(err) is not ExecutionError


def test_execution_error_carries_cell_and_error_name_like_papermill():
    err = CellExecutionError("ValueError: bad", cell_index=4, ename="ValueError", evalue="bad")
    assert str(err) == "ValueError: bad"
    assert err.to_dict() == {
        "kind": "exception", "message": "ValueError: bad", "cell_index": 4,
        "ename": "ValueError", "evalue": "bad",
    }  # fmt: skip
    with pytest.raises(ExecutionError) as caught:
        raise DeadKernelError("The kernel died.")
    assert caught.value.transient and not ReportTimeoutError("slow").transient
    assert isinstance(KernelStartError("x"), ExecutionError)


def test_render_and_publish_errors_are_execution_errors():
    assert RenderError("no pdf").kind is FailureKind.RENDER
    assert publish.PublishError is PublishError and PublishError("x").kind == "publish"
    assert WorkerLostError("w").to_dict()["kind"] == "worker_lost"


def test_kind_is_stored_as_its_string_in_sqlite():
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (FailureKind.DEAD_KERNEL,))
    assert db.execute("SELECT k, typeof(k) FROM t").fetchone() == ("dead_kernel", "text")
