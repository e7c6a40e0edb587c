"""GradeResult: the written file, its invariants, the printed table and `adgrade summary`."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from rich.console import Console

from conftest import REPO
from harness.result import GradeResult, TestResult, print_result


def make_result(**changes) -> GradeResult:
    test = TestResult(name="test_x", task="xgboost", score=0, max_score=2, status="failed", visibility="visible",
                      message="[red] accuracy 0.5 is below 0.95", metrics={"accuracy": 0.5, "bad": float("nan")})
    hidden = TestResult(name="test_hidden", task="xgboost", score=1, max_score=1, status="passed",
                        visibility="hidden")
    fields = {"submission": "alice.ipynb", "status": "graded", "score": 1, "max_score": 3, "tests": [test, hidden]}
    return GradeResult(**{**fields, **changes})


def test_result_file_has_no_nan(tmp_path):
    path = make_result().write(tmp_path)
    raw = path.read_text()
    assert "NaN" not in raw
    assert json.loads(raw)["tests"][0]["metrics"]["bad"] is None


def test_result_roundtrip(tmp_path):
    path = make_result().write(tmp_path)
    result = GradeResult.read(path)
    assert result.status == "graded"
    assert [t.name for t in result.tests] == ["test_x", "test_hidden"]


def test_table_prints_message_text_literally():
    buffer = io.StringIO()
    print_result(make_result(), Console(file=buffer, width=200))
    output = buffer.getvalue()
    assert "[red] accuracy 0.5 is below 0.95" in output
    assert "Score: 1 / 3" in output


def test_summary_lists_each_result(tmp_path):
    make_result().write(tmp_path / "alice")
    make_result(submission="bob.ipynb", status="timeout", score=0).write(tmp_path / "bob")
    completed = subprocess.run([sys.executable, "-m", "harness.cli", "summary", str(tmp_path)], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0
    assert "alice" in completed.stdout
    assert "bob" in completed.stdout
    assert "timeout" in completed.stdout
    assert "1/3" in completed.stdout


def test_summary_without_results_exits_two(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "harness.cli", "summary", str(tmp_path)], cwd=REPO,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "No result.json" in completed.stderr


def test_lone_surrogate_text_still_written(tmp_path):
    """Text from a notebook that UTF-8 cannot encode is escaped, never a reason to lose the result."""
    result = GradeResult(submission="a.ipynb", status="graded", message="bad \ud800 text",
                         environment={"python": "\ud800"})
    path = result.write(tmp_path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["status"] == "graded"
    assert stored["message"].startswith("bad ")


def test_kernel_environment_keeps_expected_fields_only(tmp_path):
    from harness.grader import _kernel_environment

    path = tmp_path / "environment.json"
    path.write_text(json.dumps({"python": "\ud800" + "3" * 500, "device": "cuda", "extra": {"x": 1},
                                "versions": {"numpy": "2.4.6", "evil": "x"}}), encoding="utf-8")
    environment = _kernel_environment(path)
    assert set(environment) == {"python", "versions", "device"}
    assert len(environment["python"]) == 200
    assert "\ud800" not in environment["python"]
    assert environment["versions"]["numpy"] == "2.4.6"
    assert "evil" not in environment["versions"]
    path.write_text("[1, 2]", encoding="utf-8")
    assert _kernel_environment(path) is None


def test_memory_message_without_detail():
    from harness.execution.base import ExecutionOutcome
    from harness.grader import describe_outcome
    from harness.rubric import load_rubric

    message = describe_outcome(ExecutionOutcome(status="memory_limit", message=""), load_rubric())
    assert message.startswith("The notebook ran out of memory and was stopped.")
