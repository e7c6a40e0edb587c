"""The compatibility profile for notebooks of the course's earlier editions (opt-in per rubric).

Earlier editions were written for XGBoost 1.x, Keras 2 and old IPython. With
`[rubric.compatibility] legacy_editions = true`, intake rewrites what current
releases reject, and every rewrite is listed in the result:

- `Adam(lr=...)` and the other Keras optimizers' `lr` become `learning_rate`;
- imports from `tensorflow.python.keras` become `tensorflow.keras`;
- a code cell whose first line is indented (old IPython dedented it) is dedented;
- XGBoost's `tree_method='gpu_hist'`, `n_gpus` and `gpu_id` are translated by a prelude
  cell that wraps `xgboost.train` and the scikit-learn estimators: `hist` on the GPU
  (`device='cuda'`) where XGBoost was built with CUDA and a GPU is present, else on the CPU;
- `from assessment import ...`, the course's grading module, finds a shim that records
  what the notebook claims and grades nothing;
- the training file is also placed where the 2020 edition reads it,
  `data/assessment/KDDTrain+_20Percent.txt`.

Notebooks that save `xgboost.pickle.dat`, `my_model.h5` or pickled thresholds are
graded from the kernel's objects by the export cell, like every notebook: the
grader never opens a file the notebook wrote, so nothing is ever unpickled.
"""

from __future__ import annotations

import re
import textwrap

import nbformat

from harness.result import Rewrite

PRELUDE_TAG = "adgrade-compat-prelude"
ASSESSMENT_MODULE = "assessment.py"
LEGACY_DATA_PATHS = {"data/assessment/KDDTrain+_20Percent.txt": "KDDTrain+_20Percent.txt"}

KERAS_OPTIMIZERS = "Adam|AdamW|SGD|RMSprop|Adagrad|Adadelta|Adamax|Nadam|Ftrl"
_OPTIMIZER_LR = re.compile(rf"\b((?:{KERAS_OPTIMIZERS})\s*\([^()]*?)\blr\s*=")
_TF_PYTHON_KERAS = re.compile(r"\btensorflow\.python\.keras\b")
_XGBOOST_GPU = re.compile(r"""gpu_hist|gpu_exact|\bn_gpus\b|\bgpu_id\b""")

# Runs in the kernel before the notebook's first cell.
PRELUDE = '''\
# Added by the grader's compatibility profile: translates XGBoost parameters of releases before 2.0.
def __adgrade_compat_xgboost():
    import functools, os
    import xgboost

    def device():
        built_with_cuda = bool(xgboost.build_info().get("USE_CUDA"))
        return "cuda" if built_with_cuda and os.path.exists("/dev/nvidiactl") else "cpu"

    def translate(params):
        if not isinstance(params, dict):
            return params
        params = dict(params)
        if params.get("tree_method") in ("gpu_hist", "gpu_exact"):
            params["tree_method"] = "hist"
            params.setdefault("device", device())
        if params.get("predictor") in ("gpu_predictor", "cpu_predictor"):
            params.pop("predictor")
        params.pop("n_gpus", None)
        gpu_id = params.pop("gpu_id", None)
        if gpu_id is not None and params.get("device", "cuda").startswith("cuda") and device() == "cuda":
            params["device"] = f"cuda:{gpu_id}"
        return params

    train = xgboost.train

    @functools.wraps(train)
    def compatible_train(params, *args, **kwargs):
        return train(translate(params), *args, **kwargs)

    xgboost.train = compatible_train
    init = xgboost.XGBModel.__init__

    @functools.wraps(init)
    def compatible_init(self, *args, **kwargs):
        init(self, *args, **translate(kwargs))

    xgboost.XGBModel.__init__ = compatible_init


__adgrade_compat_xgboost()
del __adgrade_compat_xgboost
'''

# Installed as assessment.py in the workspace, where `from assessment import ...` finds it.
ASSESSMENT_SHIM = '''\
"""Stand-in for the course's grading module, installed by the grader's compatibility profile.

It records what the notebook claims and grades nothing: the grader recomputes every
metric from the saved models in a separate process.
"""

CLAIMS = []


def _record(name, value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = repr(value)[:100]
    CLAIMS.append({"function": name, "value": value})
    print(f"{name}: recorded {value!r}; the grader recomputes this from your models.")


def xgb_accuracy_score(value, *args, **kwargs):
    _record("xgb_accuracy_score", value)


def autoencoder_accuracy_score(value, *args, **kwargs):
    _record("autoencoder_accuracy_score", value)


def run_assessment(*args, **kwargs):
    CLAIMS.append({"function": "run_assessment", "value": None})
    print("run_assessment: the grader scores this notebook after it runs; nothing is graded here.")
'''


def _dedent_first_line(source: str) -> str | None:
    """Return the source made valid by dedenting, where its indented first line is the only problem."""
    first = source.lstrip("\n").split("\n", 1)[0]
    if not first or not first[0].isspace():
        return None
    try:
        compile(source, "<cell>", "exec")
        return None
    except IndentationError:
        pass
    except SyntaxError:
        return None  # IPython magics and other syntax: leave the cell as it is
    for candidate in (textwrap.dedent(source), source.lstrip(" \t")):
        try:
            compile(candidate, "<cell>", "exec")
            return candidate
        except SyntaxError:
            continue
    return None


def apply_legacy_rewrites(notebook: nbformat.NotebookNode) -> list[Rewrite]:
    """Rewrite the notebook's code for current releases; return every rewrite made."""
    rewrites: list[Rewrite] = []
    uses_xgboost_gpu = False
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell_id = cell.get("id", "")
        source = cell.source

        renamed = source
        while True:
            updated = _OPTIMIZER_LR.sub(r"\1learning_rate=", renamed)
            if updated == renamed:
                break
            renamed = updated
        if renamed != source:
            rewrites.append(Rewrite(rule="keras_optimizer_lr", cell_id=cell_id,
                                    detail="lr= became learning_rate= in a Keras optimizer call"))
            source = renamed

        if _TF_PYTHON_KERAS.search(source):
            source = _TF_PYTHON_KERAS.sub("tensorflow.keras", source)
            rewrites.append(Rewrite(rule="tensorflow_python_keras", cell_id=cell_id,
                                    detail="tensorflow.python.keras became tensorflow.keras"))

        dedented = _dedent_first_line(source)
        if dedented is not None:
            source = dedented
            rewrites.append(Rewrite(rule="indented_first_line", cell_id=cell_id,
                                    detail="the cell's indented first line was dedented, as old IPython did"))

        if _XGBOOST_GPU.search(source):
            uses_xgboost_gpu = True
            rewrites.append(Rewrite(rule="xgboost_gpu_parameters", cell_id=cell_id,
                                    detail="gpu_hist, n_gpus or gpu_id are translated at run time to "
                                           "tree_method='hist' with device='cuda' on a GPU, else 'cpu'"))
        if re.search(r"^\s*(from\s+assessment\s+import|import\s+assessment\b)", source, re.MULTILINE):
            rewrites.append(Rewrite(rule="assessment_module", cell_id=cell_id,
                                    detail="the course's grading module is replaced by a stand-in that "
                                           "records the numbers passed to it and grades nothing"))
        cell.source = source

    if uses_xgboost_gpu:
        prelude = nbformat.v4.new_code_cell(PRELUDE, metadata={"tags": [PRELUDE_TAG]})
        prelude["id"] = "adgrade-compat-prelude"
        notebook.cells.insert(0, prelude)
    return rewrites
