"""Search outbox rows for every ORM change to indexed data, written in the flush that makes the change.

Operations may add an ``OutboxEvent`` themselves. This listener makes the
rule hold for every write path that goes through the ORM, present or future:
actions, routing, distribution lists, reminders, bulk operations, imports.
After each flush it looks at the rows the flush inserted, updated or deleted:

- a mail, inserted, changed (every change bumps ``row_version``, which
  ``flask search status`` compares with the index) or deleted;
- a mail's correspondent links, attachments and distribution entries (their
  targets are visibility facts, their answers are notes);
- a history entry carrying a comment (comments are notes);
- a correspondent whose name, e-mail or city changed: every mail linked to it.

and inserts one outbox row per mail not yet queued in the same transaction,
on the flush's own connection, so the row commits or rolls back with the
change. Writes made with SQL statements (``update(Mail)``) bypass the ORM
and must add their outbox rows themselves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Session

from app.attachments.models import Attachment
from app.core.db import InsertBatch
from app.core.types import utcnow
from app.correspondents.models import Correspondent
from app.distribution.models import DistributionEntry
from app.mail.models import HistoryEntry, Mail, MailCorrespondent
from app.search.models import OutboxEvent

# Mail ids already queued in the session's current transaction, kept in Session.info.
QUEUED_KEY = "search_outbox_queued"
DISTRIBUTION_INDEXED = ("mail_id", "user_id", "department_id", "answer")
CORRESPONDENT_INDEXED = ("civility", "first_name", "last_name", "organisation", "email", "city")
LINK_INDEXED = ("mail_id", "correspondent_id")
ATTACHMENT_INDEXED = ("mail_id", "sha256", "display_name")


def _changed(instance: Any, names: tuple[str, ...]) -> bool:
    attributes = inspect(instance).attrs
    return any(attributes[name].history.has_changes() for name in names)


def _old_mail_id(instance: Any) -> int | None:
    # A row moved to another mail leaves the old one too.
    deleted = inspect(instance).attrs["mail_id"].history.deleted
    return deleted[0] if deleted else None


def _mail_ids_of(instance: Any, change: str) -> set[int]:
    """Return the mails whose index entry the change to ``instance`` makes stale."""
    if isinstance(instance, Mail):
        return {instance.id}
    if isinstance(instance, HistoryEntry):
        has_comment = isinstance(instance.details, dict) and bool(instance.details.get("comment"))
        return {instance.mail_id} if has_comment else set()
    indexed = {DistributionEntry: DISTRIBUTION_INDEXED, MailCorrespondent: LINK_INDEXED, Attachment: ATTACHMENT_INDEXED}
    names = indexed.get(type(instance))
    if names is None:
        return set()
    if change == "dirty" and not _changed(instance, names):
        return set()
    return {mail_id for mail_id in (instance.mail_id, _old_mail_id(instance)) if mail_id is not None}


def _changed_correspondent_ids(session: Session) -> set[int]:
    return {
        instance.id
        for instance in session.dirty
        if isinstance(instance, Correspondent) and _changed(instance, CORRESPONDENT_INDEXED)
    }


# Built once: this listener runs at every flush that changes a mail.
_INSERT_EVENT = insert(OutboxEvent.__table__)


def _queue_after_flush(session: Session, _flush_context: Any) -> None:
    queued: set[int] = session.info.setdefault(QUEUED_KEY, set())
    for instance in session.new:
        if isinstance(instance, OutboxEvent) and instance.entity == "mail":
            queued.add(instance.entity_id)

    mail_ids: set[int] = set()
    for change, instances in (("new", session.new), ("dirty", session.dirty), ("deleted", session.deleted)):
        for instance in instances:
            if change == "dirty" and not session.is_modified(instance, include_collections=False):
                continue
            mail_ids |= _mail_ids_of(instance, change)

    connection = session.connection()
    correspondents = _changed_correspondent_ids(session)
    if correspondents:
        linked = select(MailCorrespondent.mail_id).where(MailCorrespondent.correspondent_id.in_(sorted(correspondents)))
        mail_ids |= set(connection.execute(linked).scalars())

    missing = sorted(mail_ids - queued)
    if not missing:
        return
    now = utcnow()
    connection.execute(
        _INSERT_EVENT,
        [{"entity": "mail", "entity_id": mail_id, "operation": "upsert", "created_at": now} for mail_id in missing],
    )
    queued.update(missing)


def queue_inserted_mail(session: Session, mail_id: int, batch: InsertBatch | None = None) -> None:
    """Queue the index update of a mail inserted with an SQL statement, which the flush listener does not see.

    The mail counts as queued for the rest of the transaction, as if a flush had inserted it.
    With ``batch``, the outbox row is inserted with the batch's other rows.
    """
    row = {"entity": "mail", "entity_id": mail_id, "operation": "upsert", "created_at": utcnow()}
    if batch is not None:
        batch.add(OutboxEvent.__table__, [row])
    else:
        session.connection().execute(_INSERT_EVENT, row)
    session.info.setdefault(QUEUED_KEY, set()).add(mail_id)


def _forget_queued(session: Session, _transaction: Any) -> None:
    # Forgetting too early can only queue a mail twice, which the indexer reads as one change.
    session.info.pop(QUEUED_KEY, None)


def install_outbox_listener() -> None:
    """Register the listener on every ORM session, once per process whatever the number of applications."""
    if not event.contains(Session, "after_flush", _queue_after_flush):
        event.listen(Session, "after_flush", _queue_after_flush)
        event.listen(Session, "after_transaction_end", _forget_queued)
