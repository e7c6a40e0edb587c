"""Pure helpers of the NSL-KDD rubric, shared by its conftest and test files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import xgboost

from harness import data

KEY_DECIMALS = 6
CLASSIFIER_OBJECTIVES = ("multi:softprob", "multi:softmax")
# Rows that differ from the file's rows by float noise (a float32 cast, rounding across a key boundary)
# still match when every value is within this much, relative to max(1, |value|).
ROW_TOLERANCE = 1e-5


@dataclass
class SplitCheck:
    """Whether x_train and x_test partition the training file, and what differs if not."""

    ok: bool
    problems: list[str] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)
    # For each row of x_test, the index of the training file's row it is (-1 for none).
    test_file_rows: np.ndarray | None = None


def row_keys(matrix: np.ndarray) -> list[bytes]:
    """Hashable keys for rows, rounded so that float noise does not matter."""
    rounded = np.ascontiguousarray(np.round(np.asarray(matrix, dtype=float), KEY_DECIMALS) + 0.0)
    return [row.tobytes() for row in rounded]


def match_rows(expected: np.ndarray, splits: list[np.ndarray]) -> list[np.ndarray]:
    """Find, for each row of each split, the index of the row of `expected` it is, or -1 where there is none.

    Each row of `expected` is used once. Rows match on their rounded keys first, then the rows left
    over match within ROW_TOLERANCE.
    """
    free: dict[bytes, list[int]] = {}
    for index, key in enumerate(row_keys(expected)):
        free.setdefault(key, []).append(index)
    matches = []
    for x in splits:
        found = np.full(len(x), -1, dtype=np.int64)
        for position, key in enumerate(row_keys(x)):
            rows = free.get(key)
            if rows:
                found[position] = rows.pop()
        matches.append(found)

    used = np.zeros(len(expected), dtype=bool)
    for found in matches:
        used[found[found >= 0]] = True
    if used.all() or all((found >= 0).all() for found in matches):
        return matches
    _match_within_tolerance(expected, np.flatnonzero(~used), splits, matches)
    return matches


def _match_within_tolerance(expected: np.ndarray, left: np.ndarray, splits: list[np.ndarray],
                            matches: list[np.ndarray]) -> None:
    """Match unmatched split rows to the unused rows `left` of `expected` that are equal within ROW_TOLERANCE.

    Rows within the tolerance have projections, on a random direction, within a known radius of each other.
    So the candidates for a row come from that window of the sorted projections, and only they are compared
    value by value.
    """
    candidates = expected[left]
    weights = np.random.default_rng(0).normal(size=expected.shape[1])
    projection = candidates @ weights
    order = np.argsort(projection)
    sorted_projection = projection[order]
    radius = ROW_TOLERANCE * max(1.0, float(np.abs(candidates).max(initial=0.0))) * float(np.abs(weights).sum())
    taken = np.zeros(len(left), dtype=bool)
    for x, found in zip(splits, matches):
        unmatched = np.flatnonzero(found < 0)
        if not len(unmatched):
            continue
        points = x[unmatched] @ weights
        starts = np.searchsorted(sorted_projection, points - radius, side="left")
        ends = np.searchsorted(sorted_projection, points + radius, side="right")
        for position, start, end in zip(unmatched, starts, ends):
            window = order[start:end]
            window = window[~taken[window]]
            if not len(window):
                continue
            rows = candidates[window]
            distance = np.max(np.abs(rows - x[position]) / np.maximum(1.0, np.abs(rows)), axis=1)
            best = int(np.argmin(distance))
            if distance[best] <= ROW_TOLERANCE:
                taken[window[best]] = True
                found[position] = left[window[best]]


def class_predictions(model: xgboost.Booster, x: np.ndarray) -> np.ndarray:
    """Predicted class indices, for both multi:softprob and multi:softmax models.

    Fails (AssertionError) for outputs that are not class indices, such as a regression model's.
    """
    try:
        objective = json.loads(model.save_config())["learner"]["objective"]["name"]
    except (ValueError, KeyError, TypeError):
        objective = "unknown"
    assert objective in CLASSIFIER_OBJECTIVES, (
        f"The XGBoost model's objective is {objective}, so it does not predict classes. Train it with objective "
        "multi:softprob or multi:softmax."
    )
    model.set_param({"device": "cpu"})
    output = model.predict(xgboost.DMatrix(x))
    assert np.all(np.isfinite(output)), (
        "The XGBoost model predicts NaN or infinite values. Train it with objective multi:softprob or multi:softmax."
    )
    if output.ndim == 2:
        return np.argmax(output, axis=1)
    classes = np.rint(output)
    not_classes = ("The XGBoost model predicts values that are not class indices. Train it with objective "
                   "multi:softprob or multi:softmax.")
    assert np.all(classes >= 0), not_classes
    assert np.all(np.abs(output - classes) < 1e-6), not_classes
    return classes.astype(np.int64)


def require_finite(scores: np.ndarray, what: str) -> np.ndarray:
    """Fail (AssertionError) unless every score is a finite number."""
    bad = int(np.sum(~np.isfinite(scores)))
    assert bad == 0, f"{what} has {bad} NaN or infinite value(s); check the model's weights and its inputs."
    return scores


def attack_mask(labels: np.ndarray, classes: list[str]) -> np.ndarray:
    """1 for attack rows, 0 for normal rows, from class indices and the learner's label classes."""
    names = np.asarray(classes, dtype=object)[labels]
    return (names != data.NORMAL_LABEL).astype(int)


@dataclass
class EvaluationSplit:
    """The rows the models' quality is measured on, with class indices into the learner's label classes.

    These are the course's test rows, rebuilt by the grader through the learner's features and scaler.
    A learner who chooses which rows to hold out therefore cannot choose the rows their models are
    scored on. `is_learners` is True when the learner's x_test contains the same rows.
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

