"""Download and inline preview of attachments, under the mail visibility rule."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import lazy_gettext as _l
from werkzeug.wsgi import wrap_file

from app.attachments.filenames import content_disposition
from app.attachments.models import Attachment
from app.attachments.operations import content_store
from app.attachments.storage import BlobNotFound, CorruptBlob
from app.core.errors import EstafetteError, NotFound
from app.extensions import db
from app.mail.views import load_visible_mail
from app.portal.access import login_required, require_user

log = logging.getLogger(__name__)

# Types a browser may show inline; anything else is always downloaded.
INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg"}
CHUNK_SIZE = 256 * 1024


class FileUnavailable(EstafetteError):
    http_status = 500


class AttachmentView(BaseView):
    route_base = "/attachments"

    def _send(self, attachment_id: int, disposition: str) -> Response:
        user = require_user()
        attachment = db.session.get(Attachment, attachment_id)
        if attachment is None:
            raise NotFound()
        load_visible_mail(user, attachment.mail_id)
        if disposition == "inline" and attachment.content_type not in INLINE_TYPES:
            disposition = "attachment"

        try:
            stream = content_store().open_verified(attachment.sha256)
        except (BlobNotFound, CorruptBlob) as exc:
            log.error("attachment %s of mail %s unreadable: %s", attachment.id, attachment.mail_id, exc)
            raise FileUnavailable(
                _l("This file is damaged or missing from the store: the administrators have been warned.")
            ) from None

        response = Response(
            wrap_file(request.environ, stream, CHUNK_SIZE), mimetype=attachment.content_type, direct_passthrough=True
        )
        response.headers["Content-Disposition"] = content_disposition(attachment.display_name, disposition)  # type: ignore[arg-type]
        response.headers["Content-Length"] = str(attachment.size)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-store"
        # A PDF opened inline runs in our origin: forbid scripts and plugins in it.
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
        return response

    @expose("/<int:attachment_id>/download")
    @login_required
    def download(self, attachment_id: int) -> Response:
        return self._send(attachment_id, "attachment")

    @expose("/<int:attachment_id>/preview")
    @login_required
    def preview(self, attachment_id: int) -> Response:
        return self._send(attachment_id, "inline")


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(AttachmentView())
