"""Build the learner template and the reference solution from one list of cells.

Both notebooks come from the cells below, so their read-only cells, cell ids and
task metadata cannot drift apart. Run `python student_templates/build_notebooks.py`
after editing a cell; a test fails when the committed notebooks are out of date.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TEMPLATE_PATH = ROOT / "student_templates" / "nslkdd_assessment.ipynb"
SOLUTION_PATH = ROOT / "reference" / "solution.ipynb"

FIX_ME = "#### FIX ME ####"


@dataclass
class Cell:
    id: str
    kind: str  # "markdown" or "code"
    role: str  # "instructions", "parameters", "locked" ("done for you") or "task"
    source: str
    solution: str | None = None  # task cells only: the completed code
    task: str | None = None  # the rubric task a task cell belongs to


def _gan_training_loop() -> str:
    """Return the reference GAN training loop's source, so the notebooks and the calibration run share it."""
    from reference.gan import train_gan

    return inspect.getsource(train_gan)


def _reference_source(name: str) -> str:
    """Return a reference function's source, so the solution runs where the reference package is absent."""
    from reference import gan

    return inspect.getsource(getattr(gan, name))


CELLS = [
    Cell("title", "markdown", "instructions", """\
# Assessment: detecting network intrusions on NSL-KDD

You will build three detectors for the NSL-KDD network-traffic data and score each one:

1. a multi-class **XGBoost** classifier that names the attack type of a connection,
2. an **autoencoder** that learns what normal traffic looks like and flags connections it reconstructs badly,
3. a **GAN** whose discriminator flags connections unlike the normal traffic it was trained on.

Cells marked *done for you* are read-only: run them as they are. Replace every `#### FIX ME ####` in the
task cells. The grader re-runs the whole notebook from the top in a fresh kernel and recomputes every
score from your models, so the numbers printed here are for you, not for the grade.

Run `adgrade check nslkdd_assessment.ipynb` to see the visible tests before you submit."""),

    Cell("parameters", "code", "parameters", """\
# Parameters (the grader may replace these values when it runs the notebook).
data_dir = "data"  # folder holding KDDTrain+_20Percent.txt
seed = 42  # seeds Python, NumPy, TensorFlow and XGBoost
epochs = 10  # a good starting value for max_epochs below"""),

    Cell("setup", "code", "locked", """\
# Done for you: imports and seeding.
import os
import random

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf
import xgboost as xgb
from sklearn.metrics import accuracy_score, auc, confusion_matrix, f1_score, roc_curve
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, MinMaxScaler
from tensorflow import keras
from tensorflow.keras import layers

random.seed(seed)
np.random.seed(seed)
keras.utils.set_random_seed(seed)
tf.config.experimental.enable_op_determinism()

# XGBoost trains on the GPU when TensorFlow can see one.
xgb_device = "cuda" if tf.config.list_physical_devices("GPU") else "cpu"
print("XGBoost device:", xgb_device)"""),

    Cell("load-data-intro", "markdown", "instructions", """\
## The data

Each row of `KDDTrain+_20Percent.txt` is one network connection: 41 features, the attack label
(`normal` or the name of an attack) and a difficulty level."""),

    Cell("load-data", "code", "locked", """\
# Done for you: load the training file with its column names.
col_names = [
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
    "label", "difficulty_level",
]
df = pd.read_csv(os.path.join(data_dir, "KDDTrain+_20Percent.txt"), header=None, names=col_names, index_col=False)
print(df.shape)
df["label"].value_counts()"""),

    Cell("features", "code", "locked", """\
# Done for you: features and labels.
categorical_features = ["protocol_type", "service", "flag"]
# Numeric columns keep the file's order, so every run builds the same feature matrix.
numeric_features = [c for c in col_names if c not in categorical_features + ["label", "difficulty_level"]]

numeric_data = df[numeric_features].astype(float)
cat_data = pd.get_dummies(df[categorical_features]).astype(float)
numeric_cat_data = pd.concat([numeric_data, cat_data], axis=1)

le = LabelEncoder()
integer_labels = le.fit_transform(df["label"])
num_labels = len(le.classes_)
normal_index = int(le.transform(["normal"])[0])
print(numeric_cat_data.shape, "features;", num_labels, "classes")"""),

    Cell("split-intro", "markdown", "instructions", """\
## Task 1: split and scale the data

Hold out a quarter of the rows as the test split (use `random_state=seed`). Then fit a `MinMaxScaler` on
the **training rows only** and transform both splits with it."""),

    Cell("split", "code", "task", f"""\
x_train, x_test, y_train, y_test = {FIX_ME}""", task="split", solution="""\
x_train, x_test, y_train, y_test = train_test_split(
    numeric_cat_data, integer_labels, test_size=0.25, random_state=seed
)"""),

    Cell("scale", "code", "task", f"""\
scaler = {FIX_ME}
x_train = {FIX_ME}
x_test = {FIX_ME}
print(x_train.shape, x_test.shape)""", task="split", solution="""\
scaler = MinMaxScaler().fit(x_train)
x_train = scaler.transform(x_train)
x_test = scaler.transform(x_test)
print(x_train.shape, x_test.shape)"""),

    Cell("xgb-intro", "markdown", "instructions", """\
## Task 2: a multi-class XGBoost classifier

Set the booster's parameters in `params` (use `device=xgb_device` and `tree_method="hist"`), train a
multi-class model `model` with `xgb.train`, predict the test split, and score it. The grader expects a
test accuracy above 0.95."""),

    Cell("xgb-params", "code", "task", f"""\
params = {{
    "objective": {FIX_ME},
    "num_class": {FIX_ME},
    "tree_method": "hist",
    "device": xgb_device,
    "seed": seed,
}}
num_boost_round = {FIX_ME}""", task="xgboost", solution="""\
params = {
    "objective": "multi:softprob",
    "num_class": num_labels,
    "tree_method": "hist",
    "device": xgb_device,
    "max_depth": 6,
    "learning_rate": 0.3,
    "seed": seed,
}
num_boost_round = 20"""),

    Cell("xgb-train", "code", "task", f"""\
dtrain = xgb.DMatrix(x_train, label=y_train)
model = {FIX_ME}""", task="xgboost", solution="""\
dtrain = xgb.DMatrix(x_train, label=y_train)
model = xgb.train(params, dtrain, num_boost_round=num_boost_round)"""),

    Cell("xgb-predict", "code", "task", f"""\
dtest = xgb.DMatrix(x_test)
preds = {FIX_ME}
pred_labels = {FIX_ME}
true_labels = y_test
xgb_acc = {FIX_ME}
print(f"XGBoost accuracy: {{xgb_acc:.4f}}")""", task="xgboost", solution="""\
dtest = xgb.DMatrix(x_test)
preds = model.predict(dtest)
pred_labels = np.argmax(preds, axis=1)
true_labels = y_test
xgb_acc = accuracy_score(true_labels, pred_labels)
print(f"XGBoost accuracy: {xgb_acc:.4f}")"""),

    Cell("xgb-confusion", "code", "task", f"""\
# The confusion matrix over all num_labels classes, true classes in rows.
conf_matrix = {FIX_ME}
plt.figure(figsize=(8, 8))
plt.imshow(np.log1p(conf_matrix), cmap="Blues")
plt.xticks(range(num_labels), le.classes_, rotation=90)
plt.yticks(range(num_labels), le.classes_)
plt.xlabel("predicted")
plt.ylabel("true")
plt.show()""", task="xgboost", solution="""\
# The confusion matrix over all num_labels classes, true classes in rows.
conf_matrix = confusion_matrix(true_labels, pred_labels, labels=np.arange(num_labels))
plt.figure(figsize=(8, 8))
plt.imshow(np.log1p(conf_matrix), cmap="Blues")
plt.xticks(range(num_labels), le.classes_, rotation=90)
plt.yticks(range(num_labels), le.classes_)
plt.xlabel("predicted")
plt.ylabel("true")
plt.show()"""),

    Cell("ae-intro", "markdown", "instructions", """\
## Task 3: an autoencoder anomaly detector

Set the hyperparameters, then build the encoder: layers that narrow, each fed by the previous one, down
to a bottleneck of `latent_dim` units (`encoder_model`). Build the decoder on top of the bottleneck, back
to the input width (`autoencoder_model`). Train it to reconstruct **normal** training rows, compute each
test row's reconstruction error (mean squared error per row), plot the ROC curve, and choose the
threshold where TPR - FPR is largest (Youden's J). The grader expects an accuracy of at least 0.90."""),

    Cell("ae-params", "code", "task", f"""\
batch_size = {FIX_ME}
latent_dim = {FIX_ME}
max_epochs = {FIX_ME}
learning_rate = {FIX_ME}""", task="autoencoder", solution="""\
batch_size = 256
latent_dim = 4
max_epochs = epochs
learning_rate = 1e-3"""),

    Cell("encoder", "code", "task", f"""\
input_dim = x_train.shape[1]
input_layer = keras.Input(shape=(input_dim,), name="features")
encoded = {FIX_ME}
bottleneck = {FIX_ME}
encoder_model = keras.Model(input_layer, bottleneck, name="encoder")
encoder_model.summary()""", task="autoencoder", solution="""\
input_dim = x_train.shape[1]
input_layer = keras.Input(shape=(input_dim,), name="features")
encoded = layers.Dense(64, activation="relu")(input_layer)
encoded = layers.Dense(32, activation="relu")(encoded)
bottleneck = layers.Dense(latent_dim, activation="relu", name="bottleneck")(encoded)
encoder_model = keras.Model(input_layer, bottleneck, name="encoder")
encoder_model.summary()"""),

    Cell("decoder", "code", "task", f"""\
decoded = {FIX_ME}
reconstruction = {FIX_ME}
autoencoder_model = keras.Model(input_layer, reconstruction, name="autoencoder")
autoencoder_model.summary()""", task="autoencoder", solution="""\
decoded = layers.Dense(32, activation="relu")(bottleneck)
decoded = layers.Dense(64, activation="relu")(decoded)
reconstruction = layers.Dense(input_dim, name="reconstruction")(decoded)
autoencoder_model = keras.Model(input_layer, reconstruction, name="autoencoder")
autoencoder_model.summary()"""),

    Cell("ae-train", "code", "task", f"""\
x_train_normal = x_train[y_train == normal_index]
autoencoder_model.compile(optimizer={FIX_ME}, loss="mse")
history = {FIX_ME}""", task="autoencoder", solution="""\
x_train_normal = x_train[y_train == normal_index]
autoencoder_model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
history = autoencoder_model.fit(
    x_train_normal, x_train_normal, batch_size=batch_size, epochs=max_epochs, validation_split=0.1, verbose=0
)
print("final validation loss:", history.history["val_loss"][-1])"""),

    Cell("ae-errors", "code", "task", f"""\
reconstructions = autoencoder_model.predict(x_test, batch_size=batch_size, verbose=0)
reconstruction_scores = {FIX_ME}""", task="autoencoder", solution="""\
reconstructions = autoencoder_model.predict(x_test, batch_size=batch_size, verbose=0)
reconstruction_scores = np.mean(np.square(x_test - reconstructions), axis=1)"""),

    Cell("ae-roc", "code", "task", f"""\
# 1 marks an attack, 0 a normal connection.
binary_labels = {FIX_ME}
fpr, tpr, thresholds = {FIX_ME}
plt.plot(fpr, tpr, label=f"AUROC = {{auc(fpr, tpr):.3f}}")
plt.plot([0, 1], [0, 1], linestyle="--")
plt.xlabel("false positive rate")
plt.ylabel("true positive rate")
plt.legend()
plt.show()""", task="autoencoder", solution="""\
# 1 marks an attack, 0 a normal connection.
binary_labels = (y_test != normal_index).astype(int)
fpr, tpr, thresholds = roc_curve(binary_labels, reconstruction_scores)
plt.plot(fpr, tpr, label=f"AUROC = {auc(fpr, tpr):.3f}")
plt.plot([0, 1], [0, 1], linestyle="--")
plt.xlabel("false positive rate")
plt.ylabel("true positive rate")
plt.legend()
plt.show()"""),

    Cell("ae-threshold", "code", "task", f"""\
# Youden's J: the threshold where TPR - FPR is largest.
optimal_threshold = {FIX_ME}
thresh = optimal_threshold
print("threshold:", thresh)""", task="autoencoder", solution="""\
# Youden's J: the threshold where TPR - FPR is largest.
optimal_threshold = thresholds[np.argmax(tpr - fpr)]
thresh = optimal_threshold
print("threshold:", thresh)"""),

    Cell("ae-score", "code", "task", f"""\
# Rows whose reconstruction error reaches the threshold are flagged as attacks.
ae_predictions = {FIX_ME}
ae_acc = {FIX_ME}
print(f"Autoencoder accuracy: {{ae_acc:.4f}}")""", task="autoencoder", solution="""\
# Rows whose reconstruction error reaches the threshold are flagged as attacks.
ae_predictions = (reconstruction_scores >= thresh).astype(int)
ae_acc = accuracy_score(binary_labels, ae_predictions)
print(f"Autoencoder accuracy: {ae_acc:.4f}")"""),
]


GAN_CELLS = [
    Cell("gan-intro", "markdown", "instructions", """\
## Task 4: a GAN detector

Train a GAN on **normal** training rows: a generator that turns `gan_latent_dim` random numbers into a
row of `input_dim` features, and a discriminator that outputs the probability that a row is real. The
training loop is done for you. A row the discriminator finds unlike normal traffic is suspicious, so
score each test row with `1 - discriminator_model.predict(...)[:, 0]` and flag rows whose score
exceeds the 95th percentile of the normal training rows' scores. The discriminator ranks attacks
well after a few epochs, and trained much longer it can collapse: watch the losses, and check that
the scores vary and that F1 is not near zero."""),

    Cell("gan-params", "code", "task", f"""\
gan_latent_dim = {FIX_ME}
gan_epochs = {FIX_ME}
gan_batch_size = {FIX_ME}
gan_learning_rate = {FIX_ME}""", task="gan", solution="""\
gan_latent_dim = 32
gan_epochs = 3
gan_batch_size = 256
gan_learning_rate = 2e-4"""),

    Cell("gan-training-loop", "code", "locked", "# Done for you: the GAN training loop.\n" + _gan_training_loop()),

    Cell("generator", "code", "task", f"""\
generator_model = {FIX_ME}
generator_model.summary()""", task="gan", solution=_reference_source("build_generator") + """
generator_model = build_generator(input_dim, gan_latent_dim)
generator_model.summary()"""),

    Cell("discriminator", "code", "task", f"""\
discriminator_model = {FIX_ME}
discriminator_model.summary()""", task="gan", solution=_reference_source("build_discriminator") + """
discriminator_model = build_discriminator(input_dim)
discriminator_model.summary()"""),

    Cell("gan-train", "code", "task", f"""\
gan_history = {FIX_ME}
plt.plot(gan_history["discriminator_loss"], label="discriminator")
plt.plot(gan_history["generator_loss"], label="generator")
plt.xlabel("epoch")
plt.legend()
plt.show()""", task="gan", solution="""\
gan_history = train_gan(generator_model, discriminator_model, x_train_normal, epochs=gan_epochs,
                        batch_size=gan_batch_size, learning_rate=gan_learning_rate, seed=seed)
plt.plot(gan_history["discriminator_loss"], label="discriminator")
plt.plot(gan_history["generator_loss"], label="generator")
plt.xlabel("epoch")
plt.legend()
plt.show()"""),

    Cell("gan-scores", "code", "task", f"""\
# Higher scores mean less like normal traffic.
gan_scores = {FIX_ME}
print("score spread:", gan_scores.std())""", task="gan", solution="""\
# Higher scores mean less like normal traffic.
gan_scores = 1 - discriminator_model.predict(x_test, verbose=0)[:, 0]
print("score spread:", gan_scores.std())"""),

    Cell("gan-threshold", "code", "task", f"""\
train_gan_scores = 1 - discriminator_model.predict(x_train_normal, verbose=0)[:, 0]
gan_threshold = {FIX_ME}
gan_predictions = (gan_scores >= gan_threshold).astype(int)
gan_acc = accuracy_score(binary_labels, gan_predictions)
gan_f1 = f1_score(binary_labels, gan_predictions)
print(f"GAN accuracy: {{gan_acc:.4f}}, F1: {{gan_f1:.4f}}")""", task="gan", solution="""\
train_gan_scores = 1 - discriminator_model.predict(x_train_normal, verbose=0)[:, 0]
gan_threshold = np.percentile(train_gan_scores, 95)
gan_predictions = (gan_scores >= gan_threshold).astype(int)
gan_acc = accuracy_score(binary_labels, gan_predictions)
gan_f1 = f1_score(binary_labels, gan_predictions)
print(f"GAN accuracy: {gan_acc:.4f}, F1: {gan_f1:.4f}")"""),
]
CELLS.extend(GAN_CELLS)


def _notebook_cell(cell: Cell, completed: bool) -> nbformat.NotebookNode:
    source = cell.solution if completed and cell.solution is not None else cell.source
    metadata: dict = {"adgrade": {"role": cell.role, "name": cell.id}}
    if cell.task:
        metadata["adgrade"]["task"] = cell.task
    if cell.role == "locked":
        metadata.update(editable=False, deletable=False)
    if cell.role == "parameters":
        metadata["tags"] = ["parameters"]
    if cell.kind == "markdown":
        node = nbformat.v4.new_markdown_cell(source, metadata=metadata)
    else:
        node = nbformat.v4.new_code_cell(source, metadata=metadata)
    node["id"] = cell.id
    return node


def build(completed: bool) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    notebook.cells = [_notebook_cell(cell, completed) for cell in CELLS]
    nbformat.validate(notebook)
    return notebook


def render(completed: bool) -> str:
    return nbformat.writes(build(completed)) + "\n"


def main() -> int:
    TEMPLATE_PATH.write_text(render(completed=False), encoding="utf-8")
    SOLUTION_PATH.write_text(render(completed=True), encoding="utf-8")
    print(f"wrote {TEMPLATE_PATH} and {SOLUTION_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
