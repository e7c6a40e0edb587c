"""Rubric definitions: rubric.toml parsed into tasks, declared artifacts and scored tests."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from harness import PROJECT_ROOT
from harness.expected import ExpectedMetricsError, evaluate_expression, load_expected

RUBRICS_DIR = PROJECT_ROOT / "rubrics"
# A standard deviation over fewer seeds than this is too rough to set a threshold with.
MIN_SEEDS = 3

ArtifactKind = Literal["xgboost_model", "keras_model", "array", "number", "string_list", "scaler", "label_array"]


class RubricError(Exception):
    """A rubric is missing or malformed; the message names the file and the field."""


class Task(BaseModel):
    """One part of the assessment, as shown to the learner."""

    id: str
    title: str
    hint: str = ""


class ArtifactSpec(BaseModel):
    """An object the export cell saves from the learner's kernel.

    `sources` are Python expressions tried in order inside the kernel; the first
    that evaluates is saved. Several sources let one rubric grade notebooks that
    name a variable differently.
    """

    name: str
    task: str
    kind: ArtifactKind
    sources: list[str] = Field(min_length=1)
    label: str | None = None  # how messages name the object, where a source is an expression
    max_bytes: int = 64 * 1024 * 1024
    ndim: int | None = None
    required: bool = True


class TestSpec(BaseModel):
    """One pytest test of the rubric and what it is worth.

    A threshold is a fixed course bar (`course_bar`), or an expression over one metric
    of the reference runs (`threshold` such as "mean - 3 * std" with `threshold_metric`
    such as "autoencoder.auroc_kddtest"), clipped to `floor` from below and to the course
    bar from above. After loading, `threshold` is the number and `provenance` its origin.
    """

    name: str
    task: str
    points: float = Field(ge=0)
    visibility: Literal["visible", "hidden"] = "visible"
    description: str
    threshold: float | str | None = None
    threshold_metric: str | None = None
    course_bar: float | None = None
    floor: float | None = None
    tolerance: float | None = None
    provenance: str = ""

    @model_validator(mode="after")
    def _threshold_fields(self) -> TestSpec:
        if isinstance(self.threshold, str) and not self.threshold_metric:
            raise ValueError(f"test {self.name}: a threshold expression needs threshold_metric")
        if isinstance(self.threshold, (int, float)) and self.course_bar is None:
            raise ValueError(f"test {self.name}: write a fixed bar as course_bar, not threshold")
        return self


class Limits(BaseModel):
    """Execution limits, sized for the assessment on a 2-core CPU."""

    cell_timeout: float = 600.0
    notebook_timeout: float = 1800.0
    export_timeout: float = 120.0
    memory_mib: int = 8192
    # Sandboxed back ends only (docker, bwrap): a CPU quota in cores (None: all the host's
    # cores), processes and threads together, and what the notebook may write.
    cpus: float | None = Field(default=None, gt=0)
    max_processes: int = Field(default=1024, ge=16)
    disk_mib: int = Field(default=2048, ge=16)


class IntegrityPolicy(BaseModel):
    """What changes to the template's read-only cells cost. Every change is reported whatever the cost."""

    # Points deducted for each read-only cell that was edited, deleted or moved (0: report only).
    locked_cell_points: float = Field(default=0.0, ge=0)
    # The most that such deductions can take off in total.
    max_locked_cell_deduction: float = Field(default=0.0, ge=0)


class Compatibility(BaseModel):
    """Opt-in rewrites for notebooks written for the course's earlier editions and older libraries."""

    legacy_editions: bool = False
    # The grading module's functions, each mapped to the "test.metric" it claims, for the claims report.
    claims: dict[str, str] = Field(default_factory=dict)


class Rubric(BaseModel):
    name: str
    version: str
    title: str
    template: str
    seed: int = 42
    parameters: dict[str, object] = Field(default_factory=dict)
    learner_files: dict[str, str] = Field(default_factory=dict)
    grader_files: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    integrity: IntegrityPolicy = Field(default_factory=IntegrityPolicy)
    compatibility: Compatibility = Field(default_factory=Compatibility)
    expected_metrics: str | None = None
    # ROC curves of the reference models (adgrade reference curves), drawn beside each learner's on feedback pages.
    reference_curves: str | None = None
    tasks: list[Task]
    artifacts: list[ArtifactSpec]
    tests: list[TestSpec]
    path: Path = Path(".")

    @model_validator(mode="after")
    def _check_references(self) -> Rubric:
        task_ids = {task.id for task in self.tasks}
        for item in [*self.artifacts, *self.tests]:
            if item.task not in task_ids:
                raise ValueError(f"{item.name!r} refers to task {item.task!r}, which [[tasks]] does not define")
        names = [test.name for test in self.tests]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ValueError(f"tests defined twice: {', '.join(sorted(duplicates))}")
        return self

    @property
    def max_score(self) -> float:
        return sum(test.points for test in self.tests)

    def task(self, task_id: str) -> Task:
        return next(task for task in self.tasks if task.id == task_id)

    def test(self, name: str) -> TestSpec | None:
        return next((test for test in self.tests if test.name == name), None)

    def artifact(self, name: str) -> ArtifactSpec:
        for spec in self.artifacts:
            if spec.name == name:
                return spec
        raise KeyError(f"rubric {self.name} declares no artifact {name!r}")

    @property
    def template_path(self) -> Path:
        return (self.path / self.template).resolve()

    @property
    def reference_curves_path(self) -> Path | None:
        return (self.path / self.reference_curves).resolve() if self.reference_curves else None


def resolve_rubric_path(name_or_path: str | Path) -> Path:
    """Find a rubric folder: an existing path, else a name under rubrics/."""
    candidate = Path(name_or_path)
    if candidate.is_dir():
        return candidate.resolve()
    if candidate.name == "rubric.toml" and candidate.is_file():
        return candidate.parent.resolve()
    named = RUBRICS_DIR / str(name_or_path)
    if named.is_dir():
        return named
    available = sorted(p.name for p in RUBRICS_DIR.iterdir() if (p / "rubric.toml").is_file()) if RUBRICS_DIR.is_dir() else []
    raise RubricError(
        f"Rubric {name_or_path!r} not found: it is neither a folder nor a name under {RUBRICS_DIR}. "
        f"Available rubrics: {', '.join(available) or 'none'}."
    )


def load_rubric(name_or_path: str | Path = "nslkdd_assessment") -> Rubric:
    """Read and validate a rubric folder's rubric.toml."""
    folder = resolve_rubric_path(name_or_path)
    toml_path = folder / "rubric.toml"
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RubricError(f"{folder} has no rubric.toml; a rubric folder needs one.") from None
    except tomllib.TOMLDecodeError as error:
        raise RubricError(f"{toml_path} is not valid TOML: {error}") from None

    try:
        rubric = Rubric.model_validate({**raw.get("rubric", {}), **{k: v for k, v in raw.items() if k != "rubric"},
                                        "path": folder})
    except ValidationError as error:
        raise RubricError(f"{toml_path} is invalid:\n{error}") from None
    resolve_thresholds(rubric)
    return rubric


def resolve_thresholds(rubric: Rubric) -> None:
    """Turn every test's threshold into a number and record where it comes from."""
    expected = None
    if any(isinstance(test.threshold, str) for test in rubric.tests):
        if rubric.expected_metrics is None:
            raise RubricError(f"rubric {rubric.name} has threshold expressions but no expected_metrics file")
        path = (rubric.path / rubric.expected_metrics).resolve()
        try:
            expected = load_expected(path)
        except ExpectedMetricsError as error:
            raise RubricError(str(error)) from None
        if expected.quick or len(expected.seeds) < MIN_SEEDS:
            raise RubricError(
                f"{path} comes from a {'--quick ' if expected.quick else ''}run with {len(expected.seeds)} seed(s); "
                f"thresholds need a full run with at least {MIN_SEEDS} seeds. Run 'adgrade reference run'."
            )

    for test in rubric.tests:
        if test.threshold is None and test.course_bar is None:
            continue
        if isinstance(test.threshold, str):
            try:
                summary = expected.metric(test.threshold_metric)
                value = evaluate_expression(test.threshold, summary)
            except (ExpectedMetricsError, ValueError) as error:
                raise RubricError(f"test {test.name}: {error}") from None
            origin = (f"{test.threshold} of {test.threshold_metric} in {rubric.expected_metrics} "
                      f"(mean {summary.mean:.4f}, std {summary.std:.4f}, {summary.n} seeds, {expected.device}) "
                      f"= {value:.4f}")
            if test.floor is not None and value < test.floor:
                value, origin = test.floor, f"floor {test.floor}, because {origin} is lower"
            if test.course_bar is not None and value > test.course_bar:
                value, origin = test.course_bar, f"course bar {test.course_bar}, because {origin} is higher"
            test.threshold, test.provenance = float(value), origin
        else:
            test.threshold, test.provenance = float(test.course_bar), f"course bar {test.course_bar}"
