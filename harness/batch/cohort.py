"""Grade a cohort: collect the submissions, grade what the gradebook lacks, store each result, write the reports."""

from __future__ import annotations

import csv
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.batch.gradescope import gradescope_results, write_gradescope_results
from harness.batch.reports import (FEEDBACK_DIR, CohortReports, ReportEntry, load_feedback, write_cohort_reports,
                                   write_submission_files)
from harness.batch.sources import (BatchInputError, Collection, ExtractionLimits, Rejection, collect_submissions,
                                   safe_learner_id)
from harness.batch.store import Gradebook, StoredResult
from harness.batch.workers import Job, JobOutcome, PoolSettings, run_jobs
from harness.grader import GradingOptions
from harness.result import GradeResult
from harness.rubric import Rubric

logger = logging.getLogger(__name__)

GRADEBOOK_DB = "gradebook.db"
REJECTED_CSV = "rejected.csv"
SUBMISSIONS_DIR = "submissions"
INPUT_DIR = "input"
GRADESCOPE_RESULTS = "gradescope_results.json"


@dataclass
class BatchSettings:
    """One `adgrade grade-batch` run."""

    source: Path
    output: Path
    rubric: Rubric
    data_dir: Path | None
    gradebook: str | None = None  # a path or a database URL; default OUTPUT/gradebook.db
    regrade: bool = False
    pool: PoolSettings = field(default_factory=PoolSettings)
    grading: GradingOptions = field(default_factory=GradingOptions)
    limits: ExtractionLimits = field(default_factory=ExtractionLimits)

    @property
    def gradebook_location(self) -> str:
        return self.gradebook or str(self.output / GRADEBOOK_DB)


@dataclass
class BatchSummary:
    submissions: int
    graded_now: int
    # Submissions the gradebook held a result for: skipped, or graded again with regrade.
    already_graded: int
    skipped: int
    rejected: int
    statuses: Counter
    outputs: dict[str, Path]
    rejections: list[Rejection] = field(default_factory=list)
    # Learners whose reports could not be written, with the reason.
    report_failures: dict[str, str] = field(default_factory=dict)


def grade_batch(settings: BatchSettings, on_start: Callable[[int, int], None] | None = None,
                on_result: Callable[[JobOutcome], None] | None = None) -> BatchSummary:
    """Grade every submission of settings.source that the gradebook has no result for, then write the reports.

    on_start(to_grade, already_graded) is called once the work is known, and on_result(outcome) after each
    result is stored.
    Raises BatchInputError for unusable input, GradebookError or GradebookBusy for the store, ValueError for
    settings this host cannot run.
    """
    settings.pool.check()
    output = settings.output.resolve()
    if settings.source.is_dir() and output.is_relative_to(settings.source.resolve()):
        raise BatchInputError(f"The output folder {settings.output} is inside the input folder {settings.source}, so "
                              "a second run would grade the grader's own files. Pass an --output outside it.")
    output.mkdir(parents=True, exist_ok=True)
    gradebook = Gradebook.open(settings.gradebook_location)
    rubric = settings.rubric

    with gradebook.batch_lock(rubric.name):
        # Only the process holding the lock may clear the extraction folder of an earlier run.
        input_dir = output / INPUT_DIR
        shutil.rmtree(input_dir, ignore_errors=True)
        collection = collect_submissions(settings.source, input_dir, settings.limits)
        _write_rejections(collection, output / REJECTED_CSV)

        jobs, skipped, already_graded = [], 0, 0
        for submission in collection.submissions:
            if gradebook.is_graded(rubric.name, submission.learner_id, submission.sha256):
                already_graded += 1
                if not settings.regrade:
                    skipped += 1
                    continue
            folder = f"{safe_learner_id(submission.learner_id)}-{submission.sha256[:12]}"
            jobs.append(Job(learner_id=submission.learner_id, notebook=submission.notebook,
                            sha256=submission.sha256, original_name=submission.original_name,
                            output_dir=output / SUBMISSIONS_DIR / folder,
                            rubric_path=rubric.path, data_dir=settings.data_dir, options=settings.grading))
        logger.info("batch of %d submission(s) from %s (%s layout): %d to grade, %d already graded, %d rejected",
                    len(collection.submissions), settings.source, collection.layout, len(jobs), skipped,
                    len(collection.rejected))
        if on_start is not None:
            on_start(len(jobs), already_graded)

        statuses: Counter = Counter()
        for outcome in run_jobs(jobs, settings.pool):
            job = outcome.job
            # Stored first: a batch killed after this line loses nothing of this submission.
            gradebook.record(rubric.name, job.learner_id, job.sha256, job.original_name, outcome.result,
                             job.output_dir, outcome.seconds)
            _write_submission_outputs(job.learner_id, outcome.result, job.output_dir)
            statuses[outcome.result.status] += 1
            logger.info("%s: %s %g/%g in %.1f s", job.learner_id, outcome.result.status, outcome.result.score,
                        outcome.result.max_score, outcome.seconds)
            if on_result is not None:
                on_result(outcome)

        reports = write_reports(gradebook.latest(rubric.name), output, rubric)
    outputs = {"gradebook": reports.gradebook, "summary": reports.summary, "feedback": output / FEEDBACK_DIR,
               "rejected": output / REJECTED_CSV}
    return BatchSummary(submissions=len(collection.submissions), graded_now=len(jobs),
                        already_graded=already_graded, skipped=skipped,
                        rejected=len(collection.rejected), statuses=statuses, outputs=outputs,
                        rejections=collection.rejected, report_failures=reports.failures)


def _write_submission_outputs(learner_id: str, result: GradeResult, output_dir: Path) -> None:
    """Write the per-submission files LMS and CI tools take: PrairieLearn, JUnit and Gradescope results."""
    write_submission_files(ReportEntry(learner_id=learner_id, result=result, output_dir=output_dir), output_dir)
    write_gradescope_results(gradescope_results(result), output_dir / GRADESCOPE_RESULTS)


def write_reports(stored: list[StoredResult], output: Path, rubric: Rubric) -> CohortReports:
    """Write the gradebook CSV, one feedback page per learner and the cohort summary from the stored results.

    The stored results, not this run's, are the source, so a resumed or repeated batch reports every learner.
    """
    entries = [ReportEntry(learner_id=row.learner_id, result=row.result,
                           feedback=load_feedback(row.learner_id, row.output_dir), output_dir=row.output_dir)
               for row in stored]
    return write_cohort_reports(entries, output, rubric)


def _write_rejections(collection: Collection, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["entry", "reason"])
        for rejection in collection.rejected:
            writer.writerow([rejection.entry, rejection.reason])
