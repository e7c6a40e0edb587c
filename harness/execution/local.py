"""The `local` back end: the runner and its kernel as child processes, no isolation.

Meant for a learner's own machine and for development. It still enforces the
time limits and a memory limit: a watchdog sums the resident memory of the
runner's process tree (the kernel included) and kills the tree past the limit.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from harness.safe_io import read_regular

from harness.execution.base import (EXECUTED_NOTEBOOK, EXECUTED_NOTEBOOK_LIMIT, RUNNER_LOG, ExecutionBackend, ExecutionLimits,
                                    ExecutionOutcome, FailedCell, hard_time_limit, kernel_settings)

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _process_tree(root: int) -> list[int]:
    """Return root and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        # The command name may contain spaces; fields after the last ')' are fixed.
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))

    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def _resident_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return total


def _kill_tree(root: int) -> None:
    for pid in reversed(_process_tree(root)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def running_cell(workspace: Path, ename: str) -> FailedCell | None:
    """Find the cell that was running when the run was killed, from papermill's saved progress."""
    data = read_regular(workspace / EXECUTED_NOTEBOOK, EXECUTED_NOTEBOOK_LIMIT)
    if data is None:
        return None
    try:
        notebook = nbformat.reads(data.decode("utf-8", errors="replace"), as_version=4)
    except (ValueError, AttributeError, KeyError, TypeError):
        return None
    for index, cell in enumerate(notebook.cells):
        if cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            task = (cell.get("metadata", {}).get("adgrade") or {}).get("task")
            return FailedCell(index=index, cell_id=cell.get("id"), ename=ename, task=task)
    return None


def _kill_strays(workspace: Path) -> None:
    """Kill processes still working in the workspace, such as children that left the kernel's process tree.

    NOTE: a process that also changed its working folder is not found; only a sandboxed back end
    can contain learner code completely.
    """
    root = str(workspace.resolve())
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            logger.warning("killing process %s left running in the workspace", entry.name)
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def kernel_environment(workspace: Path, runtime_dir: Path) -> dict[str, str]:
    """Environment for the runner and the kernel it starts."""
    environment = dict(os.environ)
    environment.update(kernel_settings(str(runtime_dir)))
    for name in ("ADGRADE_DATA", "PYTHONPATH"):
        environment.pop(name, None)
    return environment


def settle_outcome(workspace: Path, limits: ExecutionLimits, killed_for: str | None,
                   returncode: int | None) -> ExecutionOutcome:
    """The runner's outcome, or one made here when the run was killed from outside or wrote none.

    The notebook runs as the same user as the runner and can write execution.json itself, so
    the file counts only when the runner exited by itself (status 0 or 1) rather than by a signal.
    """
    outcome = ExecutionOutcome.read(workspace) if returncode in (0, 1) else None
    if killed_for == "memory_limit":
        failed = running_cell(workspace, "MemoryLimit")
        if failed is None and outcome is not None:
            failed = outcome.failed_cell
        return ExecutionOutcome(
            status="memory_limit", failed_cell=failed,
            message=f"the notebook used more than {limits.memory_mib} MiB of memory and was stopped",
        )
    if killed_for == "notebook_timeout":
        return ExecutionOutcome(
            status="notebook_timeout", failed_cell=running_cell(workspace, "NotebookTimeout"),
            message=f"the notebook ran past {limits.notebook_timeout:.0f} s and was stopped",
        )
    if outcome is None:
        return ExecutionOutcome(
            status="runner_failed",
            message=f"the grader's runner was stopped (exit status {returncode}) before it recorded a "
                    f"result, for example by code in the notebook that killed it; see the runner log ({RUNNER_LOG})",
        )
    return outcome


class LocalBackend(ExecutionBackend):
    name = "local"

    def execute(self, workspace: Path, limits: ExecutionLimits) -> ExecutionOutcome:
        runtime_dir = workspace.parent / "runtime"
        runtime_dir.mkdir(exist_ok=True)
        hard_limit = hard_time_limit(limits)
        memory_limit = limits.memory_mib * 1024 * 1024

        started = time.monotonic()
        with open(workspace.parent / RUNNER_LOG, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "harness.execution.runner", str(workspace)],
                cwd=workspace, env=kernel_environment(workspace, runtime_dir),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            killed_for = None
            peak = 0
            try:
                while process.poll() is None:
                    time.sleep(POLL_SECONDS)
                    resident = _resident_bytes(_process_tree(process.pid))
                    peak = max(peak, resident)
                    if resident > memory_limit:
                        killed_for = "memory_limit"
                    elif time.monotonic() - started > hard_limit:
                        killed_for = "notebook_timeout"
                    if killed_for:
                        logger.warning("killing runner %d: %s", process.pid, killed_for)
                        _kill_tree(process.pid)
                        process.wait()
                        break
            except BaseException:  # the grader itself is stopping (SIGTERM, Ctrl-C): take the run with it
                _kill_tree(process.pid)
                raise

        _kill_strays(workspace)

        outcome = settle_outcome(workspace, limits, killed_for, process.returncode)
        outcome.timings["backend_total"] = round(time.monotonic() - started, 3)
        outcome.timings["peak_memory_mib"] = round(peak / 1024 / 1024, 1)
        outcome.sandbox = {"name": self.name, "isolation": "none"}
        return outcome
