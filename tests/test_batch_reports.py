"""Cohort reports: gradebook CSV, PrairieLearn results, JUnit XML, and the HTML pages in real Chromium."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import browser
from harness.batch.pages import HIDDEN_MESSAGE, SummaryRow, failure_groups, feedback_file_name
from harness.batch.reports import (
    ReportEntry,
    junit_xml,
    load_entry,
    prairielearn_results,
    write_cohort_reports,
    write_feedback_page,
    write_gradebook_csv,
    write_submission_files,
    write_summary_page,
)
from harness.result import Claim, GradeResult, Integrity, LockedCellChange, Rewrite, TaskSummary, TestResult
from harness.rubric import Rubric, load_rubric

SCRIPT = "<script>alert(1)</script>"
GAN_FAILURE = ("GAN detector: `gan_scores` was not defined when the notebook finished (gan_scores: NameError: "
               "name 'gan_scores' is not defined). Complete the task's cell and make sure it runs without errors.")
RUN_MESSAGE = ("Cell 28 (id gan-train, task 'GAN detector') raised NameError: name 'train_gan' is not defined. "
               "Execution stopped there; tasks completed before it were still scored.")
HIDDEN_SECRET = "AUROC 0.9532 on held-out data."


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric()


def summarise_tasks(result: GradeResult, rubric: Rubric) -> GradeResult:
    """Fill result.tasks from its tests, as the grader does."""
    result.tasks = []
    for task in rubric.tasks:
        tests = [test for test in result.tests if test.task == task.id]
        if tests:
            result.tasks.append(TaskSummary(id=task.id, title=task.title, hint=task.hint,
                                            score=sum(t.score for t in tests), max_score=sum(t.max_score for t in tests)))
    return result


def realistic_result(rubric: Rubric) -> GradeResult:
    """A submission that deleted the read-only GAN training cell: the shape of a real graded result.

    The notebook stopped in the GAN task, so its three GAN tests after the architecture failed,
    the other 12 passed, and the integrity record lists the deleted cell and two agreeing claims.
    """
    passed_messages = {
        "test_split_partitions_training_file": "18894 training and 6298 test rows, each row of "
                                               "KDDTrain+_20Percent.txt exactly once.",
        "test_xgboost_accuracy": "Accuracy 0.9970 on your test split (bar: above 0.9500).",
        "test_autoencoder_auroc_kddtest": HIDDEN_SECRET,
    }
    tests = []
    for spec in rubric.tests:
        failed = spec.task == "gan" and spec.name != "test_gan_architecture"
        tests.append(TestResult(
            name=spec.name, task=spec.task, description=spec.description, max_score=spec.points,
            score=0.0 if failed else spec.points, status="failed" if failed else "passed",
            visibility=spec.visibility,
            message=GAN_FAILURE if failed else passed_messages.get(spec.name, "Passed."),
            metrics={"accuracy": 0.997} if spec.name == "test_xgboost_accuracy" else {},
        ))
    claims = [Claim(test="test_xgboost_reported_accuracy", claimed=0.99698, recomputed=0.99698, difference=0.0,
                    agrees=True),
              Claim(test="test_autoencoder_reported_accuracy", claimed=0.95602, recomputed=0.95602, difference=0.0,
                    agrees=True)]
    result = GradeResult(
        submission="deleted_locked_cell.ipynb", status="execution_error", message=RUN_MESSAGE,
        score=sum(t.score for t in tests), max_score=rubric.max_score, tests=tests,
        warnings=["Read-only cell 'gan-training-loop' (id gan-training-loop) is missing from the submission."],
        timings={"total": 11.04}, environment={"harness": "0.1.0", "device": "cpu"},
        integrity=Integrity(locked_cells=[LockedCellChange(cell_id="gan-training-loop", name="gan-training-loop",
                                                           change="missing")], claims=claims),
        failed_cell={"index": 27, "cell_id": "gan-train", "ename": "NameError", "task": "gan"},
    )
    return summarise_tasks(result, rubric)


def small_result(rubric: Rubric, status: str = "graded", message: str = "", **tests_status: str) -> GradeResult:
    """A result whose tests all pass unless tests_status names them (test name -> status)."""
    tests = []
    for spec in rubric.tests:
        test_status = tests_status.get(spec.name, "passed")
        tests.append(TestResult(name=spec.name, task=spec.task, description=spec.description,
                                score=spec.points if test_status == "passed" else 0.0, max_score=spec.points,
                                status=test_status, visibility=spec.visibility,
                                message="Passed." if test_status == "passed" else f"{spec.name} did not pass."))
    result = GradeResult(submission="n.ipynb", status=status, message=message, tests=tests,
                         score=sum(t.score for t in tests), max_score=rubric.max_score)
    return summarise_tasks(result, rubric)


def unscored_result(rubric: Rubric, status: str = "invalid_submission") -> GradeResult:
    message = {"invalid_submission": "The file is not valid JSON, so it is not a notebook. Upload the .ipynb file.",
               "harness_error": "The grader failed (OSError: disk full). This is not your fault; contact course "
                                "staff with this message."}[status]
    return GradeResult(submission="broken.ipynb", status=status, message=message, max_score=rubric.max_score)


def roc(power: float, auroc: float) -> dict:
    steps = [i / 199 for i in range(200)]
    return {"fpr": [s ** 2 for s in steps], "tpr": [s ** power for s in steps], "auroc": auroc}


def full_feedback(classes: list[str] | None = None) -> dict:
    classes = classes or ["back", "ipsweep", "neptune", "normal", "smurf"]
    size = len(classes)
    matrix = [[900 if row == column else (row + column) % 4 for column in range(size)] for row in range(size)]
    return {
        "version": 1,
        "evaluation_split": "learner",
        "xgboost": {"classes": classes, "confusion_matrix": matrix},
        "autoencoder": {
            "roc": roc(0.5, 0.95),
            "errors": {"bin_edges": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], "normal": [10, 300, 40, 2],
                       "attack": [0, 20, 200, 500], "threshold": 0.004, "log_x": True},
        },
        "gan": {
            "roc": roc(0.6, 0.88),
            "scores": {"bin_edges": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], "normal": [400, 200, 50, 20, 5],
                       "attack": [10, 30, 80, 300, 500], "threshold": 0.61, "log_x": False},
        },
        "reference": {"autoencoder_roc": roc(0.4, 0.96), "gan_roc": roc(0.45, 0.93)},
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# ---- gradebook CSV ----

def test_gradebook_columns_and_sorted_rows(tmp_path, rubric):
    entries = [ReportEntry("carol", small_result(rubric)), ReportEntry("alice", realistic_result(rubric))]
    path = write_gradebook_csv(entries, tmp_path / "gradebook.csv", rubric)

    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["learner_id", "score", "max_score", "percent", "status", "split", "xgboost", "autoencoder",
                      "gan"]
    rows = read_csv(path)
    assert [row["learner_id"] for row in rows] == ["alice", "carol"]


def test_gradebook_values_of_one_learner(tmp_path, rubric):
    path = write_gradebook_csv([ReportEntry("alice", realistic_result(rubric))], tmp_path / "g.csv", rubric)
    row = read_csv(path)[0]
    assert row["score"] == "21"
    assert row["max_score"] == "26"
    assert row["percent"] == "80.77"
    assert row["status"] == "execution_error"
    assert row["split"] == "3"
    assert row["xgboost"] == "8"
    assert row["autoencoder"] == "9"
    assert row["gan"] == "1"


def test_gradebook_percent_rounds_to_two_decimals(tmp_path, rubric):
    result = GradeResult(submission="a.ipynb", status="graded", score=1, max_score=3)
    path = write_gradebook_csv([ReportEntry("a", result)], tmp_path / "g.csv", rubric)
    assert read_csv(path)[0]["percent"] == "33.33"


def test_gradebook_neutralises_formulas(tmp_path, rubric):
    ids = ["=HYPERLINK(\"x\")", "+1+2", "-3", "@SUM(A1)", "\t=1"]
    entries = [ReportEntry(learner, small_result(rubric)) for learner in [*ids, "bob"]]
    rows = {row["learner_id"] for row in read_csv(write_gradebook_csv(entries, tmp_path / "g.csv", rubric))}
    for learner in ids:
        assert "'" + learner in rows
        assert learner not in rows
    assert "bob" in rows


def test_gradebook_unscored_submission_leaves_tasks_empty(tmp_path, rubric):
    path = write_gradebook_csv([ReportEntry("x", unscored_result(rubric))], tmp_path / "g.csv", rubric)
    row = read_csv(path)[0]
    assert row["status"] == "invalid_submission"
    assert row["percent"] == "0.00"
    assert [row[task.id] for task in rubric.tasks] == ["", "", "", ""]


def test_gradebook_is_utf8(tmp_path, rubric):
    path = write_gradebook_csv([ReportEntry("zoë-ø", small_result(rubric))], tmp_path / "g.csv", rubric)
    assert "zoë-ø" in path.read_bytes().decode("utf-8")


# ---- PrairieLearn ----

def test_prairielearn_score_is_fraction(rubric):
    payload = prairielearn_results(realistic_result(rubric))
    assert payload["gradable"] is True
    assert math.isclose(payload["score"], 21 / 26, abs_tol=1e-6)
    assert payload["message"] == RUN_MESSAGE


def test_prairielearn_lists_every_test(rubric):
    payload = prairielearn_results(realistic_result(rubric))
    by_name = {test["name"]: test for test in payload["tests"]}
    assert len(payload["tests"]) == len(rubric.tests)
    assert by_name["test_xgboost_accuracy"]["points"] == 4
    assert by_name["test_xgboost_accuracy"]["max_points"] == 4
    assert "accuracy = 0.997" in by_name["test_xgboost_accuracy"]["output"]
    assert by_name["test_gan_auroc"]["points"] == 0
    assert by_name["test_gan_auroc"]["max_points"] == 2
    assert by_name["test_gan_auroc"]["message"] == GAN_FAILURE


def test_prairielearn_hides_hidden_messages(rubric):
    payload = prairielearn_results(realistic_result(rubric))
    hidden = next(test for test in payload["tests"] if test["name"].startswith("test_autoencoder_auroc_kddtest"))
    assert hidden["message"] == HIDDEN_MESSAGE
    assert hidden["description"] == ""
    assert hidden["points"] == 1
    assert HIDDEN_SECRET not in json.dumps(payload)


def test_prairielearn_invalid_submission_not_gradable(rubric):
    result = unscored_result(rubric)
    payload = prairielearn_results(result)
    assert payload["gradable"] is False
    assert payload["format_errors"] == [result.message]
    assert payload["tests"] == []


def test_prairielearn_harness_error_not_gradable(rubric):
    payload = prairielearn_results(unscored_result(rubric, "harness_error"))
    assert payload["gradable"] is False
    assert "format_errors" not in payload


# ---- JUnit XML ----

def junit_suite(learner: str, result: GradeResult) -> ET.Element:
    root = ET.fromstring(junit_xml(learner, result).encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def test_junit_counts_of_realistic_result(rubric):
    suite = junit_suite("alice", realistic_result(rubric))
    assert suite.get("name") == "alice"
    assert suite.get("tests") == "15"
    assert suite.get("failures") == "3"
    assert suite.get("errors") == "0"
    assert suite.get("skipped") == "0"
    assert len(suite.findall("testcase")) == 15
    assert len(suite.findall("testcase/failure")) == 3


def test_junit_classname_is_task(rubric):
    suite = junit_suite("alice", realistic_result(rubric))
    case = suite.find("testcase[@name='test_gan_auroc']")
    assert case.get("classname") == "gan"
    assert case.find("failure").get("message") == GAN_FAILURE
    assert case.find("failure").text == GAN_FAILURE


def test_junit_error_and_skipped_tests(rubric):
    result = small_result(rubric, test_confusion_matrix="error", test_gan_auroc_kddtest="skipped",
                          test_gan_auroc="failed")
    suite = junit_suite("bob", result)
    assert suite.get("failures") == "1"
    assert suite.get("errors") == "1"
    assert suite.get("skipped") == "1"
    assert suite.find("testcase[@name='test_confusion_matrix']/error") is not None
    assert suite.find("testcase[@name='test_gan_auroc_kddtest']/skipped") is not None


def test_junit_hidden_test_message_left_out(rubric):
    result = small_result(rubric, test_gan_auroc_kddtest="failed")
    text = junit_xml("bob", result)
    assert "test_gan_auroc_kddtest did not pass." not in text
    assert HIDDEN_MESSAGE in text


def test_junit_unscored_submission_is_one_failure(rubric):
    result = unscored_result(rubric)
    suite = junit_suite("carol", result)
    assert suite.get("tests") == "1"
    assert suite.get("failures") == "1"
    assert suite.get("errors") == "0"
    assert suite.find("testcase/failure").text == result.message


def test_junit_harness_error_is_one_error(rubric):
    suite = junit_suite("dave", unscored_result(rubric, "harness_error"))
    assert suite.get("tests") == "1"
    assert suite.get("errors") == "1"
    assert suite.get("failures") == "0"


def test_junit_strips_control_characters(rubric):
    result = small_result(rubric, test_gan_auroc="failed")
    result.tests[12].message = "bad \x00\x1b[31mred\x07 \ud800 text"
    suite = junit_suite("eve\x01", result)
    text = suite.find("testcase[@name='test_gan_auroc']/failure").text
    assert text == "bad [31mred \ufffd text"
    assert suite.get("name") == "eve"


def test_submission_files_written(tmp_path, rubric):
    paths = write_submission_files(ReportEntry("alice", realistic_result(rubric)), tmp_path / "alice")
    assert [path.name for path in paths] == ["prairielearn_results.json", "junit.xml"]
    payload = json.loads(paths[0].read_text(encoding="utf-8"))
    assert math.isclose(payload["score"], 21 / 26, abs_tol=1e-6)
    assert ET.parse(paths[1]).getroot().find("testsuite").get("failures") == "3"


# ---- feedback page ----

def feedback_page(tmp_path: Path, rubric: Rubric, entry: ReportEntry) -> str:
    path = write_feedback_page(entry, tmp_path / "feedback" / feedback_file_name(entry.learner_id), rubric)
    return path.read_text(encoding="utf-8")


def hostile_entry(rubric: Rubric) -> ReportEntry:
    result = realistic_result(rubric)
    result.message = f"Cell 3 raised ValueError: {SCRIPT}"
    result.tests[0].message = f'{SCRIPT} & "quoted" <img src=x onerror=alert(2)>'
    return ReportEntry(f"mallory{SCRIPT}", result, full_feedback(["back", SCRIPT, "normal"]))


def test_feedback_page_escapes_learner_text(tmp_path, rubric):
    page = feedback_page(tmp_path, rubric, hostile_entry(rubric))
    assert "<script" not in page.lower()
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page


def test_feedback_page_score_and_status(tmp_path, rubric):
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", realistic_result(rubric), full_feedback()))
    assert re.search(r'id="score">21 / 26 points <small>80.8%</small>', page)
    assert 'id="status">Stopped by an error<' in page
    assert "Execution stopped there; tasks completed before it were still scored." in page


def test_feedback_page_hides_hidden_messages(tmp_path, rubric):
    result = realistic_result(rubric)
    result.warnings.append(HIDDEN_SECRET)
    result.warnings.append("The export folder held entries that are not saved artifacts, which were ignored: x.")
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", result, full_feedback()))
    assert HIDDEN_SECRET not in page
    assert "The export folder held entries that are not saved artifacts" in page
    assert "test_autoencoder_auroc_kddtest (hidden)" in page
    assert page.count(HIDDEN_MESSAGE) == 3


def test_feedback_page_hints_only_where_points_lost(tmp_path, rubric):
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", realistic_result(rubric), full_feedback()))
    assert "Hint: Train on normal training rows only" in page
    assert "fit the scaler on x_train only" not in page


def test_feedback_page_integrity_notes(tmp_path, rubric):
    result = realistic_result(rubric)
    result.integrity.rewrites = [Rewrite(rule="adam_lr", cell_id="ae-train", detail="Adam(lr=...) became "
                                                                                      "Adam(learning_rate=...)")]
    result.integrity.claims.append(Claim(test="test_xgboost_reported_accuracy", claimed=1.0, recomputed=0.997,
                                         difference=0.003, agrees=False))
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", result, full_feedback()))
    assert "The read-only cell &#x27;gan-training-loop&#x27; (id gan-training-loop) was deleted." in page
    assert "the grader rewrote cell ae-train" in page
    assert ("Your notebook stored 1.0000 for test_xgboost_reported_accuracy, but the grader recomputed 0.9970 "
            "from your models") in page
    assert "2 number(s) your notebook stored matched" in page
    # The grader's own warning about the same cell is not repeated.
    assert "is missing from the submission" not in page


def test_feedback_page_draws_every_plot(tmp_path, rubric):
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", realistic_result(rubric), full_feedback()))
    assert page.count('<svg class="plot"') == 5
    assert 'class="no-plot"' not in page
    assert "Your threshold (0.004)" in page
    assert "Reconstruction error (log scale)" in page


def test_feedback_page_missing_sections_explained(tmp_path, rubric):
    feedback = {"version": 1, "xgboost": full_feedback()["xgboost"]}
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", realistic_result(rubric), feedback))
    assert page.count('<svg class="plot"') == 1
    assert "The Autoencoder detector task did not finish, so there is nothing to plot." in page
    assert "The GAN detector task did not finish, so there is nothing to plot." in page


def test_feedback_page_invalid_section_explained(tmp_path, rubric):
    feedback = full_feedback()
    feedback["gan"]["scores"]["normal"] = [1, 2]
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", realistic_result(rubric), feedback))
    assert page.count('<svg class="plot"') == 4
    assert "The grader&#x27;s data for the GAN score histogram is invalid (gan.scores" in page


def test_feedback_page_empty_curve_explained(tmp_path, rubric):
    feedback = full_feedback()
    feedback["autoencoder"]["roc"] = {"fpr": [], "tpr": [], "auroc": None}
    feedback["gan"]["scores"]["normal"] = [0, 0, 0, 0, 0]
    feedback["gan"]["scores"]["attack"] = [0, 0, 0, 0, 0]
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", realistic_result(rubric), feedback))
    assert page.count('<svg class="plot"') == 3
    assert ("There is no autoencoder ROC curve, because the rows with a finite score did not include both normal "
            "and attack rows.") in page
    assert "There is no GAN score histogram, because no row had a finite score." in page
    assert "invalid" not in page


def test_feedback_page_without_feedback(tmp_path, rubric):
    page = feedback_page(tmp_path, rubric, ReportEntry("x", unscored_result(rubric)))
    assert '<svg class="plot"' not in page
    assert "The file is not a notebook that could be run, so there is nothing to plot." in page
    assert "No test was scored" in page


def test_feedback_page_unknown_version(tmp_path, rubric):
    page = feedback_page(tmp_path, rubric, ReportEntry("x", realistic_result(rubric), {"version": 2}))
    assert '<svg class="plot"' not in page
    assert "has version 2, which this page cannot read" in page


def test_feedback_page_threshold_outside_range(tmp_path, rubric):
    feedback = full_feedback()
    feedback["gan"]["scores"]["threshold"] = 1.5
    page = feedback_page(tmp_path, rubric, ReportEntry("x", realistic_result(rubric), feedback))
    assert "Your threshold 1.5 lies outside the plotted range (0 to 1), so it is not marked." in page


def test_feedback_page_loads_nothing_external(tmp_path, rubric):
    page = feedback_page(tmp_path, rubric, ReportEntry("alice", realistic_result(rubric), full_feedback()))
    assert not re.search(r"\b(?:src|href)\s*=", page)
    assert "@import" not in page
    assert "url(" not in page
    assert "Content-Security-Policy" in page


# ---- summary page ----

def cohort(rubric: Rubric) -> list[ReportEntry]:
    failing = small_result(rubric, test_gan_auroc="failed")
    failing.tests[12].message = "AUROC 0.6100 on your test split (bar: 0.9173). Train the GAN on normal rows."
    other = small_result(rubric, test_gan_auroc="failed")
    other.tests[12].message = "AUROC 0.5523 on your test split (bar: 0.9173). Check the scores."
    return [
        ReportEntry("alice", realistic_result(rubric), full_feedback()),
        ReportEntry("bob", failing),
        ReportEntry("carol", other),
        ReportEntry("dave", small_result(rubric)),
        ReportEntry("=eve/../x", unscored_result(rubric)),
    ]


def test_summary_page_status_counts(tmp_path, rubric):
    page = write_summary_page(cohort(rubric), tmp_path / "summary.html", rubric).read_text(encoding="utf-8")
    assert 'data-status="graded">3<' in page
    assert 'data-status="execution_error">1<' in page
    assert 'data-status="invalid_submission">1<' in page
    assert 'data-status="timeout">0<' in page


def test_summary_page_mean_and_median(tmp_path, rubric):
    page = write_summary_page(cohort(rubric), tmp_path / "summary.html", rubric).read_text(encoding="utf-8")
    # Scores: 21, 24, 24, 26 and 0.
    assert 'id="mean-score">19.00<' in page
    assert 'id="median-score">24<' in page


def test_summary_page_pass_rates(tmp_path, rubric):
    page = write_summary_page(cohort(rubric), tmp_path / "summary.html", rubric).read_text(encoding="utf-8")
    row = re.search(r'<tr data-test="test_gan_auroc">(.*?)</tr>', page).group(1)
    assert re.findall(r'class="num">([^<]*)<', row) == ["1", "4", "25%"]
    assert "1 submission(s) never reached scoring" in page
    assert page.count('<svg class="plot"') == 2


def test_summary_page_groups_failures(tmp_path, rubric):
    page = write_summary_page(cohort(rubric), tmp_path / "summary.html", rubric).read_text(encoding="utf-8")
    groups = re.findall(r'<tr class="failure-group"><td>([^<]*)</td><td class="message">([^<]*)</td>'
                        r'<td class="num">(\d+)</td>', page)
    assert groups[0] == ("test_gan_auroc", "AUROC 0.6100 on your test split (bar: 0.9173).", "2")


def test_summary_page_links_feedback_pages(tmp_path, rubric):
    entries = cohort(rubric)
    page = write_summary_page(entries, tmp_path / "summary.html", rubric).read_text(encoding="utf-8")
    assert '<a href="feedback/alice.html">alice</a>' in page
    odd_name = feedback_file_name("=eve/../x")
    assert "/" not in odd_name
    assert f'<a href="feedback/{odd_name}">=eve/../x</a>' in page


def test_failure_groups_ignore_numbers(rubric):
    rows = [SummaryRow(entry.learner_id, entry.result, "") for entry in cohort(rubric)]
    groups = failure_groups(rows)
    test, sentence, learners = groups[0]
    assert test == "test_gan_auroc"
    assert learners == ["bob", "carol"]
    run_group = next(group for group in groups if group[0] == "(run: execution_error)")
    assert run_group[2] == ["alice"]


def test_feedback_file_names_are_safe_and_distinct():
    names = {learner: feedback_file_name(learner) for learner in ["alice", "../etc/passwd", "a/b", "a_b", ".hidden",
                                                                  "x" * 300]}
    assert names["alice"] == "alice.html"
    assert names["a_b"] == "a_b.html"
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert "/" not in name
        assert not name.startswith(".")
        assert len(name) < 120


# ---- the whole cohort ----

def test_cohort_reports_write_every_file(tmp_path, rubric):
    entries = cohort(rubric)
    for entry in entries:
        entry.output_dir = tmp_path / "runs" / feedback_file_name(entry.learner_id).removesuffix(".html")
    reports = write_cohort_reports(entries, tmp_path / "reports", rubric)
    assert reports.failures == {}
    assert reports.gradebook.is_file()
    assert reports.summary.is_file()
    assert sorted(path.name for path in (tmp_path / "reports" / "feedback").iterdir()) == sorted(
        feedback_file_name(entry.learner_id) for entry in entries)
    for entry in entries:
        assert (entry.output_dir / "junit.xml").is_file()
        assert (entry.output_dir / "prairielearn_results.json").is_file()


def test_cohort_reports_list_duplicate_learner(tmp_path, rubric):
    entries = [ReportEntry("alice", small_result(rubric)), ReportEntry("alice", realistic_result(rubric))]
    reports = write_cohort_reports(entries, tmp_path, rubric)
    assert list(reports.failures) == ["alice"]
    assert "same learner twice" in reports.failures["alice"]
    assert list(reports.feedback_pages) == ["alice"]


def test_load_entry_reads_result_and_feedback(tmp_path, rubric):
    realistic_result(rubric).write(tmp_path / "alice")
    (tmp_path / "alice" / "feedback.json").write_text(json.dumps(full_feedback()), encoding="utf-8")
    entry = load_entry("alice", tmp_path / "alice")
    assert entry.result.score == 21
    assert entry.feedback["autoencoder"]["errors"]["threshold"] == 0.004
    assert entry.output_dir == tmp_path / "alice"


def test_load_entry_ignores_broken_feedback(tmp_path, rubric):
    realistic_result(rubric).write(tmp_path / "bob")
    (tmp_path / "bob" / "feedback.json").write_text("{not json", encoding="utf-8")
    assert load_entry("bob", tmp_path / "bob").feedback is None


def test_load_entry_without_result_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="result.json not found"):
        load_entry("carol", tmp_path)


# ---- in headless Chromium ----

@pytest.fixture(scope="module")
def chromium() -> str:
    path = browser.find_chromium()
    if path is None:
        message = f"Chromium is needed to check the pages in a browser. {browser.INSTALL_HINT}"
        if os.environ.get("ADGRADE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def written_reports(tmp_path_factory, rubric) -> Path:
    folder = tmp_path_factory.mktemp("reports")
    entries = [*cohort(rubric), hostile_entry(rubric)]
    write_cohort_reports(entries, folder, rubric)
    return folder


def test_browser_renders_every_feedback_plot(chromium, written_reports):
    report = browser.inspect_page(written_reports / "feedback" / "alice.html")
    assert report.plots == 5
    assert report.rendered_plots == 5
    assert report.missing_plots == []
    assert report.console_errors == []
    assert report.requests == []
    assert "21 / 26 points" in report.text


def test_browser_shows_script_as_text(chromium, written_reports):
    page = written_reports / "feedback" / feedback_file_name(f"mallory{SCRIPT}")
    report = browser.inspect_page(page)
    assert report.console_errors == []
    assert report.images == 0
    assert f"Cell 3 raised ValueError: {SCRIPT}" in report.text
    assert report.rendered_plots == 5


def test_browser_renders_plots_for_print(chromium, written_reports):
    report = browser.inspect_page(written_reports / "feedback" / "alice.html", width=800, media="print")
    assert report.plots == 5
    assert report.rendered_plots == 5
    assert report.console_errors == []


def test_browser_renders_summary(chromium, written_reports):
    report = browser.inspect_page(written_reports / "summary.html")
    assert report.plots == 2
    assert report.rendered_plots == 2
    assert report.console_errors == []
    assert report.requests == []
    assert "Most common failure messages" in report.text


def test_browser_page_without_plots(chromium, written_reports):
    page = written_reports / "feedback" / feedback_file_name("=eve/../x")
    report = browser.inspect_page(page)
    assert report.plots == 0
    assert report.console_errors == []
    assert "The file is not a notebook that could be run, so there is nothing to plot." in report.text


def test_browser_check_catches_broken_pages(chromium, tmp_path):
    """The probe itself can fail: an empty plot, a missing image, a console error and an alert are reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><svg class="plot" width="100" height="100" aria-label="empty">'
                    '<g class="data"></g></svg><img class="plot" src="missing.png" aria-label="gone">'
                    '<script>console.error("drawing failed"); alert("boom")</script></body></html>', encoding="utf-8")
    report = browser.inspect_page(page)
    assert report.plots == 2
    assert report.rendered_plots == 0
    assert sorted(report.missing_plots) == ["empty", "gone"]
    assert "drawing failed" in report.console_errors
    assert "alert dialog: boom" in report.console_errors
    assert report.requests == [(tmp_path / "missing.png").as_uri()]


def test_screenshot_writes_png(chromium, written_reports, tmp_path):
    png = browser.screenshot(written_reports / "feedback" / "alice.html", tmp_path / "alice.png", width=1000,
                             height=1400)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 1400)
