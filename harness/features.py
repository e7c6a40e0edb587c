"""The NSL-KDD feature pipeline on the trusted side: one-hot encoding, column alignment and scaling.

The rubric rebuilds grader-held data (KDDTest+) through the learner's own feature
order and scaler parameters with these functions, so no learner code runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.data import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS


class FeatureError(Exception):
    """Learner features cannot be rebuilt; the message names the column or scaler field."""


def one_hot_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as floats, then one-hot categorical columns named like pandas.get_dummies."""
    numeric = frame[list(NUMERIC_COLUMNS)].astype(float)
    dummies = pd.get_dummies(frame[list(CATEGORICAL_COLUMNS)]).astype(float)
    return pd.concat([numeric, dummies], axis=1)


def align_columns(features: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Arrange features in the learner's column order.

    A one-hot column the learner has but this data lacks (a category absent from
    it) becomes zeros. A category that only this data has is dropped, because the
    learner's model has no input for it.
    """
    known_prefixes = tuple(f"{name}_" for name in CATEGORICAL_COLUMNS)
    unknown = [c for c in columns if c not in features.columns and not c.startswith(known_prefixes)]
    if unknown:
        raise FeatureError(
            f"feature column(s) {', '.join(map(repr, unknown[:5]))} are neither NSL-KDD numeric columns nor "
            "one-hot columns named <column>_<category>; build features with pandas.get_dummies on "
            f"{', '.join(CATEGORICAL_COLUMNS)}"
        )
    return features.reindex(columns=columns, fill_value=0.0).to_numpy(dtype=float)


@dataclass
class ScalerParameters:
    """A fitted scikit-learn scaler, reconstructed from its exported attributes."""

    kind: str
    offset: np.ndarray  # subtracted first,
    divisor: np.ndarray  # then divided by,
    factor: np.ndarray  # then multiplied by,
    shift: np.ndarray  # then added, in the order scikit-learn uses, so results match it bit for bit
    n_samples_seen: int | None
    # MinMaxScaler(clip=True): the feature range that transformed values are clipped to.
    clip: tuple[float, float] | None = None

    def transform(self, x: np.ndarray) -> np.ndarray:
        if x.shape[1] != self.offset.shape[0]:
            raise FeatureError(f"scaler was fitted on {self.offset.shape[0]} features, data has {x.shape[1]}")
        scaled = (x - self.offset) / self.divisor * self.factor + self.shift
        if self.clip is not None:
            scaled = np.clip(scaled, self.clip[0], self.clip[1])
        return scaled


def _vector(attributes: dict, name: str, width: int | None = None) -> np.ndarray:
    value = attributes.get(name)
    if value is None:
        raise FeatureError(f"scaler attribute {name} is missing")
    array = np.asarray(value, dtype=float).ravel()
    if width is not None and array.shape[0] != width:
        raise FeatureError(f"scaler attribute {name} has {array.shape[0]} values, expected {width}")
    if not np.all(np.isfinite(array)):
        raise FeatureError(f"scaler attribute {name} contains NaN or infinite values")
    return array


def scaler_from_export(exported: dict) -> ScalerParameters:
    """Rebuild a StandardScaler, MinMaxScaler, MaxAbsScaler or RobustScaler from exported JSON."""
    kind = str(exported.get("type"))
    attributes = exported.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise FeatureError("the exported scaler's attributes are not a mapping of names to values")
    seen = attributes.get("n_samples_seen_")
    n_samples_seen = int(np.max(seen)) if seen is not None else None

    if kind == "StandardScaler":
        width = int(attributes.get("n_features_in_") or len(attributes.get("scale_") or attributes.get("mean_")))
        mean = _vector(attributes, "mean_", width) if attributes.get("with_mean", True) else np.zeros(width)
        scale = _vector(attributes, "scale_", width) if attributes.get("with_std", True) else np.ones(width)
        return ScalerParameters(kind, mean, scale, np.ones(width), np.zeros(width), n_samples_seen)
    if kind == "MinMaxScaler":
        scale = _vector(attributes, "scale_")
        minimum = _vector(attributes, "min_", scale.shape[0])
        clip = None
        if attributes.get("clip") is True:
            low, high = _vector(attributes, "feature_range", 2)
            clip = (float(low), float(high))
        return ScalerParameters(kind, np.zeros_like(scale), np.ones_like(scale), scale, minimum, n_samples_seen,
                                clip)
    if kind == "MaxAbsScaler":
        scale = _vector(attributes, "scale_")
        return ScalerParameters(kind, np.zeros_like(scale), scale, np.ones_like(scale), np.zeros_like(scale),
                                n_samples_seen)
    if kind == "RobustScaler":
        scale = _vector(attributes, "scale_")
        center = _vector(attributes, "center_", scale.shape[0])
        return ScalerParameters(kind, center, scale, np.ones_like(scale), np.zeros_like(scale), n_samples_seen)
    raise FeatureError(
        f"scaler of type {kind} is not supported; use StandardScaler, MinMaxScaler, MaxAbsScaler or RobustScaler "
        "from sklearn.preprocessing"
    )


def rebuild(frame: pd.DataFrame, columns: list[str], scaler: ScalerParameters) -> np.ndarray:
    """Turn raw NSL-KDD rows into the learner's scaled feature matrix."""
    return scaler.transform(align_columns(one_hot_features(frame), columns))
