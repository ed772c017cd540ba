"""The acknowledgement-of-receipt (AR) state stored on each mail, for the AR baskets.

Two columns of ``mail`` hold what app.documents.acknowledgements defines:
``acknowledgement_pending`` is true while the mail's type needs ARs and one
of its senders has no sent AR, and ``acknowledged_at`` is when the mail's
latest AR was sent (null while none was). A mail with two senders, one
acknowledged, has both, and so is in both AR baskets.

They are written in the transaction of every change that can alter them:
- registration sets ``acknowledgement_pending`` (app.mail.operations);
- a flush listener notes the mails whose sender links or AR documents
  changed, and the mails whose type changed, and recomputes their state
  just before the commit;
- ``flask schemas apply`` recomputes the mail of every type whose need for
  ARs changed (app.configuration.operations);
- migration 0013 filled the columns of the mail registered before it.

A bulk UPDATE of ``document`` or ``mail_correspondent`` rows goes round the
listener: code that writes one must call ``refresh_acknowledgement_state``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, event, exists, false, func, inspect, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.configuration.loader import Configuration
from app.documents.models import Document
from app.mail.models import Mail, MailCorrespondent

ACKNOWLEDGEMENT = "acknowledgement"
# Mails whose AR state to recompute at the commit, and mails inserted in the transaction.
CHANGED_KEY = "estafette_acknowledgement_changed"
INSERTED_KEY = "estafette_acknowledgement_inserted"
# Mails recomputed per UPDATE statement.
REFRESH_BATCH = 500


def types_needing_acknowledgement(configuration: Configuration) -> list[str]:
    return sorted(type_id for type_id, spec in configuration.mail_types.items() if spec.acknowledgement != "none")


def pending_expression(types: Iterable[str]) -> ColumnElement[bool]:
    """Return, for the mail row in scope, whether its type is in ``types`` and one of its senders has no sent AR."""
    types = sorted(types)
    if not types:
        return false()
    sent_to_sender = exists(
        select(Document.id).where(
            Document.mail_id == MailCorrespondent.mail_id, Document.kind == ACKNOWLEDGEMENT,
            Document.correspondent_id == MailCorrespondent.correspondent_id, Document.state == "sent",
        )
    )
    unacknowledged = select(MailCorrespondent.id).where(
        MailCorrespondent.mail_id == Mail.id, MailCorrespondent.role == "sender", ~sent_to_sender
    )
    return and_(Mail.mail_type.in_(types), exists(unacknowledged))


def acknowledged_at_expression() -> ColumnElement[Any]:
    """Return, for the mail row in scope, when its latest AR was sent (null if none was)."""
    return (
        select(func.max(Document.sent_at))
        .where(Document.mail_id == Mail.id, Document.kind == ACKNOWLEDGEMENT, Document.state == "sent")
        .scalar_subquery()
    )


def refresh_statement(condition: ColumnElement[bool], types: Iterable[str]) -> Any:
    """Return the UPDATE that recomputes both columns of the mail matching ``condition``."""
    return (
        update(Mail.__table__)
        .where(condition)
        .values(acknowledgement_pending=pending_expression(types), acknowledged_at=acknowledged_at_expression())
    )


def refresh_acknowledgement_state(connection: Connection, mail_ids: Iterable[int], types: Iterable[str]) -> None:
    """Recompute the AR state of the listed mails from their senders and AR documents."""
    ids = sorted(set(mail_ids))
    types = sorted(types)
    for start in range(0, len(ids), REFRESH_BATCH):
        connection.execute(refresh_statement(Mail.id.in_(ids[start:start + REFRESH_BATCH]), types))


def refresh_changed_types(connection: Connection, before: Configuration | None, after: Configuration) -> list[str]:
    """Recompute the mail of every type whose need for ARs differs between two configurations; return those types."""
    old = set(types_needing_acknowledgement(before)) if before is not None else set()
    new = set(types_needing_acknowledgement(after))
    changed = sorted(old ^ new)
    if changed:
        connection.execute(refresh_statement(Mail.mail_type.in_(changed), new))
    return changed


def refresh_all(connection: Connection, configuration: Configuration) -> None:
    """Recompute the AR state of every mail."""
    connection.execute(refresh_statement(true(), types_needing_acknowledgement(configuration)))


# --- The flush listener ------------------------------------------------------------------------


def _changed_mail_ids(instance: Any, is_new: bool, inserted: set[int]) -> set[int]:
    state = inspect(instance)
    if isinstance(instance, Mail):
        changed = not is_new and instance.id not in inserted and state.attrs["mail_type"].history.has_changes()
        return {instance.id} if changed else set()
    if isinstance(instance, Document):
        kinds = {instance.kind, *(state.attrs["kind"].history.deleted or ())}
        if ACKNOWLEDGEMENT not in kinds:
            return set()
    elif isinstance(instance, MailCorrespondent):
        # Registration sets the state of the mail it inserts with its sender.
        if is_new and instance.mail_id in inserted:
            return set()
    else:
        return set()
    ids = {instance.mail_id, *(state.attrs["mail_id"].history.deleted or ())}
    return {mail_id for mail_id in ids if mail_id is not None}


def _collect_after_flush(session: Session, _flush_context: Any) -> None:
    changed: set[int] = session.info.setdefault(CHANGED_KEY, set())
    inserted: set[int] = session.info.setdefault(INSERTED_KEY, set())
    inserted.update(instance.id for instance in session.new if isinstance(instance, Mail))
    for instances, is_new in ((session.new, True), (session.dirty, False), (session.deleted, False)):
        for instance in instances:
            changed |= _changed_mail_ids(instance, is_new, inserted)


def note_inserted_mail(session: Session, mail_id: int) -> None:
    """Record a mail inserted with an SQL statement as the flush listener records one the ORM inserted.

    The caller sets the new mail's state itself, as registration does, so
    later flushes in the transaction skip the mail's new correspondent links.
    """
    session.info.setdefault(INSERTED_KEY, set()).add(mail_id)


def _refresh_before_commit(session: Session) -> None:
    """Recompute the noted mails' AR state in the transaction that commits their change."""
    session.flush()
    changed = session.info.pop(CHANGED_KEY, set())
    session.info.pop(INSERTED_KEY, None)
    if not changed:
        return
    from app.configuration.operations import current_configuration

    types = types_needing_acknowledgement(current_configuration())
    refresh_acknowledgement_state(session.connection(), changed, types)
    for state in list(session.identity_map.all_states()):
        instance = state.obj()
        if isinstance(instance, Mail) and state.identity is not None and state.identity[0] in changed:
            session.expire(instance, ["acknowledgement_pending", "acknowledged_at"])


def _forget_changed(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(CHANGED_KEY, None)
        session.info.pop(INSERTED_KEY, None)


def install_acknowledgement_listener() -> None:
    """Register the listeners on every ORM session, once per process whatever the number of applications."""
    if not event.contains(Session, "after_flush", _collect_after_flush):
        event.listen(Session, "after_flush", _collect_after_flush)
        event.listen(Session, "before_commit", _refresh_before_commit)
        event.listen(Session, "after_transaction_end", _forget_changed)
