"""Database engine settings and the write transaction used by operations."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from app.extensions import db

log = logging.getLogger(__name__)

T = TypeVar("T")

# Set while an operation runs, so the next SQLite BEGIN takes the write lock at once.
_begin_immediate: contextvars.ContextVar[bool] = contextvars.ContextVar("begin_immediate", default=False)

SQLITE_RETRIES = 5


def configure_engine(engine: Engine, busy_timeout_seconds: int) -> None:
    """Apply per-connection settings: WAL and a busy timeout on SQLite.

    pysqlite's own transaction handling is disabled so that a writer can start
    with ``BEGIN IMMEDIATE``: a deferred transaction that reads first and writes
    later fails at once with "database is locked" when another writer committed
    in between, which no busy timeout can cure.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _begin_immediate.get() else "BEGIN")


def is_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block in one transaction that commits on success, rolls back on error.

    Any read transaction the request opened before is ended first, so that on
    SQLite the write lock is taken at the start (BEGIN IMMEDIATE) and waits
    for other writers instead of failing.
    """
    session = db.session()
    if session.in_transaction():
        session.commit()
    token = _begin_immediate.set(True)
    try:
        with session.begin():
            yield
    finally:
        _begin_immediate.reset(token)


def run_in_write_transaction(function: Callable[[], T], description: str) -> T:
    """Call ``function`` inside write_transaction(), retrying when SQLite stays locked."""
    for attempt in range(1, SQLITE_RETRIES + 1):
        try:
            with write_transaction():
                return function()
        except OperationalError as exc:
            locked = "database is locked" in str(exc) or "database is busy" in str(exc)
            if not locked or attempt == SQLITE_RETRIES:
                raise
            log.warning("%s: database locked, retry %s of %s", description, attempt, SQLITE_RETRIES)
            db.session.rollback()
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
