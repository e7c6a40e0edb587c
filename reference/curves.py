"""ROC curves of the reference autoencoder and GAN on the course's test split, for learners' feedback pages."""

from __future__ import annotations

import json
from pathlib import Path

from harness import PROJECT_ROOT, data, metrics

REFERENCE_CURVES = PROJECT_ROOT / "reference" / "reference_curves.json"


def compute(data_dir: Path, seed: int = 42) -> dict:
    """Train the course's autoencoder and GAN once, as the solution does, and return their ROC curves."""
    from reference import autoencoder, gan
    from reference.pipeline import course_split, set_seeds

    data.require_files(data_dir, data.REQUIRED_FILES)
    split = course_split(data_dir, seed)

    set_seeds(seed)
    _, autoencoder_model = autoencoder.build_autoencoder(split.x_train.shape[1])
    autoencoder.train_autoencoder(autoencoder_model, split.x_train_normal)
    errors = autoencoder.reconstruction_errors(autoencoder_model, split.x_test)

    set_seeds(seed)
    generator_model = gan.build_generator(split.x_train.shape[1], gan.GAN_LATENT_DIM)
    discriminator_model = gan.build_discriminator(split.x_train.shape[1])
    gan.train_gan(generator_model, discriminator_model, split.x_train_normal, epochs=gan.GAN_EPOCHS,
                  batch_size=gan.GAN_BATCH_SIZE, learning_rate=gan.GAN_LEARNING_RATE, seed=seed)
    scores = gan.discriminator_scores(discriminator_model, split.x_test)

    return {
        "version": 1,
        "seed": seed,
        "split": "course test split (train_test_split test_size=0.25, random_state=seed)",
        "autoencoder_roc": metrics.roc_points(split.test_attacks, errors),
        "gan_roc": metrics.roc_points(split.test_attacks, scores),
    }


def write(document: dict, path: Path = REFERENCE_CURVES) -> Path:
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path
