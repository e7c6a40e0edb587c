"""Autoencoder: architecture, accuracy at the learner's threshold, Youden's J, reported accuracy, KDDTest+."""

import keras
import numpy as np
from nslkdd_checks import ERROR_DEFINITIONS, accuracy_at, attack_mask, reconstruct, require_finite
from sklearn.metrics import roc_auc_score, roc_curve

from harness import metrics


def _dense_chain(model) -> list:
    """The model's Dense layers in order; fails unless each one feeds only the next."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    for previous, layer in zip(dense, dense[1:]):
        parents = [node.operation for node in layer._inbound_nodes[0].parent_nodes]
        assert parents == [previous], (
            f"In {model.name}, layer {layer.name} takes its input from "
            f"{', '.join(p.name for p in parents) or 'nothing'} instead of the previous layer {previous.name}: "
            "connect each layer to the output of the one before it."
        )
    return dense


def test_autoencoder_architecture(artifacts, autoencoder, grading):
    encoder = artifacts.get("encoder_model")
    latent_dim = int(artifacts.get("latent_dim"))
    width = artifacts.get("x_test").shape[1]
    grading.metric("latent_dim", latent_dim)

    encoder_layers = _dense_chain(encoder)
    widths = [layer.units for layer in encoder_layers]
    grading.metric("encoder_widths", " ".join(map(str, widths)))
    assert len(encoder_layers) >= 2, (
        f"encoder_model has {len(encoder_layers)} Dense layer(s) between the input and the bottleneck; build at "
        "least two, each fed by the previous one (a layer wired to the input layer is left out of the model)."
    )
    assert encoder.inputs[0].shape[-1] == width, (
        f"encoder_model takes {encoder.inputs[0].shape[-1]} inputs, but the data has {width} features."
    )
    assert all(a >= b for a, b in zip(widths, widths[1:])) and widths[0] < width, (
        f"The encoder's layer widths {widths} do not narrow from {width} inputs toward the bottleneck."
    )
    assert widths[-1] == latent_dim, f"The encoder ends in {widths[-1]} units, not latent_dim = {latent_dim}."

    autoencoder_layers = _dense_chain(autoencoder)
    smallest = min(layer.units for layer in autoencoder_layers)
    grading.metric("autoencoder_widths", " ".join(str(layer.units) for layer in autoencoder_layers))
    assert smallest == latent_dim, (
        f"autoencoder_model's narrowest layer has {smallest} units, not latent_dim = {latent_dim}: build the "
        "decoder on the encoder's bottleneck."
    )
    assert autoencoder.outputs[0].shape[-1] == width, (
        f"The decoder outputs {autoencoder.outputs[0].shape[-1]} values per row, not the input width {width}."
    )
    grading.message = f"Encoder {width} -> {' -> '.join(map(str, widths))}, decoder back to {width}."


def _learner_threshold_accuracy(artifacts, reconstruction_errors, label_classes, grading):
    assert reconstruction_errors.matches_learner, (
        "reconstruction_scores do not match the errors of autoencoder_model on x_test (mean squared or absolute "
        "error per row). Compute them from autoencoder_model.predict(x_test)."
    )
    attacks = attack_mask(artifacts.get("y_test"), label_classes)
    threshold = artifacts.get("threshold")
    grading.metric("threshold_value", threshold)
    grading.metric("error_definition", reconstruction_errors.definition)
    return attacks, threshold


def test_autoencoder_accuracy(artifacts, reconstruction_errors, evaluation_split, label_classes, feedback, grading):
    _, threshold = _learner_threshold_accuracy(artifacts, reconstruction_errors, label_classes, grading)
    attacks = attack_mask(evaluation_split.y, label_classes)
    scores = reconstruction_errors.evaluation
    feedback["autoencoder"] = {"roc": metrics.roc_points(attacks, scores),
                               "errors": metrics.score_histograms(attacks, scores, threshold)}
    # Rows exactly at the threshold count either way, so both comparisons are accepted.
    accuracy = max(accuracy_at(threshold, scores, attacks), float(np.mean((scores > threshold) == attacks)))
    grading.metric("accuracy", accuracy)
    grading.metric("threshold", grading.threshold)
    grading.metric("evaluation_split", "learner" if evaluation_split.is_learners else "course")
    assert accuracy >= grading.threshold, (
        f"At your threshold {threshold:.6g} the autoencoder's accuracy on {evaluation_split.name} is "
        f"{accuracy:.4f}, below {grading.threshold:.4f}. Train on normal rows only, for enough epochs, and check "
        "the threshold."
    )
    grading.message = (f"Accuracy {accuracy:.4f} on {evaluation_split.name} at threshold {threshold:.6g} "
                       f"(bar: at least {grading.threshold:.4f}).")


def test_threshold_is_youden(artifacts, reconstruction_errors, label_classes, grading):
    attacks, threshold = _learner_threshold_accuracy(artifacts, reconstruction_errors, label_classes, grading)
    # The rule is judged on the recomputed errors (of the learner's error definition), never on stored scores.
    scores = reconstruction_errors.test_split
    fpr, tpr, _ = roc_curve(attacks, scores)
    best = float(np.max(tpr - fpr))
    flagged = scores >= threshold
    learner = float(np.mean(flagged[attacks == 1]) - np.mean(flagged[attacks == 0]))
    grading.metric("youden_j_max", best)
    grading.metric("youden_j_at_threshold", learner)
    assert learner >= best - grading.tolerance, (
        f"TPR - FPR at your threshold is {learner:.4f} but its maximum is {best:.4f}: take the threshold at "
        "argmax(tpr - fpr) of roc_curve(binary_labels, reconstruction_scores), not a percentile or a guess."
    )
    grading.message = f"TPR - FPR = {learner:.4f} at your threshold (maximum {best:.4f})."


def test_threshold_without_test_labels(artifacts, reconstruction_errors, label_classes, grading):
    """For a rubric that forbids choosing the threshold with the test split's labels (not the course's rule)."""
    attacks, threshold = _learner_threshold_accuracy(artifacts, reconstruction_errors, label_classes, grading)
    scores = artifacts.get("reconstruction_scores")  # the learner's own: the threshold was taken from these
    fpr, tpr, thresholds = roc_curve(attacks, scores)
    test_optimum = float(thresholds[np.argmax(tpr - fpr)])
    grading.metric("test_split_youden_threshold", test_optimum)
    same = bool(np.isclose(threshold, test_optimum, rtol=1e-9, atol=0.0))
    grading.metric("threshold_from_test_labels", same)
    assert not same, (
        f"Your threshold {threshold:.6g} is the Youden point of the test split's labels, which this rubric "
        "forbids. Choose it on a validation split of the training rows, or from the training errors."
    )
    grading.message = "The threshold was not taken from the test split's labels."


def test_autoencoder_reported_accuracy(artifacts, reconstruction_errors, label_classes, grading):
    attacks, threshold = _learner_threshold_accuracy(artifacts, reconstruction_errors, label_classes, grading)
    scores = reconstruction_errors.test_split
    candidates = [accuracy_at(threshold, scores, attacks), float(np.mean((scores > threshold) == attacks))]
    reported = artifacts.get("ae_acc")
    closest = min(candidates, key=lambda value: abs(value - reported))
    grading.metric("reported", reported)
    grading.metric("recomputed", closest)
    mismatch = abs(reported - closest) > grading.tolerance
    grading.metric("mismatch", mismatch)
    assert not mismatch, (
        f"ae_acc is {reported:.4f} but the accuracy at your threshold is {closest:.4f}. Compute ae_acc from "
        "binary_labels and the predictions at thresh."
    )
    grading.message = f"ae_acc {reported:.4f} matches the recomputed accuracy."


def test_autoencoder_auroc_kddtest(autoencoder, reconstruction_errors, kddtest_features, kddtest_attacks, grading):
    definition = ERROR_DEFINITIONS[reconstruction_errors.definition]
    scores = require_finite(definition(kddtest_features, reconstruct(autoencoder, kddtest_features)),
                            "The autoencoder's reconstruction error on held-out data")
    auroc = float(roc_auc_score(kddtest_attacks, scores))
    grading.metric("auroc", auroc)
    grading.metric("threshold", grading.threshold)
    assert auroc >= grading.threshold, f"AUROC of reconstruction errors on held-out data is {auroc:.4f}, below {grading.threshold:.4f}."
    grading.message = f"AUROC {auroc:.4f} on held-out data."
