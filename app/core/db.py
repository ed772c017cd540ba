"""Database engine settings, the write transaction used by operations, and inserts sent together."""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Insert, Table, bindparam, event, func, insert, select, text
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
    if engine.dialect.name == "postgresql":
        _cache_batch_statements()
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


def _cache_batch_statements() -> None:
    """Raise the size up to which psycopg caches its conversion of a statement, for the registration batch.

    psycopg converts each statement's ``%(name)s`` placeholders to ``$n`` with
    a regular expression, and caches the result only for statements of at most
    4,096 bytes and 50 parameters (``psycopg._queries``, psycopg 3.3.9). A
    registration's batch statement has 3 to 7 KB and 60 to 140 parameters.
    Each file adds about 430 bytes and 10 parameters, up to 20 files by
    default. So the statement was converted again at every registration,
    which took about 5 % of the client's CPU (two writers at 1M mails). The
    cache keeps 128 statements. NOTE: these names are psycopg's internals; after an
    upgrade, tests/integration/test_insert_batch.py checks that they still exist.
    """
    import psycopg._queries

    psycopg._queries.MAX_CACHED_STATEMENT_LENGTH = max(psycopg._queries.MAX_CACHED_STATEMENT_LENGTH, 32768)
    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = max(psycopg._queries.MAX_CACHED_STATEMENT_PARAMS, 512)


def is_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run the block in one transaction that commits on success, rolls back on error.

    On SQLite, any read transaction the request opened before is ended first,
    so that the write lock is taken at the start (BEGIN IMMEDIATE) and waits
    for other writers instead of failing. On PostgreSQL, whose statements each
    read the rows committed when they start, the block goes on in a read
    transaction the request opened: ending it and beginning another were two
    more round trips. Rows the request flushed before then commit or roll
    back with the block, as operations are the only writers.
    """
    session = db.session()
    if session.in_transaction():
        if _continuable(session):
            with _ending_transaction(session):
                yield
            return
        session.commit()
    token = _begin_immediate.set(True)
    try:
        with session.begin():
            yield
    finally:
        _begin_immediate.reset(token)


def _continuable(session: Any) -> bool:
    """Return whether a write may go on in the session's open transaction: PostgreSQL, nothing pending, no failed statement."""
    if is_sqlite() or not session.is_active or session.new or session.dirty or session.deleted:
        return False
    from psycopg.pq import TransactionStatus

    status = session.connection().connection.dbapi_connection.info.transaction_status
    return bool(status == TransactionStatus.INTRANS)


@contextmanager
def _ending_transaction(session: Any) -> Iterator[None]:
    """Run the block in the session's open transaction, then commit it, or roll it back on error."""
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


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


@functools.cache
def _insert_into(table: Table) -> Insert:
    # Built once per table, so that SQLAlchemy finds it in its statement cache.
    return insert(table)


class InsertBatch:
    """Rows of several tables written by one operation, sent to PostgreSQL in one statement.

    Each statement is a round trip to the server. Registration writes rows to
    up to eleven tables between taking its registration number and the commit,
    and concurrent registrations wait for that number's counter. On PostgreSQL
    ``add()`` keeps the rows and ``execute()`` inserts them all with one
    statement made of data-modifying WITH queries. Foreign keys are checked at
    the end of that statement, so its rows may reference a mail it inserts. On
    other databases ``add()`` inserts at once, one statement per call, and
    ``execute()`` has nothing left to do.

    Until ``execute()``, the kept rows are not in the database: the caller
    runs the operation under ``db.session.no_autoflush``, so that no ORM
    object referencing them is flushed first, and reads none of them back.
    """

    def __init__(self) -> None:
        self.keeps_rows = db.session.get_bind().dialect.name == "postgresql"
        # Rows of a table, or the parameters of a statement written by a function of the parameter prefix.
        self._parts: list[tuple[Table | Callable[[str], str], list[dict[str, Any]]]] = []

    def reserve_id(
        self, table: Table, *values: Any, reuse_plans: bool = False, child_table: Table | None = None, children: int = 0,
    ) -> Reserved | None:
        """Return the next id of ``table``'s serial primary key when rows are kept, None when ``add()`` inserts at once.

        The scalar subqueries ``values`` are read in the same round trip and
        returned with the id, and so are ``children`` ids of ``child_table``'s
        serial key, in ascending order. With ``reuse_plans``, the same
        statement lets PostgreSQL keep one plan for each prepared statement
        that follows, until the end of the transaction (see ``_reserve_statement``).
        """
        if not self.keeps_rows:
            return None
        child_name = child_table.name if child_table is not None and children else None
        statement = _reserve_statement(table.name, values, reuse_plans, child_name)
        row = db.session.execute(statement, {"children": children} if child_name else {}).one()
        child_ids = sorted(row[len(values) + 1]) if child_name else []
        return Reserved(int(row[0]), tuple(row[1 : len(values) + 1]), child_ids)

    def add(self, table: Table, rows: Iterable[dict[str, Any]]) -> None:
        """Insert ``rows`` into ``table``, now or at ``execute()``. The rows of one call have the same keys."""
        rows = list(rows)
        if not rows:
            return
        if not self.keeps_rows:
            db.session.execute(_insert_into(table), rows)
            return
        self._parts.append((table, _with_defaults(table, rows)))

    def add_statement(self, statement: Callable[[str], str], parameters: dict[str, Any]) -> None:
        """Run a data-modifying statement with the kept rows, at ``execute()``; only when rows are kept.

        ``statement(prefix)`` returns its SQL, in which each parameter name
        is written after ``prefix``. It must be a module-level function, so
        that statements of the same shape share one compiled statement.
        """
        if not self.keeps_rows:
            raise RuntimeError("InsertBatch.add_statement() needs a batch that keeps rows (PostgreSQL)")
        self._parts.append((statement, [parameters]))

    def execute(self) -> None:
        """Insert the kept rows and run the kept statements."""
        if not self._parts:
            return
        shape = tuple((part, tuple(rows[0]), len(rows)) for part, rows in self._parts)
        parameters = {
            _parameter_name(position, number, key): row[key]
            for position, (_part, keys, _count) in enumerate(shape)
            for number, row in enumerate(self._parts[position][1])
            for key in keys
        }
        self._parts = []
        db.session.execute(_batch_statement(shape), parameters)


class Reserved(NamedTuple):
    """Result of ``InsertBatch.reserve_id()``: the id, the values read with it, and the child rows' ids."""

    id: int
    values: tuple[Any, ...]
    child_ids: list[int]


@functools.lru_cache(maxsize=64)
def _reserve_statement(table_name: str, values: tuple[Any, ...], reuse_plans: bool, child_name: str | None) -> Any:
    """Build the statement of ``InsertBatch.reserve_id()``, once per table and values.

    Built at each registration, it cost more client CPU than the round trip it saved.

    The connections plan every statement anew (``plan_cache_mode`` in
    app/__init__.py) because a generic plan of a basket query can be a hundred
    times slower for some users. The batch's inserts, the registration-number
    upsert and the commit's primary-key reads have one plan whatever their
    values. Planning them at each registration cost about a fifth of
    PostgreSQL's CPU: 2.1 to 2.3 ms per registration against 1.7 to 1.8 ms
    with ``reuse_plans``, one writer at 1M mails. ``set_config(..., true)``
    ends with the transaction, so the request's later reads are planned anew.
    """
    columns = [func.nextval(func.pg_get_serial_sequence(table_name, "id")), *values]
    if child_name is not None:
        # One nextval() per row of the series: ``children`` ids, sorted by reserve_id().
        child_ids = select(func.array_agg(func.nextval(func.pg_get_serial_sequence(child_name, "id"))))
        columns.append(child_ids.select_from(func.generate_series(1, bindparam("children"))).scalar_subquery())
    if reuse_plans:
        columns.append(func.set_config("plan_cache_mode", "auto", True))
    return select(*columns)


def _parameter_name(position: int, number: int, key: str) -> str:
    return f"{_parameter_prefix(position, number)}{key}"


def _parameter_prefix(position: int, number: int) -> str:
    return f"p{position}_{number}_"


@functools.lru_cache(maxsize=256)
def _batch_statement(shape: tuple[tuple[Table | Callable[[str], str], tuple[str, ...], int], ...]) -> Insert:
    """Build the statement of InsertBatch.execute() for the tables, columns and row counts of ``shape``.

    Built once per shape with bound parameters, one INSERT per row, so that
    SQLAlchemy compiles it once and then finds it in its cache. SQLAlchemy
    caches no INSERT of several rows in one VALUES. Compiled at every
    registration, the statement cost more time than the round trips it saved.
    The last row inserted is the main statement, every other part a WITH query.
    """
    inserts: list[Insert] = []
    others: list[Any] = []
    for position, (part, keys, count) in enumerate(shape):
        if not isinstance(part, Table):
            others.append(text(part(_parameter_prefix(position, 0))).columns())
            continue
        for number in range(count):
            inserts.append(insert(part).values({
                key: bindparam(_parameter_name(position, number, key), type_=part.c[key].type) for key in keys
            }))
    if not inserts:
        raise ValueError("an InsertBatch needs at least one row to insert")
    *first, statement = inserts
    for position, part in enumerate([*first, *others]):
        statement = statement.add_cte(part.cte(f"part_{position}"))
    return statement


def _with_defaults(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return ``rows`` with the Python-side default of every column they leave out.

    SQLAlchemy computes those defaults for the rows of the main statement
    only, not for those of a WITH query.
    """
    defaults = {
        column.key: column.default for column in table.columns
        if column.default is not None and column.key not in rows[0] and not column.primary_key
    }
    if not defaults:
        return rows
    completed = []
    for row in rows:
        values = dict(row)
        for key, default in defaults.items():
            # A callable default is wrapped by SQLAlchemy to take the execution context, which ours ignore.
            values[key] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
        completed.append(values)
    return completed
