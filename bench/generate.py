"""Bulk loader: fill a register with generated mail, far faster than the operation.

``load_mails`` writes the rows that ``app.mail.operations.register_mail``
writes for a mail without attachments (mail, correspondent,
mail_correspondent, history_entry, search_outbox and chrono_counter), with
content from ``app.demo.generator.iter_mails``. It bypasses the operation:
rows are built in Python and inserted in batches, with SQLAlchemy Core
executemany on SQLite and COPY on PostgreSQL. Registration throughput is
therefore measured separately, through the operation itself
(``bench.measure``).

What the loader adds to a fresh registration, so that the register looks
like one a prefecture has used for a year:

- statuses: old mail is mostly closed and recent mail mostly open, about
  20 % open overall (``open_probability``);
- handling departments spread over all demo departments, not only the
  default department of each mail type;
- assignees: demo agents of the handling department or of one of its
  sub-departments, on part of the processed mail;
- a closing time on closed mail, when the mail table has ``closed_at``;
- search outbox rows already marked processed, as after the indexer ran.

Each mail gets only the history entry of its registration: the status
changes that led to its loaded status have none.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.correspondents.models import Correspondent
from app.correspondents.operations import correspondent_values
from app.deadlines.calendar import compute_due_date
from app.demo.cli import TYPE_WEIGHTS, _complete_required_fields, _correspondent_input
from app.demo.generator import iter_mails
from app.demo.users import DEMO_USERS
from app.extensions import db
from app.mail.chrono import format_chrono
from app.mail.fields import clean_field_values
from app.mail.models import ChronoCounter, HistoryEntry, Mail, MailCorrespondent
from app.mail.operations import PARIS, today_in_paris
from app.organisation.models import Department
from app.search.models import OutboxEvent
from app.statistics.counters import invalidate_counters

log = logging.getLogger("bench")

DEFAULT_BATCH_SIZE = 5000
PROGRESS_EVERY = 50_000

# Share of open mail by age: OPEN_SHARE_NEWEST for mail that arrived today,
# falling with a time constant of OPEN_DECAY_DAYS towards OPEN_SHARE_FLOOR
# (files waiting for a document or an opinion). With the generator's arrival
# dates spread evenly over about one year, this gives about 20 % open mail.
OPEN_SHARE_NEWEST = 0.95
OPEN_SHARE_FLOOR = 0.05
OPEN_DECAY_DAYS = 60

OPEN_STATUS_WEIGHTS = {
    "new": 20,
    "to_qualify": 10,
    "in_progress": 40,
    "awaiting_opinion": 12,
    "in_signature_book": 10,
    "to_send": 8,
}
CLOSED_STATUS_WEIGHTS = {"closed": 85, "closed_without_follow_up": 15}
# Statuses of mail that no agent has taken yet, so such mail has no assignee.
UNASSIGNED_STATUSES = {"new", "to_qualify"}
ASSIGNED_SHARE = 0.7

# Share of incoming mail handled by another department than its type's
# default one (redirected mail), and of outgoing and internal mail handled by
# another department than its author's.
OTHER_DEPARTMENT_SHARE = 0.15

MAIL_ROOM_USERNAME = "courrier"


def open_probability(age_days: int) -> float:
    """Return the probability that a mail that arrived ``age_days`` ago is still open."""
    decay = math.exp(-age_days / OPEN_DECAY_DAYS)
    return OPEN_SHARE_FLOOR + (OPEN_SHARE_NEWEST - OPEN_SHARE_FLOOR) * decay


@dataclass(frozen=True)
class _DepartmentRow:
    id: int
    code: str
    path: str
    calendar: str


@dataclass(frozen=True)
class _UserRow:
    id: int
    username: str
    department: _DepartmentRow
    registers_outgoing: bool


@dataclass
class LoadResult:
    """Row counts and duration of one bulk load."""

    mails: int = 0
    open_mails: int = 0
    confidential_mails: int = 0
    correspondents: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    mails_by_department: dict[str, int] = field(default_factory=dict)
    mails_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def mails_per_second(self) -> float:
        return self.mails / self.seconds if self.seconds else 0.0


class _Batch:
    """Rows waiting to be inserted, by table, in foreign-key order."""

    TABLES: tuple[sa.Table, ...] = (
        Correspondent.__table__,  # type: ignore[assignment]
        Mail.__table__,  # type: ignore[assignment]
        MailCorrespondent.__table__,  # type: ignore[assignment]
        HistoryEntry.__table__,  # type: ignore[assignment]
        OutboxEvent.__table__,  # type: ignore[assignment]
    )

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {table.name: [] for table in self.TABLES}
        self.mail_count = 0

    def clear(self) -> None:
        for rows in self.rows.values():
            rows.clear()
        self.mail_count = 0


def _insert_with_core(connection: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    connection.execute(table.insert(), rows)


def _copy_value(value: Any) -> Any:
    # COPY in text format takes JSON documents as their text.
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _insert_with_copy(connection: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    driver_connection = connection.connection.driver_connection
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([_copy_value(row[column]) for column in columns])


class BulkLoader:
    """Build the rows of generated mail and insert them batch by batch.

    Must be used inside an application context whose database has the
    schemas applied and the demo agents created.
    """

    def __init__(self, seed: int, today: date, batch_size: int = DEFAULT_BATCH_SIZE):
        self.configuration: Configuration = current_configuration()
        self.rng = random.Random(seed ^ 0x5EED)
        self.today = today
        self.batch_size = batch_size
        self.now = datetime.now(PARIS)
        self.dialect = db.engine.dialect.name
        self.insert_rows = _insert_with_copy if self.dialect == "postgresql" else _insert_with_core

        self.departments = self._load_departments()
        self.department_list = sorted(self.departments.values(), key=lambda row: row.path)
        self.users = self._load_users()
        self.authors = [user for user in self.users.values() if user.registers_outgoing]
        self.assignees_by_department = {
            department.id: [user for user in self.users.values() if user.department.path.startswith(department.path)]
            for department in self.department_list
        }
        self._check_statuses()
        # Set by the close actions, in versions of the schema that have it.
        self.has_closed_at = "closed_at" in Mail.__table__.c

        self.next_ids = {table.name: self._max_id(table) + 1 for table in _Batch.TABLES}
        self.counters = self._load_counters()
        # Generated correspondents are dicts reused across mails: id(dict) -> row id.
        self.correspondent_ids: dict[int, int] = {}
        self.batch = _Batch()
        self.result = LoadResult(rows={table.name: 0 for table in _Batch.TABLES})

    # --- Reference data -------------------------------------------------------

    def _load_departments(self) -> dict[str, _DepartmentRow]:
        rows = db.session.execute(
            sa.select(Department.id, Department.code, Department.path, Department.calendar)
            .where(Department.active.is_(True))
        )
        return {row.code: _DepartmentRow(row.id, row.code, row.path, row.calendar) for row in rows}

    def _load_users(self) -> dict[str, _UserRow]:
        from flask_appbuilder.security.sqla.models import User

        ids = dict(db.session.execute(sa.select(User.username, User.id)).tuples().all())
        users = {}
        for demo_user in DEMO_USERS:
            if demo_user.username not in ids:
                raise RuntimeError(f"demo user {demo_user.username} not found: create the demo agents first")
            users[demo_user.username] = _UserRow(
                id=ids[demo_user.username],
                username=demo_user.username,
                department=self.departments[demo_user.department],
                registers_outgoing="agent" in demo_user.roles or "manager" in demo_user.roles,
            )
        return users

    def _check_statuses(self) -> None:
        declared = set(self.configuration.statuses)
        missing = sorted((set(OPEN_STATUS_WEIGHTS) | set(CLOSED_STATUS_WEIGHTS)) - declared)
        if missing:
            raise RuntimeError(f"statuses {', '.join(missing)} are not declared in schemas/statuses.yaml")
        wrongly_closed = set(OPEN_STATUS_WEIGHTS) & self.configuration.closed_statuses
        if wrongly_closed:
            raise RuntimeError(f"statuses {', '.join(sorted(wrongly_closed))} are declared closed, expected open")

    @staticmethod
    def _max_id(table: sa.Table) -> int:
        return int(db.session.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one())

    @staticmethod
    def _load_counters() -> dict[tuple[str, int], int]:
        rows = db.session.execute(sa.select(ChronoCounter.category, ChronoCounter.year, ChronoCounter.last_number))
        return {(row.category, row.year): row.last_number for row in rows}

    # --- Row building -------------------------------------------------------------

    def _take_id(self, table_name: str) -> int:
        value = self.next_ids[table_name]
        self.next_ids[table_name] = value + 1
        return value

    def _next_chrono_number(self, category: str, year: int) -> int:
        number = self.counters.get((category, year), 0) + 1
        self.counters[(category, year)] = number
        return number

    def _pick_author(self, category: str) -> _UserRow:
        if category == "incoming":
            return self.users[MAIL_ROOM_USERNAME]
        return self.rng.choice(self.authors)

    def _pick_department(self, category: str, default_code: str | None, author: _UserRow) -> _DepartmentRow:
        if self.rng.random() < OTHER_DEPARTMENT_SHARE:
            return self.rng.choice(self.department_list)
        if category == "incoming":
            if default_code is not None and default_code in self.departments:
                return self.departments[default_code]
            return self.rng.choice(self.department_list)
        return author.department

    def _pick_status(self, age_days: int) -> str:
        if self.rng.random() < open_probability(age_days):
            weights = OPEN_STATUS_WEIGHTS
        else:
            weights = CLOSED_STATUS_WEIGHTS
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def _pick_assignee(self, department: _DepartmentRow, status: str, confidential: bool) -> _UserRow | None:
        candidates = self.assignees_by_department[department.id]
        if not candidates:
            return None
        if confidential or (status not in UNASSIGNED_STATUSES and self.rng.random() < ASSIGNED_SHARE):
            return self.rng.choice(candidates)
        return None

    def _registration_time(self, arrival: date) -> datetime:
        # Demo mail is registered at noon on its arrival day, as `flask demo load` does.
        noon = datetime.combine(arrival, time_of_day(12, 0), tzinfo=PARIS)
        return min(noon, self.now)

    def _closing_time(self, created_at: datetime, due_date: date | None) -> datetime:
        # Closed mail was closed some days after registration, around its due date, never after now.
        days = (due_date - created_at.date()).days if due_date else 10
        delay = timedelta(days=max(0, days) * self.rng.uniform(0.3, 1.2), hours=self.rng.uniform(0, 8))
        return min(created_at + delay, self.now)

    def _correspondent_id(self, generated: dict[str, Any], author: _UserRow, created_at: datetime) -> int | None:
        data = generated.get("correspondent")
        if data is None:
            return None
        known = self.correspondent_ids.get(id(data))
        if known is not None:
            return known
        row_id = self._take_id("correspondent")
        self.correspondent_ids[id(data)] = row_id
        self.batch.rows["correspondent"].append(_correspondent_row(row_id, data, author.id, created_at))
        self.result.correspondents += 1
        return row_id

    def add(self, generated: dict[str, Any]) -> None:
        """Add the rows of one generated mail to the current batch."""
        spec = self.configuration.mail_types[generated["mail_type_id"]]
        arrival: date = generated["arrival_date"]
        created_at = self._registration_time(arrival)
        author = self._pick_author(spec.category)
        department = self._pick_department(spec.category, spec.default_department, author)
        status = self._pick_status((self.today - arrival).days)
        assignee = self._pick_assignee(department, status, bool(generated["confidential"]))
        confidential = bool(generated["confidential"]) and assignee is not None

        completed = _complete_required_fields(spec, generated["fields"], arrival)
        field_values, errors = clean_field_values(spec, completed, "fr")
        if errors:
            raise ValueError(f"generated fields of a {spec.id} mail are invalid: {errors}")
        due_date = None
        if spec.delay is not None:
            due_date = compute_due_date(arrival, spec.delay.days, spec.delay.unit, department.calendar)

        number = self._next_chrono_number(spec.category, arrival.year)
        chrono = format_chrono(self.configuration.registers[spec.category].format, arrival.year, number)
        mail_id = self._take_id("mail")
        correspondent_id = self._correspondent_id(generated, author, created_at)

        rows = self.batch.rows
        mail_row = {
            "id": mail_id,
            "chrono": chrono,
            "chrono_year": arrival.year,
            "chrono_number": number,
            "category": spec.category,
            "mail_type": spec.id,
            "subject": generated["subject"].strip(),
            "letter_date": generated["letter_date"],
            "arrival_date": arrival,
            "due_date": due_date,
            "channel": generated["channel"],
            "priority": generated["priority"],
            "confidential": confidential,
            "status": status,
            "handling_department_id": department.id,
            "initiating_department_id": author.department.id,
            "assignee_id": assignee.id if assignee else None,
            "fields": field_values,
            "schema_version": self.configuration.version,
            "created_at": created_at,
            "created_by_id": author.id,
            "updated_at": created_at,
            "row_version": 1,
            # The generator writes no AR document: a sender of a type that needs ARs waits for one.
            "acknowledgement_pending": (
                correspondent_id is not None and spec.category != "outgoing" and spec.acknowledgement != "none"
            ),
            "acknowledged_at": None,
        }
        if self.has_closed_at:
            closed_at = None
            if status in self.configuration.closed_statuses:
                closed_at = self._closing_time(created_at, due_date)
                mail_row["updated_at"] = closed_at
            mail_row["closed_at"] = closed_at
        rows["mail"].append(mail_row)
        if correspondent_id is not None:
            rows["mail_correspondent"].append({
                "id": self._take_id("mail_correspondent"),
                "mail_id": mail_id,
                "correspondent_id": correspondent_id,
                "role": "recipient" if spec.category == "outgoing" else "sender",
            })
        rows["history_entry"].append({
            "id": self._take_id("history_entry"),
            "mail_id": mail_id,
            "at": created_at,
            "actor_id": author.id,
            "on_behalf_of_id": None,
            "event": "registered",
            "details": {
                "chrono": chrono,
                "mail_type": spec.id,
                "handling_department": department.code,
                "due_date": due_date.isoformat() if due_date else None,
                "attachments": [],
            },
            "schema_version": self.configuration.version,
        })
        rows["search_outbox"].append({
            "id": self._take_id("search_outbox"),
            "entity": "mail",
            "entity_id": mail_id,
            "operation": "upsert",
            "created_at": created_at,
            "processed_at": created_at,
        })

        self.batch.mail_count += 1
        self.result.mails += 1
        self.result.open_mails += status not in self.configuration.closed_statuses
        self.result.confidential_mails += confidential
        by_department = self.result.mails_by_department
        by_department[department.code] = by_department.get(department.code, 0) + 1
        self.result.mails_by_status[status] = self.result.mails_by_status.get(status, 0) + 1

    # --- Writing ------------------------------------------------------------------

    def flush(self) -> None:
        """Insert the current batch in one transaction."""
        if not self.batch.mail_count:
            return
        with db.engine.begin() as connection:
            if self.dialect == "sqlite":
                # Loader-only setting: a 256 MiB page cache keeps the random
                # inserts into the mail indexes off the disk.
                connection.exec_driver_sql("PRAGMA cache_size=-262144")
            for table in _Batch.TABLES:
                rows = self.batch.rows[table.name]
                if rows:
                    self.insert_rows(connection, table, rows)
                    self.result.rows[table.name] += len(rows)
        self.batch.clear()

    def finish(self) -> None:
        """Write the chrono counters, move PostgreSQL sequences past the ids used, refresh statistics."""
        self.flush()
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        with db.engine.begin() as connection:
            for (category, year), last_number in sorted(self.counters.items()):
                statement = insert(ChronoCounter).values(category=category, year=year, last_number=last_number)
                statement = statement.on_conflict_do_update(
                    index_elements=[ChronoCounter.category, ChronoCounter.year],
                    set_={"last_number": statement.excluded.last_number},
                )
                connection.execute(statement)
            self.result.rows["chrono_counter"] = len(self.counters)
            # The statistics counters miss the rows inserted here: the dashboard reads the mail rows
            # until `flask statistics rebuild` (bench.statistics runs it after its load).
            invalidate_counters(connection, "bulk load")
            if self.dialect == "postgresql":
                for table in _Batch.TABLES:
                    connection.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table.name}))"
                    )
        if self.dialect == "postgresql":
            # Autovacuum would analyse the new rows within minutes; doing it now
            # makes the measurements that follow independent of its timing.
            # SQLite gets no ANALYZE because the application never runs one.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE")


def _correspondent_row(row_id: int, data: dict[str, Any], author_id: int, created_at: datetime) -> dict[str, Any]:
    """Build the correspondent row that resolve_correspondent_id() writes for a typed entry."""
    typed = _correspondent_input(data, {})
    assert typed is not None
    return {"id": row_id, **correspondent_values(typed, author_id), "created_at": created_at}


def generated_mails(count: int, seed: int, today: date) -> Iterable[dict[str, Any]]:
    """Yield ``count`` generated mails with the demo's mail type weights, oldest first."""
    configuration = current_configuration()
    weights = {key: value for key, value in TYPE_WEIGHTS.items() if key in configuration.mail_types}
    return iter_mails(seed, count, today, weights)


def load_mails(
    count: int,
    seed: int,
    today: date | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    deadline: float | None = None,
) -> LoadResult:
    """Generate ``count`` mails and insert them with the bulk loader; call inside an app context.

    ``deadline`` is a time.monotonic() value: the load raises TimeoutError at
    the first batch that ends after it, keeping the batches already committed.
    """
    today = today or today_in_paris()
    started = time.perf_counter()
    loader = BulkLoader(seed, today, batch_size)
    log.info("bulk loading %s mails into %s, batches of %s", count, loader.dialect, batch_size)
    for generated in generated_mails(count, seed, today):
        loader.add(generated)
        if loader.batch.mail_count >= batch_size:
            loader.flush()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"bulk load stopped after {loader.result.mails} of {count} mails: time limit reached")
        if loader.result.mails % PROGRESS_EVERY == 0:
            elapsed = time.perf_counter() - started
            log.info(
                "loaded %s of %s mails in %.0f s (%.0f mails/s)",
                loader.result.mails, count, elapsed, loader.result.mails / elapsed,
            )
    loader.finish()
    loader.result.seconds = time.perf_counter() - started
    log.info(
        "bulk load done: %s mails, %s correspondents in %.1f s (%.0f mails/s)",
        loader.result.mails, loader.result.correspondents, loader.result.seconds, loader.result.mails_per_second,
    )
    return loader.result
