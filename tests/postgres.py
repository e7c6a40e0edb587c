"""PostgreSQL for tests: the server named by ADGRADE_TEST_POSTGRES_URL, else a throwaway one on 127.0.0.1.

CI starts the cluster of Debian's postgresql package and names it in ADGRADE_TEST_POSTGRES_URL
(a superuser URL). Elsewhere the tests run initdb and pg_ctl in a temporary folder. Tests that
need PostgreSQL are skipped where neither is available, and fail instead when
ADGRADE_REQUIRE_POSTGRES=1 (as in CI).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRED = os.environ.get("ADGRADE_REQUIRE_POSTGRES") == "1"
SERVER_URL_ENV = "ADGRADE_TEST_POSTGRES_URL"
INSTALL_HINT = "install the Debian package postgresql (apt-get install -y postgresql)"
SUPERUSER = "adgrade"
# initdb exits with an error under root, so under root the server runs as the account the Debian package creates.
SERVER_ACCOUNT = "postgres"
START_ATTEMPTS = 3


@dataclass(frozen=True)
class PostgresServer:
    """A running test server: TCP with password login, and for a throwaway server a Unix socket without one."""

    host: str
    port: int
    user: str
    password: str
    socket_dir: Path | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresServer:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        return cls(host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username or "",
                   password=parsed.password or "")

    def url(self, database: str, password: str | None = None, port: int | None = None) -> str:
        """Build a SQLAlchemy URL for the psycopg driver. `password` and `port`, where given, replace the real ones."""
        password = self.password if password is None else password
        port = self.port if port is None else port
        return f"postgresql+psycopg://{self.user}:{password}@{self.host}:{port}/{database}"

    def create_database(self) -> str:
        """Create an empty database with a fresh name and return the name."""
        import psycopg

        name = f"test_{secrets.token_hex(6)}"
        host = str(self.socket_dir) if self.socket_dir is not None else self.host
        with psycopg.connect(host=host, port=self.port, user=self.user, password=self.password, dbname="postgres",
                             autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name


def find_bindir() -> Path | None:
    """Return the newest /usr/lib/postgresql/VERSION/bin with initdb and pg_ctl, else the folder of initdb on PATH."""
    candidates = []
    for folder in glob.glob("/usr/lib/postgresql/*/bin"):
        match = re.search(r"/postgresql/(\d+)/bin$", folder)
        if match and all(os.access(Path(folder, name), os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            candidates.append((int(match.group(1)), Path(folder)))
    if candidates:
        return max(candidates)[1]

    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def require_bindir() -> Path:
    """Return the PostgreSQL bin folder, or skip the test (fail it under ADGRADE_REQUIRE_POSTGRES=1)."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    reason = f"PostgreSQL server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}"
    if REQUIRED:
        pytest.fail(f"ADGRADE_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command_prefix() -> tuple[list[str], int | None, int | None]:
    """Return the prefix that runs a command as the server account, with that account's uid and gid.

    A process that is not root runs the server itself, so the prefix is empty.
    """
    if os.geteuid() != 0:
        return [], None, None
    try:
        account = pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        pytest.fail(f"the tests run as root, and initdb refuses root, but the account {SERVER_ACCOUNT!r} "
                    f"does not exist: {INSTALL_HINT}, which creates it")
    return ["runuser", "-u", SERVER_ACCOUNT, "--"], account.pw_uid, account.pw_gid


def read_log_tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-3000:]


def run_checked(command: list[str], step: str, log: Path | None = None) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if completed.returncode != 0:
        pytest.fail(f"{step} failed (exit status {completed.returncode}): {' '.join(command)}\n"
                    f"{completed.stdout}{completed.stderr}{read_log_tail(log)}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL server for the test session and stop it, removing its files, at the end.

    With ADGRADE_TEST_POSTGRES_URL set, that server is used instead, and left running.
    """
    if os.environ.get(SERVER_URL_ENV):
        yield PostgresServer.from_url(os.environ[SERVER_URL_ENV])
        return
    bindir = require_bindir()
    prefix, uid, gid = server_command_prefix()

    # Not under pytest's tmp_path, because its parent folders are private to the test user and the
    # server account has to reach its data folder.
    base = Path(tempfile.mkdtemp(prefix="adgrade-postgres-"))
    data_dir = base / "data"
    socket_dir = base / "socket"
    log = base / "server.log"
    password = secrets.token_hex(16)
    password_file = base / "password"
    socket_dir.mkdir()
    password_file.write_text(password + "\n")
    if uid is not None:
        for path in (base, socket_dir, password_file):
            os.chown(path, uid, gid)

    started = False
    try:
        run_checked(prefix + [str(bindir / "initdb"), "--pgdata", str(data_dir), "--username", SUPERUSER,
                             "--pwfile", str(password_file), "--auth-local=trust", "--auth-host=scram-sha-256",
                             "--encoding=UTF8", "--locale=C", "--no-sync"], "initdb")

        for attempt in range(1, START_ATTEMPTS + 1):
            port = free_port()
            # Durability settings are off because the data is thrown away, and the tests kill clients, never the server.
            options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={socket_dir} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            command = prefix + [str(bindir / "pg_ctl"), "--pgdata", str(data_dir), "--log", str(log),
                                "--wait", "--timeout", "60", "--options", options, "start"]
            completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if completed.returncode == 0:
                started = True
                break
            # Another process may have taken the port between free_port() and the server's bind.
            if attempt == START_ATTEMPTS:
                pytest.fail(f"pg_ctl start failed {START_ATTEMPTS} times: {completed.stdout}{completed.stderr}"
                            f"{read_log_tail(log)}")

        yield PostgresServer(host="127.0.0.1", port=port, user=SUPERUSER, password=password, socket_dir=socket_dir)
    finally:
        if started:
            run_checked(prefix + [str(bindir / "pg_ctl"), "--pgdata", str(data_dir), "--mode", "immediate",
                                  "--wait", "stop"], "pg_ctl stop", log)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A SQLAlchemy URL, with the password, of a new empty database on the test server."""
    return postgres_server.url(postgres_server.create_database())
