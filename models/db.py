"""The database: engine, sessions, migrations and the few guarantees the
tables rely on (the append-only event log, atomic counters)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from models.calls import Counter, Event

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets WAL (readers do not block the writer),
    enforced foreign keys and a busy timeout so a second connection waits for
    the writer instead of failing at once."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
                # With WAL, NORMAL syncs at checkpoints, not at every commit:
                # a commit survives a crash of the process (what a worker
                # risks), only a power loss can undo the last ones.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        _WriterTurn().watch(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE")


class _WriterTurn:
    """SQLite's one writer, handed over in the process without polling.

    SQLite lets one transaction write at a time; a second writer is told
    "busy" and its busy handler sleeps and tries again, backing off to
    100 ms sleeps — with the inbox, the outbox and the pace writing from
    dozens of threads, most of a turn's time went in those sleeps (the
    Telegram throughput benchmark measured 91 ms per update in BEGIN
    IMMEDIATE and 52 ms in UPDATE). So a connection's first write in a
    transaction first takes this lock — the very lock SQLite takes at that
    point, so nothing that works without it can deadlock with it — and its
    commit or rollback hands it to the next writer at once. Other processes
    still meet SQLite's own lock and busy timeout. Reads never wait here
    (WAL). After the busy timeout a writer goes ahead and lets SQLite
    decide, as before."""

    def __init__(self, timeout: float = 30.0) -> None:
        self._lock = threading.Lock()
        self._timeout = timeout

    def watch(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "commit", self._done)
        event.listen(engine, "rollback", self._done)

    def _before(self, connection: sa.Connection, _cursor: Any, statement: str,
                *_: Any) -> None:
        if "youhu_writer" in connection.info:
            return
        if statement.lstrip()[:15].upper().startswith(_WRITES):
            connection.info["youhu_writer"] = self._lock.acquire(timeout=self._timeout)

    def _done(self, connection: sa.Connection) -> None:
        if connection.info.pop("youhu_writer", False):
            self._lock.release()


# The connection of an `atomic()` block running in this thread (or task).
_ambient: ContextVar[sa.Connection | None] = ContextVar("youhu_ambient_transaction",
                                                        default=None)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: the caller commits; anything unfinished is rolled back.
    Objects stay readable after commit so results can be returned.

    Inside `atomic(engine)` the unit of work is a savepoint of that block's
    transaction: its commit keeps its changes for the block's commit, its
    rollback undoes only its own changes."""
    connection = _ambient.get()
    if connection is not None and connection.engine is engine:
        with Session(bind=connection, expire_on_commit=False,
                     join_transaction_mode="create_savepoint") as session:
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
        return
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """A session for a use case that reads, checks, then writes: its
    transaction holds the database's write lock from its first statement, so
    two units of work on one call run one after the other and the second sees
    what the first wrote.

    On SQLite the transaction starts with `BEGIN IMMEDIATE` (pysqlite would
    otherwise begin only at the first write, after the checks: two threads
    would both pass them); a second writer waits up to the busy timeout. On
    PostgreSQL the use case locks the rows it decides on (`SELECT … FOR
    UPDATE`), so units of work on different calls still run side by side.
    The caller commits, as with `session_scope`."""
    inside_atomic = (ambient := _ambient.get()) is not None and ambient.engine is engine
    with session_scope(engine) as session:
        # Inside `atomic()` the block's transaction already began IMMEDIATE:
        # this unit of work is a savepoint of it and holds the lock already.
        if engine.dialect.name == "sqlite" and not inside_atomic:
            # pysqlite (legacy transaction control) sees the open transaction
            # and issues no BEGIN of its own; commit() and rollback() end it.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        yield session


@contextmanager
def atomic(engine: Engine) -> Iterator[sa.Connection]:
    """One transaction around everything done inside (in this thread): every
    `session_scope` joins it, so several use cases — and the record that an
    inbox update was handled — commit together or not at all. The block
    commits when it ends without an exception.

    On SQLite the transaction is `BEGIN IMMEDIATE` with pysqlite's own
    transaction handling switched off for it, so savepoints work (pysqlite
    would otherwise commit them away) and the writer lock is taken at once."""
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        raw: Any = connection.connection.dbapi_connection if sqlite else None
        level = raw.isolation_level if sqlite else None
        if sqlite:
            raw.isolation_level = None
        try:
            with connection.begin():
                if sqlite:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                token = _ambient.set(connection)
                try:
                    yield connection
                finally:
                    _ambient.reset(token)
        finally:
            if sqlite:
                raw.isolation_level = level


def next_counter(session: Session, name: str) -> int:
    """Increment the counter `name` (creating it at 1) and return its new value,
    inside the caller's transaction. One upsert statement, so two workers
    taking the first number of a year at once cannot both insert the row."""
    dialect = session.get_bind().dialect.name
    insert: Any
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the two databases youhu supports
        raise RuntimeError(f"unsupported database {dialect}")
    table = Counter.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=[table.c.name],
                               set_={"value": table.c.value + 1})
        .returning(table.c.value)
    )
    return int(session.execute(statement).scalar_one())


@event.listens_for(OrmSession, "before_flush")
def _event_log_is_append_only(session: OrmSession, _context: Any, _instances: Any) -> None:
    """The event log is evidence (it feeds accountability dossiers): refuse any
    change to a written event in the ORM, so a bug cannot rewrite history."""
    for instance in list(session.dirty) + list(session.deleted):
        if isinstance(instance, Event) and session.is_modified(instance):
            raise RuntimeError("the event log is append-only")
        if isinstance(instance, Event) and instance in session.deleted:
            raise RuntimeError("the event log is append-only")


def alembic_config(url: str) -> Any:
    """The Alembic configuration for this project, built in code so no
    alembic.ini has to sit next to the working directory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    """Create the database or bring it to the newest schema."""
    from alembic import command

    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def schema_is_current(url: str) -> bool:
    """Whether the database exists and is at the newest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head
    finally:
        engine.dispose()
