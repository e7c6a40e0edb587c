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
                           reconstruct, row_keys)
from sklearn.model_selection import train_test_split

from harness import data
from harness.features import FeatureError, rebuild

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


def _rebuild(frame, artifacts, name: str) -> np.ndarray:
    try:
        return rebuild(frame, artifacts.get("feature_columns"), artifacts.get("scaler"))
    except FeatureError as error:
        raise AssertionError(f"The grader could not rebuild {name} through your features and scaler: {error}.")


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


@pytest.fixture(scope="session")
def split_check(train_frame, training_file_features, artifacts, label_classes) -> SplitCheck:
    """Check that x_train and x_test are exactly the rows of the training file, each once."""
    x_train, x_test = artifacts.get("x_train"), artifacts.get("x_test")
    y_train, y_test = artifacts.get("y_train"), artifacts.get("y_test")
    expected = training_file_features
    problems = []

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
    train_keys, test_keys = row_keys(x_train), row_keys(x_test)

    available = Counter(file_keys)
    available.subtract(Counter(train_keys))
    available.subtract(Counter(test_keys))
    extra = -sum(count for count in available.values() if count < 0)
    missing = sum(count for count in available.values() if count > 0)
    overlap = len(set(train_keys) & set(test_keys) - {k for k, n in Counter(file_keys).items() if n > 1})
    mislabelled = 0
    for keys, y in ((train_keys, y_train), (test_keys, y_test)):
        for key, label_index in zip(keys, y):
            if key in labels_by_key and label_classes[label_index] not in labels_by_key[key]:
                mislabelled += 1

    metrics = {"rows_not_in_file": extra, "rows_left_out": missing, "rows_in_both_splits": overlap,
               "rows_with_wrong_label": mislabelled, "train_rows": len(train_keys), "test_rows": len(test_keys)}
    if extra:
        problems.append(f"{extra} row(s) of x_train/x_test do not occur in {data.TRAIN_FILE}")
    if overlap:
        problems.append(f"{overlap} row(s) occur in both x_train and x_test")
    if missing:
        problems.append(f"{missing} row(s) of {data.TRAIN_FILE} are in neither split")
    if mislabelled:
        problems.append(f"{mislabelled} row(s) carry a label that differs from the file's")
    if len(test_keys) < 0.1 * len(file_keys):
        problems.append(f"x_test has only {len(test_keys)} rows; hold out at least 10% of the data")
    return SplitCheck(not problems, problems, metrics)


@pytest.fixture(scope="session")
def verified_split(split_check):
    """Fail a test whose metric would be computed on a split that is not the training file's."""
    assert split_check.ok, (
        "Scores on your test split cannot be trusted because x_train and x_test are not a split of "
        f"{data.TRAIN_FILE}: {'; '.join(split_check.problems)}."
    )
    return split_check


@pytest.fixture(scope="session")
def evaluation_split(verified_split, train_frame, training_file_features, artifacts, label_classes, rubric,
                     feedback) -> EvaluationSplit:
    """The rows model quality is measured on: the learner's test split if it is the course's, else the course's.

    A split is checked only for being a partition of the training file, so a learner could hold out the
    rows an untrained model happens to get right. Scoring on the course's own test split, whenever the
    learner's differs from it, leaves nothing to gain from choosing the rows.
    """
    _, course_rows = train_test_split(np.arange(len(train_frame)), test_size=COURSE_TEST_SIZE,
                                      random_state=rubric.seed)
    x_course = training_file_features[course_rows]
    x_test = artifacts.get("x_test")
    if Counter(row_keys(x_course)) == Counter(row_keys(x_test)):
        feedback["evaluation_split"] = "learner"
        return EvaluationSplit(x_test, artifacts.get("y_test"), is_learners=True)
    feedback["evaluation_split"] = "course"
    index = {name: position for position, name in enumerate(label_classes)}
    labels = train_frame[data.LABEL_COLUMN].to_numpy()[course_rows]
    unknown = sorted(set(labels) - set(index))
    assert not unknown, (
        f"The label classes (le.classes_) lack {', '.join(unknown)}, which occur in {data.TRAIN_FILE}; "
        "fit the LabelEncoder on df['label']."
    )
    return EvaluationSplit(x_course, np.array([index[label] for label in labels]), is_learners=False)


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
    if evaluation_split.is_learners:
        return xgb_test_predictions
    return class_predictions(artifacts.get("xgb_model"), evaluation_split.x)


def require_widths(model, variable: str, inputs: int, outputs: int, fix: str) -> None:
    """Fail unless the Keras model takes `inputs` values per row and returns `outputs`."""
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
    definition = ERROR_DEFINITIONS[name]
    if evaluation_split.is_learners:
        evaluation = scores
    else:
        x = evaluation_split.x.astype(float)
        evaluation = definition(x, reconstruct(autoencoder, x))
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
    if evaluation_split.is_learners:
        return gan_scores
    return 1.0 - reconstruct(discriminator, evaluation_split.x)[:, 0]
