"""XGBoost: accuracy on the evaluation split, the reported accuracy, the confusion matrix, and KDDTest+."""

import numpy as np
from nslkdd_checks import attack_mask, class_predictions
from sklearn.metrics import confusion_matrix


def test_xgboost_accuracy(evaluation_split, xgb_evaluation_predictions, label_classes, feedback, grading):
    accuracy = float(np.mean(xgb_evaluation_predictions == evaluation_split.y))
    matrix = confusion_matrix(evaluation_split.y, xgb_evaluation_predictions, labels=np.arange(len(label_classes)))
    feedback["xgboost"] = {"classes": list(label_classes), "confusion_matrix": matrix.tolist()}
    grading.metric("accuracy", accuracy)
    grading.metric("threshold", grading.threshold)
    grading.metric("evaluation_split", "learner" if evaluation_split.is_learners else "course")
    assert accuracy > grading.threshold, (
        f"The XGBoost model's accuracy on {evaluation_split.name} is {accuracy:.4f}, not above "
        f"{grading.threshold:.4f}. Check the objective (multi:softprob or multi:softmax), num_class and the "
        "number of boosting rounds."
    )
    grading.message = f"Accuracy {accuracy:.4f} on {evaluation_split.name} (bar: above {grading.threshold:.4f})."


def test_xgboost_reported_accuracy(artifacts, xgb_test_predictions, grading):
    recomputed = float(np.mean(xgb_test_predictions == artifacts.get("y_test")))
    reported = artifacts.get("xgb_acc")
    grading.metric("reported", reported)
    grading.metric("recomputed", recomputed)
    mismatch = abs(reported - recomputed) > grading.tolerance
    grading.metric("mismatch", mismatch)
    assert not mismatch, (
        f"xgb_acc is {reported:.4f} but the model's accuracy on x_test is {recomputed:.4f}. "
        "Compute xgb_acc with accuracy_score(true_labels, pred_labels) from the model's predictions."
    )
    grading.message = f"xgb_acc {reported:.4f} matches the recomputed accuracy."


def test_confusion_matrix(artifacts, xgb_test_predictions, label_classes, grading):
    matrix = artifacts.get("conf_matrix")
    y_test = artifacts.get("y_test")
    grading.metric("rows", matrix.shape[0])
    grading.metric("columns", matrix.shape[1])
    assert matrix.shape[0] == matrix.shape[1], f"conf_matrix has shape {matrix.shape}; a confusion matrix is square."

    if matrix.shape[0] == len(label_classes):
        expected = confusion_matrix(y_test, xgb_test_predictions, labels=np.arange(len(label_classes)))
    else:
        expected = confusion_matrix(y_test, xgb_test_predictions)
    assert matrix.shape == expected.shape, (
        f"conf_matrix has shape {matrix.shape}; expected {len(label_classes)} x {len(label_classes)} (num_labels "
        "classes), built with confusion_matrix(true_labels, pred_labels, labels=range(num_labels))."
    )
    assert np.array_equal(matrix, expected), (
        "conf_matrix does not match the model's predictions on x_test: build it from true_labels and pred_labels."
    )
    grading.message = f"{matrix.shape[0]} x {matrix.shape[1]} confusion matrix matches the model's predictions."


def test_xgboost_binary_accuracy_kddtest(artifacts, label_classes, kddtest_features, kddtest_attacks, grading):
    model = artifacts.get("xgb_model")
    assert model.num_features() == kddtest_features.shape[1], (
        f"The XGBoost model expects {model.num_features()} features but your feature columns number "
        f"{kddtest_features.shape[1]}."
    )
    predicted = class_predictions(model, kddtest_features)
    assert predicted.max() < len(label_classes), "The XGBoost model predicts classes that le.classes_ does not have."
    accuracy = float(np.mean(attack_mask(predicted, label_classes) == kddtest_attacks))
    grading.metric("accuracy", accuracy)
    grading.metric("threshold", grading.threshold)
    assert accuracy >= grading.threshold, (
        f"Normal-versus-attack accuracy on held-out data is {accuracy:.4f}, below {grading.threshold:.4f}."
    )
    grading.message = f"Normal-versus-attack accuracy {accuracy:.4f} on held-out data."
