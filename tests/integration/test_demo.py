"""The demo data of the README's first command, loaded through the real operations."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import func, select

from app.attachments.models import Attachment
from app.correspondents.operations import CorrespondentInput
from app.demo.cli import load_demo_mail
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.operations import Registration, register_mail
from tests.conftest import user_context


def test_demo_load_registers_every_mail(app_context):
    registered = load_demo_mail(count=60, seed=7, with_letters=True, today=date(2026, 12, 4))

    assert registered == 60
    assert db.session.execute(select(func.count()).select_from(Mail)).scalar_one() == 60
    assert db.session.execute(select(func.count()).select_from(Attachment)).scalar_one() > 0


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
