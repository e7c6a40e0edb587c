"""Binary detection metrics shared by the reference runs and the rubric, including GAN collapse detection."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score, roc_curve

# Scores whose spread is below this are treated as constant: the detector cannot rank rows.
CONSTANT_SCORE_SPREAD = 1e-6
# F1 below this, on a test set with about half attacks, means the detector flags almost nothing.
COLLAPSED_F1 = 0.1
# Flagging more than this share of rows means the detector calls almost everything an attack.
COLLAPSED_FLAGGED_SHARE = 0.95


def accuracy(attacks: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.asarray(attacks) == np.asarray(predicted)))


def f1(attacks: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_score(attacks, predicted, zero_division=0.0))


def auroc(attacks: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(attacks, scores))


def youden_threshold(attacks: np.ndarray, scores: np.ndarray) -> float:
    """Return the threshold where TPR - FPR is largest."""
    fpr, tpr, thresholds = roc_curve(attacks, scores)
    return float(thresholds[np.argmax(tpr - fpr)])


def f1_threshold(attacks: np.ndarray, scores: np.ndarray) -> float:
    """Return the threshold on the ROC curve with the highest F1."""
    _, _, thresholds = roc_curve(attacks, scores)
    candidates = thresholds[np.isfinite(thresholds)]
    if len(candidates) > 400:
        candidates = np.quantile(scores, np.linspace(0, 1, 401))
    scored = [(f1(attacks, scores >= t), t) for t in candidates]
    return float(max(scored)[1])


def collapse_reason(scores: np.ndarray, attacks: np.ndarray, predicted: np.ndarray) -> str | None:
    """Say why a detector looks collapsed, or return None when it does not."""
    spread = float(np.std(scores))
    if not np.isfinite(spread) or spread < CONSTANT_SCORE_SPREAD * max(1.0, float(np.mean(np.abs(scores)))):
        return f"its anomaly scores are nearly constant (standard deviation {spread:.2g})"
    flagged_share = float(np.mean(predicted))
    if flagged_share > COLLAPSED_FLAGGED_SHARE:
        return (f"it flags {100 * flagged_share:.1f}% of rows as attacks, so its accuracy "
                f"{accuracy(attacks, predicted):.3f} is what flagging everything gives")
    f1_value = f1(attacks, predicted)
    if f1_value < COLLAPSED_F1:
        return (f"its F1 is {f1_value:.3f} at the chosen threshold while accuracy is "
                f"{accuracy(attacks, predicted):.3f}: it flags almost no attacks")
    return None
