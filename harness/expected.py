"""expected_metrics.json: the reference runs' metrics, and threshold expressions evaluated over them."""

from __future__ import annotations

import ast
import json
import operator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator


class ExpectedMetricsError(Exception):
    """expected_metrics.json is missing, malformed, or lacks a metric. The message names the command that regenerates it."""


class MetricSummary(BaseModel):
    """One metric over the reference seeds."""

    mean: float
    std: float = Field(ge=0)
    min: float
    max: float
    n: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> MetricSummary:
        if not self.min - 1e-12 <= self.mean <= self.max + 1e-12:
            raise ValueError(f"mean {self.mean} lies outside [min {self.min}, max {self.max}]")
        return self


class TaskMetrics(BaseModel):
    """One reference task: wall and CPU seconds per seed (and their mean), and its metrics."""

    runtime_seconds: dict[str, float]
    cpu_seconds: dict[str, float]
    metrics: dict[str, MetricSummary]
    per_seed: dict[str, list[float]]

    @model_validator(mode="after")
    def _seed_counts(self) -> TaskMetrics:
        for name, values in self.per_seed.items():
            summary = self.metrics.get(name)
            if summary is None or summary.n != len(values):
                raise ValueError(f"per_seed[{name!r}] has {len(values)} values but metrics[{name!r}] does not match")
        return self


class ExpectedMetrics(BaseModel):
    """The document `adgrade reference run` writes."""

    schema_version: Literal[1]
    generated_at: str
    device: Literal["cpu", "cuda"]
    quick: bool
    seeds: list[int] = Field(min_length=1)
    python: str
    versions: dict[str, str | None]
    data: dict[str, str]
    tasks: dict[str, TaskMetrics]

    def metric(self, key: str) -> MetricSummary:
        """Look up "task.metric", for example "autoencoder.auroc_kddtest"."""
        task, _, name = key.partition(".")
        try:
            return self.tasks[task].metrics[name]
        except KeyError:
            raise ExpectedMetricsError(
                f"expected_metrics.json has no metric {key!r}. Regenerate it with 'adgrade reference run'."
            ) from None


def load_expected(path: Path) -> ExpectedMetrics:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExpectedMetricsError(f"{path} does not exist. Generate it with 'adgrade reference run'.") from None
    except ValueError as error:
        raise ExpectedMetricsError(f"{path} is not valid JSON ({error}). Regenerate it with "
                                   "'adgrade reference run'.") from None
    try:
        return ExpectedMetrics.model_validate(raw)
    except ValidationError as error:
        raise ExpectedMetricsError(f"{path} does not match the expected-metrics schema:\n{error}") from None


_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
VARIABLES = ("mean", "std", "min", "max")


def evaluate_expression(expression: str, summary: MetricSummary) -> float:
    """Evaluate arithmetic over mean, std, min and max, such as "mean - 3 * std"; nothing else is allowed."""
    values = {name: getattr(summary, name) for name in VARIABLES}

    def evaluate(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return evaluate(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in values:
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](evaluate(node.left), evaluate(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -evaluate(node.operand)
        raise ValueError(f"threshold expression {expression!r} may only use numbers, + - * / and "
                         f"{', '.join(VARIABLES)}")

    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"threshold expression {expression!r} is not valid: {error.msg}") from None
    return evaluate(tree)
