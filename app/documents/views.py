"""The documents panel of a mail's page, document downloads and uploads, acknowledgements, and the templates screen."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import get_locale
from flask_babel import gettext as _

from app.attachments.filenames import content_disposition
from app.configuration.operations import current_configuration
from app.core.errors import EstafetteError, NotFound, PermissionDenied, ValidationFailed, message_without_form
from app.core.types import utcnow
from app.correspondents.models import Correspondent
from app.documents.acknowledgements import (
    ACKNOWLEDGEMENT,
    Sent,
    acknowledgement_of,
    generate_acknowledgement,
    pending_for_print,
    print_pending,
    send_acknowledgement,
)
from app.documents.context import senders_of
from app.documents.conversion import soffice_binary
from app.documents.fields import MERGE_FIELDS
from app.documents.operations import (
    DOCX_CONTENT_TYPE,
    PDF_CONTENT_TYPE,
    can_edit_documents,
    documents_of,
    download_name,
    generate_reply,
    load_document,
    load_version,
    upload_version,
    version_docx_bytes,
    version_pdf_bytes,
)
from app.documents.replies import REPLY, send_reply
from app.documents.template_files import (
    current_template_file,
    read_template_file,
    template_file_history,
    template_spec,
    templates_for,
    upload_template_file,
)
from app.extensions import db
from app.mail.models import HistoryEntry, Mail
from app.organisation.context import current_user_context
from app.portal.access import login_required, require_user

log = logging.getLogger(__name__)


def _locale() -> str:
    return str(get_locale() or "fr")


def _flash_error(error: EstafetteError) -> None:
    flash(message_without_form(error), "danger")


def _back(mail_id: int) -> Any:
    return redirect(url_for("MailView.detail", mail_id=mail_id) + "#documents")


def _file_response(content: bytes, content_type: str, name: str) -> Response:
    response = Response(content, mimetype=content_type)
    response.headers["Content-Disposition"] = content_disposition(name, "attachment")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _flash_reply_sent(sent: Sent) -> None:
    if sent.channel == "email":
        flash(_("Signed reply queued for sending by e-mail."), "success")
    else:
        flash(_("Signed reply downloaded: print it and post it."), "success")
    if sent.close_problem:
        flash(_("The mail is not closed yet: %(problem)s", problem=sent.close_problem), "warning")


def _flash_produced(pdf_problem: str | None, message: str) -> None:
    flash(message, "success")
    if pdf_problem:
        flash(pdf_problem, "warning")


class DocumentView(BaseView):
    route_base = "/documents"

    @expose("/mail/<int:mail_id>/reply", methods=["POST"])
    @login_required
    def generate_reply(self, mail_id: int) -> Any:
        user = require_user()
        try:
            produced = generate_reply(
                user, mail_id, request.form.get("template_id", ""), request.form.get("language", "fr"),
                request.form.get("title"),
            )
        except EstafetteError as error:
            if error.http_status in (403, 404):
                raise
            _flash_error(error)
        else:
            _flash_produced(produced.pdf_problem, _("Reply draft generated: download it, edit it and upload the new version."))
        return _back(mail_id)

    @expose("/mail/<int:mail_id>/acknowledgement/<int:correspondent_id>", methods=["POST"])
    @login_required
    def generate_acknowledgement(self, mail_id: int, correspondent_id: int) -> Any:
        user = require_user()
        try:
            produced = generate_acknowledgement(user, mail_id, correspondent_id, request.form.get("language", "fr"))
        except EstafetteError as error:
            if error.http_status in (403, 404):
                raise
            _flash_error(error)
        else:
            _flash_produced(produced.pdf_problem, _("Acknowledgement of receipt generated."))
        return _back(mail_id)

    @expose("/<int:document_id>/send", methods=["POST"])
    @login_required
    def send(self, document_id: int) -> Any:
        """Send an acknowledgement of receipt or a signed reply: queued by e-mail, or downloaded to print."""
        user = require_user()
        document = load_document(user, document_id)
        reply = document.kind == REPLY
        try:
            sent = send_reply(user, document_id) if reply else send_acknowledgement(user, document_id)
        except EstafetteError as error:
            if error.http_status in (403, 404):
                raise
            _flash_error(error)
            return _back(document.mail_id)
        if sent.pdf_problem:
            flash(sent.pdf_problem, "warning")
        if reply:
            _flash_reply_sent(sent)
        if sent.channel == "email":
            if not reply:
                flash(_("Acknowledgement of receipt queued for sending by e-mail."), "success")
            return _back(document.mail_id)
        mail = document.mail
        extension = "pdf" if sent.content_type == PDF_CONTENT_TYPE else "docx"
        # A slash in a title would read as a directory in the download's name.
        title = document.title.replace("/", "-") if reply else _("Acknowledgement of receipt")
        name = f"{title} {mail.chrono.replace('/', '-')}.{extension}"
        return _file_response(sent.content or b"", sent.content_type or PDF_CONTENT_TYPE, name)

    @expose("/<int:document_id>/versions", methods=["POST"])
    @login_required
    def upload(self, document_id: int) -> Any:
        user = require_user()
        document = load_document(user, document_id)
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise ValidationFailed({"file": [_("Choose a .docx or PDF file.")]})
            produced = upload_version(user, document_id, upload.stream, upload.filename, request.form.get("note"))
        except EstafetteError as error:
            if error.http_status in (403, 404):
                raise
            _flash_error(error)
        else:
            _flash_produced(produced.pdf_problem, _("Version %(number)s saved.", number=produced.version.number))
        return _back(document.mail_id)

    @expose("/versions/<int:version_id>/<any(docx, pdf):file_type>")
    @login_required
    def download(self, version_id: int, file_type: str) -> Response:
        user = require_user()
        version = load_version(user, version_id)
        document = version.document
        content = version_docx_bytes(version) if file_type == "docx" else version_pdf_bytes(version)
        if content is None:
            raise NotFound()
        content_type = DOCX_CONTENT_TYPE if file_type == "docx" else PDF_CONTENT_TYPE
        return _file_response(content, content_type, download_name(document, version, file_type))

    @expose("/acknowledgements/print", methods=["GET", "POST"])
    @login_required
    def print_acknowledgements(self) -> Any:
        user = require_user()
        if not user.can("process") and not user.can("administer"):
            raise PermissionDenied()
        if request.method == "GET":
            pending = pending_for_print(user)
            return self.render_template(
                "documents/print.html", pending=len(pending), pending_items=pending, soffice=soffice_binary() is not None,
            )
        try:
            batch = print_pending(user, request.form.get("language", "fr"))
        except EstafetteError as error:
            if error.http_status in (403, 404):
                raise
            _flash_error(error)
            return redirect(url_for("DocumentView.print_acknowledgements"))
        for chrono, message in batch.failed:
            flash(f"{chrono} : {message}" if _locale().startswith("fr") else f"{chrono}: {message}", "warning")
        if batch.pdf is None:
            flash(_("No acknowledgement of receipt is waiting to be printed."), "info")
            return redirect(url_for("DocumentView.print_acknowledgements"))
        name = f"{_('Acknowledgements of receipt')} {utcnow():%Y-%m-%d %H%M}.pdf"
        return _file_response(batch.pdf, PDF_CONTENT_TYPE, name)

    # --- Templates screen (administrators) ---------------------------------------------

    @expose("/templates")
    @login_required
    def templates(self) -> Any:
        self._administrator()
        configuration = current_configuration()
        locale = _locale()
        rows = []
        for spec in sorted(configuration.templates.values(), key=lambda item: (item.kind, item.order, item.id)):
            rows.append({
                "spec": spec,
                "files": {language: current_template_file(spec.id, language) for language in spec.languages},
                "history": template_file_history(spec.id)[:10],
            })
        fields = [(item.name, item.description(locale)) for item in MERGE_FIELDS.values()]
        return self.render_template("documents/templates.html", rows=rows, fields=fields, locale=locale,
                                    mail_type_labels={key: spec.labels.get(locale) for key, spec in configuration.mail_types.items()})

    @expose("/templates/<template_id>/<any(fr, en):language>", methods=["POST"])
    @login_required
    def upload_template(self, template_id: str, language: str) -> Any:
        user = self._administrator()
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise ValidationFailed({"file": [_("Choose a .docx file.")]})
            upload_template_file(user, template_id, language, upload.stream, upload.filename)
        except ValidationFailed as error:
            _flash_error(error)
        else:
            flash(_("Template file replaced: new documents use it from now on."), "success")
        return redirect(url_for("DocumentView.templates"))

    @expose("/templates/<template_id>/<any(fr, en):language>/file")
    @login_required
    def template_file(self, template_id: str, language: str) -> Response:
        self._administrator()
        spec = template_spec(template_id)
        row = current_template_file(spec.id, language)
        if row is None:
            raise NotFound()
        return _file_response(read_template_file(row), DOCX_CONTENT_TYPE, row.file_name)

    def _administrator(self) -> Any:
        user = require_user()
        if not user.can("administer"):
            raise PermissionDenied(_("Only administrators may manage document templates."))
        return user


def documents_panel(mail: Mail) -> dict[str, Any]:
    """Gather what the documents panel of a mail's page shows."""
    user = current_user_context()
    configuration = current_configuration()
    spec = configuration.mail_types.get(mail.mail_type)
    documents = documents_of(mail.id)
    versions = {
        document.id: sorted(document.versions, key=lambda item: item.number, reverse=True) for document in documents
    }
    needs_acknowledgement = spec is not None and spec.acknowledgement != "none"
    senders = senders_of(mail) if needs_acknowledgement else []
    return {
        "can_edit": user is not None and can_edit_documents(user, mail),
        # A closed mail's documents take no new version or draft until it is reopened.
        "mail_closed": mail.status in configuration.closed_statuses,
        "documents": documents,
        "versions": versions,
        "reply_templates": templates_for(mail, "reply", configuration),
        # The addressee of each reply, whose e-mail address decides how the signed reply is sent.
        "addressees": {
            document.id: db.session.get(Correspondent, document.correspondent_id)
            for document in documents if document.kind == REPLY and document.correspondent_id
        },
        "needs_acknowledgement": needs_acknowledgement,
        "acknowledgements": [(sender, acknowledgement_of(mail.id, sender.id)) for sender in senders],
        "soffice": soffice_binary() is not None,
        "ACKNOWLEDGEMENT": ACKNOWLEDGEMENT,
    }


def document_history_text(entry: HistoryEntry) -> str:
    """Describe the history entries written by the documents area; "" for other events."""
    details = entry.details or {}
    if entry.event == "document_generated":
        return _("Document “%(title)s” generated (version %(version)s).", title=details.get("title", ""),
                 version=details.get("version", 1))
    if entry.event == "document_version_added":
        if details.get("signed"):
            return _("Signed version %(version)s of “%(title)s” added.", title=details.get("title", ""),
                     version=details.get("version", ""))
        return _("Version %(version)s of “%(title)s” added.", title=details.get("title", ""),
                 version=details.get("version", ""))
    if entry.event == "reply_sent":
        if details.get("channel") == "email":
            return _("Signed reply sent by e-mail to %(to)s.", to=details.get("to", ""))
        return _("Signed reply printed for sending by post to %(to)s.", to=details.get("to", "") or "—")
    if entry.event == "acknowledgement_sent":
        if details.get("channel") == "email":
            return _("Acknowledgement of receipt sent by e-mail to %(to)s.", to=details.get("to", ""))
        return _("Acknowledgement of receipt printed for sending by post to %(to)s.", to=details.get("to", ""))
    return ""


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(DocumentView())
    app.jinja_env.globals["documents_panel"] = documents_panel
    app.jinja_env.globals["document_history_text"] = document_history_text

