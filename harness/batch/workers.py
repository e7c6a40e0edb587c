"""Parallel grading: a local process pool, an existing Dask cluster, or one worker per GPU."""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import multiprocessing
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.grader import GradingOptions, grade_submission
from harness.result import GradeResult
from harness.rubric import load_rubric

logger = logging.getLogger(__name__)

# A job whose worker process died this many times is recorded as a harness error instead of retried.
MAX_WORKER_DEATHS = 2
STARTED_MARKER = ".grading-started"


@dataclass(frozen=True)
class Job:
    """One submission to grade, in a form that pickles to another process or a Dask worker."""

    learner_id: str
    notebook: Path
    sha256: str
    original_name: str
    output_dir: Path
    rubric_path: Path
    data_dir: Path | None
    options: GradingOptions


@dataclass
class JobOutcome:
    job: Job
    result: GradeResult
    seconds: float
    # The GPU the worker was pinned to, if any.
    gpu: str | None = None


@dataclass
class PoolSettings:
    """Placement of the jobs: `workers` local processes or a Dask scheduler, and what each worker is pinned to.

    With gpu_ids, there is one worker per GPU. With cores_per_worker, worker i runs on CPU cores
    i*k .. i*k+k-1 of the cores this process may use, and so do the kernels it starts.
    """

    workers: int = 1
    dask_scheduler: str | None = None
    gpu_ids: list[str] = field(default_factory=list)
    cores_per_worker: int | None = None

    @property
    def worker_count(self) -> int:
        return len(self.gpu_ids) or self.workers

    def slots(self) -> list[dict[str, object]] | None:
        """List what each local worker takes at start (a GPU id, a set of cores), or return None when nothing is pinned."""
        if not self.gpu_ids and not self.cores_per_worker:
            return None
        cores = sorted(os.sched_getaffinity(0))
        slots = []
        for index in range(self.worker_count):
            slot: dict[str, object] = {}
            if self.gpu_ids:
                slot["gpu"] = self.gpu_ids[index]
            if self.cores_per_worker:
                start = index * self.cores_per_worker
                slot["cores"] = cores[start:start + self.cores_per_worker]
            slots.append(slot)
        return slots

    def check(self) -> None:
        """Raise ValueError when the settings cannot run on this host."""
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {self.workers}.")
        if self.cores_per_worker is not None:
            available = len(os.sched_getaffinity(0))
            needed = self.cores_per_worker * self.worker_count
            if self.cores_per_worker < 1 or needed > available:
                raise ValueError(f"--cores-per-worker {self.cores_per_worker} with {self.worker_count} worker(s) "
                                 f"needs {needed} CPU cores, but this process may use {available}. Lower one of "
                                 "them.")


# ---- the work itself: runs in a worker process ----

_worker_gpu: str | None = None


def _set_parent_death_signal() -> None:
    """Ask Linux to send SIGTERM to this worker when the batch process dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux or no glibc: orphaned workers finish their job and exit
        pass


def _exit_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds grade_submission's finally blocks, which stop kernels and remove containers.
    raise SystemExit(128 + signum)


def _init_worker(slot_queue) -> None:
    """Set up a pool worker: die with the parent, clean up on SIGTERM, and take its GPU and cores if pinned."""
    global _worker_gpu
    _set_parent_death_signal()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the batch process
    if slot_queue is None:
        return
    slot = slot_queue.get()
    if "gpu" in slot:
        _worker_gpu = str(slot["gpu"])
        # Kernels started by the local and bwrap back ends inherit this and see only their GPU.
        os.environ["CUDA_VISIBLE_DEVICES"] = _worker_gpu
    if slot.get("cores"):
        # Child processes (the runner, the kernel, the scorer) inherit the affinity.
        os.sched_setaffinity(0, slot["cores"])


def grade_job(job: Job) -> JobOutcome:
    """Grade one job in this process. A bad submission ends as a recorded result, not an exception.

    The worker exits (os._exit) on SIGTERM, once grade_submission's cleanup has run.
    """
    job.output_dir.mkdir(parents=True, exist_ok=True)
    (job.output_dir / STARTED_MARKER).write_text(str(os.getpid()), encoding="utf-8")
    options = job.options
    gpu = _worker_gpu or _dask_cuda_gpu()
    if gpu is not None and options.backend == "docker":
        options = replace(options, gpus=f"device={gpu}")  # a bare "1" would mean a count of GPUs
    started = time.monotonic()
    try:
        result = grade_submission(job.notebook, load_rubric(job.rubric_path), job.data_dir, job.output_dir, options)
    except SystemExit:
        # SIGTERM from a dying batch process: grade_submission's cleanup has run. The pool's worker loop would
        # catch SystemExit and wait for the next job forever, so the worker exits here.
        os._exit(128 + signal.SIGTERM)
    (job.output_dir / STARTED_MARKER).unlink(missing_ok=True)
    return JobOutcome(job, result, round(time.monotonic() - started, 3), gpu)


def _dask_cuda_gpu() -> str | None:
    """Return this dask-cuda worker's GPU: the first of CUDA_VISIBLE_DEVICES, where dask-cuda puts it."""
    if os.environ.get("ADGRADE_DASK_CUDA") != "1":
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return visible.split(",")[0] or None


# ---- scheduling: runs in the batch process ----


def list_gpus(spec: str) -> list[str]:
    """Turn --gpus (all, a count, or ids such as 0,1) into GPU ids; `all` and a count ask nvidia-smi."""
    spec = spec.strip()
    if spec == "all" or spec.isdigit():
        try:
            listing = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=30, check=True).stdout
        except (OSError, subprocess.SubprocessError) as error:
            raise ValueError(f"--gpus {spec} needs nvidia-smi to list the GPUs, and it failed ({error}). Install "
                             "the NVIDIA driver, or name the GPU ids (--gpus 0,1), or leave out --gpus.") from None
        ids = [line.strip() for line in listing.splitlines() if line.strip()]
        if spec != "all":
            if int(spec) > len(ids):
                raise ValueError(f"--gpus {spec} asks for more GPUs than the {len(ids)} nvidia-smi lists.")
            ids = ids[:int(spec)]
        if not ids:
            raise ValueError("nvidia-smi lists no GPUs; leave out --gpus to grade on the CPU.")
        return ids
    ids = [part.strip() for part in spec.split(",")]
    if not all(part.isdigit() or part.startswith("GPU-") for part in ids):
        raise ValueError(f"--gpus {spec!r} is not 'all', a count or a comma-separated list of GPU ids such as 0,1.")
    return ids


def run_jobs(jobs: list[Job], settings: PoolSettings) -> Iterator[JobOutcome]:
    """Grade the jobs in parallel and yield each outcome as soon as it is done, in completion order."""
    if not jobs:
        return
    if settings.dask_scheduler:
        yield from _run_on_dask(jobs, settings.dask_scheduler)
    elif settings.gpu_ids and _dask_cuda_available():
        yield from _run_on_local_cuda_cluster(jobs, settings.gpu_ids)
    else:
        yield from _run_on_pool(jobs, settings)


def _run_on_pool(jobs: list[Job], settings: PoolSettings) -> Iterator[JobOutcome]:
    """Run jobs on a process pool, starting a new pool when a worker process dies."""
    deaths: dict[str, int] = {}
    pending = list(jobs)
    while pending:
        # Workers start from a fresh interpreter, because forking a process that runs threads is unsafe.
        context = multiprocessing.get_context("spawn")
        slots = settings.slots()
        slot_queue = None
        if slots is not None:
            slot_queue = context.Queue()
            for slot in slots:
                slot_queue.put(slot)
        retry: list[Job] = []
        # Every worker takes one slot, so the pool has exactly one worker per slot.
        workers = settings.worker_count if slots is not None else min(settings.worker_count, len(pending))
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                    initializer=_init_worker, initargs=(slot_queue,)) as pool:
            futures = {pool.submit(grade_job, job): job for job in pending}
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                try:
                    yield future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    outcome = _after_worker_death(job, deaths)
                    if outcome is None:
                        retry.append(job)
                    else:
                        yield outcome
        pending = retry


def _after_worker_death(job: Job, deaths: dict[str, int]) -> JobOutcome | None:
    """Decide what happens to a job whose pool broke: retry it, or record the death if it caused it twice."""
    marker = job.output_dir / STARTED_MARKER
    if not marker.exists():
        return None  # it never started; the death was another job's
    marker.unlink()
    key = f"{job.learner_id}/{job.sha256}"
    deaths[key] = deaths.get(key, 0) + 1
    if deaths[key] < MAX_WORKER_DEATHS:
        logger.warning("a worker died while grading %s; grading it again", job.learner_id)
        return None
    logger.error("a worker died %d times while grading %s; recording a harness error", deaths[key], job.learner_id)
    return JobOutcome(job, worker_death_result(job), 0.0)


def worker_death_result(job: Job) -> GradeResult:
    result = GradeResult(submission=job.notebook.name, status="harness_error",
                         max_score=load_rubric(job.rubric_path).max_score,
                         message="The grading worker process died while grading this submission, twice; the "
                                 "host may have run out of memory. This is not your fault; contact course staff "
                                 "with this message.")
    result.write(job.output_dir)
    return result


def _run_on_dask(jobs: list[Job], address: str) -> Iterator[JobOutcome]:
    """Send the jobs to an existing Dask cluster; its workers need this harness and the data folder."""
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError) as error:
        raise ConnectionError(f"could not reach the Dask scheduler at {address} ({error}). Check the address "
                              "(tcp://HOST:PORT) and that the scheduler is running.") from None
    try:
        yield from _collect_dask(client, jobs, as_completed)
    finally:
        client.close()


def _collect_dask(client, jobs: list[Job], as_completed: Callable) -> Iterator[JobOutcome]:
    # pure=False: two jobs with equal arguments are still two gradings.
    futures = {client.submit(grade_job, job, pure=False, retries=1): job for job in jobs}
    for future in as_completed(futures):
        job = futures[future]
        try:
            yield future.result()
        except Exception as error:  # a worker lost twice, or a task that raised: recorded, never dropped
            logger.error("Dask could not grade %s: %s", job.learner_id, error)
            result = GradeResult(submission=job.notebook.name, status="harness_error",
                                 message=f"The Dask cluster could not grade this submission ({type(error).__name__}: "
                                         f"{error}). This is not your fault; contact course staff.")
            yield JobOutcome(job, result, 0.0)


def _dask_cuda_available() -> bool:
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        return False
    return True


def _run_on_local_cuda_cluster(jobs: list[Job], gpu_ids: list[str]) -> Iterator[JobOutcome]:
    """Run the jobs on one dask-cuda worker per GPU. Each worker lists its own GPU first in CUDA_VISIBLE_DEVICES."""
    # NOTE: written against dask-cuda's documented LocalCUDACluster API; no GPU host has run this path.
    from dask_cuda import LocalCUDACluster
    from distributed import Client, as_completed

    os.environ["ADGRADE_DASK_CUDA"] = "1"  # inherited by the workers, read by _dask_cuda_gpu
    with LocalCUDACluster(CUDA_VISIBLE_DEVICES=",".join(gpu_ids), threads_per_worker=1,
                          host="127.0.0.1") as cluster, Client(cluster) as client:
        yield from _collect_dask(client, jobs, as_completed)
