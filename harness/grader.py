"""The grading pipeline for one submission: intake, workspace, execution, export, scoring, result."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import nbformat

from harness import __version__, compat, data
from harness.execution import BackendError, ExecutionBackend, ExecutionLimits, ExecutionOutcome, get_backend
from harness.execution.base import EXECUTED_NOTEBOOK, EXECUTED_NOTEBOOK_LIMIT, EXPORT_DIR, RUNNER_LOG
from harness.export import ASSESSMENT_CLAIMS, ENVIRONMENT
from harness.intake import InvalidSubmission, locked_cell_changes, locked_cell_warnings, prepare_workspace, read_submission
from harness.result import Claim, GradeResult, RubricInfo, TaskSummary
from harness.rubric import Rubric
from harness.scoring import Scorer
from harness.safe_io import copy_regular, read_regular
from harness.versions import COURSE_PACKAGES, package_versions

logger = logging.getLogger(__name__)

# Plot data for the learner's feedback page, written beside result.json when scoring ran.
FEEDBACK_FILE = "feedback.json"
FEEDBACK_VERSION = 1

# The marker that the learner template puts where code is missing.
PLACEHOLDER = "#### FIX ME ####"

STATUS_OF_OUTCOME = {
    "completed": "graded",
    "cell_error": "execution_error",
    "kernel_died": "execution_error",
    "memory_limit": "execution_error",
    "runner_failed": "execution_error",
    "cell_timeout": "timeout",
    "notebook_timeout": "timeout",
}


@dataclass
class GradingOptions:
    """How to grade: the back end (`docker`, `bwrap`, `local` or `auto`) and overrides of the rubric's limits."""

    backend: str = "local"
    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    memory_mib: int | None = None
    cpus: float | None = None
    gpus: str | None = None
    image: str | None = None
    self_check: bool = False

    def limits(self, rubric: Rubric) -> ExecutionLimits:
        return ExecutionLimits(
            cell_timeout=self.cell_timeout or rubric.limits.cell_timeout,
            notebook_timeout=self.notebook_timeout or rubric.limits.notebook_timeout,
            export_timeout=rubric.limits.export_timeout,
            memory_mib=self.memory_mib or rubric.limits.memory_mib,
            cpus=self.cpus or rubric.limits.cpus,
            max_processes=rubric.limits.max_processes,
            disk_mib=rubric.limits.disk_mib,
        )

    def make_backend(self) -> ExecutionBackend:
        return get_backend(self.backend, image=self.image, gpus=self.gpus)


def _harness_environment() -> dict[str, object]:
    """Return the grader's own versions, used when the kernel recorded none."""
    return {"python": platform.python_version(), "versions": package_versions((*COURSE_PACKAGES, "papermill")),
            "device": "cpu"}


def _cell_location(cell, rubric: Rubric) -> str:
    """Name a cell for the learner: its number counted from 1, its id and its task."""
    if cell is None:
        return ""
    task = ""
    if cell.task and cell.task in {t.id for t in rubric.tasks}:
        task = f", task '{rubric.task(cell.task).title}'"
    if cell.cell_id:
        return f"Cell {cell.index + 1} (id {cell.cell_id}{task})"
    return f"Cell {cell.index + 1}{task}"


def describe_outcome(outcome: ExecutionOutcome, rubric: Rubric, placeholder_in_cell: bool = False) -> str:
    """Explain to the learner what stopped the notebook and where."""
    cell = outcome.failed_cell
    where = _cell_location(cell, rubric)

    if outcome.status == "cell_error" and cell is not None:
        if placeholder_in_cell:
            return (f"{where} still contains the {PLACEHOLDER} placeholder, so it raised {cell.ename}. Replace "
                    "every placeholder with your code. Tasks completed before it were still scored.")
        if cell.ename == "StdinNotImplementedError":
            return f"{where} called input(), which cannot be answered during grading. Remove the input() call."
        raised = f"{cell.ename}: {cell.evalue.strip()[:500]}" if cell.evalue.strip() else cell.ename
        return (f"{where} raised {raised}. Execution stopped there; "
                "tasks completed before it were still scored.")
    if outcome.status == "cell_timeout" and cell is not None:
        return (f"{where} ran past the per-cell time limit and was interrupted. Tasks completed before it were "
                "still scored. Make the cell faster (fewer epochs or boosting rounds) or check for an endless loop.")

    if outcome.status == "notebook_timeout":
        return (f"The notebook ran past its total time limit{' in ' + where if where else ''}. Make it faster "
                "(fewer epochs or boosting rounds) or check for an endless loop.")

    # The export cell needs a live kernel; what survives a kernel death is what the checkpoint
    # after each finished task saved.
    if outcome.status == "kernel_died":
        return (f"The Python kernel died{' in ' + where if where else ''} (os._exit, a crash or a kill). Tasks "
                "completed before it were still scored; later ones could not be. Remove the call that ends "
                "the process.")
    if outcome.status == "memory_limit":
        stopped = outcome.message or "the notebook ran out of memory and was stopped"
        return (f"{stopped[0].upper()}{stopped[1:]}{' in ' + where if where else ''}. Tasks "
                "completed before it were still scored; later ones could not be. Reduce batch sizes or copies "
                "of the data.")

    if outcome.status == "runner_failed":
        return f"The notebook could not be run: {outcome.message}"
    return ""


def grade_submission(notebook: Path, rubric: Rubric, data_dir: Path | None, output_dir: Path,
                     options: GradingOptions | None = None) -> GradeResult:
    """Grade one submission and write output_dir/result.json.

    Always returns a GradeResult and always writes it: an invalid notebook, a failing
    execution or a harness failure each become a status, never an exception.
    """
    options = options or GradingOptions()
    # The runner and the scorer work in other folders, so every path they receive is absolute.
    notebook, output_dir = notebook.resolve(), output_dir.resolve()
    started = time.monotonic()
    result = GradeResult(submission=notebook.name, status="harness_error", max_score=rubric.max_score,
                         rubric=RubricInfo(name=rubric.name, version=rubric.version),
                         environment={**_harness_environment(), "harness": __version__,
                                      "backend": options.backend, "recorded_by": "grader"})
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / FEEDBACK_FILE).unlink(missing_ok=True)  # left by an earlier grading into this folder
    logger.info("grading %s with rubric %s", notebook, rubric.name)
    scratch = Path(tempfile.mkdtemp(prefix="adgrade-"))
    # The scorer's folder is a separate private temporary folder, not a sibling of the workspace.
    scoring_dir = Path(tempfile.mkdtemp(prefix="adgrade-scoring-"))
    try:
        _grade(notebook, rubric, data_dir, output_dir, options, result, scratch, scoring_dir)
    except InvalidSubmission as error:
        result.status = "invalid_submission"
        result.message = str(error)
    except BackendError as error:
        result.status = "harness_error"
        result.message = f"The execution back end cannot run: {error}"
    except Exception as error:  # any harness failure still ends in a recorded result
        logger.error("harness error grading %s: %s", notebook, traceback.format_exc())
        result.status = "harness_error"
        result.message = f"The grader failed ({type(error).__name__}: {error}). This is not your fault; " \
                         "contact course staff with this message."
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(scoring_dir, ignore_errors=True)

    result.timings["total"] = round(time.monotonic() - started, 3)
    if options.self_check:
        _restrict_to_visible(result, rubric)
    _summarise_tasks(result, rubric)
    try:
        result.write(output_dir)
    except Exception as error:  # the record must exist even when the full one cannot be written
        logger.error("could not write the result of %s: %s", notebook, traceback.format_exc())
        result = GradeResult(submission=notebook.name, status="harness_error", max_score=rubric.max_score,
                             message=f"The grader could not write the full result ({type(error).__name__}). "
                                     "This is not your fault; contact course staff with this message.")
        result.write(output_dir)
    logger.info("graded %s: %s, %g/%g in %.1f s", notebook.name, result.status, result.score, result.max_score,
                result.timings["total"])
    return result


def _grade(notebook: Path, rubric: Rubric, data_dir: Path | None, output_dir: Path, options: GradingOptions,
           result: GradeResult, scratch: Path, scoring_dir: Path) -> None:
    intake = read_submission(notebook)
    result.warnings.extend(intake.warnings)
    if rubric.template_path.is_file():
        template = nbformat.read(rubric.template_path, as_version=4)
        result.warnings.extend(locked_cell_warnings(intake.notebook, template))
        result.integrity.locked_cells = locked_cell_changes(intake.notebook, template)

    data_dir = data.resolve_data_dir(data_dir)
    needed = tuple(dict.fromkeys([*rubric.learner_files.values(),
                                  *([] if options.self_check else rubric.grader_files)]))
    data.require_files(data_dir, needed)

    support_files = {}
    if rubric.compatibility.legacy_editions:
        result.integrity.rewrites = compat.apply_legacy_rewrites(intake.notebook)
        support_files[compat.ASSESSMENT_MODULE] = compat.ASSESSMENT_SHIM

    limits = options.limits(rubric)
    workspace = scratch / "workspace"
    parameters = {**rubric.parameters, "seed": rubric.seed}
    prepare_workspace(intake, rubric, data_dir, workspace, limits, parameters, support_files)

    backend = options.make_backend()
    result.environment["backend"] = backend.name
    scorer = Scorer(rubric, data_dir, scoring_dir)
    try:
        _execute_and_score(backend, workspace, intake.notebook, limits, rubric, output_dir, options, result,
                           scorer)
    except BaseException:
        scorer.cancel()
        raise


def _execute_and_score(backend: ExecutionBackend, workspace: Path, notebook: nbformat.NotebookNode, limits: ExecutionLimits, rubric: Rubric, output_dir: Path,
                       options: GradingOptions, result: GradeResult, scorer: Scorer) -> None:
    outcome = backend.execute(workspace, limits)
    result.timings.update({f"execution_{k}": v for k, v in outcome.timings.items()})
    result.status = STATUS_OF_OUTCOME[outcome.status]
    # papermill inserts a cell for injected parameters, so cells are matched to the submission by id.
    failed = outcome.failed_cell
    positions = {cell.get("id"): index for index, cell in enumerate(notebook.cells)}
    placeholder = False
    if failed is not None and failed.cell_id in positions:
        failed.index = positions[failed.cell_id]
        placeholder = PLACEHOLDER in notebook.cells[failed.index].source
    result.message = describe_outcome(outcome, rubric, placeholder)
    if outcome.failed_cell is not None:
        result.failed_cell = outcome.failed_cell.model_dump()
    if outcome.export_error:
        result.warnings.append(f"The export cell did not finish: {outcome.export_error}")

    # The notebook may have replaced its executed copy with a link or a FIFO: only a regular file is copied.
    if copy_regular(workspace / EXECUTED_NOTEBOOK, output_dir / EXECUTED_NOTEBOOK, EXECUTED_NOTEBOOK_LIMIT):
        result.executed_notebook = str((output_dir / EXECUTED_NOTEBOOK).resolve())
    artifacts_dir = output_dir / "artifacts"
    shutil.rmtree(artifacts_dir, ignore_errors=True)
    result.warnings.extend(copy_artifacts(workspace / EXPORT_DIR, artifacts_dir, rubric))
    environment = _kernel_environment(artifacts_dir / ENVIRONMENT)
    if environment is None and (artifacts_dir / ENVIRONMENT).exists():
        result.warnings.append("The notebook's environment record was not valid and was ignored.")
    elif environment is not None:
        result.environment = {**environment, "harness": __version__, "recorded_by": "kernel"}
    # The back end's own record comes last, so nothing the notebook wrote can replace it.
    result.environment["backend"] = backend.name
    result.environment["sandbox"] = outcome.sandbox

    started = time.monotonic()
    select = [t.name for t in rubric.tests if t.visibility == "visible"] if options.self_check else None
    try:
        result.tests = scorer.score(artifacts_dir, select)
    finally:
        _copy_logs(workspace, scorer, output_dir)
    _write_feedback(output_dir, scorer.feedback, rubric)
    result.timings["scoring_wait"] = round(time.monotonic() - started, 3)
    result.score = sum(test.score for test in result.tests)
    result.warnings.extend(test.message for test in result.tests if test.metrics.get("mismatch"))
    result.integrity.claims = _claims(result) + _assessment_claims(artifacts_dir, result, rubric)
    _deduct_for_locked_cells(result, rubric)



def _write_feedback(output_dir: Path, feedback: dict[str, object], rubric: Rubric) -> None:
    """Write the scorer's plot data, with the reference models' ROC curves, as feedback.json."""
    if not feedback:
        return
    document = {"version": FEEDBACK_VERSION, **feedback}
    curves_path = rubric.reference_curves_path
    if curves_path is not None and curves_path.is_file():
        curves = json.loads(curves_path.read_text(encoding="utf-8"))
        document["reference"] = {key: curves[key] for key in ("autoencoder_roc", "gan_roc") if key in curves}
    (output_dir / FEEDBACK_FILE).write_text(json.dumps(document, default=str), encoding="utf-8")


def _copy_logs(workspace: Path, scorer: Scorer, output_dir: Path) -> None:
    logs = output_dir / "logs"
    logs.mkdir(exist_ok=True)
    for log in (workspace.parent / RUNNER_LOG, scorer.log_path):
        copy_regular(log, logs / log.name, 64 * 1024 * 1024)


def _clean_text(value: object, limit: int = 200) -> str | None:
    """Return a short string that UTF-8 can encode (no lone surrogates), or None for a non-string."""
    if not isinstance(value, str):
        return None
    return value.encode("utf-8", errors="replace").decode("utf-8")[:limit]


def _kernel_environment(path: Path) -> dict[str, object] | None:
    """Read the versions the kernel recorded, keeping only the expected fields as short strings.

    The kernel's modules can be replaced by the notebook, so nothing in this file is trusted.
    """
    data = read_regular(path, 64 * 1024)
    if data is None:
        return None
    try:
        raw = json.loads(data)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    versions = raw.get("versions") if isinstance(raw.get("versions"), dict) else {}
    return {
        "python": _clean_text(raw.get("python")),
        "versions": {package: _clean_text(versions.get(package)) for package in COURSE_PACKAGES},
        "device": _clean_text(raw.get("device"), 20),
    }


def _claims(result: GradeResult) -> list[Claim]:
    """Collect every stored number a test compared with its recomputed value."""
    claims = []
    for test in result.tests:
        if "reported" not in test.metrics or "recomputed" not in test.metrics:
            continue
        claimed, recomputed = test.metrics["reported"], test.metrics["recomputed"]
        numbers = isinstance(claimed, (int, float)) and isinstance(recomputed, (int, float))
        difference = round(abs(float(claimed) - float(recomputed)), 6) if numbers else None
        claims.append(Claim(test=test.name, claimed=claimed if numbers else None,
                            recomputed=recomputed if numbers else None, difference=difference,
                            agrees=not test.metrics.get("mismatch")))
    return claims


def _assessment_claims(artifacts_dir: Path, result: GradeResult, rubric: Rubric) -> list[Claim]:
    """Compare what the notebook passed to the course's grading module with the recomputed metrics."""
    path = artifacts_dir / ASSESSMENT_CLAIMS
    if not path.is_file():
        return []
    try:
        calls = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return []
    tests = {test.name: test for test in result.tests}
    claims = []
    # The file was written in the learner's kernel: every field is checked before use.
    for call in (calls if isinstance(calls, list) else [])[:100]:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, str) or function not in rubric.compatibility.claims:
            continue
        test_name, _, metric = rubric.compatibility.claims[function].partition(".")
        claimed = _finite_number(call.get("value"))
        recomputed = _finite_number(tests[test_name].metrics.get(metric)) if test_name in tests else None
        if claimed is None or recomputed is None:
            claims.append(Claim(test=f"assessment.{function}", claimed=claimed, recomputed=recomputed,
                                difference=None, agrees=False))
            continue
        difference = round(abs(claimed - recomputed), 6)
        claims.append(Claim(test=f"assessment.{function}", claimed=claimed, recomputed=recomputed,
                            difference=difference, agrees=difference <= 1e-3))
    return claims


def _finite_number(value: object) -> float | None:
    """Return value as a finite float, or None for anything else (text, huge integers, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _deduct_for_locked_cells(result: GradeResult, rubric: Rubric) -> None:
    policy = rubric.integrity
    changed = len(result.integrity.locked_cells)
    if not changed or policy.locked_cell_points <= 0:
        return
    deduction = min(changed * policy.locked_cell_points, policy.max_locked_cell_deduction or float("inf"),
                    result.score)
    result.integrity.deduction = deduction
    result.score -= deduction
    result.warnings.append(f"{deduction:g} point(s) deducted: {changed} read-only cell(s) were edited, deleted "
                           "or moved. Restore them from the template.")


def copy_artifacts(source: Path, target: Path, rubric: Rubric) -> list[str]:
    """Copy the export folder's regular files, up to the rubric's size limits; return warnings.

    The folder was written by learner code, so links, subfolders and oversized files are skipped
    rather than followed.
    """
    target.mkdir(parents=True)
    if not source.is_dir() or source.is_symlink():
        return []
    limit = sum(spec.max_bytes for spec in rubric.artifacts) + 1024 * 1024
    copied, skipped = 0, []
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        if not entry.is_file(follow_symlinks=False):
            skipped.append(entry.name)
            continue
        size = entry.stat(follow_symlinks=False).st_size
        if copied + size > limit:
            skipped.append(entry.name)
            continue
        shutil.copyfile(entry.path, target / entry.name, follow_symlinks=False)
        copied += size
    if skipped:
        return [f"The export folder held entries that are not saved artifacts, which were ignored: "
                f"{', '.join(skipped[:10])}."]
    return []


def _restrict_to_visible(result: GradeResult, rubric: Rubric) -> None:
    hidden = [t for t in rubric.tests if t.visibility == "hidden"]
    result.tests = [t for t in result.tests if t.visibility == "visible"]
    result.hidden_tests = len(hidden)
    result.max_score = sum(t.points for t in rubric.tests if t.visibility == "visible")
    result.score = max(0.0, sum(t.score for t in result.tests) - result.integrity.deduction)


def _summarise_tasks(result: GradeResult, rubric: Rubric) -> None:
    summaries = []
    for task in rubric.tasks:
        tests = [t for t in result.tests if t.task == task.id]
        if not tests:
            continue
        summaries.append(TaskSummary(id=task.id, title=task.title, hint=task.hint,
                                     score=sum(t.score for t in tests), max_score=sum(t.max_score for t in tests)))
    result.tasks = summaries
