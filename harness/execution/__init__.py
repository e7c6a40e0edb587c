"""Execution back ends: each runs a prepared workspace's notebook and reports what happened.

A back end is chosen by name (`get_backend`). Each starts the same runner
(`python -m harness.execution.runner WORKSPACE`) in its own environment, so a
sandboxed back end only decides where and under which limits that process runs.
"""

from __future__ import annotations

from harness.execution.base import ExecutionBackend, ExecutionLimits, ExecutionOutcome, OutcomeStatus
from harness.execution.local import LocalBackend

BACKENDS: dict[str, type[ExecutionBackend]] = {
    LocalBackend.name: LocalBackend,
}


class BackendError(Exception):
    """An execution back end is unknown or cannot run on this machine."""


def get_backend(name: str) -> ExecutionBackend:
    try:
        backend_class = BACKENDS[name]
    except KeyError:
        raise BackendError(
            f"Unknown execution back end {name!r}. Available: {', '.join(sorted(BACKENDS))}."
        ) from None
    return backend_class()


__all__ = ["BACKENDS", "BackendError", "ExecutionBackend", "ExecutionLimits", "ExecutionOutcome",
           "OutcomeStatus", "get_backend"]
