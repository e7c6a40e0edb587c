"""Build the flawed submissions used by the tests and `make demo`.

Each is the reference solution with the mistakes real learners make written into
a few cells. Run `python tests/submissions/build_submissions.py` after changing
the solution; a test fails when the committed notebooks are out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "student_templates"))

from build_notebooks import build  # noqa: E402

HERE = Path(__file__).resolve().parent

# submission name -> {cell id: replacement source}
FLAWS: dict[str, dict[str, str]] = {
    # multi:softmax returns class labels, so argmax over axis 1 raises: the XGBoost section stops.
    "softmax_argmax": {
        "xgb-params": """\
params = {
    "objective": "multi:softmax",
    "num_class": num_labels,
    "tree_method": "hist",
    "device": xgb_device,
    "max_depth": 6,
    "learning_rate": 0.3,
    "seed": seed,
}
num_boost_round = 20""",
    },
    # The threshold is a percentile of training errors instead of Youden's J.
    "percentile_threshold": {
        "ae-threshold": """\
train_reconstructions = autoencoder_model.predict(x_train_normal, batch_size=batch_size, verbose=0)
train_scores = np.mean(np.square(x_train_normal - train_reconstructions), axis=1)
optimal_threshold = np.percentile(train_scores, 95)
thresh = optimal_threshold
print("threshold:", thresh)""",
    },
    # The scaler is fitted on every row, test rows included, before the split.
    "scaler_all_rows": {
        "split": """\
scaler = MinMaxScaler().fit(numeric_cat_data)
x_train, x_test, y_train, y_test = train_test_split(
    numeric_cat_data, integer_labels, test_size=0.25, random_state=seed
)""",
        "scale": """\
x_train = scaler.transform(x_train)
x_test = scaler.transform(x_test)
print(x_train.shape, x_test.shape)""",
    },
    # Every encoder layer is wired to the input layer, so only the last one is in the model.
    "encoder_wired_to_input": {
        "encoder": """\
input_dim = x_train.shape[1]
input_layer = keras.Input(shape=(input_dim,), name="features")
encoded = layers.Dense(64, activation="relu")(input_layer)
encoded = layers.Dense(32, activation="relu")(input_layer)
bottleneck = layers.Dense(latent_dim, activation="relu", name="bottleneck")(input_layer)
encoder_model = keras.Model(input_layer, bottleneck, name="encoder")
encoder_model.summary()""",
    },
    # The stored accuracy is typed in rather than computed.
    "fake_xgb_acc": {
        "xgb-predict": """\
dtest = xgb.DMatrix(x_test)
preds = model.predict(dtest)
pred_labels = np.argmax(preds, axis=1)
true_labels = y_test
xgb_acc = 0.9999
print(f"XGBoost accuracy: {xgb_acc:.4f}")""",
    },
    # A typo raises NameError in the encoder cell; the XGBoost work before it still counts.
    "autoencoder_error": {
        "encoder": """\
input_dim = x_train.shape[1]
input_layer = keras.Input(shape=(input_dim,), name="features")
encoded = layers.Dense(64, activation="relu")(input_layr)
encoded = layers.Dense(32, activation="relu")(encoded)
bottleneck = layers.Dense(latent_dim, activation="relu", name="bottleneck")(encoded)
encoder_model = keras.Model(input_layer, bottleneck, name="encoder")""",
    },
    # Keras 2 spelling: current Keras rejects Adam(lr=...), so the autoencoder is never trained.
    "old_keras_lr": {
        "ae-train": """\
x_train_normal = x_train[y_train == normal_index]
autoencoder_model.compile(optimizer=keras.optimizers.Adam(lr=learning_rate), loss="mse")
history = autoencoder_model.fit(
    x_train_normal, x_train_normal, batch_size=batch_size, epochs=max_epochs, validation_split=0.1, verbose=0
)""",
    },
    # A learning rate 500 times too high: the discriminator saturates and every row gets the same score.
    "gan_collapsed": {
        "gan-params": """\
gan_latent_dim = 32
gan_epochs = 3
gan_batch_size = 256
gan_learning_rate = 0.1""",
    },
    # input() waits for keyboard input, which never comes under a grader.
    "asks_for_input": {
        "ae-params": """\
batch_size = 256
latent_dim = int(input("latent_dim? "))
max_epochs = epochs
learning_rate = 1e-3""",
    },
}


def render(name: str) -> str:
    notebook = build(completed=True)
    replacements = FLAWS[name]
    unknown = set(replacements) - {cell.get("id") for cell in notebook.cells}
    if unknown:
        raise KeyError(f"{name}: no cell with id {', '.join(sorted(unknown))} in the solution")
    for cell in notebook.cells:
        if cell.get("id") in replacements:
            cell.source = replacements[cell["id"]]
    return nbformat.writes(notebook) + "\n"


def main() -> int:
    for name in FLAWS:
        (HERE / f"{name}.ipynb").write_text(render(name), encoding="utf-8")
    print(f"wrote {len(FLAWS)} submissions to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
