"""The indexer: drains the search outbox into the backend and rebuilds the index.

Operations write an ``OutboxEvent`` in the transaction of each change. The
indexer reads pending events, builds the documents of their mails (attachment
text included, extracted here and never at registration), writes them to the
backend and marks the events processed. When the backend is down, the
events stay pending and the next drain indexes them: nothing is lost.

Scanned PDFs and images wait for OCR: their mail is indexed at once by its
metadata, an ``attachment``/``ocr`` event is queued, and the OCR pass indexes
the mail again with the recognised text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from app.attachments.models import Attachment
from app.attachments.operations import content_store
from app.attachments.storage import StorageError
from app.core.db import run_in_write_transaction
from app.core.types import utcnow
from app.extensions import db
from app.mail.models import Mail, MailCorrespondent
from app.search.backends import BackendUnavailable, SearchBackend, configured_backend
from app.search.documents import MailDocument, build_documents
from app.search.models import ExtractedText, OutboxEvent
from app.search.text_extraction import extract_text, ocr_available, ocr_text

log = logging.getLogger(__name__)

DRAIN_BATCH = 200
OCR_BATCH = 5
REINDEX_BATCH = 500


@dataclass
class DrainResult:
    indexed: int = 0
    deleted: int = 0
    recognised: int = 0
    failed: bool = False

    def __iadd__(self, other: DrainResult) -> DrainResult:
        self.indexed += other.indexed
        self.deleted += other.deleted
        self.recognised += other.recognised
        self.failed = self.failed or other.failed
        return self


# --- Attachment text ------------------------------------------------------------------------------


def _attachment_texts(mails: Iterable[Mail]) -> tuple[dict[int, str], list[ExtractedText], list[OutboxEvent]]:
    """Return each mail's attachment text, the new extraction rows to store and the OCR events to queue."""
    attachments = [attachment for mail in mails for attachment in mail.attachments]
    known = {
        row.sha256: row
        for row in db.session.execute(
            select(ExtractedText).where(ExtractedText.sha256.in_({attachment.sha256 for attachment in attachments}))
        ).scalars()
    } if attachments else {}
    new_rows: dict[str, ExtractedText] = {}
    ocr_events: list[OutboxEvent] = []
    texts: dict[int, list[str]] = {}
    for attachment in attachments:
        row = known.get(attachment.sha256) or new_rows.get(attachment.sha256)
        if row is None:
            row, needs_ocr = _extract(attachment)
            new_rows[attachment.sha256] = row
            if needs_ocr:
                ocr_events.append(OutboxEvent(entity="attachment", entity_id=attachment.id, operation="ocr"))
        if row.text:
            texts.setdefault(attachment.mail_id, []).append(row.text)
    return {mail_id: "\n".join(parts) for mail_id, parts in texts.items()}, list(new_rows.values()), ocr_events


def _read(attachment: Attachment) -> bytes | None:
    try:
        return content_store().read_verified(attachment.sha256).read_bytes()
    except (StorageError, OSError) as error:
        log.warning("attachment %s of mail %s unreadable for indexing: %s", attachment.id, attachment.mail_id, error)
        return None


def _extract(attachment: Attachment) -> tuple[ExtractedText, bool]:
    data = _read(attachment)
    if data is None:
        return ExtractedText(sha256=attachment.sha256, method="failed", text=""), False
    extraction = extract_text(data, attachment.content_type, attachment.display_name)
    needs_ocr = extraction.needs_ocr and bool(current_app.config.get("SEARCH_OCR_LANGUAGE")) and ocr_available()
    method = "ocr_pending" if needs_ocr else extraction.method
    return ExtractedText(sha256=attachment.sha256, method=method, text=extraction.text), needs_ocr


# --- Draining the outbox -------------------------------------------------------------------------------


def _load_mails(mail_ids: list[int]) -> list[Mail]:
    return list(
        db.session.execute(
            select(Mail)
            .where(Mail.id.in_(mail_ids))
            .options(
                selectinload(Mail.correspondents).selectinload(MailCorrespondent.correspondent),
                selectinload(Mail.attachments),
            )
        ).scalars()
    )


def _documents(mail_ids: list[int]) -> tuple[list[MailDocument], list[int], list[ExtractedText], list[OutboxEvent]]:
    mails = _load_mails(mail_ids)
    texts, extracted, ocr_events = _attachment_texts(mails)
    documents = build_documents(mails, texts)
    found = {mail.id for mail in mails}
    return documents, [mail_id for mail_id in mail_ids if mail_id not in found], extracted, ocr_events


def index_mails(backend: SearchBackend, mail_ids: list[int], event_ids: list[int] | None = None) -> DrainResult:
    """Index (or delete from the index) the given mails and mark ``event_ids`` processed."""
    documents, deleted, extracted, ocr_events = _documents(mail_ids)
    db.session.commit()

    def mark_processed() -> None:
        for row in extracted:
            db.session.merge(row)
        db.session.add_all(ocr_events)
        if event_ids:
            db.session.execute(
                update(OutboxEvent).where(OutboxEvent.id.in_(event_ids)).values(processed_at=utcnow())
            )

    if backend.in_database:
        run_in_write_transaction(lambda: (backend.write(documents, deleted), mark_processed()), "index mail")
    else:
        backend.write(documents, deleted)
        run_in_write_transaction(mark_processed, "mark search outbox processed")
    return DrainResult(indexed=len(documents), deleted=len(deleted))


def drain(backend: SearchBackend | None = None, batch: int = DRAIN_BATCH, max_batches: int | None = None,
          ocr: bool = True) -> DrainResult:
    """Index every pending change, batch by batch; stop at the first backend failure.

    With ``ocr`` the pending OCR jobs run after, and the mails they concern are indexed again.
    """
    backend = backend or configured_backend()
    result = DrainResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        events = db.session.execute(
            select(OutboxEvent.id, OutboxEvent.entity_id)
            .where(OutboxEvent.processed_at.is_(None), OutboxEvent.entity == "mail")
            .order_by(OutboxEvent.id)
            .limit(batch)
        ).all()
        if not events:
            break
        batches += 1
        try:
            result += index_mails(backend, sorted({row.entity_id for row in events}), [row.id for row in events])
        except BackendUnavailable as error:
            db.session.rollback()
            log.warning("search backend %s unavailable, %s changes stay in the outbox: %s", backend.name, len(events), error)
            result.failed = True
            return result
    if ocr and not result.failed:
        result += run_ocr(backend)
    return result


def run_ocr(backend: SearchBackend, batch: int = OCR_BATCH) -> DrainResult:
    """Recognise the text of up to ``batch`` scanned attachments, then index their mails again."""
    events = db.session.execute(
        select(OutboxEvent.id, OutboxEvent.entity_id)
        .where(OutboxEvent.processed_at.is_(None), OutboxEvent.entity == "attachment", OutboxEvent.operation == "ocr")
        .order_by(OutboxEvent.id)
        .limit(batch)
    ).all()
    if not events:
        return DrainResult()
    language = current_app.config.get("SEARCH_OCR_LANGUAGE") or "fra"
    recognised: list[ExtractedText] = []
    mail_ids: set[int] = set()
    for event in events:
        attachment = db.session.get(Attachment, event.entity_id)
        if attachment is None:
            continue
        mail_ids.add(attachment.mail_id)
        data = _read(attachment)
        known = db.session.get(ExtractedText, attachment.sha256)
        layer_text = known.text if known else ""
        try:
            text = ocr_text(data, attachment.content_type, attachment.display_name, language) if data else ""
            method = "ocr"
        except (RuntimeError, OSError) as error:
            log.warning("OCR of attachment %s of mail %s failed: %s", attachment.id, attachment.mail_id, error)
            text, method = "", "failed"
        recognised.append(ExtractedText(sha256=attachment.sha256, method=method,
                                        text="\n".join(part for part in (layer_text, text) if part)))
    db.session.commit()

    def store() -> None:
        for row in recognised:
            db.session.merge(row)
        db.session.execute(update(OutboxEvent).where(OutboxEvent.id.in_([event.id for event in events])).values(processed_at=utcnow()))
        # One OCR event reads a content shared by every attachment with that checksum: all their mails are indexed again.
        sharing = select(Attachment.mail_id).where(Attachment.sha256.in_([row.sha256 for row in recognised]))
        all_mail_ids = mail_ids | set(db.session.execute(sharing).scalars())
        db.session.add_all(OutboxEvent(entity="mail", entity_id=mail_id, operation="upsert") for mail_id in sorted(all_mail_ids))

    run_in_write_transaction(store, "store OCR text")
    result = drain(backend, ocr=False)
    result.recognised += len(recognised)
    return result


# --- Rebuilding -----------------------------------------------------------------------------------------


def reindex(backend: SearchBackend | None = None, batch: int = REINDEX_BATCH,
            progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the index of every mail from the database; return the number of mails indexed.

    Searches keep working meanwhile: the embedded index is updated row by row,
    and a cluster index is built under a new name and swapped in by alias.
    Changes made during the rebuild are replayed from the outbox afterwards.
    """
    backend = backend or configured_backend()
    started_at: datetime = utcnow()
    last_event = db.session.execute(select(func.max(OutboxEvent.id))).scalar() or 0
    begin = getattr(backend, "begin_rebuild", None)
    target = begin() if begin else backend

    indexed = 0
    after = 0
    while True:
        ids = list(db.session.execute(select(Mail.id).where(Mail.id > after).order_by(Mail.id).limit(batch)).scalars())
        if not ids:
            break
        index_mails(target, ids)
        indexed += len(ids)
        after = ids[-1]
        if progress:
            progress(len(ids))

    if begin:
        backend.finish_rebuild(target)  # type: ignore[attr-defined]
    else:
        _delete_orphans(backend)
    # Events written while the rebuild ran may have reached only the old index: replay them.
    run_in_write_transaction(
        lambda: db.session.execute(
            update(OutboxEvent).where(OutboxEvent.id > last_event, OutboxEvent.created_at >= started_at)
            .values(processed_at=None)
        ),
        "replay search outbox",
    )
    drain(backend)
    return indexed


def _delete_orphans(backend: SearchBackend) -> None:
    existing = set(db.session.execute(select(Mail.id)).scalars())
    orphans = [mail_id for mail_id in backend.indexed_versions() if mail_id not in existing]
    if orphans:
        run_in_write_transaction(lambda: backend.write([], orphans), "delete orphan index entries")


@dataclass
class IndexStatus:
    mails: int
    indexed: int
    stale: int
    missing: int
    pending_events: int
    pending_ocr: int


def index_status(backend: SearchBackend | None = None) -> IndexStatus:
    """Compare the database with the index: counts, entries missing or older than their mail."""
    backend = backend or configured_backend()
    versions = dict(db.session.execute(select(Mail.id, Mail.row_version)).tuples().all())
    indexed = backend.indexed_versions()
    pending = dict(
        db.session.execute(
            select(OutboxEvent.entity, func.count()).where(OutboxEvent.processed_at.is_(None)).group_by(OutboxEvent.entity)
        ).tuples().all()
    )
    return IndexStatus(
        mails=len(versions),
        indexed=len(indexed),
        stale=sum(1 for mail_id, version in versions.items() if mail_id in indexed and indexed[mail_id] != version),
        missing=sum(1 for mail_id in versions if mail_id not in indexed),
        pending_events=int(pending.get("mail", 0)),
        pending_ocr=int(pending.get("attachment", 0)),
    )
