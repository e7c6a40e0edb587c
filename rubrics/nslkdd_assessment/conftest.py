"""Fixtures of the NSL-KDD rubric: grader-held data, the learner's split and recomputed model outputs.

Heavy imports sit at module level on purpose: the scoring process loads this file
while the notebook is still running, so the imports cost no grading time.
"""

from __future__ import annotations

from collections import Counter

import keras  # noqa: F401  (imported early; see the module docstring)
import numpy as np
import pytest
import sklearn.metrics  # noqa: F401  (imported early; see the module docstring)
from nslkdd_checks import (ERROR_DEFINITIONS, EvaluationSplit, ReconstructionErrors, SplitCheck, class_predictions,
                           match_rows, reconstruct, require_finite, row_keys)
from sklearn.model_selection import train_test_split

from harness import data
from harness.features import FeatureError, one_hot_features, rebuild

# The template's instructions call for train_test_split(numeric_cat_data, integer_labels, test_size=0.25, random_state=seed).
COURSE_TEST_SIZE = 0.25


@pytest.fixture(scope="session")
def train_frame(data_dir):
    return data.load(data_dir / data.TRAIN_FILE)


@pytest.fixture(scope="session")
def test_frame(data_dir):
    return data.load(data_dir / data.TEST_FILE)


@pytest.fixture(scope="session")
def label_classes(artifacts) -> list[str]:
    classes = artifacts.get("label_classes")
    assert data.NORMAL_LABEL in classes, (
        f"The label classes (le.classes_) do not include '{data.NORMAL_LABEL}'; fit the LabelEncoder on df['label']."
    )
    return classes


# Models run in float32, so rebuilt values beyond this would turn into infinities.
MAX_FEATURE_VALUE = 1e30


def _rebuild(frame, artifacts, name: str) -> np.ndarray:
    try:
        features = rebuild(frame, artifacts.get("feature_columns"), artifacts.get("scaler"))
    except FeatureError as error:
        raise AssertionError(f"The grader could not rebuild {name} through your features and scaler: {error}.")
    with np.errstate(invalid="ignore"):
        out_of_range = ~np.isfinite(features) | (np.abs(features) > MAX_FEATURE_VALUE)
    assert not out_of_range.any(), (
        f"Your scaler maps {int(out_of_range.sum())} value(s) of {name} to NaN, infinity or beyond "
        f"{MAX_FEATURE_VALUE:g}; check scaler.scale_ and fit the scaler on x_train as it is."
    )
    return features


@pytest.fixture(scope="session")
def kddtest_features(test_frame, artifacts) -> np.ndarray:
    """KDDTest+ rebuilt through the learner's feature order and scaler."""
    return _rebuild(test_frame, artifacts, "KDDTest+")


@pytest.fixture(scope="session")
def kddtest_attacks(test_frame) -> np.ndarray:
    return (test_frame[data.LABEL_COLUMN].to_numpy() != data.NORMAL_LABEL).astype(int)


@pytest.fixture(scope="session")
def training_file_features(train_frame, artifacts) -> np.ndarray:
    """The training file rebuilt through the learner's feature order and scaler, in the file's row order."""
    return _rebuild(train_frame, artifacts, data.TRAIN_FILE)


def _column_problems(train_frame, columns: list[str]) -> list[str]:
    """Say how the learner's feature columns differ from those the template's features cell builds."""
    expected = set(one_hot_features(train_frame).columns)
    missing = sorted(expected - set(columns))
    extra = sorted(set(columns) - expected)
    problems = []
    if missing:
        problems.append(f"numeric_cat_data lacks {len(missing)} of the feature columns (such as "
                        f"{', '.join(missing[:3])})")
    if extra:
        problems.append(f"numeric_cat_data has {len(extra)} column(s) that the data does not produce (such as "
                        f"{', '.join(extra[:3])})")
    if len(columns) != len(set(columns)):
        problems.append("numeric_cat_data has duplicate column names")
    if problems:
        problems.append("run the read-only features cell as given")
    return problems


@pytest.fixture(scope="session")
def split_check(train_frame, training_file_features, artifacts, label_classes) -> SplitCheck:
    """Check that x_train and x_test are exactly the rows of the training file, each once."""
    x_train, x_test = artifacts.get("x_train"), artifacts.get("x_test")
    y_train, y_test = artifacts.get("y_train"), artifacts.get("y_test")
    expected = training_file_features
    problems = _column_problems(train_frame, artifacts.get("feature_columns"))

    for name, x, y in (("x_train", x_train, y_train), ("x_test", x_test, y_test)):
        if x.shape[1] != expected.shape[1]:
            problems.append(f"{name} has {x.shape[1]} columns but numeric_cat_data has {expected.shape[1]}")
        if x.shape[0] != y.shape[0]:
            problems.append(f"{name} has {x.shape[0]} rows but its labels have {y.shape[0]}")
        if y.size and (y.min() < 0 or y.max() >= len(label_classes)):
            problems.append(f"the labels of {name} are not indices into le.classes_")
    if problems:
        return SplitCheck(False, problems)

    file_keys = row_keys(expected)
    labels_by_key: dict[bytes, set[str]] = {}
    for key, label in zip(file_keys, train_frame[data.LABEL_COLUMN]):
        labels_by_key.setdefault(key, set()).add(label)
    train_rows, test_rows = match_rows(expected, [x_train.astype(float), x_test.astype(float)])

    extra = int(np.sum(train_rows < 0) + np.sum(test_rows < 0))
    missing = len(expected) - int(np.sum(train_rows >= 0) + np.sum(test_rows >= 0))
    train_keys, test_keys = row_keys(x_train), row_keys(x_test)
    overlap = len(set(train_keys) & set(test_keys) - {k for k, n in Counter(file_keys).items() if n > 1})
    mislabelled = 0
    for rows, y in ((train_rows, y_train), (test_rows, y_test)):
        for row, label_index in zip(rows, y):
            if row >= 0 and label_classes[label_index] not in labels_by_key[file_keys[row]]:
                mislabelled += 1

    metrics = {"rows_not_in_file": extra, "rows_left_out": missing, "rows_in_both_splits": overlap,
               "rows_with_wrong_label": mislabelled, "train_rows": len(x_train), "test_rows": len(x_test)}
    if extra:
        problems.append(f"{extra} row(s) of x_train/x_test do not occur in {data.TRAIN_FILE}")
    if overlap:
        problems.append(f"{overlap} row(s) occur in both x_train and x_test")
    if missing:
        problems.append(f"{missing} row(s) of {data.TRAIN_FILE} are in neither split")
    if mislabelled:
        problems.append(f"{mislabelled} row(s) carry a label that differs from the file's")
    if len(x_test) < 0.1 * len(file_keys):
        problems.append(f"x_test has only {len(x_test)} rows; hold out at least 10% of the data")
    return SplitCheck(not problems, problems, metrics, test_rows)


@pytest.fixture(scope="session")
def verified_split(split_check):
    """Fail a test whose metric would be computed on a split that is not the training file's."""
    assert split_check.ok, (
        "Scores on your test split cannot be trusted because x_train and x_test are not a split of "
        f"{data.TRAIN_FILE}: {'; '.join(split_check.problems)}."
    )
    return split_check


@pytest.fixture(scope="session")
def evaluation_split(verified_split, train_frame, training_file_features, label_classes, rubric,
                     feedback) -> EvaluationSplit:
    """The rows model quality is measured on: the course's test split, rebuilt by the grader.

    A split is checked only for being a partition of the training file. So a learner could hold out the
    rows an untrained model happens to get right, or hide a label code in x_test below the precision
    that the check compares at. Models are therefore scored on the grader's own rebuild of the course's test rows
    (train_test_split(test_size=0.25, random_state=seed)), with the file's labels, whatever the learner's
    split. When the learner's test split contains the same rows, these are its rows.
    """
    _, course_rows = train_test_split(np.arange(len(train_frame)), test_size=COURSE_TEST_SIZE,
                                      random_state=rubric.seed)
    file_keys = row_keys(training_file_features)
    learner_rows = verified_split.test_file_rows
    is_learners = Counter(file_keys[row] for row in learner_rows) == Counter(file_keys[row] for row in course_rows)
    feedback["evaluation_split"] = "learner" if is_learners else "course"

    index = {name: position for position, name in enumerate(label_classes)}
    labels = train_frame[data.LABEL_COLUMN].to_numpy()[course_rows]
    unknown = sorted(set(labels) - set(index))
    assert not unknown, (
        f"The label classes (le.classes_) lack {', '.join(unknown)}, which occur in {data.TRAIN_FILE}; "
        "fit the LabelEncoder on df['label']."
    )
    return EvaluationSplit(training_file_features[course_rows], np.array([index[label] for label in labels]),
                           is_learners=is_learners)


@pytest.fixture(scope="session")
def xgb_test_predictions(artifacts, request) -> np.ndarray:
    """The exported model's classes for the learner's x_test."""
    model = artifacts.get("xgb_model")
    request.getfixturevalue("verified_split")
    x_test = artifacts.get("x_test")
    assert model.num_features() == x_test.shape[1], (
        f"The XGBoost model expects {model.num_features()} features but x_test has {x_test.shape[1]}."
    )
    return class_predictions(model, x_test)


@pytest.fixture(scope="session")
def xgb_evaluation_predictions(artifacts, evaluation_split, xgb_test_predictions) -> np.ndarray:
    """The exported model's classes for the evaluation split."""
    return class_predictions(artifacts.get("xgb_model"), evaluation_split.x)


def require_widths(model, variable: str, inputs: int, outputs: int, fix: str) -> None:
    """Fail unless the Keras model takes one array of `inputs` values per row and returns one of `outputs`."""
    assert len(model.inputs) == 1, f"{variable} has {len(model.inputs)} inputs; it must take one array of rows. {fix}"
    assert len(model.outputs) == 1, (
        f"{variable} has {len(model.outputs)} outputs; it must return one array per batch of rows. {fix}"
    )
    input_shape, output_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    assert len(input_shape) == 2, (
        f"{variable} takes inputs of shape {input_shape}; it must take rows, shape (None, {inputs}). {fix}"
    )
    assert len(output_shape) == 2, (
        f"{variable} returns outputs of shape {output_shape}; it must return shape (None, {outputs}). {fix}"
    )
    input_width = model.inputs[0].shape[-1]
    output_width = model.outputs[0].shape[-1]
    assert input_width == inputs, f"{variable} takes {input_width} inputs per row, not {inputs}. {fix}"
    assert output_width == outputs, f"{variable} returns {output_width} outputs per row, not {outputs}. {fix}"


@pytest.fixture(scope="session")
def autoencoder(artifacts):
    model = artifacts.get("autoencoder_model")
    width = artifacts.get("x_test").shape[1]
    require_widths(model, "autoencoder_model", width, width,
                   f"It must reconstruct rows of the data's {width} features.")
    return model


@pytest.fixture(scope="session")
def reconstruction_errors(artifacts, autoencoder, evaluation_split) -> ReconstructionErrors:
    """Recompute the reconstruction errors, find which error the learner used, and score the evaluation split."""
    x_test = artifacts.get("x_test").astype(float)
    reconstructed = reconstruct(autoencoder, x_test)
    learner_scores = artifacts.get("reconstruction_scores")
    assert learner_scores.shape[0] == x_test.shape[0], (
        f"reconstruction_scores has {learner_scores.shape[0]} values but x_test has {x_test.shape[0]} rows; "
        "compute one error per test row."
    )
    name, matches = "mean squared error", False
    scores = ERROR_DEFINITIONS[name](x_test, reconstructed)
    for candidate, definition in ERROR_DEFINITIONS.items():
        candidate_scores = definition(x_test, reconstructed)
        relative = np.abs(candidate_scores - learner_scores) / np.maximum(np.abs(candidate_scores), 1e-9)
        # Nearly every row must match, so that scores edited on some rows cannot pass as the model's.
        if np.quantile(relative, 0.999) < 1e-3:
            name, matches, scores = candidate, True, candidate_scores
            break
    x = evaluation_split.x.astype(float)
    evaluation = require_finite(ERROR_DEFINITIONS[name](x, reconstruct(autoencoder, x)),
                                "The autoencoder's reconstruction error on the test split")
    return ReconstructionErrors(scores, name, matches, evaluation)

@pytest.fixture(scope="session")
def discriminator(artifacts):
    model = artifacts.get("discriminator_model")
    width = artifacts.get("x_test").shape[1]
    require_widths(model, "discriminator_model", width, 1,
                   f"It must map a row of {width} features to one probability.")
    return model


@pytest.fixture(scope="session")
def gan_scores(artifacts, discriminator, verified_split) -> np.ndarray:
    """1 - D(x) on the learner's test split, recomputed, after checking that the learner's scores match."""
    x_test = artifacts.get("x_test")
    scores = 1.0 - reconstruct(discriminator, x_test)[:, 0]
    learner_scores = artifacts.get("gan_scores")
    assert learner_scores.shape[0] == x_test.shape[0], (
        f"gan_scores has {learner_scores.shape[0]} values but x_test has {x_test.shape[0]} rows."
    )
    assert np.quantile(np.abs(scores - learner_scores), 0.999) < 1e-4, (
        "gan_scores do not match 1 - discriminator_model.predict(x_test)[:, 0] for the exported discriminator; "
        "compute them that way, so that higher scores mean less normal."
    )
    return scores


@pytest.fixture(scope="session")
def gan_evaluation_scores(discriminator, gan_scores, evaluation_split) -> np.ndarray:
    """1 - D(x) on the evaluation split."""
    return require_finite(1.0 - reconstruct(discriminator, evaluation_split.x)[:, 0], "1 - D(x) on the test split")
