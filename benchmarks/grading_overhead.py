"""Measure what grading adds to a notebook's own run time.

Runs, alternately and in one process tree, (a) plain papermill on the reference
solution and (b) `adgrade grade` on the same notebook, each as a whole command,
and prints the median wall times, their ratio, and where the grader's time goes.

    python benchmarks/grading_overhead.py [--repeats 3] [--backend local] [--data-dir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
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


def plain_papermill(data_dir: Path, scratch: Path) -> float:
    """Run the solution with the papermill command line in a fresh folder; return wall seconds."""
    workspace = scratch / "papermill"
    shutil.rmtree(workspace, ignore_errors=True)
    (workspace / "data").mkdir(parents=True)
    shutil.copyfile(data_dir / "KDDTrain+_20Percent.txt", workspace / "data" / "KDDTrain+_20Percent.txt")
    environment = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    subprocess.run([str(BIN / "papermill"), str(SOLUTION), str(workspace / "out.ipynb"), "--cwd", str(workspace),
                    "-k", "python3", "-p", "seed", "42", "--no-progress-bar", "--log-level", "WARNING"],
                   check=True, env=environment, capture_output=True)
    return time.perf_counter() - started


def graded(data_dir: Path, scratch: Path, backend: str) -> tuple[float, dict[str, float]]:
    """Grade the solution with the adgrade command line; return wall seconds and the result's timings."""
    output = scratch / "adgrade"
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([str(BIN / "adgrade"), "grade", str(SOLUTION), "--data-dir", str(data_dir),
                    "--output", str(output), "--backend", backend, "--json"], check=True, capture_output=True)
    wall = time.perf_counter() - started
    result = json.loads((output / "result.json").read_text())
    if result["score"] != result["max_score"]:
        raise SystemExit(f"the solution scored {result['score']}/{result['max_score']}; fix that before benchmarking")
    return wall, result["timings"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ADGRADE_DATA", "data/nsl-kdd")),
                        help="NSL-KDD folder (default: $ADGRADE_DATA)")
    parser.add_argument("--backend", default="local", choices=("local", "bwrap", "docker"),
                        help="back end for adgrade grade (default: %(default)s, which runs like plain papermill)")
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="adgrade-bench-"))
    papermill_walls, grade_walls, splits = [], [], []
    try:
        for repeat in range(args.repeats):
            papermill_walls.append(plain_papermill(args.data_dir, scratch))
            wall, timings = graded(args.data_dir, scratch, args.backend)
            grade_walls.append(wall)
            splits.append(timings)
            print(f"run {repeat + 1}/{args.repeats}: papermill {papermill_walls[-1]:.1f} s, "
                  f"adgrade grade {wall:.1f} s", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    plain = statistics.median(papermill_walls)
    grading = statistics.median(grade_walls)

    def median_of(key: str) -> float:
        return statistics.median(split.get(key, 0.0) for split in splits)

    parts = {
        "kernel start": median_of("execution_kernel_start"),
        "cell execution": median_of("execution_execute"),
        "export cell": median_of("execution_export"),
        "scoring (after the notebook ends)": median_of("scoring_wait"),
    }
    parts["other (intake, workspace, runner start, copying)"] = max(grading - sum(parts.values()), 0.0)

    print()
    print(f"plain papermill, median of {args.repeats}: {plain:.1f} s")
    print(f"adgrade grade --backend {args.backend}, median of {args.repeats}:   {grading:.1f} s")
    print(f"ratio adgrade / papermill: {grading / plain:.3f} (overhead {100 * (grading / plain - 1):+.1f}%)")
    print("split of adgrade's wall time (medians):")
    for name, seconds in parts.items():
        print(f"  {name:<50} {seconds:6.1f} s  {100 * seconds / grading:5.1f}%")

    if args.json:
        args.json.write_text(json.dumps({"papermill": papermill_walls, "adgrade": grade_walls, "split": parts,
                                         "ratio": grading / plain}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
