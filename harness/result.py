"""GradeResult, the record every submission ends with, and its JSON and table writers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from rich.console import Console
from rich.markup import escape
from rich.table import Table

GradeStatus = Literal["graded", "execution_error", "timeout", "invalid_submission", "harness_error"]
TestStatus = Literal["passed", "failed", "error", "skipped"]

RESULT_FILE = "result.json"


class TestResult(BaseModel):
    """One rubric test's outcome for one submission."""

    __test__ = False  # a pytest hint: this class is a record, not a test case
    name: str
    task: str
    description: str = ""
    score: float
    max_score: float
    status: TestStatus
    visibility: Literal["visible", "hidden"]
    message: str = ""
    metrics: dict[str, float | int | str | bool | None] = Field(default_factory=dict)

    @field_validator("metrics")
    @classmethod
    def _finite_metrics(cls, metrics: dict) -> dict:
        # JSON has no NaN: a metric that is not a finite number is stored as null.
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


class TaskSummary(BaseModel):
    id: str
    title: str
    score: float
    max_score: float
    hint: str = ""


class RubricInfo(BaseModel):
    name: str
    version: str


class LockedCellChange(BaseModel):
    """A read-only ("done for you") cell of the template that the submission changed."""

    cell_id: str
    name: str
    change: Literal["edited", "missing", "moved"]


class Rewrite(BaseModel):
    """A compatibility rewrite the grader applied to the learner's code before running it."""

    rule: str
    cell_id: str
    detail: str


class Claim(BaseModel):
    """A number the notebook stored, beside the value the scorer recomputed from the models."""

    test: str
    claimed: float | None
    recomputed: float | None
    difference: float | None
    agrees: bool


class Integrity(BaseModel):
    """Tamper evidence: changed read-only cells, compatibility rewrites, and claims checked against the models."""

    locked_cells: list[LockedCellChange] = Field(default_factory=list)
    rewrites: list[Rewrite] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)
    # Points taken off for changed read-only cells, where the rubric sets a cost.
    deduction: float = 0.0


class GradeResult(BaseModel):
    """The outcome of grading one submission; written as result.json whatever happened."""

    submission: str
    status: GradeStatus
    message: str = ""
    score: float = 0.0
    max_score: float = 0.0
    tests: list[TestResult] = Field(default_factory=list)
    tasks: list[TaskSummary] = Field(default_factory=list)
    hidden_tests: int | None = None
    warnings: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    environment: dict[str, object] = Field(default_factory=dict)
    rubric: RubricInfo | None = None
    executed_notebook: str | None = None
    failed_cell: dict[str, object] | None = None
    integrity: Integrity = Field(default_factory=Integrity)

    def write(self, output_dir: Path) -> Path:
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / RESULT_FILE
        tmp = path.with_suffix(".json.tmp")
        try:
            text = self.model_dump_json(indent=2)
        except ValueError:
            # Text from the notebook that UTF-8 cannot encode (lone surrogates) is escaped instead.
            text = json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=True, default=str)
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: Path) -> GradeResult:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))


STATUS_STYLE = {"passed": "green", "failed": "red", "error": "magenta", "skipped": "yellow"}


def print_result(result: GradeResult, console: Console, self_check: bool = False) -> None:
    """Print a result as a table of tests followed by the total and any warnings."""
    title = escape(f"{result.submission}: {result.status}")
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("task")
    table.add_column("test")
    table.add_column("points", justify="right")
    table.add_column("status")
    table.add_column("message", overflow="fold")
    for test in result.tests:
        style = STATUS_STYLE.get(test.status, "")
        name = test.name + (" (hidden)" if test.visibility == "hidden" else "")
        table.add_row(escape(test.task), escape(name), f"{test.score:g}/{test.max_score:g}",
                      f"[{style}]{test.status}[/{style}]", escape(test.message))
    if result.tests:
        console.print(table)

    if result.message:
        console.print(escape(result.message))
    if self_check:
        console.print(f"Visible tests: {result.score:g} / {result.max_score:g} points.")
        if result.hidden_tests:
            console.print(
                f"{result.hidden_tests} hidden test(s) also count toward your grade. They are not run or "
                "shown here, so a full visible score does not guarantee full marks."
            )
        for task in result.tasks:
            if task.score < task.max_score and task.hint:
                console.print(f"[bold]Hint for {escape(task.title)}:[/bold] {escape(task.hint)}")
    else:
        console.print(f"Score: {result.score:g} / {result.max_score:g}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
