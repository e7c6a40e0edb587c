"""Course GAN: split AUROC and collapse per seed for several epoch counts and learning rates."""
import logging
import sys
from pathlib import Path

import tensorflow as tf

from reference import gan
from reference.pipeline import course_split, set_seeds

tf.get_logger().setLevel(logging.ERROR)
data_dir = Path(sys.argv[1])
settings = [(1, 2e-4), (3, 2e-4), (5, 2e-4), (2, 1e-3)]
for seed in range(4):
    split = course_split(data_dir, seed)
    for epochs, learning_rate in settings:
        set_seeds(seed)
        generator = gan.build_generator(split.x_train.shape[1], gan.GAN_LATENT_DIM)
        discriminator = gan.build_discriminator(split.x_train.shape[1])
        gan.train_gan(generator, discriminator, split.x_train_normal, epochs=epochs, batch_size=gan.GAN_BATCH_SIZE,
                      learning_rate=learning_rate, seed=seed)
        result = gan._detector_metrics(split, gan.discriminator_scores(discriminator, split.x_train_normal),
                                       gan.discriminator_scores(discriminator, split.x_test),
                                       gan.discriminator_scores(discriminator, split.x_kddtest))
        print(f"seed {seed} epochs {epochs} lr {learning_rate:g}: auroc {result['auroc']:.4f} "
              f"f1 {result['f1']:.4f} collapsed {int(result['collapsed'])}", flush=True)
