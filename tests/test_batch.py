"""adgrade grade-batch end to end: LMS downloads, parallel workers, resuming after SIGKILL, Dask, GPU pinning.

The cohorts are small. The full gradings use the real NSL-KDD files. The resume, locking and
worker cases use short notebooks that sleep, so that a batch can be caught halfway.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from conftest import SOLUTION, SUBMISSIONS
from harness.batch.cohort import BatchSettings, grade_batch
from harness.batch.store import Gradebook
from harness.batch.workers import STARTED_MARKER, PoolSettings, list_gpus
from harness.grader import GradingOptions
from harness.rubric import load_rubric

ADGRADE = [sys.executable, "-m", "harness.cli"]
RUBRIC = load_rubric()


def run_adgrade(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*ADGRADE, *args], capture_output=True, text=True, timeout=timeout)


def sleeper(path: Path, seconds: float, extra: str = "") -> Path:
    """Write a short notebook that sleeps, so a batch of them can be interrupted halfway."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(f"import os, time\n{extra}\ntime.sleep({seconds})")]
    nbformat.write(notebook, path)
    return path


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not collected it yet.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def read_gradebook_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["learner_id"]: row for row in csv.DictReader(handle)}


def graded_ids(gradebook: Path) -> set[str]:
    return {row.learner_id for row in Gradebook.open(gradebook).latest(RUBRIC.name)}


@pytest.fixture(scope="module")
def canvas_batch(tmp_path_factory, data_dir):
    """Grade a Canvas bulk download of three learners with two workers, then run the same batch again."""
    folder = tmp_path_factory.mktemp("canvas")
    download = folder / "submissions.zip"
    with zipfile.ZipFile(download, "w") as archive:
        archive.write(SOLUTION, "doejane_1001_5001_assessment.ipynb")
        archive.write(SUBMISSIONS / "percentile_threshold.ipynb", "roeriley_LATE_1002_5002_assessment.ipynb")
        archive.write(SUBMISSIONS / "empty_file.ipynb", "smithalex_1003_5003_assessment.ipynb")
        archive.writestr("../escape_1004_5004_assessment.ipynb", SOLUTION.read_text(encoding="utf-8"))
    output = folder / "out"
    first = run_adgrade("grade-batch", str(download), "--output", str(output), "--workers", "2",
                        "--backend", "local", "--data-dir", str(data_dir))
    again = run_adgrade("grade-batch", str(download), "--output", str(output), "--backend", "local",
                        "--data-dir", str(data_dir), timeout=120)
    return output, first, again


@pytest.mark.e2e
def test_canvas_batch_gradebook(canvas_batch):
    output, first, _ = canvas_batch
    assert first.returncode == 1, first.stderr  # one submission is not a notebook, one entry was rejected
    rows = read_gradebook_csv(output / "gradebook.csv")
    assert sorted(rows) == ["1001", "1002", "1003"]
    assert (rows["1001"]["status"], float(rows["1001"]["score"])) == ("graded", 26.0)
    assert (rows["1002"]["status"], float(rows["1002"]["score"])) == ("graded", 24.0)
    assert (rows["1003"]["status"], float(rows["1003"]["score"])) == ("invalid_submission", 0.0)
    assert float(rows["1001"]["percent"]) == 100.0
    for task in RUBRIC.tasks:
        assert task.id in rows["1001"], f"no column for task {task.id}"


@pytest.mark.e2e
def test_canvas_batch_log_lines(canvas_batch):
    _, first, _ = canvas_batch
    lines = [line for line in first.stderr.splitlines() if line.startswith(("1001 ", "1002 ", "1003 "))]
    assert len(lines) == 3, first.stderr
    assert any(line.startswith("1001  graded  26/26") for line in lines), lines


@pytest.mark.e2e
def test_canvas_batch_rejects_traversal(canvas_batch):
    output, _, _ = canvas_batch
    with (output / "rejected.csv").open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [row["entry"] for row in rejected] == ["../escape_1004_5004_assessment.ipynb"]
    assert not (output.parent / "escape_1004_5004_assessment.ipynb").exists()


@pytest.mark.e2e
def test_canvas_batch_feedback_and_files(canvas_batch):
    output, _, _ = canvas_batch
    page = (output / "feedback" / "1001.html").read_text(encoding="utf-8")
    assert "26" in page
    assert (output / "summary.html").is_file()
    folder = next((output / "submissions").glob("1001-*"))
    feedback = json.loads((folder / "feedback.json").read_text(encoding="utf-8"))
    assert feedback["evaluation_split"] == "learner"
    assert feedback["autoencoder"]["roc"]["auroc"] > 0.9
    assert feedback["reference"]["autoencoder_roc"]["auroc"] > 0.9
    assert len(feedback["xgboost"]["confusion_matrix"]) == len(feedback["xgboost"]["classes"])
    gradescope = json.loads((folder / "gradescope_results.json").read_text(encoding="utf-8"))
    assert gradescope["score"] == 26
    assert (folder / "junit.xml").is_file()
    assert (folder / "prairielearn_results.json").is_file()


@pytest.mark.e2e
def test_canvas_batch_second_run_skips(canvas_batch):
    output, _, again = canvas_batch
    assert again.returncode == 1, again.stderr  # the unsafe entry is rejected again
    assert "0 submission(s) to grade" in again.stderr
    assert "3 already in the gradebook" in again.stderr
    assert "3 skipped as already graded" in again.stdout
    assert len(read_gradebook_csv(output / "gradebook.csv")) == 3


def test_batch_resumes_after_sigkill(tmp_path, data_dir):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for name in ("a", "b", "c"):
        sleeper(cohort / f"{name}.ipynb", 1 if name == "a" else 20)
    output = tmp_path / "out"
    command = [*ADGRADE, "grade-batch", str(cohort), "--output", str(output), "--backend", "local",
               "--data-dir", str(data_dir)]
    batch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (output / "gradebook.db").exists() or not graded_ids(output / "gradebook.db"):
            assert batch.poll() is None, batch.communicate()
            assert time.monotonic() < deadline, "the first result was never stored"
            time.sleep(0.5)

        # A second batch on the same gradebook is refused while the first runs.
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert "gradebook" in second.stderr, second.stderr
        assert "in use" in second.stderr, second.stderr

        worker = int(next((output / "submissions").glob(f"*/{STARTED_MARKER}")).read_text(encoding="utf-8"))
        batch.send_signal(signal.SIGKILL)
        batch.wait(timeout=30)
    finally:
        if batch.poll() is None:
            batch.kill()
    stored = graded_ids(output / "gradebook.db")
    assert stored == {"a"}
    # The worker that was grading learns of the batch's death and exits, stopping its kernel.
    deadline = time.monotonic() + 60
    while process_exists(worker):
        assert time.monotonic() < deadline, f"worker process {worker} outlived the batch"
        time.sleep(0.5)

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "2 submission(s) to grade" in resumed.stderr
    assert graded_ids(output / "gradebook.db") == {"a", "b", "c"}


def test_worker_death_recorded(tmp_path, data_dir):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    sleeper(cohort / "victim.ipynb", 60)
    output = tmp_path / "out"
    command = [*ADGRADE, "grade-batch", str(cohort), "--output", str(output), "--backend", "local",
               "--data-dir", str(data_dir)]
    batch = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(2):  # the first death is retried, the second recorded
            deadline = time.monotonic() + 120
            markers = []
            while not markers:
                assert time.monotonic() < deadline, "no worker started grading"
                markers = list((output / "submissions").glob(f"*/{STARTED_MARKER}"))
                time.sleep(0.2)
            worker = int(markers[0].read_text(encoding="utf-8"))
            os.kill(worker, signal.SIGKILL)
            while markers[0].exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        _, stderr = batch.communicate(timeout=120)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert batch.returncode == 3, stderr
    rows = read_gradebook_csv(output / "gradebook.csv")
    assert rows["victim"]["status"] == "harness_error"
    assert float(rows["victim"]["max_score"]) == RUBRIC.max_score
    result = Gradebook.open(output / "gradebook.db").latest(RUBRIC.name)[0].result
    assert "worker process died" in result.message


def test_batch_on_dask_cluster(tmp_path, data_dir):
    from distributed import LocalCluster

    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for name in ("d1", "d2"):
        sleeper(cohort / f"{name}.ipynb", 1)
    (cohort / "d3.ipynb").write_text("{ not a notebook", encoding="utf-8")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        settings = BatchSettings(source=cohort, output=tmp_path / "out", rubric=RUBRIC, data_dir=data_dir,
                                 pool=PoolSettings(dask_scheduler=cluster.scheduler_address),
                                 grading=GradingOptions(backend="local"))
        summary = grade_batch(settings)
    assert summary.graded_now == 3
    assert summary.statuses["invalid_submission"] == 1
    assert graded_ids(tmp_path / "out" / "gradebook.db") == {"d1", "d2", "d3"}


def test_gpu_pinning_one_gpu_per_worker(tmp_path, data_dir):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    for name in ("g1", "g2", "g3"):
        sleeper(cohort / f"{name}.ipynb", 2, 'print("pinned to", os.environ.get("CUDA_VISIBLE_DEVICES"))')
    outcomes = []
    settings = BatchSettings(source=cohort, output=tmp_path / "out", rubric=RUBRIC, data_dir=data_dir,
                             pool=PoolSettings(gpu_ids=["0", "1"]), grading=GradingOptions(backend="local"))
    grade_batch(settings, on_result=outcomes.append)
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert outcome.gpu in {"0", "1"}
        executed = (outcome.job.output_dir / "executed.ipynb").read_text(encoding="utf-8")
        assert f"pinned to {outcome.gpu}" in executed


def test_list_gpus_parses_ids():
    assert list_gpus("0,1") == ["0", "1"]
    assert list_gpus("GPU-1a2b") == ["GPU-1a2b"]
    with pytest.raises(ValueError, match="not 'all', a count"):
        list_gpus("first")


def test_pool_rejects_too_many_cores():
    settings = PoolSettings(workers=2, cores_per_worker=len(os.sched_getaffinity(0)))
    with pytest.raises(ValueError, match="needs .* CPU cores"):
        settings.check()


def test_pool_slots_pin_distinct_cores():
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two CPU cores")
    slots = PoolSettings(workers=2, cores_per_worker=1).slots()
    assert [slot["cores"] for slot in slots] == [[cores[0]], [cores[1]]]


def test_batch_output_inside_input_rejected(tmp_path, data_dir):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    sleeper(cohort / "one.ipynb", 0)
    completed = run_adgrade("grade-batch", str(cohort), "--output", str(cohort / "out"), "--backend", "local",
                            "--data-dir", str(data_dir), timeout=120)
    assert completed.returncode == 2
    assert "inside the input folder" in completed.stderr
    assert not (cohort / "out").exists()


def test_batch_output_file_rejected(tmp_path, data_dir):
    target = tmp_path / "afile"
    target.write_text("not a folder", encoding="utf-8")
    completed = run_adgrade("grade-batch", str(tmp_path), "--output", str(target), "--backend", "local",
                            "--data-dir", str(data_dir), timeout=120)
    assert completed.returncode == 2
    assert "is a file" in completed.stderr


def test_batch_keeps_learner_ids(tmp_path, data_dir):
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    sleeper(cohort / "one.ipynb", 0)
    manifest = tmp_path / "roster.csv"
    manifest.write_text("learner_id,path\n=jane.doe@uni.example,cohort/one.ipynb\n", encoding="utf-8")
    completed = run_adgrade("grade-batch", str(manifest), "--output", str(tmp_path / "out"), "--backend", "local",
                            "--data-dir", str(data_dir), timeout=300)
    assert completed.returncode == 0, completed.stderr
    rows = read_gradebook_csv(tmp_path / "out" / "gradebook.csv")
    assert list(rows) == ["'=jane.doe@uni.example"]  # kept, with the spreadsheet formula guard
    assert graded_ids(tmp_path / "out" / "gradebook.db") == {"=jane.doe@uni.example"}


def test_batch_missing_input_exit_code(tmp_path, data_dir):
    completed = run_adgrade("grade-batch", str(tmp_path / "nowhere.zip"), "--output", str(tmp_path / "out"),
                            "--backend", "local", "--data-dir", str(data_dir), timeout=120)
    assert completed.returncode == 2
    assert "nowhere.zip" in completed.stderr
