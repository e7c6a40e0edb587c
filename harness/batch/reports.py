"""Reports on a graded cohort: gradebook CSV, HTML pages, PrairieLearn results.json and JUnit XML."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from harness.batch.pages import (
    HIDDEN_MESSAGE,
    SummaryRow,
    clean_text,
    feedback_file_name,
    integrity_notes,
    other_warnings,
    percent,
    render_feedback_page,
    render_summary_page,
    task_points,
)
from harness.grader import FEEDBACK_FILE
from harness.result import RESULT_FILE, GradeResult, TestResult
from harness.rubric import Rubric

logger = logging.getLogger(__name__)

GRADEBOOK_FILE = "gradebook.csv"
SUMMARY_FILE = "summary.html"
FEEDBACK_DIR = "feedback"
PRAIRIELEARN_FILE = "prairielearn_results.json"
JUNIT_FILE = "junit.xml"

GRADEBOOK_COLUMNS = ["learner_id", "score", "max_score", "percent", "status"]
# A spreadsheet reads a cell that starts with one of these as a formula (OWASP's CSV injection list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# PrairieLearn rejects a results.json over 1 MB, and learner-controlled text can be arbitrarily long.
PRAIRIELEARN_TEXT_CHARS = 4000
PRAIRIELEARN_OUTPUT_CHARS = 20000
JUNIT_TEXT_CHARS = 20000


@dataclass
class ReportEntry:
    """One learner's graded submission: the input record of every cohort report."""

    learner_id: str
    result: GradeResult
    # The parsed feedback.json that the scorer writes beside result.json; None when it is missing.
    feedback: dict | None = None
    # The submission's output folder (result.json, executed.ipynb), where one exists.
    output_dir: Path | None = None


def load_entry(learner_id: str, output_dir: Path) -> ReportEntry:
    """Read a submission's result.json and, where present, its feedback.json into a ReportEntry.

    A missing result.json raises FileNotFoundError, and an invalid one ValueError. A feedback.json
    that is not a JSON object is logged and treated as missing, so the learner's page shows no plots.
    """
    result_path = output_dir / RESULT_FILE
    if not result_path.is_file():
        raise FileNotFoundError(f"{result_path} not found: grade the submission of {learner_id!r} before "
                                "building reports for it")
    result = GradeResult.read(result_path)
    return ReportEntry(learner_id=learner_id, result=result, feedback=load_feedback(learner_id, output_dir),
                       output_dir=output_dir)


def load_feedback(learner_id: str, output_dir: Path) -> dict | None:
    """Read a submission's feedback.json; one that is missing, invalid or not a JSON object gives None."""
    feedback = None
    feedback_path = output_dir / FEEDBACK_FILE
    if feedback_path.is_file():
        try:
            feedback = json.loads(feedback_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            logger.warning("%s is not valid JSON (%s); the feedback page of %s shows no plots", feedback_path,
                           error, learner_id)
        if feedback is not None and not isinstance(feedback, dict):
            logger.warning("%s is not a JSON object; the feedback page of %s shows no plots", feedback_path,
                           learner_id)
            feedback = None
    return feedback


def _write_atomic(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(path)
    return path


# ---- gradebook CSV ----

def neutralise_formula(value: str) -> str:
    """Prefix a cell that a spreadsheet would run as a formula with an apostrophe, so it stays text."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def write_gradebook_csv(entries: list[ReportEntry], path: Path, rubric: Rubric) -> Path:
    """Write one UTF-8 CSV row per learner, sorted by learner id, with the points of each rubric task.

    Columns: learner_id, score, max_score, percent (2 decimals), status, then one column per task id.
    A task cell is empty when the submission never reached that task's tests.
    """
    # NOTE: the file has no byte-order mark. Excel then reads it as the system's ANSI code page, so
    # non-ASCII learner ids look garbled there until the file is imported as UTF-8.
    task_ids = [task.id for task in rubric.tasks]
    clashes = sorted(set(task_ids) & set(GRADEBOOK_COLUMNS))
    if clashes:
        raise ValueError(f"rubric {rubric.name} has task ids {clashes} that equal gradebook columns; rename "
                         "those tasks in rubric.toml")

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*GRADEBOOK_COLUMNS, *task_ids])
    for entry in sorted(entries, key=lambda item: item.learner_id):
        result = entry.result
        share = percent(result.score, result.max_score)
        points = task_points(result)
        writer.writerow([
            neutralise_formula(clean_text(entry.learner_id)),
            _csv_number(result.score),
            _csv_number(result.max_score),
            "" if share is None else f"{share:.2f}",
            result.status,
            *[_csv_number(points[task][0]) if task in points else "" for task in task_ids],
        ])
    _write_atomic(path, buffer.getvalue())
    logger.info("wrote gradebook %s with %d learner(s)", path, len(entries))
    return path


def _csv_number(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else ""


# ---- HTML pages ----

def write_feedback_page(entry: ReportEntry, path: Path, rubric: Rubric) -> Path:
    """Write the learner's self-contained feedback page (score, tests, hints, integrity notes, plots)."""
    page = render_feedback_page(entry.learner_id, entry.result, entry.feedback, rubric)
    return _write_atomic(path, page)


def write_summary_page(entries: list[ReportEntry], path: Path, rubric: Rubric) -> Path:
    """Write the self-contained cohort page; it links each learner to feedback/<file name>.html beside it."""
    rows = [SummaryRow(entry.learner_id, entry.result, f"{FEEDBACK_DIR}/{quote(feedback_file_name(entry.learner_id))}")
            for entry in entries]
    return _write_atomic(path, render_summary_page(rows, rubric))


# ---- PrairieLearn ----

def prairielearn_results(result: GradeResult) -> dict:
    """Return PrairieLearn's external-grader results.json for one submission.

    `score` is the fraction of the maximum (0 to 1). A file that is not a notebook, or a grader
    failure, is marked `gradable: false`, so PrairieLearn neither awards points nor uses up an
    attempt. Hidden tests show their points but neither message nor description.
    """
    share = percent(result.score, result.max_score)
    fraction = 0.0 if share is None else min(1.0, max(0.0, share / 100.0))
    gradable = result.status not in ("invalid_submission", "harness_error")
    message = result.message or f"Score: {result.score:g} / {result.max_score:g} points."

    payload: dict = {
        "gradable": gradable,
        "score": round(fraction, 6),
        "message": clean_text(message, PRAIRIELEARN_TEXT_CHARS),
        "output": clean_text("\n".join([f"Status: {result.status}", *integrity_notes(result),
                                        *other_warnings(result)]), PRAIRIELEARN_OUTPUT_CHARS),
        "tests": [_prairielearn_test(test) for test in result.tests],
    }
    if result.status == "invalid_submission":
        payload["format_errors"] = [clean_text(result.message, PRAIRIELEARN_TEXT_CHARS)]
    return payload


def _prairielearn_test(test: TestResult) -> dict:
    hidden = test.visibility == "hidden"
    if hidden:
        output = f"Status: {test.status}"
    else:
        metrics = "; ".join(f"{name} = {value}" for name, value in test.metrics.items())
        output = f"Status: {test.status}" + (f"\nMeasured: {metrics}" if metrics else "")
    return {
        "name": clean_text(test.name + (" (hidden)" if hidden else "")),
        "description": "" if hidden else clean_text(test.description, PRAIRIELEARN_TEXT_CHARS),
        "points": _finite(test.score),
        "max_points": _finite(test.max_score),
        "message": HIDDEN_MESSAGE if hidden else clean_text(test.message, PRAIRIELEARN_TEXT_CHARS),
        "output": clean_text(output, PRAIRIELEARN_TEXT_CHARS),
    }


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


# ---- JUnit XML ----

def junit_xml(learner_id: str, result: GradeResult) -> str:
    """Return JUnit XML with one testsuite for the submission and one testcase per rubric test.

    classname is the test's task. A failed test gets <failure>, a test the rubric could not score
    <error>, a skipped test <skipped>. A submission with no scored test is one testcase, "submission",
    that fails with the run's message (an <error> when the grader itself failed). Hidden tests keep
    their status but not their message. Control characters are removed, so the XML always parses.
    """
    suite = ET.Element("testsuite", name=clean_text(learner_id))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("submission", result.submission), ("status", result.status),
                        ("score", f"{result.score:g}"), ("max_score", f"{result.max_score:g}"),
                        ("rubric", f"{result.rubric.name} {result.rubric.version}" if result.rubric else "")):
        ET.SubElement(properties, "property", name=name, value=clean_text(value))

    counts = {"failure": 0, "error": 0, "skipped": 0}
    if result.tests:
        for test in result.tests:
            outcome = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(test.status)
            message = HIDDEN_MESSAGE if test.visibility == "hidden" else test.message
            case = ET.SubElement(suite, "testcase", name=clean_text(test.name), classname=clean_text(test.task))
            if outcome:
                counts[outcome] += 1
                _junit_outcome(case, outcome, message or f"test {test.status}")
    else:
        outcome = "error" if result.status == "harness_error" else "failure"
        counts[outcome] += 1
        case = ET.SubElement(suite, "testcase", name="submission", classname="run")
        _junit_outcome(case, outcome, result.message or f"the submission ended with status {result.status}")

    total = max(1, len(result.tests))
    suite.set("tests", str(total))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    seconds = result.timings.get("total")
    if isinstance(seconds, (int, float)) and math.isfinite(seconds):
        suite.set("time", f"{seconds:.3f}")
    if result.message:
        ET.SubElement(suite, "system-out").text = clean_text(result.message, JUNIT_TEXT_CHARS)

    root = ET.Element("testsuites", name="adgrade", tests=str(total), failures=str(counts["failure"]),
                      errors=str(counts["error"]), skipped=str(counts["skipped"]))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_outcome(case: ET.Element, outcome: str, message: str) -> None:
    text = clean_text(message, JUNIT_TEXT_CHARS)
    element = ET.SubElement(case, outcome, message=clean_text(message.strip().splitlines()[0] if message.strip()
                                                              else outcome, 500))
    if outcome != "skipped":
        element.set("type", outcome)
        element.text = text


def write_submission_files(entry: ReportEntry, folder: Path) -> list[Path]:
    """Write prairielearn_results.json and junit.xml for one submission into folder; return both paths."""
    results = json.dumps(prairielearn_results(entry.result), indent=2, ensure_ascii=False)
    return [_write_atomic(folder / PRAIRIELEARN_FILE, results + "\n"),
            _write_atomic(folder / JUNIT_FILE, junit_xml(entry.learner_id, entry.result))]


# ---- everything for a cohort ----

@dataclass
class CohortReports:
    """The files written for a cohort, and the learners whose files could not be written."""

    gradebook: Path
    summary: Path
    feedback_pages: dict[str, Path] = field(default_factory=dict)
    submission_files: dict[str, list[Path]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def write_cohort_reports(entries: list[ReportEntry], folder: Path, rubric: Rubric) -> CohortReports:
    """Write gradebook.csv, summary.html and feedback/<learner>.html into folder.

    Each entry with an output_dir also gets prairielearn_results.json and junit.xml there. A learner
    whose files cannot be written is logged and listed in `failures`; the other learners still get theirs.
    """
    reports = CohortReports(gradebook=write_gradebook_csv(entries, folder / GRADEBOOK_FILE, rubric),
                            summary=write_summary_page(entries, folder / SUMMARY_FILE, rubric))
    names: dict[str, str] = {}
    for entry in entries:
        name = feedback_file_name(entry.learner_id)
        if name in names:
            message = f"learner ids {names[name]!r} and {entry.learner_id!r} are the same learner twice"
            logger.error("%s; only the first one's feedback page was written", message)
            reports.failures[entry.learner_id] = message
            continue
        names[name] = entry.learner_id
        try:
            reports.feedback_pages[entry.learner_id] = write_feedback_page(entry, folder / FEEDBACK_DIR / name,
                                                                           rubric)
            if entry.output_dir is not None:
                reports.submission_files[entry.learner_id] = write_submission_files(entry, entry.output_dir)
        except Exception as error:  # one learner's bad data must not stop the cohort's reports
            logger.exception("could not write the reports of learner %s", entry.learner_id)
            reports.failures[entry.learner_id] = f"{type(error).__name__}: {error}"
    logger.info("wrote cohort reports for %d learner(s) into %s (%d failed)", len(entries), folder,
                len(reports.failures))
    return reports
