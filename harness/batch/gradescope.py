"""Gradescope: results.json from a GradeResult, the autograder zip, and the driver that runs inside it."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from harness import PROJECT_ROOT, __version__, data
from harness.result import RESULT_FILE, GradeResult, TestResult
from harness.rubric import Rubric, RubricError, load_rubric, resolve_rubric_path

logger = logging.getLogger(__name__)

# Environment variables read by run_autograder and setup.sh. Tests point the root at a temporary folder.
AUTOGRADER_ROOT_ENV = "ADGRADE_AUTOGRADER_ROOT"
ADGRADE_COMMAND_ENV = "ADGRADE_COMMAND"
# The execution back end of run_autograder; auto takes bwrap where Gradescope's container allows it.
BACKEND_ENV = "ADGRADE_AUTOGRADER_BACKEND"
DEFAULT_AUTOGRADER_ROOT = Path("/autograder")

# Gradescope's layout under the root: the zip is extracted into source/, the learner's files arrive in
# submission/, and results/results.json is what Gradescope reads back.
SOURCE_DIR = "source"
SUBMISSION_DIR = "submission"
RESULTS_DIR = "results"
RESULTS_FILE = "results.json"
# adgrade's own output (result.json, the executed notebook, logs) for one submission, under results/.
GRADING_OUTPUT_DIR = "adgrade"

# Paths inside the zip.
SETUP_SCRIPT = "setup.sh"
RUN_SCRIPT = "run_autograder"
MANIFEST_FILE = "adgrade-autograder.json"
WHEEL_DIR = "wheels"
COURSE_DIR = "course"
DATA_DIR = "data"

# Gradescope's visibility for each adgrade visibility: hidden rubric tests appear once grades are published.
TEST_VISIBILITY = {"visible": "visible", "hidden": "after_published"}

# The first line of the results page, by adgrade status.
STATUS_SUMMARY = {
    "graded": "Your notebook ran to the end and was graded.",
    "execution_error": "Your notebook stopped with an error. Tasks finished before that point were graded.",
    "timeout": "Your notebook ran past its time limit. Tasks finished before that point were graded.",
    "invalid_submission": "Your submission could not be graded.",
    "harness_error": "The autograder itself failed, so your notebook was not graded. This is not a problem with "
                     "your submission: ask course staff to check the autograder and rerun it.",
}

# Folders and files of a rubric folder that are never shipped.
SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class GradescopeExportError(Exception):
    """The autograder zip could not be built; the message names the input and what to do next."""


class WheelBuildError(GradescopeExportError):
    """pip could not build a wheel of the harness."""


# ---- results.json ----


def _points(value: float, field: str) -> float:
    # JSON has no NaN or infinity, and Gradescope rejects a results.json that contains them.
    if math.isfinite(value):
        return value
    logger.warning("%s was %r, which results.json cannot hold; it is written as 0", field, value)
    return 0.0


def _text(value: str) -> str:
    # Lone surrogates from notebook output cannot be encoded as UTF-8, so they become "?".
    return value.encode("utf-8", errors="replace").decode("utf-8")


def _gradescope_test(test: TestResult, task_title: str | None) -> dict:
    lines = [test.description] if test.description else []
    if test.message:
        lines.append(test.message)
    if test.status == "error":
        lines.append("The rubric could not score this test, so it earned no points.")
    elif test.status == "skipped":
        lines.append("This test was skipped, so it earned no points.")
    return {
        "name": _text(f"{task_title}: {test.name}" if task_title else test.name),
        "score": _points(test.score, f"score of {test.name}"),
        "max_score": _points(test.max_score, f"max_score of {test.name}"),
        "status": "passed" if test.status == "passed" else "failed",
        "output": _text("\n".join(lines)),
        "visibility": TEST_VISIBILITY[test.visibility],
    }


def _submission_output(result: GradeResult) -> str:
    lines = [STATUS_SUMMARY[result.status]]
    if result.message:
        lines.append(result.message)
    hidden = [test for test in result.tests if test.visibility == "hidden"]
    if hidden:
        points = sum(test.max_score for test in hidden)
        lines.append(f"{len(hidden)} hidden test(s), worth {points:g} points, are shown after grades are published.")
    if result.integrity.deduction:
        lines.append(f"{result.integrity.deduction:g} point(s) were deducted for changed read-only cells.")
    if result.warnings:
        lines.append("Warnings:")
        lines.extend(f"- {warning}" for warning in result.warnings)
    return _text("\n".join(lines))


def gradescope_results(result: GradeResult) -> dict:
    """Convert a GradeResult into the object Gradescope reads from results.json.

    Each rubric test becomes one Gradescope test. Hidden tests are shown once grades are published,
    and the top-level output gives the status, adgrade's message and any warnings. A submission with
    no scored tests (never executed, or the grader failed) gets score 0. The stdout of run_autograder
    lists hidden tests by name, so it is visible to staff only.
    """
    titles = {task.id: task.title for task in result.tasks}
    # NOTE: the top-level score includes the hidden tests' points. Whether Gradescope shows that total
    # before grades are published depends on the assignment's settings, not on this file.
    score = _points(result.score, "score") if result.tests else 0.0
    results: dict = {
        "score": score,
        "output": _submission_output(result),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [_gradescope_test(test, titles.get(test.task)) for test in result.tests],
        "extra_data": {"adgrade_status": result.status, "max_score": _points(result.max_score, "max_score"),
                       "submission": _text(result.submission)},
    }
    total_seconds = result.timings.get("total")
    if total_seconds is not None and math.isfinite(total_seconds):
        results["execution_time"] = round(total_seconds)
    return results


def write_gradescope_results(results: dict, path: Path) -> Path:
    """Write results.json atomically, so Gradescope never reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(results, indent=2, allow_nan=False), encoding="utf-8")
    partial.replace(path)
    return path


# ---- the autograder zip ----


@dataclass(frozen=True)
class AutograderManifest:
    """The zip's table of contents, written as adgrade-autograder.json. Paths are relative to the source folder."""

    adgrade_version: str
    rubric_name: str
    rubric_version: str
    max_score: float
    rubric_path: str
    data_path: str
    wheel: str

    @classmethod
    def read(cls, path: Path) -> AutograderManifest:
        try:
            fields = json.loads(path.read_text(encoding="utf-8"))
            return cls(**fields)
        except FileNotFoundError:
            raise GradescopeExportError(f"{path} is missing: the autograder zip was not extracted into "
                                        f"{path.parent}. Rebuild it with 'adgrade export gradescope'.") from None
        except (ValueError, TypeError) as error:
            raise GradescopeExportError(f"{path} is invalid ({error}). Rebuild the autograder zip with "
                                        "'adgrade export gradescope'.") from None


SETUP_SH = r"""#!/usr/bin/env bash
# Install Python 3.11 or newer and the adgrade harness with its pinned dependencies into a virtual
# environment. Gradescope runs this once, as root, when staff upload the autograder zip.
set -euo pipefail

ROOT="${ADGRADE_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="$ROOT/adgrade-venv"

is_python_311() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && is_python_311 "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

if ! PYTHON="$(find_python)"; then
    echo "setup.sh: no Python 3.11 or newer found; installing python3.11 with apt-get"
    apt-get update
    # Ubuntu 22.04 has python3.11 in its universe component. Older releases need the deadsnakes PPA.
    # NOTE: no test runs these apt-get branches; they are untested on Gradescope's base images.
    if ! apt_install python3.11 python3.11-venv; then
        apt_install software-properties-common
        add-apt-repository -y universe
        add-apt-repository -y ppa:deadsnakes/ppa
        apt-get update
        apt_install python3.11 python3.11-venv
    fi
    if ! PYTHON="$(find_python)"; then
        echo "setup.sh: error: Python 3.11 or newer is still missing after apt-get install python3.11" >&2
        exit 1
    fi
fi
echo "setup.sh: using $PYTHON ($("$PYTHON" --version))"

# Debian and Ubuntu ship the venv module's pip bootstrap in a separate package, pythonX.Y-venv.
if ! "$PYTHON" -m venv "$VENV"; then
    version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    apt-get update
    apt_install "python$version-venv"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

shopt -s nullglob
wheels=("$SOURCE"/wheels/adgrade-*.whl)
if [ "${#wheels[@]}" -ne 1 ]; then
    echo "setup.sh: error: expected one adgrade wheel in $SOURCE/wheels, found ${#wheels[@]}." >&2
    echo "Rebuild the zip with 'adgrade export gradescope' and upload it again." >&2
    exit 1
fi

"$VENV/bin/python" -m pip install --upgrade pip
# The wheel's metadata pins the course stack (TensorFlow, Keras, XGBoost, scikit-learn, ...).
"$VENV/bin/python" -m pip install "${wheels[0]}"
"$VENV/bin/python" -c 'import harness.cli, keras, xgboost'
"$VENV/bin/adgrade" --help >/dev/null
echo "setup.sh: adgrade installed in $VENV"

# bubblewrap lets the grader run the learner's notebook in its own namespaces, away from the grader's
# data. Whether Gradescope's container allows it is checked at grading time (--backend auto).
if ! command -v bwrap >/dev/null 2>&1; then
    apt_install bubblewrap || echo "setup.sh: bubblewrap could not be installed; notebooks run unsandboxed"
fi
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this once per submission. It grades the notebook in $ROOT/submission with adgrade
# and writes $ROOT/results/results.json, also when grading or the grader itself fails.
set -uo pipefail
# Gradescope shows staff the stdout of run_autograder, so error messages and tracebacks join it.
exec 2>&1

ROOT="${ADGRADE_AUTOGRADER_ROOT:-/autograder}"
RESULTS="$ROOT/results/results.json"
VENV="$ROOT/adgrade-venv"

mkdir -p "$ROOT/results"
rm -f "$RESULTS"

# setup.sh installs adgrade into $VENV. ADGRADE_COMMAND, or adgrade on PATH, can name another one.
if [ -x "$VENV/bin/adgrade" ]; then
    export PATH="$VENV/bin:$PATH"
fi
ADGRADE="${ADGRADE_COMMAND:-adgrade}"
ADGRADE_PATH="$(command -v "$ADGRADE" || true)"
# The driver must run in the Python that adgrade is installed in: the one beside its console script.
PYTHON=python3
if [ -n "$ADGRADE_PATH" ] && [ -x "$(dirname "$ADGRADE_PATH")/python" ]; then
    PYTHON="$(dirname "$ADGRADE_PATH")/python"
fi

"$PYTHON" -m harness.batch.gradescope run-autograder --root "$ROOT" --adgrade "${ADGRADE_PATH:-$ADGRADE}"
status=$?

if [ ! -s "$RESULTS" ]; then
    echo "run_autograder: error: '$PYTHON -m harness.batch.gradescope' exited with status $status" \
        "without writing $RESULTS"
    cat >"$RESULTS" <<'JSON'
{
  "score": 0.0,
  "output": "The autograder itself failed, so your notebook was not graded. This is not a problem with your submission: ask course staff to check the autograder and rerun it.",
  "visibility": "visible",
  "stdout_visibility": "hidden",
  "tests": [],
  "extra_data": {"adgrade_status": "harness_error"}
}
JSON
fi
exit 0
"""


def _lexical_path(rubric: Rubric, relative: str) -> Path:
    # Lexical, not resolved: the copy must keep each path exactly as rubric.toml spells it.
    return Path(os.path.normpath(rubric.path / relative))


def _is_shipped(relative: Path) -> bool:
    return not any(part in SKIPPED_NAMES for part in relative.parts) and relative.suffix not in SKIPPED_SUFFIXES


def _referenced_files(rubric: Rubric) -> list[Path]:
    """Return the files that rubric.toml names by a path relative to its folder.

    template and expected_metrics must exist. Any other string setting that names an existing file
    (such as reference_curves) is shipped too, so a new path setting needs no change here.
    """
    required = {"template": rubric.template}
    if rubric.expected_metrics is not None:
        required["expected_metrics"] = rubric.expected_metrics
    for field, relative in required.items():
        if Path(relative).is_absolute():
            raise GradescopeExportError(f"{rubric.path / 'rubric.toml'}: {field} = {relative!r} is an absolute path, "
                                        "which the autograder zip cannot carry. Make it relative to the rubric folder.")
        if not _lexical_path(rubric, relative).is_file():
            raise GradescopeExportError(
                f"{rubric.path / 'rubric.toml'}: {field} = {relative!r} points at {_lexical_path(rubric, relative)}, "
                "which does not exist. Fix the path or restore the file, then export again.")

    raw = tomllib.loads((rubric.path / "rubric.toml").read_text(encoding="utf-8"))
    settings = {**raw, **raw.get("rubric", {})}
    candidates = [*required.values(), *(value for value in settings.values() if isinstance(value, str))]
    found = []
    for relative in candidates:
        if Path(relative).is_absolute():
            continue
        try:
            path = _lexical_path(rubric, relative)
        except (ValueError, OSError):
            continue
        if path.is_file() and path not in found:
            found.append(path)
    return found


def course_files(rubric: Rubric) -> tuple[str, dict[str, Path]]:
    """Return the rubric folder's path in the zip and every file to ship, keyed by path in the zip.

    The rubric folder and the files its rubric.toml points at keep their relative layout under course/,
    so paths such as "../../reference/expected_metrics.json" still resolve after extraction.
    """
    rubric_dir = Path(os.path.normpath(rubric.path))
    referenced = _referenced_files(rubric)
    base = Path(os.path.commonpath([rubric_dir, *referenced]))

    def zip_name(path: Path) -> str:
        return str(PurePosixPath(COURSE_DIR, path.relative_to(base).as_posix()))

    files: dict[str, Path] = {}
    for path in sorted(rubric_dir.rglob("*")):
        if path.is_file() and _is_shipped(path.relative_to(rubric_dir)):
            files[zip_name(path)] = path
    for path in referenced:
        files[zip_name(path)] = path
    return zip_name(rubric_dir), files


def data_files(rubric: Rubric, data_dir: Path) -> dict[str, Path]:
    """Return the data files the rubric reads (learner and grader files), keyed by path in the zip.

    Canonical NSL-KDD files must match their SHA-256, and any other file only has to exist.
    """
    names = tuple(dict.fromkeys((*rubric.learner_files.values(), *rubric.grader_files)))
    canonical = tuple(name for name in names if name in data.FILES)
    try:
        data.require_files(data_dir, canonical)
    except data.DataError as error:
        raise GradescopeExportError(str(error)) from None
    missing = [name for name in names if not (data_dir / name).is_file()]
    if missing:
        raise GradescopeExportError(f"Rubric {rubric.name} needs {', '.join(missing)} in the data folder "
                                    f"{data_dir}, which lacks them. Copy them there or pass another --data-dir.")
    return {str(PurePosixPath(DATA_DIR, name)): data_dir / name for name in names}


def _copy_project(repo_root: Path, target: Path) -> None:
    """Copy what setuptools needs to build the wheel: pyproject.toml, its readme, license files and the packages."""
    pyproject = repo_root / "pyproject.toml"
    target.mkdir(parents=True)
    shutil.copy2(pyproject, target)
    project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    readme = project.get("readme")
    readme_file = readme.get("file") if isinstance(readme, dict) else readme
    extra_files = [readme_file] if readme_file else []
    extra_files += [entry.name for entry in repo_root.iterdir() if entry.is_file()
                    and entry.name.upper().startswith(("LICENSE", "LICENCE", "NOTICE", "MANIFEST.IN", "SETUP."))]
    for name in extra_files:
        if (repo_root / name).is_file():
            shutil.copy2(repo_root / name, target / name)
    ignore = shutil.ignore_patterns(*SKIPPED_NAMES, "*.pyc", "*.egg-info")
    for entry in repo_root.iterdir():
        if entry.is_dir() and (entry / "__init__.py").is_file():
            shutil.copytree(entry, target / entry.name, ignore=ignore)


def build_wheel(repo_root: Path, wheel_dir: Path) -> Path:
    """Build a wheel of the harness with `pip wheel --no-deps` and return its path.

    pip builds from a copy of repo_root, so the checkout gets no build/ or .egg-info folders. The build
    fetches setuptools from the package index unless pip's settings point at a local copy.
    """
    if not (repo_root / "pyproject.toml").is_file():
        raise WheelBuildError(f"{repo_root} has no pyproject.toml. 'adgrade export gradescope' builds the harness "
                              "wheel from a checkout of the adgrade repository; run it from one.")
    wheel_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adgrade-wheel-") as scratch:
        source = Path(scratch) / "adgrade"
        _copy_project(repo_root, source)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                   "--wheel-dir", str(wheel_dir), str(source)]
        logger.info("building the harness wheel: %s", shlex.join(command))
        completed = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        raise WheelBuildError(
            f"pip wheel failed on {repo_root} with exit status {completed.returncode}:\n" + "\n".join(output[-20:])
            + "\npip needs setuptools>=77 from the package index or a local wheelhouse (PIP_FIND_LINKS); "
            "fix the error above and export again."
        )
    wheels = sorted(wheel_dir.glob("adgrade-*.whl"))
    if len(wheels) != 1:
        raise WheelBuildError(f"pip wheel left {len(wheels)} adgrade wheels in {wheel_dir} instead of one: "
                              f"{', '.join(w.name for w in wheels) or 'none'}.")
    return wheels[0]


def _zip_info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.create_system = 3  # Unix, so that unzip applies the permission bits below
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write_zip(zip_path: Path, texts: dict[str, tuple[str, int]], files: dict[str, Path]) -> None:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for name, (text, mode) in texts.items():
                archive.writestr(_zip_info(name, mode), text.encode("utf-8"))
            for name, path in files.items():
                archive.writestr(_zip_info(name, 0o644), path.read_bytes())
        partial.replace(zip_path)
    finally:
        partial.unlink(missing_ok=True)


def build_autograder(zip_path: Path, rubric_dir: Path, data_dir: Path, repo_root: Path) -> Path:
    """Write the autograder zip that Gradescope takes, and return its path.

    The zip's root contains setup.sh and run_autograder (both mode 755), adgrade-autograder.json, the
    harness wheel under wheels/, the rubric and the files it points at under course/, and the data
    files the rubric reads under data/. Raises GradescopeExportError (WheelBuildError when pip fails)
    naming the input at fault.
    """
    if zip_path.is_dir():
        raise GradescopeExportError(f"{zip_path} is a folder; pass the path of the .zip file to write.")
    try:
        rubric = load_rubric(rubric_dir)
    except RubricError as error:
        raise GradescopeExportError(str(error)) from None
    rubric_in_zip, files = course_files(rubric)
    files.update(data_files(rubric, data_dir))

    with tempfile.TemporaryDirectory(prefix="adgrade-gradescope-") as scratch:
        wheel = build_wheel(repo_root, Path(scratch))
        wheel_in_zip = str(PurePosixPath(WHEEL_DIR, wheel.name))
        files[wheel_in_zip] = wheel
        manifest = AutograderManifest(adgrade_version=__version__, rubric_name=rubric.name,
                                      rubric_version=rubric.version, max_score=rubric.max_score,
                                      rubric_path=rubric_in_zip, data_path=DATA_DIR, wheel=wheel_in_zip)
        texts = {
            SETUP_SCRIPT: (SETUP_SH, 0o755),
            RUN_SCRIPT: (RUN_AUTOGRADER, 0o755),
            MANIFEST_FILE: (json.dumps(asdict(manifest), indent=2) + "\n", 0o644),
        }
        _write_zip(zip_path, texts, files)
    logger.info("wrote %s: rubric %s %s, %d files", zip_path, rubric.name, rubric.version, len(files) + len(texts))
    return zip_path


# ---- the driver that run_autograder starts on Gradescope ----


def find_notebooks(submission_dir: Path) -> list[Path]:
    """Return the .ipynb files under the submission folder, leaving out hidden folders and Jupyter checkpoints."""
    if not submission_dir.is_dir():
        return []
    found = []
    for path in sorted(submission_dir.rglob("*.ipynb")):
        parts = path.relative_to(submission_dir).parts
        if path.is_file() and not any(part.startswith(".") or part == "__MACOSX" for part in parts):
            found.append(path)
    return found


def _grade_submission_folder(root: Path, adgrade_command: str) -> GradeResult:
    source = root / SOURCE_DIR
    manifest = AutograderManifest.read(source / MANIFEST_FILE)
    submission_dir = root / SUBMISSION_DIR

    notebooks = find_notebooks(submission_dir)
    if not notebooks:
        return GradeResult(submission="submission", status="invalid_submission", max_score=manifest.max_score,
                           message="No .ipynb file was found in your submission. Upload your completed notebook "
                           "as one .ipynb file and submit again.")
    if len(notebooks) > 1:
        names = ", ".join(str(path.relative_to(submission_dir)) for path in notebooks)
        return GradeResult(submission="submission", status="invalid_submission", max_score=manifest.max_score,
                           message=f"Your submission contains {len(notebooks)} notebooks ({names}), but the "
                           "autograder grades exactly one. Submit only your completed notebook.")

    notebook = notebooks[0]
    output_dir = root / RESULTS_DIR / GRADING_OUTPUT_DIR
    # A result.json left from an earlier run must not be mistaken for this one's.
    shutil.rmtree(output_dir, ignore_errors=True)
    backend = os.environ.get(BACKEND_ENV) or "auto"
    command = [adgrade_command, "grade", str(notebook), "--backend", backend,
               "--rubric", str(source / manifest.rubric_path), "--data-dir", str(source / manifest.data_path),
               "--output", str(output_dir)]
    print(f"Grading with rubric {manifest.rubric_name} {manifest.rubric_version}: {shlex.join(command)}", flush=True)
    # NOTE: where bubblewrap cannot create namespaces in Gradescope's container, auto falls back to the local
    # back end, which runs the notebook with the grader's own rights: the container is then the only
    # isolation, and a hostile notebook could read KDDTest+ or alter the rubric and the harness.
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL)
    except OSError as error:
        logger.error("could not start %s: %s", adgrade_command, error)
        return GradeResult(submission=notebook.name, status="harness_error",
                           message=f"The autograder could not start adgrade ({error}). Staff: run setup.sh, "
                           f"or set {ADGRADE_COMMAND_ENV} to the adgrade command.")

    result_path = output_dir / RESULT_FILE
    try:
        return GradeResult.read(result_path)
    except FileNotFoundError:
        logger.error("adgrade exited with status %d without writing %s", completed.returncode, result_path)
        return GradeResult(submission=notebook.name, status="harness_error",
                           message=f"adgrade exited with status {completed.returncode} without writing a result. "
                           "Staff: its output is in the autograder's stdout.")
    except ValueError as error:
        logger.error("%s is unreadable: %s", result_path, error)
        return GradeResult(submission=notebook.name, status="harness_error",
                           message=f"adgrade wrote an unreadable {RESULT_FILE} (exit status {completed.returncode}). "
                           "Staff: its output is in the autograder's stdout.")


def run_autograder(root: Path, adgrade_command: str = "adgrade") -> dict:
    """Grade the one notebook under root/submission and write root/results/results.json, also when grading fails.

    Returns the object written. A failure of adgrade, or an exception in this driver, becomes a
    harness_error result with score 0.
    """
    try:
        result = _grade_submission_folder(root, adgrade_command)
    except GradescopeExportError as error:
        logger.error("the autograder under %s is incomplete: %s", root, error)
        result = GradeResult(submission="submission", status="harness_error",
                             message=f"The autograder is incomplete: {error}")
    except Exception as error:  # noqa: BLE001  (every failure must still end in a results.json)
        logger.exception("the autograder driver failed under %s", root)
        result = GradeResult(submission="submission", status="harness_error",
                             message=f"The grading driver failed ({type(error).__name__}). Staff: the traceback "
                             "is in the autograder's stdout.")
    results = gradescope_results(result)
    path = write_gradescope_results(results, root / RESULTS_DIR / RESULTS_FILE)
    print(f"Wrote {path}: status {result.status}, score {results['score']:g} of {result.max_score:g}", flush=True)
    return results


# ---- the command line: `adgrade export gradescope`, and the driver's entry point ----


def add_export_parser(commands) -> None:
    """Add `export gradescope` to the adgrade subcommands."""
    export = commands.add_parser("export", help="package grading for a course platform")
    export_commands = export.add_subparsers(dest="export_command", required=True)
    gradescope = export_commands.add_parser(
        "gradescope", help="build the autograder zip for a Gradescope programming assignment: setup.sh, "
        "run_autograder, the harness wheel, the rubric and the NSL-KDD files")
    gradescope.add_argument("--output", type=Path, default=Path("autograder.zip"),
                            help="path of the zip to write (default: %(default)s)")
    gradescope.add_argument("--rubric", default="nslkdd_assessment",
                            help="rubric name under rubrics/, or a path to a rubric folder (default: %(default)s)")
    gradescope.add_argument("--data-dir", type=Path,
                            help=f"folder with the NSL-KDD files to put in the zip (default: ${data.DATA_ENV})")


def run_export(args: argparse.Namespace) -> int:
    """Run `adgrade export gradescope` and return the exit code."""
    from harness.cli import EXIT_HARNESS, EXIT_OK, EXIT_USAGE, console, err_console

    try:
        rubric_dir = resolve_rubric_path(args.rubric)
        data_dir = data.resolve_data_dir(args.data_dir)
    except (RubricError, data.DataError) as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE
    console.print(f"Building the Gradescope autograder for rubric {rubric_dir.name} (this builds a wheel of "
                  "the harness with pip) ...")
    try:
        path = build_autograder(args.output, rubric_dir, data_dir, PROJECT_ROOT)
    except WheelBuildError as error:
        err_console.print(f"error: {error}")
        return EXIT_HARNESS
    except GradescopeExportError as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE
    size_mib = path.stat().st_size / 2**20
    console.print(f"Wrote {path} ({size_mib:.1f} MiB). Upload it as the autograder of a Gradescope programming "
                  "assignment. Learners submit one .ipynb file.")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.batch.gradescope",
                                     description="The driver that the Gradescope autograder's run_autograder starts.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run-autograder", help="grade the notebook in ROOT/submission and write "
                              "ROOT/results/results.json")
    run.add_argument("--root", type=Path,
                     default=Path(os.environ.get(AUTOGRADER_ROOT_ENV) or DEFAULT_AUTOGRADER_ROOT),
                     help=f"the autograder folder (default: ${AUTOGRADER_ROOT_ENV} or {DEFAULT_AUTOGRADER_ROOT})")
    run.add_argument("--adgrade", default=os.environ.get(ADGRADE_COMMAND_ENV) or "adgrade",
                     help=f"the adgrade command (default: ${ADGRADE_COMMAND_ENV} or adgrade on PATH)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    run_autograder(args.root, args.adgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
