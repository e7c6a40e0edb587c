"""pytest plugin loaded into the scoring process: rubric fixtures, outcome capture and the report file.

The scoring process may start before the notebook finishes, so that it imports
TensorFlow and XGBoost while the kernel works. It then waits for the context file
that harness.scoring writes once the artifacts exist.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.artifacts import ArtifactError, ArtifactStore
from harness.rubric import Rubric, TestSpec, load_rubric

WAIT_LIMIT_SECONDS = 24 * 3600


class Grading:
    """Per-test recorder: rubric tests put metrics and a message for the learner here."""

    def __init__(self, spec: TestSpec | None):
        self.spec = spec
        self.metrics: dict[str, object] = {}
        self.message = ""

    def metric(self, name: str, value) -> None:
        if hasattr(value, "item"):
            value = value.item()
        self.metrics[name] = value

    @property
    def threshold(self) -> float:
        if self.spec is None or not isinstance(self.spec.threshold, float):
            raise RuntimeError("this test has no threshold in rubric.toml")
        return self.spec.threshold

    @property
    def tolerance(self) -> float:
        if self.spec is None or self.spec.tolerance is None:
            raise RuntimeError("this test has no tolerance in rubric.toml")
        return self.spec.tolerance


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("adgrade")
    group.addoption("--adgrade-context", help="JSON file naming the artifacts; waited for if absent")
    group.addoption("--adgrade-rubric", help="rubric folder")
    group.addoption("--adgrade-report", help="where to write the per-test report")
    group.addoption("--adgrade-grader-pid", help="pid of the grading process that waits for the report")


class _State:
    rubric: Rubric
    context: dict
    records: dict[str, dict]
    feedback: dict[str, object]


_state = _State()


def pytest_configure(config: pytest.Config) -> None:
    context_path = config.getoption("--adgrade-context")
    if not context_path:
        return
    _state.rubric = load_rubric(config.getoption("--adgrade-rubric"))
    _state.records = {}
    _state.feedback = {}
    path = Path(context_path)
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    # The grader's pid comes on the command line: it may have died before this process got here.
    grader = int(config.getoption("--adgrade-grader-pid") or os.getppid())
    while not path.is_file():
        if time.monotonic() > deadline:
            raise pytest.UsageError(f"no scoring context appeared at {path}")
        # A grader killed outright (SIGKILL, out of memory) never writes the context; stop waiting for it.
        if os.getppid() != grader:
            pytest.exit("the grading process exited before scoring", returncode=1)
        time.sleep(0.05)
    _state.context = json.loads(path.read_text(encoding="utf-8"))
    if _state.context.get("cancel"):
        pytest.exit("scoring cancelled", returncode=0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--adgrade-context"):
        return
    selected = _state.context.get("select")
    keep, drop = [], []
    for item in items:
        if selected is not None and item.name not in selected:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def rubric() -> Rubric:
    return _state.rubric


@pytest.fixture(scope="session")
def artifacts() -> ArtifactStore:
    return ArtifactStore(Path(_state.context["artifacts_dir"]), _state.rubric)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(_state.context["data_dir"])


@pytest.fixture(scope="session")
def feedback() -> dict[str, object]:
    """Plot data for the learner's feedback page: rubric tests add sections, and the grader writes feedback.json."""
    return _state.feedback


@pytest.fixture
def grading(request: pytest.FixtureRequest) -> Grading:
    recorder = Grading(_state.rubric.test(request.node.name))
    request.node.stash[_GRADING_KEY] = recorder
    return recorder


_GRADING_KEY = pytest.StashKey[Grading]()


def _failure_message(excinfo: pytest.ExceptionInfo) -> tuple[str, str]:
    """Return the test status and the learner-facing message for an exception."""
    error = excinfo.value
    if isinstance(error, ArtifactError):
        return "failed", str(error)
    if isinstance(error, AssertionError):
        text = str(error)
        # pytest appends its assertion rewrite ("assert x > y") after the message.
        text = text.split("\nassert ")[0].strip()
        return "failed", text or "the check failed"
    if isinstance(error, pytest.skip.Exception):
        return "skipped", str(error.msg)
    return "error", f"the grader could not score this test ({type(error).__name__}: {str(error)[:300]})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not item.config.getoption("--adgrade-context"):
        return
    record = _state.records.setdefault(item.name, {"status": "passed", "message": "", "metrics": {}})
    recorder = item.stash.get(_GRADING_KEY, None)
    if recorder is not None:
        record["metrics"].update(recorder.metrics)
    if call.excinfo is not None and record["status"] == "passed":
        status, message = _failure_message(call.excinfo)
        record.update(status=status, message=message)
    elif report.when == "call" and report.passed and recorder is not None and recorder.message:
        record["message"] = recorder.message


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    report_path = session.config.getoption("--adgrade-report")
    if not report_path or not hasattr(_state, "records"):
        return
    # Written to a temporary name first, because the harness reads the report as soon as the name appears.
    tmp = Path(report_path).with_suffix(".tmp")
    document = {"nonce": _state.context.get("nonce"), "tests": _state.records, "feedback": _state.feedback}
    tmp.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    tmp.replace(report_path)
