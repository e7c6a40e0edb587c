"""The learner template, the solution and the flawed samples: generated, up to date, and well formed."""

from __future__ import annotations

import ast
import sys

import nbformat

from conftest import REPO, SOLUTION, SUBMISSIONS, TEMPLATE

sys.path.insert(0, str(REPO / "student_templates"))
sys.path.insert(0, str(SUBMISSIONS))

import build_notebooks  # noqa: E402
import build_submissions  # noqa: E402

COURSE_VARIABLES = [
    "df", "numeric_cat_data", "le", "integer_labels", "num_labels", "x_train", "x_test", "y_train", "y_test",
    "scaler", "params", "model", "preds", "pred_labels", "true_labels", "xgb_acc", "autoencoder_model",
    "encoder_model", "batch_size", "latent_dim", "max_epochs", "learning_rate", "reconstruction_scores",
    "binary_labels", "optimal_threshold", "thresh", "ae_acc",
]


def test_template_and_solution_up_to_date():
    assert TEMPLATE.read_text() == build_notebooks.render(completed=False)
    assert SOLUTION.read_text() == build_notebooks.render(completed=True)


def test_flawed_submissions_up_to_date():
    for name in build_submissions.FLAWS:
        assert (SUBMISSIONS / f"{name}.ipynb").read_text() == build_submissions.render(name), name


def test_solution_assigns_course_variables():
    notebook = nbformat.read(SOLUTION, as_version=4)
    assigned = set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assigned.add(node.id)
    missing = [name for name in COURSE_VARIABLES if name not in assigned]
    assert missing == []


def test_template_has_parameters_cell():
    notebook = nbformat.read(TEMPLATE, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "data_dir" in tagged[0].source
    assert "seed" in tagged[0].source
    assert "epochs" in tagged[0].source


def test_template_marks_locked_and_task_cells():
    notebook = nbformat.read(TEMPLATE, as_version=4)
    roles = {c.metadata["adgrade"]["role"] for c in notebook.cells}
    locked = [c for c in notebook.cells if c.metadata["adgrade"]["role"] == "locked"]
    tasks = {c.metadata["adgrade"].get("task") for c in notebook.cells if c.metadata["adgrade"]["role"] == "task"}
    assert roles == {"instructions", "parameters", "locked", "task"}
    assert all(c.metadata.get("editable") is False for c in locked)
    assert tasks == {"split", "xgboost", "autoencoder", "gan"}


def test_template_task_cells_have_placeholders():
    notebook = nbformat.read(TEMPLATE, as_version=4)
    task_cells = [c for c in notebook.cells if c.metadata["adgrade"]["role"] == "task"]
    assert all(build_notebooks.FIX_ME in c.source for c in task_cells)


def test_template_reads_data_relative_to_notebook():
    source = "".join(c.source for c in nbformat.read(TEMPLATE, as_version=4).cells)
    assert 'data_dir = "data"' in source
    assert 'os.path.join(data_dir, "KDDTrain+_20Percent.txt")' in source


def test_template_uses_current_apis():
    source = "".join(c.source for c in nbformat.read(SOLUTION, as_version=4).cells)
    assert '"device": xgb_device' in source
    assert "Adam(learning_rate=" in source
    assert "gpu_hist" not in source
    assert "list(set(" not in source


def test_locked_feature_cells_match_rubric_pipeline(data_dir):
    """The template's read-only feature cells build exactly what the scoring side rebuilds."""
    import os

    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import LabelEncoder

    from harness import data
    from harness.features import one_hot_features

    cells = {c.get("id"): c.source for c in nbformat.read(TEMPLATE, as_version=4).cells}
    namespace = {"os": os, "np": np, "pd": pd, "LabelEncoder": LabelEncoder, "data_dir": str(data_dir)}
    exec(cells["load-data"], namespace)
    exec(cells["features"], namespace)
    rebuilt = one_hot_features(data.load(data_dir / data.TRAIN_FILE))
    assert list(namespace["numeric_cat_data"].columns) == list(rebuilt.columns)
    assert np.array_equal(namespace["numeric_cat_data"].to_numpy(), rebuilt.to_numpy())


def test_gan_training_loop_is_reference_code():
    import inspect

    from reference.gan import train_gan

    cells = {c.get("id"): c.source for c in nbformat.read(TEMPLATE, as_version=4).cells}
    assert inspect.getsource(train_gan) in cells["gan-training-loop"]
