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


def roc_points(attacks: np.ndarray, scores: np.ndarray, max_points: int = 200) -> dict[str, object]:
    """Return an ROC curve thinned to at most max_points points, with its AUROC, for plotting.

    Rows whose score is NaN or infinite are left out. Without both classes left, the curve is empty.
    """
    attacks, scores = np.asarray(attacks), np.asarray(scores, dtype=float)
    finite = np.isfinite(scores)
    attacks, scores = attacks[finite], scores[finite]
    if len(np.unique(attacks)) < 2:
        return {"fpr": [], "tpr": [], "auroc": None}
    fpr, tpr, _ = roc_curve(attacks, scores)
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr],
            "auroc": auroc(attacks, scores)}


def score_histograms(attacks: np.ndarray, scores: np.ndarray, threshold: float, bins: int = 40) -> dict[str, object]:
    """Histogram normal and attack rows' scores on shared bins, on a log axis when the scores span decades.

    Rows whose score is NaN or infinite are left out, and a threshold that is not finite is stored as None.
    """
    attacks = np.asarray(attacks).astype(bool)
    scores = np.asarray(scores, dtype=float)
    finite = np.isfinite(scores)
    if finite.any():
        low, high = float(scores[finite].min()), float(scores[finite].max())
    else:
        low, high = 0.0, 1.0
    log_x = bool(low > 0 and high / low > 100)
    if log_x:
        edges = np.geomspace(low, high, bins + 1)
    else:
        edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    normal_counts, _ = np.histogram(scores[finite & ~attacks], edges)
    attack_counts, _ = np.histogram(scores[finite & attacks], edges)
    threshold = float(threshold)
    return {"bin_edges": [float(v) for v in edges], "normal": normal_counts.tolist(),
            "attack": attack_counts.tolist(), "threshold": threshold if np.isfinite(threshold) else None,
            "log_x": log_x}
