"""Run small notebooks through an execution back end, without a rubric.

Each notebook's export cell saves one number, `value`, owned by the task "t", so a
test can tell whether the export (or the checkpoint after the task) still ran after
the notebook stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from harness.execution import ExecutionLimits, get_backend
from harness.execution.base import EXECUTED_NOTEBOOK, EXPORT_DIR, JOB_FILE, SUBMISSION_NOTEBOOK
from harness.export import EXPORT_TAG

LIMITS = ExecutionLimits(cell_timeout=60, notebook_timeout=120, export_timeout=30, memory_mib=4096)
TASK = "t"


def run_cells(tmp_path: Path, cells: list[str | tuple[str, str]], limits: ExecutionLimits = LIMITS,
              backend: str = "local"):
    """Run the cells (a source, or a (source, task) pair) and return (outcome, workspace, notebook)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    notebook = nbformat.v4.new_notebook()
    for cell in cells:
        source, task = (cell, None) if isinstance(cell, str) else cell
        metadata = {"adgrade": {"task": task}} if task else {}
        notebook.cells.append(nbformat.v4.new_code_cell(source, metadata=metadata))
    notebook.cells.append(nbformat.v4.new_code_cell("# export", metadata={"tags": [EXPORT_TAG]}))
    nbformat.write(notebook, workspace / SUBMISSION_NOTEBOOK)
    job = {
        "parameters": {},
        "limits": {"cell_timeout": limits.cell_timeout, "notebook_timeout": limits.notebook_timeout,
                   "export_timeout": limits.export_timeout, "memory_mib": limits.memory_mib},
        "artifacts": [{"name": "value", "task": TASK, "kind": "number", "sources": ["value"]}],
    }
    (workspace / JOB_FILE).write_text(json.dumps(job))
    outcome = get_backend(backend).execute(workspace, limits)
    return outcome, workspace, notebook


def exported_value(workspace: Path):
    path = workspace / EXPORT_DIR / "value.json"
    return json.loads(path.read_text()) if path.is_file() else None


def cell_output(workspace: Path, cell_id: str) -> str:
    """The text a cell printed, found by id in the executed notebook."""
    executed = nbformat.read(workspace / EXECUTED_NOTEBOOK, as_version=4)
    for cell in executed.cells:
        if cell.get("id") == cell_id:
            return "".join(output.get("text", "") for output in cell.get("outputs", []))
    raise AssertionError(f"cell {cell_id} is not in the executed notebook")
