"""The `image build` and `doctor` commands: the grading image, and what this host offers each back end."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from harness import PROJECT_ROOT, __version__, data
from harness.cli import EXIT_HARNESS, EXIT_OK, EXIT_USAGE, console, err_console

DEFAULT_BASE_IMAGE = "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"
WHEELHOUSE = PROJECT_ROOT / "docker" / "wheels"


def add_parsers(commands) -> None:
    image = commands.add_parser("image", help="the Docker grading image")
    image_commands = image.add_subparsers(dest="image_command", required=True)
    build = image_commands.add_parser("build", help="build the grading image from this checkout's Dockerfile")
    build.add_argument("--tag", default=None, help=f"image name (default: $ADGRADE_IMAGE or adgrade-grader:{__version__})")
    build.add_argument("--base-image", default=DEFAULT_BASE_IMAGE,
                       help="the image to build on (default: %(default)s); on a host without a registry, "
                       "make one with docker/make-base-image.sh")
    build.add_argument("--wheelhouse", action="store_true",
                       help="build the course stack's wheels on this host first and install only those in the "
                       "image (for builds that cannot reach a package index; the base image's Python must be "
                       "this host's Python version)")
    build.add_argument("--network-host", action="store_true",
                       help="give the build the host's network (where only the host reaches the package index)")

    doctor = commands.add_parser("doctor", help="what this host offers: Docker, NVIDIA runtime, GPUs, "
                                 "bubblewrap, control groups, the data and the grading image")
    doctor.add_argument("--data-dir", type=Path, help=f"NSL-KDD folder to check (default: ${data.DATA_ENV})")


def _fill_wheelhouse() -> None:
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    console.print(f"Building wheels of the course stack in {WHEELHOUSE} ...")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(WHEELHOUSE),
                    *dependencies, "setuptools>=77"], check=True)


def run_image_command(args: argparse.Namespace) -> int:
    from harness.execution import BackendError
    from harness.execution.docker_backend import docker_client, image_name

    if not (PROJECT_ROOT / "Dockerfile").is_file():
        err_console.print(f"error: no Dockerfile in {PROJECT_ROOT}; `adgrade image build` runs from a checkout "
                          "of the adgrade repository.")
        return EXIT_USAGE
    try:
        client = docker_client()
    except BackendError as error:
        err_console.print(f"error: {error}")
        return EXIT_USAGE
    tag = args.tag or image_name()
    if args.wheelhouse:
        try:
            _fill_wheelhouse()
        except subprocess.CalledProcessError as error:
            err_console.print(f"error: building wheels failed ({error}); build without --wheelhouse if the "
                              "Docker build can reach a package index.")
            return EXIT_HARNESS

    console.print(f"Building {tag} on {args.base_image} ...")
    last_lines: list[str] = []
    try:
        for event in client.api.build(path=str(PROJECT_ROOT), tag=tag, rm=True, forcerm=True, decode=True,
                                      buildargs={"BASE_IMAGE": args.base_image},
                                      network_mode="host" if args.network_host else None):
            if "error" in event:
                raise RuntimeError(event["error"])
            line = (event.get("stream") or "").rstrip()
            if line:
                last_lines = (last_lines + [line])[-20:]
                if line.startswith("Step "):
                    console.print(escape(line))
    except Exception as error:  # noqa: BLE001  (the Docker SDK raises several types)
        err_console.print("\n".join(last_lines))
        err_console.print(f"error: the image build failed: {error}")
        if "pull access denied" in str(error) or "not found" in str(error):
            err_console.print(f"The base image {args.base_image} is not available. On a host without a "
                              "registry, make one with docker/make-base-image.sh and pass --base-image "
                              "adgrade-base:bookworm.")
        return EXIT_HARNESS
    console.print(f"Built {tag}. Grade in it with: adgrade grade NOTEBOOK --backend docker --image {tag}")
    return EXIT_OK


def _check_docker(rows: list[tuple[str, str, str]]) -> None:
    from harness.execution import BackendError
    from harness.execution.docker_backend import docker_client, image_name, nvidia_runtime_problem

    try:
        client = docker_client()
    except BackendError as error:
        rows.append(("Docker engine", "missing", str(error)))
        return
    version = client.version()
    rows.append(("Docker engine", "ok", f"server {version.get('Version')}, API {version.get('ApiVersion')}"))
    problem = nvidia_runtime_problem(client)
    rows.append(("NVIDIA runtime", "none" if problem else "ok",
                 "not installed: --gpus needs the NVIDIA Container Toolkit (nvidia-ctk runtime configure "
                 "--runtime=docker, then restart Docker)" if problem else
                 f"runtimes: {', '.join(client.info().get('Runtimes', {}))}"))
    import docker.errors

    name = image_name()
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        rows.append(("grading image", "missing", f"{name} is not built; run `adgrade image build` "
                     "(see the README's Docker section)"))
        return
    created = (image.attrs.get("Created") or "")[:19]
    size = image.attrs.get("Size", 0) / 1e9
    rows.append(("grading image", "ok", f"{name} ({image.short_id}, built {created}, {size:.1f} GB, "
                 f"user {(image.attrs.get('Config') or {}).get('User') or 'root'})"))


def _check_gpus(rows: list[tuple[str, str, str]]) -> None:
    if shutil.which("nvidia-smi") is None:
        rows.append(("GPUs", "none", "nvidia-smi not found; grading runs on the CPU"))
        return
    listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    gpus = [line for line in listing.stdout.splitlines() if line.strip()]
    rows.append(("GPUs", "ok" if gpus else "none", "; ".join(gpus) or listing.stderr.strip()[:200]))


def run_doctor_command(args: argparse.Namespace) -> int:
    from harness.execution import BwrapBackend, choose_backend
    from harness.execution.cgroups import cgroup_version

    rows: list[tuple[str, str, str]] = [("adgrade", "ok", f"{__version__}, Python {sys.version.split()[0]}")]
    _check_docker(rows)
    _check_gpus(rows)
    problem = BwrapBackend().problem()
    if problem:
        rows.append(("bubblewrap", "missing", problem))
    else:
        version = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip()
        rows.append(("bubblewrap", "ok", f"{version}; namespaces work"))
    cgroups = cgroup_version()
    rows.append(("control groups", "ok" if cgroups else "limited",
                 f"cgroup v{cgroups}: bwrap caps memory and processes in the kernel" if cgroups else
                 "not writable (bwrap runs as root for kernel-enforced caps); bwrap falls back to a memory "
                 "watchdog and RLIMIT_NPROC"))
    try:
        data_dir = data.resolve_data_dir(args.data_dir)
        reports = data.verify_dir(data_dir, data.REQUIRED_FILES) if data_dir.is_dir() else []
        ok = bool(reports) and all(r.ok for r in reports)
        rows.append(("NSL-KDD data", "ok" if ok else "missing",
                     f"{data_dir}: " + ("verified" if ok else f"not verified; run `adgrade data ensure {data_dir}`")))
    except data.DataError as error:
        rows.append(("NSL-KDD data", "missing", str(error)))
    rows.append(("--backend auto", "ok", f"would use {choose_backend().name}"))

    table = Table(title="What this host offers adgrade")
    for column in ("check", "status", "detail"):
        table.add_column(column)
    colour = {"ok": "green", "missing": "red", "none": "yellow", "limited": "yellow"}
    for check, status, detail in rows:
        table.add_row(check, f"[{colour[status]}]{status}[/{colour[status]}]", escape(detail))
    console.print(table)
    return EXIT_OK
