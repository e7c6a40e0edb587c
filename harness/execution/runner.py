"""Entry point that every back end starts: `python -m harness.execution.runner WORKSPACE`.

It reads WORKSPACE/job.json, fills in the export cell, inserts a checkpoint after
each task's last cell, runs the notebook with the `adgrade` papermill engine and
writes the executed notebook and execution.json.

Sandboxed back ends add two options: `--input DIR` copies the notebook and job.json
from a read-only folder into the workspace first, and `--kill-leftovers` kills every
other process the sandbox user owns once the run is over (a fork bomb, a daemon the
notebook started), so the sandbox is quiet when the back end collects the results.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError
from papermill.iorw import papermill_io

from harness.execution import engine  # noqa: F401  (registers the papermill engine)
from harness.execution.base import (EXECUTED_NOTEBOOK, EXPORT_DIR, JOB_FILE, SUBMISSION_NOTEBOOK,
                                    ExecutionOutcome)
from harness.execution.cgroups import oom_kill_count
from harness.export import CHECKPOINT_TAG, EXPORT_TAG, export_cell_source
from harness.safe_io import write_replacing
from harness.rubric import ArtifactSpec

logger = logging.getLogger("harness.execution.runner")

PREPARED_NOTEBOOK = "prepared.ipynb"
# papermill writes the executed notebook through this scheme, which replaces a link or FIFO
# that the notebook put in its place instead of writing through it or blocking on it.
SAFE_SCHEME = "adgrade-file://"


class SafeFileHandler:
    """A papermill I/O handler for local paths that never follows links or opens FIFOs."""

    @classmethod
    def read(cls, path: str) -> str:
        return Path(path.removeprefix(SAFE_SCHEME)).read_text(encoding="utf-8")

    @classmethod
    def listdir(cls, path: str):
        raise NotImplementedError

    @classmethod
    def write(cls, buf: str, path: str) -> None:
        write_replacing(Path(path.removeprefix(SAFE_SCHEME)), buf.encode("utf-8"))

    @classmethod
    def pretty_path(cls, path: str) -> str:
        return path.removeprefix(SAFE_SCHEME)


papermill_io.register(SAFE_SCHEME, SafeFileHandler)


def _task_of(cell) -> str | None:
    return (cell.get("metadata", {}).get("adgrade") or {}).get("task")


def insert_checkpoints(notebook: nbformat.NotebookNode, specs: list[ArtifactSpec], export_dir: str) -> int:
    """Insert a checkpoint cell after the last cell of each task that owns artifacts.

    No checkpoint follows a task when no code cell runs between it and the export cell.
    Returns the number of checkpoints inserted.
    """
    owned = {spec.task for spec in specs}
    last_cell: dict[str, int] = {}
    for index, cell in enumerate(notebook.cells):
        task = _task_of(cell)
        if task in owned and cell.cell_type == "code":
            last_cell[task] = index

    inserted = 0
    for task, index in sorted(last_cell.items(), key=lambda item: item[1], reverse=True):
        later = notebook.cells[index + 1:]
        if not any(c.cell_type == "code" and EXPORT_TAG not in c.get("metadata", {}).get("tags", [])
                   for c in later):
            continue
        cell = nbformat.v4.new_code_cell(
            source=export_cell_source([s for s in specs if s.task == task], export_dir),
            metadata={"tags": [CHECKPOINT_TAG], "adgrade": {"checkpoint": task}},
        )
        notebook.cells.insert(index + 1, cell)
        inserted += 1
    return inserted


def run(workspace: Path, kill_leftovers_first: bool = False) -> ExecutionOutcome:
    started = time.monotonic()
    job = json.loads((workspace / JOB_FILE).read_text(encoding="utf-8"))
    limits = job["limits"]
    outcome = ExecutionOutcome(status="runner_failed")

    for name, text in (job.get("support_files") or {}).items():
        (workspace / Path(name).name).write_text(text, encoding="utf-8")
    notebook = nbformat.read(workspace / SUBMISSION_NOTEBOOK, as_version=4)
    specs = [ArtifactSpec.model_validate(spec) for spec in job["artifacts"]]
    export_dir = str((workspace / EXPORT_DIR).resolve())
    for cell in notebook.cells:
        if EXPORT_TAG in cell.get("metadata", {}).get("tags", []):
            cell.source = export_cell_source(specs, export_dir)
    insert_checkpoints(notebook, specs, export_dir)
    nbformat.write(notebook, workspace / PREPARED_NOTEBOOK)

    oom_kills_before = oom_kill_count()
    try:
        papermill.execute_notebook(
            str(workspace / PREPARED_NOTEBOOK),
            SAFE_SCHEME + str(workspace / EXECUTED_NOTEBOOK),
            parameters=job.get("parameters") or None,
            engine_name="adgrade",
            kernel_name=job.get("kernel_name", "python3"),
            # Given here, so that a notebook saved without kernel metadata still gets its parameters.
            language="python",
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

    # In a sandbox the kernel is killed by the kernel's out-of-memory killer, which the
    # notebook client only sees as a dead kernel; the memory cgroup's counter tells them apart.
    if outcome.status == "kernel_died" and oom_kill_count() > oom_kills_before:
        outcome.status = "memory_limit"
        memory = limits.get("memory_mib")
        outcome.message = (f"the notebook used more than {memory} MiB of memory and was stopped" if memory
                           else "the notebook ran out of memory and was stopped")
        if outcome.failed_cell is not None:
            outcome.failed_cell.ename = "MemoryLimit"

    outcome.timings["runner_total"] = round(time.monotonic() - started, 3)
    if kill_leftovers_first:
        kill_leftovers()  # so that nothing of the notebook's can rewrite the outcome after this point
    outcome.write(workspace)
    return outcome


def kill_leftovers() -> None:
    """Kill every process this user may signal, except this one and the sandbox's init.

    Only for a sandbox with its own PID namespace, where that means the notebook's processes.
    """
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.execution.runner",
                                     description="Run a prepared grading workspace's notebook.")
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--input", type=Path, help="read-only folder holding the notebook and job.json")
    parser.add_argument("--kill-leftovers", action="store_true",
                        help="kill the sandbox user's other processes when done (sandboxes only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    home = os.environ.get("HOME")
    if home:  # a sandbox's HOME is on a fresh tmpfs
        Path(home).mkdir(parents=True, exist_ok=True)
    if args.input is not None:
        for name in (SUBMISSION_NOTEBOOK, JOB_FILE):
            shutil.copyfile(args.input / name, args.workspace / name)
    try:
        outcome = run(args.workspace, kill_leftovers_first=args.kill_leftovers)
    finally:
        if args.kill_leftovers:
            kill_leftovers()
    return 0 if outcome.status != "runner_failed" else 1


if __name__ == "__main__":
    sys.exit(main())
