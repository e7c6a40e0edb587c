"""The grade and check commands: argument handling, the grading call, and the printed table."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from harness import data
from harness.cli import EXIT_HARNESS, EXIT_NOT_GRADED, EXIT_OK, EXIT_USAGE, console, err_console
from harness.execution import BackendError, get_backend
from harness.execution.cgroups import cgroup_version
from harness.grader import GradingOptions, grade_submission
from harness.result import GradeResult, print_result
from harness.rubric import RubricError, load_rubric

EXIT_OF_STATUS = {
    "graded": EXIT_OK,
    "execution_error": EXIT_NOT_GRADED,
    "timeout": EXIT_NOT_GRADED,
    "invalid_submission": EXIT_NOT_GRADED,
    "harness_error": EXIT_HARNESS,
}


def check_sandbox_options(args: argparse.Namespace, backend: str) -> None:
    """Raise BackendError for an option that the chosen back end would ignore."""
    if args.image and backend != "docker":
        raise BackendError(f"--image applies to the docker back end only; this run uses {backend}.")
    if args.cpus is None:
        return
    cores = os.cpu_count() or 1
    if args.cpus > cores:
        raise BackendError(f"--cpus {args.cpus:g} is more than this host's {cores} cores; pass at most {cores}.")
    if backend == "local" or (backend == "bwrap" and cgroup_version() is None):
        raise BackendError(f"--cpus cannot be enforced by the {backend} back end here: use --backend docker, "
                           "or --backend bwrap as root (a cpu control group), or leave out --cpus.")


def run_grading_command(args: argparse.Namespace, self_check: bool) -> int:
    output_dir: Path = args.output or Path("adgrade-out") / args.notebook.stem
    if output_dir.exists() and not output_dir.is_dir():
        err_console.print(f"error: --output {output_dir} is a file; pass a folder for result.json.")
        return EXIT_USAGE
    try:
        rubric = load_rubric(args.rubric)
        backend = get_backend(args.backend, image=args.image, gpus=args.gpus)
        check_sandbox_options(args, backend.name)
        data_dir = data.resolve_data_dir(args.data_dir)
        needed = tuple(rubric.learner_files.values()) if self_check else (
            *rubric.learner_files.values(), *rubric.grader_files)
        data.require_files(data_dir, tuple(dict.fromkeys(needed)))
    except (RubricError, BackendError, data.DataError) as error:
        # Nothing was graded, but the result file still records why.
        GradeResult(submission=args.notebook.name, status="harness_error", message=str(error)).write(output_dir)
        err_console.print(f"error: {error}")
        return EXIT_USAGE

    # `auto` is settled once here, so the result names the back end that ran.
    options = GradingOptions(backend=backend.name, cell_timeout=args.cell_timeout,
                             notebook_timeout=args.notebook_timeout, memory_mib=args.memory_limit,
                             cpus=args.cpus, gpus=args.gpus, image=args.image, self_check=self_check)
    if not args.json:
        err_console.print(f"Running {args.notebook} in the {backend.name} back end with rubric {rubric.name} {rubric.version} "
                          f"({'self-check' if self_check else 'grading'}); this takes a few minutes on a CPU.")
    result = grade_submission(args.notebook, rubric, data_dir, output_dir, options)

    if args.json:
        console.print_json(result.model_dump_json())
    else:
        print_result(result, console, self_check=self_check)
        console.print(f"Result written to {output_dir / 'result.json'}")
    if result.status == "harness_error" and result.message:
        err_console.print(json.dumps(result.message))
    return EXIT_OF_STATUS[result.status]
