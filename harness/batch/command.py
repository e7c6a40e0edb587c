"""The grade-batch and export commands: options, progress display and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from harness import data
from harness.cli import EXIT_OK, EXIT_USAGE, _positive, add_run_options, console, err_console


def add_parsers(commands) -> None:
    batch = commands.add_parser(
        "grade-batch", help="grade a cohort: a folder, a zip (Canvas or Moodle bulk download) or a CSV manifest")
    batch.add_argument("input", type=Path, help="a folder of notebooks, a .zip file, or a .csv manifest with "
                       "learner_id and path columns")
    batch.add_argument("--output", type=Path, default=Path("adgrade-batch"),
                       help="folder for the gradebook, the reports and each submission's files (default: %(default)s)")
    batch.add_argument("--gradebook", help="SQLite file or database URL such as postgresql+psycopg://user@host/db "
                       "(default: OUTPUT/gradebook.db)")
    batch.add_argument("--regrade", action="store_true",
                       help="grade every submission again, even those the gradebook has a result for")
    batch.add_argument("--workers", type=_positive(int), default=1,
                       help="local worker processes grading at once (default: %(default)s)")
    batch.add_argument("--cores-per-worker", type=_positive(int),
                       help="pin each worker, and the kernels it starts, to this many CPU cores of its own")
    batch.add_argument("--dask-scheduler", metavar="ADDRESS",
                       help="send the work to an existing Dask cluster (tcp://HOST:PORT) instead of local workers")
    batch.add_argument("--gpus", help="one worker per GPU: 'all', a count, or ids such as 0,1; each worker's "
                       "kernels see only its GPU")
    add_run_options(batch, default_backend="auto")

    from harness.batch.gradescope import add_export_parser

    add_export_parser(commands)


def run_export_command(args: argparse.Namespace) -> int:
    from harness.batch.gradescope import run_export

    return run_export(args)


def run_batch_command(args: argparse.Namespace) -> int:
    from harness.batch.cohort import BatchSettings, grade_batch
    from harness.batch.sources import BatchInputError
    from harness.batch.store import GradebookBusy, GradebookError
    from harness.batch.workers import PoolSettings, list_gpus
    from harness.commands import check_sandbox_options
    from harness.execution import BackendError, get_backend
    from harness.grader import GradingOptions
    from harness.rubric import RubricError, load_rubric

    try:
        rubric = load_rubric(args.rubric)
        gpu_ids = list_gpus(args.gpus) if args.gpus else []
        backend = get_backend(args.backend, image=args.image, gpus=args.gpus)
        check_sandbox_options(args, backend.name)
        data_dir = data.resolve_data_dir(args.data_dir)
        data.require_files(data_dir, tuple(dict.fromkeys((*rubric.learner_files.values(), *rubric.grader_files))))
    except (RubricError, BackendError, data.DataError, ValueError) as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE

    # Each worker's GPU replaces this for the docker back end; the local and bwrap back ends see it through
    # CUDA_VISIBLE_DEVICES.
    grading = GradingOptions(backend=backend.name, cell_timeout=args.cell_timeout,
                             notebook_timeout=args.notebook_timeout, memory_mib=args.memory_limit, cpus=args.cpus,
                             image=args.image)
    pool = PoolSettings(workers=args.workers, dask_scheduler=args.dask_scheduler, gpu_ids=gpu_ids,
                        cores_per_worker=args.cores_per_worker)
    settings = BatchSettings(source=args.input, output=args.output, rubric=rubric, data_dir=data_dir,
                             gradebook=args.gradebook, regrade=args.regrade, pool=pool, grading=grading)

    progress = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), TextColumn("left:"), TimeRemainingColumn(), console=err_console)
    bar = None

    def started(total: int, skipped: int) -> None:
        nonlocal bar
        where = args.dask_scheduler or f"{pool.worker_count} local worker(s)"
        err_console.print(f"{total} submission(s) to grade with the {backend.name} back end on {where}; "
                          f"{skipped} already in the gradebook.")
        bar = progress.add_task("grading", total=total)

    def finished(outcome) -> None:
        result = outcome.result
        progress.console.print(f"{outcome.job.learner_id}  {result.status}  {result.score:g}/{result.max_score:g}  "
                               f"{outcome.seconds:.1f} s", markup=False)
        progress.update(bar, advance=1)

    try:
        with progress:
            summary = grade_batch(settings, on_start=started, on_result=finished)
    except GradebookBusy as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE
    except (BatchInputError, GradebookError, ValueError, ConnectionError) as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE

    for rejection in summary.rejections:
        err_console.print(f"rejected {rejection.entry}: {rejection.reason}")
    counts = ", ".join(f"{count} {status}" for status, count in sorted(summary.statuses.items())) or "none"
    console.print(f"Graded {summary.graded_now} submission(s) ({counts}); {summary.skipped} already graded; "
                  f"{summary.rejected} rejected (see {escape(str(summary.outputs['rejected']))}).")
    console.print(f"Gradebook: {escape(str(summary.outputs['gradebook']))}")
    console.print(f"Cohort summary: {escape(str(summary.outputs['summary']))}")
    console.print(f"Feedback pages: {escape(str(summary.outputs['feedback']))}")
    return EXIT_OK
