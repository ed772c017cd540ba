"""The signature book's operations: start a visa circuit, approve, reject, sign, interrupt.

Each operation runs as one write transaction that checks, changes the circuit,
the document and the mail, writes the mail's history and queues the
notifications. The document a circuit shows is frozen: every decision first
checks that the circuit's version still has the PDF whose SHA-256 was recorded
and that the stored file still hashes to it.

Two decisions made at the same moment on one circuit cannot both win. The
form sends the round and step the user saw, so a decision made on a circuit
that moved on is refused. Every decision also updates the circuit row under
its ``row_version``, so of two transactions that read the same state the
second fails, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, any_, func, or_, select, union
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement

from app.attachments.models import Attachment
from app.attachments.operations import content_store
from app.attachments.storage import StorageError
from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.configuration.specs import CircuitModelSpec
from app.core.db import run_in_write_transaction
from app.core.errors import Conflict, EstafetteError, NotFound, PermissionDenied, ValidationFailed
from app.core.types import utcnow
from app.distribution.models import CIRCUIT, DistributionEntry
from app.documents.models import Document, DocumentVersion
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.visibility import can_see, seeing_context
from app.organisation.context import UserContext
from app.search.models import OutboxEvent
from app.signature.models import (
    APPROVAL,
    INTERRUPTED,
    RUNNING,
    SIGNATURE,
    SIGNED,
    STEP_KINDS,
    WITH_AUTHOR,
    CircuitMember,
    SignatureCircuit,
    SignatureProfile,
)
from app.signature.stamping import SignatureBlock, StampingFailed, pades_sign, stamp_block

log = logging.getLogger(__name__)

T = TypeVar("T")

# The declared status of mail whose document is in the signature book (schemas/statuses.yaml).
IN_SIGNATURE_BOOK = "in_signature_book"
DEFAULT_STATUS_AFTER_SIGNATURE = "to_send"
MAX_COMMENT_LENGTH = 5000
MAX_STEPS = 12
MAX_MEMBERS_PER_STEP = 12


class CircuitRefused(EstafetteError):
    """The circuit's state does not allow the operation."""

    http_status = 409


class CircuitMovedOn(Conflict):
    default_message = _l(
        "Someone else acted on this circuit at the same time, or since you opened the page: "
        "reload the page to see where it stands."
    )


class FrozenDocumentChanged(EstafetteError):
    """The file in the store or the version row no longer matches the SHA-256 recorded by the circuit."""

    http_status = 409
    default_message = _l(
        "The document no longer matches the version frozen in the signature book: nothing was approved or "
        "signed. Ask the author to save a new version, which restarts the circuit."
    )


@dataclass
class StepInput:
    """One step of a circuit built by hand: its kind and the ids of its members."""

    kind: str
    user_ids: list[int] = field(default_factory=list)


@dataclass
class Decision:
    """A member's decision input: the comment, and the round, step and PDF their page showed."""

    comment: str | None = None
    expected_round: int | None = None
    expected_step: int | None = None
    # SHA-256 of the PDF the page showed; a signature is refused if the document changed since.
    expected_sha256: str | None = None


# --- Reading ----------------------------------------------------------------------


def circuits_of_mail(mail_id: int) -> list[SignatureCircuit]:
    statement = select(SignatureCircuit).where(SignatureCircuit.mail_id == mail_id).order_by(SignatureCircuit.id.desc())
    return list(db.session.execute(statement).scalars())


def running_circuit_of_document(document_id: int) -> SignatureCircuit | None:
    return db.session.execute(
        select(SignatureCircuit).where(SignatureCircuit.document_id == document_id, SignatureCircuit.state == RUNNING)
    ).scalar_one_or_none()


def _standing_for_ids(user: UserContext) -> list[int]:
    """Return the user's id and the ids of the absent agents they stand in for today."""
    from app.absences.operations import active_delegator_ids

    return [user.user_id, *active_delegator_ids(user.user_id)]


def current_step_clause(user: UserContext) -> ColumnElement[bool]:
    """Return a SQL condition on Mail: a running circuit waits for ``user``, or an agent they stand in for.

    It waits for a member of its current step who has not decided yet, and
    for its author while a rejected document is back with them.
    """
    ids = _standing_for_ids(user)
    waiting = (
        select(SignatureCircuit.mail_id)
        .join(CircuitMember, and_(
            CircuitMember.circuit_id == SignatureCircuit.id, CircuitMember.position == SignatureCircuit.current_step,
        ))
        .where(SignatureCircuit.state == RUNNING, CircuitMember.user_id.in_(ids), CircuitMember.decided_at.is_(None))
    )
    returned = select(SignatureCircuit.mail_id).where(
        SignatureCircuit.state == RUNNING, SignatureCircuit.current_step == WITH_AUTHOR,
        SignatureCircuit.started_by_id.in_(ids),
    )
    if db.engine.dialect.name == "postgresql":
        # With IN (subquery), PostgreSQL 15 read every mail of the basket's scope and probed the
        # circuits for each: 33 ms for an empty basket at 1M mails. An array of the few waiting
        # mails is looked up by primary key.
        return Mail.id == any_(func.array(union(waiting, returned).scalar_subquery()))
    return or_(Mail.id.in_(waiting), Mail.id.in_(returned))


@dataclass
class WaitingItem:
    """A circuit waiting for the user: as a member, or as its author after a rejection."""

    circuit: SignatureCircuit
    # The absent agent the user would act for; None when the user acts for themselves.
    on_behalf_of: User | None


def waiting_for(user: UserContext) -> list[WaitingItem]:
    """Return the circuits whose current step waits for ``user`` (or an agent they stand in for), oldest first."""
    ids = _standing_for_ids(user)
    statement = (
        select(SignatureCircuit)
        .join(Mail, Mail.id == SignatureCircuit.mail_id)
        .where(SignatureCircuit.state == RUNNING, current_step_clause(user))
        .order_by(Mail.due_date.asc().nulls_last(), SignatureCircuit.id)
    )
    items = []
    for circuit in db.session.execute(statement).scalars():
        if not can_see(user, circuit.mail):
            continue
        waiting_ids = (
            [circuit.started_by_id] if circuit.current_step == WITH_AUTHOR
            else [member.user_id for member in circuit.step(circuit.current_step) if member.decided_at is None]
        )
        if user.user_id in waiting_ids:
            items.append(WaitingItem(circuit, None))
            continue
        absent_id = next((item for item in ids if item in waiting_ids), None)
        if absent_id is not None:
            items.append(WaitingItem(circuit, db.session.get(User, absent_id)))
    return items


def load_visible_circuit(user: UserContext, circuit_id: int) -> SignatureCircuit:
    """Return the circuit if ``user`` may see its mail; raise NotFound otherwise, whether it exists or not."""
    circuit = db.session.get(SignatureCircuit, circuit_id)
    if circuit is None or not can_see(user, circuit.mail):
        raise NotFound()
    return circuit


def acting_member(user: UserContext, circuit: SignatureCircuit) -> tuple[CircuitMember, int | None] | None:
    """Return the undecided member of the current step the user acts as, and the absent member's id if delegated."""
    if circuit.state != RUNNING or circuit.current_step == WITH_AUTHOR:
        return None
    waiting = [member for member in circuit.step(circuit.current_step) if member.decided_at is None]
    own = next((member for member in waiting if member.user_id == user.user_id), None)
    if own is not None:
        return own, None
    for absent_id in _standing_for_ids(user)[1:]:
        member = next((item for item in waiting if item.user_id == absent_id), None)
        if member is not None:
            return member, absent_id
    return None


def may_interrupt(user: UserContext, circuit: SignatureCircuit) -> bool:
    return circuit.state == RUNNING and (circuit.started_by_id == user.user_id or user.can("administer"))


def may_start(user: UserContext, mail: Mail) -> bool:
    """Return whether ``user`` may send a document of ``mail`` to the signature book."""
    if user.can("administer"):
        return True
    if not user.can("process"):
        return False
    return (
        mail.assignee_id == user.user_id
        or mail.created_by_id == user.user_id
        or mail.handling_department_id in user.scope_department_ids
    )


def models_for(configuration: Configuration, mail: Mail) -> list[CircuitModelSpec]:
    """Return the circuit models offered on ``mail``: its type, and its handling department or one above it."""
    path = mail.handling_department.path if mail.handling_department else ""
    codes = _department_codes_above(path)
    return [
        model for model in configuration.circuits.values()
        if (not model.mail_types or mail.mail_type in model.mail_types)
        and (not model.departments or any(code in codes for code in model.departments))
    ]


def _department_codes_above(path: str) -> set[str]:
    from app.organisation.models import Department

    ids = [int(part) for part in path.strip("/").split("/") if part.isdigit()]
    if not ids:
        return set()
    return set(db.session.execute(select(Department.code).where(Department.id.in_(ids))).scalars())


# --- The frozen document --------------------------------------------------------------


def frozen_pdf(circuit: SignatureCircuit) -> bytes:
    """Return the circuit's PDF after checking it against the SHA-256 recorded at the start.

    Raises FrozenDocumentChanged when the version row or the stored file differs.
    """
    version = db.session.get(DocumentVersion, circuit.version_id)
    expected = circuit.frozen_sha256 or (version.pdf_sha256 if version else None)
    if version is None or expected is None:
        raise CircuitRefused(_l("The document in the signature book has no PDF yet: convert it to PDF first."))
    if version.pdf_sha256 != expected:
        log.error(
            "circuit %s: version %s has PDF %s, frozen %s", circuit.id, version.id, version.pdf_sha256, expected
        )
        raise FrozenDocumentChanged()
    try:
        with content_store().open_verified(expected) as file:
            return file.read()
    except StorageError as error:
        log.error("circuit %s: frozen PDF %s unreadable: %s", circuit.id, expected, error)
        raise FrozenDocumentChanged() from None


def _freeze(circuit: SignatureCircuit) -> bytes:
    """Return the checked PDF, and record its SHA-256 when the circuit's version got its PDF after the restart."""
    pdf = frozen_pdf(circuit)
    if circuit.frozen_sha256 is None:
        circuit.frozen_sha256 = db.session.get(DocumentVersion, circuit.version_id).pdf_sha256
    return pdf


# --- Running an operation -------------------------------------------------------------


def _write(function: Callable[[], T], description: str, actor: UserContext) -> T:
    try:
        return run_in_write_transaction(function, description)
    except StaleDataError:
        # Another transaction changed the circuit or the mail between our read and our write.
        db.session.rollback()
        log.info("%s by %s lost a concurrent update", description, actor.display_name)
        raise CircuitMovedOn() from None


def _load_for_update(actor: UserContext, circuit_id: int) -> tuple[SignatureCircuit, Mail]:
    circuit = db.session.get(SignatureCircuit, circuit_id, populate_existing=True)
    if circuit is None:
        raise NotFound()
    mail = db.session.get(Mail, circuit.mail_id, populate_existing=True)
    if mail is None or seeing_context(actor, mail) is None:
        raise NotFound()
    return circuit, mail


def _check_moment(circuit: SignatureCircuit, decision: Decision) -> None:
    if circuit.state != RUNNING:
        raise CircuitRefused(_l("This circuit is over: nothing more can be decided on it."))
    if decision.expected_round is not None and decision.expected_round != circuit.round:
        raise CircuitMovedOn()
    if decision.expected_step is not None and decision.expected_step != circuit.current_step:
        raise CircuitMovedOn()


def _acting(actor: UserContext, circuit: SignatureCircuit) -> tuple[CircuitMember, int | None]:
    found = acting_member(actor, circuit)
    if found is not None:
        return found
    decided = [
        member for member in circuit.step(circuit.current_step)
        if member.user_id in _standing_for_ids(actor) and member.decided_at is not None
    ]
    if decided:
        raise CircuitRefused(_l("You have already decided at this step: the other members of the step must decide too."))
    raise PermissionDenied(_l("This step of the circuit is not yours to decide."))


def _clean_comment(comment: str | None, required: bool, message: Any) -> str | None:
    text = (comment or "").strip()
    if required and not text:
        raise ValidationFailed({"comment": [str(message)]})
    if len(text) > MAX_COMMENT_LENGTH:
        raise ValidationFailed({"comment": [str(_l("At most %(limit)s characters.", limit=MAX_COMMENT_LENGTH))]})
    return text or None


def _history(
    mail: Mail, actor: UserContext, event: str, now: datetime, details: dict[str, Any],
    on_behalf_of_id: int | None = None,
) -> None:
    configuration = current_configuration()
    db.session.add(
        HistoryEntry(
            mail_id=mail.id, at=now, actor_id=actor.user_id, on_behalf_of_id=on_behalf_of_id, event=event,
            schema_version=configuration.version, details=details,
        )
    )


def _notify(event: str, mail: Mail, user_ids: Iterable[int | None], actor: UserContext, params: dict[str, Any]) -> None:
    from app.actions.notifications import queue_notification

    queue_notification(event, mail, user_ids, actor, params)


def _notify_step(circuit: SignatureCircuit, mail: Mail, actor: UserContext) -> None:
    members = circuit.step(circuit.current_step)
    _notify("signature_requested", mail, [member.user_id for member in members], actor,
            {"kind": members[0].kind if members else APPROVAL, "document": circuit.document.title})


def _touch(circuit: SignatureCircuit, mail: Mail, now: datetime) -> None:
    """Update the circuit row under its row_version, and queue the mail's search update."""
    circuit.updated_at = now
    mail.updated_at = now
    db.session.add(OutboxEvent(entity="mail", entity_id=mail.id, operation="upsert"))


def _usernames(user_ids: list[int]) -> list[str]:
    rows = db.session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()
    names = dict(rows)
    return [names.get(user_id, str(user_id)) for user_id in user_ids]


# --- Starting a circuit ----------------------------------------------------------------


def _steps_from_model(model: CircuitModelSpec) -> list[StepInput]:
    wanted = [name for step in model.steps for name in step.users]
    rows = db.session.execute(
        select(User.username, User.id).where(User.username.in_(wanted), User.active.is_(True))
    ).all()
    ids = dict(rows)
    unknown = [name for name in wanted if name not in ids]
    if unknown:
        raise ValidationFailed(
            {"model": [str(_l("The circuit model %(model)s names %(user)s, who is not an active user.",
                              model=model.id, user=unknown[0]))]}
        )
    return [StepInput(step.kind, [ids[name] for name in step.users]) for step in model.steps]


def _check_steps(steps: list[StepInput]) -> list[StepInput]:
    """Return the steps without empty ones, or raise ValidationFailed naming what is wrong."""
    steps = [StepInput(step.kind, list(dict.fromkeys(step.user_ids))) for step in steps if step.user_ids]
    if not steps:
        raise ValidationFailed({"steps": [str(_l("Choose the members of at least one step."))]})
    if len(steps) > MAX_STEPS or any(len(step.user_ids) > MAX_MEMBERS_PER_STEP for step in steps):
        raise ValidationFailed({"steps": [str(_l("At most %(steps)s steps of %(members)s members each.",
                                                 steps=MAX_STEPS, members=MAX_MEMBERS_PER_STEP))]})
    kinds = [step.kind for step in steps]
    if any(kind not in STEP_KINDS for kind in kinds):
        raise ValidationFailed({"steps": [str(_l("Each step is either an approval or a signature."))]})
    if SIGNATURE not in kinds:
        raise ValidationFailed({"steps": [str(_l("The last step must be a signature: add a signatory."))]})
    if APPROVAL in kinds[kinds.index(SIGNATURE):]:
        raise ValidationFailed({"steps": [str(_l("Approvals come before signatures: put the signatories last."))]})
    user_ids = [user_id for step in steps for user_id in step.user_ids]
    active = set(db.session.execute(select(User.id).where(User.id.in_(user_ids), User.active.is_(True))).scalars())
    if set(user_ids) - active:
        raise ValidationFailed({"steps": [str(_l("Some chosen members are not active users."))]})
    return steps


def _latest_version(document: Document) -> DocumentVersion | None:
    return db.session.execute(
        select(DocumentVersion).where(DocumentVersion.document_id == document.id)
        .order_by(DocumentVersion.number.desc()).limit(1)
    ).scalar_one_or_none()


def _list_members(mail: Mail, user_ids: list[int], actor: UserContext, now: datetime) -> None:
    """Put the circuit's members on the distribution list, so that the visibility rule shows them the mail."""
    listed = set(db.session.execute(
        select(DistributionEntry.user_id).where(DistributionEntry.mail_id == mail.id, DistributionEntry.role == CIRCUIT)
    ).scalars())
    for user_id in dict.fromkeys(user_ids):
        if user_id not in listed:
            db.session.add(DistributionEntry(
                mail_id=mail.id, role=CIRCUIT, user_id=user_id, requested_by_id=actor.user_id, requested_at=now,
            ))


def start_circuit(
    actor: UserContext, mail_id: int, document_id: int, *, model_id: str | None = None,
    steps: list[StepInput] | None = None, now: datetime | None = None,
) -> SignatureCircuit:
    """Send a document of a mail to the signature book, along a declared model or steps chosen by hand."""
    configuration = current_configuration()
    moment = now or utcnow()

    def write() -> SignatureCircuit:
        mail = db.session.get(Mail, mail_id, populate_existing=True)
        if mail is None or seeing_context(actor, mail) is None:
            raise NotFound()
        if not may_start(actor, mail):
            raise PermissionDenied(_l("You may not send the documents of this mail to the signature book."))
        document = db.session.get(Document, document_id)
        if document is None or document.mail_id != mail.id:
            raise NotFound()
        _check_can_start(configuration, mail, document)
        version = _latest_version(document)
        if version is None or version.pdf_sha256 is None:
            raise ValidationFailed({"document_id": [str(_l("This document has no PDF yet: convert it to PDF first."))]})

        model = None
        if model_id:
            model = configuration.circuits.get(model_id)
            if model is None or model not in models_for(configuration, mail):
                raise ValidationFailed({"model": [str(_l("Unknown circuit model %(model)s.", model=model_id))]})
            chosen = _check_steps(_steps_from_model(model))
        else:
            chosen = _check_steps(steps or [])
        after = model.status_after_signature if model else DEFAULT_STATUS_AFTER_SIGNATURE
        if after not in configuration.statuses:
            raise CircuitRefused(_l("The status %(status)s is not declared: the circuit cannot end.", status=after))

        circuit = SignatureCircuit(
            mail_id=mail.id, document_id=document.id, model_id=model.id if model else None, state=RUNNING,
            current_step=1, round=1, version_id=version.id, frozen_sha256=version.pdf_sha256,
            previous_status=_status_before_book(mail), status_after_signature=after, started_by_id=actor.user_id,
            started_at=moment, updated_at=moment,
        )
        for position, step in enumerate(chosen, start=1):
            for user_id in step.user_ids:
                circuit.members.append(CircuitMember(position=position, kind=step.kind, user_id=user_id))
        db.session.add(circuit)
        frozen_pdf(circuit)
        _list_members(mail, [user_id for step in chosen for user_id in step.user_ids], actor, moment)

        from_status = mail.status
        document.state = "in_circuit"
        mail.status = IN_SIGNATURE_BOOK
        _touch(circuit, mail, moment)
        db.session.flush()
        _history(mail, actor, "circuit_started", moment, {
            "circuit_id": circuit.id, "document": document.title, "version": version.number,
            "sha256": version.pdf_sha256, "model": circuit.model_id,
            "steps": [{"kind": step.kind, "users": _usernames(step.user_ids)} for step in chosen],
            "from_status": from_status, "to_status": mail.status,
        })
        _notify_step(circuit, mail, actor)
        return circuit

    circuit = _write(write, "start circuit", actor)
    log.info("mail %s circuit %s started by %s", circuit.mail.chrono, circuit.id, actor.display_name)
    return circuit


def _status_before_book(mail: Mail) -> str:
    """Return the mail's status before the signature book, also when another document of it is already there."""
    if mail.status != IN_SIGNATURE_BOOK:
        return mail.status
    earlier = db.session.execute(
        select(SignatureCircuit.previous_status).where(
            SignatureCircuit.mail_id == mail.id, SignatureCircuit.state == RUNNING,
        ).order_by(SignatureCircuit.id).limit(1)
    ).scalar_one_or_none()
    return earlier or mail.status


def _check_can_start(configuration: Configuration, mail: Mail, document: Document) -> None:
    if IN_SIGNATURE_BOOK not in configuration.statuses:
        raise CircuitRefused(_l("The configuration declares no status %(status)s.", status=IN_SIGNATURE_BOOK))
    if mail.status in configuration.closed_statuses:
        raise CircuitRefused(_l("This mail is closed: reopen it before sending a document to the signature book."))
    if running_circuit_of_document(document.id) is not None:
        raise CircuitRefused(_l("This document is already in the signature book."))
    if document.state != "draft":
        raise CircuitRefused(_l("Only a draft document can be sent to the signature book."))


# --- Decisions ---------------------------------------------------------------------------


def approve(actor: UserContext, circuit_id: int, decision: Decision, now: datetime | None = None) -> SignatureCircuit:
    """Approve the current step as one of its members (or their delegate); the last approval moves the circuit on."""
    moment = now or utcnow()

    def write() -> SignatureCircuit:
        circuit, mail = _load_for_update(actor, circuit_id)
        _check_moment(circuit, decision)
        member, on_behalf_of_id = _acting(actor, circuit)
        if member.kind != APPROVAL:
            raise CircuitRefused(_l("This step is a signature: sign the document instead."))
        comment = _clean_comment(decision.comment, False, "")
        _freeze(circuit)

        member.decided_at = moment
        member.decided_by_id = actor.user_id
        details: dict[str, Any] = {"circuit_id": circuit.id, "step": circuit.current_step, "round": circuit.round}
        if comment:
            details["comment"] = comment
        if all(item.decided_at is not None for item in circuit.step(circuit.current_step)):
            _next_step(circuit, mail, actor, details)
        _touch(circuit, mail, moment)
        _history(mail, actor, "circuit_approved", moment, details, on_behalf_of_id)
        return circuit

    circuit = _write(write, "approve", actor)
    log.info("mail %s circuit %s approved by %s", circuit.mail.chrono, circuit.id, actor.display_name)
    return circuit


def _next_step(circuit: SignatureCircuit, mail: Mail, actor: UserContext, details: dict[str, Any]) -> None:
    """Move the circuit to its next step, record it in ``details`` and notify that step's members."""
    circuit.current_step += 1
    details["next_step"] = circuit.current_step
    _notify_step(circuit, mail, actor)


def reject(
    actor: UserContext, circuit_id: int, decision: Decision, back_to: str, now: datetime | None = None,
) -> SignatureCircuit:
    """Send the document back to the previous step (``previous``) or to its author (``author``), with a comment."""
    moment = now or utcnow()
    if back_to not in ("previous", "author"):
        raise ValidationFailed({"back_to": [str(_l("Choose whom to send the document back to."))]})

    def write() -> SignatureCircuit:
        circuit, mail = _load_for_update(actor, circuit_id)
        _check_moment(circuit, decision)
        _member, on_behalf_of_id = _acting(actor, circuit)
        comment = _clean_comment(decision.comment, True, _l("Say why you reject the document: a comment is required."))

        from_step = circuit.current_step
        target = WITH_AUTHOR if back_to == "author" else from_step - 1
        for member in circuit.members:
            if member.position >= max(target, 1):
                member.decided_at = None
                member.decided_by_id = None
        circuit.current_step = target
        _touch(circuit, mail, moment)
        _history(mail, actor, "circuit_rejected", moment, {
            "circuit_id": circuit.id, "step": from_step, "to_step": target, "round": circuit.round,
            "comment": comment,
        }, on_behalf_of_id)
        recipients = [circuit.started_by_id] if target == WITH_AUTHOR else [m.user_id for m in circuit.step(target)]
        _notify("signature_returned", mail, recipients, actor, {"document": circuit.document.title, "comment": comment})
        return circuit

    circuit = _write(write, "reject", actor)
    log.info("mail %s circuit %s rejected by %s back to step %s", circuit.mail.chrono, circuit.id,
             actor.display_name, circuit.current_step)
    return circuit


def _restart(circuit: SignatureCircuit) -> None:
    circuit.round += 1
    circuit.current_step = 1
    for member in circuit.members:
        member.decided_at = None
        member.decided_by_id = None


def resubmit(actor: UserContext, circuit_id: int, decision: Decision, now: datetime | None = None) -> SignatureCircuit:
    """Send a document that came back to its author to the first step again, unchanged."""
    moment = now or utcnow()

    def write() -> SignatureCircuit:
        circuit, mail = _load_for_update(actor, circuit_id)
        _check_moment(circuit, decision)
        if circuit.current_step != WITH_AUTHOR:
            raise CircuitRefused(_l("The document is not back with its author."))
        if circuit.started_by_id != actor.user_id and not actor.can("administer"):
            raise PermissionDenied()
        comment = _clean_comment(decision.comment, False, "")
        _freeze(circuit)
        _restart(circuit)
        _touch(circuit, mail, moment)
        details: dict[str, Any] = {"circuit_id": circuit.id, "reason": "resubmitted", "round": circuit.round}
        if comment:
            details["comment"] = comment
        _history(mail, actor, "circuit_restarted", moment, details)
        _notify_step(circuit, mail, actor)
        return circuit

    return _write(write, "resubmit", actor)


def interrupt(actor: UserContext, circuit_id: int, decision: Decision, now: datetime | None = None) -> SignatureCircuit:
    """Stop a running circuit (its author or an administrator): the document is a draft again."""
    moment = now or utcnow()

    def write() -> SignatureCircuit:
        circuit, mail = _load_for_update(actor, circuit_id)
        if circuit.state != RUNNING:
            raise CircuitRefused(_l("This circuit is over: nothing more can be decided on it."))
        if not may_interrupt(actor, circuit):
            raise PermissionDenied(_l("Only the author of the circuit or an administrator may interrupt it."))
        comment = _clean_comment(decision.comment, False, "")
        circuit.state = INTERRUPTED
        circuit.finished_at = moment
        circuit.document.state = "draft"
        from_status = mail.status
        if mail.status == IN_SIGNATURE_BOOK and not _other_running(circuit):
            mail.status = circuit.previous_status
        _touch(circuit, mail, moment)
        details: dict[str, Any] = {"circuit_id": circuit.id, "step": circuit.current_step,
                                   "from_status": from_status, "to_status": mail.status}
        if comment:
            details["comment"] = comment
        _history(mail, actor, "circuit_interrupted", moment, details)
        return circuit

    circuit = _write(write, "interrupt", actor)
    log.info("mail %s circuit %s interrupted by %s", circuit.mail.chrono, circuit.id, actor.display_name)
    return circuit


def _other_running(circuit: SignatureCircuit) -> bool:
    found = db.session.execute(
        select(SignatureCircuit.id).where(
            SignatureCircuit.mail_id == circuit.mail_id, SignatureCircuit.state == RUNNING,
            SignatureCircuit.id != circuit.id,
        ).limit(1)
    ).first()
    return found is not None


# --- Signing ---------------------------------------------------------------------------------


def _signature_block(actor: UserContext, member: CircuitMember, on_behalf_of_id: int | None,
                     language: str, moment: datetime) -> SignatureBlock:
    from zoneinfo import ZoneInfo

    from app.documents.fields import long_date

    profile = db.session.get(SignatureProfile, actor.user_id)
    image = None
    if profile is not None and profile.image_sha256:
        try:
            with content_store().open_verified(profile.image_sha256) as file:
                image = file.read()
        except StorageError as error:
            log.warning("signature image of user %s unreadable: %s", actor.user_id, error)
    day = moment.astimezone(ZoneInfo("Europe/Paris")).date()
    with force_locale(language):
        heading = _("Signed electronically by")
        title = (profile.title if profile and profile.title else "") or ""
        if on_behalf_of_id is not None:
            absent = db.session.get(User, on_behalf_of_id)
            absent_name = f"{absent.first_name} {absent.last_name}".strip() if absent else str(on_behalf_of_id)
            title = _("for %(name)s", name=absent_name) + (f", {title}" if title else "")
        date_text = _("on %(date)s", date=long_date(day, language))
    return SignatureBlock(heading, actor.display_name, title, date_text, image)


def _signed_pdf(pdf: bytes, block: SignatureBlock, index: int, last: bool, reason: str) -> tuple[bytes, bool]:
    """Return the PDF with the block, and PAdES-signed when it is the last signature and a certificate is set.

    The earlier signatories of a circuit get a visible block only. The one
    PAdES signature, made with the configured certificate of the
    administration, covers every block, because a block drawn after a PAdES
    signature would rewrite the file and break that signature.
    """
    stamped = stamp_block(pdf, block, index)
    path = current_app.config.get("SIGNATURE_PKCS12") or ""
    if not (last and path):
        return stamped, False
    signed = pades_sign(stamped, path, current_app.config.get("SIGNATURE_PKCS12_PASSWORD") or "", block.name,
                        reason, current_app.config.get("APP_NAME", ""))
    return signed, True


def sign(actor: UserContext, circuit_id: int, decision: Decision, now: datetime | None = None) -> SignatureCircuit:
    """Sign the frozen document as a signatory of the current step (or their delegate).

    The signed PDF becomes a new version of the document. When it is the
    last signature, that version is marked signed, the PDF is attached to the
    mail as its signed reply and the mail takes the circuit's status after
    signature. Otherwise the next signatories sign that new version.
    """
    moment = now or utcnow()

    def write() -> SignatureCircuit:
        circuit, mail = _load_for_update(actor, circuit_id)
        _check_moment(circuit, decision)
        member, on_behalf_of_id = _acting(actor, circuit)
        if member.kind != SIGNATURE:
            raise CircuitRefused(_l("This step is an approval: only signatories sign."))
        pdf = _freeze(circuit)
        if decision.expected_sha256 and decision.expected_sha256 != circuit.frozen_sha256:
            raise CircuitMovedOn()

        member.decided_at = moment
        member.decided_by_id = actor.user_id
        step_done = all(item.decided_at is not None for item in circuit.step(circuit.current_step))
        last = step_done and circuit.current_step == circuit.last_position
        earlier = sum(1 for item in circuit.members if item.kind == SIGNATURE and item.decided_at is not None) - 1
        document = circuit.document
        block = _signature_block(actor, member, on_behalf_of_id, document.language or "fr", moment)
        try:
            signed_pdf, pades = _signed_pdf(pdf, block, earlier, last, document.title)
        except StampingFailed as error:
            log.error("mail %s circuit %s: signature failed: %s", mail.chrono, circuit.id, error)
            raise CircuitRefused(_l("The signature could not be applied to the PDF: ask an administrator to check "
                                    "the document and the certificate.")) from None
        version = _store_signed_version(circuit, signed_pdf, last, actor, moment)
        details: dict[str, Any] = {
            "circuit_id": circuit.id, "step": circuit.current_step, "round": circuit.round,
            "version": version.number, "sha256": version.pdf_sha256, "pades": pades,
        }
        if last:
            _finish(circuit, mail, version, actor, moment, details)
        elif step_done:
            _next_step(circuit, mail, actor, details)
        _touch(circuit, mail, moment)
        _history(mail, actor, "circuit_signed", moment, details, on_behalf_of_id)
        return circuit

    circuit = _write(write, "sign", actor)
    log.info("mail %s circuit %s signed by %s", circuit.mail.chrono, circuit.id, actor.display_name)
    return circuit


def _store_signed_version(
    circuit: SignatureCircuit, pdf: bytes, last: bool, actor: UserContext, moment: datetime,
) -> DocumentVersion:
    blob = content_store().put_bytes(pdf)
    frozen = db.session.get(DocumentVersion, circuit.version_id)
    number = db.session.execute(
        select(func.max(DocumentVersion.number)).where(DocumentVersion.document_id == circuit.document_id)
    ).scalar_one() or 0
    version = DocumentVersion(
        document_id=circuit.document_id, number=number + 1, docx_sha256=frozen.docx_sha256 if frozen else None,
        docx_size=frozen.docx_size if frozen else None, pdf_sha256=blob.sha256, pdf_size=blob.size, signed=last,
        note=_signed_note(circuit.document.language, actor.display_name), created_at=moment,
        created_by_id=actor.user_id,
    )
    db.session.add(version)
    db.session.flush()
    # The next signatory signs this version: the circuit freezes it in turn.
    circuit.version_id = version.id
    circuit.frozen_sha256 = blob.sha256
    return version


def _finish(
    circuit: SignatureCircuit, mail: Mail, version: DocumentVersion, actor: UserContext, moment: datetime,
    details: dict[str, Any],
) -> None:
    configuration = current_configuration()
    document = circuit.document
    circuit.state = SIGNED
    circuit.finished_at = moment
    document.state = "signed"
    db.session.add(Attachment(
        mail_id=mail.id, sha256=version.pdf_sha256, size=version.pdf_size or 0,
        display_name=f"{document.title} ({_signed_suffix(document.language)}).pdf", content_type="application/pdf",
        kind="signed", version=version.number, uploaded_at=moment, uploaded_by_id=actor.user_id,
    ))
    from_status = mail.status
    # Another document of the mail still in the signature book keeps the mail there.
    if not _other_running(circuit):
        mail.status = circuit.status_after_signature
        if mail.status in configuration.closed_statuses:
            mail.closed_at = moment
    details.update({"completed": True, "from_status": from_status, "to_status": mail.status})
    _notify("document_signed", mail, [circuit.started_by_id, mail.assignee_id], actor,
            {"document": document.title})


def _signed_note(language: str | None, name: str) -> str:
    with force_locale(language or "fr"):
        return _("Signed by %(name)s", name=name)


def _signed_suffix(language: str | None) -> str:
    with force_locale(language or "fr"):
        return _("signed")


# --- New versions of a document ----------------------------------------------------------------


def restart_on_new_version(document: Document, version: DocumentVersion, actor: UserContext) -> bool:
    """Restart the approvals of the document's running circuit on ``version``, in the caller's transaction.

    Returns False when no circuit runs on the document, when it already shows
    that version, or when the version is a signed one.
    """
    circuit = running_circuit_of_document(document.id)
    # A signed version is what the circuit itself produces, not a change made to the document.
    if circuit is None or circuit.version_id == version.id or version.signed:
        return False
    moment = utcnow()
    mail = db.session.get(Mail, circuit.mail_id)
    assert mail is not None
    previous = db.session.get(DocumentVersion, circuit.version_id)
    circuit.version_id = version.id
    circuit.frozen_sha256 = version.pdf_sha256
    _restart(circuit)
    _touch(circuit, mail, moment)
    _history(mail, actor, "circuit_restarted", moment, {
        "circuit_id": circuit.id, "reason": "new_version", "round": circuit.round,
        "from_version": previous.number if previous else None, "version": version.number,
        "sha256": version.pdf_sha256,
    })
    _notify_step(circuit, mail, actor)
    log.info("mail %s circuit %s restarted on version %s by %s", mail.chrono, circuit.id, version.number,
             actor.display_name)
    return True


# --- Signature profiles ------------------------------------------------------------------------------

MAX_TITLE_LENGTH = 200
# A scanned signature is a few hundred kilobytes, drawn 70 points (2.5 cm) wide on each signed PDF.
MAX_SIGNATURE_IMAGE_BYTES = 2 * 1024 * 1024
MAX_SIGNATURE_IMAGE_PIXELS = 16_000_000


def profile_of(user_id: int) -> SignatureProfile | None:
    return db.session.get(SignatureProfile, user_id)


def _check_signature_image(image: bytes, user_id: int) -> None:
    """Raise ValidationFailed unless ``image``, uploaded by user ``user_id``, is a PNG or JPEG file of reasonable size that decodes."""
    from PIL import Image, UnidentifiedImageError

    if len(image) > MAX_SIGNATURE_IMAGE_BYTES:
        raise ValidationFailed({"image": [str(_l(
            "The signature image is larger than %(limit)s MB: scan or export it again at a lower resolution.",
            limit=MAX_SIGNATURE_IMAGE_BYTES // (1024 * 1024),
        ))]})
    invalid = ValidationFailed({"image": [str(_l("The signature image must be a PNG or JPEG file."))]})
    try:
        with Image.open(io.BytesIO(image), formats=("PNG", "JPEG")) as decoded:
            if decoded.width * decoded.height > MAX_SIGNATURE_IMAGE_PIXELS:
                raise ValidationFailed({"image": [str(_l(
                    "The signature image has more than %(limit)s million pixels: export it again at a lower"
                    " resolution.", limit=MAX_SIGNATURE_IMAGE_PIXELS // 1_000_000,
                ))]})
            decoded.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        log.info("signature image of user %s rejected: %s", user_id, error)
        raise invalid from None


def save_profile(actor: UserContext, title: str | None, image: bytes | None, remove_image: bool = False) -> None:
    """Save the title and image of the actor's visible signature block; the image must be PNG or JPEG."""
    title = (title or "").strip() or None
    if title and len(title) > MAX_TITLE_LENGTH:
        raise ValidationFailed({"title": [str(_l("At most %(limit)s characters.", limit=MAX_TITLE_LENGTH))]})
    sha256 = None
    if image:
        _check_signature_image(image, actor.user_id)
        sha256 = content_store().put_bytes(image, MAX_SIGNATURE_IMAGE_BYTES).sha256

    def write() -> None:
        profile = db.session.get(SignatureProfile, actor.user_id)
        if profile is None:
            profile = SignatureProfile(user_id=actor.user_id)
            db.session.add(profile)
        profile.title = title
        if sha256 is not None:
            profile.image_sha256 = sha256
        elif remove_image:
            profile.image_sha256 = None
        profile.updated_at = utcnow()

    run_in_write_transaction(write, "save signature profile")
    log.info("signature profile of %s saved", actor.display_name)
