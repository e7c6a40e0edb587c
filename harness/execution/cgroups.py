"""Linux control groups: a memory and process-count cap for sandboxes without Docker.

The bwrap back end, run as root, puts each submission in a control group of its own:
`memory.limit_in_bytes` and `pids.max` under cgroup v1, or `memory.max` and `pids.max`
in one group under cgroup v2. The kernel enforces both: past the memory limit its
out-of-memory killer stops a process of the group, past the process limit fork() fails.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read_counter(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def oom_kill_count() -> int:
    """Count the out-of-memory kills in this process's own memory cgroup, as mounted inside a container."""
    v2 = CGROUP_ROOT / "memory.events"
    if v2.is_file():
        return _read_counter(v2, "oom_kill")
    return _read_counter(CGROUP_ROOT / "memory" / "memory.oom_control", "oom_kill")


def cgroup_version() -> int | None:
    """1 or 2 where this process can create memory and pids groups, else None."""
    if os.geteuid() != 0:
        return None
    if (CGROUP_ROOT / "cgroup.controllers").is_file():
        controllers = (CGROUP_ROOT / "cgroup.controllers").read_text().split()
        return 2 if {"memory", "pids"} <= set(controllers) else None
    if all(os.access(CGROUP_ROOT / name, os.W_OK) for name in ("memory", "pids")):
        return 1
    return None


CPU_PERIOD_MICROSECONDS = 100_000


class SubmissionCgroup:
    """A control group with a memory limit, a process-count limit and an optional CPU quota, removed by `close`."""

    def __init__(self, memory_bytes: int, max_processes: int, version: int, cpus: float | None = None):
        self.version = version
        self.cpu_quota = False
        name = f"adgrade-{uuid.uuid4().hex[:12]}"
        if version == 2:
            self.dirs = [CGROUP_ROOT / name]
            self.dirs[0].mkdir()
            subtree = CGROUP_ROOT / "cgroup.subtree_control"
            if not {"memory", "pids"} <= set(subtree.read_text().split()):
                subtree.write_text("+memory +pids")
            (self.dirs[0] / "memory.max").write_text(str(memory_bytes))
            if (self.dirs[0] / "memory.swap.max").exists():
                (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "pids.max").write_text(str(max_processes))
            if cpus and (self.dirs[0] / "cpu.max").exists():
                (self.dirs[0] / "cpu.max").write_text(f"{int(cpus * CPU_PERIOD_MICROSECONDS)} {CPU_PERIOD_MICROSECONDS}")
                self.cpu_quota = True
        else:
            memory, pids = CGROUP_ROOT / "memory" / name, CGROUP_ROOT / "pids" / name
            self.dirs = [memory, pids]
            memory.mkdir()
            pids.mkdir()
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():  # only where swap accounting is on
                swap.write_text(str(memory_bytes))
            (pids / "pids.max").write_text(str(max_processes))
            cpu_root = CGROUP_ROOT / "cpu"
            if cpus and os.access(cpu_root, os.W_OK) and (cpu_root / "cpu.cfs_quota_us").exists():
                cpu = cpu_root / name
                cpu.mkdir()
                self.dirs.insert(1, cpu)  # pids stays last: pids() reads its cgroup.procs
                (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_MICROSECONDS))
                (cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * CPU_PERIOD_MICROSECONDS)))
                self.cpu_quota = True

    def join(self) -> None:
        """Move the calling process into the group (used as a subprocess preexec function)."""
        for directory in self.dirs:
            (directory / "cgroup.procs").write_text(str(os.getpid()))

    def oom_kills(self) -> int:
        if self.version == 2:
            return _read_counter(self.dirs[0] / "memory.events", "oom_kill")
        count = _read_counter(self.dirs[0] / "memory.oom_control", "oom_kill")
        if count:
            return count
        # Kernels before 4.13 have no oom_kill counter, so a nonzero failcnt stands in for it.
        return 1 if _read_counter_file(self.dirs[0] / "memory.failcnt") else 0

    def pids(self) -> list[int]:
        try:
            return [int(pid) for pid in (self.dirs[-1] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def peak_bytes(self) -> int:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        return _read_counter_file(self.dirs[0] / name)

    def kill_all(self) -> None:
        """Kill every process in the group, repeating until it is empty (a fork bomb refills it)."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        logger.warning("processes left in %s after repeated kills", self.dirs[0])

    def close(self) -> None:
        self.kill_all()
        for directory in self.dirs:
            for _ in range(20):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                logger.warning("could not remove control group %s", directory)


def _read_counter_file(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
