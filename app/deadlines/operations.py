"""Operations on a mail's dates: change its due date, request missing documents, record their arrival.

Each operation checks permission and preconditions, changes the rows, writes
history, recomputes the reminders and queues the search update in one
transaction, like ``app.mail.operations``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.configuration.specs import MailTypeSpec
from app.core.db import run_in_write_transaction
from app.core.errors import NotFound, PermissionDenied, ValidationFailed
from app.core.types import utcnow
from app.deadlines.legal import MissingDocumentsRequest, implicit_decision_date
from app.deadlines.models import MissingDocumentsRecord
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.visibility import can_see
from app.organisation.context import UserContext
from app.reminders.operations import schedule_reminders, today_in_paris
from app.search.models import OutboxEvent

log = logging.getLogger(__name__)

MAX_REASON_LENGTH = 1000
MAX_DOCUMENTS = 30
MAX_DOCUMENT_LENGTH = 300


@dataclass(frozen=True)
class ImplicitDecision:
    """The legal regime of a mail and the date its silence becomes a decision."""

    regime: str
    months: int | None
    days: int | None
    # None under the "none" regime, and under "acceptance" while documents are missing.
    date: date | None
    awaiting_documents: bool


def can_manage_deadlines(user: UserContext, mail: Mail) -> bool:
    """Administrators, and processing agents of the handling department or a department above it."""
    if not can_see(user, mail):
        return False
    if user.can("administer"):
        return True
    return user.can("process") and mail.handling_department_id in user.scope_department_ids


def missing_documents_of(mail_id: int) -> list[MissingDocumentsRecord]:
    return list(
        db.session.execute(
            select(MissingDocumentsRecord)
            .where(MissingDocumentsRecord.mail_id == mail_id)
            .order_by(MissingDocumentsRecord.requested_on, MissingDocumentsRecord.id)
        ).scalars()
    )


def implicit_decision_for(mail: Mail, spec: MailTypeSpec | None) -> ImplicitDecision:
    """Compute the implicit-decision date of ``mail`` from its type's regime and its missing-documents requests."""
    regime = spec.acknowledgement if spec is not None else "none"
    if regime == "none" or spec is None:
        return ImplicitDecision("none", None, None, None, False)

    delay = spec.implicit_decision_delay
    records = missing_documents_of(mail.id)
    requests = [MissingDocumentsRequest(row.requested_on, row.deadline, row.received_on) for row in records]
    decision = implicit_decision_date(
        mail.arrival_date, regime, months=delay.months or 0, days=delay.days, missing_documents=requests
    )
    awaiting = any(row.received_on is None for row in records)
    return ImplicitDecision(regime, delay.months, delay.days, decision, awaiting)


def _load_for_change(actor: UserContext, mail_id: int, configuration: Configuration) -> Mail:
    mail = db.session.get(Mail, mail_id)
    if mail is None or not can_see(actor, mail):
        raise NotFound()
    if not can_manage_deadlines(actor, mail):
        raise PermissionDenied(_l("Only agents of the handling department may change the dates of this mail."))
    if mail.status in configuration.closed_statuses:
        raise ValidationFailed({}, _l("This mail is closed: its dates can no longer change."))
    return mail


def _touch(mail: Mail, now: datetime) -> None:
    mail.updated_at = now
    db.session.add(OutboxEvent(entity="mail", entity_id=mail.id, operation="upsert"))


def _history(mail: Mail, actor: UserContext, event: str, configuration: Configuration, now: datetime, **details: object) -> None:
    mail.history.append(
        HistoryEntry(actor_id=actor.user_id, at=now, event=event, schema_version=configuration.version, details=details)
    )


# --- Due date -------------------------------------------------------------------------


def change_due_date(
    actor: UserContext, mail_id: int, new_date: date, reason: str, now: datetime | None = None
) -> Mail:
    """Set the mail's due date to ``new_date`` with a mandatory reason, and recompute its reminders."""
    now = now or utcnow()
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not reason:
        errors["reason"] = [str(_l("Give the reason for the change: it is kept in the history."))]
    elif len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = [str(_l("At most %(limit)s characters.", limit=MAX_REASON_LENGTH))]
    if new_date is None:
        errors["new_due_date"] = [str(_l("Give the new due date."))]
    if errors:
        raise ValidationFailed(errors)

    def change() -> Mail:
        configuration = current_configuration()
        mail = _load_for_change(actor, mail_id, configuration)
        if new_date < mail.arrival_date:
            raise ValidationFailed({"new_due_date": [str(_l("The due date cannot be before the arrival date."))]})
        if new_date == mail.due_date:
            raise ValidationFailed({"new_due_date": [str(_l("This is already the due date."))]})
        previous = mail.due_date
        mail.due_date = new_date
        _touch(mail, now)
        _history(
            mail, actor, "due_date_changed", configuration, now,
            previous=previous.isoformat() if previous else None, new=new_date.isoformat(), reason=reason,
        )
        schedule_reminders(mail, configuration.mail_types.get(mail.mail_type), configuration, now)
        return mail

    mail = run_in_write_transaction(change, f"change due date of mail {mail_id}")
    log.info("mail %s due date changed to %s by %s", mail.chrono, new_date.isoformat(), actor.display_name)
    return mail


# --- Missing documents (incomplete file) --------------------------------------------------


def _clean_documents(documents: list[str]) -> list[str]:
    cleaned = [" ".join(item.split()) for item in documents]
    return [item for item in cleaned if item]


def declare_incomplete(
    actor: UserContext,
    mail_id: int,
    documents: list[str],
    deadline: date,
    requested_on: date | None = None,
    now: datetime | None = None,
) -> MissingDocumentsRecord:
    """Record a request for missing documents, which stops the legal clock as the mail's regime says."""
    now = now or utcnow()
    today = today_in_paris(now)
    requested_on = requested_on or today
    listed = _clean_documents(documents)
    errors: dict[str, list[str]] = {}
    if not listed:
        errors["documents"] = [str(_l("List the missing documents, one per line."))]
    elif len(listed) > MAX_DOCUMENTS or any(len(item) > MAX_DOCUMENT_LENGTH for item in listed):
        errors["documents"] = [str(_l("At most %(count)s documents of %(limit)s characters each.", count=MAX_DOCUMENTS, limit=MAX_DOCUMENT_LENGTH))]
    if requested_on > today:
        errors["requested_on"] = [str(_l("The request date cannot be in the future."))]
    if deadline is None or deadline < requested_on:
        errors["deadline"] = [str(_l("The deadline to produce the documents cannot be before the request date."))]
    if errors:
        raise ValidationFailed(errors)

    def change() -> MissingDocumentsRecord:
        configuration = current_configuration()
        mail = _load_for_change(actor, mail_id, configuration)
        spec = configuration.mail_types.get(mail.mail_type)
        if spec is None or spec.acknowledgement == "none":
            raise ValidationFailed({}, _l("This type of mail has no legal regime of silence: there is no clock to stop."))
        if requested_on < mail.arrival_date:
            raise ValidationFailed({"requested_on": [str(_l("The request date cannot be before the arrival date."))]})
        if any(row.received_on is None for row in missing_documents_of(mail.id)):
            raise ValidationFailed({}, _l("Documents already requested have not arrived yet: record their arrival first."))

        record = MissingDocumentsRecord(
            mail_id=mail.id, requested_on=requested_on, deadline=deadline, documents=listed,
            requested_by_id=actor.user_id, created_at=now,
        )
        db.session.add(record)
        db.session.flush()
        decision = implicit_decision_for(mail, spec)
        _touch(mail, now)
        _history(
            mail, actor, "marked_incomplete", configuration, now,
            request_id=record.id, documents=listed, requested_on=requested_on.isoformat(),
            deadline=deadline.isoformat(),
            implicit_decision_date=decision.date.isoformat() if decision.date else None,
        )
        return record

    record = run_in_write_transaction(change, f"mark mail {mail_id} incomplete")
    log.info("mail %s marked incomplete by %s (%s documents)", mail_id, actor.display_name, len(listed))
    return record


def record_documents_received(
    actor: UserContext, mail_id: int, request_id: int, received_on: date | None = None, now: datetime | None = None
) -> MissingDocumentsRecord:
    """Record the arrival of the documents of one request, which restarts or resumes the legal clock."""
    now = now or utcnow()
    received_on = received_on or today_in_paris(now)
    if received_on > today_in_paris(now):
        raise ValidationFailed({"received_on": [str(_l("The date of receipt cannot be in the future."))]})

    def change() -> MissingDocumentsRecord:
        configuration = current_configuration()
        mail = _load_for_change(actor, mail_id, configuration)
        record = db.session.get(MissingDocumentsRecord, request_id)
        if record is None or record.mail_id != mail.id:
            raise NotFound()
        if record.received_on is not None:
            raise ValidationFailed({}, _l("The arrival of these documents is already recorded."))
        if received_on < record.requested_on:
            raise ValidationFailed({"received_on": [str(_l("The documents cannot arrive before they were requested."))]})

        record.received_on = received_on
        record.received_recorded_by_id = actor.user_id
        db.session.flush()
        decision = implicit_decision_for(mail, configuration.mail_types.get(mail.mail_type))
        _touch(mail, now)
        _history(
            mail, actor, "documents_received", configuration, now,
            request_id=record.id, received_on=received_on.isoformat(),
            implicit_decision_date=decision.date.isoformat() if decision.date else None,
        )
        return record

    record = run_in_write_transaction(change, f"record documents of mail {mail_id}")
    log.info("mail %s: missing documents received, recorded by %s", mail_id, actor.display_name)
    return record
