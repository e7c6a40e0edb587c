"""Scoring: runs a rubric's pytest files in a separate trusted process and turns the report into results."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from harness.result import TestResult
from harness.rubric import Rubric

logger = logging.getLogger(__name__)

CONTEXT_FILE = "context.json"
REPORT_FILE = "report.json"
LOG_FILE = "scoring.log"
SCORING_TIMEOUT_SECONDS = 900.0
SCORER_NICENESS = 10


def read_report(path: Path, nonce: str) -> dict[str, dict]:
    """Read the per-test records of a report, rejecting one that does not carry this run's nonce."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ScoringError(f"the scoring report {path} is not valid JSON ({error})") from None
    if not isinstance(report, dict) or report.get("nonce") != nonce:
        raise ScoringError("the scoring report was not written by this scoring run, so it was ignored")
    return report["tests"]


def read_feedback(path: Path) -> dict[str, object]:
    """Return the plot data of a report that read_report accepted, or an empty dict when it has none."""
    feedback = json.loads(path.read_text(encoding="utf-8")).get("feedback")
    return feedback if isinstance(feedback, dict) else {}


def _lower_priority() -> None:
    os.nice(SCORER_NICENESS)


class ScoringError(Exception):
    """The scoring process failed. The message names its log file."""


class Scorer:
    """A scoring process, started early so that its imports overlap the notebook run."""

    def __init__(self, rubric: Rubric, data_dir: Path, work_dir: Path):
        self.rubric = rubric
        self.data_dir = data_dir
        self.work_dir = work_dir
        work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The report must carry this value, which reaches the scorer only in the context file that is
        # written after the kernel has been stopped, so learner code cannot forge a report in advance.
        self.nonce = secrets.token_hex(16)
        self.context_path = work_dir / CONTEXT_FILE
        self.report_path = work_dir / REPORT_FILE
        self.log_path = work_dir / LOG_FILE
        # Plot data for the feedback page, filled in by score().
        self.feedback: dict[str, object] = {}
        environment = dict(os.environ)
        # Scoring is always on the CPU: deterministic, and it never takes GPU memory from kernels.
        environment.update({"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0",
                            "MPLBACKEND": "Agg"})
        command = [
            sys.executable, "-m", "pytest", str(rubric.path), "-q", "-p", "harness.pytest_plugin",
            "-p", "no:cacheprovider", "--rootdir", str(rubric.path), "--no-header", "-rN",
            "--adgrade-context", str(self.context_path), "--adgrade-rubric", str(rubric.path),
            "--adgrade-report", str(self.report_path), "--adgrade-grader-pid", str(os.getpid()),
        ]
        self._log = open(self.log_path, "wb")
        # Lower priority, so that its imports use idle CPU rather than slowing the notebook it overlaps.
        self.process = subprocess.Popen(command, cwd=work_dir, env=environment, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=_lower_priority)

    def cancel(self) -> None:
        """Stop the scoring process without scoring."""
        if self.process.poll() is None:
            self.context_path.write_text(json.dumps({"cancel": True}), encoding="utf-8")
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def score(self, artifacts_dir: Path, select: list[str] | None = None) -> list[TestResult]:
        """Score the artifacts and return one result per rubric test (or per selected test)."""
        # The data folder travels here rather than on the command line, where other processes could read it.
        # Only the tests rubric.toml lists run: a pytest file may define tests for other rubrics.
        listed = select if select is not None else [test.name for test in self.rubric.tests]
        context = {"artifacts_dir": str(artifacts_dir), "select": listed, "data_dir": str(self.data_dir),
                   "nonce": self.nonce}
        self.report_path.unlink(missing_ok=True)
        tmp = self.context_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(context), encoding="utf-8")
        tmp.replace(self.context_path)
        try:
            self._wait_for_report()
        finally:
            self._log.close()

        if not self.report_path.is_file():
            raise ScoringError(f"the scoring process exited with status {self.process.returncode} and wrote no "
                               f"report; see logs/{LOG_FILE} in the output folder")
        records = read_report(self.report_path, self.nonce)
        self.feedback = read_feedback(self.report_path)
        return self._results(records, select)

    def _wait_for_report(self) -> None:
        """Wait until the report is written or the process ends, then stop the process.

        The plugin writes the report atomically, so once it exists the process has
        nothing left to do but unload TensorFlow, which takes a second or two.
        """
        deadline = time.monotonic() + SCORING_TIMEOUT_SECONDS
        while self.process.poll() is None and not self.report_path.is_file():
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise ScoringError(f"scoring ran past {SCORING_TIMEOUT_SECONDS:.0f} s; see {self.log_path}")
            time.sleep(0.02)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def _results(self, records: dict[str, dict], select: list[str] | None) -> list[TestResult]:
        results = []
        for spec in self.rubric.tests:
            if select is not None and spec.name not in select:
                continue
            record = records.get(spec.name)
            if record is None:
                record = {"status": "error", "metrics": {},
                          "message": f"rubric.toml lists {spec.name} but no pytest file in {self.rubric.path} "
                                     "defines it"}
            passed = record["status"] == "passed"
            results.append(TestResult(
                name=spec.name, task=spec.task, description=spec.description,
                score=spec.points if passed else 0.0, max_score=spec.points,
                status=record["status"], visibility=spec.visibility,
                message=record.get("message", ""), metrics=record.get("metrics", {}),
            ))
        unknown = sorted(set(records) - {spec.name for spec in self.rubric.tests})
        if unknown:
            logger.warning("rubric %s has tests that rubric.toml does not list: %s", self.rubric.name, unknown)
        return results
