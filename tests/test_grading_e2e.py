"""End to end: real notebooks, real kernels and the real NSL-KDD files, graded by the assessment rubric.

Each submission is graded once per session (about 40 s each on 2 CPU cores) and
the tests below check its status, score and the tests it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import REPO, SOLUTION, SUBMISSIONS, TEMPLATE
from harness.grader import grade_submission
from harness.result import GradeResult
from harness.rubric import load_rubric

pytestmark = pytest.mark.e2e

RUBRIC_TESTS = load_rubric().tests
ALL_TESTS = {test.name for test in RUBRIC_TESTS}
AUTOENCODER_TESTS = {test.name for test in RUBRIC_TESTS if test.task == "autoencoder"}
GAN_TESTS = {test.name for test in RUBRIC_TESTS if test.task == "gan"}

# submission -> (status, score out of 26, tests expected to fail)
EXPECTED = {
    "softmax_argmax": ("execution_error", 9, {"test_xgboost_reported_accuracy", "test_confusion_matrix"}
                       | AUTOENCODER_TESTS | GAN_TESTS),
    "percentile_threshold": ("graded", 24, {"test_threshold_is_youden"}),
    "scaler_all_rows": ("graded", 25, {"test_scaler_fitted_on_training_rows"}),
    "encoder_wired_to_input": ("graded", 24, {"test_autoencoder_architecture"}),
    "fake_xgb_acc": ("graded", 25, {"test_xgboost_reported_accuracy"}),
    "autoencoder_error": ("execution_error", 11, AUTOENCODER_TESTS | GAN_TESTS),
    # The course rubric's compatibility profile rewrites Adam(lr=...) to learning_rate.
    "old_keras_lr": ("graded", 26, set()),
    "gan_collapsed": ("graded", 21, GAN_TESTS - {"test_gan_architecture"}),
}


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="session")
def graded(tmp_path_factory, data_dir):
    """Grade a submission once per session and return its result."""
    cache: dict[str, GradeResult] = {}

    def grade(name: str) -> GradeResult:
        if name not in cache:
            output = tmp_path_factory.mktemp(name)
            cache[name] = grade_submission(SUBMISSIONS / f"{name}.ipynb", load_rubric(), data_dir, output)
        return cache[name]
    return grade


@pytest.fixture(scope="session")
def solution_run(tmp_path_factory, data_dir):
    """The solution graded through the command line, as course staff would."""
    output = tmp_path_factory.mktemp("solution")
    completed = run_cli("grade", str(SOLUTION), "--data-dir", str(data_dir), "--output", str(output), "--json")
    return completed, output


def test_solution_gets_full_marks(solution_run):
    completed, output = solution_run
    result = GradeResult.read(output / "result.json")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert result.status == "graded"
    assert result.score == result.max_score == 26
    assert [t.name for t in result.tests if t.status != "passed"] == []


def test_solution_result_records_run(solution_run):
    completed, output = solution_run
    result = GradeResult.read(output / "result.json")
    printed = json.loads(completed.stdout)
    assert printed["score"] == 26
    assert result.rubric.name == "nslkdd_assessment"
    assert result.environment["versions"]["xgboost"] == "3.2.0"
    assert result.environment["versions"]["tensorflow"] == "2.21.0"
    assert result.environment["device"] == "cpu"
    assert {"execution_kernel_start", "execution_execute", "execution_export", "total"} <= set(result.timings)
    executed = nbformat.read(output / "executed.ipynb", as_version=4)
    assert any("XGBoost accuracy" in str(cell.get("outputs")) for cell in executed.cells)


def test_solution_metrics_recomputed(solution_run):
    _, output = solution_run
    tests = {t.name: t for t in GradeResult.read(output / "result.json").tests}
    assert tests["test_xgboost_accuracy"].metrics["accuracy"] > 0.99
    assert tests["test_autoencoder_accuracy"].metrics["accuracy"] > 0.92
    assert tests["test_threshold_is_youden"].metrics["youden_j_at_threshold"] == pytest.approx(
        tests["test_threshold_is_youden"].metrics["youden_j_max"])
    assert 0.75 < tests["test_xgboost_binary_accuracy_kddtest"].metrics["accuracy"] < 0.9
    assert tests["test_autoencoder_auroc_kddtest"].metrics["auroc"] > 0.9
    assert tests["test_gan_auroc"].metrics["auroc"] > 0.95


def test_solution_matches_reference_architecture(solution_run):
    from reference import autoencoder

    _, output = solution_run
    tests = {t.name: t for t in GradeResult.read(output / "result.json").tests}
    widths = [*autoencoder.HIDDEN_UNITS, autoencoder.LATENT_DIM]
    assert tests["test_autoencoder_architecture"].metrics["encoder_widths"] == " ".join(map(str, widths))


def test_template_scores_zero_with_messages(tmp_path, data_dir):
    result = grade_submission(TEMPLATE, load_rubric(), data_dir, tmp_path)
    assert result.status == "execution_error"
    assert result.score == 0
    assert "#### FIX ME ####" in result.message
    assert {t.name for t in result.tests} == ALL_TESTS
    for test in result.tests:
        assert test.status == "failed", test.name
        assert test.message, test.name
    task_titles = {t.title for t in load_rubric().tasks}
    named = {title for title in task_titles if any(t.message.startswith(title) for t in result.tests)}
    assert named == task_titles


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flawed_submission_partial_score(graded, name):
    status, score, failing = EXPECTED[name]
    result = graded(name)
    assert result.status == status
    assert {t.name for t in result.tests if t.status != "passed"} == failing
    assert result.score == score
    for test in result.tests:
        if test.status != "passed":
            assert test.message, test.name


def test_cell_error_message_names_cell(graded):
    result = graded("autoencoder_error")
    assert result.message.startswith("Cell 17 (id encoder, task 'Autoencoder detector') raised NameError")
    assert result.failed_cell["ename"] == "NameError"


def test_fake_accuracy_reported_as_warning(graded):
    result = graded("fake_xgb_acc")
    test = next(t for t in result.tests if t.name == "test_xgboost_reported_accuracy")
    assert test.metrics["reported"] == 0.9999
    assert test.metrics["recomputed"] == pytest.approx(0.997, abs=0.002)
    assert any("xgb_acc is 0.9999" in warning for warning in result.warnings)


def test_input_call_exits_one_with_message(tmp_path, data_dir):
    completed = run_cli("grade", str(SUBMISSIONS / "asks_for_input.ipynb"), "--data-dir", str(data_dir),
                        "--output", str(tmp_path))
    result = GradeResult.read(tmp_path / "result.json")
    assert completed.returncode == 1
    assert result.status == "execution_error"
    assert "called input()" in result.message
    assert result.score == 11
    assert result.max_score == 26


def test_check_hides_hidden_tests(tmp_path, data_dir):
    # Relative paths, as a learner types them, from the folder that contains the notebook.
    shutil.copyfile(SUBMISSIONS / "scaler_all_rows.ipynb", tmp_path / "mine.ipynb")
    completed = run_cli("check", "mine.ipynb", "--data-dir", os.path.relpath(data_dir, tmp_path),
                        "--output", "feedback", cwd=tmp_path)
    result = GradeResult.read(tmp_path / "feedback" / "result.json")
    hidden = {t.name for t in load_rubric().tests if t.visibility == "hidden"}
    assert completed.returncode == 0
    assert result.hidden_tests == 3
    assert not hidden & {t.name for t in result.tests}
    assert result.max_score == 22
    assert result.score == 21
    for name in hidden:
        assert name not in completed.stdout
    assert "3 hidden test(s) also count toward your grade" in completed.stdout
    assert "Hint for Split and scale" in completed.stdout


def test_missing_data_dir_writes_harness_error(tmp_path):
    completed = run_cli("grade", str(SOLUTION), "--data-dir", str(tmp_path / "nowhere"),
                        "--output", str(tmp_path / "out"))
    result = GradeResult.read(tmp_path / "out" / "result.json")
    assert completed.returncode == 2
    assert result.status == "harness_error"
    assert "adgrade data fetch" in result.message


def test_notebook_cannot_forge_scoring_report(tmp_path, data_dir):
    """Learner code that writes report files wherever the scorer might look still scores 0."""
    notebook = nbformat.read(TEMPLATE, as_version=4)
    forge = """\
import json, pathlib
report = json.dumps({"tests": {name: {"status": "passed", "message": "forged", "metrics": {}}
                               for name in ["test_xgboost_accuracy", "test_autoencoder_accuracy"]}})
for folder in [pathlib.Path(".."), pathlib.Path("../scoring")]:
    folder.mkdir(exist_ok=True)
    (folder / "report.json").write_text(report)
"""
    notebook.cells.insert(2, nbformat.v4.new_code_cell(forge))
    path = tmp_path / "forged.ipynb"
    nbformat.write(notebook, path)
    result = grade_submission(path, load_rubric(), data_dir, tmp_path / "out")
    assert result.score == 0
    assert all(t.message != "forged" for t in result.tests)
