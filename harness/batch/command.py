"""The grade-batch and export commands: options, progress display and exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from harness import data
from harness.cli import (EXIT_HARNESS, EXIT_NOT_GRADED, EXIT_OK, EXIT_USAGE, _positive, add_run_options, console,
                         err_console)

MIB = 1024 * 1024


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
    limits = batch.add_argument_group("limits on the input, against zip bombs")
    limits.add_argument("--max-entries", type=_positive(int), default=10_000,
                        help="entries a zip may have (default: %(default)s)")
    limits.add_argument("--max-file-mib", type=_positive(int), default=64,
                        help="MiB one extracted notebook may have (default: %(default)s)")
    limits.add_argument("--max-total-mib", type=_positive(int), default=4096,
                        help="MiB a zip may extract to in total (default: %(default)s)")
    limits.add_argument("--max-ratio", type=_positive(float), default=100,
                        help="times its compressed size one zip entry may expand to (default: %(default)s)")

    from harness.batch.gradescope import add_export_parser

    add_export_parser(commands)


def run_export_command(args: argparse.Namespace) -> int:
    from harness.batch.gradescope import run_export

    return run_export(args)


def run_batch_command(args: argparse.Namespace) -> int:
    from harness.batch.cohort import BatchSettings, grade_batch
    from harness.batch.sources import BatchInputError, ExtractionLimits
    from harness.batch.store import GradebookError
    from harness.batch.workers import PoolSettings, list_gpus
    from harness.commands import check_sandbox_options
    from harness.execution import BackendError, get_backend
    from harness.grader import GradingOptions
    from harness.rubric import RubricError, load_rubric

    if args.output.exists() and not args.output.is_dir():
        err_console.print(f"error: --output {args.output} is a file; pass a folder for the gradebook and reports.")
        return EXIT_USAGE
    if args.gradebook and "://" not in args.gradebook and not Path(args.gradebook).parent.is_dir():
        err_console.print(f"error: the folder of --gradebook {args.gradebook} does not exist; create it, or correct "
                          "the path.")
        return EXIT_USAGE
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
    limits = ExtractionLimits(max_entries=args.max_entries, max_file_bytes=args.max_file_mib * MIB,
                              max_total_bytes=args.max_total_mib * MIB, max_ratio=args.max_ratio)
    settings = BatchSettings(source=args.input, output=args.output, rubric=rubric, data_dir=data_dir,
                             gradebook=args.gradebook, regrade=args.regrade, pool=pool, grading=grading,
                             limits=limits)

    progress = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), TextColumn("left:"), TimeRemainingColumn(), console=err_console)
    bar = None

    def started(total: int, already_graded: int) -> None:
        nonlocal bar
        where = args.dask_scheduler or f"{pool.worker_count} local worker(s)"
        held = (f"{already_graded} of them already in the gradebook, graded again (--regrade)" if args.regrade
                else f"{already_graded} already in the gradebook")
        err_console.print(f"{total} submission(s) to grade with the {backend.name} back end on {where}; {held}.")
        if total:
            bar = progress.add_task("grading", total=total)

    def finished(outcome) -> None:
        result = outcome.result
        progress.console.print(f"{outcome.job.learner_id}  {result.status}  {result.score:g}/{result.max_score:g}  "
                               f"{outcome.seconds:.1f} s", markup=False)
        progress.update(bar, advance=1)

    try:
        with progress:
            summary = grade_batch(settings, on_start=started, on_result=finished)
    except (BatchInputError, GradebookError, ValueError, ConnectionError, OSError) as error:
        # GradebookBusy, raised when another batch has the gradebook's lock, is a GradebookError.
        err_console.print(f"error: {error}")
        return EXIT_USAGE

    for rejection in summary.rejections:
        # Most reasons already start with the entry's name.
        reason = rejection.reason if rejection.reason.startswith(rejection.entry) else f"{rejection.entry}: " \
            f"{rejection.reason}"
        err_console.print(f"rejected {reason}")
    counts = ", ".join(f"{count} {status}" for status, count in sorted(summary.statuses.items())) or "none"
    console.print(f"Graded {summary.graded_now} submission(s) ({counts}); {summary.skipped} skipped as already "
                  f"graded; {summary.rejected} rejected (see {escape(str(summary.outputs['rejected']))}).")
    console.print(f"Gradebook: {escape(str(summary.outputs['gradebook']))}")
    console.print(f"Cohort summary: {escape(str(summary.outputs['summary']))}")
    console.print(f"Feedback pages: {escape(str(summary.outputs['feedback']))}")
    for learner_id, problem in summary.report_failures.items():
        err_console.print(f"error: the reports of learner {learner_id} could not be written: {problem}")
    return batch_exit_code(summary)


def batch_exit_code(summary) -> int:
    """Exit 3 when the grader failed on a submission, 1 when one was not graded in full or rejected, else 0."""
    if summary.statuses.get("harness_error") or summary.report_failures:
        return EXIT_HARNESS
    if summary.rejected or any(status != "graded" for status in summary.statuses):
        return EXIT_NOT_GRADED
    return EXIT_OK
