"""Time each reference task per seed, CPU and wall clock, in one run.

    python benchmarks/reference_timings.py [--seeds 3] [--device cpu] [--data-dir DIR] [--quick]

Prints, for each task, the mean wall and CPU seconds per seed and each task's CPU time relative to
XGBoost's, measured side by side in the same process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 to N-1 (default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ADGRADE_DATA", "data/nsl-kdd")))
    parser.add_argument("--quick", action="store_true", help="time the short run used by the tests")
    args = parser.parse_args()

    from reference import calibrate

    document = calibrate.run(args.data_dir, list(range(args.seeds)), device=args.device, quick=args.quick)
    baseline = document["tasks"]["xgboost"]["cpu_seconds"]["mean"]
    print(f"device {document['device']}, {args.seeds} seed(s), quick={args.quick}")
    print(f"{'task':<15} {'wall s/seed':>12} {'CPU s/seed':>11} {'CPU vs xgboost':>15}")
    for task, result in document["tasks"].items():
        wall = result["runtime_seconds"]["mean"]
        cpu = result["cpu_seconds"]["mean"]
        print(f"{task:<15} {wall:>12.1f} {cpu:>11.1f} {cpu / baseline:>14.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
