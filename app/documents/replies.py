"""Sending a signed reply to its addressee, then closing the mail that waited for it.

A reply signed in the signature book leaves the mail "À envoyer". Sending it
e-mails its signed PDF to the addressee when the addressee has an e-mail
address, and otherwise gives the PDF to print and post. Either way the
document is marked sent, the history records how and to whom, and the mail is
closed by the configuration's closing action when its status allows it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.configuration.operations import current_configuration
from app.core.db import run_in_write_transaction
from app.core.errors import EstafetteError, NotFound
from app.core.types import utcnow
from app.correspondents.models import Correspondent
from app.documents.acknowledgements import Sent, mark_document_sent, queue_document_email
from app.documents.models import Document, DocumentVersion
from app.documents.operations import PDF_CONTENT_TYPE, DocumentError, load_document, version_pdf_bytes
from app.extensions import db
from app.mail.models import Mail
from app.organisation.context import UserContext

log = logging.getLogger(__name__)

REPLY = "reply"

REPLY_EMAIL_TEXTS = {
    "fr": {
        "subject": "Réponse à votre courrier – {chrono}",
        "body": "Bonjour,\n\nVeuillez trouver ci-joint la réponse à votre courrier « {subject} », "
                "reçu le {arrival}.\n\n{department}\n",
    },
    "en": {
        "subject": "Reply to your letter – {chrono}",
        "body": "Hello,\n\nPlease find attached the reply to your letter \"{subject}\", "
                "received on {arrival}.\n\n{department}\n",
    },
}


def signed_version(document: Document) -> DocumentVersion | None:
    """Return the latest signed version of ``document`` that has a PDF, or None."""
    return db.session.execute(
        select(DocumentVersion)
        .where(DocumentVersion.document_id == document.id, DocumentVersion.signed.is_(True),
               DocumentVersion.pdf_sha256.is_not(None))
        .order_by(DocumentVersion.number.desc()).limit(1)
    ).scalar_one_or_none()


def send_reply(actor: UserContext, document_id: int, now: datetime | None = None) -> Sent:
    """Send the signed PDF of a reply by e-mail, or return it to print, then close its mail if it waits to be sent."""
    configuration = current_configuration()
    document = load_document(actor, document_id, edit=True)
    if document.kind != REPLY:
        raise NotFound()
    if document.state == "sent":
        raise DocumentError(_l("This reply was already sent."))
    version = signed_version(document)
    if document.state != "signed" or version is None:
        raise DocumentError(_l("Only a signed reply can be sent: send it to the signature book first."))
    mail = db.session.get(Mail, document.mail_id)
    assert mail is not None
    correspondent = db.session.get(Correspondent, document.correspondent_id) if document.correspondent_id else None
    channel = "email" if correspondent is not None and correspondent.email else "print"
    file_name = f"{document.title} - {mail.chrono.replace('/', '-')}.pdf".replace("/", "-")
    attachment = (str(version.pdf_sha256), file_name, PDF_CONTENT_TYPE)
    moment = now or utcnow()

    def write() -> Document:
        # Locked on PostgreSQL, so that of two people sending at once the second finds it sent.
        target = db.session.get(Document, document_id, populate_existing=True, with_for_update=True)
        assert target is not None
        if target.state != "signed":
            raise DocumentError(_l("This reply was already sent."))
        details: dict[str, object] = {"version": version.number}
        if channel == "email":
            assert correspondent is not None
            message = queue_document_email(target, mail, correspondent, attachment, moment, REPLY_EMAIL_TEXTS)
            db.session.flush()
            details["email_message_id"] = message.id
        mark_document_sent(target, actor, channel, moment, configuration, event="reply_sent", **details)
        return target

    document = run_in_write_transaction(write, f"send reply {document_id}")
    log.info("mail %s reply %s sent by %s (%s)", mail.chrono, document_id, actor.display_name, channel)
    close_problem = _close_after_sending(actor, mail.id)
    content = version_pdf_bytes(version) if channel == "print" else None
    return Sent(document, channel, content, PDF_CONTENT_TYPE if content else None, close_problem=close_problem)


def _close_after_sending(actor: UserContext, mail_id: int) -> str | None:
    """Close the mail by the configuration's closing action if it waits to be sent; return why it could not be."""
    from app.actions.operations import ActionInput, available_actions, perform_action

    configuration = current_configuration()
    mail = db.session.get(Mail, mail_id, populate_existing=True)
    if mail is None or mail.status != "to_send":
        return None
    closing = next((action for action in available_actions(actor, mail, configuration) if action.operation == "close"), None)
    if closing is None:
        return None
    try:
        perform_action(actor, mail_id, closing.id, ActionInput(comment=str(_l("Reply sent."))))
    except EstafetteError as error:
        log.info("mail %s not closed after its reply was sent: %s", mail.chrono, error.message)
        return error.message
    return None
