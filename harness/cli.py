"""The adgrade command line: grade, check, grade-batch, export, data, reference, rubric, image and doctor."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from harness import data

# Exit codes, documented in the README.
EXIT_OK = 0  # the notebook was graded (whatever its score), or a data command succeeded
EXIT_NOT_GRADED = 1  # a result was written, but the submission could not be graded in full
EXIT_USAGE = 2  # bad arguments, missing data or rubric: nothing was graded
EXIT_HARNESS = 3  # the harness itself failed, and result.json records harness_error

# soft_wrap keeps paths and suggested commands on one line, so they can be copied. Output that is not
# a terminal gets a wide fixed width, so tables stay readable in logs.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _positive(kind):
    """Build an argparse type that accepts only numbers above zero."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value
    return parse


def _add_grading_options(parser: argparse.ArgumentParser, default_backend: str) -> None:
    parser.add_argument("notebook", type=Path, help="the submitted .ipynb file")
    parser.add_argument("--output", type=Path, help="folder for result.json and the executed notebook "
                        "(default: ./adgrade-out/<notebook name>)")
    parser.add_argument("--gpus", help="docker only: GPUs for the container, 'all', a count, or ids such as 0,1")
    add_run_options(parser, default_backend)
    parser.add_argument("--json", action="store_true", help="print result.json instead of the table")


def add_run_options(parser: argparse.ArgumentParser, default_backend: str) -> None:
    """Add the options that say how a notebook runs: data, rubric, back end and limits."""
    parser.add_argument("--data-dir", type=Path, help=f"folder with the NSL-KDD files (default: ${data.DATA_ENV})")
    parser.add_argument("--rubric", default="nslkdd_assessment",
                        help="rubric name under rubrics/, or a path to a rubric folder (default: %(default)s)")
    parser.add_argument("--backend", choices=("docker", "bwrap", "local", "auto"), default=default_backend,
                        help="where the notebook runs: docker (a container per submission), bwrap (bubblewrap "
                        "namespaces), local (no isolation), or auto, the strongest available (default: %(default)s)")
    parser.add_argument("--image", help="docker only: the grading image (default: $ADGRADE_IMAGE or "
                        "adgrade-grader:<version>)")
    parser.add_argument("--cpus", type=_positive(float), help="docker, or bwrap as root: CPU quota in cores "
                        "(default: the rubric's, else every core)")
    parser.add_argument("--cell-timeout", type=_positive(float), help="seconds one cell may run (default: the rubric's)")
    parser.add_argument("--notebook-timeout", type=_positive(float),
                        help="seconds the whole notebook may run (default: the rubric's)")
    parser.add_argument("--memory-limit", type=_positive(int),
                        help="MiB the kernel and its children may use (default: the rubric's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adgrade", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="grade a submitted notebook and write result.json")
    _add_grading_options(grade, default_backend="auto")
    check = commands.add_parser("check", help="a learner's self-check: visible tests and hints only")
    _add_grading_options(check, default_backend="local")

    summary = commands.add_parser("summary", help="one line per result.json found under DIR")
    summary.add_argument("dir", type=Path)

    reference = commands.add_parser("reference", help="reference implementations of the assessment's tasks")
    reference_commands = reference.add_subparsers(dest="reference_command", required=True)
    reference_run = reference_commands.add_parser(
        "run", help="train every reference over several seeds and write reference/expected_metrics.json")
    reference_run.add_argument("--seeds", type=int, default=5, help="number of seeds, 0 to N-1 (default: %(default)s)")
    reference_run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                               help="where XGBoost and TensorFlow train (default: %(default)s)")
    reference_run.add_argument("--quick", action="store_true",
                               help="a short run on few rows and epochs that exercises every code path; it writes "
                               "reference/expected_metrics.quick.json unless --output is given, and rubrics reject it")
    reference_run.add_argument("--data-dir", type=Path, help=f"NSL-KDD folder (default: ${data.DATA_ENV})")
    reference_run.add_argument("--output", type=Path, help="where to write the metrics "
                               "(default: reference/expected_metrics.json)")

    reference_curves = reference_commands.add_parser(
        "curves", help="train the reference autoencoder and GAN once and write the ROC curves that feedback pages "
        "draw beside each learner's (reference/reference_curves.json)")
    reference_curves.add_argument("--seed", type=int, default=42, help="seed of the split and the training "
                                  "(default: %(default)s, the rubric's seed)")
    reference_curves.add_argument("--data-dir", type=Path, help=f"NSL-KDD folder (default: ${data.DATA_ENV})")
    reference_curves.add_argument("--output", type=Path,
                                  help="where to write the curves (default: reference/reference_curves.json)")

    rubric = commands.add_parser("rubric", help="inspect a rubric")
    rubric_commands = rubric.add_subparsers(dest="rubric_command", required=True)
    explain = rubric_commands.add_parser("explain", help="every test with its points, threshold and its origin")
    explain.add_argument("rubric", nargs="?", default="nslkdd_assessment", help="rubric name or folder")

    data_parser = commands.add_parser("data", help="verify or download the NSL-KDD files")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    verify = data_commands.add_parser("verify", help="check every NSL-KDD file in DIR")
    verify.add_argument("dir", type=Path)
    fetch = data_commands.add_parser("fetch", help="download the NSL-KDD files into DIR, keeping verified ones")
    fetch.add_argument("dir", type=Path)
    fetch.add_argument("--url", help=f"base URL of the files (default: ${data.URL_ENV} or {data.DEFAULT_URL})")
    ensure = data_commands.add_parser("ensure", help="verify DIR, downloading whatever is missing or altered")
    ensure.add_argument("dir", type=Path)
    ensure.add_argument("--url", help="base URL of the files, as for fetch")

    from harness.host_commands import add_parsers

    add_parsers(commands)

    from harness.batch.command import add_parsers as add_batch_parsers

    add_batch_parsers(commands)
    return parser


def _print_reports(reports: list[data.FileReport]) -> None:
    for report in reports:
        mark = "[green]    ok[/green]" if report.ok else "[red]FAILED[/red]"
        detail = f" ({'; '.join(report.problems)})" if report.problems else ""
        console.print(f"{mark}  {escape(report.name + detail)}")


def _data_command(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    if args.data_command == "verify":
        if not directory.is_dir():
            err_console.print(f"{directory} is not a directory. Run 'adgrade data fetch {directory}' to create it.")
            return EXIT_USAGE
        reports = data.verify_dir(directory, tuple(data.FILES))
        _print_reports(reports)
        required_ok = all(r.ok for r in reports if r.name in data.REQUIRED_FILES)
        if not required_ok:
            err_console.print(f"Grading needs {', '.join(data.REQUIRED_FILES)} unmodified. "
                              f"Run 'adgrade data fetch {directory}' or copy the canonical files there.")
        return EXIT_OK if required_ok else EXIT_USAGE

    if directory.exists() and not directory.is_dir():
        err_console.print(f"{directory} is a file, not a folder. Pass a folder for the NSL-KDD files.")
        return EXIT_USAGE

    if args.data_command == "ensure":
        reports = data.verify_dir(directory, data.REQUIRED_FILES) if directory.is_dir() else []
        if reports and all(r.ok for r in reports):
            console.print(f"NSL-KDD data in {directory} verified.")
            return EXIT_OK

    reports = data.fetch(directory, args.url)
    _print_reports(reports)
    if all(r.ok for r in reports if r.name in data.REQUIRED_FILES):
        return EXIT_OK
    err_console.print(
        f"Could not obtain verified NSL-KDD files. Download KDDTrain+_20Percent.txt and KDDTest+.txt "
        f"(and optionally KDDTest-21.txt) from the NSL-KDD distribution of the Canadian Institute for "
        f"Cybersecurity and put them, unmodified, in {directory.resolve()}; or set {data.URL_ENV} to a "
        f"URL (http://, https:// or file://) of a folder that holds them; then run "
        f"'adgrade data verify {directory}'."
    )
    return EXIT_USAGE


def _summary_command(directory: Path) -> int:
    from rich.table import Table

    from harness.result import RESULT_FILE, GradeResult

    paths = sorted(directory.rglob(RESULT_FILE))
    if not paths:
        err_console.print(f"No {RESULT_FILE} under {directory}. Grade a notebook with 'adgrade grade' first.")
        return EXIT_USAGE
    table = Table(title=f"Results under {escape(str(directory))}")
    for column in ("submission", "status", "score", "failed tests"):
        table.add_column(column)
    for path in paths:
        try:
            result = GradeResult.read(path)
        except ValueError as error:
            table.add_row(escape(str(path)), "[red]unreadable[/red]", "", escape(str(error)[:80]))
            continue
        failed = ", ".join(t.name for t in result.tests if t.status != "passed")
        table.add_row(escape(str(path.parent.relative_to(directory))), result.status,
                      f"{result.score:g}/{result.max_score:g}", escape(failed))
    console.print(table)
    return EXIT_OK


def _exit_on_sigterm(signum, frame) -> None:
    # Raising here runs every `finally`: containers are removed and temporary folders deleted.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.command == "data":
        return _data_command(args)
    if args.command == "summary":
        return _summary_command(args.dir)
    if args.command in ("image", "doctor"):
        from harness.host_commands import run_doctor_command, run_image_command

        return run_image_command(args) if args.command == "image" else run_doctor_command(args)
    if args.command in ("grade-batch", "export"):
        from harness.batch.command import run_batch_command, run_export_command

        return run_batch_command(args) if args.command == "grade-batch" else run_export_command(args)
    if args.command in ("reference", "rubric"):
        from harness.tools_commands import run_reference_command, run_rubric_command

        return run_reference_command(args) if args.command == "reference" else run_rubric_command(args)

    from harness.commands import run_grading_command

    return run_grading_command(args, self_check=args.command == "check")


if __name__ == "__main__":
    sys.exit(main())
