"""Reference GAN detectors: the course's GAN scored by its discriminator, and an encoder-based variant.

The encoder-based variant follows "Efficient GAN-Based Anomaly Detection" (Zenati et al., 2018): a
BiGAN learns an encoder E beside the generator G, and a row's anomaly score mixes its reconstruction
error |x - G(E(x))| with the distance between the discriminator's features for (x, E(x)) and for
(G(E(x)), E(x)).
"""

from __future__ import annotations

import numpy as np

from harness import metrics
from reference.pipeline import CourseSplit

GAN_LATENT_DIM = 32
# The discriminator ranks attacks well early in training but often collapses by 5 to 10 epochs
# (measured in docs/reference.md). So the course GAN trains for 3.
GAN_EPOCHS = 3
EFFICIENT_GAN_EPOCHS = 10
GAN_BATCH_SIZE = 256
GAN_LEARNING_RATE = 2e-4
QUICK_EPOCHS = 1
# Rows whose score is above this percentile of the normal training rows' scores are flagged.
THRESHOLD_PERCENTILE = 95
# Weight of the reconstruction term in the encoder-based score; the rest goes to the feature distance.
RECONSTRUCTION_WEIGHT = 0.9


def build_generator(input_dim: int, latent_dim: int):
    from tensorflow import keras
    from tensorflow.keras import layers

    noise = keras.Input(shape=(latent_dim,), name="noise")
    hidden = layers.Dense(64, activation="relu")(noise)
    hidden = layers.Dense(128, activation="relu")(hidden)
    rows = layers.Dense(input_dim, activation="sigmoid", name="generated")(hidden)
    return keras.Model(noise, rows, name="generator")


def build_discriminator(input_dim: int):
    from tensorflow import keras
    from tensorflow.keras import layers

    rows = keras.Input(shape=(input_dim,), name="features")
    hidden = layers.Dense(128)(rows)
    hidden = layers.LeakyReLU(negative_slope=0.2)(hidden)
    hidden = layers.Dense(64)(hidden)
    hidden = layers.LeakyReLU(negative_slope=0.2)(hidden)
    real = layers.Dense(1, activation="sigmoid", name="real")(hidden)
    return keras.Model(rows, real, name="discriminator")


def train_gan(generator_model, discriminator_model, x_normal, epochs=3, batch_size=256, learning_rate=2e-4, seed=0):
    """Train a GAN on normal rows and return the discriminator and generator losses of each epoch.

    The discriminator learns to tell real rows (label 1) from generated ones (label 0);
    the generator learns to make rows that the discriminator labels real.
    """
    import tensorflow as tf

    latent_dim = generator_model.inputs[0].shape[-1]
    cross_entropy = tf.keras.losses.BinaryCrossentropy()
    generator_optimizer = tf.keras.optimizers.Adam(learning_rate, beta_1=0.5)
    discriminator_optimizer = tf.keras.optimizers.Adam(learning_rate, beta_1=0.5)
    rows = tf.data.Dataset.from_tensor_slices(x_normal.astype("float32"))
    batches = rows.shuffle(len(x_normal), seed=seed).batch(batch_size)

    @tf.function
    def train_step(real_rows):
        noise = tf.random.normal([tf.shape(real_rows)[0], latent_dim])
        with tf.GradientTape() as discriminator_tape, tf.GradientTape() as generator_tape:
            fake_rows = generator_model(noise, training=True)
            real_output = discriminator_model(real_rows, training=True)
            fake_output = discriminator_model(fake_rows, training=True)
            discriminator_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                                  + cross_entropy(tf.zeros_like(fake_output), fake_output))
            generator_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
        discriminator_weights = discriminator_model.trainable_variables
        generator_weights = generator_model.trainable_variables
        discriminator_optimizer.apply_gradients(
            zip(discriminator_tape.gradient(discriminator_loss, discriminator_weights), discriminator_weights))
        generator_optimizer.apply_gradients(
            zip(generator_tape.gradient(generator_loss, generator_weights), generator_weights))
        return discriminator_loss, generator_loss

    history = {"discriminator_loss": [], "generator_loss": []}
    for _ in range(epochs):
        for real_rows in batches:
            discriminator_loss, generator_loss = train_step(real_rows)
        history["discriminator_loss"].append(float(discriminator_loss))
        history["generator_loss"].append(float(generator_loss))
    return history


def discriminator_scores(discriminator_model, x: np.ndarray) -> np.ndarray:
    """Anomaly score of each row: 1 minus the discriminator's probability that the row is real."""
    return 1.0 - np.asarray(discriminator_model.predict(x, batch_size=4096, verbose=0))[:, 0]


def _detector_metrics(split: CourseSplit, train_scores, test_scores, kddtest_scores) -> dict[str, float]:
    threshold = float(np.percentile(train_scores, THRESHOLD_PERCENTILE))
    test_flags = (test_scores >= threshold).astype(int)
    kddtest_flags = (kddtest_scores >= threshold).astype(int)
    return {
        "auroc": metrics.auroc(split.test_attacks, test_scores),
        "auroc_kddtest": metrics.auroc(split.kddtest_attacks, kddtest_scores),
        "accuracy": metrics.accuracy(split.test_attacks, test_flags),
        "f1": metrics.f1(split.test_attacks, test_flags),
        "accuracy_kddtest": metrics.accuracy(split.kddtest_attacks, kddtest_flags),
        "score_std": float(np.std(test_scores)),
        "collapsed": float(metrics.collapse_reason(test_scores, split.test_attacks, test_flags) is not None),
    }


def evaluate_gan(split: CourseSplit, seed: int, quick: bool = False) -> dict[str, float]:
    """Train the course's GAN on normal training rows and score rows by its discriminator."""
    x_normal = split.x_train_normal[:2000] if quick else split.x_train_normal
    generator_model = build_generator(split.x_train.shape[1], GAN_LATENT_DIM)
    discriminator_model = build_discriminator(split.x_train.shape[1])
    train_gan(generator_model, discriminator_model, x_normal, epochs=QUICK_EPOCHS if quick else GAN_EPOCHS,
              batch_size=GAN_BATCH_SIZE, learning_rate=GAN_LEARNING_RATE, seed=seed)
    return _detector_metrics(split, discriminator_scores(discriminator_model, x_normal),
                             discriminator_scores(discriminator_model, split.x_test),
                             discriminator_scores(discriminator_model, split.x_kddtest))


class EfficientGAN:
    """Encoder, generator and a discriminator over (row, latent) pairs, trained as a BiGAN."""

    def __init__(self, input_dim: int, latent_dim: int = GAN_LATENT_DIM):
        from tensorflow import keras
        from tensorflow.keras import layers

        rows = keras.Input(shape=(input_dim,))
        hidden = layers.LeakyReLU(negative_slope=0.2)(layers.Dense(64)(rows))
        self.encoder = keras.Model(rows, layers.Dense(latent_dim)(hidden), name="encoder")

        self.generator = build_generator(input_dim, latent_dim)

        pair_rows = keras.Input(shape=(input_dim,))
        pair_latent = keras.Input(shape=(latent_dim,))
        row_branch = layers.Dropout(0.2)(layers.LeakyReLU(negative_slope=0.2)(layers.Dense(128)(pair_rows)))
        latent_branch = layers.Dropout(0.2)(layers.LeakyReLU(negative_slope=0.2)(layers.Dense(128)(pair_latent)))
        joined = layers.Concatenate()([row_branch, latent_branch])
        features = layers.LeakyReLU(negative_slope=0.2)(layers.Dense(128)(joined))
        logit = layers.Dense(1)(layers.Dropout(0.2)(features))
        self.discriminator = keras.Model([pair_rows, pair_latent], logit, name="pair_discriminator")
        self.features = keras.Model([pair_rows, pair_latent], features, name="pair_features")
        self.latent_dim = latent_dim

    def train(self, x_normal: np.ndarray, epochs: int, batch_size: int, learning_rate: float, seed: int) -> None:
        import tensorflow as tf

        loss = tf.keras.losses.BinaryCrossentropy(from_logits=True)
        discriminator_optimizer = tf.keras.optimizers.Adam(learning_rate, beta_1=0.5)
        generator_optimizer = tf.keras.optimizers.Adam(learning_rate, beta_1=0.5)
        generator_weights = self.generator.trainable_variables + self.encoder.trainable_variables
        discriminator_weights = self.discriminator.trainable_variables

        @tf.function
        def train_step(real_rows):
            noise = tf.random.normal([tf.shape(real_rows)[0], self.latent_dim])
            with tf.GradientTape() as discriminator_tape, tf.GradientTape() as generator_tape:
                encoded = self.encoder(real_rows, training=True)
                generated = self.generator(noise, training=True)
                real_logit = self.discriminator([real_rows, encoded], training=True)
                fake_logit = self.discriminator([generated, noise], training=True)
                discriminator_loss = (loss(tf.ones_like(real_logit), real_logit)
                                      + loss(tf.zeros_like(fake_logit), fake_logit))
                generator_loss = (loss(tf.zeros_like(real_logit), real_logit)
                                  + loss(tf.ones_like(fake_logit), fake_logit))
            discriminator_optimizer.apply_gradients(
                zip(discriminator_tape.gradient(discriminator_loss, discriminator_weights), discriminator_weights))
            generator_optimizer.apply_gradients(
                zip(generator_tape.gradient(generator_loss, generator_weights), generator_weights))

        batches = tf.data.Dataset.from_tensor_slices(x_normal.astype("float32"))
        batches = batches.shuffle(len(x_normal), seed=seed).batch(batch_size)
        for _ in range(epochs):
            for real_rows in batches:
                train_step(real_rows)

    def scores(self, x: np.ndarray, reconstruction_weight: float = RECONSTRUCTION_WEIGHT) -> np.ndarray:
        """Anomaly score: weighted L1 reconstruction error plus L1 distance of discriminator features."""
        x = x.astype("float32")
        encoded = self.encoder.predict(x, batch_size=4096, verbose=0)
        reconstructed = self.generator.predict(encoded, batch_size=4096, verbose=0)
        real_features = self.features.predict([x, encoded], batch_size=4096, verbose=0)
        fake_features = self.features.predict([reconstructed, encoded], batch_size=4096, verbose=0)
        reconstruction = np.sum(np.abs(x - reconstructed), axis=1)
        feature_distance = np.sum(np.abs(real_features - fake_features), axis=1)
        return reconstruction_weight * reconstruction + (1 - reconstruction_weight) * feature_distance


def evaluate_efficient_gan(split: CourseSplit, seed: int, quick: bool = False) -> dict[str, float]:
    """Train the encoder-based GAN on normal training rows and score rows by reconstruction and features."""
    x_normal = split.x_train_normal[:2000] if quick else split.x_train_normal
    model = EfficientGAN(split.x_train.shape[1])
    model.train(x_normal, epochs=QUICK_EPOCHS if quick else EFFICIENT_GAN_EPOCHS, batch_size=GAN_BATCH_SIZE,
                learning_rate=GAN_LEARNING_RATE, seed=seed)
    return _detector_metrics(split, model.scores(x_normal), model.scores(split.x_test), model.scores(split.x_kddtest))
