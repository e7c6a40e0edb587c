"""Reference implementations and calibration: reproducible runs, the metrics schema, resolved thresholds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO
from harness.expected import ExpectedMetricsError, MetricSummary, evaluate_expression, load_expected
from harness.rubric import load_rubric
from reference import calibrate

EXPECTED = REPO / "reference" / "expected_metrics.json"


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory, data_dir):
    """Two quick calibration runs with seed 0 on the CPU: one through the command line, one through the API."""
    output = tmp_path_factory.mktemp("reference") / "expected.json"
    completed = subprocess.run(
        [sys.executable, "-m", "harness.cli", "reference", "run", "--quick", "--seeds", "1", "--device", "cpu",
         "--data-dir", str(data_dir), "--output", str(output)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    second = calibrate.run(data_dir, [0], device="cpu", quick=True)
    return json.loads(output.read_text()), second, completed


def test_quick_run_covers_every_task(quick_runs):
    first, _, completed = quick_runs
    assert set(first["tasks"]) == {"xgboost", "autoencoder", "gan", "efficient_gan"}
    assert first["quick"] is True
    assert first["device"] == "cpu"
    assert "Written to" in completed.stdout


def test_quick_run_covers_threshold_rules(quick_runs):
    first, _, _ = quick_runs
    autoencoder_metrics = first["tasks"]["autoencoder"]["metrics"]
    for rule in ("youden_test", "youden_validation", "p95_train", "p99_train", "mean_3std_train", "f1_validation"):
        assert f"accuracy_{rule}" in autoencoder_metrics, rule
        assert f"accuracy_kddtest_{rule}" in autoencoder_metrics, rule


def test_fixed_seed_reproduces_metrics(quick_runs):
    first, second, _ = quick_runs
    for task, result in first["tasks"].items():
        assert result["per_seed"] == second["tasks"][task]["per_seed"], task


def test_quick_run_output_matches_schema(quick_runs, tmp_path):
    first, _, _ = quick_runs
    path = tmp_path / "expected.json"
    path.write_text(json.dumps(first))
    expected = load_expected(path)
    assert expected.metric("xgboost.multiclass_accuracy").n == 1


def test_committed_expected_metrics_valid():
    expected = load_expected(EXPECTED)
    assert expected.quick is False
    assert len(expected.seeds) >= 5
    assert set(expected.tasks) == {"xgboost", "autoencoder", "gan", "efficient_gan"}
    for task in expected.tasks.values():
        assert task.runtime_seconds["mean"] > 0


def test_schema_rejects_mean_outside_range(tmp_path):
    document = json.loads(EXPECTED.read_text())
    document["tasks"]["xgboost"]["metrics"]["multiclass_accuracy"]["mean"] = 2.0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ExpectedMetricsError, match="outside"):
        load_expected(path)


def test_schema_rejects_missing_device(tmp_path):
    document = json.loads(EXPECTED.read_text())
    del document["device"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ExpectedMetricsError, match="device"):
        load_expected(path)


def test_missing_metric_names_regeneration():
    with pytest.raises(ExpectedMetricsError, match="adgrade reference run"):
        load_expected(EXPECTED).metric("xgboost.no_such_metric")


def test_expression_evaluates_over_summary():
    summary = MetricSummary(mean=0.9, std=0.01, min=0.88, max=0.92, n=5)
    assert evaluate_expression("mean - 3 * std", summary) == pytest.approx(0.87)
    assert evaluate_expression("min - 0.01", summary) == pytest.approx(0.87)


@pytest.mark.parametrize("expression", ["__import__('os')", "mean.real", "[mean]", "mean ** 2", "n"])
def test_expression_rejects_other_syntax(expression):
    summary = MetricSummary(mean=0.9, std=0.01, min=0.88, max=0.92, n=5)
    with pytest.raises(ValueError, match="may only use"):
        evaluate_expression(expression, summary)


def test_every_rubric_threshold_resolves():
    rubric = load_rubric()
    for test in rubric.tests:
        if test.course_bar is None and test.threshold is None:
            continue
        assert isinstance(test.threshold, float), test.name
        assert test.provenance, test.name
        if test.course_bar is not None:
            assert test.threshold <= test.course_bar, test.name
        if test.floor is not None:
            assert test.threshold >= test.floor, test.name


def test_course_bars_cap_calibrated_thresholds():
    rubric = load_rubric()
    assert rubric.test("test_xgboost_accuracy").threshold == 0.95
    assert rubric.test("test_autoencoder_accuracy").threshold == 0.90
    assert "course bar" in rubric.test("test_xgboost_accuracy").provenance


def test_calibrated_threshold_cites_expected_metrics():
    rubric = load_rubric()
    test = rubric.test("test_autoencoder_auroc_kddtest")
    summary = load_expected(EXPECTED).metric("autoencoder.auroc_kddtest")
    assert test.threshold == pytest.approx(summary.mean - 3 * summary.std)
    assert "autoencoder.auroc_kddtest" in test.provenance


def test_rubric_explain_lists_origins():
    completed = subprocess.run([sys.executable, "-m", "harness.cli", "rubric", "explain"], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    for test in load_rubric().tests:
        assert test.name in completed.stdout
    assert "course bar 0.95" in completed.stdout
    assert "expected_metrics.json" in completed.stdout


def test_rubric_rejects_quick_metrics(tmp_path, quick_runs):
    import shutil

    from harness.rubric import RubricError

    first, _, _ = quick_runs
    rubric_dir = tmp_path / "rubrics" / "copy"
    shutil.copytree(load_rubric().path, rubric_dir)
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "expected_metrics.json").write_text(json.dumps(first))
    with pytest.raises(RubricError, match="--quick run with 1 seed"):
        load_rubric(rubric_dir)
