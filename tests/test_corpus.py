"""The corpus of broken, hostile and legacy submissions, graded end to end on the real data.

Each notebook in tests/submissions/ (built by build_submissions.py) is graded once per
session with the course rubric. Every case asserts the status, the score, the tests
that fail and a message a learner can act on. The first flawed samples are asserted
in test_grading_e2e.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO, SUBMISSIONS
from harness.grader import GradingOptions, grade_submission
from harness.result import GradeResult
from harness.rubric import Compatibility, load_rubric

pytestmark = pytest.mark.e2e

RUBRIC = load_rubric()
TESTS_OF = {task.id: {test.name for test in RUBRIC.tests if test.task == task.id} for task in RUBRIC.tasks}
AUTOENCODER, GAN, XGBOOST = TESTS_OF["autoencoder"], TESTS_OF["gan"], TESTS_OF["xgboost"]
UNTRAINED_FAILURES = {"test_autoencoder_accuracy", "test_autoencoder_auroc_kddtest", "test_gan_auroc",
                      "test_gan_auroc_kddtest"}


@dataclass
class Case:
    status: str
    score: float
    failing: set[str] = field(default_factory=set)
    # Text that must appear in the result's message, or in the first failing test's message.
    says: str = ""


CASES: dict[str, Case] = {
    # Tampering: every metric is recomputed, so only the comparison with the stored number fails.
    "always_equal_accuracy": Case("graded", 25, {"test_xgboost_reported_accuracy"}, "xgb_acc is 1.0000"),
    "patched_accuracy_score": Case("graded", 24, {"test_xgboost_reported_accuracy",
                                                  "test_autoencoder_reported_accuracy"}, "xgb_acc is 1.0000"),
    "patched_booster_predict": Case("graded", 24, {"test_xgboost_reported_accuracy", "test_confusion_matrix"}),
    "patched_keras_predict": Case("graded", 15, {"test_autoencoder_accuracy", "test_autoencoder_reported_accuracy",
                                                 "test_threshold_is_youden"} | (GAN - {"test_gan_architecture"})),
    "planted_files": Case("graded", 26, set()),
    "bad_assessment_claims": Case("graded", 26, set()),
    "forged_scores": Case("graded", 20, {"test_autoencoder_accuracy", "test_autoencoder_reported_accuracy",
                                         "test_threshold_is_youden"}, "reconstruction_scores do not match"),
    # Artifacts the scorer rejects on load.
    "oversized_artifact": Case("graded", 25, {"test_confusion_matrix"}, "-byte limit"),
    "object_array": Case("graded", 25, {"test_confusion_matrix"}, "expected a numeric array"),
    "nan_threshold": Case("graded", 20, {"test_autoencoder_accuracy", "test_autoencoder_reported_accuracy",
                                         "test_threshold_is_youden"}, "expected a finite number"),
    "infinite_values": Case("execution_error", 3, set(), "contains 1 NaN or infinite value(s)"),
    "narrow_xgb_model": Case("graded", 18, XGBOOST, "expects 10 features but x_test has 118"),
    "lambda_layer": Case("graded", 17, AUTOENCODER, "Lambda"),
    "corrupt_xgb_tree": Case("graded", 18, XGBOOST, "crashed XGBoost when predicting"),
    "broken_scaler": Case("graded", 3, set(), "is not a usable fitted scaler"),
    "custom_layer": Case("graded", 17, AUTOENCODER, "in safe mode"),
    # Method: test rows in the training split.
    "train_on_test_rows": Case("graded", 5, set(), "occur in both x_train and x_test"),
    # Untrained autoencoder and GAN, on the course's split and on held-out rows chosen to flatter them.
    "untrained_models": Case("graded", 19, UNTRAINED_FAILURES, "accuracy on your test split is"),
    "cherry_picked_split": Case("graded", 19, UNTRAINED_FAILURES, "accuracy on the course's test split is"),
    # Models that read a label code hidden in x_test below the precision rows are compared at: they are
    # scored on the grader's own rebuild of the test rows, where the code is absent.
    "hidden_label_code": Case("graded", 11, {"test_xgboost_accuracy", "test_xgboost_binary_accuracy_kddtest",
                                             "test_autoencoder_accuracy", "test_autoencoder_auroc_kddtest",
                                             "test_gan_auroc", "test_gan_not_collapsed", "test_gan_auroc_kddtest"},
                              "accuracy on your test split is 0.5"),
    # Feature columns the data does not have, under which every row of the file would look the same.
    "forged_feature_columns": Case("graded", 4, set(), "numeric_cat_data lacks 118 of the feature columns"),
    # Harmless variations that must not cost points.
    "float32_features": Case("graded", 26, set()),
    "minmax_clip": Case("graded", 26, set()),
    # Exports a scorer must reject cleanly, never with a test status "error".
    "boolean_labels": Case("graded", 6, set(), "holds True/False values"),
    "multi_io_models": Case("graded", 11, AUTOENCODER | GAN, "has 2 outputs"),
    "manifest_as_list": Case("graded", 26, set()),
    "scaler_attributes_list": Case("graded", 3, set(), "attributes are not a mapping"),
    "reserved_tags": Case("graded", 26, set()),
    "xgb_dataframe": Case("graded", 26, set()),
    "huge_unused_scale": Case("graded", 22, {"test_xgboost_binary_accuracy_kddtest", "test_autoencoder_auroc_kddtest",
                                             "test_gan_auroc_kddtest"}, "to NaN, infinity or beyond"),
    "odd_model_internals": Case("graded", 5, set(), "objective is reg:squarederror"),
    "rank3_outputs": Case("graded", 11, AUTOENCODER | GAN, "returns outputs of shape (None, 2, 118)"),
    "boolean_features": Case("graded", 5, set(), "`x_train` has dtype bool"),
    # Programs that stop themselves or never stop: the tasks finished before keep their points.
    "sys_exit": Case("execution_error", 11, AUTOENCODER | GAN, "raised SystemExit"),
    "os_exit": Case("execution_error", 11, AUTOENCODER | GAN, "The Python kernel died in Cell 15 (id stop)"),
    "kill_kernel": Case("execution_error", 20, GAN, "The Python kernel died"),
    "endless_loop": Case("timeout", 11, AUTOENCODER | GAN, "ran past the per-cell time limit"),
    # Structure and format.
    "code_cell_as_markdown": Case("graded", 25, {"test_confusion_matrix"}, "conf_matrix"),
    "duplicate_cell_ids": Case("graded", 26, set()),
    "nbformat3": Case("graded", 26, set()),
    "nbformat44_no_ids": Case("graded", 26, set()),
    "no_kernel_metadata": Case("graded", 26, set()),
    "empty_file": Case("invalid_submission", 0, set(), "is empty"),
    "not_json": Case("invalid_submission", 0, set(), "is not a Jupyter notebook"),
    "png_renamed": Case("invalid_submission", 0, set(), "is not a Jupyter notebook"),
    "json_not_notebook": Case("invalid_submission", 0, set(), "could not be read as a notebook"),
    # Read-only cells.
    "edited_locked_cell": Case("graded", 26, set()),
    "moved_locked_cell": Case("graded", 26, set()),
    "deleted_locked_cell": Case("execution_error", 21, GAN - {"test_gan_architecture"},
                                "name 'train_gan' is not defined"),
    # Noise that is not failure.
    "stderr_warnings": Case("graded", 26, set()),
    "non_ascii": Case("graded", 26, set()),
    # A notebook of the 2020 edition, graded through the compatibility profile.
    "legacy_2020_edition": Case("graded", 26, set()),
}
# Cases whose failing tests are too many to list: only the count of passing points is asserted.
UNLISTED_FAILURES = {"infinite_values", "train_on_test_rows", "broken_scaler", "forged_feature_columns",
                     "boolean_labels", "scaler_attributes_list", "odd_model_internals", "boolean_features"}


def options_for(name: str) -> GradingOptions:
    return GradingOptions(backend="local", cell_timeout=30 if name == "endless_loop" else None)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, data_dir):
    """Grade a corpus notebook once per session and return its result."""
    cache: dict[str, GradeResult] = {}

    def grade(name: str) -> GradeResult:
        if name not in cache:
            output = tmp_path_factory.mktemp("corpus") / name
            environment = os.environ.copy()
            try:
                if name == "non_ascii":  # a C locale, where Python's default encoding is not UTF-8
                    os.environ.update(LANG="C", LC_ALL="C")
                cache[name] = grade_submission(SUBMISSIONS / f"{name}.ipynb", RUBRIC, data_dir, output,
                                               options_for(name))
            finally:
                os.environ.clear()
                os.environ.update(environment)
        return cache[name]
    return grade


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(corpus, name):
    case = CASES[name]
    result = corpus(name)
    failing = {t.name for t in result.tests if t.status != "passed"}
    assert result.status == case.status, result.message
    assert result.score == case.score
    if name not in UNLISTED_FAILURES:
        assert failing == case.failing
    texts = [result.message] + [t.message for t in result.tests if t.status != "passed"]
    assert case.says in " ".join(texts)
    if result.status != "graded":
        assert result.message, "a submission that was not graded in full needs a message"
    for test in result.tests:
        if test.status != "passed":
            assert test.message, test.name
        # "error" means the rubric itself failed: nothing a notebook does may cause it.
        assert test.status != "error", f"{test.name}: {test.message}"


def test_bad_claims_are_recorded_not_trusted(corpus):
    claims = [claim for claim in corpus("bad_assessment_claims").integrity.claims
              if claim.test == "assessment.xgb_accuracy_score"]
    assert len(claims) == 1  # the call whose function name is a list is ignored
    assert claims[0].claimed is None  # 10**400 is no usable number
    assert not claims[0].agrees


def test_chosen_test_rows_gain_nothing(corpus):
    """Holding out the rows untrained models get right scores no better than the course's split."""
    chosen, plain = corpus("cherry_picked_split"), corpus("untrained_models")
    assert chosen.score <= plain.score
    split = next(t for t in chosen.tests if t.name == "test_split_partitions_training_file")
    assert split.metrics["course_split"] is False
    assert "is not the one train_test_split" in split.message
    # On the rows it chose, the notebook's own numbers look good: the grader measured elsewhere.
    reported = next(t for t in chosen.tests if t.name == "test_autoencoder_reported_accuracy")
    accuracy = next(t for t in chosen.tests if t.name == "test_autoencoder_accuracy")
    assert reported.metrics["recomputed"] > 0.95
    assert accuracy.metrics["accuracy"] < 0.9
    assert accuracy.metrics["evaluation_split"] == "course"


def test_reserved_tags_are_removed_with_warning(corpus):
    result = corpus("reserved_tags")
    removed = [warning for warning in result.warnings if "reserves for its own cells" in warning]
    assert len(removed) == 20  # 19 task cells tagged adgrade-export, and gan-params tagged injected-parameters
    assert any("injected-parameters" in warning for warning in removed)


def test_corpus_is_complete():
    """Every notebook in the folder has a case here or in test_grading_e2e, and the corpus has at least 30."""
    from test_grading_e2e import EXPECTED

    names = {path.stem for path in SUBMISSIONS.glob("*.ipynb")}
    # asks_for_input has tests of its own in test_grading_e2e (the message and the exit status).
    assert names == set(CASES) | set(EXPECTED) | {"asks_for_input"}
    assert len(names) >= 30


def test_claims_record_the_difference(corpus):
    claims = {claim.test: claim for claim in corpus("patched_accuracy_score").integrity.claims}
    xgboost = claims["test_xgboost_reported_accuracy"]
    assert xgboost.claimed == 1.0
    assert not xgboost.agrees
    assert xgboost.difference == pytest.approx(1.0 - xgboost.recomputed, abs=1e-6)
    assert xgboost.recomputed > 0.99


def test_planted_files_are_ignored_with_warning(corpus):
    result = corpus("planted_files")
    assert any("link_to_host_file.json" in warning for warning in result.warnings)
    artifacts = Path(result.executed_notebook).parent / "artifacts"
    assert not (artifacts / "link_to_host_file.json").exists()
    assert not (artifacts / "extra.pkl").exists() or b"root:" not in (artifacts / "extra.pkl").read_bytes()


def test_locked_cell_changes_are_recorded(corpus):
    changes = {name: [(c.cell_id, c.change) for c in corpus(name).integrity.locked_cells]
               for name in ("edited_locked_cell", "moved_locked_cell", "deleted_locked_cell")}
    assert changes == {"edited_locked_cell": [("gan-training-loop", "edited")],
                       "moved_locked_cell": [("gan-training-loop", "moved")],
                       "deleted_locked_cell": [("gan-training-loop", "missing")]}
    assert any("was moved" in warning for warning in corpus("moved_locked_cell").warnings)


def test_locked_cell_edit_deduction(corpus):
    from harness.grader import _deduct_for_locked_cells
    from harness.rubric import IntegrityPolicy

    result = corpus("edited_locked_cell").model_copy(deep=True)
    strict = RUBRIC.model_copy(update={"integrity": IntegrityPolicy(locked_cell_points=2,
                                                                     max_locked_cell_deduction=5)})
    _deduct_for_locked_cells(result, strict)
    assert result.score == 24
    assert result.integrity.deduction == 2
    assert any("2 point(s) deducted" in warning for warning in result.warnings)


def test_legacy_edition_records_its_rewrites(corpus):
    result = corpus("legacy_2020_edition")
    rules = {rewrite.rule for rewrite in result.integrity.rewrites}
    assert rules == {"tensorflow_python_keras", "assessment_module", "indented_first_line",
                     "xgboost_gpu_parameters", "keras_optimizer_lr"}
    claims = {claim.test: claim for claim in result.integrity.claims}
    assert claims["assessment.xgb_accuracy_score"].agrees
    assert claims["assessment.autoencoder_accuracy_score"].agrees
    # Its edited setup cells are still reported: the rewrites do not hide changes to read-only cells.
    assert {c.cell_id for c in result.integrity.locked_cells} == {"setup", "load-data", "features"}


def test_legacy_edition_fails_without_the_profile(tmp_path, data_dir):
    plain = RUBRIC.model_copy(update={"compatibility": Compatibility(legacy_editions=False)})
    result = grade_submission(SUBMISSIONS / "legacy_2020_edition.ipynb", plain, data_dir, tmp_path,
                              GradingOptions(backend="local"))
    assert result.status == "execution_error"
    assert result.integrity.rewrites == []
    assert result.score < 26


def test_old_keras_lr_is_rewritten(corpus):
    result = corpus("old_keras_lr")
    assert [(r.rule, r.cell_id) for r in result.integrity.rewrites] == [("keras_optimizer_lr", "ae-train")]


def test_corpus_batch_ends_with_a_result_each(corpus, tmp_path_factory):
    """Graded one after another, as a batch would, every case leaves a result.json that summary lists."""
    names = sorted(CASES)
    for name in names:
        corpus(name)
    root = tmp_path_factory.getbasetemp()
    completed = subprocess.run([sys.executable, "-m", "harness.cli", "summary", str(root)], cwd=REPO,
                               capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert completed.returncode == 0
    for name in names:
        assert name in completed.stdout


def rubric_forbidding_test_label_thresholds(folder: Path):
    """A copy of the course rubric in which the threshold must not come from the test split's labels."""
    import shutil

    shutil.copytree(RUBRIC.path, folder)
    toml = folder / "rubric.toml"
    text = toml.read_text(encoding="utf-8")
    replacements = {
        'template = "../../student_templates/': f'template = "{REPO}/student_templates/',
        'expected_metrics = "../../reference/': f'expected_metrics = "{REPO}/reference/',
        'reference_curves = "../../reference/': f'reference_curves = "{REPO}/reference/',
        'name = "test_threshold_is_youden"': 'name = "test_threshold_without_test_labels"',
    }
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    toml.write_text(text, encoding="utf-8")
    return load_rubric(folder)


@pytest.mark.parametrize("name, score", [("percentile_threshold", 26), ("solution", 24)])
def test_threshold_from_test_labels_where_forbidden(tmp_path, data_dir, name, score):
    """The course allows Youden's J on the test split; a stricter rubric can forbid it."""
    from conftest import SOLUTION

    strict = rubric_forbidding_test_label_thresholds(tmp_path / "rubric")
    notebook = SOLUTION if name == "solution" else SUBMISSIONS / f"{name}.ipynb"
    result = grade_submission(notebook, strict, data_dir, tmp_path / "out", GradingOptions(backend="local"))
    assert result.score == score
    check = next(t for t in result.tests if t.name == "test_threshold_without_test_labels")
    assert check.status == ("failed" if name == "solution" else "passed")
    if name == "solution":
        assert "which this rubric forbids" in check.message
