"""Trusted artifact loading: every malformed or unsafe file is reported against its task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.artifacts import ArtifactInvalid, ArtifactMissing, ArtifactStore
from harness.export import MANIFEST
from harness.rubric import load_rubric


@pytest.fixture
def store(tmp_path):
    def make(files: dict[str, bytes | np.ndarray], manifest: dict | None = None) -> ArtifactStore:
        for name, content in files.items():
            if isinstance(content, np.ndarray):
                np.save(tmp_path / name, content, allow_pickle=True)
            else:
                (tmp_path / name).write_bytes(content)
        (tmp_path / MANIFEST).write_text(json.dumps(manifest or {}))
        return ArtifactStore(tmp_path, load_rubric())
    return make


def test_valid_array_loads(store):
    artifacts = store({"x_test.npy": np.ones((3, 2))})
    assert artifacts.get("x_test").shape == (3, 2)


def test_array_with_nan_is_invalid(store):
    artifacts = store({"x_test.npy": np.array([[1.0, np.nan]])})
    with pytest.raises(ArtifactInvalid, match="1 NaN or infinite"):
        artifacts.get("x_test")


def test_pickled_object_array_is_invalid(store):
    artifacts = store({"x_test.npy": np.array([{"a": 1}, None], dtype=object)})
    with pytest.raises(ArtifactInvalid, match="not a numeric array"):
        artifacts.get("x_test")


def test_array_of_wrong_rank_is_invalid(store):
    artifacts = store({"x_test.npy": np.ones(4)})
    with pytest.raises(ArtifactInvalid, match="expected 2"):
        artifacts.get("x_test")


def test_fractional_labels_are_invalid(store):
    artifacts = store({"y_test.npy": np.array([0.0, 1.5])})
    with pytest.raises(ArtifactInvalid, match="non-integer"):
        artifacts.get("y_test")


def test_infinite_number_is_invalid(store):
    artifacts = store({"xgb_acc.json": b'"inf"'})
    with pytest.raises(ArtifactInvalid, match="finite number"):
        artifacts.get("xgb_acc")


def test_corrupt_keras_file_is_invalid(store):
    artifacts = store({"autoencoder_model.keras": b"not a zip archive"})
    with pytest.raises(ArtifactInvalid, match="safe mode"):
        artifacts.get("autoencoder_model")


def test_corrupt_xgboost_file_is_invalid(store):
    artifacts = store({"xgb_model.ubj": b"\x00\x01garbage"})
    with pytest.raises(ArtifactInvalid, match="not a loadable XGBoost model"):
        artifacts.get("xgb_model")


def test_missing_artifact_names_task_and_variable(store):
    manifest = {"xgb_model": {"status": "missing", "detail": "model: NameError: name 'model' is not defined"}}
    artifacts = store({}, manifest)
    with pytest.raises(ArtifactMissing) as error:
        artifacts.get("xgb_model")
    assert str(error.value).startswith("XGBoost classifier: `model`")
    assert "NameError" in str(error.value)


def test_no_manifest_means_notebook_stopped(tmp_path):
    artifacts = ArtifactStore(tmp_path, load_rubric())
    with pytest.raises(ArtifactMissing, match="stopped before the grader"):
        artifacts.get("x_test")


def test_oversized_artifact_is_invalid(store):
    artifacts = store({"feature_columns.json": json.dumps(["a" * 100] * 1000).encode()})
    artifacts.rubric.artifact("feature_columns").max_bytes = 1000
    with pytest.raises(ArtifactInvalid, match="over the 1000-byte limit"):
        artifacts.get("feature_columns")
