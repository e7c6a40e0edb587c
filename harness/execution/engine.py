"""The papermill engine `adgrade`: runs cells in order, stops at the first error, then still exports.

papermill's own engine stops at a failing cell. Grading needs one more step after
that: the export cell runs in the same kernel, so the tasks completed before the
failure keep their points.
"""

from __future__ import annotations

import logging
import time

from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import Engine, papermill_engines

from harness.execution.base import ExecutionOutcome, FailedCell
from harness.export import CHECKPOINT_TAG, EXPORT_TAG

logger = logging.getLogger(__name__)

TIMEOUT_ENAME = "CellTimeoutError"


def _cell_task(cell) -> str | None:
    return (cell.get("metadata", {}).get("adgrade") or {}).get("task")


def _has_tag(cell, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


class GradingClient(PapermillNotebookClient):
    """A papermill client that enforces a notebook deadline and always tries the export cell."""

    def __init__(self, nb_man, *, cell_timeout: float, deadline: float, export_timeout: float,
                 outcome: ExecutionOutcome, **kwargs):
        self.cell_timeout = cell_timeout
        self.deadline = deadline
        self.export_timeout = export_timeout
        self.outcome = outcome
        self.exporting = False
        super().__init__(
            nb_man,
            timeout_func=self._timeout_for,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "the cell ran past its time limit",
                              "traceback": []},
            allow_errors=False,
            # Nothing in the kernel needs a graceful exit once the export cell has run.
            shutdown_kernel="immediate",
            **kwargs,
        )

    def _timeout_for(self, cell) -> int:
        if self.exporting:
            return max(1, int(self.export_timeout))
        remaining = self.deadline - time.monotonic()
        return max(1, int(min(self.cell_timeout, remaining)))

    def execute(self, **kwargs):
        started = time.monotonic()
        with self.setup_kernel(**kwargs):
            self.outcome.timings["kernel_start"] = round(time.monotonic() - started, 3)
            self._mark_kernel_for_oom_killer()
            self.papermill_execute_cells()
        return self.nb

    def _mark_kernel_for_oom_killer(self) -> None:
        """Make the kernel (and what it starts) the out-of-memory killer's first choice.

        In a sandbox the kernel and this runner share one memory limit; the kernel must be
        the process that dies, so the runner lives on to record which cell was running.
        Raising the score needs no privilege.
        """
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        if not pid:
            return
        try:
            with open(f"/proc/{pid}/oom_score_adj", "w") as handle:
                handle.write("1000")
        except OSError as error:
            logger.info("could not raise the kernel's oom_score_adj: %s", error)

    def papermill_execute_cells(self):
        export_index = next((i for i, cell in enumerate(self.nb.cells)
                             if EXPORT_TAG in cell.get("metadata", {}).get("tags", [])), None)

        started = time.monotonic()
        self.outcome.status = "completed"
        for index, cell in enumerate(self.nb.cells):
            if index == export_index:
                continue
            if _has_tag(cell, CHECKPOINT_TAG):
                self._run_checkpoint(cell, index)
                continue
            if not self._run_cell(cell, index):
                break
        self.outcome.timings["execute"] = round(time.monotonic() - started, 3)

        if export_index is None or self.outcome.status == "kernel_died":
            return
        started = time.monotonic()
        self.exporting = True
        export_outcome = ExecutionOutcome(status="completed")
        saved, self.outcome = self.outcome, export_outcome
        try:
            self._run_cell(self.nb.cells[export_index], export_index)
        finally:
            self.outcome = saved
            self.exporting = False
        self.outcome.exported = export_outcome.status == "completed"
        if not self.outcome.exported:
            self.outcome.export_error = export_outcome.message or export_outcome.status
        self.outcome.timings["export"] = round(time.monotonic() - started, 3)

    def _run_checkpoint(self, cell, index: int) -> None:
        """Save a finished task's artifacts; a failure here is noted and the notebook goes on."""
        started = time.monotonic()
        self.exporting = True
        checkpoint_outcome = ExecutionOutcome(status="completed")
        saved, self.outcome = self.outcome, checkpoint_outcome
        try:
            self._run_cell(cell, index)
        finally:
            self.outcome = saved
            self.exporting = False
        if checkpoint_outcome.status != "completed":
            logger.warning("checkpoint cell %d did not finish: %s", index, checkpoint_outcome.message)
        self.outcome.timings["checkpoints"] = round(
            self.outcome.timings.get("checkpoints", 0.0) + time.monotonic() - started, 3)

    def _run_cell(self, cell, index: int) -> bool:
        """Execute one cell; record a failure in the outcome and return False on one."""
        try:
            self.nb_man.cell_start(cell, index)
            self.execute_cell(cell, index)
            if cell.cell_type == "code" and not self.exporting:
                self.outcome.cells_run += 1
            return True
        except CellExecutionError as error:
            self.nb_man.cell_exception(self.nb.cells[index], cell_index=index, exception=error)
            self._record_failure(cell, index, error.ename or "Error", error.evalue or "")
            return False
        except DeadKernelError as error:
            self._record_failure(cell, index, "DeadKernelError", str(error))
            self.outcome.status = "kernel_died"
            return False
        except CellTimeoutError as error:
            # The kernel did not answer the interrupt (it ignores SIGINT, or is stuck in C code).
            self._record_failure(cell, index, TIMEOUT_ENAME, str(error).splitlines()[0])
            return False
        finally:
            self.nb_man.cell_complete(self.nb.cells[index], cell_index=index)

    def _record_failure(self, cell, index: int, ename: str, evalue: str) -> None:
        if ename == TIMEOUT_ENAME:
            out_of_time = self.deadline - time.monotonic() <= 1
            self.outcome.status = "notebook_timeout" if out_of_time and not self.exporting else "cell_timeout"
        else:
            self.outcome.status = "cell_error"
        self.outcome.failed_cell = FailedCell(
            index=index, cell_id=cell.get("id"), execution_count=cell.get("execution_count"),
            ename=ename, evalue=evalue[:2000], task=_cell_task(cell),
        )
        self.outcome.message = f"{ename}: {evalue}"[:2000]
        logger.info("cell %d stopped the notebook: %s", index, ename)


class GradingEngine(Engine):
    """papermill engine registered as `adgrade`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, *, outcome: ExecutionOutcome, cell_timeout: float,
                                 deadline: float, export_timeout: float, start_timeout: float = 120,
                                 log_output: bool = False, **kwargs):
        client = GradingClient(
            nb_man, cell_timeout=cell_timeout, deadline=deadline, export_timeout=export_timeout,
            outcome=outcome, kernel_name=kernel_name, startup_timeout=int(start_timeout),
            log=logger, log_output=log_output,
        )
        return client.execute()


papermill_engines.register("adgrade", GradingEngine)
