"""The export cell: code appended to a submission that saves the rubric's artifacts in safe formats.

The cell runs inside the learner's kernel, so nothing it writes is trusted: the
scoring side validates every file again (see harness.artifacts). It never
pickles: models go to XGBoost UBJSON and Keras `.keras`, arrays to `.npy`
without pickle, everything else to JSON.
"""

from __future__ import annotations

import json

from harness.rubric import ArtifactSpec

EXPORT_TAG = "adgrade-export"
# Cells the runner inserts after each task's last cell. They save that task's artifacts at once,
# so a kernel that dies later (a memory kill, os._exit) does not take finished tasks with it.
CHECKPOINT_TAG = "adgrade-checkpoint"
MANIFEST = "manifest.json"
ASSESSMENT_CLAIMS = "assessment_claims.json"
ENVIRONMENT = "environment.json"

FILE_SUFFIX = {
    "xgboost_model": ".ubj",
    "keras_model": ".keras",
    "array": ".npy",
    "label_array": ".npy",
    "number": ".json",
    "string_list": ".json",
    "scaler": ".json",
}

# Scaler attributes that define a fitted scikit-learn scaler's transform.
SCALER_ATTRIBUTES = ("mean_", "scale_", "var_", "min_", "data_min_", "data_max_", "center_", "max_abs_",
                     "n_samples_seen_", "n_features_in_", "with_mean", "with_std", "feature_range", "clip")

_EXPORT_CODE = '''
def __adgrade_export(specs, export_dir, suffixes, scaler_attributes):
    import importlib.metadata, json, math, os, platform, sys
    import numpy

    # Entries saved by earlier checkpoints stay unless this export saves them again.
    os.makedirs(export_dir, exist_ok=True)
    namespace = sys.modules["__main__"].__dict__
    manifest = {}
    try:
        with open(os.path.join(export_dir, "{manifest}")) as handle:
            manifest = dict(json.load(handle))
    except Exception:
        manifest = {}

    def plain(value):
        if isinstance(value, numpy.ndarray):
            return value.tolist()
        if isinstance(value, numpy.generic):
            return value.item()
        if isinstance(value, tuple):
            return list(value)
        return value

    def save(kind, obj, path):
        if kind == "xgboost_model":
            import xgboost
            if hasattr(obj, "get_booster"):
                obj = obj.get_booster()
            if not isinstance(obj, xgboost.Booster):
                raise TypeError("expected an xgboost.Booster, got " + type(obj).__name__)
            obj.save_model(path)
        elif kind == "keras_model":
            import keras
            if not isinstance(obj, keras.Model):
                raise TypeError("expected a Keras Model, got " + type(obj).__name__)
            obj.save(path)
        elif kind in ("array", "label_array"):
            if hasattr(obj, "to_numpy"):
                obj = obj.to_numpy()
            array = numpy.asarray(obj)
            if array.dtype == object:
                raise TypeError("expected a numeric array, got values of type object")
            numpy.save(path, array, allow_pickle=False)
        elif kind == "number":
            value = float(numpy.asarray(obj).item())
            with open(path, "w") as handle:
                json.dump(value if math.isfinite(value) else str(value), handle)
        elif kind == "string_list":
            with open(path, "w") as handle:
                json.dump([str(item) for item in list(obj)], handle)
        elif kind == "scaler":
            fitted = {name: plain(getattr(obj, name)) for name in scaler_attributes
                      if getattr(obj, name, None) is not None}
            with open(path, "w") as handle:
                json.dump({"type": type(obj).__name__, "attributes": fitted}, handle)

    for spec in specs:
        entry = {"task": spec["task"], "status": "missing", "detail": ""}
        # A file from an earlier checkpoint must not outlive a failed or missing export of the object.
        stale = os.path.join(export_dir, spec["name"] + suffixes[spec["kind"]])
        if os.path.lexists(stale):
            os.remove(stale)
        for source in spec["sources"]:
            try:
                obj = eval(source, namespace)
            except Exception as error:
                if not entry["detail"]:
                    entry["detail"] = source + ": " + type(error).__name__ + ": " + str(error)[:300]
                continue
            path = os.path.join(export_dir, spec["name"] + suffixes[spec["kind"]])
            try:
                save(spec["kind"], obj, path)
            except Exception as error:
                entry.update(status="invalid", source=source,
                             detail=source + ": " + type(error).__name__ + ": " + str(error)[:300])
            else:
                entry.update(status="saved", source=source, file=os.path.basename(path), detail="")
            break
        manifest[spec["name"]] = entry

    # The kernel may not have the harness installed, so this repeats harness.versions.package_versions.
    versions = {}
    for package in ("numpy", "pandas", "scikit-learn", "xgboost", "tensorflow", "keras"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    device = "cpu"
    if "tensorflow" in sys.modules:
        try:
            if sys.modules["tensorflow"].config.list_physical_devices("GPU"):
                device = "cuda"
        except Exception:
            pass
    environment = {"python": platform.python_version(), "versions": versions, "device": device}
    with open(os.path.join(export_dir, "{environment}"), "w") as handle:
        json.dump(environment, handle)
    with open(os.path.join(export_dir, "{manifest}"), "w") as handle:
        json.dump(manifest, handle)
    # What the notebook passed to the compatibility profile's stand-in for the course's grading module.
    assessment = sys.modules.get("assessment")
    claims = getattr(assessment, "CLAIMS", None) if assessment is not None else None
    claims_path = os.path.join(export_dir, "{claims}")
    if os.path.lexists(claims_path):  # planted before the export, or left by an earlier checkpoint
        os.remove(claims_path)
    if isinstance(claims, list) and claims:
        with open(claims_path, "w") as handle:
            json.dump(claims[:100], handle, default=repr)


__adgrade_export({specs}, {export_dir}, {suffixes}, {scaler_attributes})
del __adgrade_export
'''


def export_cell_source(specs: list[ArtifactSpec], export_dir: str) -> str:
    """Build the export cell's code for these artifacts, writing into export_dir."""
    spec_list = [{"name": s.name, "task": s.task, "kind": s.kind, "sources": s.sources} for s in specs]
    return (
        _EXPORT_CODE.replace("{environment}", ENVIRONMENT)
        .replace("{manifest}", MANIFEST)
        .replace("{claims}", ASSESSMENT_CLAIMS)
        .replace("{specs}", json.dumps(spec_list))
        .replace("{export_dir}", json.dumps(export_dir))
        .replace("{suffixes}", json.dumps(FILE_SUFFIX))
        .replace("{scaler_attributes}", json.dumps(list(SCALER_ATTRIBUTES)))
        .strip()
        + "\n"
    )
