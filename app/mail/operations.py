"""Operations on mail: the only code that writes mail rows.

Each operation checks permission and preconditions, changes the rows, writes
history and queues the search update in one transaction.  Views, the API,
CLI commands and jobs call these functions.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from app.attachments.models import Attachment
from app.attachments.operations import (
    StoredUpload,
    Upload,
    check_uploads,
    discard_checked,
    store_checked,
)
from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.configuration.specs import MailTypeSpec
from app.core.db import InsertBatch, run_in_write_transaction
from app.core.errors import PermissionDenied, ValidationFailed
from app.core.types import utcnow
from app.correspondents.operations import (
    CorrespondentInput,
    DuplicateCorrespondent,
    probable_duplicates,
    resolve_correspondent_id,
    validate_input,
)
from app.deadlines.calendar import compute_due_date
from app.documents.acknowledgement_state import note_inserted_mail as note_acknowledgement_set
from app.extensions import db
from app.mail.chrono import format_chrono, next_number
from app.mail.fields import clean_field_values
from app.mail.models import CHANNELS, PRIORITIES, HistoryEntry, Mail, MailCorrespondent, RegistrationSubmission
from app.notifications.operations import NotificationCache, insert_notifications
from app.organisation.context import UserContext
from app.organisation.models import Department, UserDepartment
from app.reminders.operations import schedule_reminders
from app.routing.operations import RoutingPlan, apply_routing, plan_routing
from app.search.outbox import queue_inserted_mail
from app.statistics.counters import (
    FactsRow,
    assigning_events,
    count_inserted_mail_in_batch,
    state_of,
    state_values,
)
from app.statistics.counters import note_inserted_mail as note_counted_mail

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")
MAX_SUBJECT_LENGTH = 1000
# How far back an arrival date may be typed; older mail is a data-entry error.
MAX_ARRIVAL_AGE_DAYS = 3 * 366
# Built once, so that SQLAlchemy finds it in its statement cache without computing a cache key at each registration.
_INSERT_MAIL = insert(Mail.__table__)


def today_in_paris(now: datetime | None = None) -> date:
    return (now or datetime.now(PARIS)).astimezone(PARIS).date()


@dataclass
class Registration:
    """What an agent types to register one mail."""

    mail_type: str
    subject: str
    arrival_date: date | None = None
    letter_date: date | None = None
    channel: str = "post"
    priority: str = "normal"
    confidential: bool = False
    handling_department: str | None = None
    assignee_id: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    correspondent: CorrespondentInput | None = None
    uploads: list[Upload] = field(default_factory=list)
    locale: str = "fr"
    # The one-time token of the form that sent this registration, if any (see RegistrationSubmission).
    submission_token: str | None = None
    # The digest of the values sent with that token: set by register_mail().
    submission_digest: str | None = None
    # Errors the caller found reading the input, such as a date it could not parse, by field name.
    # check_registration() reports them with its own, so that the agent sees every error at once.
    input_errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Checked:
    spec: MailTypeSpec
    department: Department
    field_values: dict[str, Any]
    arrival_date: date
    due_date: date | None


def _error(errors: dict[str, list[str]], key: str, message: Any) -> None:
    errors.setdefault(key, []).append(str(message))


def _check_common(registration: Registration, errors: dict[str, list[str]], today: date, category: str) -> date:
    subject = registration.subject.strip()
    if not subject:
        _error(errors, "subject", _l("The subject is required."))
    elif len(subject) > MAX_SUBJECT_LENGTH:
        _error(errors, "subject", _l("At most %(limit)s characters.", limit=MAX_SUBJECT_LENGTH))
    if registration.channel not in CHANNELS:
        _error(errors, "channel", _l("Choose one of the proposed values."))
    if registration.priority not in PRIORITIES:
        _error(errors, "priority", _l("Choose one of the proposed values."))

    arrival = registration.arrival_date or today
    # The arrival_date column also stores the sending date of outgoing mail.
    outgoing = category == "outgoing"
    if arrival > today:
        _error(errors, "arrival_date", _l("The sending date cannot be in the future.") if outgoing
               else _l("The arrival date cannot be in the future."))
    elif (today - arrival).days > MAX_ARRIVAL_AGE_DAYS:
        _error(errors, "arrival_date", _l("The sending date is more than three years ago: check the year.") if outgoing
               else _l("The arrival date is more than three years ago: check the year."))
    if registration.letter_date and registration.letter_date > arrival:
        _error(errors, "letter_date", _l("The date of the letter cannot be after its sending date.") if outgoing
               else _l("The date of the letter cannot be after its arrival date."))
    return arrival


def _check_department(
    registration: Registration, spec: MailTypeSpec, errors: dict[str, list[str]], known: Department | None = None
) -> Department | None:
    code = registration.handling_department or spec.default_department
    if not code:
        _error(errors, "handling_department", _l("Choose the handling department."))
        return None
    # Routing has read the active department of that code already in most registrations.
    if known is not None and known.code == code:
        return known
    department = db.session.execute(
        select(Department).where(Department.code == code, Department.active.is_(True))
    ).scalar_one_or_none()
    if department is None:
        _error(errors, "handling_department", _l("Unknown department %(code)s.", code=code))
    return department


def _check_assignee(
    registration: Registration, department: Department | None, errors: dict[str, list[str]],
    member_of_department: int | None = None,
) -> None:
    if registration.assignee_id is None:
        if registration.confidential:
            _error(errors, "assignee_id", _l("Confidential mail needs an assignee, because only its distribution list, the registering agent and administrators see it."))
        return
    if department is None or registration.assignee_id == member_of_department:
        return
    member = db.session.execute(
        select(UserDepartment.id)
        .join(Department, Department.id == UserDepartment.department_id)
        .where(UserDepartment.user_id == registration.assignee_id)
        .where(Department.path.startswith(department.path))
    ).first()
    if member is None:
        _error(errors, "assignee_id", _l("The assignee must belong to the handling department or one of its sub-departments."))


def _check_correspondent(registration: Registration, spec: MailTypeSpec, errors: dict[str, list[str]]) -> None:
    data = registration.correspondent
    if data is None or data.is_empty():
        if spec.category == "incoming":
            _error(errors, "correspondent", _l("Give the sender: pick one in the directory or type a new one."))
        elif spec.category == "outgoing":
            _error(errors, "correspondent", _l("Give the recipient: pick one in the directory or type a new one."))
        return
    if data.id is None:
        for key, messages in validate_input(data).items():
            errors.setdefault(key, []).extend(messages)


def _due_date(spec: MailTypeSpec, department: Department, arrival: date) -> date | None:
    if spec.delay is None:
        return None
    return compute_due_date(arrival, spec.delay.days, spec.delay.unit, department.calendar)


def check_registration(
    actor: UserContext, registration: Registration, configuration: Configuration, today: date,
    plan: RoutingPlan | None = None,
) -> _Checked:
    """Validate everything that needs no write, raising ValidationFailed with every error.

    ``plan`` is the routing of this registration: its department row and the
    assignee it found in that department are not read again. The errors
    include the registration's ``input_errors``. When there is any, a typed
    correspondent that probably exists is reported with them, as
    DuplicateCorrespondent, instead of on the next submit.
    """
    spec = configuration.mail_types.get(registration.mail_type)
    if spec is None:
        raise ValidationFailed({"mail_type": [str(_l("Unknown mail type %(id)s.", id=registration.mail_type))]})
    if not actor.can_register(spec.id):
        raise PermissionDenied(_l("You may not register mail of type %(type)s.", type=spec.labels.get(registration.locale)))

    errors = {key: list(messages) for key, messages in registration.input_errors.items()}
    arrival = _check_common(registration, errors, today, spec.category)
    department = _check_department(registration, spec, errors, plan.department_row if plan else None)
    routed_member = plan.routed_assignee_id if plan and department is plan.department_row else None
    _check_assignee(registration, department, errors, routed_member)
    _check_correspondent(registration, spec, errors)
    field_values, field_errors = clean_field_values(spec, registration.fields, registration.locale)
    for key, messages in field_errors.items():
        errors.setdefault(f"field_{key}", []).extend(messages)
    if errors or department is None:
        probable = probable_duplicates(registration.correspondent) if registration.correspondent else []
        if probable:
            raise DuplicateCorrespondent(probable, errors)
    if errors or department is None:
        raise ValidationFailed(errors)
    return _Checked(spec, department, field_values, arrival, _due_date(spec, department, arrival))


def register_mail(actor: UserContext, registration: Registration, now: datetime | None = None) -> Mail:
    """Register one mail: number, correspondent, attachments, history and search outbox.

    Files are written to the content store before the transaction; everything
    else is written in one transaction, so a failure leaves no mail, no
    number used and no history. Without files, routing and the checks run in
    that same transaction, so the rows they read are not read again.
    """
    configuration = current_configuration()
    today = today_in_paris(now)
    # The moment of registration, in the past for demo mail registered at its arrival date.
    moment = now.astimezone(UTC) if now is not None else utcnow()
    description = f"register {registration.mail_type}"
    if registration.submission_token:
        registration = dataclasses.replace(registration, submission_digest=_submission_digest(registration))
        # A form sent again after its first sending committed registers nothing more.
        _check_not_registered(actor, registration)
    registration = _within_file_limit(registration)
    if registration.uploads:
        # The files are checked in the store's temporary folder and stored only when the whole
        # registration is valid, so that an invalid one stores none and reports every error at once.
        files = check_uploads(registration.uploads, actor.display_name)
        try:
            file_errors = [item.error for item in files if item.error is not None]
            if file_errors:
                input_errors = {**registration.input_errors, "attachments": file_errors}
                registration = dataclasses.replace(registration, input_errors=input_errors)
            try:
                plan, checked = _route_and_check(actor, registration, configuration, today)
            except ValidationFailed as failure:
                failure.rejected_uploads = tuple(index for index, item in enumerate(files) if item.error is not None)
                raise
            stored = store_checked(files)
        finally:
            discard_checked(files)
        insert = functools.partial(_insert_mail, actor, plan.registration, checked, stored, configuration, today,
                                   moment, plan)
    else:
        insert = functools.partial(_route_check_insert, actor, registration, configuration, today, moment)

    try:
        mail, chrono = run_in_write_transaction(lambda: _with_chrono(insert()), description)
    except IntegrityError:
        # Two sendings of one form at once: the second fails on the form's token when the first commits.
        db.session.rollback()
        _check_not_registered(actor, registration)
        raise
    log.info("mail %s registered by %s", chrono, actor.display_name)
    return mail


class AlreadyRegistered(Exception):
    """Error raised when a registration form is sent again: its first sending registered ``mail``."""

    def __init__(self, mail: Mail):
        super().__init__(f"already registered as {mail.chrono}")
        self.mail = mail


class SubmissionReused(Exception):
    """Error raised when a registration form's token comes back with other values, or from another user.

    ``mail`` is the mail that the form registered, None when another user registered it.
    """

    def __init__(self, mail: Mail | None):
        super().__init__(f"registration form already used for {mail.chrono if mail else 'another user'}")
        self.mail = mail


def _submission_digest(registration: Registration) -> str:
    """Return the SHA-256 of the values an agent typed for ``registration``, files by name."""
    typed = dataclasses.asdict(dataclasses.replace(registration, uploads=[], submission_digest=None))
    typed["uploads"] = [upload.filename for upload in registration.uploads]
    return hashlib.sha256(json.dumps(typed, sort_keys=True, default=str).encode()).hexdigest()


def _check_not_registered(actor: UserContext, registration: Registration) -> None:
    """Raise AlreadyRegistered or SubmissionReused when the form's one-time token has registered a mail."""
    token = registration.submission_token
    if not token:
        return
    found = db.session.execute(
        select(Mail, RegistrationSubmission.digest)
        .join(RegistrationSubmission, RegistrationSubmission.mail_id == Mail.id)
        .where(RegistrationSubmission.token == token)
    ).first()
    if found is None:
        return
    registered, digest = found
    if registered.created_by_id != actor.user_id:
        # Another user's token: its mail may be one this user may not see.
        log.warning("registration form %s of user %s sent by %s: rejected", token, registered.created_by_id,
                    actor.display_name)
        raise SubmissionReused(None)
    if digest != registration.submission_digest:
        log.info("registration form %s sent again by %s with other values: mail %s was registered from it",
                 token, actor.display_name, registered.chrono)
        raise SubmissionReused(registered)
    log.info("registration form %s sent again by %s: its first sending registered mail %s",
             token, actor.display_name, registered.chrono)
    raise AlreadyRegistered(registered)


def _within_file_limit(registration: Registration) -> Registration:
    """Return ``registration``, or, past the limit of files per mail, the same without its files and with the error."""
    limit = int(current_app.config["MAX_ATTACHMENTS_PER_MAIL"])
    count = len(registration.uploads)
    if count <= limit:
        return registration
    log.info("registration with %s files rejected: the maximum is %s", count, limit)
    message = lazy_ngettext(
        "At most %(num)s file is registered with a mail, and %(count)s were chosen: scan the pages of one document into one PDF.",
        "At most %(num)s files are registered with a mail, and %(count)s were chosen: scan the pages of one document into one PDF.",
        limit, count=count,
    )
    input_errors = {**registration.input_errors, "attachments": [str(message)]}
    return dataclasses.replace(registration, uploads=[], input_errors=input_errors)


def _with_chrono(mail: Mail) -> tuple[Mail, str]:
    # Read before the commit, which expires the mail: reading it afterwards would be one more query.
    return mail, mail.chrono


def _route_and_check(
    actor: UserContext, registration: Registration, configuration: Configuration, today: date
) -> tuple[RoutingPlan, _Checked]:
    # Routing fills what the agent left empty; what they chose on the form overrides the rules.
    plan = plan_routing(registration, configuration)
    return plan, check_registration(actor, plan.registration, configuration, today, plan)


def _route_check_insert(
    actor: UserContext, registration: Registration, configuration: Configuration, today: date, moment: datetime
) -> Mail:
    plan, checked = _route_and_check(actor, registration, configuration, today)
    return _insert_mail(actor, plan.registration, checked, [], configuration, today, moment, plan)


def _insert_mail(
    actor: UserContext,
    registration: Registration,
    checked: _Checked,
    stored: list[StoredUpload],
    configuration: Configuration,
    today: date,
    moment: datetime,
    plan: RoutingPlan | None = None,
) -> Mail:
    spec = checked.spec
    link = None
    if registration.correspondent is not None and not registration.correspondent.is_empty():
        role = "recipient" if spec.category == "outgoing" else "sender"
        link = {"correspondent_id": resolve_correspondent_id(registration.correspondent, actor.user_id, moment),
                "role": role}
    # Read now for the assignee's notification, before the number's counter row is locked.
    notification_cache = NotificationCache(configuration)
    if registration.assignee_id is not None and registration.assignee_id != actor.user_id:
        notification_cache.load([registration.assignee_id])
    # On PostgreSQL the rows are inserted by one statement at the end, the mail's id reserved now.
    batch = InsertBatch()
    # The statistics state is read with the id: registration writes the counters in the batch.
    # Its inserts and the number's upsert have the same plan every time: PostgreSQL may keep it.
    reserved = batch.reserve_id(
        Mail.__table__, *state_values(), reuse_plans=True, child_table=Attachment.__table__, children=len(stored)
    )
    reserved_id, counters_state = (reserved.id, state_of(reserved.values)) if reserved is not None else (None, None)
    values = {
        "chrono": None,
        "chrono_year": today.year,
        "chrono_number": None,
        "category": spec.category,
        "mail_type": spec.id,
        "subject": registration.subject.strip(),
        "letter_date": registration.letter_date,
        "arrival_date": checked.arrival_date,
        "due_date": checked.due_date,
        "channel": registration.channel,
        "priority": registration.priority,
        "confidential": registration.confidential,
        "status": configuration.initial_status,
        "handling_department_id": checked.department.id,
        "initiating_department_id": actor.primary_department_id,
        "assignee_id": registration.assignee_id,
        "fields": checked.field_values,
        "schema_version": configuration.version,
        "created_by_id": actor.user_id,
        "acknowledgement_pending": False,
        "row_version": 1,
    }
    values["created_at"] = values["updated_at"] = moment
    if link is not None:
        # The sender waits for an AR if the type needs one (app/documents/acknowledgement_state.py).
        values["acknowledgement_pending"] = link["role"] == "sender" and spec.acknowledgement != "none"
    has_sender = link is not None and link["role"] == "sender"
    facts = _facts_row(values, checked.department.calendar, has_sender, len(stored), configuration)
    if reserved_id is not None:
        values["id"] = reserved_id
    else:
        # Without a reserved id the mail row is inserted at once, so it needs its number now.
        _take_number(values, spec, configuration, today)
    # Nothing is flushed before the batch is executed: the ORM rows added below reference the mail.
    with db.session.no_autoflush:
        mail = _add_new_mail(values, facts, batch)
        if link is not None:
            batch.add(MailCorrespondent.__table__, [{"mail_id": mail.id, **link}])
        if registration.submission_token:
            batch.add(RegistrationSubmission.__table__, [{
                "token": registration.submission_token, "mail_id": mail.id,
                "digest": registration.submission_digest, "created_at": moment,
            }])
        if reserved is not None:
            # Ascending ids given in upload order keep the letter the mail's first attachment.
            batch.add(Attachment.__table__, [
                {**upload.attachment_values(actor.user_id), "id": attachment_id, "mail_id": mail.id}
                for upload, attachment_id in zip(stored, reserved.child_ids, strict=True)
            ])
        else:
            for upload in stored:
                attachment = upload.to_attachment(actor.user_id)
                attachment.mail_id = mail.id
                # Inserted by the flush at the commit, so the statistics listener counts it.
                db.session.add(attachment)

        routing_trace = (
            apply_routing(mail, plan, configuration, actor.user_id, today, new_mail=True, now=moment) if plan else None
        )
        schedule_reminders(mail, spec, configuration, moment, new_mail=True, batch=batch)
        if reserved_id is not None:
            # The number is taken as late as it can be: its counter row stays locked until the
            # commit, and concurrent registrations of the same category and year wait for it.
            # So the statistics counters, written at the commit otherwise, go in the batch.
            count_inserted_mail_in_batch(db.session(), mail.id, batch, counters_state)
            _take_number(values, spec, configuration, today)
            for key in ("chrono", "chrono_number"):
                set_committed_value(mail, key, values[key])
            batch.add(Mail.__table__, [values])
        chrono = values["chrono"]
        # Inserted on the tables, not as ORM objects: the caller needs neither row back, and the
        # session's unit of work costs more than the statements themselves.
        batch.add(HistoryEntry.__table__, [{
            "mail_id": mail.id,
            "at": moment,
            "actor_id": actor.user_id,
            "event": "registered",
            "schema_version": configuration.version,
            "details": {
                "chrono": chrono,
                "mail_type": spec.id,
                "handling_department": checked.department.code,
                "due_date": checked.due_date.isoformat() if checked.due_date else None,
                "attachments": [upload.display_name for upload in stored],
                "routing": routing_trace,
            },
        }])
        # The search outbox row of the new mail was added by _add_new_mail.
        insert_notifications("mail_assigned", mail, [mail.assignee_id], actor=actor, now=moment,
                             cache=notification_cache, batch=batch)
        batch.execute()
    return mail


def _take_number(values: dict[str, Any], spec: MailTypeSpec, configuration: Configuration, today: date) -> None:
    """Reserve the next registration number of the mail's category and set it in ``values``."""
    number = next_number(spec.category, today.year)
    values["chrono_number"] = number
    values["chrono"] = format_chrono(configuration.registers[spec.category].format, today.year, number)


def _facts_row(
    values: dict[str, Any], calendar: str, has_sender: bool, attachments: int, configuration: Configuration
) -> FactsRow:
    """Return what the statistics facts statement will read of the mail ``_insert_mail`` writes, without its id.

    Nothing else in the registration transaction changes those columns. A
    new mail has no acknowledgement document, and its only history entry is
    "registered", which counts as assigning only if an action has that id.
    """
    return FactsRow(
        id=0, arrival_date=values["arrival_date"], handling_department_id=values["handling_department_id"],
        mail_type=values["mail_type"], category=values["category"], channel=values["channel"],
        confidential=values["confidential"], assignee_id=values["assignee_id"], status=values["status"],
        due_date=values["due_date"], created_at=values["created_at"], closed_at=None, calendar=calendar,
        first_sent=None, has_sender=has_sender, attachments=attachments,
        assigning=int("registered" in assigning_events(configuration)),
    )


def _add_new_mail(values: dict[str, Any], facts: FactsRow | None = None, batch: InsertBatch | None = None) -> Mail:
    """Add a new mail to the session as a persistent ORM object, inserting its row with an SQL statement.

    With ``batch`` and a reserved ``id`` in ``values``, the mail row is not
    inserted here: the caller adds it to the batch once it has its number, and
    the outbox row goes to the batch too.

    The session's unit of work was the largest single cost of a registration
    (a third of its Python time under cProfile, at 1M mails), so the mail
    skips it. The flush listeners do not see this row, so this function does
    their work for an inserted mail. It writes the search outbox row, hands
    the statistics counters the mail for the commit (with ``facts``, when
    passed, under the new id) and notes that its acknowledgement state is set.
    """
    session = db.session()
    if batch is not None and "id" in values:
        mail_id = int(values["id"])
    else:
        # Through the session, not its connection: app/mail/menu_counts.py notes the write from this statement.
        mail_id = int(session.execute(_INSERT_MAIL, values).inserted_primary_key[0])
    # A mail of a rolled-back attempt may still hold this id in the identity map: SQLite reuses the rowid.
    stale = session.identity_map.get(session.identity_key(Mail, mail_id))
    if stale is not None:
        session.expunge(stale)
    # Every column is set, so reading one loads nothing. Its relationships load from the database when read.
    mail = Mail(**{"closed_at": None, "acknowledged_at": None, **values, "id": mail_id})
    make_transient_to_detached(mail)
    session.add(mail)
    queue_inserted_mail(session, mail_id, batch)
    note_counted_mail(session, mail_id, dataclasses.replace(facts, id=mail_id) if facts is not None else None)
    note_acknowledgement_set(session, mail_id)
    return mail
