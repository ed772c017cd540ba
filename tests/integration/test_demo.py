"""The demo data of the README's first command, loaded through the real operations."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.correspondents.operations import CorrespondentInput
from app.demo.cli import load_demo_mail
from app.distribution.models import DistributionEntry
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import PARIS, Registration, register_mail
from app.notifications.models import Notification
from tests.conftest import user_context


def test_demo_load_registers_every_mail(app_context):
    registered = load_demo_mail(count=60, seed=7, with_letters=True, today=date(2026, 12, 4))

    assert registered == 60
    assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 60
    assert db.session.execute(select(func.count()).select_from(Attachment)).scalar_one() > 0


def test_demo_mail_processed_in_the_past(app_context):
    today = date(2026, 12, 4)
    load_demo_mail(count=120, seed=11, with_letters=False, today=today)
    mails = db.session.execute(select(Mail)).scalars().all()
    closed = [mail for mail in mails if mail.closed_at is not None]
    old = [mail for mail in mails if (today - mail.arrival_date).days >= 45]
    young = [mail for mail in mails if (today - mail.arrival_date).days < 15]
    closing_days = db.session.execute(
        select(HistoryEntry.at).where(HistoryEntry.event == "close")
    ).scalars().all()
    actions = db.session.execute(
        select(HistoryEntry).where(HistoryEntry.event.in_(["qualify", "close"]))
    ).scalars().all()

    assert all(mail.created_at.astimezone(PARIS).date() == mail.arrival_date for mail in mails)
    assert len(closed) >= len(mails) // 2
    assert sum(mail.closed_at is not None for mail in old) >= 0.7 * len(old)
    assert young
    assert sum(mail.closed_at is not None for mail in young) / len(young) < 0.7
    assert all(mail.arrival_date <= mail.closed_at.astimezone(PARIS).date() <= today for mail in closed)
    assert len(closing_days) == len(closed)
    assert all(moment.astimezone(PARIS).date() <= today for moment in closing_days)
    assert all(moment.astimezone(PARIS).weekday() < 5 for moment in closing_days)
    assert all(entry.at >= entry.mail.created_at for entry in actions)
    assert all(link.correspondent.created_at <= mail.created_at for mail in mails for link in mail.correspondents)


def test_registration_moment_dates_copies_and_notices(app_context):
    moment = datetime(2026, 3, 2, 12, 0, tzinfo=PARIS)
    registration = Registration(
        mail_type="parliamentary_letter", subject="Question écrite sur les titres de séjour",
        arrival_date=date(2026, 3, 2), fields={"elected_official": "Mme Hélène Dupré", "chamber": "assemblee_nationale"},
        correspondent=CorrespondentInput(last_name="Dupré", first_name="Hélène"),
    )
    mail = register_mail(user_context("courrier"), registration, now=moment)
    copies = db.session.execute(select(DistributionEntry).where(DistributionEntry.mail_id == mail.id)).scalars().all()
    notices = db.session.execute(select(Notification).where(Notification.mail_id == mail.id)).scalars().all()

    assert copies
    assert all(entry.requested_at == moment for entry in copies)
    assert notices
    assert all(notice.created_at == moment for notice in notices)


def test_typed_values_stored_as_json(app_context):
    registration = Registration(
        mail_type="grant_request", subject="Demande de subvention",
        fields={"amount_requested": Decimal("12345.5")},
        correspondent=CorrespondentInput(kind="organisation", organisation="Association Œuvre sociale"),
    )
    mail = register_mail(user_context("courrier"), registration)

    entry = db.session.execute(select(HistoryEntry).where(HistoryEntry.mail_id == mail.id)).scalar_one()
    db.session.expire_all()
    assert mail.fields["amount_requested"] == "12345.50"
    assert entry.event == "registered"
