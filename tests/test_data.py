"""Tests for harness.data and the `adgrade data` commands, run on the real NSL-KDD files.

The download tests start HTTP servers on 127.0.0.1 that serve copies of the files from
temporary folders. No test sends a request to any other host.
"""

from __future__ import annotations

import functools
import http.client
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import data
from harness.data import COLUMNS, FILES, TEST21_FILE, TEST_FILE, TRAIN_FILE, DataError

from conftest import DATA_DIR, REPO as REPO_ROOT

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
CLI_TIMEOUT_S = 120


# ---------------------------------------------------------------------------
# Helpers that build altered copies of the canonical files
# ---------------------------------------------------------------------------

def copy_canonical(target_dir: Path, names: tuple[str, ...] = tuple(FILES)) -> Path:
    """Copy the named canonical files into target_dir as writable files and return target_dir."""
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(DATA_DIR / name, target_dir / name)
    return target_dir


def canonical_lines(name: str) -> list[str]:
    return (DATA_DIR / name).read_text(encoding="utf-8").splitlines(keepends=True)


def write_truncated(path: Path, line_count: int = 100) -> None:
    """Write the first line_count lines of the canonical file of the same name."""
    path.write_text("".join(canonical_lines(path.name)[:line_count]), encoding="utf-8")


def write_with_replaced_line(path: Path, line_number: int, replace) -> None:
    """Write the canonical file of the same name, with line line_number (1-based) passed through replace."""
    lines = canonical_lines(path.name)
    fields = lines[line_number - 1].rstrip("\n").split(",")
    lines[line_number - 1] = ",".join(replace(fields)) + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def write_corrupted(path: Path) -> None:
    """Write the canonical file of the same name with one byte changed, so only its SHA-256 differs."""
    content = bytearray((DATA_DIR / path.name).read_bytes())
    position = content.index(b",tcp,", 5000) + 1
    content[position] = ord("u")
    path.write_bytes(bytes(content))


# ---------------------------------------------------------------------------
# HTTP servers on 127.0.0.1
# ---------------------------------------------------------------------------

class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serve files from `directory` and append each requested path to server.request_paths."""

    def do_GET(self) -> None:
        self.server.request_paths.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass  # The tests read request_paths, so the default stderr log line is dropped.


class TruncatedChunkHandler(http.server.BaseHTTPRequestHandler):
    """Announce a 16-byte chunk, send 3 bytes of it and close the connection."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.request_paths.append(self.path)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"10\r\nabc")
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass  # The tests read request_paths, so the default stderr log line is dropped.


@dataclass
class FileServer:
    """Base URL of a running test server and the paths it has been sent, in arrival order."""

    url: str
    request_paths: list[str] = field(default_factory=list)


@pytest.fixture
def start_server() -> Iterator[Callable[..., FileServer]]:
    """Return a function that runs an HTTP server on 127.0.0.1 with the given handler until the test ends."""
    started: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(handler: Callable[..., http.server.BaseHTTPRequestHandler]) -> FileServer:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.request_paths = []
        thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
        thread.start()
        started.append((server, thread))
        host, port = server.server_address[:2]
        return FileServer(url=f"http://{host}:{port}/", request_paths=server.request_paths)

    yield start

    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def serve_folder(start_server) -> Callable[[Path], FileServer]:
    """Return a function that serves the files of a folder over HTTP on 127.0.0.1."""
    return lambda root: start_server(functools.partial(RecordingHandler, directory=str(root)))


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_canonical(tmp_path_factory.mktemp("served-good"))


@pytest.fixture(scope="module")
def corrupt_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with unmodified test files and a training file that has one byte changed."""
    folder = copy_canonical(tmp_path_factory.mktemp("served-corrupt"), (TEST_FILE, TEST21_FILE))
    write_corrupted(folder / TRAIN_FILE)
    return folder


@pytest.fixture
def good_server(serve_folder, good_folder: Path) -> FileServer:
    return serve_folder(good_folder)


@pytest.fixture
def corrupt_server(serve_folder, corrupt_folder: Path) -> FileServer:
    return serve_folder(corrupt_folder)


@pytest.fixture(autouse=True)
def local_requests_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep urllib off any proxy and off the default mirror, so requests reach only the test servers."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(data.URL_ENV, raising=False)


def requested_names(server: FileServer) -> list[str]:
    return [path.rsplit("/", 1)[-1] for path in server.request_paths]


def assert_canonical_and_read_only(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    assert data.sha256_of(path) == FILES[path.name].sha256
    assert path.stat().st_mode & 0o222 == 0, f"{path} is writable: {oct(path.stat().st_mode)}"


# ---------------------------------------------------------------------------
# resolve_data_dir
# ---------------------------------------------------------------------------

def test_resolve_data_dir_argument_overrides_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_argument = tmp_path / "argument"
    from_env = tmp_path / "env"
    from_argument.mkdir()
    from_env.mkdir()
    monkeypatch.setenv(data.DATA_ENV, str(from_env))

    assert data.resolve_data_dir(from_argument) == from_argument


def test_resolve_data_dir_uses_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))

    assert data.resolve_data_dir() == tmp_path


def test_resolve_data_dir_without_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.DATA_ENV, raising=False)

    with pytest.raises(DataError) as caught:
        data.resolve_data_dir()

    message = str(caught.value)
    assert "--data-dir" in message
    assert "ADGRADE_DATA" in message


def test_resolve_data_dir_empty_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.DATA_ENV, "")

    with pytest.raises(DataError, match="ADGRADE_DATA"):
        data.resolve_data_dir()


def test_resolve_data_dir_missing_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-such-folder"
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))

    with pytest.raises(DataError) as caught:
        data.resolve_data_dir(missing)

    assert str(missing) in str(caught.value)


# ---------------------------------------------------------------------------
# verify_file, verify_dir, require_files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(FILES))
def test_verify_file_canonical_ok(name: str) -> None:
    report = data.verify_file(DATA_DIR / name)

    assert report.name == name
    assert report.ok, report.problems
    assert report.problems == []


def test_verify_file_truncated_copy(tmp_path: Path) -> None:
    path = tmp_path / TRAIN_FILE
    write_truncated(path, 100)

    report = data.verify_file(path)

    assert not report.ok
    assert any("SHA-256" in problem for problem in report.problems), report.problems
    assert any("100 rows instead of 25192" in problem for problem in report.problems), report.problems


def test_verify_file_row_with_42_fields(tmp_path: Path) -> None:
    path = tmp_path / TRAIN_FILE
    write_with_replaced_line(path, 7, lambda fields: fields[:-1])

    report = data.verify_file(path)

    assert not report.ok
    assert any("1 row(s) do not have 43 fields" in problem for problem in report.problems), report.problems
    assert any("line 7" in problem for problem in report.problems), report.problems
    assert not any("rows instead of" in problem for problem in report.problems), report.problems


def test_verify_file_unknown_label(tmp_path: Path) -> None:
    path = tmp_path / TEST_FILE
    write_with_replaced_line(path, 3, lambda fields: fields[:41] + ["not_an_attack"] + fields[42:])

    report = data.verify_file(path)

    assert not report.ok
    assert any("unknown attack label" in problem for problem in report.problems), report.problems
    assert any("not_an_attack" in problem for problem in report.problems), report.problems


def test_verify_file_missing_file(tmp_path: Path) -> None:
    report = data.verify_file(tmp_path / TRAIN_FILE)

    assert not report.ok
    assert report.problems == ["missing"]


def test_verify_dir_canonical_ok() -> None:
    reports = data.verify_dir(DATA_DIR, tuple(FILES))

    assert [report.name for report in reports] == list(FILES)
    assert all(report.ok for report in reports), [(r.name, r.problems) for r in reports]


def test_verify_dir_flags_only_altered_file(tmp_path: Path) -> None:
    copy_canonical(tmp_path, (TEST_FILE,))
    write_truncated(tmp_path / TRAIN_FILE)

    reports = {report.name: report for report in data.verify_dir(tmp_path)}

    assert set(reports) == set(data.REQUIRED_FILES)
    assert not reports[TRAIN_FILE].ok
    assert reports[TEST_FILE].ok, reports[TEST_FILE].problems


def test_require_files_canonical_passes() -> None:
    data.require_files(DATA_DIR)


def test_require_files_missing_file(tmp_path: Path) -> None:
    copy_canonical(tmp_path, (TRAIN_FILE,))

    with pytest.raises(DataError) as caught:
        data.require_files(tmp_path)

    message = str(caught.value)
    assert TEST_FILE in message
    assert "missing" in message
    assert f"adgrade data fetch {tmp_path}" in message
    assert TRAIN_FILE not in message


def test_require_files_truncated_file(tmp_path: Path) -> None:
    copy_canonical(tmp_path, (TEST_FILE,))
    write_truncated(tmp_path / TRAIN_FILE)

    with pytest.raises(DataError) as caught:
        data.require_files(tmp_path)

    message = str(caught.value)
    assert TRAIN_FILE in message
    assert "100 rows instead of 25192" in message
    assert "adgrade data fetch" in message


def test_require_files_row_with_42_fields(tmp_path: Path) -> None:
    copy_canonical(tmp_path, (TEST_FILE,))
    write_with_replaced_line(tmp_path / TRAIN_FILE, 12, lambda fields: fields[:-1])

    with pytest.raises(DataError) as caught:
        data.require_files(tmp_path)

    message = str(caught.value)
    assert TRAIN_FILE in message
    assert "line 12" in message


def test_require_files_unknown_label(tmp_path: Path) -> None:
    copy_canonical(tmp_path, (TRAIN_FILE,))
    write_with_replaced_line(tmp_path / TEST_FILE, 3, lambda fields: fields[:41] + ["not_an_attack"] + fields[42:])

    with pytest.raises(DataError) as caught:
        data.require_files(tmp_path)

    message = str(caught.value)
    assert TEST_FILE in message
    assert "not_an_attack" in message


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------

def test_load_training_file_shape() -> None:
    frame = data.load(DATA_DIR / TRAIN_FILE)

    assert frame.shape == (25192, 43)
    assert list(frame.columns) == list(COLUMNS)


def test_load_training_file_labels() -> None:
    frame = data.load(DATA_DIR / TRAIN_FILE)

    assert (frame[data.LABEL_COLUMN] == data.NORMAL_LABEL).sum() == 13449
    assert frame[data.LABEL_COLUMN].nunique() == 22
    assert set(frame[data.LABEL_COLUMN]) <= data.LABELS


def test_load_test_file_rows_and_labels() -> None:
    frame = data.load(DATA_DIR / TEST_FILE)

    assert len(frame) == 22544
    assert frame[data.LABEL_COLUMN].nunique() == 38
    assert (frame[data.LABEL_COLUMN] == data.NORMAL_LABEL).sum() == 9711


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        data.load(tmp_path / TRAIN_FILE)

    message = str(caught.value)
    assert str(tmp_path / TRAIN_FILE) in message
    assert "adgrade data fetch" in message


def test_load_row_with_42_fields(tmp_path: Path) -> None:
    path = tmp_path / TRAIN_FILE
    write_with_replaced_line(path, 7, lambda fields: fields[:-1])

    with pytest.raises(DataError, match="43 fields"):
        data.load(path)


# ---------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------

def test_fetch_good_server_downloads_all(tmp_path: Path, good_server: FileServer) -> None:
    target = tmp_path / "fresh"

    reports = data.fetch(target, good_server.url)

    assert [report.name for report in reports] == list(FILES)
    assert all(report.ok for report in reports), [(r.name, r.problems) for r in reports]
    for name in FILES:
        assert_canonical_and_read_only(target / name)
    assert sorted(path.name for path in target.iterdir()) == sorted(FILES)


def test_fetch_url_without_trailing_slash(tmp_path: Path, good_server: FileServer) -> None:
    reports = data.fetch(tmp_path, good_server.url.rstrip("/"), names=(TEST21_FILE,))

    assert reports[0].ok, reports[0].problems
    assert good_server.request_paths == [f"/{TEST21_FILE}"]


def test_fetch_corrupt_file_rejected(tmp_path: Path, corrupt_server: FileServer) -> None:
    target = tmp_path / "fresh"

    reports = {report.name: report for report in data.fetch(target, corrupt_server.url)}

    assert not reports[TRAIN_FILE].ok
    assert any("SHA-256" in problem for problem in reports[TRAIN_FILE].problems), reports[TRAIN_FILE].problems
    assert any(corrupt_server.url + TRAIN_FILE in problem for problem in reports[TRAIN_FILE].problems)
    assert not (target / TRAIN_FILE).exists()
    assert reports[TEST_FILE].ok, reports[TEST_FILE].problems
    assert reports[TEST21_FILE].ok, reports[TEST21_FILE].problems
    assert_canonical_and_read_only(target / TEST_FILE)
    assert_canonical_and_read_only(target / TEST21_FILE)


def test_fetch_leaves_no_temporary_files(tmp_path: Path, corrupt_server: FileServer) -> None:
    data.fetch(tmp_path, corrupt_server.url)

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([TEST_FILE, TEST21_FILE])


def test_fetch_keeps_good_file_over_corrupt(tmp_path: Path, corrupt_server: FileServer) -> None:
    copy_canonical(tmp_path, (TRAIN_FILE,))
    before = (tmp_path / TRAIN_FILE).stat().st_mtime_ns

    reports = data.fetch(tmp_path, corrupt_server.url, names=(TRAIN_FILE,))

    assert reports[0].ok, reports[0].problems
    assert reports[0].problems == ["already present"]
    assert TRAIN_FILE not in requested_names(corrupt_server)
    assert (tmp_path / TRAIN_FILE).stat().st_mtime_ns == before
    assert data.sha256_of(tmp_path / TRAIN_FILE) == FILES[TRAIN_FILE].sha256


def test_fetch_keeps_altered_file_over_corrupt(tmp_path: Path, corrupt_server: FileServer) -> None:
    existing = tmp_path / TRAIN_FILE
    write_truncated(existing)
    content_before = existing.read_bytes()

    reports = data.fetch(tmp_path, corrupt_server.url, names=(TRAIN_FILE,))

    assert not reports[0].ok
    assert requested_names(corrupt_server) == [TRAIN_FILE]
    assert existing.read_bytes() == content_before


def test_fetch_replaces_altered_file_with_good(tmp_path: Path, good_server: FileServer) -> None:
    write_truncated(tmp_path / TRAIN_FILE)

    reports = data.fetch(tmp_path, good_server.url, names=(TRAIN_FILE,))

    assert reports[0].ok, reports[0].problems
    assert_canonical_and_read_only(tmp_path / TRAIN_FILE)


def test_fetch_404_names_url(tmp_path: Path, good_server: FileServer) -> None:
    base_url = good_server.url + "not-there/"

    reports = data.fetch(tmp_path, base_url, names=(TRAIN_FILE,))

    assert not reports[0].ok
    problems = " ".join(reports[0].problems)
    assert base_url + TRAIN_FILE in problems
    assert "404" in problems
    assert list(tmp_path.iterdir()) == []


def test_fetch_skips_verified_file(tmp_path: Path, good_server: FileServer) -> None:
    copy_canonical(tmp_path, (TRAIN_FILE,))
    before = (tmp_path / TRAIN_FILE).stat().st_mtime_ns

    reports = {report.name: report for report in data.fetch(tmp_path, good_server.url)}

    assert reports[TRAIN_FILE].problems == ["already present"]
    assert sorted(requested_names(good_server)) == sorted([TEST_FILE, TEST21_FILE])
    assert (tmp_path / TRAIN_FILE).stat().st_mtime_ns == before


def test_fetch_interrupted_chunked_download(tmp_path: Path, start_server) -> None:
    server = start_server(TruncatedChunkHandler)

    reports = data.fetch(tmp_path, server.url, names=(TRAIN_FILE,))

    assert not reports[0].ok
    assert server.url + TRAIN_FILE in " ".join(reports[0].problems)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# adgrade data verify / fetch / ensure, run as a separate process
# ---------------------------------------------------------------------------

def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if key not in PROXY_VARIABLES and key != data.URL_ENV}
    environment["no_proxy"] = environment["NO_PROXY"] = "127.0.0.1,localhost"
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *arguments],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )


def test_cli_verify_canonical_folder() -> None:
    result = run_cli("data", "verify", str(DATA_DIR))

    assert result.returncode == 0, result.stdout + result.stderr
    for name in FILES:
        assert re.search(rf"^\s*ok\s+{re.escape(name)}\s*$", result.stdout, re.MULTILINE), result.stdout


def test_cli_verify_truncated_training_file(tmp_path: Path) -> None:
    copy_canonical(tmp_path, (TEST_FILE, TEST21_FILE))
    write_truncated(tmp_path / TRAIN_FILE)

    result = run_cli("data", "verify", str(tmp_path))

    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(rf"FAILED\s+{re.escape(TRAIN_FILE)}", result.stdout), result.stdout
    assert re.search(rf"^\s*ok\s+{re.escape(TEST_FILE)}\s*$", result.stdout, re.MULTILINE), result.stdout
    assert TRAIN_FILE in result.stderr


def test_cli_verify_error_command_whole(tmp_path: Path) -> None:
    copy_canonical(tmp_path, (TEST_FILE, TEST21_FILE))
    write_truncated(tmp_path / TRAIN_FILE)

    result = run_cli("data", "verify", str(tmp_path))

    assert result.returncode == 2
    assert f"adgrade data fetch {tmp_path}" in result.stderr


def test_cli_verify_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "absent"

    result = run_cli("data", "verify", str(missing))

    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_cli_verify_bracketed_folder_name(tmp_path: Path) -> None:
    missing = tmp_path / "absent[data]"

    result = run_cli("data", "verify", str(missing))

    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_cli_fetch_good_server(tmp_path: Path, good_server: FileServer) -> None:
    target = tmp_path / "fresh"

    result = run_cli("data", "fetch", str(target), "--url", good_server.url)

    assert result.returncode == 0, result.stdout + result.stderr
    for name in FILES:
        assert_canonical_and_read_only(target / name)


def test_cli_fetch_corrupt_server(tmp_path: Path, corrupt_server: FileServer) -> None:
    target = tmp_path / "fresh"

    result = run_cli("data", "fetch", str(target), "--url", corrupt_server.url)

    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(rf"FAILED\s+{re.escape(TRAIN_FILE)}", result.stdout), result.stdout
    assert not (target / TRAIN_FILE).exists()
    assert str(target.resolve()) in result.stderr
    assert TRAIN_FILE in result.stderr
    assert data.URL_ENV in result.stderr


def test_cli_fetch_error_long_path_whole(tmp_path: Path, corrupt_server: FileServer) -> None:
    target = tmp_path / ("target-folder-with-a-name-long-enough-to-pass-the-80-column-terminal-width" * 2)

    result = run_cli("data", "fetch", str(target), "--url", corrupt_server.url)

    assert result.returncode == 2
    assert str(target.resolve()) in result.stderr


def test_cli_ensure_verified_folder(tmp_path: Path, good_server: FileServer) -> None:
    copy_canonical(tmp_path, data.REQUIRED_FILES)

    result = run_cli("data", "ensure", str(tmp_path), "--url", good_server.url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    assert good_server.request_paths == []


def test_cli_ensure_replaces_truncated_file(tmp_path: Path, good_server: FileServer) -> None:
    copy_canonical(tmp_path, data.REQUIRED_FILES)
    write_truncated(tmp_path / TRAIN_FILE)

    result = run_cli("data", "ensure", str(tmp_path), "--url", good_server.url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert_canonical_and_read_only(tmp_path / TRAIN_FILE)
    assert TRAIN_FILE in requested_names(good_server)
