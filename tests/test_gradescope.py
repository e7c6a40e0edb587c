"""Gradescope support: results.json conversion, the autograder zip, and its run_autograder on a real submission."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, SOLUTION
from harness import data
from harness.batch.gradescope import (ADGRADE_COMMAND_ENV, AUTOGRADER_ROOT_ENV, GradescopeExportError, WheelBuildError,
                                      add_export_parser, build_autograder, find_notebooks, gradescope_results,
                                      run_export, write_gradescope_results)
from harness.result import GradeResult, Integrity, TaskSummary, TestResult
from harness.rubric import load_rubric

RUBRIC_DIR = REPO / "rubrics" / "nslkdd_assessment"
VENV_BIN = Path(sys.executable).parent
SCRIPTS = ("setup.sh", "run_autograder")
# Timeout, in seconds, for run_autograder runs that grade no notebook and so only start Python.
QUICK_RUN_TIMEOUT = 60


# ---- results.json conversion ----


def passed(name: str, task: str, points: float, visibility: str = "visible") -> TestResult:
    return TestResult(name=name, task=task, description=f"{name} description", score=points, max_score=points,
                      status="passed", visibility=visibility, message=f"{name} passed")


def failed(name: str, task: str, points: float, status: str = "failed", visibility: str = "visible") -> TestResult:
    return TestResult(name=name, task=task, description=f"{name} description", score=0.0, max_score=points,
                      status=status, visibility=visibility, message=f"{name} fell short")


TASKS = [TaskSummary(id="split", title="Split and scale", score=0, max_score=3),
         TaskSummary(id="xgboost", title="XGBoost classifier", score=0, max_score=7)]


def test_results_graded_all_passed():
    result = GradeResult(submission="a.ipynb", status="graded", score=3.0, max_score=3.0, tasks=TASKS,
                         tests=[passed("test_split", "split", 2), passed("test_scaler", "split", 1)],
                         timings={"total": 35.6})

    results = gradescope_results(result)

    assert results["score"] == 3.0
    assert results["visibility"] == "visible"
    assert results["stdout_visibility"] == "hidden"
    assert results["execution_time"] == 36
    names = [test["name"] for test in results["tests"]]
    assert names == ["Split and scale: test_split", "Split and scale: test_scaler"]
    assert [test["status"] for test in results["tests"]] == ["passed", "passed"]
    assert [test["max_score"] for test in results["tests"]] == [2, 1]
    assert results["tests"][0]["output"] == "test_split description\ntest_split passed"
    assert results["output"].startswith("Your notebook ran to the end and was graded.")
    assert json.loads(json.dumps(results, allow_nan=False)) == results


def test_results_failed_tests():
    result = GradeResult(submission="a.ipynb", status="graded", score=2.0, max_score=7.0, tasks=TASKS,
                         tests=[passed("test_split", "split", 2), failed("test_xgboost_accuracy", "xgboost", 4),
                                failed("test_confusion_matrix", "xgboost", 1, status="error")])

    tests = gradescope_results(result)["tests"]

    assert tests[1]["status"] == "failed"
    assert tests[1]["score"] == 0
    assert tests[1]["max_score"] == 4
    assert "test_xgboost_accuracy fell short" in tests[1]["output"]
    assert tests[2]["status"] == "failed"
    assert "could not score this test" in tests[2]["output"]


def test_results_hidden_tests_after_published():
    result = GradeResult(submission="a.ipynb", status="graded", score=3.0, max_score=5.0, tasks=TASKS,
                         tests=[passed("test_xgboost_accuracy", "xgboost", 3),
                                failed("test_kddtest", "xgboost", 2, visibility="hidden")])

    results = gradescope_results(result)

    assert [test["visibility"] for test in results["tests"]] == ["visible", "after_published"]
    assert "1 hidden test(s), worth 2 points, are shown after grades are published." in results["output"]


def test_results_invalid_submission():
    message = "The file is not valid JSON, so it is not a notebook. Upload the .ipynb file itself."
    result = GradeResult(submission="a.ipynb", status="invalid_submission", message=message, max_score=26.0)

    results = gradescope_results(result)

    assert results["score"] == 0
    assert results["tests"] == []
    assert message in results["output"]
    assert results["extra_data"]["adgrade_status"] == "invalid_submission"


def test_results_timeout_keeps_finished_tasks():
    message = "Cell 12 (task xgboost) ran past its limit of 600 seconds and was interrupted."
    result = GradeResult(submission="a.ipynb", status="timeout", message=message, score=3.0, max_score=7.0,
                         tasks=TASKS, tests=[passed("test_split", "split", 2), passed("test_scaler", "split", 1),
                                             failed("test_xgboost_accuracy", "xgboost", 4)])

    results = gradescope_results(result)

    assert results["score"] == 3.0
    assert results["output"].splitlines()[0].startswith("Your notebook ran past its time limit.")
    assert message in results["output"]


def test_results_harness_error_says_not_learners_fault():
    result = GradeResult(submission="a.ipynb", status="harness_error", message="NSL-KDD data is missing.")

    results = gradescope_results(result)

    assert results["score"] == 0
    assert "This is not a problem with your submission" in results["output"]
    assert "NSL-KDD data is missing." in results["output"]


def test_results_nan_score_written_as_zero(tmp_path):
    test = passed("test_split", "split", 2)
    test.score = math.nan
    result = GradeResult(submission="a.ipynb", status="graded", score=math.inf, max_score=2.0, tests=[test])

    path = write_gradescope_results(gradescope_results(result), tmp_path / "results.json")
    written = json.loads(path.read_text(encoding="utf-8"))

    assert written["score"] == 0
    assert written["tests"][0]["score"] == 0


def test_results_warnings_and_deduction_in_output():
    result = GradeResult(submission="a.ipynb", status="graded", score=1.0, max_score=2.0,
                         tests=[passed("test_split", "split", 2)], warnings=["Read-only cell 3 was edited."],
                         integrity=Integrity(deduction=1.0))

    output = gradescope_results(result)["output"]

    assert "1 point(s) were deducted for changed read-only cells." in output
    assert "- Read-only cell 3 was edited." in output


# ---- the autograder zip ----


def extract(zip_path: Path, target: Path) -> None:
    """Extract the zip and apply each entry's Unix mode, which zipfile itself ignores."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(target)
        for info in archive.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (target / info.filename).chmod(mode)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory, data_dir) -> Path:
    return build_autograder(tmp_path_factory.mktemp("export") / "autograder.zip", RUBRIC_DIR, data_dir, REPO)


@pytest.fixture
def autograder_root(tmp_path, autograder_zip) -> Path:
    """An autograder folder as Gradescope lays it out: source/, run_autograder beside it, and submission/."""
    root = tmp_path / "autograder"
    extract(autograder_zip, root / "source")
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder_script(root: Path, timeout: float, **env: str) -> dict:
    """Run the extracted run_autograder with this venv's adgrade on PATH and return results.json."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in (data.DATA_ENV, ADGRADE_COMMAND_ENV, AUTOGRADER_ROOT_ENV)}
    environment.update({AUTOGRADER_ROOT_ENV: str(root), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **env})
    completed = subprocess.run([str(root / "run_autograder")], cwd=root, env=environment, capture_output=True,
                               text=True, timeout=timeout)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


def test_zip_file_list(autograder_zip):
    names = zipfile.ZipFile(autograder_zip).namelist()
    rubric_files = {f"course/rubrics/nslkdd_assessment/{path.name}" for path in RUBRIC_DIR.iterdir()
                    if path.is_file() and path.suffix in (".py", ".toml")}

    assert {"setup.sh", "run_autograder", "adgrade-autograder.json"} <= set(names)
    assert rubric_files <= set(names)
    assert "course/student_templates/nslkdd_assessment.ipynb" in names
    assert "course/reference/expected_metrics.json" in names
    assert "data/KDDTrain+_20Percent.txt" in names
    assert "data/KDDTest+.txt" in names
    assert "data/KDDTest-21.txt" not in names
    assert len([name for name in names if name.startswith("wheels/adgrade-") and name.endswith(".whl")]) == 1
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert len(names) == len(set(names))


def test_zip_scripts_executable(autograder_zip):
    archive = zipfile.ZipFile(autograder_zip)
    for name in SCRIPTS:
        mode = archive.getinfo(name).external_attr >> 16
        assert stat.S_ISREG(mode), name
        assert stat.S_IMODE(mode) == 0o755, name
    assert stat.S_IMODE(archive.getinfo("data/KDDTest+.txt").external_attr >> 16) == 0o644


def test_zip_scripts_pass_bash_syntax_check(autograder_root):
    for name in SCRIPTS:
        script = autograder_root / "source" / name
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, f"{name}: {check.stderr}"
        assert script.read_text().startswith("#!/usr/bin/env bash\n"), name
        assert os.access(script, os.X_OK), name


def test_zip_rubric_loads_from_extracted_layout(autograder_root):
    rubric = load_rubric(autograder_root / "source" / "course" / "rubrics" / "nslkdd_assessment")

    assert rubric.template_path == (autograder_root / "source" / "course" / "student_templates"
                                    / "nslkdd_assessment.ipynb").resolve()
    assert rubric.template_path.is_file()
    assert rubric.max_score == load_rubric(RUBRIC_DIR).max_score
    assert all(not isinstance(test.threshold, str) for test in rubric.tests)


def test_zip_data_files_are_canonical(autograder_root):
    data.require_files(autograder_root / "source" / "data", data.REQUIRED_FILES)


def test_zip_manifest(autograder_root):
    manifest = json.loads((autograder_root / "source" / "adgrade-autograder.json").read_text(encoding="utf-8"))
    rubric = load_rubric(RUBRIC_DIR)

    assert manifest["rubric_name"] == rubric.name
    assert manifest["rubric_version"] == rubric.version
    assert manifest["max_score"] == rubric.max_score
    assert manifest["rubric_path"] == "course/rubrics/nslkdd_assessment"
    assert (autograder_root / "source" / manifest["wheel"]).is_file()


def test_zip_wheel_contains_harness_modules(autograder_root):
    wheel = next((autograder_root / "source" / "wheels").glob("adgrade-*.whl"))
    packaged = set(zipfile.ZipFile(wheel).namelist())
    modules = {path.relative_to(REPO).as_posix() for path in (REPO / "harness").rglob("*.py")
               if "__pycache__" not in path.parts}

    assert modules - packaged == set()
    assert "harness/batch/gradescope.py" in packaged


def test_build_rejects_missing_data_file(tmp_path, data_dir):
    partial_data = tmp_path / "data"
    partial_data.mkdir()
    shutil.copy2(data_dir / data.TRAIN_FILE, partial_data / data.TRAIN_FILE)
    zip_path = tmp_path / "autograder.zip"

    with pytest.raises(GradescopeExportError, match=r"KDDTest\+\.txt: missing"):
        build_autograder(zip_path, RUBRIC_DIR, partial_data, REPO)
    assert not zip_path.exists()


def test_build_rejects_missing_template(tmp_path, data_dir):
    rubric_copy = tmp_path / "course" / "rubrics" / "nslkdd_assessment"
    shutil.copytree(RUBRIC_DIR, rubric_copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "reference", tmp_path / "course" / "reference", ignore=shutil.ignore_patterns("__pycache__"))

    with pytest.raises(GradescopeExportError, match="template = .* does not exist"):
        build_autograder(tmp_path / "autograder.zip", rubric_copy, data_dir, REPO)


def test_build_rejects_folder_as_output(tmp_path, data_dir):
    with pytest.raises(GradescopeExportError, match="is a folder"):
        build_autograder(tmp_path, RUBRIC_DIR, data_dir, REPO)


def test_build_rejects_repo_without_pyproject(tmp_path, data_dir):
    with pytest.raises(WheelBuildError, match="has no pyproject.toml"):
        build_autograder(tmp_path / "autograder.zip", RUBRIC_DIR, data_dir, tmp_path)


def parse_export(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="adgrade")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["export", "gradescope", *argv])


def test_export_command_writes_zip(tmp_path, data_dir):
    zip_path = tmp_path / "out" / "autograder.zip"

    code = run_export(parse_export("--output", str(zip_path), "--data-dir", str(data_dir)))

    assert code == 0
    assert "run_autograder" in zipfile.ZipFile(zip_path).namelist()


def test_export_command_missing_data_dir(tmp_path):
    code = run_export(parse_export("--output", str(tmp_path / "a.zip"), "--data-dir", str(tmp_path / "absent")))

    assert code == 2
    assert not (tmp_path / "a.zip").exists()


def test_export_command_unknown_rubric(tmp_path, data_dir):
    code = run_export(parse_export("--rubric", "no_such_rubric", "--data-dir", str(data_dir)))

    assert code == 2


# ---- run_autograder ----


def test_find_notebooks_skips_checkpoints(tmp_path):
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "work-checkpoint.ipynb").write_text("{}")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "work.ipynb").write_text("{}")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "work.ipynb").write_text("{}")

    assert find_notebooks(tmp_path) == [tmp_path / "nested" / "work.ipynb"]


def test_run_autograder_empty_submission(autograder_root):
    results = run_autograder_script(autograder_root, QUICK_RUN_TIMEOUT)

    assert results["score"] == 0
    assert results["tests"] == []
    assert "No .ipynb file was found in your submission" in results["output"]


def test_run_autograder_several_notebooks(autograder_root):
    for name in ("first.ipynb", "second.ipynb"):
        shutil.copy2(SOLUTION, autograder_root / "submission" / name)

    results = run_autograder_script(autograder_root, QUICK_RUN_TIMEOUT)

    assert results["score"] == 0
    assert "contains 2 notebooks (first.ipynb, second.ipynb)" in results["output"]


def test_run_autograder_grader_crash(autograder_root, tmp_path):
    shutil.copy2(SOLUTION, autograder_root / "submission" / "work.ipynb")
    crashing = tmp_path / "bin" / "adgrade"
    crashing.parent.mkdir()
    crashing.write_text("#!/bin/sh\necho 'Traceback: the grader crashed' >&2\nexit 1\n")
    crashing.chmod(0o755)

    results = run_autograder_script(autograder_root, QUICK_RUN_TIMEOUT, **{ADGRADE_COMMAND_ENV: str(crashing)})

    assert results["score"] == 0
    assert results["extra_data"]["adgrade_status"] == "harness_error"
    assert "The autograder itself failed" in results["output"]
    assert "exited with status 1 without writing a result" in results["output"]


def test_run_autograder_driver_crash_still_writes_results(autograder_root, tmp_path):
    # A python beside the adgrade command that exits with status 1 simulates a broken installation.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("adgrade", "python"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / name).chmod(0o755)
    (autograder_root / "results").mkdir()
    (autograder_root / "results" / "results.json").write_text('{"score": 26.0}')

    broken_command = {ADGRADE_COMMAND_ENV: str(bin_dir / "adgrade")}
    results = run_autograder_script(autograder_root, QUICK_RUN_TIMEOUT, **broken_command)

    assert results["score"] == 0
    assert results["tests"] == []
    assert results["extra_data"]["adgrade_status"] == "harness_error"


@pytest.mark.e2e
def test_run_autograder_grades_solution(autograder_root):
    if not (VENV_BIN / "adgrade").is_file():
        pytest.skip(f"no adgrade command beside {sys.executable}; install the project into this venv")
    shutil.copy2(SOLUTION, autograder_root / "submission" / "nslkdd_assessment.ipynb")

    results = run_autograder_script(autograder_root, timeout=900)

    assert results["score"] == 26
    assert results["extra_data"]["adgrade_status"] == "graded"
    assert len(results["tests"]) == len(load_rubric(RUBRIC_DIR).tests)
    assert [test["name"] for test in results["tests"] if test["status"] != "passed"] == []
    assert {test["visibility"] for test in results["tests"]} == {"visible", "after_published"}
    assert (autograder_root / "results" / "adgrade" / "result.json").is_file()
