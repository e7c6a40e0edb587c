"""The docker and bwrap sandboxes: each limit is proven by a notebook that breaks it.

Every test here runs a real notebook in a real sandbox: a container of the grading
image on the host's Docker engine, or bubblewrap namespaces with control groups.
Where a sandbox is missing the tests are skipped, except when
ADGRADE_REQUIRE_SANDBOXES=1 (as in CI), where a missing sandbox fails them.
The local back end serves as the control: the same probes succeed there, which shows
that each probe can tell an open door from a closed one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from conftest import DATA_DIR, REPO, SOLUTION
from runs import cell_output, exported_value, run_cells

import harness
from harness.execution import BackendError, BwrapBackend, DockerBackend, ExecutionLimits, choose_backend, get_backend
from harness.execution.docker_backend import SUBMISSION_LABEL, nvidia_runtime_problem, parse_gpus

REQUIRED = os.environ.get("ADGRADE_REQUIRE_SANDBOXES") == "1"
SANDBOXES = ("docker", "bwrap")
SMALL = ExecutionLimits(cell_timeout=30, notebook_timeout=90, export_timeout=30, memory_mib=2048,
                        max_processes=256, grace_seconds=60)


def require(name: str) -> None:
    try:
        get_backend(name)
    except BackendError as error:
        if REQUIRED:
            pytest.fail(f"ADGRADE_REQUIRE_SANDBOXES=1 but the {name} back end cannot run: {error}")
        pytest.skip(f"the {name} back end cannot run here: {error}")


def leftover_containers(submission: str) -> list:
    """Containers of one submission, found by the label the docker back end puts on them."""
    import docker

    label = f"{SUBMISSION_LABEL}={submission}"
    return docker.from_env().containers.list(all=True, filters={"label": label})


@pytest.fixture(params=SANDBOXES)
def sandbox(request, tmp_path):
    require(request.param)
    yield request.param
    if request.param == "docker":
        # run_cells puts the workspace in tmp_path, whose name labels the container.
        assert leftover_containers(tmp_path.name) == [], "the submission's container was not removed"


def processes_in(folder: Path) -> list[int]:
    """Host processes working in `folder` or in a sandbox's /workspace (a fork bomb's children inherit it).

    The kernel shows the working folder of a process in another mount namespace as that namespace
    sees it, so bwrap's leftovers would show /workspace rather than the host's folder.
    """
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:
            continue
        if cwd in (str(folder), "/workspace") or cwd.startswith((f"{folder}/", "/workspace/")):
            found.append(int(entry.name))
    return found


class Listener:
    """A TCP server on 127.0.0.1 that sends a secret on every connection and counts the connections."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with connection:
                connection.sendall(b"grader-secret")

    def close(self):
        self.server.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def probe_network(port: int) -> str:
    return (
        "import socket\n"
        "try:\n"
        f"    with socket.create_connection(('127.0.0.1', {port}), timeout=5) as s:\n"
        "        print('REACHED', s.recv(100).decode())\n"
        "except OSError as error:\n"
        "    print('BLOCKED', type(error).__name__)\n"
    )


def test_local_network_probe_connects(tmp_path, listener):
    """The control: run locally, the probe reaches the test's server and reads its secret."""
    cells = [probe_network(listener.port)]
    outcome, workspace, notebook = run_cells(tmp_path, cells, SMALL, backend="local")
    assert cell_output(workspace, notebook.cells[0].id).strip() == "REACHED grader-secret"
    assert listener.connections == 1


def test_network_is_off(sandbox, tmp_path, listener):
    outcome, workspace, notebook = run_cells(tmp_path, [probe_network(listener.port)], SMALL, backend=sandbox)
    assert outcome.status == "completed"
    assert cell_output(workspace, notebook.cells[0].id).startswith("BLOCKED")
    assert listener.connections == 0


def probe_grader_files() -> str:
    grader_copy = DATA_DIR.resolve() / "KDDTest+.txt"
    return (
        "import os\n"
        "try:\n"
        f"    print('READ', len(open({str(grader_copy)!r}).read()))\n"
        "except OSError as error:\n"
        "    print('UNREADABLE', type(error).__name__)\n"
        "found = []\n"
        "for top in [p for p in os.listdir('/') if p not in ('proc', 'sys', 'dev')]:\n"
        "    for folder, _, files in os.walk('/' + top):\n"
        "        found += [os.path.join(folder, f) for f in files\n"
        "                  if f in ('KDDTest+.txt', 'rubric.toml', 'solution.ipynb', 'test_xgboost.py')]\n"
        "print('FOUND', sorted(found))\n"
    )


def test_local_grader_data_readable(tmp_path):
    """The control: the local back end can read the grader's copy of KDDTest+."""
    outcome, workspace, notebook = run_cells(tmp_path, [probe_grader_files().split("found = []")[0]], SMALL)
    assert cell_output(workspace, notebook.cells[0].id).startswith("READ ")


def test_grader_files_absent_in_sandbox(sandbox, tmp_path):
    outcome, workspace, notebook = run_cells(tmp_path, [probe_grader_files()], SMALL, backend=sandbox)
    lines = cell_output(workspace, notebook.cells[0].id).splitlines()
    assert lines[0].startswith("UNREADABLE")
    assert lines[1] == "FOUND []"


def test_writes_outside_the_workspace_fail(sandbox, tmp_path):
    host_target = tmp_path / "host-probe"
    targets = ["/etc/adgrade-probe", "/usr/adgrade-probe", "/adgrade-probe", "/workspace/data/adgrade-probe",
               str(Path(harness.__file__).parent / "adgrade-probe"), str(host_target)]
    probe = (
        "import os\n"
        f"for target in {targets!r}:\n"
        "    try:\n"
        "        with open(target, 'w') as handle:\n"
        "            handle.write('x')\n"
        "        print('WROTE', target)\n"
        "    except OSError as error:\n"
        "        print('REFUSED', target)\n"
        "open('inside.txt', 'w').write('x')\n"
        "print('WORKSPACE', os.path.exists('inside.txt'))\n"
    )
    outcome, workspace, notebook = run_cells(tmp_path, [probe], SMALL, backend=sandbox)
    lines = cell_output(workspace, notebook.cells[0].id).splitlines()
    assert lines[:-1] == [f"REFUSED {target}" for target in targets]
    assert lines[-1] == "WORKSPACE True"
    assert not host_target.exists()
    assert not (Path(harness.__file__).parent / "adgrade-probe").exists()


def test_notebook_runs_unprivileged(sandbox, tmp_path):
    probe = (
        "import os\n"
        "status = dict(line.split(':\\t') for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)\n"
        "print(os.getuid(), status['CapEff'].strip(), status['NoNewPrivs'].strip())\n"
    )
    outcome, workspace, notebook = run_cells(tmp_path, [probe], SMALL, backend=sandbox)
    uid, capabilities, no_new_privileges = cell_output(workspace, notebook.cells[0].id).split()
    assert int(uid) != 0
    assert int(capabilities, 16) == 0
    assert no_new_privileges == "1"


MEMORY_HOG = "blocks = []\nwhile True:\n    blocks.append(b'x' * (64 * 1024 * 1024))"


def test_memory_hog_is_stopped_and_named(sandbox, tmp_path):
    limits = ExecutionLimits(cell_timeout=60, notebook_timeout=120, export_timeout=30, memory_mib=700,
                             max_processes=256, grace_seconds=60)
    outcome, workspace, notebook = run_cells(tmp_path, [("value = 1", "t"), MEMORY_HOG], limits, backend=sandbox)
    assert outcome.status == "memory_limit"
    assert "700 MiB" in outcome.message
    assert outcome.failed_cell.cell_id == notebook.cells[1].id
    # The task finished before the hog keeps its saved value.
    assert exported_value(workspace) == 1


FORK_BOMB = ("import os, time\n"
             "while True:\n"
             "    try:\n"
             "        os.fork()\n"
             "    except OSError:\n"
             "        time.sleep(0.01)\n")


def test_fork_bomb_is_stopped_by_the_process_limit(sandbox, tmp_path):
    limits = ExecutionLimits(cell_timeout=10, notebook_timeout=60, export_timeout=20, memory_mib=2048,
                             max_processes=128, grace_seconds=40)
    outcome, workspace, notebook = run_cells(tmp_path, [("value = 1", "t"), FORK_BOMB], limits, backend=sandbox)
    assert outcome.status in ("cell_timeout", "notebook_timeout")
    assert outcome.failed_cell.cell_id == notebook.cells[1].id
    assert exported_value(workspace) == 1
    # Nothing of the bomb is left on the host (for docker, the fixture also checks the container is gone).
    assert processes_in(workspace.resolve()) == []


def test_endless_loop_is_interrupted_at_the_cell_limit(sandbox, tmp_path):
    limits = ExecutionLimits(cell_timeout=5, notebook_timeout=60, export_timeout=20, memory_mib=2048,
                             max_processes=256, grace_seconds=40)
    cells = [("value = 1", "t"), "while True:\n    pass", "value = 2"]
    outcome, workspace, notebook = run_cells(tmp_path, cells, limits, backend=sandbox)
    assert outcome.status == "cell_timeout"
    assert outcome.failed_cell.cell_id == notebook.cells[1].id
    assert exported_value(workspace) == 1


def test_loop_that_ignores_interrupts_is_stopped(sandbox, tmp_path):
    limits = ExecutionLimits(cell_timeout=4, notebook_timeout=60, export_timeout=4, memory_mib=2048,
                             max_processes=256, grace_seconds=30)
    stubborn = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
    outcome, workspace, notebook = run_cells(tmp_path, [("value = 1", "t"), stubborn], limits, backend=sandbox)
    assert outcome.status == "cell_timeout"
    assert outcome.failed_cell.cell_id == notebook.cells[1].id
    assert exported_value(workspace) == 1


def test_frozen_runner_is_killed_from_outside(sandbox, tmp_path):
    """A notebook that stops the runner itself (SIGSTOP) is ended by the back end's own clock."""
    limits = ExecutionLimits(cell_timeout=4, notebook_timeout=8, export_timeout=4, memory_mib=2048,
                             max_processes=256, grace_seconds=12)
    freeze = "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\nwhile True:\n    pass"
    outcome, workspace, notebook = run_cells(tmp_path, [("value = 1", "t"), freeze], limits, backend=sandbox)
    assert outcome.status == "notebook_timeout"
    assert outcome.failed_cell.cell_id == notebook.cells[1].id
    assert 8 + 4 + 12 <= outcome.timings["backend_total"] < 8 + 4 + 12 + 30
    assert exported_value(workspace) == 1


def test_docker_records_its_limits(tmp_path):
    require("docker")
    outcome, _, _ = run_cells(tmp_path, ["value = 1"], SMALL, backend="docker")
    limits = outcome.sandbox["limits"]
    assert outcome.sandbox["name"] == "docker"
    assert limits == {"memory_bytes": 2048 * 1024 * 1024, "nano_cpus": int((os.cpu_count() or 1) * 1e9),
                      "pids": 256, "network": "none", "read_only": True}


def test_docker_writes_gpu_device_requests(tmp_path):
    """The container asks the NVIDIA runtime for the GPUs given; starting it needs a GPU host."""
    require("docker")
    backend = DockerBackend(gpus="device=0,1")
    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir(parents=True)
    container = backend._create(workspace, workspace, workspace / "data", SMALL)
    try:
        requests = container.attrs["HostConfig"]["DeviceRequests"]
    finally:
        container.remove(force=True)
    assert requests == [{"Driver": "", "Count": 0, "DeviceIDs": ["0", "1"], "Capabilities": [["gpu"]],
                         "Options": {}}]


@pytest.mark.parametrize("text, expected", [
    ("all", {"Count": -1, "DeviceIDs": []}),
    ("2", {"Count": 2, "DeviceIDs": []}),
    ("device=0", {"Count": 0, "DeviceIDs": ["0"]}),
    ("0,1", {"Count": 0, "DeviceIDs": ["0", "1"]}),
    ("GPU-3b5e6f0a-1c2d", {"Count": 0, "DeviceIDs": ["GPU-3b5e6f0a-1c2d"]}),
])
def test_gpus_become_device_requests(text, expected):
    """Count -1 is Docker's `all`; ids and a count exclude each other."""
    (request,) = parse_gpus(text)
    assert {"Count": request["Count"], "DeviceIDs": request["DeviceIDs"]} == expected
    assert request["Capabilities"] == [["gpu"]]


@pytest.mark.parametrize("text", ["0", "1,,2", "gpu 1", "device=", "", "²", "-1", "0,-1"])
def test_bad_gpus_are_refused(text):
    with pytest.raises(BackendError, match="--gpus"):
        parse_gpus(text)


def test_missing_docker_engine_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    problem = DockerBackend().problem()
    assert "No Docker engine responded" in problem
    assert "apt-get install docker.io" in problem
    assert "--backend bwrap" in problem


def test_missing_image_says_how_to_build(tmp_path):
    require("docker")
    problem = DockerBackend(image="adgrade-grader:no-such-tag").problem()
    assert "adgrade-grader:no-such-tag is not on this Docker engine" in problem
    assert "adgrade image build" in problem


class EngineWithoutNvidia:
    def info(self):
        return {"Runtimes": {"runc": {}}}


def test_gpus_without_nvidia_runtime_say_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = nvidia_runtime_problem(EngineWithoutNvidia())
    assert "no NVIDIA runtime" in problem
    assert "nvidia-container-toolkit" in problem
    assert "leaving out --gpus" in problem


def test_gpus_on_this_engine_need_the_nvidia_runtime():
    require("docker")
    backend = DockerBackend(gpus="all")
    if nvidia_runtime_problem(backend.client) is None:
        pytest.skip("this Docker engine has the NVIDIA runtime")
    with pytest.raises(BackendError, match="no NVIDIA runtime"):
        get_backend("docker", gpus="all")


def test_gpus_are_refused_outside_docker():
    with pytest.raises(BackendError, match="--gpus needs the docker back end"):
        get_backend("local", gpus="all")


def test_missing_bubblewrap_says_how_to_install(monkeypatch, tmp_path):
    from harness.execution import bwrap_backend

    monkeypatch.setenv("PATH", str(tmp_path))
    bwrap_backend._probe.cache_clear()
    try:
        problem = BwrapBackend().problem()
    finally:
        bwrap_backend._probe.cache_clear()
    assert "bubblewrap (bwrap) is not installed" in problem
    assert "apt-get install bubblewrap" in problem
    assert "--backend docker or --backend local" in problem


def test_auto_takes_the_strongest_back_end():
    require("docker")
    require("bwrap")
    assert choose_backend().name == "docker"


def test_auto_with_missing_image_refuses_weaker_sandbox():
    """An image asked for by name must not be replaced by bwrap without a word."""
    require("docker")
    with pytest.raises(BackendError, match="adgrade-grader:no-such-tag is not on this Docker engine"):
        choose_backend(image="adgrade-grader:no-such-tag")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "COLUMNS": "200"})


def test_cli_names_a_missing_image_and_records_it(tmp_path):
    require("docker")
    completed = run_cli("grade", str(SOLUTION), "--backend", "docker", "--image", "adgrade-grader:no-such-tag",
                        "--data-dir", str(DATA_DIR), "--output", str(tmp_path))
    assert completed.returncode == 2
    assert "adgrade image build" in completed.stderr
    assert '"status": "harness_error"' in (tmp_path / "result.json").read_text()


@pytest.mark.parametrize("args, message", [
    (["--backend", "local", "--image", "adgrade-grader:0.1.0"], "--image applies to the docker back end only"),
    (["--backend", "local", "--cpus", "1"], "--cpus cannot be enforced by the local back end"),
    (["--backend", "local", "--cpus", "512"], "more than this host's"),
])
def test_cli_rejects_options_the_back_end_ignores(tmp_path, args, message):
    completed = run_cli("grade", str(SOLUTION), *args, "--data-dir", str(DATA_DIR), "--output", str(tmp_path))
    assert completed.returncode == 2
    assert message in completed.stderr


def test_sigterm_removes_the_container(tmp_path):
    """A grader stopped by SIGTERM (timeout, a job scheduler) still removes its container."""
    import signal
    import time

    import docker

    require("docker")
    client = docker.from_env()
    before = {c.id for c in client.containers.list(all=True, filters={"label": SUBMISSION_LABEL})}
    grader = subprocess.Popen([sys.executable, "-m", "harness.cli", "grade", str(SOLUTION), "--backend", "docker",
                               "--data-dir", str(DATA_DIR), "--output", str(tmp_path)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    ours = set()
    while not ours and time.monotonic() - started < 120:
        ours = {c.id for c in client.containers.list(all=True, filters={"label": SUBMISSION_LABEL})} - before
        time.sleep(0.2)
    assert ours, "the grader started no container"
    grader.send_signal(signal.SIGTERM)
    assert grader.wait(timeout=60) == 128 + signal.SIGTERM
    left = {c.id for c in client.containers.list(all=True, filters={"label": SUBMISSION_LABEL})}
    assert not ours & left


ANY_BACKEND = ("local", *SANDBOXES)


@pytest.fixture(params=ANY_BACKEND)
def any_backend(request, tmp_path):
    if request.param != "local":
        require(request.param)
    yield request.param
    if request.param == "docker":
        assert leftover_containers(tmp_path.name) == [], "the submission's container was not removed"


FORGE = ("import json, os, signal\n"
         "with open('execution.json', 'w') as handle:\n"
         "    json.dump({'status': 'completed', 'message': ''}, handle)\n"
         "os.kill(os.getppid(), signal.SIGKILL)\n")


def test_forged_outcome_is_ignored(any_backend, tmp_path):
    """A notebook that writes its own execution.json and kills the runner does not pass as completed."""
    limits = ExecutionLimits(cell_timeout=20, notebook_timeout=40, export_timeout=10, memory_mib=2048,
                             max_processes=256, grace_seconds=30)
    outcome, workspace, _ = run_cells(tmp_path, [("value = 1", "t"), FORGE, "raise ValueError('hidden')"], limits,
                                      backend=any_backend)
    assert outcome.status == "runner_failed"
    assert "runner was stopped" in outcome.message


FIFOS = ("import os\n"
         "for name in ('executed.ipynb', 'execution.json'):\n"
         "    if os.path.lexists(name):\n"
         "        os.remove(name)\n"
         "    os.mkfifo(name)\n")


def test_fifos_in_place_of_results_do_not_block(any_backend, tmp_path):
    limits = ExecutionLimits(cell_timeout=60, notebook_timeout=120, export_timeout=30, memory_mib=700,
                             max_processes=256, grace_seconds=60)
    outcome, workspace, notebook = run_cells(tmp_path, [("value = 1", "t"), FIFOS, MEMORY_HOG], limits,
                                             backend=any_backend)
    assert outcome.status == "memory_limit"
    assert outcome.failed_cell.cell_id == notebook.cells[2].id
    assert outcome.timings["backend_total"] < 60
    assert exported_value(workspace) == 1


def test_doctor_reports_the_host():
    completed = run_cli("doctor", "--data-dir", str(DATA_DIR))
    assert completed.returncode == 0
    for check in ("Docker engine", "NVIDIA runtime", "GPUs", "bubblewrap", "control groups", "NSL-KDD data",
                  "grading image", "--backend auto"):
        assert check in completed.stdout
    if REQUIRED:
        assert "would use docker" in completed.stdout


# ---- end to end: the assessment's rubric on the real NSL-KDD files ----

@pytest.fixture(scope="module")
def rubric():
    from harness.rubric import load_rubric

    return load_rubric()


@pytest.mark.e2e
def test_solution_scores_the_same_in_the_sandbox(sandbox, tmp_path, data_dir, rubric):
    from harness.grader import GradingOptions, grade_submission

    result = grade_submission(SOLUTION, rubric, data_dir, tmp_path, GradingOptions(backend=sandbox))
    assert result.status == "graded", result.message
    assert result.score == rubric.max_score == 26
    assert [t.name for t in result.tests if t.status != "passed"] == []
    assert result.environment["backend"] == sandbox
    assert result.environment["sandbox"]["name"] == sandbox


def solution_with_cell_after_task(task: str, source: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(SOLUTION, as_version=4)
    last = max(i for i, cell in enumerate(notebook.cells)
               if (cell.get("metadata", {}).get("adgrade") or {}).get("task") == task)
    notebook.cells.insert(last + 1, nbformat.v4.new_code_cell(source, id="memory-hog"))
    return notebook


@pytest.mark.e2e
def test_memory_hog_keeps_the_points_of_finished_tasks(sandbox, tmp_path, data_dir, rubric):
    from harness.grader import GradingOptions, grade_submission

    notebook = solution_with_cell_after_task("xgboost", MEMORY_HOG)
    path = tmp_path / "memory_hog.ipynb"
    nbformat.write(notebook, path)
    result = grade_submission(path, rubric, data_dir, tmp_path / "out",
                              GradingOptions(backend=sandbox, memory_mib=3072))
    assert result.status == "execution_error"
    position = next(i for i, cell in enumerate(notebook.cells) if cell.get("id") == "memory-hog")
    assert f"Cell {position + 1} (id memory-hog)" in result.message
    assert "more than 3072 MiB of memory" in result.message
    tasks = {task.id: (task.score, task.max_score) for task in result.tasks}
    assert tasks["split"][0] == tasks["split"][1] > 0
    assert tasks["xgboost"][0] == tasks["xgboost"][1] > 0
    assert tasks["autoencoder"][0] == 0 and tasks["gan"][0] == 0


def test_bwrap_binds_python_folders_under_tmp(monkeypatch, tmp_path):
    """A virtual environment under /tmp stays visible above the sandbox's private /tmp."""
    from harness.execution import bwrap_backend

    require("bwrap")
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "marker").write_text("visible")
    real_paths = bwrap_backend._python_paths()
    monkeypatch.setattr(bwrap_backend, "_python_paths", lambda: [*real_paths, str(venv)])
    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir(parents=True)
    command = bwrap_backend.bwrap_command(workspace, SMALL, ["cat", str(venv / "marker")])
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "visible"


def test_bwrap_hides_host_secrets_in_etc(tmp_path):
    from harness.execution import bwrap_backend

    require("bwrap")
    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir(parents=True)
    probe = "import os; print(sorted(n for n in ('shadow', 'gshadow', 'ssh', 'passwd') if os.path.exists('/etc/' + n)))"
    command = bwrap_backend.bwrap_command(workspace, SMALL, [sys.executable, "-c", probe])
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert completed.stdout.strip() == "['passwd']"
