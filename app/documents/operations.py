"""Operations on documents: generate from a template, add versions, convert to PDF, read files back.

Every function that writes runs one write transaction, records a history
entry on the mail and, for each new version, calls
``app.signature.events.document_changed`` in that same transaction so that a
running visa circuit restarts its approvals. LibreOffice conversions take
seconds: they run before the write transaction, with no transaction open.

Permissions: a user who may see the mail may list and download its
documents. Generating, uploading and sending need the rights of processing it
(``can_edit_documents``).
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.attachments.operations import content_store
from app.attachments.storage import StoredBlob
from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.configuration.specs import TemplateSpec
from app.core.archives import ArchiveTooLarge, repack_archive
from app.core.db import run_in_write_transaction
from app.core.errors import EstafetteError, NotFound, PermissionDenied, ValidationFailed
from app.core.types import utcnow
from app.correspondents.models import Correspondent
from app.documents.context import default_addressee, merge_context
from app.documents.conversion import ConversionFailed, ConversionUnavailable, convert_many
from app.documents.fields import merge_values
from app.documents.models import Document, DocumentVersion, TemplateFile
from app.documents.rendering import RenderingFailed, TemplateInvalid, render_template
from app.documents.template_files import current_template_file, read_template_file, template_spec, templates_for
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.mail.visibility import can_see
from app.organisation.context import UserContext

log = logging.getLogger(__name__)

PDF_CONTENT_TYPE = "application/pdf"
DOCX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_TITLE_LENGTH = 255
MAX_NOTE_LENGTH = 2000


class DocumentError(EstafetteError):
    """The document cannot be produced or changed in its current state."""

    http_status = 409


class PdfUnavailable(EstafetteError):
    """LibreOffice is missing or failed, so no PDF could be made."""

    http_status = 503


@dataclass
class Produced:
    """A new version and, when no PDF could be made, why (a translated message)."""

    document: Document
    version: DocumentVersion
    pdf_problem: str | None = None


@dataclass(frozen=True)
class _Files:
    docx: StoredBlob | None
    pdf: StoredBlob | None
    pdf_problem: str | None


# --- Permissions ------------------------------------------------------------------


def can_edit_documents(user: UserContext, mail: Mail) -> bool:
    """Return True when ``user`` may generate, upload and send documents of ``mail``: processing rights on it."""
    if not can_see(user, mail):
        return False
    if user.can("administer"):
        return True
    return user.can("process") and (
        mail.handling_department_id in user.scope_department_ids or mail.assignee_id == user.user_id
    )


def load_mail_for_documents(actor: UserContext, mail_id: int, edit: bool) -> Mail:
    """Return the mail, or raise NotFound when the actor may not see it and PermissionDenied when they may not edit."""
    mail = db.session.get(Mail, mail_id)
    if mail is None or not can_see(actor, mail):
        raise NotFound()
    if edit and not can_edit_documents(actor, mail):
        raise PermissionDenied(_l("Only agents processing this mail may produce or change its documents."))
    return mail


def _check_mail_open(mail: Mail) -> None:
    """Raise DocumentError for a closed mail: its documents stay as they were when it was closed."""
    if mail.status in current_configuration().closed_statuses:
        raise DocumentError(_l("This mail is closed: reopen it to change its documents."))


def load_document(actor: UserContext, document_id: int, edit: bool = False) -> Document:
    document = db.session.get(Document, document_id)
    if document is None:
        raise NotFound()
    load_mail_for_documents(actor, document.mail_id, edit)
    return document


def load_version(actor: UserContext, version_id: int) -> DocumentVersion:
    version = db.session.get(DocumentVersion, version_id)
    if version is None:
        raise NotFound()
    load_document(actor, version.document_id)
    return version


# --- Reading ----------------------------------------------------------------------


def documents_of(mail_id: int) -> list[Document]:
    return list(db.session.execute(
        select(Document).where(Document.mail_id == mail_id).order_by(Document.kind, Document.id)
    ).scalars())


def latest_version(document: Document) -> DocumentVersion | None:
    return db.session.execute(
        select(DocumentVersion).where(DocumentVersion.document_id == document.id)
        .order_by(DocumentVersion.number.desc()).limit(1)
    ).scalar_one_or_none()


def _read_blob(sha256: str | None) -> bytes | None:
    if sha256 is None:
        return None
    with content_store().open_verified(sha256) as handle:
        return handle.read()


def version_pdf_bytes(version: DocumentVersion) -> bytes | None:
    """Return the version's PDF, checked against its SHA-256; None when it has none."""
    return _read_blob(version.pdf_sha256)


def version_docx_bytes(version: DocumentVersion) -> bytes | None:
    return _read_blob(version.docx_sha256)


def download_name(document: Document, version: DocumentVersion, extension: str) -> str:
    """Return the file name of a version's download: title, registration number and version number."""
    # A slash would read as a directory when the header's name is cleaned, and everything before it would be lost.
    title = document.title.replace("/", "-").replace("\\", "-")
    chrono = document.mail.chrono.replace("/", "-")
    return f"{title} - {chrono} - v{version.number}.{extension}"


# --- Producing files --------------------------------------------------------------


def _end_read_transaction() -> None:
    """Commit the read transaction, so that no transaction stays open during a conversion."""
    session = db.session()
    if session.in_transaction():
        session.commit()


def _pdf_problem_text(error: Exception) -> str:
    if isinstance(error, ConversionUnavailable):
        return str(_l("LibreOffice is not installed on the server: the PDF was not produced. Download the .docx."))
    return str(_l("The PDF conversion failed (%(detail)s): the PDF was not produced. Download the .docx.",
                  detail=str(error)))


def convert_documents(documents: list[bytes]) -> tuple[list[bytes] | None, str | None]:
    """Convert .docx contents to PDF in one LibreOffice call; return the PDFs, or None and the reason."""
    _end_read_transaction()
    try:
        return convert_many(documents), None
    except (ConversionUnavailable, ConversionFailed) as error:
        log.warning("PDF conversion of %s documents not done: %s", len(documents), error)
        return None, _pdf_problem_text(error)


def _store(docx: bytes | None, pdf: bytes | None, convert: bool) -> _Files:
    problem = None
    if docx is not None and pdf is None and convert:
        converted, problem = convert_documents([docx])
        pdf = converted[0] if converted else None
    store = content_store()
    return _Files(
        store.put_bytes(docx) if docx is not None else None,
        store.put_bytes(pdf) if pdf is not None else None,
        problem,
    )


def render_for(
    mail: Mail, spec: TemplateSpec, language: str, addressee: Correspondent | None, actor_id: int | None,
    configuration: Configuration, today: date, check: object = None,
) -> tuple[bytes, TemplateFile]:
    """Fill the template ``spec`` in ``language`` for ``mail``; return the .docx and the template file used.

    ``check`` is called with the merge context before rendering (the
    acknowledgement mentions check). Raises DocumentError when the template
    file is missing or the result keeps placeholders.
    """
    row = current_template_file(spec.id, language)
    if row is None:
        raise DocumentError(_l("The template “%(template)s” has no file in this language: an administrator must "
                               "upload one or apply the schemas.", template=spec.labels.get(language)))
    context = merge_context(mail, addressee, actor_id, language, configuration, today)
    if callable(check):
        check(context)
    try:
        return render_template(read_template_file(row), merge_values(context)), row
    except RenderingFailed as failure:
        raise DocumentError(_l("The template left placeholders unfilled: %(placeholders)s. An administrator must "
                               "correct the template.", placeholders=", ".join(failure.leftovers))) from None
    except TemplateInvalid as invalid:
        raise DocumentError(_l("The template cannot be filled: %(detail)s",
                               detail=invalid.params.get("detail", invalid.code))) from None


def _history(mail_id: int, actor: UserContext | None, event: str, now: datetime, configuration: Configuration,
             **details: object) -> None:
    db.session.add(HistoryEntry(
        mail_id=mail_id, at=now, actor_id=actor.user_id if actor else None, event=event,
        schema_version=configuration.version, details=details,
    ))


def _append_version(
    document: Document, files: _Files, actor: UserContext | None, now: datetime, *, signed: bool = False,
    note: str | None = None, template_file_id: int | None = None,
) -> DocumentVersion:
    number = db.session.execute(
        select(func.coalesce(func.max(DocumentVersion.number), 0)).where(DocumentVersion.document_id == document.id)
    ).scalar_one() + 1
    version = DocumentVersion(
        document_id=document.id, number=number,
        docx_sha256=files.docx.sha256 if files.docx else None, docx_size=files.docx.size if files.docx else None,
        pdf_sha256=files.pdf.sha256 if files.pdf else None, pdf_size=files.pdf.size if files.pdf else None,
        signed=signed, note=note, template_file_id=template_file_id, created_at=now,
        created_by_id=actor.user_id if actor else None,
    )
    db.session.add(version)
    db.session.flush()
    return version


def _notify_signature_book(document: Document, version: DocumentVersion, actor: UserContext | None) -> None:
    from app.signature.events import document_changed

    if actor is not None:
        document_changed(document, version, actor)


def create_document_with_version(
    actor: UserContext, mail: Mail, *, kind: str, title: str, language: str, template_id: str | None,
    correspondent_id: int | None, files: _Files, template_file_id: int | None, configuration: Configuration,
    now: datetime,
) -> tuple[Document, DocumentVersion]:
    """Insert a document and its first version; call inside a write transaction."""
    document = Document(
        mail_id=mail.id, kind=kind, state="draft", template_code=template_id, title=title[:MAX_TITLE_LENGTH],
        correspondent_id=correspondent_id, language=language, created_at=now, created_by_id=actor.user_id,
    )
    db.session.add(document)
    db.session.flush()
    version = _append_version(document, files, actor, now, template_file_id=template_file_id)
    _history(mail.id, actor, "document_generated", now, configuration, document_id=document.id, kind=kind,
             title=document.title, template=template_id, version=version.number, pdf=files.pdf is not None)
    _notify_signature_book(document, version, actor)
    return document, version


# --- Reply drafts -----------------------------------------------------------------


def generate_reply(
    actor: UserContext, mail_id: int, template_id: str, language: str = "fr", title: str | None = None,
    now: datetime | None = None,
) -> Produced:
    """Generate a reply draft on a mail from a declared reply template, with its PDF when LibreOffice is installed."""
    from app.mail.operations import today_in_paris

    configuration = current_configuration()
    mail = load_mail_for_documents(actor, mail_id, edit=True)
    _check_mail_open(mail)
    spec = template_spec(template_id, configuration)
    if spec.kind != "reply" or spec.id not in {item.id for item in templates_for(mail, "reply", configuration)}:
        raise ValidationFailed({"template_id": [str(_l("This template cannot be used for this mail."))]})
    if language not in spec.languages:
        raise ValidationFailed({"language": [str(_l("This template has no file in this language."))]})
    moment = now or utcnow()
    addressee = default_addressee(mail)
    docx, template_file = render_for(mail, spec, language, addressee, actor.user_id, configuration,
                                     today_in_paris(moment))
    files = _store(docx, None, convert=True)
    document_title = (title or "").strip() or spec.labels.get(language)

    def write() -> tuple[Document, DocumentVersion]:
        target = db.session.get(Mail, mail_id)
        assert target is not None
        return create_document_with_version(
            actor, target, kind="reply", title=document_title, language=language, template_id=spec.id,
            correspondent_id=addressee.id if addressee else None, files=files, template_file_id=template_file.id,
            configuration=configuration, now=moment,
        )

    document, version = run_in_write_transaction(write, f"generate reply on mail {mail_id}")
    log.info("mail %s reply %s generated by %s", mail.chrono, document.id, actor.display_name)
    return Produced(document, version, files.pdf_problem)


# --- New versions -----------------------------------------------------------------


def detect_upload_type(data: bytes) -> str | None:
    """Return "pdf" or "docx" from the file's content, or None for anything else."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return None
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
    return "docx" if "word/document.xml" in names and "[Content_Types].xml" in names else None


def add_version(
    actor: UserContext, document_id: int, *, docx: bytes | None = None, pdf: bytes | None = None,
    signed: bool = False, note: str | None = None, convert: bool = True, check_permission: bool = True,
    now: datetime | None = None,
) -> Produced:
    """Add the next version of a document from .docx and/or PDF contents.

    A .docx without a PDF is converted when ``convert`` is True and
    LibreOffice is installed. Writes a history entry and calls
    ``document_changed`` in the same transaction. A sent or cancelled document
    takes no new version. ``check_permission`` False leaves the permission
    check to the caller (the signature book, whose signatory's right comes
    from the circuit).
    """
    if docx is None and pdf is None:
        raise ValidationFailed({"file": [str(_l("Choose a .docx or PDF file."))]})
    document = db.session.get(Document, document_id)
    if document is None:
        raise NotFound()
    if check_permission:
        _check_mail_open(load_mail_for_documents(actor, document.mail_id, edit=True))
    if document.state in ("sent", "cancelled"):
        raise DocumentError(_l("This document was sent or cancelled: it takes no new version."))
    if document.state == "signed" and not signed:
        raise DocumentError(_l("This document is signed: its signed version is final. Generate a new reply draft to change it."))
    configuration = current_configuration()
    note = (note or "").strip()[:MAX_NOTE_LENGTH] or None
    files = _store(docx, pdf, convert)
    moment = now or utcnow()

    def write() -> DocumentVersion:
        target = db.session.get(Document, document_id, populate_existing=True)
        assert target is not None
        version = _append_version(target, files, actor, moment, signed=signed, note=note)
        _history(target.mail_id, actor, "document_version_added", moment, configuration, document_id=target.id,
                 title=target.title, version=version.number, signed=signed, pdf=files.pdf is not None)
        _notify_signature_book(target, version, actor)
        return version

    version = run_in_write_transaction(write, f"add version to document {document_id}")
    log.info("document %s version %s added by %s", document_id, version.number, actor.display_name)
    return Produced(document, version, files.pdf_problem)


def upload_version(
    actor: UserContext, document_id: int, stream: IO[bytes], file_name: str | None, note: str | None = None,
) -> Produced:
    """Add a version from an uploaded .docx or PDF, recognised by its content, not its name."""
    limit = int(current_app.config["MAX_UPLOAD_BYTES"])
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValidationFailed({"file": [str(_l("The file %(name)s is larger than the limit of %(limit)s MB.",
                                                name=file_name or "", limit=limit // (1024 * 1024)))]})
    if not data:
        raise ValidationFailed({"file": [str(_l("The file %(name)s is empty: choose it again.", name=file_name or ""))]})
    kind = detect_upload_type(data)
    if kind is None:
        raise ValidationFailed({"file": [str(_l("The file %(name)s is neither a .docx document nor a PDF.",
                                                name=file_name or ""))]})
    if kind == "pdf":
        return add_version(actor, document_id, pdf=data, note=note, convert=False)
    try:
        # The .docx is stored as rebuilt within the limits, so that nothing reads the original's members.
        data = repack_archive(data)
    except (ArchiveTooLarge, zipfile.BadZipFile, EOFError) as error:
        log.warning("document %s: upload %r rejected: %s", document_id, file_name, error)
        raise ValidationFailed({"file": [str(_l(
            "The file %(name)s is too large once unpacked, damaged or compressed in an unusual way:"
            " save it again from your word processor.", name=file_name or "",
        ))]}) from None
    return add_version(actor, document_id, docx=data, note=note)


def ensure_pdf(version_id: int) -> DocumentVersion:
    """Give a version its PDF, converting its .docx when it has none; return the version.

    Call with no write transaction open: the conversion runs before the
    write. Raises PdfUnavailable when LibreOffice is missing or fails, and
    DocumentError for a version with no .docx.
    """
    version = db.session.get(DocumentVersion, version_id)
    if version is None:
        raise NotFound()
    if version.pdf_sha256 is not None:
        return version
    docx = version_docx_bytes(version)
    if docx is None:
        raise DocumentError(_l("This version has neither a .docx nor a PDF."))
    converted, problem = convert_documents([docx])
    if converted is None:
        raise PdfUnavailable(problem)
    blob = content_store().put_bytes(converted[0])

    def write() -> DocumentVersion:
        target = db.session.get(DocumentVersion, version_id, populate_existing=True)
        assert target is not None
        if target.pdf_sha256 is None:
            target.pdf_sha256 = blob.sha256
            target.pdf_size = blob.size
        return target

    return run_in_write_transaction(write, f"store PDF of document version {version_id}")
