"""Detection metrics and GAN collapse detection on small synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest

from harness import metrics

ATTACKS = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_constant_scores_are_collapsed():
    reason = metrics.collapse_reason(np.full(8, 0.5), ATTACKS, np.zeros(8, dtype=int))
    assert "nearly constant" in reason


def test_near_zero_f1_is_collapsed():
    scores = np.linspace(0, 1, 8)
    predicted = np.array([0, 0, 0, 0, 0, 0, 0, 0])
    reason = metrics.collapse_reason(scores, ATTACKS, predicted)
    assert "F1 is 0.000" in reason


def test_flagging_everything_is_collapsed():
    scores = np.linspace(0, 1, 8)
    reason = metrics.collapse_reason(scores, ATTACKS, np.ones(8, dtype=int))
    assert "flags 100.0% of rows" in reason


def test_working_detector_not_collapsed():
    scores = np.array([0.1, 0.2, 0.15, 0.3, 0.8, 0.9, 0.7, 0.85])
    assert metrics.collapse_reason(scores, ATTACKS, (scores >= 0.5).astype(int)) is None


def test_youden_threshold_separates_perfectly():
    scores = np.array([0.1, 0.2, 0.15, 0.3, 0.8, 0.9, 0.7, 0.85])
    assert metrics.youden_threshold(ATTACKS, scores) == 0.7


def test_f1_threshold_maximises_f1():
    scores = np.array([0.1, 0.2, 0.15, 0.75, 0.8, 0.9, 0.7, 0.85])
    # At 0.7 every attack is caught with one false alarm (F1 8/9); at 0.8 one attack is missed (F1 6/7).
    threshold = metrics.f1_threshold(ATTACKS, scores)
    assert threshold == 0.7
    assert metrics.f1(ATTACKS, (scores >= threshold).astype(int)) == pytest.approx(8 / 9)
