"""Measure how `adgrade grade-batch` scales with workers, and what it adds to plain papermill per submission.

Grades one cohort of N copies of the reference solution, each under its own learner id, three ways in
one run: 1 worker pinned to one core, 2 workers pinned to one core each, and 1 worker free to use both
cores. The order of the three rotates each round. Plain papermill on one core runs the same notebook
for the per-submission baseline. The script prints median wall times, speed-ups and per-submission
overhead.

    python benchmarks/batch_scaling.py [--submissions 8] [--rounds 1] [--data-dir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "reference" / "solution.ipynb"
BIN = Path(sys.executable).parent

CONFIGURATIONS = {
    "1 worker, 1 core": ["--workers", "1", "--cores-per-worker", "1"],
    "2 workers, 1 core each": ["--workers", "2", "--cores-per-worker", "1"],
    "1 worker, 2 cores": ["--workers", "1"],
}


def make_cohort(folder: Path, count: int) -> Path:
    """Write count copies of the solution, one per learner, as a folder the batch command reads."""
    folder.mkdir(parents=True)
    for index in range(count):
        shutil.copyfile(SOLUTION, folder / f"learner{index:03d}.ipynb")
    return folder


def grade_batch(cohort: Path, output: Path, data_dir: Path, options: list[str]) -> float:
    """Grade the cohort into a fresh gradebook; return wall seconds after checking every score."""
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([str(BIN / "adgrade"), "grade-batch", str(cohort), "--output", str(output), "--data-dir",
                    str(data_dir), "--backend", "local", *options], check=True, capture_output=True)
    wall = time.perf_counter() - started
    with (output / "gradebook.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    imperfect = [row for row in rows if row["status"] != "graded" or float(row["score"]) != float(row["max_score"])]
    if imperfect or not rows:
        raise SystemExit(f"not every copy of the solution got full marks with {options}: {imperfect or 'no rows'}")
    return wall


def papermill_one_core(data_dir: Path, scratch: Path) -> float:
    """Run the solution with plain papermill pinned to one core; return wall seconds."""
    workspace = scratch / "papermill"
    shutil.rmtree(workspace, ignore_errors=True)
    (workspace / "data").mkdir(parents=True)
    shutil.copyfile(data_dir / "KDDTrain+_20Percent.txt", workspace / "data" / "KDDTrain+_20Percent.txt")
    environment = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    core = str(min(os.sched_getaffinity(0)))
    started = time.perf_counter()
    subprocess.run(["taskset", "-c", core, str(BIN / "papermill"), str(SOLUTION), str(workspace / "out.ipynb"),
                    "--cwd", str(workspace), "-k", "python3", "-p", "seed", "42", "--no-progress-bar",
                    "--log-level", "WARNING"], check=True, env=environment, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8, help="size of the cohort (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=1, help="times each configuration runs (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ADGRADE_DATA", "data/nsl-kdd")),
                        help="NSL-KDD folder (default: $ADGRADE_DATA)")
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    args = parser.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("this benchmark needs at least 2 CPU cores")

    scratch = Path(tempfile.mkdtemp(prefix="adgrade-batch-bench-"))
    walls: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    papermill: list[float] = []
    try:
        cohort = make_cohort(scratch / "cohort", args.submissions)
        for round_index in range(args.rounds):
            papermill.append(papermill_one_core(args.data_dir, scratch))
            print(f"round {round_index + 1}: plain papermill on 1 core {papermill[-1]:.1f} s", flush=True)
            # The order rotates each round, so no configuration always runs first on a cold cache.
            names = list(CONFIGURATIONS)
            names = names[round_index % len(names):] + names[:round_index % len(names)]
            for name in names:
                walls[name].append(grade_batch(cohort, scratch / "out", args.data_dir, CONFIGURATIONS[name]))
                print(f"round {round_index + 1}: {name}: {walls[name][-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    medians = {name: statistics.median(values) for name, values in walls.items()}
    single = medians["1 worker, 1 core"]
    plain = statistics.median(papermill)
    print()
    print(f"cohort of {args.submissions} copies of the solution, medians of {args.rounds} round(s):")
    for name, wall in medians.items():
        print(f"  {name:<24} {wall:7.1f} s   {wall / args.submissions:5.1f} s per submission   "
              f"time ratio to 1 worker on 1 core {wall / single:.3f}")
    per_submission = single / args.submissions
    print(f"plain papermill on 1 core: {plain:.1f} s per notebook")
    print(f"overhead of 1 worker on 1 core over plain papermill: {per_submission - plain:+.1f} s per submission "
          f"({100 * (per_submission / plain - 1):+.1f}%)")
    ratio = medians["2 workers, 1 core each"] / single
    print(f"2 one-core workers take {ratio:.3f} of 1 one-core worker's time (goal: at most 0.6)")

    if args.json:
        args.json.write_text(json.dumps({"walls": walls, "papermill_one_core": papermill,
                                         "submissions": args.submissions}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
