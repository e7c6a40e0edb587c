"""rubric.toml parsing and validation."""

from __future__ import annotations

import shutil

import pytest

from harness.rubric import RubricError, load_rubric


def test_assessment_rubric_loads():
    rubric = load_rubric("nslkdd_assessment")
    assert rubric.max_score == 26
    assert {task.id for task in rubric.tasks} == {"split", "xgboost", "autoencoder", "gan"}
    assert {test.name for test in rubric.tests if test.visibility == "hidden"} == {
        "test_xgboost_binary_accuracy_kddtest", "test_autoencoder_auroc_kddtest", "test_gan_auroc_kddtest"}


def test_course_bars_in_rubric():
    rubric = load_rubric()
    assert rubric.test("test_xgboost_accuracy").course_bar == 0.95
    assert rubric.test("test_autoencoder_accuracy").course_bar == 0.90


def test_every_rubric_test_has_a_pytest_function():
    rubric = load_rubric()
    sources = "".join(path.read_text() for path in rubric.path.glob("test_*.py"))
    for test in rubric.tests:
        assert f"def {test.name}(" in sources, test.name


def test_unknown_rubric_lists_available(tmp_path):
    with pytest.raises(RubricError, match="Available rubrics: nslkdd_assessment"):
        load_rubric("no_such_rubric")


def test_test_with_unknown_task_is_rejected(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(load_rubric().path, folder)
    toml = folder / "rubric.toml"
    toml.write_text(toml.read_text().replace('task = "xgboost"\npoints = 4', 'task = "xgb"\npoints = 4'))
    with pytest.raises(RubricError, match="refers to task 'xgb'"):
        load_rubric(folder)


def test_invalid_toml_names_file(tmp_path):
    (tmp_path / "rubric.toml").write_text("[rubric\nname=")
    with pytest.raises(RubricError, match="rubric.toml is not valid TOML"):
        load_rubric(tmp_path)
