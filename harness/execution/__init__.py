"""Execution back ends: each runs a prepared workspace's notebook and reports what happened.

A back end is chosen by name (`get_backend`): `docker`, `bwrap`, `local`, or `auto`
for the strongest one this host offers. Each starts the same runner
(`python -m harness.execution.runner`) in its own environment, so a back end only
decides where and under which limits that process runs.
"""

from __future__ import annotations

from harness.execution.base import (BackendError, ExecutionBackend, ExecutionLimits, ExecutionOutcome,
                                    OutcomeStatus)
from harness.execution.bwrap_backend import BwrapBackend
from harness.execution.docker_backend import DockerBackend
from harness.execution.local import LocalBackend

# Strongest isolation first: `auto` takes the first that can run here.
BACKENDS: dict[str, type[ExecutionBackend]] = {
    DockerBackend.name: DockerBackend,
    BwrapBackend.name: BwrapBackend,
    LocalBackend.name: LocalBackend,
}
BACKEND_CHOICES = (*BACKENDS, "auto")


def get_backend(name: str, *, image: str | None = None, gpus: str | None = None) -> ExecutionBackend:
    """Return a ready back end, or raise BackendError naming what is missing and the fix."""
    if name == "auto":
        return choose_backend(image=image, gpus=gpus)
    if name not in BACKENDS:
        raise BackendError(f"Unknown execution back end {name!r}. Choose one of: {', '.join(BACKEND_CHOICES)}.")
    if gpus and name != "docker":
        raise BackendError(f"--gpus needs the docker back end; the {name} back end runs on the CPU only. "
                           "Use --backend docker, or leave out --gpus.")
    backend = DockerBackend(image=image, gpus=gpus) if name == "docker" else BACKENDS[name]()
    backend.check()
    return backend


def choose_backend(*, image: str | None = None, gpus: str | None = None) -> ExecutionBackend:
    """The strongest back end that can run here: docker, then bwrap, then local.

    With GPUs or an image asked for, only docker qualifies.
    """
    docker = DockerBackend(image=image, gpus=gpus)
    problem = docker.problem()
    if problem is None:
        return docker
    if gpus or image:
        # An image or GPUs were asked for by name: a weaker back end would silently ignore them.
        raise BackendError(problem)
    bwrap = BwrapBackend()
    if bwrap.problem() is None:
        return bwrap
    return LocalBackend()


__all__ = ["BACKENDS", "BACKEND_CHOICES", "BackendError", "BwrapBackend", "DockerBackend", "ExecutionBackend",
           "ExecutionLimits", "ExecutionOutcome", "LocalBackend", "OutcomeStatus", "choose_backend", "get_backend"]
