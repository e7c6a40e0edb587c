"""Measure each execution back end's per-submission overhead against the local back end.

Runs one small notebook through the local, bwrap and docker back ends in turn,
REPEATS rounds, in one process, so every back end runs under the same machine load. The
notebook trains nothing: it imports NumPy and exports a 32 MiB array, so what differs
between back ends is their own work (sandbox start, copying files in and out,
teardown), not the notebook's. Prints the median wall time of each back end, its
overhead over local, and Docker's time split into start, run, collect and remove.

    python benchmarks/backend_overhead.py [--repeats 7] [--image adgrade-grader:0.1.0] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.execution import BackendError, ExecutionLimits, get_backend  # noqa: E402
from harness.execution.base import EXPORT_DIR, JOB_FILE, SUBMISSION_NOTEBOOK  # noqa: E402
from harness.export import EXPORT_TAG  # noqa: E402

LIMITS = ExecutionLimits(cell_timeout=120, notebook_timeout=300, export_timeout=60, memory_mib=4096)
CELLS = [
    "import numpy as np\nrng = np.random.default_rng(0)",
    "features = rng.random((1024, 4096), dtype=np.float64)  # 32 MiB, saved by the export cell",
    "value = float(features.mean())\nprint(value)",
]
DOCKER_PARTS = ("container_start", "container_run", "container_collect", "container_remove")


def prepare(workspace: Path) -> None:
    (workspace / "data").mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    notebook.cells.append(nbformat.v4.new_code_cell("# export", metadata={"tags": [EXPORT_TAG]}))
    nbformat.write(notebook, workspace / SUBMISSION_NOTEBOOK)
    job = {
        "parameters": {},
        "limits": {"cell_timeout": LIMITS.cell_timeout, "notebook_timeout": LIMITS.notebook_timeout,
                   "export_timeout": LIMITS.export_timeout, "memory_mib": LIMITS.memory_mib},
        "artifacts": [{"name": "features", "task": "t", "kind": "array", "sources": ["features"],
                       "max_bytes": 64 * 1024 * 1024},
                      {"name": "value", "task": "t", "kind": "number", "sources": ["value"]}],
    }
    (workspace / JOB_FILE).write_text(json.dumps(job))


def run_once(backend, scratch: Path) -> dict[str, float]:
    workspace = Path(tempfile.mkdtemp(dir=scratch)) / "workspace"
    prepare(workspace)
    started = time.perf_counter()
    outcome = backend.execute(workspace, LIMITS)
    wall = time.perf_counter() - started
    exported = workspace / EXPORT_DIR / "features.npy"
    if outcome.status != "completed" or not exported.is_file():
        raise SystemExit(f"{backend.name}: the notebook did not complete ({outcome.status}: {outcome.message})")
    return {"wall": wall, **{part: outcome.timings.get(part, 0.0) for part in DOCKER_PARTS}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--image", help="grading image for the docker back end")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()

    backends = {}
    for name in ("local", "bwrap", "docker"):
        try:
            backends[name] = get_backend(name, image=args.image)
        except BackendError as error:
            print(f"skipping {name}: {error}")
    if "local" not in backends or len(backends) < 2:
        raise SystemExit("need the local back end and at least one sandbox")

    runs: dict[str, list[dict[str, float]]] = {name: [] for name in backends}
    with tempfile.TemporaryDirectory(prefix="adgrade-bench-") as scratch:
        for name, backend in backends.items():  # one warm-up run each: page cache, image layers
            run_once(backend, Path(scratch))
        for round_number in range(args.repeats):
            # Rotate the order so no back end always runs right after another.
            names = list(backends)
            names = names[round_number % len(names):] + names[:round_number % len(names)]
            for name in names:
                runs[name].append(run_once(backends[name], Path(scratch)))

    median = {name: statistics.median(r["wall"] for r in values) for name, values in runs.items()}
    print(f"\nnotebook: import NumPy, build and export a 32 MiB array; {args.repeats} rounds, medians")
    print(f"{'back end':<8} {'wall s':>8} {'overhead s':>11} {'ratio':>7}")
    for name in runs:
        overhead = median[name] - median["local"]
        print(f"{name:<8} {median[name]:8.2f} {overhead:11.2f} {median[name] / median['local']:7.2f}")
    if "docker" in runs:
        parts = {part: statistics.median(r[part] for r in runs["docker"]) for part in DOCKER_PARTS}
        print("docker:  " + ", ".join(f"{part.removeprefix('container_')} {seconds:.2f} s"
                                      for part, seconds in parts.items()))
    if args.json:
        args.json.write_text(json.dumps({"repeats": args.repeats, "median_wall": median, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
