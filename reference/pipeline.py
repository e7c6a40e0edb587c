"""The course split of KDDTrain+_20Percent and KDDTest+, built with the rubric's own feature pipeline."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, MinMaxScaler

from harness import data
from harness.features import align_columns, one_hot_features

logger = logging.getLogger(__name__)

TEST_SIZE = 0.25
VALIDATION_SIZE = 0.2


@dataclass
class CourseSplit:
    """The learner's view (a 75/25 split of the training file) plus the grader-held KDDTest+."""

    columns: list[str]
    classes: list[str]
    normal_index: int
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    x_kddtest: np.ndarray
    kddtest_attacks: np.ndarray

    @property
    def test_attacks(self) -> np.ndarray:
        return (self.y_test != self.normal_index).astype(int)

    @property
    def train_attacks(self) -> np.ndarray:
        return (self.y_train != self.normal_index).astype(int)

    @property
    def x_train_normal(self) -> np.ndarray:
        return self.x_train[self.y_train == self.normal_index]


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def gpu_available() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def resolve_device(device: str) -> str:
    """Turn auto, cpu or cuda into the XGBoost device to use; cuda without a GPU is an error."""
    if device == "auto":
        return "cuda" if gpu_available() else "cpu"
    if device == "cuda" and not gpu_available():
        raise RuntimeError("--device cuda was requested but TensorFlow sees no GPU; use --device cpu or auto")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    return device


def course_split(data_dir: Path, seed: int) -> CourseSplit:
    """Split the training file as the course does and rebuild KDDTest+ through the same columns and scaler."""
    train = data.load(data_dir / data.TRAIN_FILE)
    kddtest = data.load(data_dir / data.TEST_FILE)

    features = one_hot_features(train)
    encoder = LabelEncoder()
    labels = encoder.fit_transform(train[data.LABEL_COLUMN])
    x_train, x_test, y_train, y_test = train_test_split(
        features.to_numpy(dtype=float), labels, test_size=TEST_SIZE, random_state=seed
    )
    scaler = MinMaxScaler().fit(x_train)
    columns = list(features.columns)
    x_kddtest = scaler.transform(align_columns(one_hot_features(kddtest), columns))

    return CourseSplit(
        columns=columns,
        classes=[str(c) for c in encoder.classes_],
        normal_index=int(encoder.transform([data.NORMAL_LABEL])[0]),
        x_train=scaler.transform(x_train),
        x_test=scaler.transform(x_test),
        y_train=y_train,
        y_test=y_test,
        x_kddtest=x_kddtest,
        kddtest_attacks=(kddtest[data.LABEL_COLUMN].to_numpy() != data.NORMAL_LABEL).astype(int),
    )


def validation_split(x: np.ndarray, attacks: np.ndarray, seed: int):
    """Hold out part of the training rows, stratified by normal versus attack, for honest threshold choice."""
    return train_test_split(x, attacks, test_size=VALIDATION_SIZE, random_state=seed, stratify=attacks)
