"""Acknowledgements of receipt (accusés de réception, AR) of requests from the public.

When an AR is due
    A mail type whose ``acknowledgement`` regime is ``acceptance`` or
    ``rejection`` needs one AR per sender. The AR is pending from the
    registration of the mail on, and no row is written for it. A mail is
    "pending" while its type needs ARs and one of its senders has no sent AR.
    It is "sent" once one of its ARs was sent. A mail without any sender is never
    pending, since there is nobody to send the AR to. Both states are stored
    on the mail and kept in step by app.documents.acknowledgement_state;
    changing a type's regime in the schemas recomputes its mail, old mail
    included, when the schemas are applied.

What an AR states (CRPA articles L112-3 and R112-5)
    The date of receipt, the department in charge with its postal address,
    phone number and e-mail address, the date on which the implicit decision
    arises and whether silence means acceptance or rejection, the appeal
    routes when it means rejection, and the missing documents if any.
    Generation is refused, naming the mention, when one cannot be filled; an
    acknowledgement template must contain every such merge field (checked
    when the template is uploaded or the schemas applied).

Sending
    By e-mail with the PDF attached (the .docx when no PDF could be made) when
    the sender has an e-mail address, otherwise printed; ``print_pending``
    prints every pending AR of senders without an e-mail address into one PDF.
    The AR's ``sent_at`` is the time it was queued or printed.
"""

from __future__ import annotations

import io
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from pypdf import PdfReader, PdfWriter
from sqlalchemy import and_, select, true
from sqlalchemy.sql.elements import ColumnElement

from app.attachments.operations import content_store
from app.configuration.loader import Configuration
from app.configuration.operations import current_configuration
from app.core.db import run_in_write_transaction
from app.core.errors import EstafetteError, NotFound, ValidationFailed
from app.core.types import utcnow
from app.correspondents.models import Correspondent
from app.documents.acknowledgement_state import types_needing_acknowledgement
from app.documents.fields import MergeContext, long_date
from app.documents.models import Document, DocumentVersion
from app.documents.operations import (
    DOCX_CONTENT_TYPE,
    PDF_CONTENT_TYPE,
    DocumentError,
    PdfUnavailable,
    Produced,
    _append_version,
    _Files,
    _history,
    _notify_signature_book,
    _store,
    can_edit_documents,
    convert_documents,
    create_document_with_version,
    latest_version,
    load_document,
    load_mail_for_documents,
    render_for,
    version_docx_bytes,
    version_pdf_bytes,
)
from app.documents.template_files import templates_for
from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import visible_mail_clause
from app.notifications.models import EmailAttachment, EmailMessage
from app.organisation.context import UserContext

log = logging.getLogger(__name__)

ACKNOWLEDGEMENT = "acknowledgement"
# At most this many ARs in one printed batch; the next batch prints the rest.
MAX_PRINT_BATCH = 300

MENTIONS = {
    "department_address": _l("the postal address of the department in charge"),
    "department_phone": _l("the phone number of the department in charge"),
    "department_email": _l("the e-mail address of the department in charge"),
    "implicit_decision_date": _l("the date on which the implicit decision arises"),
    "recipient_name": _l("the name of the sender to acknowledge"),
}

EMAIL_TEXTS = {
    "fr": {
        "subject": "Accusé de réception de votre demande – {chrono}",
        "body": "Bonjour,\n\nVeuillez trouver ci-joint l'accusé de réception de votre demande « {subject} », "
                "reçue le {arrival}.\n\n{department}\n",
    },
    "en": {
        "subject": "Acknowledgement of receipt of your request – {chrono}",
        "body": "Hello,\n\nPlease find attached the acknowledgement of receipt of your request \"{subject}\", "
                "received on {arrival}.\n\n{department}\n",
    },
}


class AcknowledgementIncomplete(EstafetteError):
    """Error for a mention required by CRPA article R112-5 that cannot be filled; ``mention`` is its key in MENTIONS."""

    http_status = 409

    def __init__(self, mention: str, department: str):
        super().__init__(
            _l("The acknowledgement of receipt cannot be generated: %(mention)s is missing (department %(department)s)."),
            mention=str(MENTIONS[mention]), department=department,
        )
        self.mention = mention


# --- When an AR is due ----------------------------------------------------------------


def acknowledgement_clause(state: str, configuration: Configuration | None = None) -> ColumnElement[bool]:
    """Return the basket filter on mail whose ARs are ``pending`` or ``sent`` (see the module docstring).

    It tests the state stored on the mail (app.documents.acknowledgement_state),
    which the partial indexes ix_mail_acknowledgement_pending and
    ix_mail_acknowledged hold, so a basket reads only the mail concerned.
    """
    if state == "sent":
        types = types_needing_acknowledgement(configuration or current_configuration())
        if not types:
            return Mail.id.is_(None)
        return and_(Mail.acknowledged_at.is_not(None), Mail.mail_type.in_(types))
    return Mail.acknowledgement_pending == true()


def check_mentions(context: MergeContext, department_code: str) -> None:
    """Raise AcknowledgementIncomplete naming the first mention of R112-5 that the context cannot fill."""
    if context.regime == "none":
        raise DocumentError(_l("This mail type requires no acknowledgement of receipt."))
    if not context.addressee.name and not context.addressee.organisation:
        raise AcknowledgementIncomplete("recipient_name", department_code)
    for mention, value in (
        ("department_address", context.department.address),
        ("department_phone", context.department.phone),
        ("department_email", context.department.email),
    ):
        if not value:
            raise AcknowledgementIncomplete(mention, department_code)
    if context.implicit_decision_date is None:
        raise AcknowledgementIncomplete("implicit_decision_date", department_code)


def acknowledgement_of(mail_id: int, correspondent_id: int) -> Document | None:
    """Return the sender's AR on the mail that is not cancelled, if any."""
    return db.session.execute(
        select(Document).where(
            Document.mail_id == mail_id, Document.kind == ACKNOWLEDGEMENT,
            Document.correspondent_id == correspondent_id, Document.state != "cancelled",
        ).order_by(Document.id.desc()).limit(1)
    ).scalar_one_or_none()


def _sender(mail: Mail, correspondent_id: int) -> Correspondent:
    for link in mail.correspondents:
        if link.role == "sender" and link.correspondent_id == correspondent_id:
            return link.correspondent
    raise ValidationFailed({"correspondent_id": [str(_l("This correspondent is not a sender of the mail."))]})


def _render_acknowledgement(
    mail: Mail, sender: Correspondent, actor_id: int | None, language: str, configuration: Configuration,
    moment: datetime,
) -> tuple[bytes, int, str]:
    """Render the AR of one sender; return the .docx, the template file id and the template id."""
    from app.mail.operations import today_in_paris

    spec_type = configuration.mail_types.get(mail.mail_type)
    if spec_type is None or spec_type.acknowledgement == "none":
        raise DocumentError(_l("This mail type requires no acknowledgement of receipt."))
    templates = [spec for spec in templates_for(mail, ACKNOWLEDGEMENT, configuration) if language in spec.languages]
    if not templates:
        raise DocumentError(_l("No acknowledgement template is declared for this mail type and department in this "
                               "language."))
    template = templates[0]
    department_code = mail.handling_department.code
    docx, template_file = render_for(
        mail, template, language, sender, actor_id, configuration, today_in_paris(moment),
        check=lambda context: check_mentions(context, department_code),
    )
    return docx, template_file.id, template.id


def _title(language: str) -> str:
    return "Acknowledgement of receipt" if language == "en" else "Accusé de réception"


def generate_acknowledgement(
    actor: UserContext, mail_id: int, correspondent_id: int, language: str = "fr", now: datetime | None = None,
    convert: bool = True,
) -> Produced:
    """Generate (or regenerate, as a new version) the AR of one sender of the mail.

    ``convert`` False skips the PDF, for callers that convert many ARs in one
    LibreOffice call later (``print_pending`` does). Raises
    AcknowledgementIncomplete naming the missing mention, and DocumentError
    when the sender's AR was already sent.
    """
    configuration = current_configuration()
    mail = load_mail_for_documents(actor, mail_id, edit=True)
    sender = _sender(mail, correspondent_id)
    existing = acknowledgement_of(mail.id, sender.id)
    if existing is not None and existing.state == "sent":
        raise DocumentError(_l("The acknowledgement of receipt of this sender was already sent."))
    moment = now or utcnow()
    docx, template_file_id, template_id = _render_acknowledgement(mail, sender, actor.user_id, language,
                                                                  configuration, moment)
    files = _store(docx, None, convert=convert)

    def write() -> tuple[Document, DocumentVersion]:
        target = db.session.get(Mail, mail_id)
        assert target is not None
        current = acknowledgement_of(mail_id, correspondent_id)
        if current is None:
            return create_document_with_version(
                actor, target, kind=ACKNOWLEDGEMENT, title=_title(language), language=language,
                template_id=template_id, correspondent_id=correspondent_id, files=files,
                template_file_id=template_file_id, configuration=configuration, now=moment,
            )
        if current.state == "sent":
            raise DocumentError(_l("The acknowledgement of receipt of this sender was already sent."))
        version = _append_version(current, files, actor, moment, template_file_id=template_file_id)
        _history(mail_id, actor, "document_version_added", moment, configuration, document_id=current.id,
                 title=current.title, version=version.number, signed=False, pdf=files.pdf is not None)
        _notify_signature_book(current, version, actor)
        return current, version

    document, version = run_in_write_transaction(write, f"generate acknowledgement on mail {mail_id}")
    log.info("mail %s acknowledgement %s v%s generated by %s", mail.chrono, document.id, version.number,
             actor.display_name)
    return Produced(document, version, files.pdf_problem)


# --- Sending --------------------------------------------------------------------------


@dataclass
class Sent:
    """The channel a document (AR or signed reply) went out by and, for a printed one, the file to print."""

    document: Document
    channel: str
    content: bytes | None = None
    content_type: str | None = None
    pdf_problem: str | None = None
    # Why the mail could not be closed after a signed reply was sent (a field required at closing).
    close_problem: str | None = None


def mark_document_sent(document: Document, actor: UserContext | None, channel: str, moment: datetime,
                       configuration: Configuration, event: str = "acknowledgement_sent", **details: object) -> None:
    """Record that ``document`` went out by ``channel`` ("email" or "print"), with the history entry ``event``."""
    document.state = "sent"
    document.sent_at = moment
    document.sent_by_id = actor.user_id if actor else None
    document.sending_channel = channel
    correspondent = db.session.get(Correspondent, document.correspondent_id) if document.correspondent_id else None
    _history(document.mail_id, actor, event, moment, configuration, document_id=document.id,
             channel=channel, to=correspondent.display_name if correspondent else "", **details)


def queue_document_email(document: Document, mail: Mail, correspondent: Correspondent,
                         attachment: tuple[str, str, str], moment: datetime,
                         texts_by_language: dict[str, dict[str, str]] | None = None) -> EmailMessage:
    """Queue an e-mail to ``correspondent`` with the document file ``attachment`` (SHA-256, name, content type).

    ``texts_by_language`` gives the subject and body in French and English, the AR's by default.
    """
    texts = (texts_by_language or EMAIL_TEXTS)["en" if document.language == "en" else "fr"]
    department = mail.handling_department.label(document.language)
    subject = texts["subject"].format(chrono=mail.chrono)
    body = texts["body"].format(subject=mail.subject, arrival=long_date(mail.arrival_date, document.language),
                                department=department)
    from markupsafe import escape

    html = "".join(f"<p>{escape(part).replace(chr(10), '<br>')}</p>" for part in body.strip().split("\n\n"))
    domain = str(current_app.config["MAIL_SENDER"]).rsplit("@", 1)[-1].strip("> ") or "localhost"
    message = EmailMessage(
        user_id=None, to_address=correspondent.email, reply_to=mail.handling_department.email or None,
        language=document.language, subject=subject, body_text=body,
        body_html=html, message_id=f"<{moment:%Y%m%d%H%M%S}.{secrets.token_hex(8)}@{domain}>", state="pending",
        attempts=0, next_attempt_at=moment, created_at=moment,
    )
    sha256, file_name, content_type = attachment
    message.attachments.append(EmailAttachment(sha256=sha256, file_name=file_name, content_type=content_type))
    db.session.add(message)
    return message


def _file_name(document: Document, mail: Mail, extension: str) -> str:
    return f"{_title(document.language)} {mail.chrono.replace('/', '-')}.{extension}"


def send_acknowledgement(actor: UserContext, document_id: int, now: datetime | None = None) -> Sent:
    """Send a generated AR: by e-mail when the sender has an address, else as a file to print.

    The PDF is made first when the latest version has none; without
    LibreOffice the .docx is sent or printed instead, and ``pdf_problem`` explains why.
    """
    configuration = current_configuration()
    document = load_document(actor, document_id, edit=True)
    if document.kind != ACKNOWLEDGEMENT:
        raise NotFound()
    if document.state in ("sent", "cancelled"):
        raise DocumentError(_l("This acknowledgement of receipt was already sent."))
    version = latest_version(document)
    if version is None:
        raise DocumentError(_l("Generate the acknowledgement of receipt before sending it."))
    problem = None
    if version.pdf_sha256 is None and version.docx_sha256 is not None:
        from app.documents.operations import ensure_pdf

        try:
            version = ensure_pdf(version.id)
        except PdfUnavailable as unavailable:
            problem = unavailable.message
    mail = db.session.get(Mail, document.mail_id)
    correspondent = db.session.get(Correspondent, document.correspondent_id) if document.correspondent_id else None
    assert mail is not None
    if version.pdf_sha256 is not None:
        attachment = (version.pdf_sha256, _file_name(document, mail, "pdf"), PDF_CONTENT_TYPE)
    else:
        attachment = (str(version.docx_sha256), _file_name(document, mail, "docx"), DOCX_CONTENT_TYPE)
    channel = "email" if correspondent is not None and correspondent.email else "print"
    moment = now or utcnow()
    version_id = version.id

    def write() -> Document:
        # Locked on PostgreSQL, so that of two people sending at once the second finds it sent.
        target = db.session.get(Document, document_id, populate_existing=True, with_for_update=True)
        assert target is not None
        if target.state in ("sent", "cancelled"):
            raise DocumentError(_l("This acknowledgement of receipt was already sent."))
        details: dict[str, object] = {"version": version.number}
        if channel == "email":
            assert correspondent is not None
            message = queue_document_email(target, mail, correspondent, attachment, moment)
            db.session.flush()
            details["email_message_id"] = message.id
        mark_document_sent(target, actor, channel, moment, configuration, **details)
        return target

    document = run_in_write_transaction(write, f"send acknowledgement {document_id}")
    log.info("mail %s acknowledgement %s sent by %s (%s)", mail.chrono, document_id, actor.display_name, channel)
    if channel == "email":
        return Sent(document, channel, pdf_problem=problem)
    sent_version = db.session.get(DocumentVersion, version_id)
    assert sent_version is not None
    pdf = version_pdf_bytes(sent_version)
    if pdf is not None:
        return Sent(document, channel, pdf, PDF_CONTENT_TYPE, problem)
    return Sent(document, channel, version_docx_bytes(sent_version), DOCX_CONTENT_TYPE, problem)


# --- Printing every pending AR --------------------------------------------------------


@dataclass
class _PrintItem:
    mail_id: int
    chrono: str
    correspondent_id: int
    document_id: int | None
    version_id: int | None
    docx: bytes | None
    pdf: bytes | None
    template_file_id: int | None = None
    template_id: str | None = None


@dataclass
class PrintBatch:
    """One merged PDF of printed ARs, and the ARs that could not be generated with the reason."""

    pdf: bytes | None
    printed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _pending_for_print(actor: UserContext, configuration: Configuration) -> list[tuple[Mail, Correspondent]]:
    """Return (mail, sender) pairs whose AR is pending, whose sender has no e-mail address, that the actor processes."""
    statement = (
        select(Mail)
        .where(acknowledgement_clause("pending", configuration), visible_mail_clause(actor),
               Mail.status.notin_(sorted(configuration.closed_statuses)))
        .order_by(Mail.arrival_date, Mail.id)
    )
    pairs: list[tuple[Mail, Correspondent]] = []
    for mail in db.session.execute(statement).scalars():
        if not can_edit_documents(actor, mail):
            continue
        for link in mail.correspondents:
            sender = link.correspondent
            if link.role != "sender" or (sender.email or "").strip():
                continue
            existing = acknowledgement_of(mail.id, sender.id)
            if existing is None or existing.state != "sent":
                pairs.append((mail, sender))
        if len(pairs) >= MAX_PRINT_BATCH:
            break
    return pairs[:MAX_PRINT_BATCH]


def print_pending(actor: UserContext, language: str = "fr", now: datetime | None = None) -> PrintBatch:
    """Print every pending AR of senders without an e-mail address into one PDF and mark them sent by post.

    Existing draft ARs are printed as their latest version; the others are
    generated. ARs whose mentions cannot be filled are left pending and
    listed in ``failed``. Needs LibreOffice: without it nothing is marked and
    PdfUnavailable is raised.
    """
    configuration = current_configuration()
    moment = now or utcnow()
    items, failed = _collect_print_items(actor, language, configuration, moment)
    batch = PrintBatch(None, failed=failed)
    if not items:
        return batch

    to_convert = [item for item in items if item.pdf is None]
    if to_convert:
        converted, problem = convert_documents([item.docx or b"" for item in to_convert])
        if converted is None:
            raise PdfUnavailable(problem)
        for item, pdf in zip(to_convert, converted, strict=True):
            item.pdf = pdf
    merged = _merge_pdfs([item.pdf or b"" for item in items])
    stored = [(_store(item.docx if item.version_id is None else None, item.pdf, convert=False)) for item in items]
    merged_blob = content_store().put_bytes(merged)

    def write() -> list[tuple[str, str]]:
        printed = []
        for item, files in zip(items, stored, strict=True):
            printed.append(_record_printed(actor, item, files, language, configuration, moment, merged_blob.sha256))
        return printed

    batch.printed = run_in_write_transaction(write, "print pending acknowledgements")
    batch.pdf = merged
    log.info("%s acknowledgements printed by %s, %s left pending", len(batch.printed), actor.display_name,
             len(batch.failed))
    return batch


def _collect_print_items(
    actor: UserContext, language: str, configuration: Configuration, moment: datetime,
) -> tuple[list[_PrintItem], list[tuple[str, str]]]:
    items: list[_PrintItem] = []
    failed: list[tuple[str, str]] = []
    for mail, sender in _pending_for_print(actor, configuration):
        existing = acknowledgement_of(mail.id, sender.id)
        version = latest_version(existing) if existing is not None else None
        if version is not None:
            items.append(_PrintItem(mail.id, mail.chrono, sender.id, existing.id if existing else None, version.id,
                                    version_docx_bytes(version), version_pdf_bytes(version)))
            continue
        try:
            docx, template_file_id, template_id = _render_acknowledgement(
                mail, sender, actor.user_id, language, configuration, moment
            )
        except EstafetteError as error:
            failed.append((mail.chrono, error.message))
            continue
        items.append(_PrintItem(mail.id, mail.chrono, sender.id, existing.id if existing else None, None, docx, None,
                                template_file_id, template_id))
    return items, failed


def _merge_pdfs(pdfs: list[bytes]) -> bytes:
    writer = PdfWriter()
    for pdf in pdfs:
        writer.append(PdfReader(io.BytesIO(pdf)))
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _record_printed(
    actor: UserContext, item: _PrintItem, files: _Files, language: str, configuration: Configuration,
    moment: datetime, merged_sha256: str,
) -> tuple[str, str]:
    mail = db.session.get(Mail, item.mail_id)
    assert mail is not None
    document = db.session.get(Document, item.document_id) if item.document_id else None
    if document is None:
        document, _version = create_document_with_version(
            actor, mail, kind=ACKNOWLEDGEMENT, title=_title(language), language=language,
            template_id=item.template_id, correspondent_id=item.correspondent_id, files=files,
            template_file_id=item.template_file_id, configuration=configuration, now=moment,
        )
    elif item.version_id is not None and files.pdf is not None:
        version = db.session.get(DocumentVersion, item.version_id)
        if version is not None and version.pdf_sha256 is None:
            version.pdf_sha256 = files.pdf.sha256
            version.pdf_size = files.pdf.size
    if document.state == "sent":
        raise DocumentError(_l("An acknowledgement of receipt of this batch was sent meanwhile: print again."))
    mark_document_sent(document, actor, "print", moment, configuration, batch_sha256=merged_sha256)
    correspondent = db.session.get(Correspondent, item.correspondent_id)
    return item.chrono, correspondent.display_name if correspondent else ""


def pending_count(actor: UserContext) -> int:
    """Return how many senders' ARs ``print_pending`` would print for the actor now (at most MAX_PRINT_BATCH)."""
    return len(_pending_for_print(actor, current_configuration()))


def pending_for_print(actor: UserContext) -> list[tuple[Mail, Correspondent]]:
    """Return the (mail, sender) pairs whose ARs ``print_pending`` would print for the actor now, oldest arrival first."""
    return _pending_for_print(actor, current_configuration())


__all__ = [
    "AcknowledgementIncomplete", "PrintBatch", "Sent", "acknowledgement_clause", "acknowledgement_of",
    "check_mentions", "generate_acknowledgement", "pending_count", "pending_for_print", "print_pending",
    "send_acknowledgement",
    "types_needing_acknowledgement",
]
