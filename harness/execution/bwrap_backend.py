"""The `bwrap` back end: bubblewrap namespaces and Linux control groups, for hosts without Docker.

What encloses the notebook, and what enforces each limit:

- network: a network namespace of its own with only a loopback device (`--unshare-net`);
- files: a new mount namespace whose root is empty but for read-only binds of /usr, a few
  files of /etc (ETC_FILES), the Python installation and the harness package. The workspace
  is the only writable folder besides private /tmp and /dev/shm tmpfs mounts, its data folder
  is bound read-only, and nothing else of the grading host (grader-held data, rubrics, the
  solution, home folders, the rest of /etc) exists inside;
- identity: a user namespace in which the notebook runs as uid 65534 with no capabilities.
  On the host it keeps the caller's uid, which is root without capabilities when the grader
  runs as root, so only the folders above are bound in;
- CPU: as root, a cpu control group quota when --cpus or the rubric sets one;
- processes: a PID namespace, so the notebook sees and can signal only its own processes,
  and everything dies with the sandbox (`--die-with-parent`);
- memory and processes: as root, a control group per submission (`memory.limit_in_bytes`
  and `pids.max` under cgroup v1, `memory.max` and `pids.max` under v2), enforced by the
  kernel; without root, a watchdog polls the sandbox's resident memory four times a
  second and RLIMIT_NPROC caps the user's processes;
- time: the runner's own per-cell and notebook limits, and a kill from outside;
- disk: RLIMIT_FSIZE caps each file the notebook writes; the workspace is a folder on the
  host's disk, so the total is not capped as Docker's tmpfs caps it.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from functools import cache
from pathlib import Path

import harness
from harness.execution.base import (RUNNER_LOG, ExecutionBackend, ExecutionLimits, ExecutionOutcome,
                                    hard_time_limit, kernel_settings)
from harness.execution.cgroups import SubmissionCgroup, cgroup_version
from harness.execution.local import POLL_SECONDS, _kill_tree, _process_tree, _resident_bytes, settle_outcome

logger = logging.getLogger(__name__)

SANDBOX_UID = 65534
SANDBOX_WORKSPACE = "/workspace"
INSTALL_HINT = ("Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) "
                "or choose another back end: --backend docker or --backend local.")


def _python_paths() -> list[str]:
    """Folders the runner's Python needs: the installation, the environment and the harness package."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix, str(Path(harness.__file__).resolve().parent)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    # The interpreter may be a link out of the environment (a venv's bin/python).
    paths.add(str(Path(sys.executable).resolve().parent.parent))
    resolved = sorted({str(Path(p).resolve()) for p in paths if p and Path(p).exists()})
    # A folder inside another one on the list is already bound.
    return [p for p in resolved if not any(p != q and p.startswith(q + os.sep) for q in resolved)]


# Files of /etc that Python, TensorFlow and Matplotlib read; the rest of /etc stays outside.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "hosts", "passwd",
             "group", "ssl", "ca-certificates", "fonts", "mime.types", "os-release")


def _system_binds() -> list[str]:
    args = []
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def bwrap_command(workspace: Path, limits: ExecutionLimits, command: list[str]) -> list[str]:
    """Build the bwrap command line that runs `command` in the sandbox around `workspace`.

    Mounts apply in order, so the private /tmp comes before the Python folders, which may lie under /tmp.
    """
    home = "/tmp/home"
    args = ["bwrap", "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--die-with-parent", "--new-session", "--hostname", "adgrade-sandbox",
            *_system_binds(),
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(64 * 1024 * 1024), "--tmpfs", "/dev/shm",
            "--size", str(256 * 1024 * 1024), "--tmpfs", "/tmp"]
    for path in _python_paths():
        if not path.startswith(("/usr/", "/etc/")):
            args += ["--ro-bind", path, path]
    args += ["--bind", str(workspace), SANDBOX_WORKSPACE,
             "--ro-bind", str(workspace / "data"), f"{SANDBOX_WORKSPACE}/data",
             "--remount-ro", "/dev",
             "--remount-ro", "/",
             "--chdir", SANDBOX_WORKSPACE, "--clearenv"]
    environment = {**kernel_settings(home), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                   "LANG": "C.UTF-8"}
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # a batch worker pinned to one GPU passes the pin on
        environment["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    for key, value in environment.items():
        args += ["--setenv", key, value]
    return [*args, "--", *command]


@cache
def _probe() -> str | None:
    """Start the real sandbox once, with the runner's Python, and report why it failed."""
    if shutil.which("bwrap") is None:
        return f"bubblewrap (bwrap) is not installed. {INSTALL_HINT}"
    with tempfile.TemporaryDirectory(prefix="adgrade-bwrap-probe-") as scratch:
        workspace = Path(scratch) / "workspace"
        (workspace / "data").mkdir(parents=True)
        limits = ExecutionLimits(cell_timeout=1, notebook_timeout=1, export_timeout=1, memory_mib=256)
        trial = bwrap_command(workspace, limits, [sys.executable, "-c", "import harness.execution.runner"])
        try:
            completed = subprocess.run(trial, capture_output=True, timeout=60, text=True)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap could not start a sandbox ({error}). {INSTALL_HINT}"
    if completed.returncode != 0:
        detail = (completed.stderr.strip().splitlines() or ["no output"])[-1][:300]
        return (f"bubblewrap could not run the grader's Python in a sandbox: {detail}. Unprivileged user "
                "namespaces may be off (sysctl kernel.unprivileged_userns_clone=1, or "
                "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu), or this may be a container without "
                "them; choose --backend docker or --backend local.")
    return None


class BwrapBackend(ExecutionBackend):
    name = "bwrap"

    def problem(self) -> str | None:
        return _probe()

    def execute(self, workspace: Path, limits: ExecutionLimits) -> ExecutionOutcome:
        self.check()
        started = time.monotonic()
        (workspace / "data").mkdir(exist_ok=True)
        command = bwrap_command(workspace, limits,
                                [sys.executable, "-m", "harness.execution.runner", SANDBOX_WORKSPACE,
                                 "--kill-leftovers"])
        version = cgroup_version()
        group = (SubmissionCgroup(limits.memory_mib * 1024 * 1024, limits.max_processes, version, limits.cpus)
                 if version else None)
        file_limit = limits.disk_mib * 1024 * 1024

        def enter_limits():
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if group is not None:
                group.join()
            else:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))

        killed_for, peak = None, 0
        try:
            with open(workspace.parent / RUNNER_LOG, "wb") as log:
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True, preexec_fn=enter_limits)
                deadline = started + hard_time_limit(limits)
                memory_limit = limits.memory_mib * 1024 * 1024
                while process.poll() is None:
                    time.sleep(POLL_SECONDS)
                    if group is None:
                        resident = _resident_bytes(_process_tree(process.pid))
                        peak = max(peak, resident)
                        if resident > memory_limit:
                            killed_for = "memory_limit"
                    if time.monotonic() > deadline:
                        killed_for = "notebook_timeout"
                    if killed_for:
                        logger.warning("stopping sandbox %d: %s", process.pid, killed_for)
                        _kill_tree(process.pid)
                        process.wait()
                        break
            if group is not None:
                peak = group.peak_bytes()
                if killed_for is None and group.oom_kills():
                    outcome = ExecutionOutcome.read(workspace)
                    if outcome is None or outcome.status in ("kernel_died", "runner_failed"):
                        killed_for = "memory_limit"
        finally:
            if group is not None:
                group.close()

        outcome = settle_outcome(workspace, limits, killed_for, process.returncode)
        outcome.timings["backend_total"] = round(time.monotonic() - started, 3)
        outcome.timings["peak_memory_mib"] = round(peak / 1024 / 1024, 1)
        outcome.sandbox = {
            "name": self.name, "isolation": "namespaces",
            "memory_and_processes": f"cgroup v{version}" if version else "watchdog and RLIMIT_NPROC",
            "limits": {"memory_bytes": limits.memory_mib * 1024 * 1024, "pids": limits.max_processes,
                       "file_bytes": file_limit, "network": "none",
                       "cpus": limits.cpus if group is not None and group.cpu_quota else None},
        }
        return outcome
