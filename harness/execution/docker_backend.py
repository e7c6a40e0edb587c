"""The `docker` back end: each submission in a fresh container of the grading image.

The container has no network and a read-only root file system. Its only writable
places are size-capped tmpfs mounts at /workspace and /tmp, whose pages count against
the memory limit. Memory and swap are capped together, with a CPU quota and a process
limit, and it runs as the image's non-root user with no capabilities and no-new-privileges. The notebook and job.json arrive through a read-only bind at
/input and the learner-visible data through a read-only bind at /workspace/data;
grader-held data is never mounted.

The container's first process only reaps children, so the runner is started with
`docker exec` and the results are read back with a second exec (tar) while the
tmpfs still exists. The time limit is enforced from outside; the container is
removed in every case.
"""

from __future__ import annotations

import io
import logging
import re
import os
import shutil
import tarfile
import threading
import time
from pathlib import Path

from harness import __version__
from harness.execution.base import (EXECUTED_NOTEBOOK, EXPORT_DIR, JOB_FILE, OUTCOME_FILE, RUNNER_LOG,
                                    SUBMISSION_NOTEBOOK, BackendError, ExecutionBackend, ExecutionLimits,
                                    ExecutionOutcome, hard_time_limit, kernel_settings)
from harness.execution.local import settle_outcome

logger = logging.getLogger(__name__)

DEFAULT_IMAGE = f"adgrade-grader:{__version__}"
IMAGE_LABEL = "io.adgrade.image"
SUBMISSION_LABEL = "io.adgrade.submission"

# PID 1 of the container: reaps orphans (a fork bomb's children included) and exits on SIGTERM.
HOLDER = (
    "import os, signal, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: os._exit(0))\n"
    "while True:\n"
    "    try:\n"
    "        os.wait()\n"
    "    except ChildProcessError:\n"
    "        time.sleep(0.5)\n"
)
RUNNER_LOG_LIMIT = 16 * 1024 * 1024
RESULT_MEMBERS = (OUTCOME_FILE, EXECUTED_NOTEBOOK, EXPORT_DIR)
EXECUTED_NOTEBOOK_LIMIT = 256 * 1024 * 1024
GPU_QUERY = ["nvidia-smi", "--query-gpu=index,name,uuid,driver_version,memory.total",
             "--format=csv,noheader"]


def image_name() -> str:
    return os.environ.get("ADGRADE_IMAGE", DEFAULT_IMAGE)


def parse_gpus(value: str | None):
    """Turn `all`, a count, or GPU ids (`device=0,1`, or `0,1`) into Docker device requests."""
    if value is None:
        return None
    import docker.types

    value = value.strip()
    if value == "":
        raise BackendError("--gpus is empty: use 'all', a count such as 2, or ids such as device=0 or 0,1.")
    if value == "all":
        return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    if value.isascii() and value.isdigit():
        if int(value) < 1:
            raise BackendError(f"--gpus {value} asks for no GPU: use 'all', a count of at least 1, or ids "
                               "such as device=0 or 0,1.")
        return [docker.types.DeviceRequest(count=int(value), capabilities=[["gpu"]])]
    ids = [part.strip() for part in value.removeprefix("device=").split(",")]
    if not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", part) for part in ids):
        raise BackendError(f"--gpus {value!r} is not valid: use 'all', a count such as 2, or ids such as "
                           "device=0, 0,1 or GPU-<uuid>.")
    return [docker.types.DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]


def docker_client():
    """Connect to the Docker engine; raise BackendError naming what is missing and the fix."""
    try:
        import docker
    except ImportError:
        raise BackendError("The docker back end needs the Docker SDK for Python: pip install docker") from None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as error:  # the SDK raises several types for a missing daemon
        raise BackendError(
            f"No Docker engine responded ({type(error).__name__}: {str(error)[:200]}). Install and start Docker "
            "(Debian/Ubuntu: apt-get install docker.io, then start dockerd), make sure this user may use it "
            "(the docker group), or choose another back end: --backend bwrap or --backend local."
        ) from None
    return client


def nvidia_runtime_problem(client) -> str | None:
    """Why GPUs cannot be given to containers here, or None."""
    runtimes = client.info().get("Runtimes", {}) or {}
    if "nvidia" in runtimes or shutil.which("nvidia-container-runtime-hook") or shutil.which("nvidia-container-cli"):
        return None
    return ("GPUs were asked for, but this Docker engine has no NVIDIA runtime. Install the NVIDIA Container "
            "Toolkit (nvidia-container-toolkit), run `nvidia-ctk runtime configure --runtime=docker` and restart "
            "Docker; or grade on the CPU by leaving out --gpus.")


class DockerBackend(ExecutionBackend):
    name = "docker"

    def __init__(self, image: str | None = None, gpus: str | None = None):
        # GPUs as Docker's --gpus takes them: "all", a count, or "device=ID,ID" (ID,ID also works).
        self.image = image or image_name()
        self.gpus = gpus
        self.device_requests = parse_gpus(gpus)
        self.user = (10001, 10001)  # replaced by the image's own user in problem()
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = docker_client()
        return self._client

    def problem(self) -> str | None:
        try:
            client = self.client
        except BackendError as error:
            return str(error)
        import docker.errors

        try:
            image = client.images.get(self.image)
        except docker.errors.ImageNotFound:
            return (f"The grading image {self.image} is not on this Docker engine. Build it with "
                    "`adgrade image build` (see the README's Docker section), name another with --image, "
                    "or choose another back end: --backend bwrap or --backend local.")
        user = (image.attrs.get("Config") or {}).get("User") or ""
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or int(uid) == 0 or (gid and not gid.isdigit()):
            return (f"The image {self.image} does not run as a numeric non-root user (its user is {user or 'root'!r}); "
                    "the docker back end needs the grading image's user. Build it from this project's "
                    "Dockerfile with `adgrade image build`.")
        self.user = (int(uid), int(gid or uid))
        if self.device_requests:
            return nvidia_runtime_problem(client)
        return None

    def execute(self, workspace: Path, limits: ExecutionLimits) -> ExecutionOutcome:
        self.check()
        started = time.monotonic()
        input_dir = workspace.parent / "input"
        input_dir.mkdir(exist_ok=True)
        for name in (SUBMISSION_NOTEBOOK, JOB_FILE):
            shutil.copyfile(workspace / name, input_dir / name)
            (input_dir / name).chmod(0o644)
        input_dir.chmod(0o755)
        data_dir = workspace / "data"
        data_dir.mkdir(exist_ok=True)
        data_dir.chmod(0o755)

        timings = {}
        mark = time.monotonic()
        container = self._create(workspace, input_dir, data_dir, limits)
        killed_for, returncode, sandbox = None, None, {}
        try:
            container.start()
            timings["container_start"] = time.monotonic() - mark
            mark = time.monotonic()
            returncode, killed_for = self._run(container, workspace, limits)
            timings["container_run"] = time.monotonic() - mark
            mark = time.monotonic()
            self._collect(container, workspace)
            sandbox = self._describe(container)
            timings["container_collect"] = time.monotonic() - mark
        finally:
            mark = time.monotonic()
            try:
                container.remove(force=True, v=True)
            except Exception as error:  # noqa: BLE001  (a removal failure must not hide the result)
                logger.warning("could not remove container %s: %s", container.short_id, error)
            timings["container_remove"] = time.monotonic() - mark

        if killed_for is None and sandbox.get("oom_killed"):
            outcome = ExecutionOutcome.read(workspace)
            if outcome is None or outcome.status in ("kernel_died", "runner_failed"):
                killed_for = "memory_limit"
        outcome = settle_outcome(workspace, limits, killed_for, returncode)
        outcome.timings.update({name: round(seconds, 3) for name, seconds in timings.items()})
        outcome.timings["backend_total"] = round(time.monotonic() - started, 3)
        outcome.sandbox = sandbox
        return outcome

    def _create(self, workspace: Path, input_dir: Path, data_dir: Path, limits: ExecutionLimits):
        import docker.types

        memory = f"{limits.memory_mib}m"
        cpus = limits.cpus or float(os.cpu_count() or 1)
        return self.client.containers.create(
            self.image,
            command=["python", "-c", HOLDER],
            detach=True,
            network_disabled=True,
            network_mode="none",
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(cpus * 1e9),
            pids_limit=limits.max_processes,
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[docker.types.Ulimit(name="core", soft=0, hard=0)],
            user=f"{self.user[0]}:{self.user[1]}",
            tmpfs={
                "/workspace": f"size={limits.disk_mib}m,uid={self.user[0]},gid={self.user[1]},mode=0700",
                "/tmp": f"size=256m,uid={self.user[0]},gid={self.user[1]},mode=0700",
            },
            volumes={
                str(input_dir): {"bind": "/input", "mode": "ro"},
                str(data_dir): {"bind": "/workspace/data", "mode": "ro"},
            },
            working_dir="/workspace",
            environment=kernel_settings("/tmp/home"),
            device_requests=self.device_requests,
            labels={SUBMISSION_LABEL: workspace.parent.name},
        )

    def _run(self, container, workspace: Path, limits: ExecutionLimits) -> tuple[int | None, str | None]:
        """Run the runner with exec; return its exit status and why it was killed, if it was."""
        api = self.client.api
        exec_id = api.exec_create(
            container.id, ["python", "-m", "harness.execution.runner", "/workspace", "--input", "/input",
                           "--kill-leftovers"],
            workdir="/workspace", stdout=True, stderr=True,
        )["Id"]
        log_path = workspace.parent / RUNNER_LOG

        def copy_log():
            written = 0
            with open(log_path, "wb") as log:
                for chunk in api.exec_start(exec_id, stream=True):
                    if written < RUNNER_LOG_LIMIT:
                        log.write(chunk[:RUNNER_LOG_LIMIT - written])
                        written += len(chunk)

        reader = threading.Thread(target=copy_log, daemon=True)
        reader.start()
        reader.join(hard_time_limit(limits))
        killed_for = None
        if reader.is_alive():
            killed_for = "notebook_timeout"
            logger.warning("container %s ran past its time limit; stopping its processes", container.short_id)
            self._stop_processes(container)
            reader.join(10)
        if reader.is_alive():
            container.kill()
            reader.join(10)
        return api.exec_inspect(exec_id).get("ExitCode"), killed_for

    def _stop_processes(self, container) -> None:
        """Kill everything but PID 1, so the tmpfs and its results survive; kill the container if that fails."""
        try:
            # kill(-1) reaches every process of the container's user but PID 1 and the caller.
            result = container.exec_run(["python", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"])
            if result.exit_code == 0:
                return
        except Exception as error:  # noqa: BLE001
            logger.warning("exec kill failed: %s", error)
        container.kill()

    def _collect(self, container, workspace: Path) -> None:
        """Copy the outcome, the executed notebook and the export folder out of the container's tmpfs."""
        container.reload()
        if container.status != "running":
            return
        try:
            exec_id = self.client.api.exec_create(
                container.id, ["tar", "-C", "/workspace", "--ignore-failed-read", "--no-recursion", "-cf", "-",
                               *RESULT_MEMBERS, *self._export_listing(container)],
                stdout=True, stderr=False)["Id"]
            data = io.BytesIO()
            for chunk in self.client.api.exec_start(exec_id, stream=True):
                data.write(chunk)
                if data.tell() > self._collect_limit():
                    logger.warning("results of %s exceed %d bytes; ignoring the rest", container.short_id,
                                   self._collect_limit())
                    break
        except Exception as error:  # noqa: BLE001  (missing results become a runner_failed outcome)
            logger.warning("could not copy results out of %s: %s", container.short_id, error)
            return
        data.seek(0)
        extract_results(data, workspace)

    def _export_listing(self, container) -> list[str]:
        result = container.exec_run(["find", f"/workspace/{EXPORT_DIR}", "-maxdepth", "1", "-type", "f",
                                     "-printf", f"{EXPORT_DIR}/%f\\n"])
        if result.exit_code != 0:
            return []
        return [line for line in result.output.decode(errors="replace").splitlines() if "/" in line][:200]

    @staticmethod
    def _collect_limit() -> int:
        return 2 * 1024 * 1024 * 1024

    def _describe(self, container) -> dict[str, object]:
        container.reload()
        state = container.attrs.get("State", {})
        host = container.attrs.get("HostConfig", {})
        described: dict[str, object] = {
            "name": self.name,
            "isolation": "container",
            "image": self.image,
            "image_id": container.attrs.get("Image"),
            "oom_killed": bool(state.get("OOMKilled")),
            "limits": {"memory_bytes": host.get("Memory"), "nano_cpus": host.get("NanoCpus"),
                       "pids": host.get("PidsLimit"), "network": host.get("NetworkMode"),
                       "read_only": host.get("ReadonlyRootfs")},
        }
        if self.device_requests:
            described["gpus_requested"] = self.gpus
            described["gpus"] = self._gpus(container)
        return described

    def _gpus(self, container) -> list[dict[str, str]]:
        """List the GPUs visible in the container, from nvidia-smi (which the NVIDIA runtime injects)."""
        try:
            result = container.exec_run(GPU_QUERY)
        except Exception as error:  # noqa: BLE001
            return [{"error": f"nvidia-smi could not run: {error}"}]
        if result.exit_code != 0:
            return [{"error": result.output.decode(errors="replace")[:300]}]
        gpus = []
        for line in result.output.decode(errors="replace").splitlines():
            fields = [field.strip() for field in line.split(",")]
            if len(fields) >= 5:
                gpus.append(dict(zip(("index", "name", "uuid", "driver", "memory"), fields)))
        return gpus


def extract_results(archive: io.BytesIO, workspace: Path) -> None:
    """Unpack the results tar into the workspace: known names, regular files only, within size limits."""
    try:
        tar = tarfile.open(fileobj=archive, mode="r:")
    except tarfile.TarError as error:
        logger.warning("results archive unreadable: %s", error)
        return
    export_dir = workspace / EXPORT_DIR
    with tar:
        while True:
            try:
                member = tar.next()
            except tarfile.TarError as error:
                logger.warning("results archive cut short: %s", error)
                return
            if member is None:
                return
            name = member.name.lstrip("./")
            if not member.isreg():
                continue
            if name in (OUTCOME_FILE, EXECUTED_NOTEBOOK):
                target = workspace / name
                if member.size > EXECUTED_NOTEBOOK_LIMIT:
                    continue
            elif name.startswith(f"{EXPORT_DIR}/") and name.count("/") == 1 and name[len(EXPORT_DIR) + 1:] not in ("", ".", ".."):
                export_dir.mkdir(exist_ok=True)
                target = export_dir / name[len(EXPORT_DIR) + 1:]
            else:
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            with open(target, "wb") as handle:
                shutil.copyfileobj(source, handle)
