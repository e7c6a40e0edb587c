"""The local back end with real kernels: errors, timeouts, input(), kernel death and the memory limit.

Each test runs a small notebook whose export cell saves one number, `value`, so
that it shows whether the export still ran after the notebook stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from harness.execution import ExecutionLimits, get_backend
from harness.execution.base import EXECUTED_NOTEBOOK, EXPORT_DIR, JOB_FILE, SUBMISSION_NOTEBOOK
from harness.export import EXPORT_TAG, MANIFEST

LIMITS = ExecutionLimits(cell_timeout=60, notebook_timeout=120, export_timeout=30, memory_mib=4096)


def run_cells(tmp_path: Path, cells: list[str], limits: ExecutionLimits = LIMITS):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.cells.append(nbformat.v4.new_code_cell("# export", metadata={"tags": [EXPORT_TAG]}))
    nbformat.write(notebook, workspace / SUBMISSION_NOTEBOOK)
    job = {
        "parameters": {},
        "limits": {"cell_timeout": limits.cell_timeout, "notebook_timeout": limits.notebook_timeout,
                   "export_timeout": limits.export_timeout},
        "artifacts": [{"name": "value", "task": "t", "kind": "number", "sources": ["value"]}],
    }
    (workspace / JOB_FILE).write_text(json.dumps(job))
    outcome = get_backend("local").execute(workspace, limits)
    return outcome, workspace


def exported_value(workspace: Path):
    path = workspace / EXPORT_DIR / "value.json"
    return json.loads(path.read_text()) if path.is_file() else None


def test_local_completed_notebook_exports(tmp_path):
    outcome, workspace = run_cells(tmp_path, ["value = 3", "print('done')"])
    assert outcome.status == "completed"
    assert outcome.exported
    assert outcome.cells_run == 2
    assert exported_value(workspace) == 3
    executed = nbformat.read(workspace / EXECUTED_NOTEBOOK, as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "done\n"


def test_local_cell_error_still_exports(tmp_path):
    outcome, workspace = run_cells(tmp_path, ["value = 3", "raise ValueError('boom')", "value = 4"])
    assert outcome.status == "cell_error"
    assert outcome.failed_cell.index == 1
    assert outcome.failed_cell.ename == "ValueError"
    assert outcome.failed_cell.evalue == "boom"
    assert outcome.exported
    assert exported_value(workspace) == 3


def test_local_missing_variable_recorded_in_manifest(tmp_path):
    outcome, workspace = run_cells(tmp_path, ["other = 1"])
    manifest = json.loads((workspace / EXPORT_DIR / MANIFEST).read_text())
    assert outcome.status == "completed"
    assert manifest["value"]["status"] == "missing"
    assert "NameError" in manifest["value"]["detail"]


def test_local_input_fails_at_once(tmp_path):
    outcome, workspace = run_cells(tmp_path, ["value = 1", "answer = input('name? ')"])
    assert outcome.status == "cell_error"
    assert outcome.failed_cell.ename == "StdinNotImplementedError"
    assert exported_value(workspace) == 1


def test_local_cell_timeout_interrupts_and_exports(tmp_path):
    limits = ExecutionLimits(cell_timeout=3, notebook_timeout=120, export_timeout=30, memory_mib=4096)
    outcome, workspace = run_cells(tmp_path, ["value = 1", "while True:\n    pass", "value = 2"], limits)
    assert outcome.status == "cell_timeout"
    assert outcome.failed_cell.index == 1
    assert outcome.exported
    assert exported_value(workspace) == 1


def test_local_notebook_timeout(tmp_path):
    limits = ExecutionLimits(cell_timeout=60, notebook_timeout=6, export_timeout=30, memory_mib=4096)
    cells = ["value = 1"] + ["import time\ntime.sleep(2)"] * 6
    outcome, workspace = run_cells(tmp_path, cells, limits)
    assert outcome.status == "notebook_timeout"
    assert outcome.failed_cell is not None
    assert exported_value(workspace) == 1


def test_local_kernel_death_is_an_outcome(tmp_path):
    outcome, workspace = run_cells(tmp_path, ["value = 1", "import os\nos._exit(0)"])
    assert outcome.status == "kernel_died"
    assert outcome.failed_cell.index == 1
    assert not outcome.exported


def test_local_memory_limit_kills_kernel(tmp_path):
    limits = ExecutionLimits(cell_timeout=60, notebook_timeout=120, export_timeout=30, memory_mib=700)
    cells = ["value = 1", "blocks = [b'x' * (256 * 1024 * 1024) for _ in range(8)]"]
    outcome, workspace = run_cells(tmp_path, cells, limits)
    assert outcome.status == "memory_limit"
    assert "700 MiB" in outcome.message
    assert outcome.failed_cell.index == 1
    assert outcome.failed_cell.ename == "MemoryLimit"
    assert outcome.timings["peak_memory_mib"] > 700


def test_unknown_backend_names_available_ones():
    from harness.execution import BackendError

    with pytest.raises(BackendError, match="Available: local"):
        get_backend("podman")
