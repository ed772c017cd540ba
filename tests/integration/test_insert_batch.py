"""InsertBatch: a registration's rows reach PostgreSQL in one statement, and every row is written."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from flask import current_app
from sqlalchemy import event, func, select, text

from app.attachments.models import Attachment
from app.attachments.operations import Upload
from app.core.db import InsertBatch, _batch_statement, write_transaction
from app.correspondents.operations import CorrespondentInput
from app.demo.letters import render_letter_pdf
from app.extensions import db
from app.mail.models import HistoryEntry, Mail, MailCorrespondent
from app.mail.operations import Registration, register_mail, today_in_paris
from app.notifications.models import EmailMessage, Notification
from app.reminders.models import Reminder
from app.search.models import OutboxEvent
from app.statistics.counters import upsert_count_arrays
from app.statistics.models import MailStatistics
from tests.conftest import user_context

# The tables whose rows a registration sends with the mail's row on PostgreSQL.
BATCHED_TABLES = ("mail_correspondent", "history_entry", "search_outbox", "reminder", "notification", "email_message",
                  "mail_statistics", "statistics_count")


def _register_assigned(uploads: list[Upload] | None = None) -> tuple[Mail, list[str]]:
    """Register a residence-permit request assigned to an agent; return it and the SQL statements run."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    registration = Registration(
        mail_type="residence_permit_request",
        subject="Demande de premier titre de séjour",
        arrival_date=today_in_paris() - timedelta(days=1),
        handling_department="DMI-SSE-BPT",
        assignee_id=user_context("sejour").user_id,
        fields={"foreign_national_number": "0123456789", "permit_kind": "first_request"},
        correspondent=CorrespondentInput(last_name="Nguyễn", first_name="Thị Hoà", confirm_new=True),
        uploads=uploads or [],
    )
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        mail = register_mail(user_context("courrier"), registration)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return mail, statements


def _count(model: Any, *conditions: Any) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*conditions)).scalar_one()


def _rebuild_counters() -> None:
    """Make the statistics counters valid, as after the first registration of a register."""
    from app.configuration.operations import current_configuration
    from app.statistics.counters import rebuild_counters

    with write_transaction():
        rebuild_counters(db.session.connection(), current_configuration())


def test_registration_writes_every_batched_row(app_context):
    mail, _statements = _register_assigned()

    assert _count(MailCorrespondent, MailCorrespondent.mail_id == mail.id) == 1
    history = db.session.execute(select(HistoryEntry).where(HistoryEntry.mail_id == mail.id)).scalar_one()
    assert history.at is not None
    assert history.details["chrono"] == mail.chrono
    assert _count(OutboxEvent, OutboxEvent.entity_id == mail.id, OutboxEvent.entity == "mail") == 1
    reminders = db.session.execute(select(Reminder).where(Reminder.mail_id == mail.id)).scalars().all()
    assert reminders
    assert all(reminder.created_at is not None for reminder in reminders)
    notification = db.session.execute(select(Notification).where(Notification.mail_id == mail.id)).scalar_one()
    assert notification.user_id == user_context("sejour").user_id
    email = db.session.execute(select(EmailMessage).where(EmailMessage.user_id == notification.user_id)).scalar_one()
    assert email.attempts == 0
    assert email.next_attempt_at is not None
    assert mail.chrono in email.subject or mail.chrono in email.body_text


def test_postgresql_gets_one_insert_statement(app_context):
    _rebuild_counters()
    mail, statements = _register_assigned()

    inserts = [statement for statement in statements if "INSERT INTO mail " in statement]
    assert len(inserts) == 1
    together = db.engine.dialect.name == "postgresql"
    for table in BATCHED_TABLES:
        assert (f"INSERT INTO {table} " in inserts[0]) is together, table
    assert mail.id is not None


def _pdf(subject: str) -> bytes:
    return render_letter_pdf(
        {"category": "incoming", "subject": subject, "letter_date": today_in_paris(), "body_paragraphs": ["Madame,"]},
        {"kind": "person", "civility": "Mme", "first_name": "Thị Hoà", "last_name": "Nguyễn", "organisation": None,
         "address": "3 rue de la Paix", "postcode": "75002", "city": "Paris", "email": None, "phone": None},
    )


def _letter_and_annex() -> list[Upload]:
    return [Upload(io.BytesIO(_pdf("Demande de titre de séjour")), "lettre.pdf", kind="letter"),
            Upload(io.BytesIO(_pdf("Justificatif de domicile")), "justificatif-été.pdf")]


@pytest.mark.parametrize("with_files", [False, True], ids=["no_file", "two_files"])
def test_number_then_batch_only(app_context, with_files):
    _rebuild_counters()
    _mail, statements = _register_assigned(_letter_and_annex() if with_files else None)

    numbered = [position for position, statement in enumerate(statements) if "INSERT INTO chrono_counter" in statement]
    assert len(numbered) == 1
    after_number = statements[numbered[0] + 1:]
    if db.engine.dialect.name == "postgresql":
        # The number's counter row stays locked until the commit: concurrent registrations wait for it.
        assert len(after_number) == 1
        assert "INSERT INTO mail " in after_number[0]
        assert "INSERT INTO statistics_count " in after_number[0]
        assert ("INSERT INTO attachment " in after_number[0]) is with_files


def test_attachments_keep_upload_order(app_context):
    _rebuild_counters()
    mail, _statements = _register_assigned(_letter_and_annex())

    rows = db.session.execute(
        select(Attachment.display_name, Attachment.kind).where(Attachment.mail_id == mail.id).order_by(Attachment.id)
    ).all()
    assert [tuple(row) for row in rows] == [("lettre.pdf", "letter"), ("justificatif-été.pdf", "attachment")]
    facts = db.session.get(MailStatistics, mail.id)
    assert facts.attachments == 2


def test_registration_reuses_plans_until_commit(app_context):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("plan_cache_mode is a PostgreSQL setting")
    modes: dict[str, str] = {}

    def read_mode(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        for marker in ("INSERT INTO chrono_counter", "INSERT INTO mail "):
            if marker in statement:
                modes[marker] = cursor.connection.execute("SHOW plan_cache_mode").fetchone()[0]

    event.listen(db.engine, "after_cursor_execute", read_mode)
    try:
        _register_assigned()
    finally:
        event.remove(db.engine, "after_cursor_execute", read_mode)

    assert modes == {"INSERT INTO chrono_counter": "auto", "INSERT INTO mail ": "auto"}
    # The setting ends with the registration's transaction, so the next basket query is planned anew.
    assert db.session.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"


def test_batch_statement_psycopg_caches(app_context):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("psycopg is the PostgreSQL driver")
    import psycopg._queries

    batches: list[tuple[str, int]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "INSERT INTO mail " in statement:
            batches.append((statement, len(parameters)))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        _register_assigned(_letter_and_annex())
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    [(statement, parameter_count)] = batches
    # Each file beyond these two adds about 430 bytes and 10 parameters, up to the limit of files per mail.
    more_files = int(current_app.config["MAX_ATTACHMENTS_PER_MAIL"]) - 2
    statement += " " * 450 * more_files
    parameter_count += 10 * more_files
    # psycopg converts a longer statement's placeholders again at each execution.
    assert len(statement.encode()) <= psycopg._queries.MAX_CACHED_STATEMENT_LENGTH
    assert parameter_count <= psycopg._queries.MAX_CACHED_STATEMENT_PARAMS


@pytest.mark.parametrize("with_files", [False, True], ids=["no_file", "two_files"])
def test_registration_counts_match_rebuild(app_context, with_files):
    from app.statistics.models import StatisticsCount

    def counts() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        counters = {tuple(row) for row in db.session.execute(select(StatisticsCount.__table__)).all() if row.count}
        facts = {tuple(row) for row in db.session.execute(select(MailStatistics.__table__)).all()}
        return counters, facts

    _rebuild_counters()
    mail, _statements = _register_assigned(_letter_and_annex() if with_files else None)
    registered = counts()
    _rebuild_counters()

    assert _count(MailStatistics, MailStatistics.mail_id == mail.id) == 1
    assert registered == counts()


def test_kept_rows_wait_for_execute(app_context):
    mail, _statements = _register_assigned()

    with write_transaction():
        batch = InsertBatch()
        batch.add(HistoryEntry.__table__, [{"mail_id": mail.id, "actor_id": None, "event": "noted", "details": {}}])
        before = _count(HistoryEntry, HistoryEntry.mail_id == mail.id, HistoryEntry.event == "noted")
        batch.execute()
        after = _count(HistoryEntry, HistoryEntry.mail_id == mail.id, HistoryEntry.event == "noted")

    assert before == (0 if db.engine.dialect.name == "postgresql" else 1)
    assert after == 1
    noted = db.session.execute(
        select(HistoryEntry).where(HistoryEntry.mail_id == mail.id, HistoryEntry.event == "noted")
    ).scalar_one()
    assert noted.at is not None


def test_batch_statement_is_cacheable(app_context):
    shape = (
        (Mail.__table__, ("id", "subject"), 1),
        (Reminder.__table__, ("mail_id", "kind"), 3),
        (OutboxEvent.__table__, ("entity", "entity_id"), 1),
    )

    statement = _batch_statement(shape)

    # SQLAlchemy compiles a statement without a cache key at every execution.
    assert statement._generate_cache_key() is not None
    assert _batch_statement(shape) is statement



def test_batch_runs_kept_statement(app_context):
    from app.statistics.counters import COUNTER_KEY
    from app.statistics.models import DAY, StatisticsCount

    mail, _statements = _register_assigned()
    key = ("received", DAY, mail.arrival_date, mail.handling_department_id, "kept_statement_type", "incoming",
           "post", False, 0, 0, 0)
    kept_rows = StatisticsCount.mail_type == "kept_statement_type"
    with write_transaction():
        batch = InsertBatch()
        if not batch.keeps_rows:
            with pytest.raises(RuntimeError):
                batch.add_statement(upsert_count_arrays, {})
            return
        batch.add_statement(upsert_count_arrays, {name: [key[position]] for position, name in enumerate(COUNTER_KEY)}
                            | {"count": [3]})
        batch.add(HistoryEntry.__table__, [{"mail_id": mail.id, "actor_id": None, "event": "noted", "details": {}}])
        before = _count(StatisticsCount, kept_rows)
        batch.execute()

    assert before == 0
    assert db.session.execute(select(StatisticsCount.count).where(kept_rows)).scalar_one() == 3
    assert _count(HistoryEntry, HistoryEntry.mail_id == mail.id, HistoryEntry.event == "noted") == 1


def test_batch_statement_text_part_cacheable(app_context):
    shape = (
        (upsert_count_arrays, ("measure", "count"), 1),
        (OutboxEvent.__table__, ("entity", "entity_id"), 1),
    )

    statement = _batch_statement(shape)

    assert statement._generate_cache_key() is not None
    assert "INSERT INTO statistics_count" in str(statement)
