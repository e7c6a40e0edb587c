"""Trusted loading of exported artifacts: each file is checked for type, shape, size and finite values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.export import FILE_SUFFIX, MANIFEST
from harness.rubric import ArtifactSpec, Rubric

MAX_STRING_LIST = 100_000


class ArtifactError(Exception):
    """An artifact is missing or invalid. The message is for the learner and names the task."""

    def __init__(self, spec: ArtifactSpec, task_title: str, problem: str):
        self.spec = spec
        self.task_title = task_title
        variable = f"`{spec.label}`" if spec.label else " or ".join(f"`{source}`" for source in spec.sources)
        super().__init__(f"{task_title}: {variable} {problem}")


class ArtifactMissing(ArtifactError):
    pass


class ArtifactInvalid(ArtifactError):
    pass


class ArtifactStore:
    """Loads and caches a submission's artifacts for the rubric's tests."""

    def __init__(self, directory: Path, rubric: Rubric):
        self.directory = directory
        self.rubric = rubric
        manifest_path = directory / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        # The kernel wrote the manifest, so anything but a mapping of mappings is treated as no manifest.
        if not isinstance(manifest, dict) or not all(isinstance(entry, dict) for entry in manifest.values()):
            manifest = {}
        self.manifest: dict[str, dict] = manifest
        self._cache: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = self._load(self.rubric.artifact(name))
        value = self._cache[name]
        if isinstance(value, ArtifactError):
            raise value
        return value

    def has(self, name: str) -> bool:
        try:
            self.get(name)
        except ArtifactError:
            return False
        return True

    def _load(self, spec: ArtifactSpec) -> Any:
        title = self.rubric.task(spec.task).title
        path = self.directory / f"{spec.name}{FILE_SUFFIX[spec.kind]}"
        entry = self.manifest.get(spec.name, {})
        # A file a checkpoint saved earlier counts only while the latest export still says "saved".
        if not path.is_file() or (self.manifest and entry.get("status") != "saved"):
            if not self.manifest:
                return ArtifactMissing(spec, title, "could not be read: the notebook stopped before the grader "
                                       "could save its objects.")
            detail = entry.get("detail", "")
            if entry.get("status") == "invalid":
                return ArtifactInvalid(spec, title, f"could not be saved ({detail}).")
            detail = f" ({detail})" if detail else ""
            return ArtifactMissing(spec, title, f"was not defined when the grader last saved the notebook's "
                                   f"objects{detail}. "
                                   "Complete the task's cell and make sure it runs without errors.")
        size = path.stat().st_size
        if size > spec.max_bytes:
            return ArtifactInvalid(spec, title, f"is {size} bytes, over the {spec.max_bytes}-byte limit.")
        try:
            return _LOADERS[spec.kind](path, spec)
        except ArtifactError:
            raise
        except _Invalid as problem:
            return ArtifactInvalid(spec, title, str(problem))


class _Invalid(Exception):
    pass


# Loads a model and predicts on zeros in a separate process: a crafted model (tree indices out of
# range) can crash XGBoost's native code, which must not take the whole scoring process with it.
_XGBOOST_PROBE = """
import sys
import numpy, xgboost
booster = xgboost.Booster(model_file=sys.argv[1])
booster.feature_names = None
booster.feature_types = None
booster.predict(xgboost.DMatrix(numpy.zeros((8, booster.num_features()))))
"""


def _load_xgboost(path: Path, spec: ArtifactSpec):
    import subprocess
    import sys

    import xgboost

    try:
        booster = xgboost.Booster(model_file=str(path))
    except xgboost.core.XGBoostError as error:
        raise _Invalid(f"is not a loadable XGBoost model ({str(error).splitlines()[0][:200]}).") from None
    # A model trained on a DataFrame keeps its column names, which the grader's arrays do not have. The
    # column order is checked against the learner's feature columns instead.
    booster.feature_names = None
    booster.feature_types = None
    try:
        probe = subprocess.run([sys.executable, "-c", _XGBOOST_PROBE, str(path)], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise _Invalid("took over 120 s to predict on 8 rows; it is not a usable XGBoost model.") from None
    if probe.returncode == 1:
        last_line = (probe.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
        raise _Invalid(f"could not predict on rows of zeros ({last_line[:200]}). Save the model that xgb.train "
                       "returned, unchanged.")
    if probe.returncode != 0:
        # NOTE: a model that crashes XGBoost only on particular feature values still passes this probe.
        raise _Invalid(f"crashed XGBoost when predicting (exit status {probe.returncode}); it is not a usable "
                       "XGBoost model. Save the model that xgb.train returned, unchanged.")
    return booster


def _load_keras(path: Path, spec: ArtifactSpec):
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a bad archive or an unsafe layer
        raise _Invalid(
            f"could not be loaded as a Keras model in safe mode ({type(error).__name__}: {str(error)[:200]}). "
            "Build it from standard Keras layers, without Lambda or custom layers."
        ) from None


def _load_array(path: Path, spec: ArtifactSpec) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise _Invalid(f"is not a numeric array ({error}).") from None
    if spec.kind == "label_array" and array.dtype.kind == "b":
        raise _Invalid("holds True/False values; expected class indices, the integers le.transform returns.")
    if array.dtype.kind not in "iuf":
        raise _Invalid(f"has dtype {array.dtype}; expected numbers.")
    if spec.ndim is not None and array.ndim != spec.ndim:
        raise _Invalid(f"has {array.ndim} dimension(s) (shape {array.shape}); expected {spec.ndim}.")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise _Invalid(f"contains {int(np.sum(~np.isfinite(array)))} NaN or infinite value(s).")
    if spec.kind == "label_array" and array.dtype.kind == "f":
        if not np.all(array == np.round(array)):
            raise _Invalid("contains non-integer values; expected integer class labels.")
        array = array.astype(np.int64)
    return array


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise _Invalid(f"is not valid JSON ({error}).") from None


def _load_number(path: Path, spec: ArtifactSpec) -> float:
    value = _load_json(path)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Invalid(f"is {value!r}; expected a finite number.")
    return float(value)


def _load_string_list(path: Path, spec: ArtifactSpec) -> list[str]:
    value = _load_json(path)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid("is not a list of strings.")
    if len(value) > MAX_STRING_LIST:
        raise _Invalid(f"has {len(value)} entries, over the limit of {MAX_STRING_LIST}.")
    return value


def _load_scaler(path: Path, spec: ArtifactSpec):
    from harness.features import FeatureError, scaler_from_export

    value = _load_json(path)
    if not isinstance(value, dict):
        raise _Invalid("is not a fitted scikit-learn scaler.")
    try:
        return scaler_from_export(value)
    except (FeatureError, TypeError, ValueError, OverflowError) as error:
        raise _Invalid(f"is not a usable fitted scaler: {error}.") from None


_LOADERS = {
    "xgboost_model": _load_xgboost,
    "keras_model": _load_keras,
    "array": _load_array,
    "label_array": _load_array,
    "number": _load_number,
    "string_list": _load_string_list,
    "scaler": _load_scaler,
}
