"""Entry point that every back end starts: `python -m harness.execution.runner WORKSPACE`.

It reads WORKSPACE/job.json, fills in the export cell, runs the notebook with the
`adgrade` papermill engine and writes the executed notebook and execution.json.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from harness.execution import engine  # noqa: F401  (registers the papermill engine)
from harness.execution.base import (EXECUTED_NOTEBOOK, EXPORT_DIR, JOB_FILE, SUBMISSION_NOTEBOOK,
                                    ExecutionOutcome)
from harness.export import EXPORT_TAG, export_cell_source
from harness.rubric import ArtifactSpec

logger = logging.getLogger("harness.execution.runner")

PREPARED_NOTEBOOK = "prepared.ipynb"


def run(workspace: Path) -> ExecutionOutcome:
    started = time.monotonic()
    job = json.loads((workspace / JOB_FILE).read_text(encoding="utf-8"))
    limits = job["limits"]
    outcome = ExecutionOutcome(status="runner_failed")

    notebook = nbformat.read(workspace / SUBMISSION_NOTEBOOK, as_version=4)
    specs = [ArtifactSpec.model_validate(spec) for spec in job["artifacts"]]
    for cell in notebook.cells:
        if EXPORT_TAG in cell.get("metadata", {}).get("tags", []):
            cell.source = export_cell_source(specs, str((workspace / EXPORT_DIR).resolve()))
    nbformat.write(notebook, workspace / PREPARED_NOTEBOOK)

    try:
        papermill.execute_notebook(
            str(workspace / PREPARED_NOTEBOOK),
            str(workspace / EXECUTED_NOTEBOOK),
            parameters=job.get("parameters") or None,
            engine_name="adgrade",
            kernel_name=job.get("kernel_name", "python3"),
            cwd=str(workspace),
            progress_bar=False,
            request_save_on_cell_execute=True,
            start_timeout=120,
            outcome=outcome,
            cell_timeout=limits["cell_timeout"],
            deadline=started + limits["notebook_timeout"],
            export_timeout=limits["export_timeout"],
        )
    except PapermillExecutionError:
        pass  # the outcome already names the failing cell
    except Exception as error:  # a broken notebook file or a kernel that never started
        if outcome.status == "runner_failed" or not outcome.message:
            outcome.status = "runner_failed"
            outcome.message = f"{type(error).__name__}: {error}"[:2000]
        logger.error("runner failed: %s", traceback.format_exc())

    outcome.timings["runner_total"] = round(time.monotonic() - started, 3)
    outcome.write(workspace)
    return outcome


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m harness.execution.runner WORKSPACE", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    outcome = run(Path(argv[0]))
    return 0 if outcome.status != "runner_failed" else 1


if __name__ == "__main__":
    sys.exit(main())
