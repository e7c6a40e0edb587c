"""The calibration run: every reference task over several seeds, summarised into expected_metrics.json."""

from __future__ import annotations

import datetime
import json
import logging
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from harness import PROJECT_ROOT, data
from harness.versions import package_versions

logger = logging.getLogger(__name__)

EXPECTED_METRICS = PROJECT_ROOT / "reference" / "expected_metrics.json"
QUICK_METRICS = PROJECT_ROOT / "reference" / "expected_metrics.quick.json"
SCHEMA_VERSION = 1
DEFAULT_SEEDS = 5
TASKS = ("xgboost", "autoencoder", "gan", "efficient_gan")


def summarise(values: list[float]) -> dict[str, float | int]:
    """Mean, sample standard deviation, minimum, maximum and count of one metric over seeds."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def _task_runners(device: str, quick: bool) -> dict[str, Callable]:
    from reference import autoencoder, gan, xgboost_models

    return {
        "xgboost": lambda split, seed: xgboost_models.evaluate(split, seed, device, quick),
        "autoencoder": lambda split, seed: autoencoder.evaluate(split, seed, quick),
        "gan": lambda split, seed: gan.evaluate_gan(split, seed, quick),
        "efficient_gan": lambda split, seed: gan.evaluate_efficient_gan(split, seed, quick),
    }


def run(data_dir: Path, seeds: list[int], device: str = "auto", quick: bool = False,
        tasks: tuple[str, ...] = TASKS, on_progress: Callable[[str, int], None] | None = None) -> dict:
    """Train and score every reference task for every seed; return the expected-metrics document."""
    import tensorflow as tf

    from reference.pipeline import course_split, resolve_device, set_seeds

    # Keras warns about retracing when one process trains many small models; the runs are meant to.
    tf.get_logger().setLevel(logging.ERROR)
    data.require_files(data_dir, data.REQUIRED_FILES)
    device = resolve_device(device)
    runners = _task_runners(device, quick)

    per_task: dict[str, dict] = {task: {"metrics": {}, "runtime_seconds": {}, "cpu_seconds": {}} for task in tasks}
    for seed in seeds:
        split = course_split(data_dir, seed)
        for task in tasks:
            set_seeds(seed)
            started, cpu_started = time.perf_counter(), time.process_time()
            measured = runners[task](split, seed)
            per_task[task]["runtime_seconds"][str(seed)] = round(time.perf_counter() - started, 2)
            per_task[task]["cpu_seconds"][str(seed)] = round(time.process_time() - cpu_started, 2)
            for name, value in measured.items():
                per_task[task]["metrics"].setdefault(name, []).append(float(value))
            logger.info("seed %d task %s done", seed, task)
            if on_progress:
                on_progress(task, seed)

    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "device": device,
        "quick": quick,
        "seeds": seeds,
        "python": platform.python_version(),
        "versions": package_versions(),
        "data": {name: data.FILES[name].sha256 for name in data.REQUIRED_FILES},
        "tasks": {
            task: {
                "runtime_seconds": {**result["runtime_seconds"],
                                    "mean": round(statistics.fmean(result["runtime_seconds"].values()), 2)},
                "cpu_seconds": {**result["cpu_seconds"],
                                "mean": round(statistics.fmean(result["cpu_seconds"].values()), 2)},
                "metrics": {name: summarise(values) for name, values in result["metrics"].items()},
                "per_seed": {name: values for name, values in result["metrics"].items()},
            }
            for task, result in per_task.items()
        },
    }


def write(document: dict, path: Path = EXPECTED_METRICS) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
