"""Store uploaded files and read them back verified."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.attachments.filenames import inspect_filename, sniff_content_type
from app.attachments.models import Attachment
from app.attachments.storage import ContentStore, FileTooLarge, StoredBlob
from app.core.errors import ValidationFailed

log = logging.getLogger(__name__)
security_log = logging.getLogger("estafette.security")
# How far from its end a whole PDF has its "%%EOF" marker, which ends its last line. The margin
# allows for blank bytes written after it.
PDF_TAIL_BYTES = 1024


@dataclass
class Upload:
    """A file received from a form, an API call or an e-mail, before storage."""

    stream: BinaryIO
    filename: str | None
    kind: str = "attachment"


@dataclass
class StoredUpload:
    blob: StoredBlob
    display_name: str
    content_type: str
    kind: str

    def to_attachment(self, uploaded_by_id: int | None) -> Attachment:
        return Attachment(
            sha256=self.blob.sha256,
            size=self.blob.size,
            display_name=self.display_name,
            content_type=self.content_type,
            kind=self.kind,
            uploaded_by_id=uploaded_by_id,
        )


def content_store() -> ContentStore:
    return ContentStore(Path(current_app.config["STORAGE_ROOT"]))


def store_upload(upload: Upload, actor_name: str) -> StoredUpload:
    """Write ``upload`` to the content store and check its type.

    Runs before the database transaction: a file whose row is never committed
    stays unreferenced and the storage sweep removes it later.
    """
    display_name, suspicious = inspect_filename(upload.filename)
    if suspicious:
        security_log.warning(
            "suspicious attachment name %r from %s stored as %r", upload.filename, actor_name, display_name
        )
    store = content_store()
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    try:
        blob = store.put_stream(upload.stream, limit)
    except FileTooLarge:
        raise ValidationFailed(
            {"attachments": [str(_l("The file %(name)s is larger than the limit of %(limit)s MB.", name=display_name, limit=limit // (1024 * 1024)))]}
        ) from None
    if blob.size == 0:
        log.info("upload %r rejected: empty file", display_name)
        raise ValidationFailed(
            {"attachments": [str(_l("The file %(name)s is empty: choose it again, or scan the letter again.", name=display_name))]}
        )
    content_type = sniff_content_type(blob.path, display_name)
    if content_type is None:
        log.info("upload %r rejected: unsupported content", display_name)
        raise ValidationFailed(
            {"attachments": [str(_l("The file %(name)s is not an accepted type: send PDF, PNG, JPEG, TIFF, .eml, .docx or .odt.", name=display_name))]}
        )
    if content_type == "application/pdf" and not readable_pdf(blob.path):
        log.info("upload %r rejected: unreadable PDF", display_name)
        raise ValidationFailed(
            {"attachments": [str(_l("The file %(name)s is not a readable PDF: it is incomplete or damaged. Scan or export it again.", name=display_name))]}
        )
    return StoredUpload(blob, display_name, content_type, upload.kind)


def upload_errors(uploads: list[Upload], actor_name: str) -> list[str]:
    """Check each of ``uploads`` as store_upload() does and return the messages of the rejected ones.

    For a registration invalid for other reasons, so that the form shows every
    error at once. A file accepted here is stored but no mail references it,
    so the storage sweep removes it.
    """
    messages: list[str] = []
    for upload in uploads:
        try:
            store_upload(upload, actor_name)
        except ValidationFailed as failure:
            messages.extend(failure.field_errors.get("attachments", []))
    return messages


def readable_pdf(path: Path) -> bool:
    """Return whether the PDF at ``path`` looks whole: pypdf finds a page in it, or it ends with ``%%EOF``.

    A file cut short, such as an interrupted transfer or a scan saved halfway,
    lacks both. pypdf repairs some faults, but not a damaged cross-reference
    keyword, which PDF viewers rebuild: a file that ends as a PDF ends is
    accepted so that such a scan can still be registered. An encrypted PDF is
    accepted too, because its pages cannot be counted without its password.
    """
    from pypdf import PdfReader

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted or len(reader.pages) > 0:
            return True
    except Exception as error:  # noqa: BLE001 - pypdf raises many types on damaged files, and each means unreadable.
        log.info("PDF %s not read by pypdf: %s: %s", path.name, type(error).__name__, error)
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - PDF_TAIL_BYTES))
        return b"%%EOF" in file.read()
