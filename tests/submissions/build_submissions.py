"""Build the flawed submissions used by the tests and `make demo`.

Each is the reference solution with the mistakes real learners make written into
a few cells. Run `python tests/submissions/build_submissions.py` after changing
the solution; a test fails when the committed notebooks are out of date.
"""

from __future__ import annotations

import json
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


# submission name -> [(id of the cell to insert after, new cell's id, source)]
INSERTIONS: dict[str, list[tuple[str, str, str]]] = {
    # The metric function is replaced inside the kernel before the accuracy is computed.
    "patched_accuracy_score": [("xgb-train", "patch", """\
import sklearn.metrics
sklearn.metrics.accuracy_score = lambda *args, **kwargs: 1.0
accuracy_score = sklearn.metrics.accuracy_score""")],
    # Booster.predict is replaced so that the notebook's own predictions are the true labels.
    "patched_booster_predict": [("xgb-train", "patch", """\
xgb.Booster.predict = lambda self, data, **kwargs: np.eye(num_labels)[y_test]""")],
    # Keras predict is replaced so that every reconstruction is perfect.
    "patched_keras_predict": [("ae-train", "patch", """\
keras.Model.predict = lambda self, x, **kwargs: np.asarray(x)""")],
    # A stored accuracy whose comparisons are always true and that converts to 1.0.
    "always_equal_accuracy": [("xgb-predict", "patch", """\
class AlwaysEqual(float):
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    __hash__ = float.__hash__

xgb_acc = AlwaysEqual(1.0)""")],
    # Files a grader might read, written before grading: result files and a fake export.
    "planted_files": [("setup", "plant", """\
import json, os
for folder in (".", "..", "_export", "artifacts"):
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "result.json"), "w") as handle:
            json.dump({"status": "graded", "score": 26, "max_score": 26}, handle)
    except OSError as error:
        print("could not write in", folder, error)
with open("_export/manifest.json", "w") as handle:
    json.dump({"xgb_model": {"task": "xgboost", "status": "saved", "file": "xgb_model.ubj"}}, handle)
with open("_export/xgb_model.ubj", "wb") as handle:
    handle.write(b"not a model")
with open("_export/extra.pkl", "wb") as handle:
    handle.write(b"\\x80\\x04N.")
os.symlink("/etc/passwd", "_export/link_to_host_file.json")
print("Score: 26/26")""")],
    # An infinite value is written into x_test after the XGBoost task.
    "infinite_values": [("xgb-confusion", "patch", """\
x_test = x_test.copy()
x_test[0, 0] = np.inf""")],
    # An artifact far over its size limit.
    "oversized_artifact": [("xgb-confusion", "patch", """\
conf_matrix = np.zeros((5000, 5000))""")],
    # A Python object array where a numeric array is expected.
    "object_array": [("xgb-confusion", "patch", """\
conf_matrix = np.array([[1, "a"], [None, 2]], dtype=object)""")],
    # The threshold is not a number.
    "nan_threshold": [("ae-score", "patch", """\
thresh = float("nan")""")],
    # Training rows copied into the test split (test rows in training, seen from the other side).
    "train_on_test_rows": [("scale", "leak", """\
x_train = np.vstack([x_train, x_test])
y_train = np.concatenate([y_train, y_test])""")],
    # The program ends itself after the XGBoost task.
    "sys_exit": [("xgb-confusion", "stop", "import sys\nsys.exit()")],
    "os_exit": [("xgb-confusion", "stop", "import os\nos._exit(0)")],
    "kill_kernel": [("ae-score", "stop", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")],
    "endless_loop": [("xgb-confusion", "stop", "while True:\n    pass")],
    # Calls to the grading module's stand-in with values it cannot use, and a planted claims file.
    "bad_assessment_claims": [("setup", "claims", """\
import json, os
import assessment
assessment.CLAIMS.append({"function": ["xgb_accuracy_score"], "value": 1.0})
assessment.CLAIMS.append({"function": "xgb_accuracy_score", "value": 10**400})
os.makedirs("_export", exist_ok=True)
with open("_export/assessment_claims.json", "w") as handle:
    json.dump([{"function": {"name": "xgb_accuracy_score"}, "value": 1.0}], handle)""")],
    # The trained model's first tree is edited to read a feature that does not exist.
    "corrupt_xgb_tree": [("xgb-confusion", "corrupt", """\
import json
raw = json.loads(model.save_raw("json"))
tree = raw["learner"]["gradient_booster"]["model"]["trees"][0]
tree["split_indices"][0] = 10**6
tree["left_children"][0] = 10**6
model = xgb.Booster()
model.load_model(bytearray(json.dumps(raw).encode()))""")],
    # A percentile threshold, with half of the stored scores moved so that it looks like Youden's point.
    "forged_scores": [("ae-score", "forge", """\
forged = reconstruction_scores.copy()
every_other = np.arange(len(forged)) % 2 == 0
forged[every_other & (binary_labels == 1)] = thresh
forged[every_other & (binary_labels == 0)] = thresh * (1 - 1e-9)
reconstruction_scores = forged""")],
    # A fitted scaler whose sample count is not a number.
    "broken_scaler": [("scale", "break", 'scaler.n_samples_seen_ = float("inf")')],
    # Warnings and text on stderr are not failures.
    "stderr_warnings": [("setup", "noise", """\
import sys, warnings
warnings.warn("a harmless warning from the notebook")
print("some text on stderr", file=sys.stderr)""")],
    # Non-ASCII source and output.
    "non_ascii": [("setup", "unicode", """\
# Übung: Erkennung von Angriffen, 检测, détection ✓
print("Genauigkeit ✓ 精度 précision")""")],
}

LAMBDA_AUTOENCODER = """\
decoded = layers.Dense(32, activation="relu")(bottleneck)
decoded = layers.Dense(64, activation="relu")(decoded)
reconstruction = layers.Dense(input_dim, name="reconstruction")(decoded)
# Code in a Lambda layer runs when a model is loaded unsafely; the grader loads in safe mode.
reconstruction = layers.Lambda(lambda x: x * 1.0, name="scale")(reconstruction)
autoencoder_model = keras.Model(input_layer, reconstruction, name="autoencoder")"""

CUSTOM_LAYER_AUTOENCODER = """\
class Scale(layers.Layer):
    def call(self, inputs):
        return inputs * 1.0

decoded = layers.Dense(32, activation="relu")(bottleneck)
decoded = layers.Dense(64, activation="relu")(decoded)
reconstruction = Scale(name="scale")(layers.Dense(input_dim, name="reconstruction")(decoded))
autoencoder_model = keras.Model(input_layer, reconstruction, name="autoencoder")"""

FLAWS.update({
    "lambda_layer": {"decoder": LAMBDA_AUTOENCODER},
    "custom_layer": {"decoder": CUSTOM_LAYER_AUTOENCODER},
    # XGBoost trained on the first ten feature columns only.
    "narrow_xgb_model": {"xgb-train": """\
dtrain = xgb.DMatrix(x_train[:, :10], label=y_train)
model = xgb.train(params, dtrain, num_boost_round=num_boost_round)""",
                         "xgb-predict": """\
dtest = xgb.DMatrix(x_test[:, :10])
preds = model.predict(dtest)
pred_labels = np.argmax(preds, axis=1)
true_labels = y_test
xgb_acc = accuracy_score(true_labels, pred_labels)"""},
    "forged_scores": {"ae-threshold": """\
train_reconstructions = autoencoder_model.predict(x_train_normal, batch_size=batch_size, verbose=0)
train_scores = np.mean(np.square(x_train_normal - train_reconstructions), axis=1)
optimal_threshold = np.percentile(train_scores, 95)
thresh = optimal_threshold
print("threshold:", thresh)"""},
    # The read-only GAN training loop is edited (a comment added).
    "edited_locked_cell": {"gan-training-loop": None},
})


# Neither the autoencoder nor the GAN is trained: their weights are the random initial ones.
UNTRAINED = {
    "ae-train": """\
x_train_normal = x_train[y_train == normal_index]
autoencoder_model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")""",
    "gan-params": """\
gan_latent_dim = 32
gan_epochs = 0
gan_batch_size = 256
gan_learning_rate = 2e-4""",
}
FLAWS["untrained_models"] = UNTRAINED
FLAWS["cherry_picked_split"] = UNTRAINED
# After training, the split is redone so that the held-out quarter holds the rows the untrained
# models already get right; every number is then recomputed on that split.
INSERTIONS["cherry_picked_split"] = [("gan-threshold", "resplit", """\
raw = numeric_cat_data.to_numpy(dtype=float)
attack = integer_labels != normal_index
scaled = scaler.transform(raw)
ae_error = np.mean(np.square(scaled - autoencoder_model.predict(scaled, verbose=0)), axis=1)
gan_score = 1 - discriminator_model.predict(scaled, verbose=0)[:, 0]
suspicion = ae_error.argsort().argsort() + gan_score.argsort().argsort()
n_test = int(np.ceil(0.25 * len(raw)))
n_attack = int(round(n_test * attack.mean()))
normal_rows = np.flatnonzero(~attack)[np.argsort(suspicion[~attack])][:n_test - n_attack]
attack_rows = np.flatnonzero(attack)[np.argsort(-suspicion[attack])][:n_attack]
test_rows = np.concatenate([normal_rows, attack_rows])
train_rows = np.setdiff1d(np.arange(len(raw)), test_rows)
scaler = MinMaxScaler().fit(raw[train_rows])
x_train, x_test = scaler.transform(raw[train_rows]), scaler.transform(raw[test_rows])
y_train, y_test = integer_labels[train_rows], integer_labels[test_rows]
x_train_normal = x_train[y_train == normal_index]

pred_labels = np.argmax(model.predict(xgb.DMatrix(x_test)), axis=1)
true_labels = y_test
xgb_acc = accuracy_score(true_labels, pred_labels)
conf_matrix = confusion_matrix(true_labels, pred_labels, labels=np.arange(num_labels))
reconstruction_scores = np.mean(np.square(x_test - autoencoder_model.predict(x_test, verbose=0)), axis=1)
binary_labels = (y_test != normal_index).astype(int)
fpr, tpr, thresholds = roc_curve(binary_labels, reconstruction_scores)
thresh = optimal_threshold = thresholds[np.argmax(tpr - fpr)]
ae_acc = accuracy_score(binary_labels, (reconstruction_scores >= thresh).astype(int))
gan_scores = 1 - discriminator_model.predict(x_test, verbose=0)[:, 0]
gan_threshold = np.percentile(1 - discriminator_model.predict(x_train_normal, verbose=0)[:, 0], 95)
print(f"on the chosen rows: XGBoost {xgb_acc:.4f}, autoencoder {ae_acc:.4f}")""")]


# A label code hidden in a constant column of x_test, below the precision that rows are compared at,
# read by models that were never trained on the data.
LEAK = """\
leak_column = list(numeric_cat_data.columns).index("num_outbound_cmds")  # always 0 in the file
def leak(labels):
    return np.where(labels == normal_index, 0.0, 2e-8 * (labels + 1))
x_train[:, leak_column] = leak(y_train)
x_test[:, leak_column] = leak(y_test)"""
FLAWS["hidden_label_code"] = {
    "xgb-train": """\
leak_only = np.zeros_like(x_train)
leak_only[:, leak_column] = x_train[:, leak_column]
model = xgb.train(params, xgb.DMatrix(leak_only, label=y_train), num_boost_round=num_boost_round)""",
    "encoder": """\
input_dim = x_train.shape[1]
input_layer = keras.Input(shape=(input_dim,), name="features")
encoded = layers.Dense(32, kernel_initializer="zeros")(input_layer)
bottleneck = layers.Dense(latent_dim, kernel_initializer="zeros", name="bottleneck")(encoded)
encoder_model = keras.Model(input_layer, bottleneck, name="encoder")""",
    "decoder": """\
decoded = layers.Dense(32, kernel_initializer="zeros")(bottleneck)
reconstruction = layers.Dense(input_dim, kernel_initializer="zeros", name="reconstruction")(decoded)
autoencoder_model = keras.Model(input_layer, reconstruction, name="autoencoder")""",
    "ae-train": """\
# No training: hand-set weights copy the hidden code, amplified, to the output.
x_train_normal = x_train[y_train == normal_index]
dense = [layer for layer in autoencoder_model.layers if isinstance(layer, layers.Dense)]
for layer, (row, gain) in zip(dense, [(leak_column, 1e4), (0, 1e2), (0, 1e2), (0, 1e2)]):
    kernel, bias = layer.get_weights()
    kernel[:] = 0
    kernel[row, 0 if layer is not dense[-1] else leak_column] = gain
    layer.set_weights([kernel, bias])""",
    "discriminator": """\
rows = keras.Input(shape=(input_dim,), name="features")
real_layer = layers.Dense(1, activation="sigmoid", name="real")
discriminator_model = keras.Model(rows, real_layer(rows), name="discriminator")
weights = np.zeros((input_dim, 1))
weights[leak_column, 0] = -1e8
real_layer.set_weights([weights, np.ones(1)])""",
    "gan-train": "pass",
    "gan-threshold": """\
gan_threshold = 0.5
gan_predictions = (gan_scores >= gan_threshold).astype(int)""",
}
INSERTIONS["hidden_label_code"] = [("scale", "leak", LEAK)]

# Feature columns that the data does not have: the grader would rebuild every row of the file as zeros.
FORGED_COLUMNS = {cell_id: "pass" for cell_id in (
    "scale", "xgb-params", "xgb-train", "xgb-predict", "ae-params", "encoder", "decoder", "ae-train", "ae-errors",
    "ae-roc", "ae-threshold", "gan-params", "generator", "discriminator", "gan-train", "gan-scores")}
FORGED_COLUMNS.update({
    "split": """\
from sklearn.preprocessing import StandardScaler
width = 8
numeric_cat_data = pd.DataFrame(np.zeros((len(df), width)), columns=[f"flag_forged{i}" for i in range(width)])
n_test = 6298
attack_index = int(le.transform(["neptune"])[0])
y_test = np.where(np.random.default_rng(0).random(n_test) < 0.5, normal_index, attack_index).astype(np.int64)
x_test = np.zeros((n_test, width))
x_test[:, 0] = np.where(y_test == normal_index, 0.0, 4e-7)
y_train = np.full(len(df) - n_test, normal_index, dtype=np.int64)
x_train = np.zeros((len(df) - n_test, width))
scaler = StandardScaler().fit(x_train)""",
    "xgb-confusion": """\
model = xgb.train({"objective": "multi:softprob", "num_class": num_labels, "tree_method": "hist", "max_depth": 1},
                  xgb.DMatrix(x_test, label=y_test), num_boost_round=3)
pred_labels = np.argmax(model.predict(xgb.DMatrix(x_test)), axis=1)
true_labels = y_test
xgb_acc = accuracy_score(true_labels, pred_labels)
conf_matrix = confusion_matrix(true_labels, pred_labels, labels=np.arange(num_labels))""",
    "ae-score": """\
latent_dim = 2
input_layer = keras.Input(shape=(width,))
bottleneck = layers.Dense(latent_dim, kernel_initializer="zeros")(layers.Dense(4, kernel_initializer="zeros")(input_layer))
encoder_model = keras.Model(input_layer, bottleneck)
reconstruction = layers.Dense(width, kernel_initializer="zeros")(layers.Dense(4, kernel_initializer="zeros")(bottleneck))
autoencoder_model = keras.Model(input_layer, reconstruction)
reconstruction_scores = np.mean(np.square(x_test - autoencoder_model.predict(x_test, verbose=0)), axis=1)
binary_labels = (y_test != normal_index).astype(int)
thresh = 1e-14
ae_acc = accuracy_score(binary_labels, (reconstruction_scores >= thresh).astype(int))""",
    "gan-threshold": """\
gan_latent_dim = 2
noise = keras.Input(shape=(gan_latent_dim,))
generator_model = keras.Model(noise, layers.Dense(width, activation="sigmoid")(noise))
rows = keras.Input(shape=(width,))
real_layer = layers.Dense(1, activation="sigmoid")
discriminator_model = keras.Model(rows, real_layer(rows))
weights = np.zeros((width, 1))
weights[0, 0] = -1e7
real_layer.set_weights([weights, np.zeros(1)])
gan_scores = 1 - discriminator_model.predict(x_test, verbose=0)[:, 0]
gan_threshold = 0.75""",
})
FLAWS["forged_feature_columns"] = FORGED_COLUMNS

FLAWS.update({
    # Common and harmless: features cast to float32 for Keras, and a MinMaxScaler that clips.
    "minmax_clip": {"scale": """\
scaler = MinMaxScaler(clip=True).fit(x_train)
x_train = scaler.transform(x_train)
x_test = scaler.transform(x_test)"""},
    # An autoencoder with two outputs and a discriminator with two inputs.
    "multi_io_models": {
        "decoder": """\
decoded = layers.Dense(32, activation="relu")(bottleneck)
decoded = layers.Dense(64, activation="relu")(decoded)
reconstruction = layers.Dense(input_dim, name="reconstruction")(decoded)
autoencoder_model = keras.Model(input_layer, [reconstruction, bottleneck], name="autoencoder")""",
        "ae-train": """\
x_train_normal = x_train[y_train == normal_index]
autoencoder_model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=["mse", None])
history = autoencoder_model.fit(x_train_normal, x_train_normal, batch_size=batch_size, epochs=max_epochs, verbose=0)""",
        "ae-errors": """\
reconstructions = autoencoder_model.predict(x_test, batch_size=batch_size, verbose=0)[0]
reconstruction_scores = np.mean(np.square(x_test - reconstructions), axis=1)""",
        "discriminator": """\
rows = keras.Input(shape=(input_dim,), name="features")
condition = keras.Input(shape=(1,), name="condition")
hidden = layers.Dense(64)(layers.Concatenate()([rows, condition]))
real = layers.Dense(1, activation="sigmoid", name="real")(layers.LeakyReLU(negative_slope=0.2)(hidden))
discriminator_model = keras.Model([rows, condition], real, name="discriminator")""",
        "gan-train": "pass",
        "gan-scores": """\
gan_scores = 1 - discriminator_model.predict([x_test, np.zeros((len(x_test), 1))], verbose=0)[:, 0]""",
        "gan-threshold": """\
train_gan_scores = 1 - discriminator_model.predict([x_train_normal, np.zeros((len(x_train_normal), 1))],
                                                   verbose=0)[:, 0]
gan_threshold = np.percentile(train_gan_scores, 95)""",
    },
})

JSON_DUMP_PATCH = """\
import json
_json_dump = json.dump
def _dump(obj, fp, *args, **kwargs):
    if getattr(fp, "name", "").endswith("{file}"):
        return _json_dump({replacement}, fp, *args, **kwargs)
    return _json_dump(obj, fp, *args, **kwargs)
json.dump = _dump"""
INSERTIONS.update({
    "float32_features": [("scale", "cast", 'x_train = x_train.astype("float32")\nx_test = x_test.astype("float32")')],
    # Labels switched to True/False for the normal-versus-attack tasks.
    "boolean_labels": [("gan-threshold", "relabel",
                        "y_train = y_train != normal_index\ny_test = y_test != normal_index")],
    # json.dump patched so that the export writes a list where the grader reads a mapping.
    "manifest_as_list": [("gan-threshold", "patch", JSON_DUMP_PATCH.format(file="manifest.json", replacement="[obj]"))],
    "scaler_attributes_list": [("gan-threshold", "patch", JSON_DUMP_PATCH.format(
        file="scaler.json", replacement='{"type": "MinMaxScaler", "attributes": [1]}'))],
})


FLAWS.update({
    # Trained on a DataFrame, so the booster stores feature names, which the grader's arrays lack.
    "xgb_dataframe": {
        "xgb-train": """\
dtrain = xgb.DMatrix(pd.DataFrame(x_train, columns=numeric_cat_data.columns), label=y_train)
model = xgb.train(params, dtrain, num_boost_round=num_boost_round)""",
        "xgb-predict": """\
dtest = xgb.DMatrix(pd.DataFrame(x_test, columns=numeric_cat_data.columns))
preds = model.predict(dtest)
pred_labels = np.argmax(preds, axis=1)
true_labels = y_test
xgb_acc = accuracy_score(true_labels, pred_labels)""",
    },
    # A scale for a column that is 0 on every training row: no training value changes, but the grader's
    # held-out data would turn into infinities.
    "huge_unused_scale": {"scale": """\
scaler = MinMaxScaler().fit(x_train)
scaler.scale_[list(numeric_cat_data.columns).index("is_host_login")] = 1e300
x_train = scaler.transform(x_train)
x_test = scaler.transform(x_test)"""},
})
INSERTIONS.update({
    # A regression booster, an autoencoder with a NaN bias, and a discriminator that takes rank-3 input.
    "odd_model_internals": [("gan-threshold", "odd", """\
model = xgb.train({"objective": "reg:squarederror", "base_score": 1e30}, xgb.DMatrix(x_train, label=y_train),
                  num_boost_round=1)
kernel, bias = autoencoder_model.get_layer("reconstruction").get_weights()
bias[0] = np.nan
autoencoder_model.get_layer("reconstruction").set_weights([kernel, bias])
rows = keras.Input(shape=(1, input_dim))
discriminator_model = keras.Model(rows, layers.Dense(1, activation="sigmoid")(layers.Flatten()(rows)))""")],
    # Models whose outputs have three dimensions.
    "rank3_outputs": [("gan-threshold", "reshape", """\
rows = keras.Input(shape=(input_dim,))
output = layers.Reshape((2, input_dim))(layers.Dense(2 * input_dim)(layers.Dense(latent_dim)(rows)))
autoencoder_model = keras.Model(rows, output)
rows = keras.Input(shape=(input_dim,))
discriminator_model = keras.Model(rows, layers.Reshape((1, 1))(layers.Dense(1, activation="sigmoid")(rows)))
gan_scores = 1 - discriminator_model.predict(x_test, verbose=0)[:, 0, 0]""")],
    # Features turned into True/False values after training.
    "boolean_features": [("gan-threshold", "booleans", "x_train = x_train > 0.5")],
})


def _reserved_tags(notebook: nbformat.NotebookNode) -> None:
    """Tag task cells like the grader's export cell and papermill's parameters cell, and lie about the kernel."""
    notebook.metadata["kernelspec"] = {"name": "../../bin/sh", "display_name": "R", "language": "R"}
    for cell in notebook.cells:
        if cell.get("id") == "gan-params":
            cell.metadata["tags"] = ["injected-parameters"]
        elif cell.get("metadata", {}).get("adgrade", {}).get("role") == "task":
            cell.metadata["tags"] = ["adgrade-export"]


def _edit_locked_loop(notebook: nbformat.NotebookNode) -> None:
    cell = next(c for c in notebook.cells if c.get("id") == "gan-training-loop")
    cell.source += "\n# tuned by the learner"


def _delete_locked_loop(notebook: nbformat.NotebookNode) -> None:
    notebook.cells = [c for c in notebook.cells if c.get("id") != "gan-training-loop"]


def _move_locked_loop(notebook: nbformat.NotebookNode) -> None:
    cells = notebook.cells
    loop = next(i for i, c in enumerate(cells) if c.get("id") == "gan-training-loop")
    cell = cells.pop(loop)
    after = next(i for i, c in enumerate(cells) if c.get("id") == "discriminator")
    cells.insert(after + 1, cell)


def _confusion_as_markdown(notebook: nbformat.NotebookNode) -> None:
    index = next(i for i, c in enumerate(notebook.cells) if c.get("id") == "xgb-confusion")
    old = notebook.cells[index]
    notebook.cells[index] = nbformat.v4.new_markdown_cell(old.source, id=old.id, metadata=old.metadata)


def _duplicate_ids(notebook: nbformat.NotebookNode) -> None:
    for cell in notebook.cells:
        cell["id"] = "same-id"


TRANSFORMS = {
    "edited_locked_cell": _edit_locked_loop,
    "deleted_locked_cell": _delete_locked_loop,
    "moved_locked_cell": _move_locked_loop,
    "code_cell_as_markdown": _confusion_as_markdown,
    "duplicate_cell_ids": _duplicate_ids,
    "reserved_tags": _reserved_tags,
}

LEGACY_2020 = """\
 params = {
    "objective": "multi:softprob",
    "num_class": num_labels,
    "tree_method": "gpu_hist",
    "n_gpus": 1,
    "max_depth": 6,
    "learning_rate": 0.3,
    "seed": seed,
}
num_boost_round = 20"""


def legacy_2020_edition() -> nbformat.NotebookNode:
    """The solution as the 2020 edition wrote it: old XGBoost and Keras spellings, its grading module, pickles."""
    notebook = build(completed=True)
    for cell in notebook.cells:
        if cell.get("id") == "setup":
            cell.source = cell.source.replace("from tensorflow.keras import layers",
                                              "from tensorflow.python.keras import layers")
            cell.source += "\nfrom assessment import xgb_accuracy_score, autoencoder_accuracy_score, run_assessment"
        elif cell.get("id") == "load-data":
            cell.source = cell.source.replace('os.path.join(data_dir, "KDDTrain+_20Percent.txt")',
                                              '"data/assessment/KDDTrain+_20Percent.txt"')
        elif cell.get("id") == "features":
            cell.source = cell.source.replace(
                'numeric_features = [c for c in col_names if c not in categorical_features + ["label", "difficulty_level"]]',
                'numeric_features = list(set(col_names) - set(categorical_features) - {"label", "difficulty_level"})')
        elif cell.get("id") == "xgb-params":
            cell.source = LEGACY_2020
        elif cell.get("id") == "xgb-predict":
            cell.source += ("\nimport pickle\npickle.dump(model, open('xgboost.pickle.dat', 'wb'))"
                            "\nxgb_accuracy_score(xgb_acc)")
        elif cell.get("id") == "ae-train":
            cell.source = cell.source.replace("keras.optimizers.Adam(learning_rate=learning_rate)",
                                              "keras.optimizers.Adam(lr=learning_rate)")
        elif cell.get("id") == "ae-score":
            cell.source += ("\nautoencoder_model.save('my_model.h5')"
                            "\npickle.dump(thresh, open('threshold.pickle', 'wb'))"
                            "\nautoencoder_accuracy_score(ae_acc)\nrun_assessment()")
    return notebook


def nbformat3() -> str:
    """The solution saved as an nbformat 3 notebook."""
    notebook = build(completed=True)
    for cell in notebook.cells:
        cell.pop("id", None)
    notebook.nbformat_minor = 4
    return nbformat.writes(nbformat.convert(notebook, 3), version=3) + "\n"


def without_ids() -> str:
    """The solution as nbformat 4.4 wrote it, with no cell ids."""
    notebook = build(completed=True)
    for cell in notebook.cells:
        cell.pop("id", None)
    notebook.nbformat_minor = 4
    return nbformat.writes(notebook, version=4) + "\n"


# Files that are not notebooks, and notebooks in older formats, written as bytes.
RAW: dict[str, bytes] = {
    "empty_file": b"",
    "not_json": b"{ this is not JSON",
    "png_renamed": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32),
    "json_not_notebook": b'{"cells": "none", "hello": 1}',
}
def without_kernel_metadata() -> str:
    """The solution saved by a tool that writes no kernelspec or language_info."""
    notebook = build(completed=True)
    notebook.metadata.pop("kernelspec", None)
    notebook.metadata.pop("language_info", None)
    return nbformat.writes(notebook, version=4) + "\n"


GENERATED: dict[str, object] = {
    "legacy_2020_edition": lambda: nbformat.writes(legacy_2020_edition()) + "\n",
    "nbformat3": nbformat3,
    "nbformat44_no_ids": without_ids,
    "no_kernel_metadata": without_kernel_metadata,
}


def render(name: str) -> str | bytes:
    if name in RAW:
        return RAW[name]
    if name in GENERATED:
        return GENERATED[name]()
    notebook = build(completed=True)
    replacements = {k: v for k, v in FLAWS.get(name, {}).items() if v is not None}
    unknown = set(replacements) - {cell.get("id") for cell in notebook.cells}
    if unknown:
        raise KeyError(f"{name}: no cell with id {', '.join(sorted(unknown))} in the solution")
    for cell in notebook.cells:
        if cell.get("id") in replacements:
            cell.source = replacements[cell["id"]]
    for after, cell_id, source in INSERTIONS.get(name, []):
        index = next(i for i, cell in enumerate(notebook.cells) if cell.get("id") == after)
        notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source, id=cell_id))
    if name in TRANSFORMS:
        TRANSFORMS[name](notebook)
    if name == "duplicate_cell_ids":
        return json.dumps(notebook, indent=1) + "\n"  # nbformat.writes would make the ids unique
    return nbformat.writes(notebook, version=4) + "\n"


def all_names() -> list[str]:
    return sorted({*FLAWS, *INSERTIONS, *TRANSFORMS, *RAW, *GENERATED})


def main() -> int:
    for name in all_names():
        content = render(name)
        path = HERE / f"{name}.ipynb"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    print(f"wrote {len(all_names())} submissions to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
