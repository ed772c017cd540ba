"""The scheduled sweep of the content store: delete the stored files no row refers to."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.attachments.models import Attachment
from app.attachments.operations import content_store
from app.documents.models import DocumentVersion, TemplateFile
from app.extensions import db
from app.notifications.models import EmailAttachment
from app.signature.models import SignatureCircuit, SignatureProfile

log = logging.getLogger(__name__)

# Every column that stores the SHA-256 of a file in the content store. A file named only in
# a history entry (a printed batch of acknowledgements) is not kept for it.
BLOB_COLUMNS: tuple[Any, ...] = (
    Attachment.sha256,
    DocumentVersion.docx_sha256,
    DocumentVersion.pdf_sha256,
    TemplateFile.sha256,
    EmailAttachment.sha256,
    SignatureCircuit.frozen_sha256,
    SignatureProfile.image_sha256,
)


def referenced_blobs(candidates: list[str]) -> set[str]:
    """Return those of ``candidates`` that a row refers to."""
    found: set[str] = set()
    for column in BLOB_COLUMNS:
        found.update(db.session.scalars(select(column).where(column.in_(candidates)).distinct()))
    return found


def sweep_content_store(now: datetime) -> dict[str, int]:
    grace = timedelta(hours=int(current_app.config["STORAGE_SWEEP_GRACE_HOURS"]))
    try:
        deleted = content_store().sweep(referenced_blobs, grace)
    finally:
        db.session.rollback()
    log.info("content store sweep: %s unreferenced files deleted", len(deleted))
    return {"deleted": len(deleted)}
