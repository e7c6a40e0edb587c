"""GAN detector: architecture, AUROC of the discriminator's score, collapse, and KDDTest+."""

import numpy as np
from nslkdd_checks import attack_mask, reconstruct, require_finite

from harness import metrics


def test_gan_architecture(artifacts, discriminator, grading):
    generator = artifacts.get("generator_model")
    latent_dim = int(artifacts.get("gan_latent_dim"))
    width = artifacts.get("x_test").shape[1]
    grading.metric("gan_latent_dim", latent_dim)
    assert generator.inputs[0].shape[-1] == latent_dim, (
        f"generator_model takes {generator.inputs[0].shape[-1]} inputs, not gan_latent_dim = {latent_dim}."
    )
    assert generator.outputs[0].shape[-1] == width, (
        f"generator_model makes rows of {generator.outputs[0].shape[-1]} features, not the data's {width}."
    )
    probabilities = reconstruct(discriminator, artifacts.get("x_test")[:256])
    assert np.all((probabilities >= 0) & (probabilities <= 1)), (
        "discriminator_model's outputs are not probabilities: end it with a Dense(1, activation='sigmoid') layer."
    )
    grading.message = f"Generator {latent_dim} -> {width}, discriminator {width} -> 1 probability."


def test_gan_auroc(gan_evaluation_scores, evaluation_split, label_classes, feedback, grading):
    attacks = attack_mask(evaluation_split.y, label_classes)
    feedback.setdefault("gan", {})["roc"] = metrics.roc_points(attacks, gan_evaluation_scores)
    auroc = metrics.auroc(attacks, gan_evaluation_scores)
    grading.metric("auroc", auroc)
    grading.metric("threshold", grading.threshold)
    grading.metric("evaluation_split", "learner" if evaluation_split.is_learners else "course")
    assert auroc >= grading.threshold, (
        f"The GAN's AUROC on {evaluation_split.name} is {auroc:.4f}, below {grading.threshold:.4f}. Train on "
        "normal rows only and check that gan_scores is 1 - D(x), so that higher means less normal."
    )
    grading.message = f"AUROC {auroc:.4f} on {evaluation_split.name} (bar: {grading.threshold:.4f})."


def test_gan_not_collapsed(artifacts, gan_evaluation_scores, evaluation_split, label_classes, feedback, grading):
    scores = gan_evaluation_scores
    attacks = attack_mask(evaluation_split.y, label_classes)
    threshold = artifacts.get("gan_threshold")
    feedback.setdefault("gan", {})["scores"] = metrics.score_histograms(attacks, scores, threshold)
    flagged = (scores >= threshold).astype(int)
    grading.metric("score_std", float(np.std(scores)))
    grading.metric("accuracy", metrics.accuracy(attacks, flagged))
    grading.metric("f1", metrics.f1(attacks, flagged))
    reason = metrics.collapse_reason(scores, attacks, flagged)
    assert reason is None, (
        f"The GAN looks collapsed: {reason}. Train for fewer epochs or with a smaller learning rate, and watch "
        "the losses: a discriminator loss near 0 or a generator loss that keeps rising means the training failed."
    )
    grading.message = (f"Scores vary (std {np.std(scores):.3g}); F1 {metrics.f1(attacks, flagged):.3f} at your "
                       f"threshold on {evaluation_split.name}.")


def test_gan_auroc_kddtest(discriminator, gan_scores, kddtest_features, kddtest_attacks, grading):
    scores = require_finite(1.0 - reconstruct(discriminator, kddtest_features)[:, 0], "1 - D(x) on held-out data")
    auroc = metrics.auroc(kddtest_attacks, scores)
    grading.metric("auroc", auroc)
    grading.metric("threshold", grading.threshold)
    assert auroc >= grading.threshold, f"The GAN's AUROC on held-out data is {auroc:.4f}, below {grading.threshold:.4f}."
    grading.message = f"AUROC {auroc:.4f} on held-out data."
