"""Intake and workspace: read a submission, reject what is not a notebook, and lay out its workspace."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.validator import normalize

from harness.execution.base import EXPORT_DIR, JOB_FILE, SUBMISSION_NOTEBOOK, ExecutionLimits
from harness.export import CHECKPOINT_TAG, EXPORT_TAG

# Tags of cells that the grader adds, and of the cell papermill replaces with the injected parameters.
RESERVED_TAGS = (EXPORT_TAG, CHECKPOINT_TAG, "injected-parameters")
from harness.result import LockedCellChange
from harness.rubric import Rubric

logger = logging.getLogger(__name__)

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
LOCKED_ROLE = "locked"


class InvalidSubmission(Exception):
    """The submission cannot be graded as given. The message gives the reason and the fix."""


@dataclass
class Intake:
    """A submission read and normalised, with what intake noticed about it."""

    notebook: nbformat.NotebookNode
    warnings: list[str] = field(default_factory=list)


def cell_metadata(cell) -> dict:
    return cell.get("metadata", {}).get("adgrade") or {}


def _source_digest(source: str) -> str:
    return hashlib.sha256(source.strip().encode("utf-8")).hexdigest()


def read_submission(path: Path) -> Intake:
    """Read, validate and normalise a submitted notebook."""
    if not path.is_file():
        raise InvalidSubmission(f"Submission {path.name} does not exist or is not a file.")
    size = path.stat().st_size
    if size == 0:
        raise InvalidSubmission(f"Submission {path.name} is empty. Save the notebook in Jupyter and submit the .ipynb file.")
    if size > MAX_NOTEBOOK_BYTES:
        raise InvalidSubmission(
            f"Submission {path.name} is {size / 1e6:.1f} MB, over the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB limit. "
            "Clear all outputs (Kernel > Restart & Clear Output) and submit again."
        )
    try:
        text = path.read_text(encoding="utf-8")
        notebook = nbformat.reads(text, as_version=4)
    except (UnicodeDecodeError, json.JSONDecodeError, nbformat.reader.NotJSONError) as error:
        raise InvalidSubmission(
            f"Submission {path.name} is not a Jupyter notebook ({type(error).__name__}: {str(error)[:200]}). "
            "Submit the .ipynb file saved by Jupyter."
        ) from None
    except Exception as error:  # nbformat raises several unrelated types for malformed notebooks
        raise InvalidSubmission(
            f"Submission {path.name} could not be read as a notebook: {str(error)[:300]}. "
            "Open it in Jupyter, save it, and submit it again."
        ) from None

    try:
        _, notebook = normalize(notebook)
        _upgrade_cell_ids(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        nbformat.validate(notebook)
    except (nbformat.ValidationError, AttributeError, KeyError, TypeError) as error:
        raise InvalidSubmission(
            f"Submission {path.name} is not a valid notebook ({type(error).__name__}: {str(error).splitlines()[0][:300]}). "
            "Open it in Jupyter, save it, and submit it again."
        ) from None
    return Intake(notebook=notebook, warnings=_remove_reserved_tags(notebook))


def _remove_reserved_tags(notebook: nbformat.NotebookNode) -> list[str]:
    """Remove the tags the grader and papermill give their own cells from the learner's cells, and say which.

    A learner cell tagged like the export cell would be dropped, and one tagged injected-parameters
    would be replaced by papermill, so the cells are kept and only the tags go.
    """
    warnings = []
    for index, cell in enumerate(notebook.cells, start=1):
        tags = cell.get("metadata", {}).get("tags")
        if not isinstance(tags, list):
            continue
        reserved = [tag for tag in tags if tag in RESERVED_TAGS]
        if reserved:
            cell.metadata["tags"] = [tag for tag in tags if tag not in RESERVED_TAGS]
            warnings.append(f"Cell {index} (id {cell.get('id')}) had the tag(s) {', '.join(reserved)}, which the "
                            "grader reserves for its own cells; the tags were removed and the cell runs as written.")
    return warnings


def _upgrade_cell_ids(notebook: nbformat.NotebookNode) -> None:
    """Move to nbformat 4.5 and give every cell a unique id, keeping the ids that are valid and unique."""
    notebook.nbformat_minor = max(notebook.nbformat_minor, 5)
    seen: set[str] = set()
    for index, cell in enumerate(notebook.cells):
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not CELL_ID.fullmatch(cell_id) or cell_id in seen:
            cell_id = f"cell-{index}"
            while cell_id in seen:
                cell_id += "-x"
            cell["id"] = cell_id
        seen.add(cell_id)


def _longest_ordered(positions: list[int]) -> set[int]:
    """Return the indexes of a longest increasing run (not necessarily contiguous) of positions."""
    best = [1] * len(positions)
    previous = [-1] * len(positions)
    for i in range(len(positions)):
        for j in range(i):
            if positions[j] < positions[i] and best[j] + 1 > best[i]:
                best[i], previous[i] = best[j] + 1, j
    keep, index = set(), (max(range(len(best)), key=best.__getitem__) if best else -1)
    while index >= 0:
        keep.add(index)
        index = previous[index]
    return keep


def locked_cell_changes(notebook: nbformat.NotebookNode, template: nbformat.NotebookNode) -> list[LockedCellChange]:
    """List the template's read-only cells that the submission edited, deleted or moved.

    Cells are matched by id. A read-only cell counts as moved when it is out of the template's
    order relative to the other template cells, keeping the largest group still in order.
    """
    submitted = {cell.get("id"): index for index, cell in enumerate(notebook.cells)}
    matched = [(cell, submitted[cell.get("id")]) for cell in template.cells if cell.get("id") in submitted]
    in_order = _longest_ordered([index for _, index in matched])
    moved = {cell.get("id") for position, (cell, _) in enumerate(matched) if position not in in_order}

    changes = []
    for cell in template.cells:
        if cell_metadata(cell).get("role") != LOCKED_ROLE:
            continue
        label = cell_metadata(cell).get("name", cell.get("id"))
        index = submitted.get(cell.get("id"))
        if index is None:
            changes.append(LockedCellChange(cell_id=cell.get("id"), name=label, change="missing"))
            continue
        if _source_digest(notebook.cells[index].source) != _source_digest(cell.source):
            changes.append(LockedCellChange(cell_id=cell.get("id"), name=label, change="edited"))
        if cell.get("id") in moved:
            changes.append(LockedCellChange(cell_id=cell.get("id"), name=label, change="moved"))
    return changes


def locked_cell_warnings(notebook: nbformat.NotebookNode, template: nbformat.NotebookNode) -> list[str]:
    """Describe each changed read-only cell of the template in a sentence for the learner."""
    wording = {"missing": "is missing from the submission", "edited": "was edited",
               "moved": "was moved out of the template's order"}
    return [f"Read-only cell '{change.name}' (id {change.cell_id}) {wording[change.change]}."
            for change in locked_cell_changes(notebook, template)]


def prepare_workspace(intake: Intake, rubric: Rubric, data_dir: Path, workspace: Path,
                      limits: ExecutionLimits, parameters: dict[str, object],
                      support_files: dict[str, str] | None = None) -> None:
    """Lay out the workspace: the notebook with an export cell, the learner-visible data, job.json."""
    workspace.mkdir(parents=True)
    notebook = intake.notebook
    notebook.cells = [c for c in notebook.cells if EXPORT_TAG not in c.get("metadata", {}).get("tags", [])]
    export_cell = nbformat.v4.new_code_cell(
        source="# The grader fills in this cell when it runs the notebook.",
        metadata={"tags": [EXPORT_TAG]},
    )
    notebook.cells.append(export_cell)
    nbformat.write(notebook, workspace / SUBMISSION_NOTEBOOK)

    learner_files = dict(rubric.learner_files)
    if rubric.compatibility.legacy_editions:
        from harness.compat import LEGACY_DATA_PATHS

        learner_files.update(LEGACY_DATA_PATHS)
    for relative, file_name in learner_files.items():
        target = workspace / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / file_name, target)
        target.chmod(0o444)

    job = {
        "parameters": parameters,
        "limits": {
            "cell_timeout": limits.cell_timeout,
            "notebook_timeout": limits.notebook_timeout,
            "export_timeout": limits.export_timeout,
            "memory_mib": limits.memory_mib,
        },
        "artifacts": [spec.model_dump() for spec in rubric.artifacts],
        "kernel_name": "python3",
        # Files the runner writes into the workspace before the kernel starts (name -> text).
        "support_files": support_files or {},
        "export_dir": EXPORT_DIR,
    }
    (workspace / JOB_FILE).write_text(json.dumps(job, indent=2), encoding="utf-8")
