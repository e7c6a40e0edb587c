"""Split and scale: the learner's split is the training file's rows, scaled by a scaler fitted on x_train."""

import numpy as np

from harness import data


def test_split_partitions_training_file(split_check, request, grading):
    grading.metric("train_rows", split_check.metrics.get("train_rows"))
    grading.metric("test_rows", split_check.metrics.get("test_rows"))
    for name, value in split_check.metrics.items():
        grading.metric(name, value)
    assert split_check.ok, (
        f"x_train and x_test are not a split of {data.TRAIN_FILE}: {'; '.join(split_check.problems)}. "
        "Split numeric_cat_data with train_test_split and scale both parts with the same scaler."
    )
    course = request.getfixturevalue("evaluation_split").is_learners
    grading.metric("course_split", course)
    grading.message = (f"{split_check.metrics['train_rows']} training and {split_check.metrics['test_rows']} "
                       f"test rows, each row of {data.TRAIN_FILE} exactly once.")
    if not course:
        grading.message += (" Your test split is not the one train_test_split(numeric_cat_data, integer_labels, "
                            "test_size=0.25, random_state=seed) makes, so the model tests measure your models on "
                            "that split instead of yours.")


def test_scaler_fitted_on_training_rows(artifacts, grading):
    scaler = artifacts.get("scaler")
    x_train = artifacts.get("x_train")
    grading.metric("scaler", scaler.kind)
    grading.metric("scaler_rows", scaler.n_samples_seen)
    grading.metric("train_rows", x_train.shape[0])

    assert scaler.n_samples_seen == x_train.shape[0], (
        f"The scaler was fitted on {scaler.n_samples_seen} rows but x_train has {x_train.shape[0]}: fit it on "
        "the training rows only (scaler.fit(x_train) after the split), then transform both splits."
    )

    # A scaler fitted on x_train maps x_train's own statistics to fixed values.
    if scaler.kind == "MinMaxScaler":
        varying = np.ptp(x_train, axis=0) > 0
        deviation = float(np.max(np.abs(x_train[:, varying].min(axis=0))))
        grading.metric("train_min_deviation", deviation)
        assert deviation < 1e-6, (
            "x_train's column minimums are not 0, so x_train was not transformed by a scaler fitted on it."
        )
    elif scaler.kind == "StandardScaler" and np.any(scaler.offset):
        deviation = float(np.max(np.abs(x_train.mean(axis=0))))
        grading.metric("train_mean_deviation", deviation)
        assert deviation < 1e-6, (
            "x_train's column means are not 0, so x_train was not transformed by a scaler fitted on it."
        )
    grading.message = f"{scaler.kind} fitted on the {x_train.shape[0]} training rows."
