"""The gradebook store on real databases: SQLite files in tmp_path and a throwaway PostgreSQL server.

Batch processes are real subprocesses, and the crash test kills one with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import REPO
from postgres import PostgresServer, free_port, postgres_server, postgres_url  # noqa: F401 (fixtures)

import harness
from harness.batch.store import Gradebook, GradebookBusy, GradebookError, StoredResult
from harness.result import (Claim, GradeResult, Integrity, LockedCellChange, Rewrite, RubricInfo, TaskSummary,
                            TestResult)

RUBRIC = "nslkdd_assessment"
BACKENDS = ("sqlite", "postgresql")
# PostgreSQL ends a dead client's session, and so frees its advisory lock, shortly after the socket closes.
LOCK_RELEASE_DEADLINE_SECONDS = 15

# A batch process: it takes the batch lock, records `count` results, reports it, then waits to be killed.
BATCH_SCRIPT = """
import hashlib, sys, time
from pathlib import Path
from harness.batch.store import Gradebook
from harness.result import GradeResult, RubricInfo

url, rubric, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
gradebook = Gradebook.open(url)
with gradebook.batch_lock(rubric):
    for index in range(count):
        sha256 = hashlib.sha256(f"notebook {index}".encode()).hexdigest()
        result = GradeResult(submission=f"learner{index}.ipynb", status="graded", score=index, max_score=10,
                             rubric=RubricInfo(name=rubric, version="1"))
        gradebook.record(rubric, f"learner{index:02d}", sha256, f"learner{index}.ipynb", result, Path("out"), 1.0)
    print("recorded", count, flush=True)
    time.sleep(600)
"""

OPEN_SCRIPT = """
import sys, time
from harness.batch.store import Gradebook

start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
Gradebook.open(sys.argv[1]).close()
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_result(score: float = 7.0, status: str = "graded", rubric: str = RUBRIC, version: str = "2024.1",
                submission: str = "ada.ipynb") -> GradeResult:
    return GradeResult(
        submission=submission,
        status=status,
        score=score,
        max_score=10.0,
        rubric=RubricInfo(name=rubric, version=version),
        tasks=[TaskSummary(id="xgboost", title="XGBoost", score=score - 3, max_score=6.0),
               TaskSummary(id="autoencoder", title="Autoencoder", score=3.0, max_score=4.0)],
    )


@pytest.fixture(params=BACKENDS)
def gradebook_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new gradebook location: a SQLite path in tmp_path, or a URL of an empty PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "grades" / "gradebook.db")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def gradebook(gradebook_url: str):
    with Gradebook.open(gradebook_url) as opened:
        yield opened


def count_rows(gradebook: Gradebook) -> int:
    with gradebook.engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM adgrade_results")).scalar_one()


def start_batch(url: str, rubric: str, count: int) -> subprocess.Popen:
    """Start a batch process and return once it holds the lock and has recorded `count` results."""
    process = subprocess.Popen([sys.executable, "-c", BATCH_SCRIPT, url, rubric, str(count)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if ready else ""
    if line.strip() != f"recorded {count}":
        process.kill()
        _, stderr = process.communicate(timeout=30)
        pytest.fail(f"the batch process did not report its results (output {line!r}): {stderr}")
    return process


def kill_batch(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    process.stderr.close()


def lock_within(gradebook: Gradebook, rubric: str, seconds: float) -> bool:
    """Return whether the batch lock could be taken (and released) within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with gradebook.batch_lock(rubric):
                return True
        except GradebookBusy:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def test_record_then_is_graded(gradebook: Gradebook, tmp_path: Path) -> None:
    assert not gradebook.is_graded(RUBRIC, "ada", sha("v1"))

    gradebook.record(RUBRIC, "ada", sha("v1"), "Ada Lovelace.ipynb", make_result(), tmp_path / "ada", 12.5)

    assert gradebook.is_graded(RUBRIC, "ada", sha("v1"))
    assert gradebook.is_graded(RUBRIC, "ada", sha("v1").upper())
    assert not gradebook.is_graded(RUBRIC, "ada", sha("v2"))
    assert not gradebook.is_graded(RUBRIC, "grace", sha("v1"))
    assert not gradebook.is_graded("other_rubric", "ada", sha("v1"))


def test_harness_error_is_graded_again(gradebook: Gradebook, tmp_path: Path) -> None:
    failed = make_result(score=0.0, status="harness_error")
    gradebook.record(RUBRIC, "ada", sha("v1"), "ada.ipynb", failed, tmp_path, 1.0)
    learner_error = make_result(score=0.0, status="execution_error")
    gradebook.record(RUBRIC, "grace", sha("v1"), "grace.ipynb", learner_error, tmp_path, 1.0)

    assert not gradebook.is_graded(RUBRIC, "ada", sha("v1"))
    assert gradebook.is_graded(RUBRIC, "grace", sha("v1"))


def test_stored_columns(gradebook: Gradebook, tmp_path: Path) -> None:
    before = datetime.now(UTC)
    gradebook.record(RUBRIC, "ada", sha("v1"), "Ada Lovelace.ipynb", make_result(), tmp_path / "ada", 12.5)
    after = datetime.now(UTC)

    stored = gradebook.get(RUBRIC, "ada", sha("v1"))
    assert isinstance(stored, StoredResult)
    assert stored.rubric == RUBRIC
    assert stored.rubric_version == "2024.1"
    assert stored.learner_id == "ada"
    assert stored.sha256 == sha("v1")
    assert stored.original_name == "Ada Lovelace.ipynb"
    assert stored.status == "graded"
    assert stored.score == 7.0
    assert stored.max_score == 10.0
    assert stored.task_scores == {"xgboost": {"score": 4.0, "max_score": 6.0},
                                  "autoencoder": {"score": 3.0, "max_score": 4.0}}
    assert stored.output_dir == tmp_path / "ada"
    assert stored.seconds == 12.5
    assert stored.graded_at.utcoffset().total_seconds() == 0
    assert before <= stored.graded_at <= after
    assert stored.harness_version == harness.__version__
    assert gradebook.get(RUBRIC, "ada", sha("v2")) is None


def test_result_round_trips_equal(gradebook: Gradebook, tmp_path: Path) -> None:
    result = GradeResult(
        submission="Zoë Ünal.ipynb",
        status="execution_error",
        # A notebook's output can hold NUL characters and text that UTF-8 cannot encode.
        message="cell 7 raised ValueError: bad byte \x00 and \udc80 in 日本語",
        score=3.5,
        max_score=10.0,
        tests=[TestResult(name="test_xgb_accuracy", task="xgboost", score=3.5, max_score=5.0, status="passed",
                          visibility="visible", metrics={"accuracy": 0.9931, "rounds": 100, "note": "ok"}),
               TestResult(name="test_ae_hidden", task="autoencoder", score=0.0, max_score=5.0, status="failed",
                          visibility="hidden", message="AUROC 0.41 < 0.85", metrics={"auroc": None})],
        tasks=[TaskSummary(id="xgboost", title="XGBoost", score=3.5, max_score=5.0, hint="use argmax")],
        hidden_tests=1,
        warnings=["pandas FutureWarning \udcff"],
        timings={"execute": 81.25, "score": 4.5},
        environment={"xgboost": "3.2.0", "device": "cpu", "gpus": 0},
        rubric=RubricInfo(name=RUBRIC, version="2024.1"),
        executed_notebook="executed.ipynb",
        failed_cell={"index": 7, "source": "raise ValueError"},
        integrity=Integrity(locked_cells=[LockedCellChange(cell_id="c1", name="load data", change="edited")],
                            rewrites=[Rewrite(rule="adam_lr", cell_id="c9", detail="lr= to learning_rate=")],
                            claims=[Claim(test="xgb", claimed=0.99, recomputed=0.97, difference=0.02, agrees=False)],
                            deduction=1.0),
    )

    gradebook.record(RUBRIC, "zoë", sha("v1"), "Zoë Ünal.ipynb", result, tmp_path, 90.0)

    stored = gradebook.get(RUBRIC, "zoë", sha("v1"))
    assert stored.result == result
    assert stored.original_name == "Zoë Ünal.ipynb"


def test_non_finite_score_stored_as_null(gradebook: Gradebook, tmp_path: Path) -> None:
    result = make_result(score=float("nan"))

    gradebook.record(RUBRIC, "ada", sha("v1"), "ada.ipynb", result, tmp_path, 1.0)

    stored = gradebook.get(RUBRIC, "ada", sha("v1"))
    assert stored.score is None
    assert stored.task_scores["xgboost"]["score"] is None
    assert math.isnan(stored.result.score)


def test_regrade_replaces_row(gradebook: Gradebook, tmp_path: Path) -> None:
    gradebook.record(RUBRIC, "ada", sha("v1"), "ada.ipynb", make_result(score=4.0), tmp_path / "first", 10.0)
    first = gradebook.get(RUBRIC, "ada", sha("v1"))

    regraded = make_result(score=9.0, status="graded", version="2024.2")
    gradebook.record(RUBRIC, "ada", sha("v1"), "ada (1).ipynb", regraded, tmp_path / "second", 20.0)

    assert count_rows(gradebook) == 1
    second = gradebook.get(RUBRIC, "ada", sha("v1"))
    assert second.score == 9.0
    assert second.rubric_version == "2024.2"
    assert second.original_name == "ada (1).ipynb"
    assert second.output_dir == tmp_path / "second"
    assert second.seconds == 20.0
    assert second.result == regraded
    assert second.graded_at > first.graded_at


def test_latest_per_learner_with_resubmission(gradebook: Gradebook, tmp_path: Path) -> None:
    gradebook.record(RUBRIC, "grace", sha("grace v1"), "grace.ipynb", make_result(score=5.0), tmp_path, 1.0)
    gradebook.record(RUBRIC, "ada", sha("ada v1"), "ada.ipynb", make_result(score=2.0), tmp_path, 1.0)
    gradebook.record(RUBRIC, "ada", sha("ada v2"), "ada-final.ipynb", make_result(score=8.0), tmp_path, 1.0)
    other = make_result(score=1.0, rubric="other_rubric")
    gradebook.record("other_rubric", "alan", sha("alan v1"), "alan.ipynb", other, tmp_path, 1.0)

    latest = gradebook.latest(RUBRIC)

    assert [stored.learner_id for stored in latest] == ["ada", "grace"]
    assert latest[0].sha256 == sha("ada v2")
    assert latest[0].score == 8.0
    assert latest[0].original_name == "ada-final.ipynb"
    assert latest[1].sha256 == sha("grace v1")
    assert count_rows(gradebook) == 4
    assert gradebook.latest("no_such_rubric") == []


def test_record_from_threads(gradebook: Gradebook, tmp_path: Path) -> None:
    def record(index: int) -> None:
        learner = f"learner{index:03d}"
        gradebook.record(RUBRIC, learner, sha(f"v{index}"), f"{learner}.ipynb", make_result(), tmp_path, 1.0)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(record, range(40)))

    assert count_rows(gradebook) == 40
    assert len(gradebook.latest(RUBRIC)) == 40


def test_record_rejects_invalid_arguments(tmp_path: Path) -> None:
    with Gradebook.open(tmp_path / "grades.db") as gradebook:
        with pytest.raises(ValueError, match="64 hexadecimal digits"):
            gradebook.record(RUBRIC, "ada", "abc123", "ada.ipynb", make_result(), tmp_path, 1.0)
        with pytest.raises(ValueError, match="'other_rubric', not 'nslkdd_assessment'"):
            gradebook.record(RUBRIC, "ada", sha("v1"), "a.ipynb", make_result(rubric="other_rubric"), tmp_path, 1.0)
        with pytest.raises(ValueError, match="learner_id"):
            gradebook.record(RUBRIC, "ada\x00", sha("v1"), "ada.ipynb", make_result(), tmp_path, 1.0)
        with pytest.raises(ValueError, match="seconds"):
            gradebook.record(RUBRIC, "ada", sha("v1"), "ada.ipynb", make_result(), tmp_path, float("nan"))
        assert count_rows(gradebook) == 0


def test_sigkill_keeps_rows_and_frees_lock(gradebook_url: str) -> None:
    count = 5
    process = start_batch(gradebook_url, RUBRIC, count)
    try:
        with Gradebook.open(gradebook_url) as gradebook:
            # The batch holds the lock while it waits, so the kill below is what frees it.
            with pytest.raises(GradebookBusy):
                with gradebook.batch_lock(RUBRIC):
                    pass
    finally:
        kill_batch(process)
    assert process.returncode == -signal.SIGKILL

    with Gradebook.open(gradebook_url) as gradebook:
        latest = gradebook.latest(RUBRIC)
        assert [stored.learner_id for stored in latest] == [f"learner{index:02d}" for index in range(count)]
        assert [stored.score for stored in latest] == [float(index) for index in range(count)]
        for index in range(count):
            assert gradebook.is_graded(RUBRIC, f"learner{index:02d}", sha(f"notebook {index}"))
        assert lock_within(gradebook, RUBRIC, LOCK_RELEASE_DEADLINE_SECONDS)


def test_second_batch_process_gets_busy(gradebook_url: str) -> None:
    process = start_batch(gradebook_url, RUBRIC, 1)
    try:
        with Gradebook.open(gradebook_url) as gradebook:
            with pytest.raises(GradebookBusy) as refused:
                with gradebook.batch_lock(RUBRIC):
                    pass
            message = str(refused.value)
            assert gradebook.name in message
            assert f"process {process.pid}" in message
            assert f"on host {socket.gethostname()}" in message
            assert "Wait for that batch to finish, or pass another --gradebook" in message
            assert refused.value.holder_pid == process.pid
            assert refused.value.holder_host == socket.gethostname()

            # SQLite locks the whole file. PostgreSQL locks one rubric, so another rubric can run beside it.
            if gradebook.engine.dialect.name == "sqlite":
                with pytest.raises(GradebookBusy):
                    with gradebook.batch_lock("other_rubric"):
                        pass
            else:
                with gradebook.batch_lock("other_rubric"):
                    pass
    finally:
        kill_batch(process)


def test_batch_lock_is_exclusive_within_process(gradebook: Gradebook) -> None:
    with gradebook.batch_lock(RUBRIC):
        with pytest.raises(GradebookBusy, match=f"process {os.getpid()}"):
            with gradebook.batch_lock(RUBRIC):
                pass

    with gradebook.batch_lock(RUBRIC):
        pass


def test_concurrent_first_open(gradebook_url: str) -> None:
    start = time.time() + 2.0
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_SCRIPT, gradebook_url, str(start)], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = [(process.wait(timeout=60), process.communicate()[1]) for process in processes]

    for returncode, stderr in outcomes:
        assert returncode == 0, stderr
    with Gradebook.open(gradebook_url) as gradebook:
        with gradebook.engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT value FROM adgrade_gradebook")).scalars().all()
    assert versions == ["1"]


def test_sqlite_path_creates_folders_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "grades.db"

    with Gradebook.open(path) as gradebook:
        assert gradebook.name == str(path)
        with gradebook.engine.connect() as connection:
            busy_timeout_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()

    assert path.is_file()
    assert busy_timeout_ms >= 1000
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_url_used_as_given(tmp_path: Path) -> None:
    path = tmp_path / "grades.db"

    with Gradebook.open(f"sqlite:///{path}") as gradebook:
        gradebook.record(RUBRIC, "ada", sha("v1"), "ada.ipynb", make_result(), tmp_path, 1.0)

    with Gradebook.open(path) as gradebook:
        assert gradebook.is_graded(RUBRIC, "ada", sha("v1"))


def test_sqlite_url_missing_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/grades.db"

    with pytest.raises(GradebookError) as refused:
        Gradebook.open(url)

    assert url in str(refused.value)
    assert f"the folder {tmp_path}/missing does not exist" in str(refused.value)
    assert not (tmp_path / "missing").exists()


def test_in_memory_sqlite_rejected() -> None:
    with pytest.raises(GradebookError, match="in-memory database is lost"):
        Gradebook.open("sqlite://")


def test_non_database_file_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "submission.ipynb"
    content = json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5}).encode() * 200
    path.write_bytes(content)

    with pytest.raises(GradebookError) as refused:
        Gradebook.open(path)

    message = str(refused.value)
    assert str(path) in message
    assert "not a SQLite database" in message
    assert path.read_bytes() == content


def test_other_sqlite_database_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    connection.close()

    with pytest.raises(GradebookError) as refused:
        Gradebook.open(path)

    message = str(refused.value)
    assert str(path) in message
    assert "not an adgrade gradebook" in message
    assert "invoices" in message
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    connection.close()
    assert tables == ["invoices"]


def test_directory_path_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "grades.db"
    folder.mkdir()

    with pytest.raises(GradebookError, match=re.escape(str(folder))):
        Gradebook.open(folder)


def test_newer_schema_rejected(tmp_path: Path) -> None:
    path = tmp_path / "grades.db"
    Gradebook.open(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE adgrade_gradebook SET value = '99' WHERE key = 'schema_version'")
    connection.close()

    with pytest.raises(GradebookError, match="schema version 99"):
        Gradebook.open(path)


def test_unreachable_postgres_masks_password() -> None:
    password = "Unreachable-Secret-7731"
    port = free_port()
    url = f"postgresql+psycopg://grader:{password}@127.0.0.1:{port}/grades"

    with pytest.raises(GradebookError) as refused:
        Gradebook.open(url)

    message = str(refused.value)
    assert f"postgresql+psycopg://grader:***@127.0.0.1:{port}/grades" in message
    assert password not in message
    assert "is running and accepts connections" in message


def test_invalid_urls_rejected_without_password() -> None:
    cases = {
        "postgresql+psycopg://grader:Port-Secret-1@db.example:notaport/grades": "Invalid gradebook URL",
        "mysql://grader:Mysql-Secret-2@127.0.0.1/grades": "SQLite or PostgreSQL only",
        "postgresql+nosuchdriver://grader:Driver-Secret-3@127.0.0.1/grades": "driver is not available",
        "postgresql+psycopg://grader:Two@At-Secret-4@db.example:bad/grades": "Invalid gradebook URL",
    }
    for url, expected in cases.items():
        with pytest.raises(GradebookError) as refused:
            Gradebook.open(url)
        message = str(refused.value)
        assert expected in message, url
        assert "Secret" not in message, url
        assert "grader:***@" in message, url


def test_password_parameter_masked() -> None:
    url = f"postgresql+psycopg://grader@127.0.0.1:{free_port()}/grades?password=Query-Secret-5&sslmode=disable"

    with pytest.raises(GradebookError) as refused:
        Gradebook.open(url)

    message = str(refused.value)
    assert "Secret" not in message
    assert "?password=***&sslmode=disable" in message


def test_postgres_wrong_password_masked(postgres_server: PostgresServer) -> None:
    database = postgres_server.create_database()
    # '@' and '/' must be percent-encoded in a URL, and neither spelling may reach the message.
    password = "Wrong@Pass/4421"
    url = postgres_server.url(database, password="Wrong%40Pass%2F4421")

    with pytest.raises(GradebookError) as refused:
        Gradebook.open(url)

    message = str(refused.value)
    assert "password authentication failed" in message
    assert "Check the user name and password" in message
    assert f"{postgres_server.user}:***@127.0.0.1:{postgres_server.port}/{database}" in message
    assert password not in message
    assert "Wrong%40Pass%2F4421" not in message
    assert postgres_server.password not in message


def test_postgres_missing_database(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("no_such_gradebook")

    with pytest.raises(GradebookError) as refused:
        Gradebook.open(url)

    message = str(refused.value)
    assert 'database "no_such_gradebook" does not exist' in message
    assert "createdb no_such_gradebook" in message
    assert postgres_server.password not in message


def test_postgres_url_without_driver(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.url(postgres_server.create_database()).replace("postgresql+psycopg://", "postgresql://")

    with Gradebook.open(url) as gradebook:
        gradebook.record(RUBRIC, "ada", sha("v1"), "ada.ipynb", make_result(), tmp_path, 1.0)
        assert gradebook.is_graded(RUBRIC, "ada", sha("v1"))
        assert gradebook.name.startswith("postgresql+psycopg://")
        assert postgres_server.password not in gradebook.name
