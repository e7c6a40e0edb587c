"""The gradebook: one stored GradeResult per graded submission, in SQLite (default) or PostgreSQL via SQLAlchemy.

Each result is committed as soon as it is recorded, so a batch killed at any point resumes without losing one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, aliased, mapped_column

from harness import __version__
from harness.result import GradeResult

log = logging.getLogger(__name__)

# Bump it when the tables change, so that a gradebook written with a newer schema is rejected, not misread.
SCHEMA_VERSION = 1
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
POSTGRES_CONNECT_TIMEOUT_SECONDS = 10
# A harness_error means the grader failed, not the submission, so a resumed batch grades it again.
RETRIED_STATUSES = ("harness_error",)
# A 64-bit key shared by every adgrade process that opens a PostgreSQL gradebook, so that two of them
# never create the tables at the same time.
SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"adgrade.gradebook.schema").digest()[:8], "big", signed=True)
URL_EXAMPLES = "a path such as grades.db, sqlite:///grades.db, or postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# Builds the "what to do next" sentence of an error from the gradebook and the driver's message.
HintFunction = Callable[["_Target", str], str]


class GradebookError(Exception):
    """A gradebook that cannot be opened, read or written. The message names the gradebook and the fix."""


class GradebookBusy(GradebookError):
    """Another batch process holds the batch lock of this gradebook."""

    def __init__(self, message: str, gradebook: str, holder_pid: int | None, holder_host: str | None) -> None:
        super().__init__(message)
        self.gradebook = gradebook
        self.holder_pid = holder_pid
        self.holder_host = holder_host


class Base(DeclarativeBase):
    pass


class GradebookInfo(Base):
    """Key-value facts about the gradebook itself. The `schema_version` row marks a database as a gradebook."""

    __tablename__ = "adgrade_gradebook"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class ResultRow(Base):
    """One graded submission: a learner's notebook (by SHA-256) under one rubric. A regrade replaces the row."""

    __tablename__ = "adgrade_results"
    __table_args__ = (
        sa.UniqueConstraint("rubric", "learner_id", "sha256", name="uq_adgrade_results_submission"),
        sa.Index("ix_adgrade_results_latest", "rubric", "learner_id", "graded_at"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    rubric: Mapped[str] = mapped_column(sa.Text)
    rubric_version: Mapped[str | None] = mapped_column(sa.Text)
    learner_id: Mapped[str] = mapped_column(sa.Text)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    original_name: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(32))
    # NULL where the grader produced a score that is not a finite number.
    score: Mapped[float | None] = mapped_column(sa.Float)
    max_score: Mapped[float | None] = mapped_column(sa.Float)
    # {task id: {"score": float | None, "max_score": float | None}}
    task_scores: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # ASCII-only JSON (json.dumps with ensure_ascii), so NUL characters, lone surrogates and NaN from a
    # notebook's output survive both SQLite and PostgreSQL text columns.
    result_json: Mapped[str] = mapped_column(sa.Text)
    output_dir: Mapped[str] = mapped_column(sa.Text)
    seconds: Mapped[float] = mapped_column(sa.Float)
    graded_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    harness_version: Mapped[str] = mapped_column(sa.Text)


@dataclass(frozen=True)
class StoredResult:
    """A gradebook row with its GradeResult parsed back."""

    rubric: str
    rubric_version: str | None
    learner_id: str
    sha256: str
    original_name: str
    status: str
    score: float | None
    max_score: float | None
    task_scores: dict[str, dict[str, float | None]]
    output_dir: Path
    seconds: float
    graded_at: datetime
    harness_version: str
    result: GradeResult


@dataclass(frozen=True)
class _Target:
    """The parsed gradebook location: the engine URL and the name that messages show, password masked."""

    url: URL
    name: str
    # True for a plain path, whose folders open() creates. A URL must name an existing folder.
    from_path: bool


class Gradebook:
    """The store of graded submissions. Create it with Gradebook.open(); close() releases its connections.

    Open it in the process that records results, because SQLAlchemy connections must not cross a fork.
    """

    def __init__(self, engine: Engine, target: _Target) -> None:
        self._engine = engine
        self._target = target

    @classmethod
    def open(cls, url_or_path: str | Path) -> Gradebook:
        """Open or create the gradebook at a SQLite path or a SQLAlchemy URL, creating the tables where missing.

        A plain path is a SQLite file (its folders are created). `postgresql://` and `postgres://` URLs
        without a driver use psycopg, the driver that the `batch` extra installs. Raises GradebookError,
        naming the gradebook with its password masked, when it cannot be reached or is not a gradebook.
        """
        target = _parse_target(url_or_path)
        backend = target.url.get_backend_name()
        if backend == "sqlite":
            _prepare_sqlite_folder(target)

        try:
            engine = _create_engine(target)
        except (ImportError, exc.NoSuchModuleError, exc.ArgumentError) as error:
            raise GradebookError(
                f"Cannot open the gradebook {target.name}: its database driver is not available "
                f"({_redact(str(error), target)}). Install that driver, or use {URL_EXAMPLES} "
                "(psycopg comes with adgrade[batch])."
            ) from None

        gradebook = cls(engine, target)
        try:
            gradebook._create_schema()
        except BaseException:
            engine.dispose()
            raise
        log.info("opened gradebook %s (%s)", target.name, backend)
        return gradebook

    @property
    def name(self) -> str:
        """The path or URL this gradebook was opened with, password masked."""
        return self._target.name

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for reports that query the tables directly."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def is_graded(self, rubric: str, learner_id: str, sha256: str) -> bool:
        """Return whether this submission has a stored result under the rubric, other than a harness_error."""
        sha256 = _check_sha256(sha256)
        query = sa.select(
            sa.exists().where(
                ResultRow.rubric == rubric,
                ResultRow.learner_id == learner_id,
                ResultRow.sha256 == sha256,
                ResultRow.status.not_in(RETRIED_STATUSES),
            )
        )
        failure = f"Cannot check learner {learner_id!r} under rubric {rubric!r} in the gradebook {self.name}"
        with self._reading(failure) as connection:
            return bool(connection.execute(query).scalar_one())

    def record(self, rubric: str, learner_id: str, sha256: str, original_name: str, result: GradeResult,
               output_dir: Path, seconds: float) -> None:
        """Store one submission's result in its own committed transaction, replacing an earlier grade of it.

        Raises ValueError for an invalid argument and GradebookError when the database write fails.
        """
        _check_identifier("rubric", rubric)
        _check_identifier("learner_id", learner_id)
        sha256 = _check_sha256(sha256)
        if result.rubric is not None and result.rubric.name != rubric:
            raise ValueError(f"the result was graded with rubric {result.rubric.name!r}, not {rubric!r}")
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds must be a finite number of at least 0, not {seconds!r}")

        values = {
            "rubric": rubric,
            "rubric_version": result.rubric.version if result.rubric is not None else None,
            "learner_id": learner_id,
            "sha256": sha256,
            "original_name": _storable_text(original_name),
            "status": result.status,
            "score": _finite_or_none(result.score),
            "max_score": _finite_or_none(result.max_score),
            "task_scores": {
                task.id: {"score": _finite_or_none(task.score), "max_score": _finite_or_none(task.max_score)}
                for task in result.tasks
            },
            "result_json": json.dumps(result.model_dump(mode="json"), ensure_ascii=True),
            "output_dir": _storable_text(str(output_dir)),
            "seconds": float(seconds),
            "graded_at": datetime.now(UTC),
            "harness_version": __version__,
        }
        statement = self._upsert(values)

        failure = (f"Cannot store the result of learner {learner_id!r} ({sha256[:12]}) under rubric {rubric!r} "
                   f"in the gradebook {self.name}")
        with self._writing(failure) as connection:
            connection.execute(statement)
        log.debug("recorded %s for learner %s (%s) under rubric %s: %s", result.status, learner_id, sha256[:12],
                  rubric, _score_text(result))

    def get(self, rubric: str, learner_id: str, sha256: str) -> StoredResult | None:
        """Return the stored result of one submission, or None where it has none."""
        sha256 = _check_sha256(sha256)
        query = sa.select(ResultRow).where(
            ResultRow.rubric == rubric, ResultRow.learner_id == learner_id, ResultRow.sha256 == sha256
        )
        failure = f"Cannot read learner {learner_id!r} under rubric {rubric!r} in the gradebook {self.name}"
        with self._session(failure) as session:
            row = session.scalars(query).one_or_none()
            return None if row is None else self._stored(row)

    def latest(self, rubric: str) -> list[StoredResult]:
        """Return each learner's newest result under the rubric (newest graded_at), sorted by learner id.

        NOTE: the newest graded_at wins, so regrading a learner's older notebook after a newer one makes
        the older notebook the learner's latest result.
        """
        ranked = (
            sa.select(
                ResultRow,
                sa.func.row_number()
                .over(partition_by=ResultRow.learner_id, order_by=(ResultRow.graded_at.desc(), ResultRow.id.desc()))
                .label("rank"),
            )
            .where(ResultRow.rubric == rubric)
            .subquery()
        )
        newest = aliased(ResultRow, ranked)
        query = sa.select(newest).where(ranked.c.rank == 1)

        with self._session(f"Cannot read the results under rubric {rubric!r} in the gradebook {self.name}") as session:
            stored = [self._stored(row) for row in session.scalars(query)]
        # Sorted here, not in SQL, because PostgreSQL collations order text differently from SQLite.
        return sorted(stored, key=lambda item: item.learner_id)

    @contextlib.contextmanager
    def batch_lock(self, rubric: str) -> Iterator[None]:
        """Hold the lock that lets one batch process at a time grade `rubric` into this gradebook.

        SQLite locks the whole gradebook file, while PostgreSQL locks one rubric in the database. The
        operating system or the server releases the lock when the holding process dies, SIGKILL included.
        For SQLite that waits for children forked inside the lock too, because they share its descriptor.
        Raises GradebookBusy, naming the holder, when another process holds it.
        """
        if self._target.url.get_backend_name() == "sqlite":
            lock = self._sqlite_batch_lock(rubric)
        else:
            lock = self._postgres_batch_lock(rubric)
        with lock:
            yield

    @contextlib.contextmanager
    def _sqlite_batch_lock(self, rubric: str) -> Iterator[None]:
        lock_path = Path(f"{self._target.url.database}.lock")
        try:
            # os.open makes the descriptor non-inheritable, so kernels and tools that the batch starts
            # with exec do not keep the lock alive after the batch dies.
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise GradebookError(
                f"Cannot create the lock file {lock_path} of the gradebook {self.name}: {error.strerror}. "
                "Make its folder writable, or pass another --gradebook."
            ) from None

        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_lock_holder(descriptor)
                raise GradebookBusy(
                    f"The gradebook {self.name} is in use by another batch ({_describe_holder(holder)}, "
                    f"lock file {lock_path}). Wait for that batch to finish, or pass another --gradebook.",
                    self.name, holder.get("pid"), holder.get("host"),
                ) from None

            # The holder's identity goes into the file, for the error of the next process that fails to lock.
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "rubric": rubric,
                      "since": datetime.now(UTC).isoformat(timespec="seconds")}
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, json.dumps(holder).encode(), 0)
            log.info("took the batch lock of gradebook %s for rubric %s", self.name, rubric)
            try:
                yield
            finally:
                os.ftruncate(descriptor, 0)
                log.info("released the batch lock of gradebook %s", self.name)
        finally:
            # Closing the descriptor releases the flock.
            os.close(descriptor)

    @contextlib.contextmanager
    def _postgres_batch_lock(self, rubric: str) -> Iterator[None]:
        key = _advisory_key(rubric)
        failure = f"Cannot take the batch lock for rubric {rubric!r} in the gradebook {self.name}"
        # NOTE: the lock lives as long as this one connection. If the server drops the connection while
        # the batch runs, the lock is gone and another batch can start, and this code does not notice.
        try:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except exc.DBAPIError as error:
            raise self._database_error(failure, error) from None

        try:
            try:
                # application_name shows this process's pid and host to a process that fails to lock (63 bytes max).
                application_name = f"adgrade batch {os.getpid()}@{socket.gethostname()}"[:63]
                connection.execute(sa.select(sa.func.set_config("application_name", application_name, False)))
                acquired = connection.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar_one()
                holder = {} if acquired else _postgres_lock_holder(connection, key)
            except exc.DBAPIError as error:
                raise self._database_error(failure, error) from None
            if not acquired:
                raise GradebookBusy(
                    f"The gradebook {self.name} is in use: another batch is grading rubric {rubric!r} into it "
                    f"({_describe_holder(holder)}). Wait for that batch to finish, or pass another --gradebook.",
                    self.name, holder.get("pid"), holder.get("host"),
                )

            log.info("took the batch lock of gradebook %s for rubric %s", self.name, rubric)
            try:
                yield
            finally:
                try:
                    connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                except exc.DBAPIError as error:
                    # Closing the connection below ends the session, which releases the lock anyway.
                    log.warning("could not release the batch lock of gradebook %s: %s", self.name,
                                _redact(_driver_message(error), self._target))
                log.info("released the batch lock of gradebook %s", self.name)
        finally:
            # The session's application_name was changed, so the connection is discarded, not pooled.
            connection.invalidate()
            connection.close()

    def _create_schema(self) -> None:
        is_postgres = self._target.url.get_backend_name() == "postgresql"
        info_table = GradebookInfo.__tablename__
        with self._writing(f"Cannot open the gradebook {self.name}", fail_hint=_open_hint) as connection:
            if is_postgres:
                # DDL is transactional in PostgreSQL, so this lock serializes concurrent first opens.
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
            tables = set(sa.inspect(connection).get_table_names())
            # A SQLite file belongs to one program, so any table without ours marks another program's file.
            # A PostgreSQL database may hold other programs' tables beside a gradebook.
            if is_postgres:
                foreign = ResultRow.__tablename__ in tables and info_table not in tables
            else:
                foreign = bool(tables) and info_table not in tables
            if foreign:
                raise GradebookError(
                    f"Cannot open the gradebook {self.name}: the database is not an adgrade gradebook "
                    f"(it has the tables {', '.join(sorted(tables))} but no {info_table}). Pass the path or "
                    "URL of an existing gradebook, or of a new file or empty database."
                )

            Base.metadata.create_all(connection)
            version = connection.execute(
                sa.select(GradebookInfo.value).where(GradebookInfo.key == "schema_version")
            ).scalar_one_or_none()
            if version is None:
                connection.execute(sa.insert(GradebookInfo).values(key="schema_version", value=str(SCHEMA_VERSION)))
            elif version != str(SCHEMA_VERSION):
                raise GradebookError(
                    f"Cannot open the gradebook {self.name}: it has schema version {version}, and this adgrade "
                    f"({__version__}) reads version {SCHEMA_VERSION}. Use the adgrade release that wrote it."
                )

    def _upsert(self, values: dict[str, Any]) -> sa.Insert:
        dialect = postgresql if self._target.url.get_backend_name() == "postgresql" else sqlite
        insert = dialect.insert(ResultRow).values(**values)
        key = ("rubric", "learner_id", "sha256")
        return insert.on_conflict_do_update(
            index_elements=list(key),
            set_={column: insert.excluded[column] for column in values if column not in key},
        )

    @contextlib.contextmanager
    def _writing(self, failure: str, fail_hint: HintFunction | None = None) -> Iterator[Connection]:
        """Run one committed transaction. In SQLite it takes the write lock at BEGIN (BEGIN IMMEDIATE)."""
        try:
            with self._engine.connect() as connection:
                connection.execution_options(sqlite_begin="IMMEDIATE")
                with connection.begin():
                    yield connection
        except exc.DBAPIError as error:
            raise self._database_error(failure, error, fail_hint) from None

    @contextlib.contextmanager
    def _reading(self, failure: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection:
                yield connection
        except exc.DBAPIError as error:
            raise self._database_error(failure, error) from None

    @contextlib.contextmanager
    def _session(self, failure: str) -> Iterator[Session]:
        try:
            with Session(self._engine) as session:
                yield session
        except exc.DBAPIError as error:
            raise self._database_error(failure, error) from None

    def _database_error(self, failure: str, error: exc.DBAPIError,
                        fail_hint: HintFunction | None = None) -> GradebookError:
        """Turn a driver error into a GradebookError: `failure` (what failed, where), the driver's reason, the fix."""
        message = _redact(_driver_message(error), self._target)
        hint = (fail_hint or _access_hint)(self._target, message)
        return GradebookError(f"{failure}: {_as_sentence(message)} {hint}")

    def _stored(self, row: ResultRow) -> StoredResult:
        try:
            result = GradeResult.model_validate(json.loads(row.result_json))
        except ValueError as error:
            raise GradebookError(
                f"The gradebook {self.name} has an unreadable result for learner {row.learner_id!r} "
                f"({row.sha256[:12]}) under rubric {row.rubric!r}: {error}. Regrade that submission."
            ) from None
        graded_at = row.graded_at
        # SQLite returns the stored UTC time without a zone; PostgreSQL returns it in the session's zone.
        graded_at = graded_at.replace(tzinfo=UTC) if graded_at.tzinfo is None else graded_at.astimezone(UTC)
        return StoredResult(
            rubric=row.rubric,
            rubric_version=row.rubric_version,
            learner_id=row.learner_id,
            sha256=row.sha256,
            original_name=row.original_name,
            status=row.status,
            score=row.score,
            max_score=row.max_score,
            task_scores=row.task_scores,
            output_dir=Path(row.output_dir),
            seconds=row.seconds,
            graded_at=graded_at,
            harness_version=row.harness_version,
            result=result,
        )


def _parse_target(url_or_path: str | Path) -> _Target:
    text = str(url_or_path)
    if isinstance(url_or_path, Path) or "://" not in text:
        if not text.strip():
            raise GradebookError(f"The gradebook path is empty. Use {URL_EXAMPLES}.")
        # Resolved, so that every name of one file (symbolic links included) maps to one lock file.
        path = Path(text).expanduser().resolve()
        return _Target(url=URL.create("sqlite+pysqlite", database=str(path)), name=text, from_path=True)

    try:
        url = make_url(text)
    except (exc.ArgumentError, ValueError):
        # The parser's own message repeats the whole string, password included, so it is not shown.
        raise GradebookError(f"Invalid gradebook URL {_mask_url_text(text)}. Use {URL_EXAMPLES}.") from None

    # A bare postgresql:// means psycopg2 to SQLAlchemy, which the batch extra does not install.
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    name = _display_name(url)

    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise GradebookError(f"Unsupported gradebook URL {name}: adgrade stores gradebooks in SQLite or "
                             f"PostgreSQL only. Use {URL_EXAMPLES}.")
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise GradebookError(f"Unsupported gradebook URL {name}: a gradebook must be a file, because an "
                                 "in-memory database is lost when the batch ends. Use a path such as grades.db.")
        if url.database.startswith("file:"):
            raise GradebookError(f"Unsupported gradebook URL {name}: SQLite URI file names (file:...) are not "
                                 "supported, because the batch lock needs a plain file path. Use a path such as "
                                 "grades.db.")
        url = url.set(database=str(Path(url.database).expanduser().resolve()))
    return _Target(url=url, name=name, from_path=False)


def _prepare_sqlite_folder(target: _Target) -> None:
    folder = Path(target.url.database).parent
    if target.from_path:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise GradebookError(f"Cannot create the folder {folder} for the gradebook {target.name}: "
                                 f"{error.strerror}. Pass a path in a writable folder.") from None
    elif not folder.is_dir():
        raise GradebookError(f"Cannot open the gradebook {target.name}: the folder {folder} does not exist. "
                             "Create it, or pass the gradebook as a plain path, whose folders are created.")


def _create_engine(target: _Target) -> Engine:
    url = target.url
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        _configure_sqlite(engine, target)
        return engine

    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_SECONDS
    if "application_name" not in url.query:
        connect_args["application_name"] = "adgrade"
    # pool_pre_ping replaces connections that a server restart closed during a long batch.
    return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)


def _configure_sqlite(engine: Engine, target: _Target) -> None:
    busy_timeout_ms = int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # The sqlite3 module's own transaction handling is switched off so that the "begin" hook below
        # decides when and how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            # WAL lets readers (reports, a status page) work while a batch writes.
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        finally:
            cursor.close()
        if mode.lower() != "wal":
            log.warning("gradebook %s: SQLite kept journal mode %s instead of WAL", target.name, mode)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock at BEGIN, where the busy timeout applies. A deferred transaction
        # that reads before it writes can instead fail at once with "database is locked".
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def _advisory_key(rubric: str) -> int:
    """Return the signed 64-bit advisory lock key of a rubric, namespaced to adgrade."""
    digest = hashlib.sha256(f"adgrade.batch:{rubric}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres_lock_holder(connection: Connection, key: int) -> dict[str, Any]:
    """Find the session that holds the advisory lock `key`, and the pid and host its application_name carries."""
    # pg_locks shows a bigint advisory key as two 32-bit halves: classid (high) and objid (low), objsubid 1.
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    row = connection.execute(
        sa.text(
            "SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr, a.backend_start "
            "FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = :high AND l.objid::bigint = :low"
        ),
        {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF},
    ).first()
    if row is None:
        # The holder finished between the failed attempt and this query.
        return {}
    holder: dict[str, Any] = {"server_pid": row.pid, "client_addr": row.client_addr, "since": row.backend_start}
    match = re.fullmatch(r"adgrade batch (\d+)@(.*)", row.application_name or "")
    if match:
        holder["pid"] = int(match.group(1))
        holder["host"] = match.group(2) or None
    return holder


def _read_lock_holder(descriptor: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0) or b"{}")
    except (OSError, ValueError):
        # The holder may be writing the file right now.
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe_holder(holder: dict[str, Any]) -> str:
    """Describe a lock holder for a message, e.g. "process 4242 on host grader-1, grading rubric 'x' since ..."."""
    if holder.get("pid"):
        identity = f"process {holder['pid']}" + (f" on host {holder['host']}" if holder.get("host") else "")
    elif holder.get("server_pid"):
        identity = f"PostgreSQL session {holder['server_pid']}"
        identity += f" from {holder['client_addr']}" if holder.get("client_addr") else ""
    else:
        identity = "holder unknown"

    details = []
    if holder.get("rubric"):
        details.append(f"grading rubric {holder['rubric']!r}")
    since = holder.get("since")
    if since:
        details.append(f"since {since.isoformat(timespec='seconds') if isinstance(since, datetime) else since}")
    return ", ".join([identity, " ".join(details)]) if details else identity


def _driver_message(error: exc.DBAPIError) -> str:
    """Return the database driver's message without SQLAlchemy's SQL echo and documentation link."""
    lines = [line.strip() for line in str(error.orig).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(error.orig).__name__


def _as_sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def _open_hint(target: _Target, message: str) -> str:
    lowered = message.lower()
    if "file is not a database" in lowered:
        return ("The file is not a SQLite database, so it was left unchanged. Pass the path of an existing "
                "gradebook or of a new file.")
    if "password authentication failed" in lowered:
        return "Check the user name and password in the URL."
    if re.search(r'database ".*" does not exist', lowered):
        return f"Create the database (createdb {target.url.database}) or correct its name in the URL."
    return _access_hint(target, message)


def _access_hint(target: _Target, message: str) -> str:
    lowered = message.lower()
    if target.url.get_backend_name() == "sqlite":
        if "locked" in lowered or "busy" in lowered:
            return (f"Another process kept the gradebook locked beyond the busy timeout of "
                    f"{SQLITE_BUSY_TIMEOUT_SECONDS:g} seconds. Run the command again once that process is done.")
        return (f"Check that {target.url.database} is a SQLite file in a folder that this user can write, "
                "on a disk with free space.")
    if "permission denied" in lowered:
        return ("Grant the URL's user the privileges it lacks (CREATE on the schema for a new gradebook; "
                "SELECT, INSERT and UPDATE on the adgrade tables), or use another user.")
    return (f"Check that the PostgreSQL server at {target.url.host or 'the default socket'}"
            f"{':' + str(target.url.port) if target.url.port else ''} is running and accepts connections, and "
            "that the URL's user, password and database name are right.")


def _display_name(url: URL) -> str:
    """Render a URL for messages with its password masked, both after the user name and in ?password=."""
    if "password" in url.query:
        url = url.set(query={**url.query, "password": "***"})
    return url.render_as_string(hide_password=True).replace("password=%2A%2A%2A", "password=***")


def _redact(text: str, target: _Target) -> str:
    """Mask the URL's passwords wherever they appear in `text`, as written and percent-encoded."""
    query_password = target.url.query.get("password")
    for password in (target.url.password, query_password if isinstance(query_password, str) else None):
        if not password:
            continue
        password = str(password)
        for form in {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)}:
            text = text.replace(form, "***")
    return text


def _mask_url_text(text: str) -> str:
    """Mask the password of a URL string that SQLAlchemy cannot parse, up to the last '@' and in ?password=."""
    text = re.sub(r"(://[^:/@]*:).*@", r"\1***@", text)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", text)


def _check_identifier(field: str, value: str) -> None:
    if not value:
        raise ValueError(f"{field} must not be empty")
    if _storable_text(value) != value:
        raise ValueError(f"{field} {value!r} contains a NUL character or text that UTF-8 cannot encode")


def _check_sha256(sha256: str) -> str:
    normalized = sha256.lower()
    if not SHA256_PATTERN.fullmatch(normalized):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, not {sha256!r}")
    return normalized


def _storable_text(text: str) -> str:
    """Escape what PostgreSQL text cannot store (NUL) and what UTF-8 cannot encode (lone surrogates)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _score_text(result: GradeResult) -> str:
    return f"{result.score:g}/{result.max_score:g}"
