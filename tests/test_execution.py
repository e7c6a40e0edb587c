"""The local back end with real kernels: errors, timeouts, input(), kernel death and the memory limit.

Each test runs a small notebook whose export cell saves one number, `value`, so
that it shows whether the export still ran after the notebook stopped.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from runs import exported_value, run_cells

from harness.execution import ExecutionLimits, get_backend
from harness.execution.base import EXECUTED_NOTEBOOK, EXPORT_DIR
from harness.export import MANIFEST


def test_local_completed_notebook_exports(tmp_path):
    outcome, workspace, _ = run_cells(tmp_path, ["value = 3", "print('done')"])
    assert outcome.status == "completed"
    assert outcome.exported
    assert outcome.cells_run == 2
    assert exported_value(workspace) == 3
    executed = nbformat.read(workspace / EXECUTED_NOTEBOOK, as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "done\n"


def test_local_cell_error_still_exports(tmp_path):
    outcome, workspace, _ = run_cells(tmp_path, ["value = 3", "raise ValueError('boom')", "value = 4"])
    assert outcome.status == "cell_error"
    assert outcome.failed_cell.index == 1
    assert outcome.failed_cell.ename == "ValueError"
    assert outcome.failed_cell.evalue == "boom"
    assert outcome.exported
    assert exported_value(workspace) == 3


def test_local_missing_variable_recorded_in_manifest(tmp_path):
    outcome, workspace, _ = run_cells(tmp_path, ["other = 1"])
    manifest = json.loads((workspace / EXPORT_DIR / MANIFEST).read_text())
    assert outcome.status == "completed"
    assert manifest["value"]["status"] == "missing"
    assert "NameError" in manifest["value"]["detail"]


def test_local_input_fails_at_once(tmp_path):
    outcome, workspace, _ = run_cells(tmp_path, ["value = 1", "answer = input('name? ')"])
    assert outcome.status == "cell_error"
    assert outcome.failed_cell.ename == "StdinNotImplementedError"
    assert exported_value(workspace) == 1


def test_local_cell_timeout_interrupts_and_exports(tmp_path):
    limits = ExecutionLimits(cell_timeout=3, notebook_timeout=120, export_timeout=30, memory_mib=4096)
    outcome, workspace, _ = run_cells(tmp_path, ["value = 1", "while True:\n    pass", "value = 2"], limits)
    assert outcome.status == "cell_timeout"
    assert outcome.failed_cell.index == 1
    assert outcome.exported
    assert exported_value(workspace) == 1


def test_local_notebook_timeout(tmp_path):
    limits = ExecutionLimits(cell_timeout=60, notebook_timeout=6, export_timeout=30, memory_mib=4096)
    cells = ["value = 1"] + ["import time\ntime.sleep(2)"] * 6
    outcome, workspace, _ = run_cells(tmp_path, cells, limits)
    assert outcome.status == "notebook_timeout"
    assert outcome.failed_cell is not None
    assert exported_value(workspace) == 1


def test_local_kernel_death_is_an_outcome(tmp_path):
    outcome, workspace, _ = run_cells(tmp_path, ["value = 1", "import os\nos._exit(0)"])
    assert outcome.status == "kernel_died"
    assert outcome.failed_cell.index == 1
    assert not outcome.exported


def test_local_memory_limit_kills_kernel(tmp_path):
    limits = ExecutionLimits(cell_timeout=60, notebook_timeout=120, export_timeout=30, memory_mib=700)
    cells = ["value = 1", "blocks = [b'x' * (256 * 1024 * 1024) for _ in range(8)]"]
    outcome, workspace, _ = run_cells(tmp_path, cells, limits)
    assert outcome.status == "memory_limit"
    assert "700 MiB" in outcome.message
    assert outcome.failed_cell.index == 1
    assert outcome.failed_cell.ename == "MemoryLimit"
    assert outcome.timings["peak_memory_mib"] > 700


def test_local_memory_kill_keeps_the_finished_task(tmp_path):
    """The checkpoint after task "t" saved `value` before the memory kill; nothing else could have."""
    limits = ExecutionLimits(cell_timeout=60, notebook_timeout=120, export_timeout=30, memory_mib=700)
    cells = [("value = 1", "t"), "blocks = [b'x' * (256 * 1024 * 1024) for _ in range(8)]"]
    outcome, workspace, notebook = run_cells(tmp_path, cells, limits)
    assert outcome.status == "memory_limit"
    assert outcome.failed_cell.cell_id == notebook.cells[1].id
    assert exported_value(workspace) == 1


def test_checkpoints_follow_each_task_but_not_the_last(tmp_path):
    from harness.execution.runner import insert_checkpoints
    from harness.export import CHECKPOINT_TAG
    from harness.rubric import ArtifactSpec

    notebook = nbformat.v4.new_notebook()
    for source, task in [("a = 1", "one"), ("b = 2", "one"), ("c = 3", "two"), ("print(c)", None)]:
        notebook.cells.append(nbformat.v4.new_code_cell(source, metadata={"adgrade": {"task": task}}))
    specs = [ArtifactSpec(name="a", task="one", kind="number", sources=["a"]),
             ArtifactSpec(name="c", task="two", kind="number", sources=["c"]),
             ArtifactSpec(name="d", task="three", kind="number", sources=["d"])]
    assert insert_checkpoints(notebook, specs, "/x") == 2
    tags = [CHECKPOINT_TAG in cell.metadata.get("tags", []) for cell in notebook.cells]
    assert tags == [False, False, True, False, True, False]
    assert '"name": "a"' in notebook.cells[2].source and '"name": "c"' not in notebook.cells[2].source


def test_unknown_backend_names_available_ones():
    from harness.execution import BackendError

    with pytest.raises(BackendError, match="Choose one of: docker, bwrap, local, auto"):
        get_backend("podman")
