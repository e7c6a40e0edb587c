"""The execution interface shared by every back end, and the outcome record the runner writes."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

OUTCOME_FILE = "execution.json"
JOB_FILE = "job.json"
EXECUTED_NOTEBOOK = "executed.ipynb"
SUBMISSION_NOTEBOOK = "submission.ipynb"
RUNNER_LOG = "runner.log"
EXPORT_DIR = "_export"

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
    """Limits for one notebook run, in seconds and MiB."""

    cell_timeout: float
    notebook_timeout: float
    export_timeout: float
    memory_mib: int


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

    def write(self, workspace: Path) -> None:
        (workspace / OUTCOME_FILE).write_text(self.model_dump_json(indent=2), encoding="utf-8")

    @classmethod
    def read(cls, workspace: Path) -> ExecutionOutcome | None:
        path = workspace / OUTCOME_FILE
        if not path.is_file():
            return None
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, OSError):
            return None


class ExecutionBackend(ABC):
    """Runs `python -m harness.execution.runner WORKSPACE` somewhere, within limits."""

    name: str = ""

    @abstractmethod
    def execute(self, workspace: Path, limits: ExecutionLimits) -> ExecutionOutcome:
        """Run the workspace's notebook and return its outcome.

        Implementations report everything the notebook does (timeouts, kernel
        deaths, memory exhaustion) as an outcome, and raise only when the back
        end itself cannot start.
        """
