"""Intake: what is not a notebook is rejected with a reason, and a result is still written."""

from __future__ import annotations

import json

import nbformat
import pytest

from conftest import DATA_DIR, TEMPLATE
from harness.grader import grade_submission
from harness.intake import InvalidSubmission, locked_cell_warnings, read_submission
from harness.result import GradeResult
from harness.rubric import load_rubric


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "is empty"),
    (b"{not json", "not a Jupyter notebook"),
    (b"print('hello')\n", "not a Jupyter notebook"),
    (b"\xff\xfe\x00garbage", "not a Jupyter notebook"),
    (json.dumps({"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(), "could not be read"),
])
def test_invalid_submission_rejected(tmp_path, content, reason):
    path = tmp_path / "submission.ipynb"
    path.write_bytes(content)
    with pytest.raises(InvalidSubmission, match=reason):
        read_submission(path)


def test_invalid_submission_still_writes_result(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    result = grade_submission(path, load_rubric(), DATA_DIR, tmp_path / "out")
    written = GradeResult.read(tmp_path / "out" / "result.json")
    assert result.status == "invalid_submission"
    assert written.status == "invalid_submission"
    assert written.score == 0
    assert "broken.ipynb is not a Jupyter notebook" in written.message


def test_intake_clears_outputs_and_adds_ids(tmp_path):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1", execution_count=7)
    cell.outputs = [nbformat.v4.new_output("stream", text="stale")]
    notebook.cells = [cell]
    raw = json.loads(nbformat.writes(notebook))
    raw["nbformat_minor"] = 4
    del raw["cells"][0]["id"]
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(raw))
    intake = read_submission(path)
    assert intake.notebook.cells[0].outputs == []
    assert intake.notebook.cells[0].execution_count is None
    assert intake.notebook.cells[0].get("id")


def test_edited_and_deleted_locked_cells_reported():
    template = nbformat.read(TEMPLATE, as_version=4)
    submission = nbformat.read(TEMPLATE, as_version=4)
    submission.cells = [c for c in submission.cells if c.get("id") != "load-data"]
    next(c for c in submission.cells if c.get("id") == "features").source += "\nnum_labels = 22"
    warnings = locked_cell_warnings(submission, template)
    assert any("'load-data'" in w and "missing" in w for w in warnings)
    assert any("'features'" in w and "edited" in w for w in warnings)
    assert len(warnings) == 2


def test_untouched_locked_cells_not_reported():
    template = nbformat.read(TEMPLATE, as_version=4)
    assert locked_cell_warnings(template, template) == []


def test_workspace_holds_only_learner_files(tmp_path, data_dir):
    from harness.execution import ExecutionLimits
    from harness.intake import prepare_workspace

    rubric = load_rubric()
    workspace = tmp_path / "workspace"
    limits = ExecutionLimits(cell_timeout=1, notebook_timeout=1, export_timeout=1, memory_mib=1)
    prepare_workspace(read_submission(TEMPLATE), rubric, data_dir, workspace, limits, {"seed": 1})
    files = sorted(str(p.relative_to(workspace)) for p in workspace.rglob("*") if p.is_file())
    # The course rubric's compatibility profile adds the path the 2020 edition reads.
    assert files == ["data/KDDTrain+_20Percent.txt", "data/assessment/KDDTrain+_20Percent.txt", "job.json",
                     "submission.ipynb"]
    assert (workspace / "data" / "KDDTrain+_20Percent.txt").stat().st_mode & 0o222 == 0
    assert (workspace / "data" / "assessment" / "KDDTrain+_20Percent.txt").stat().st_mode & 0o222 == 0
    notebook = nbformat.read(workspace / "submission.ipynb", as_version=4)
    assert "adgrade-export" in notebook.cells[-1].metadata["tags"]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda cell: cell.update(source=123), "not a valid notebook"),
    (lambda cell: cell.pop("cell_type"), "not a valid notebook"),
])
def test_malformed_cell_rejected(tmp_path, change, reason):
    raw = json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])))
    change(raw["cells"][0])
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(raw))
    with pytest.raises(InvalidSubmission, match=reason):
        read_submission(path)


def test_moved_locked_cell_reported():
    from harness.intake import locked_cell_changes

    template = nbformat.read(TEMPLATE, as_version=4)
    submission = nbformat.read(TEMPLATE, as_version=4)
    cells = submission.cells
    loop = cells.pop(next(i for i, c in enumerate(cells) if c.get("id") == "gan-training-loop"))
    cells.insert(next(i for i, c in enumerate(cells) if c.get("id") == "discriminator") + 1, loop)
    changes = locked_cell_changes(submission, template)
    assert [(c.cell_id, c.change) for c in changes] == [("gan-training-loop", "moved")]
    assert locked_cell_warnings(submission, template) == [
        "Read-only cell 'gan-training-loop' (id gan-training-loop) was moved out of the template's order."]
