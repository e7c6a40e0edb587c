"""The execution interface shared by every back end, and the outcome record the runner writes."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from harness.safe_io import read_regular, write_replacing

OUTCOME_FILE = "execution.json"
JOB_FILE = "job.json"
EXECUTED_NOTEBOOK = "executed.ipynb"
SUBMISSION_NOTEBOOK = "submission.ipynb"
RUNNER_LOG = "runner.log"
EXPORT_DIR = "_export"
OUTCOME_LIMIT = 1024 * 1024
# The executed notebook is read back only up to this size.
EXECUTED_NOTEBOOK_LIMIT = 256 * 1024 * 1024

OutcomeStatus = Literal[
    "completed",         # every cell ran
    "cell_error",        # a cell raised; later cells were skipped
    "cell_timeout",      # one cell ran past the per-cell limit and was interrupted
    "notebook_timeout",  # the notebook ran past its whole-notebook limit
    "kernel_died",       # the kernel process exited (os._exit, a crash, a kill)
    "memory_limit",      # the kernel and its children passed the memory limit and were killed
    "runner_failed",     # the runner itself failed before or after running cells
]


@dataclass(frozen=True)
class ExecutionLimits:
    """Limits for one notebook run, in seconds, MiB and counts.

    `cpus` is a CPU quota in cores (None: every core of the host); `max_processes`
    caps processes and threads together; `disk_mib` caps what the notebook writes.
    The local back end enforces only the time and memory limits.
    """

    cell_timeout: float
    notebook_timeout: float
    export_timeout: float
    memory_mib: int
    cpus: float | None = None
    max_processes: int = 1024
    disk_mib: int = 2048
    # Time allowed beyond the notebook and export limits for kernel start-up and a kernel that
    # ignores interrupts, before the back end kills the run from outside.
    grace_seconds: float = 150.0


def hard_time_limit(limits: ExecutionLimits) -> float:
    """Seconds after which a back end kills the run from outside, whatever the runner is doing."""
    return limits.notebook_timeout + limits.export_timeout + limits.grace_seconds


def kernel_settings(home: str) -> dict[str, str]:
    """Environment every back end gives the runner and its kernel, with HOME and caches under `home`."""
    return {
        # Fixed string hashing, so set-ordered feature columns are the same on every run.
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "HOME": home,
        "JUPYTER_RUNTIME_DIR": f"{home}/jupyter",
        "IPYTHONDIR": f"{home}/ipython",
        "KERAS_HOME": f"{home}/keras",
        "MPLCONFIGDIR": f"{home}/matplotlib",
    }


class FailedCell(BaseModel):
    index: int
    cell_id: str | None = None
    execution_count: int | None = None
    ename: str
    evalue: str = ""
    task: str | None = None


class ExecutionOutcome(BaseModel):
    """The outcome of a notebook run, written by the runner as execution.json."""

    status: OutcomeStatus
    message: str = ""
    failed_cell: FailedCell | None = None
    cells_run: int = 0
    exported: bool = False
    export_error: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    # What the back end reports about where the notebook ran (name, image, GPUs, limits).
    sandbox: dict[str, object] = Field(default_factory=dict)

    def write(self, workspace: Path) -> None:
        write_replacing(workspace / OUTCOME_FILE, self.model_dump_json(indent=2).encode("utf-8"))

    @classmethod
    def read(cls, workspace: Path) -> ExecutionOutcome | None:
        """Read the runner's outcome; a missing, oversized or non-regular file reads as None."""
        data = read_regular(workspace / OUTCOME_FILE, OUTCOME_LIMIT)
        if data is None:
            return None
        try:
            return cls.model_validate(json.loads(data))
        except ValueError:
            return None


class BackendError(Exception):
    """An execution back end is unknown or cannot run on this machine."""


class ExecutionBackend(ABC):
    """Runs `python -m harness.execution.runner WORKSPACE` somewhere, within limits."""

    name: str = ""

    def problem(self) -> str | None:
        """Why this back end cannot run here, with the fix; None when it can."""
        return None

    def check(self) -> None:
        """Raise BackendError when the back end cannot run here."""
        problem = self.problem()
        if problem:
            raise BackendError(problem)

    @abstractmethod
    def execute(self, workspace: Path, limits: ExecutionLimits) -> ExecutionOutcome:
        """Run the workspace's notebook and return its outcome.

        Implementations report everything the notebook does (timeouts, kernel
        deaths, memory exhaustion) as an outcome, and raise only when the back
        end itself cannot start.
        """
