"""The scheduled sweep of the content store: delete the stored files no row refers to.

The sweep starts each night and works for at most STORAGE_SWEEP_SECONDS per
scheduler pass, so that e-mail, reminders and indexing keep running beside
it. It goes on at the next passes from the shard it stopped at, written in
the store's ``sweep-cursor`` file, until it has read every shard.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.attachments.models import Attachment
from app.attachments.operations import content_store
from app.attachments.storage import FIRST_SHARD
from app.documents.models import DocumentVersion, TemplateFile
from app.extensions import db
from app.notifications.models import EmailAttachment
from app.signature.models import SignatureCircuit, SignatureProfile

log = logging.getLogger(__name__)

# Every column that stores the SHA-256 of a file in the content store, the one naming most files
# first. A file named only in a history entry (a printed batch of acknowledgements) is not kept for it.
BLOB_COLUMNS: tuple[Any, ...] = (
    Attachment.sha256,
    DocumentVersion.pdf_sha256,
    DocumentVersion.docx_sha256,
    EmailAttachment.sha256,
    SignatureCircuit.frozen_sha256,
    TemplateFile.sha256,
    SignatureProfile.image_sha256,
)
CURSOR_FILE = "sweep-cursor"


def referenced_blobs(candidates: list[str]) -> set[str]:
    """Return those of ``candidates`` that a row refers to, each column asked only for those still unfound."""
    found: set[str] = set()
    for column in BLOB_COLUMNS:
        unfound = [sha256 for sha256 in candidates if sha256 not in found]
        if not unfound:
            break
        found.update(db.session.scalars(select(column).where(column.in_(unfound)).distinct()))
    return found


def sweep_content_store(now: datetime) -> dict[str, int]:
    """Sweep the store from where the last pass stopped; report ``remaining`` shards to go on at the next pass."""
    config = current_app.config
    store = content_store()
    cursor = Path(store.root) / CURSOR_FILE
    first_shard = cursor.read_text().strip() if cursor.exists() else FIRST_SHARD
    deadline = time.monotonic() + float(config["STORAGE_SWEEP_SECONDS"])
    grace = timedelta(hours=int(config["STORAGE_SWEEP_GRACE_HOURS"]))
    try:
        progress = store.sweep(referenced_blobs, grace, first_shard=first_shard, deadline=deadline)
    finally:
        db.session.rollback()
    summary = {"deleted": len(progress.deleted)}
    if progress.next_shard is None:
        cursor.unlink(missing_ok=True)
        log.info("content store sweep done: %s unreferenced files deleted in this pass", len(progress.deleted))
        return summary
    cursor.write_text(progress.next_shard)
    remaining = 256 - int(progress.next_shard, 16)
    log.info("content store sweep: %s unreferenced files deleted, going on at shard %s in the next pass",
             len(progress.deleted), progress.next_shard)
    return {**summary, "remaining": remaining}
