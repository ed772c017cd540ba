"""Store uploaded files and read them back verified."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from flask_babel import lazy_gettext as _l

from app.attachments.filenames import inspect_filename, sniff_content_type
from app.attachments.models import Attachment
from app.attachments.storage import ContentStore, FileTooLarge, StagedBlob, StoredBlob
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

    def attachment_values(self, uploaded_by_id: int | None) -> dict[str, Any]:
        """Return the attachment row's column values, without its id, mail and defaults."""
        return {
            "sha256": self.blob.sha256,
            "size": self.blob.size,
            "display_name": self.display_name,
            "content_type": self.content_type,
            "kind": self.kind,
            "uploaded_by_id": uploaded_by_id,
        }

    def to_attachment(self, uploaded_by_id: int | None) -> Attachment:
        return Attachment(**self.attachment_values(uploaded_by_id))


def content_store() -> ContentStore:
    return ContentStore(Path(current_app.config["STORAGE_ROOT"]))


@dataclass
class CheckedUpload:
    """An upload written to the store's temporary folder and checked: ``error`` is None when it may be stored."""

    upload: Upload
    display_name: str
    staged: StagedBlob | None
    content_type: str | None
    error: str | None


def check_upload(upload: Upload, actor_name: str) -> CheckedUpload:
    """Write ``upload`` to the store's temporary folder and check its size and content, storing nothing yet.

    A rejected file's temporary copy is removed at once. An accepted one waits
    for store_checked() or discard_checked().
    """
    display_name, suspicious = inspect_filename(upload.filename)
    if suspicious:
        security_log.warning(
            "suspicious attachment name %r from %s stored as %r", upload.filename, actor_name, display_name
        )
    store = content_store()
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    try:
        staged = store.stage(upload.stream, limit)
    except FileTooLarge:
        message = _l("The file %(name)s is larger than the limit of %(limit)s MB.", name=display_name, limit=limit // (1024 * 1024))
        return CheckedUpload(upload, display_name, None, None, str(message))
    error, content_type = _rejection(staged, display_name)
    if error is not None:
        store.discard(staged)
        return CheckedUpload(upload, display_name, None, content_type, error)
    return CheckedUpload(upload, display_name, staged, content_type, None)


def _rejection(staged: StagedBlob, display_name: str) -> tuple[str | None, str | None]:
    """Return why the staged file is rejected (None if it is accepted) and its content type."""
    if staged.size == 0:
        log.info("upload %r rejected: empty file", display_name)
        return str(_l("The file %(name)s is empty: choose it again, or scan the letter again.", name=display_name)), None
    content_type = sniff_content_type(staged.path, display_name)
    if content_type is None:
        log.info("upload %r rejected: unsupported content", display_name)
        message = _l("The file %(name)s is not an accepted type: send PDF, PNG, JPEG, TIFF, .eml, .docx or .odt.", name=display_name)
        return str(message), None
    if content_type == "application/pdf" and not readable_pdf(staged.path):
        log.info("upload %r rejected: unreadable PDF", display_name)
        message = _l("The file %(name)s is not a readable PDF: it is incomplete or damaged. Scan or export it again.", name=display_name)
        return str(message), content_type
    return None, content_type


def check_uploads(uploads: list[Upload], actor_name: str) -> list[CheckedUpload]:
    return [check_upload(upload, actor_name) for upload in uploads]


def store_checked(checked: list[CheckedUpload]) -> list[StoredUpload]:
    """Store the accepted uploads of ``checked``, every one of which must have no error."""
    store = content_store()
    stored = []
    for item in checked:
        assert item.staged is not None and item.content_type is not None, "store_checked() got a rejected upload"
        stored.append(StoredUpload(store.publish(item.staged), item.display_name, item.content_type, item.upload.kind))
    return stored


def discard_checked(checked: list[CheckedUpload]) -> None:
    """Remove the temporary copies of ``checked`` that were not stored."""
    store = content_store()
    for item in checked:
        if item.staged is not None:
            store.discard(item.staged)


def store_upload(upload: Upload, actor_name: str) -> StoredUpload:
    """Check ``upload`` and write it to the content store; raise ValidationFailed if it is rejected."""
    checked = check_upload(upload, actor_name)
    if checked.error is not None:
        raise ValidationFailed({"attachments": [checked.error]})
    return store_checked([checked])[0]


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
