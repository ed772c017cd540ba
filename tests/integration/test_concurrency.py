"""Concurrent registrations: distinct, gapless numbers and no "database is locked"."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.core.errors import ValidationFailed
from app.correspondents.operations import CorrespondentInput
from app.extensions import db
from app.mail.models import ChronoCounter, HistoryEntry, Mail
from app.mail.operations import AlreadyRegistered, Registration, register_mail, today_in_paris
from tests.conftest import user_context

pytestmark = pytest.mark.concurrency

WORKERS = 10


def _register_many(app: Any, count: int, start: threading.Barrier) -> list[str]:
    """Register ``count`` memos in the calling thread with its own app context and session."""
    with app.app_context():
        agent = user_context("sejour")
        start.wait()
        numbers = []
        for index in range(count):
            registration = Registration(
                mail_type="internal_memo", subject=f"Note {index}", handling_department="DMI-SSE-BPT",
                arrival_date=today_in_paris() - timedelta(days=1),
            )
            numbers.append(register_mail(agent, registration).chrono)
        db.session.remove()
        return numbers


def _concurrent_registrations(app: Any, total: int) -> list[str]:
    per_worker = total // WORKERS
    barrier = threading.Barrier(WORKERS)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(_register_many, app, per_worker, barrier) for _ in range(WORKERS)]
        return [number for future in futures for number in future.result()]


def test_fifty_concurrent_numbers_gapless(app):
    chronos = _concurrent_registrations(app, 50)

    numbers = sorted(int(chrono.rsplit("/", 1)[1]) for chrono in chronos)
    assert len(set(chronos)) == 50
    assert numbers == list(range(1, 51))
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 50


def test_writers_never_see_locked_database(app):
    """Registrations, a concurrent history writer and readers all succeed together."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def write_history() -> None:
        with app.app_context():
            from app.core.db import run_in_write_transaction

            try:
                while not stop.is_set():
                    mail_id = db.session.execute(select(Mail.id).limit(1)).scalar()
                    if mail_id is not None:
                        entry = HistoryEntry(mail_id=mail_id, event="reminder_sent", details={})
                        run_in_write_transaction(lambda entry=entry: db.session.add(entry), "history writer")
                    db.session.execute(text("SELECT count(*) FROM mail")).scalar()
                    db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
            finally:
                db.session.remove()

    writer = threading.Thread(target=write_history)
    writer.start()
    try:
        chronos = _concurrent_registrations(app, 100)
    finally:
        stop.set()
        writer.join()

    assert errors == []
    assert len(set(chronos)) == 100


def test_rolled_back_number_is_reused(app_context):
    agent = user_context("sejour")
    memo = Registration(mail_type="internal_memo", subject="Première note", handling_department="DMI-SSE")
    first = register_mail(agent, memo)
    # The missing correspondent is found inside the transaction, after the number was reserved.
    broken = Registration(
        mail_type="internal_memo", subject="Note", handling_department="DMI-SSE",
        correspondent=CorrespondentInput(id=999_999),
    )
    with pytest.raises(ValidationFailed):
        register_mail(agent, broken)
    second = register_mail(agent, memo)
    assert second.chrono_number == first.chrono_number + 1


def test_login_after_another_writer_committed(app):
    """Login statistics are written even when another writer committed after the user was read."""
    from sqlalchemy import event

    from tests.conftest import csrf_token

    armed = threading.Event()
    login_thread = threading.current_thread()

    def commit_from_another_connection(_conn, _cursor, statement, *_args):
        if not armed.is_set() or threading.current_thread() is not login_thread or "FROM ab_user" not in statement:
            return
        armed.clear()
        with db.engine.connect() as other:
            other.execute(text("UPDATE ab_user SET changed_on = CURRENT_TIMESTAMP WHERE username = 'admin'"))
            other.commit()

    with app.app_context():
        engine = db.engine
        before = db.session.execute(text("SELECT login_count FROM ab_user WHERE username = 'sejour'")).scalar() or 0
        db.session.remove()
    client = app.test_client()
    page = client.get("/login/")
    event.listen(engine, "after_cursor_execute", commit_from_another_connection)
    try:
        armed.set()
        response = client.post("/login/", data={
            "username": "sejour", "password": "estafette-demo", "csrf_token": csrf_token(page.get_data(as_text=True)),
        })
    finally:
        event.remove(engine, "after_cursor_execute", commit_from_another_connection)

    assert not armed.is_set(), "the other writer never ran"
    assert response.status_code == 302
    with app.app_context():
        after = db.session.execute(text("SELECT login_count FROM ab_user WHERE username = 'sejour'")).scalar()
        db.session.remove()
    assert after == before + 1


def test_one_form_sent_at_once_registers_once(app):
    """The same form sent by five requests at once registers one mail, and takes one number."""
    senders = 5
    barrier = threading.Barrier(senders)

    def send() -> str:
        with app.app_context():
            agent = user_context("sejour")
            registration = Registration(
                mail_type="internal_memo", subject="Note envoyée deux fois", handling_department="DMI-SSE-BPT",
                arrival_date=today_in_paris() - timedelta(days=1), submission_token="0f" * 16,
            )
            barrier.wait()
            try:
                return register_mail(agent, registration).chrono
            except AlreadyRegistered as already:
                return already.mail.chrono
            finally:
                db.session.remove()

    with ThreadPoolExecutor(senders) as pool:
        chronos = [future.result() for future in [pool.submit(send) for _ in range(senders)]]

    assert len(set(chronos)) == 1
    assert chronos[0].endswith("/000001")
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 1
        assert db.session.execute(select(ChronoCounter.last_number)).scalars().all() == [1]
