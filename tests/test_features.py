"""Trusted feature rebuilding: scalers rebuilt from exported attributes match scikit-learn exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from harness.export import SCALER_ATTRIBUTES
from harness.features import FeatureError, align_columns, one_hot_features, rebuild, scaler_from_export


def exported(scaler) -> dict:
    """The JSON the export cell writes for a fitted scaler."""
    attributes = {}
    for name in SCALER_ATTRIBUTES:
        value = getattr(scaler, name, None)
        if value is not None:
            attributes[name] = value.tolist() if isinstance(value, np.ndarray) else (
                list(value) if isinstance(value, tuple) else value)
    return {"type": type(scaler).__name__, "attributes": attributes}


@pytest.mark.parametrize("scaler_class", [StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler])
def test_rebuilt_scaler_matches_sklearn(scaler_class):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * [1, 10, 100, 0.1, 3] + [0, 5, -2, 1, 0]
    scaler = scaler_class().fit(x[:150])
    rebuilt = scaler_from_export(exported(scaler))
    assert np.array_equal(rebuilt.transform(x[150:]), scaler.transform(x[150:]))
    assert rebuilt.kind == scaler_class.__name__


def test_rebuilt_scaler_counts_fitted_rows():
    scaler = MinMaxScaler().fit(np.arange(30.0).reshape(10, 3))
    assert scaler_from_export(exported(scaler)).n_samples_seen == 10


def test_unfitted_scaler_is_rejected():
    with pytest.raises(FeatureError, match="mean_ is missing"):
        scaler_from_export({"type": "StandardScaler", "attributes": {"with_mean": True, "with_std": True,
                                                                     "scale_": [1.0]}})


def test_unsupported_scaler_named_in_error():
    with pytest.raises(FeatureError, match="QuantileTransformer is not supported"):
        scaler_from_export({"type": "QuantileTransformer", "attributes": {}})


def test_scaler_with_nan_is_rejected():
    with pytest.raises(FeatureError, match="NaN"):
        scaler_from_export({"type": "MinMaxScaler", "attributes": {"scale_": [float("nan")], "min_": [0.0]}})


def _rows() -> pd.DataFrame:
    from harness.data import COLUMNS

    row = {name: 0 for name in COLUMNS}
    first = {**row, "protocol_type": "tcp", "service": "http", "flag": "SF", "src_bytes": 100, "label": "normal"}
    second = {**row, "protocol_type": "udp", "service": "private", "flag": "S0", "src_bytes": 5, "label": "neptune"}
    return pd.DataFrame([first, second])


def test_align_fills_absent_categories_with_zeros():
    features = one_hot_features(_rows())
    aligned = align_columns(features, ["src_bytes", "service_ftp", "protocol_type_udp"])
    assert aligned.tolist() == [[100.0, 0.0, 0.0], [5.0, 0.0, 1.0]]


def test_align_rejects_unknown_column():
    with pytest.raises(FeatureError, match="'packets'"):
        align_columns(one_hot_features(_rows()), ["src_bytes", "packets"])


def test_rebuild_applies_learner_scaler():
    columns = ["src_bytes", "protocol_type_tcp"]
    scaler = MinMaxScaler().fit(np.array([[0.0, 0.0], [200.0, 1.0]]))
    rebuilt = rebuild(_rows(), columns, scaler_from_export(exported(scaler)))
    assert rebuilt.tolist() == [[0.5, 1.0], [0.025, 0.0]]
