"""The `reference run`, `reference curves` and `rubric explain` commands."""

from __future__ import annotations

import argparse
import os

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import data
from harness.cli import EXIT_OK, EXIT_USAGE, console, err_console
from harness.rubric import RubricError, load_rubric


def _write_reference_curves(args: argparse.Namespace, data_dir) -> int:
    from reference import curves

    with err_console.status("training the reference autoencoder and GAN"):
        document = curves.compute(data_dir, args.seed)
    path = curves.write(document, args.output or curves.REFERENCE_CURVES)
    console.print(f"wrote {escape(str(path))}: autoencoder AUROC {document['autoencoder_roc']['auroc']:.4f}, "
                  f"GAN AUROC {document['gan_roc']['auroc']:.4f}")
    return EXIT_OK


def run_reference_command(args: argparse.Namespace) -> int:
    # TensorFlow's C++ log repeats a harmless tf.data message for every GAN it trains; level 3 hides it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from reference import calibrate

    try:
        data_dir = data.resolve_data_dir(args.data_dir)
        data.require_files(data_dir, data.REQUIRED_FILES)
    except data.DataError as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE
    if args.reference_command == "curves":
        return _write_reference_curves(args, data_dir)
    if args.seeds < 1:
        err_console.print("error: --seeds must be at least 1")
        return EXIT_USAGE

    seeds = list(range(args.seeds))
    tasks = calibrate.TASKS
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err_console)
    with progress:
        bar = progress.add_task("reference runs", total=len(seeds) * len(tasks))

        def advance(task: str, seed: int) -> None:
            progress.update(bar, advance=1, description=f"seed {seed}: {task} done")

        try:
            document = calibrate.run(data_dir, seeds, device=args.device, quick=args.quick, on_progress=advance)
        except (RuntimeError, ValueError) as error:
            err_console.print(f"error: {error}")
            return EXIT_USAGE

    # A quick run never replaces the committed metrics that the rubric's thresholds come from.
    output = args.output or (calibrate.QUICK_METRICS if args.quick else calibrate.EXPECTED_METRICS)
    path = calibrate.write(document, output)
    table = Table(title=f"Reference metrics over {len(seeds)} seed(s) on {document['device']}")
    for column in ("task", "metric", "mean", "std", "min", "max"):
        table.add_column(column)
    for task, result in document["tasks"].items():
        for name, summary in result["metrics"].items():
            table.add_row(task, name, f"{summary['mean']:.4f}", f"{summary['std']:.4f}", f"{summary['min']:.4f}",
                          f"{summary['max']:.4f}")
    console.print(table)
    console.print(f"Written to {path}")
    return EXIT_OK


def run_rubric_command(args: argparse.Namespace) -> int:
    try:
        rubric = load_rubric(args.rubric)
    except RubricError as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE

    table = Table(title=escape(f"{rubric.name} {rubric.version}: {rubric.max_score:g} points"))
    for column in ("task", "test", "points", "visibility", "threshold", "where the threshold comes from"):
        table.add_column(column, overflow="fold")
    for test in rubric.tests:
        threshold = f"{test.threshold:.4f}" if isinstance(test.threshold, float) else "-"
        origin = test.provenance or (f"tolerance {test.tolerance}" if test.tolerance is not None else
                                     "pass or fail, no threshold")
        table.add_row(test.task, test.name, f"{test.points:g}", test.visibility, threshold, escape(origin))
    console.print(table)
    return EXIT_OK
