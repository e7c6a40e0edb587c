"""Reference autoencoder: trained on normal rows, with six threshold rules compared side by side."""

from __future__ import annotations

import numpy as np

from harness import metrics
from reference.pipeline import CourseSplit, validation_split

LATENT_DIM = 4
HIDDEN_UNITS = (64, 32)
BATCH_SIZE = 256
LEARNING_RATE = 1e-3
EPOCHS = 10
QUICK_EPOCHS = 1
STD_MULTIPLIER = 3.0

THRESHOLD_RULES = ("youden_test", "youden_validation", "p95_train", "p99_train", "mean_3std_train", "f1_validation")


def build_autoencoder(input_dim: int, latent_dim: int = LATENT_DIM):
    """Return (encoder_model, autoencoder_model): Dense layers narrowing to latent_dim and back."""
    from tensorflow import keras
    from tensorflow.keras import layers

    input_layer = keras.Input(shape=(input_dim,), name="features")
    encoded = input_layer
    for units in HIDDEN_UNITS:
        encoded = layers.Dense(units, activation="relu")(encoded)
    bottleneck = layers.Dense(latent_dim, activation="relu", name="bottleneck")(encoded)
    encoder_model = keras.Model(input_layer, bottleneck, name="encoder")

    decoded = bottleneck
    for units in reversed(HIDDEN_UNITS):
        decoded = layers.Dense(units, activation="relu")(decoded)
    reconstruction = layers.Dense(input_dim, name="reconstruction")(decoded)
    autoencoder_model = keras.Model(input_layer, reconstruction, name="autoencoder")
    return encoder_model, autoencoder_model


def train_autoencoder(autoencoder_model, x_normal: np.ndarray, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE,
                      learning_rate: float = LEARNING_RATE):
    from tensorflow import keras

    autoencoder_model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return autoencoder_model.fit(x_normal, x_normal, batch_size=batch_size, epochs=epochs, validation_split=0.1,
                                 verbose=0)


def reconstruction_errors(autoencoder_model, x: np.ndarray) -> np.ndarray:
    """Mean squared reconstruction error of each row."""
    reconstructed = autoencoder_model.predict(x, batch_size=4096, verbose=0)
    return np.mean(np.square(x - reconstructed), axis=1)


def thresholds(train_normal_errors: np.ndarray, validation_errors: np.ndarray, validation_attacks: np.ndarray,
               test_errors: np.ndarray, test_attacks: np.ndarray) -> dict[str, float]:
    """Compute every threshold rule's cut on the reconstruction error."""
    return {
        # The course's rule. It looks at the test labels, so its accuracy is optimistic.
        "youden_test": metrics.youden_threshold(test_attacks, test_errors),
        "youden_validation": metrics.youden_threshold(validation_attacks, validation_errors),
        "p95_train": float(np.percentile(train_normal_errors, 95)),
        "p99_train": float(np.percentile(train_normal_errors, 99)),
        "mean_3std_train": float(np.mean(train_normal_errors) + STD_MULTIPLIER * np.std(train_normal_errors)),
        "f1_validation": metrics.f1_threshold(validation_attacks, validation_errors),
    }


def evaluate(split: CourseSplit, seed: int, quick: bool = False) -> dict[str, float]:
    """Train on the normal rows of 80% of the training split and score every threshold rule."""
    x_fit, x_validation, attacks_fit, attacks_validation = validation_split(split.x_train, split.train_attacks, seed)
    x_fit_normal = x_fit[attacks_fit == 0]
    if quick:
        x_fit_normal = x_fit_normal[:2000]

    _, autoencoder_model = build_autoencoder(split.x_train.shape[1])
    train_autoencoder(autoencoder_model, x_fit_normal, epochs=QUICK_EPOCHS if quick else EPOCHS)

    test_errors = reconstruction_errors(autoencoder_model, split.x_test)
    kddtest_errors = reconstruction_errors(autoencoder_model, split.x_kddtest)
    cuts = thresholds(reconstruction_errors(autoencoder_model, x_fit_normal),
                      reconstruction_errors(autoencoder_model, x_validation), attacks_validation,
                      test_errors, split.test_attacks)

    results = {
        "auroc": metrics.auroc(split.test_attacks, test_errors),
        "auroc_kddtest": metrics.auroc(split.kddtest_attacks, kddtest_errors),
    }
    for rule, cut in cuts.items():
        test_flags = (test_errors >= cut).astype(int)
        kddtest_flags = (kddtest_errors >= cut).astype(int)
        results[f"accuracy_{rule}"] = metrics.accuracy(split.test_attacks, test_flags)
        results[f"f1_{rule}"] = metrics.f1(split.test_attacks, test_flags)
        results[f"accuracy_kddtest_{rule}"] = metrics.accuracy(split.kddtest_attacks, kddtest_flags)
    return results
