"""The statistics of a registration: counted as a rebuild counts them, and only into valid counters."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.core.db import write_transaction
from app.extensions import db
from app.mail.models import Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from app.statistics.cli import rebuild
from app.statistics.counters import STATE_ID, invalidate_counters, read_state
from app.statistics.models import MailStatistics, StatisticsCount, StatisticsState
from tests.conftest import user_context


def _register(subject: str = "Note de service") -> Mail:
    return register_mail(user_context("sejour"), Registration(
        mail_type="internal_memo", subject=subject, arrival_date=today_in_paris() - timedelta(days=1),
        handling_department="DMI-SSE-BPT",
    ))


def _counter_rows() -> set[tuple]:
    rows = db.session.execute(select(StatisticsCount.__table__).where(StatisticsCount.count != 0)).all()
    return {tuple(row) for row in rows}


def _facts_rows(mail_id: int) -> int:
    return db.session.execute(
        select(func.count()).select_from(MailStatistics).where(MailStatistics.mail_id == mail_id)
    ).scalar_one()


def test_counters_match_rebuild_after_registrations(app_context):
    for number in range(3):
        _register(f"Note de service {number}")

    incremental = _counter_rows()

    assert incremental
    assert rebuild() == 3
    assert _counter_rows() == incremental


def test_invalid_counters_stay_untouched(app_context):
    _register("Première note")
    with write_transaction():
        invalidate_counters(db.session.connection(), "a test")
    before = _counter_rows()

    mail = _register("Deuxième note")

    assert _facts_rows(mail.id) == 0
    assert _counter_rows() == before
    assert read_state(db.session.connection()) is None


def test_other_configuration_invalidates_counters(app_context):
    _register("Première note")
    with write_transaction():
        db.session.execute(
            update(StatisticsState).where(StatisticsState.id == STATE_ID).values(fingerprint={"format": -1})
        )
    before = _counter_rows()

    mail = _register("Deuxième note")

    assert _facts_rows(mail.id) == 0
    assert _counter_rows() == before
    assert read_state(db.session.connection()) is None


def test_rebuild_between_state_read_and_commit(app_context, monkeypatch):
    import app.mail.operations as mail_operations

    rebuild()
    # The registration read the state while the counters were invalid, and a rebuild committed before its commit.
    monkeypatch.setattr(mail_operations, "state_of", lambda _values: None)

    mail = _register("Note enregistrée pendant une reconstruction")
    incremental = _counter_rows()

    assert _facts_rows(mail.id) == 1
    rebuild()
    assert _counter_rows() == incremental


def test_empty_state_filled_at_commit(app_context):
    rebuild()
    with write_transaction():
        db.session.execute(update(StatisticsState).where(StatisticsState.id == STATE_ID).values(fingerprint={}))

    mail = _register("Première note d'un registre vide")

    assert _facts_rows(mail.id) == 1
    assert read_state(db.session.connection())
