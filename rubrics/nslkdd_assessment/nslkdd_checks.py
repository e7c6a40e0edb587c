"""Pure helpers of the NSL-KDD rubric, shared by its conftest and test files."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xgboost

from harness import data

KEY_DECIMALS = 6


@dataclass
class SplitCheck:
    """Whether x_train and x_test partition the training file, and what differs if not."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)


def row_keys(matrix: np.ndarray) -> list[bytes]:
    """Hashable keys for rows, rounded so that float noise does not matter."""
    rounded = np.ascontiguousarray(np.round(np.asarray(matrix, dtype=float), KEY_DECIMALS) + 0.0)
    return [row.tobytes() for row in rounded]


def class_predictions(model: xgboost.Booster, x: np.ndarray) -> np.ndarray:
    """Predicted class indices, for both multi:softprob and multi:softmax models."""
    model.set_param({"device": "cpu"})
    output = model.predict(xgboost.DMatrix(x))
    if output.ndim == 2:
        return np.argmax(output, axis=1)
    return np.rint(output).astype(np.int64)


def attack_mask(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    """1 for attack rows, 0 for normal rows, from class indices and the learner's label classes."""
    names = np.asarray(classes, dtype=object)[labels]
    return (names != data.NORMAL_LABEL).astype(int)


@dataclass
class EvaluationSplit:
    """The rows the models' quality is measured on, with class indices into the learner's label classes.

    This is the learner's test split when it holds the rows the template's split makes, and otherwise
    the course's test split rebuilt through the learner's features and scaler, so that a learner who
    chooses which rows to hold out cannot choose the rows their models are scored on.
    """

    x: np.ndarray
    y: np.ndarray
    is_learners: bool

    @property
    def name(self) -> str:
        return "your test split" if self.is_learners else "the course's test split"


@dataclass
class ReconstructionErrors:
    """Reconstruction errors recomputed from the exported autoencoder, on the learner's and the evaluation split."""

    test_split: np.ndarray
    definition: str
    matches_learner: bool
    evaluation: np.ndarray


ERROR_DEFINITIONS = {
    "mean squared error": lambda x, r: np.mean(np.square(x - r), axis=1),
    "mean absolute error": lambda x, r: np.mean(np.abs(x - r), axis=1),
    "sum of squared errors": lambda x, r: np.sum(np.square(x - r), axis=1),
    "root mean squared error": lambda x, r: np.sqrt(np.mean(np.square(x - r), axis=1)),
}


def reconstruct(model, x: np.ndarray, batch_rows: int = 8192) -> np.ndarray:
    """Compute the model's output for x eagerly, in batches, because model.predict would first trace a graph."""
    x = x.astype(np.float32)
    parts = [np.asarray(model(x[start:start + batch_rows], training=False)) for start in range(0, len(x), batch_rows)]
    return np.concatenate(parts).astype(float)


def accuracy_at(threshold: float, scores: np.ndarray, attacks: np.ndarray) -> float:
    """Accuracy when rows whose error reaches the threshold are called attacks."""
    return float(np.mean((scores >= threshold).astype(int) == attacks))

