"""The database helpers: counters under concurrency, the append-only log,
SQLite's pragmas."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models import Counter, next_counter
from tests.conftest import POSTGRES_URL


def test_counters_count_from_one(engine: Engine) -> None:
    with Session(engine) as session:
        assert [next_counter(session, "call-2031") for _ in range(3)] == [1, 2, 3]
        assert next_counter(session, "call-2032") == 1
        session.commit()


@pytest.mark.skipif(not POSTGRES_URL, reason="concurrent writers need PostgreSQL")
def test_two_workers_take_the_first_number_of_a_year_at_once(engine: Engine) -> None:
    """The second waits for the first instead of inserting the row again."""
    got: list[int] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with Session(engine) as session:
                got.append(next_counter(session, "call-2040"))
                session.commit()
        except BaseException as error:  # surfaced below
            errors.append(error)

    with Session(engine) as session:
        got.append(next_counter(session, "call-2040"))
        worker = threading.Thread(target=second)
        worker.start()
        time.sleep(0.3)  # let the second worker reach the row (ordering, not timing)
        session.commit()
    worker.join()
    assert not errors and sorted(got) == [1, 2]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1


def test_units_of_work_inside_atomic_commit_together(engine: Engine) -> None:
    """Inside `atomic`, each unit of work is a savepoint: one that fails
    undoes only itself; the block commits all or (on an error) nothing."""
    from models import atomic, session_scope

    def counter(name: str) -> int:
        with Session(engine) as session:
            row = session.get(Counter, name)
            return 0 if row is None else row.value

    with atomic(engine):
        with session_scope(engine) as session:
            next_counter(session, "kept")
            session.commit()
        with pytest.raises(RuntimeError), session_scope(engine) as session:
            next_counter(session, "undone")
            session.flush()
            raise RuntimeError("a refused use case")
        assert counter("kept") == 0  # another connection: not committed yet
    assert (counter("kept"), counter("undone")) == (1, 0)
    with pytest.raises(RuntimeError), atomic(engine):
        with session_scope(engine) as session:
            next_counter(session, "kept")
            session.commit()
        raise RuntimeError("the handler failed after its effects")
    assert counter("kept") == 1  # all of the block undone
