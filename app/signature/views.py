"""Pages of the signature book: my current steps, one circuit with its frozen PDF, the mail panel, my signature."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.configuration.operations import current_configuration
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.parsing import parse_row_id
from app.documents.models import Document
from app.documents.operations import DocumentError, PdfUnavailable, ensure_pdf, latest_version
from app.extensions import db
from app.mail.models import Mail
from app.organisation.context import UserContext, current_user_context
from app.portal.access import login_required, require_user
from app.signature.models import STEP_KINDS, WITH_AUTHOR
from app.signature.operations import (
    MAX_SIGNATURE_IMAGE_BYTES,
    CircuitRefused,
    Decision,
    FrozenDocumentChanged,
    StepInput,
    acting_member,
    approve,
    circuits_of_mail,
    frozen_pdf,
    interrupt,
    load_visible_circuit,
    may_interrupt,
    may_start,
    models_for,
    profile_of,
    reject,
    resubmit,
    save_profile,
    sign,
    start_circuit,
    waiting_for,
)

log = logging.getLogger(__name__)

# Rows of the form that builds a circuit by hand.
MANUAL_STEP_ROWS = 4


def _optional_int(text: str | None) -> int | None:
    text = (text or "").strip()
    # str.isdigit() also accepts "²", which int() rejects. A round or a step number may be 0.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def decision_from(values: MultiDict) -> Decision:
    return Decision(
        comment=values.get("comment") or None,
        expected_round=_optional_int(values.get("round")),
        expected_step=_optional_int(values.get("step")),
        expected_sha256=(values.get("sha256") or "").strip() or None,
    )


def manual_steps_from(values: MultiDict) -> list[StepInput]:
    steps = []
    for row in range(1, MANUAL_STEP_ROWS + 1):
        user_ids = [user_id for item in values.getlist(f"step_{row}_users") if (user_id := parse_row_id(item)) is not None]
        if user_ids:
            steps.append(StepInput(values.get(f"step_{row}_kind") or "", user_ids))
    return steps


@dataclass(frozen=True)
class RejectedCircuitForm:
    """A start form the request rejected: the values sent and the message to show in it."""

    form: MultiDict[str, str]
    message: str


def _error_text(error: ValidationFailed) -> str:
    details = " ".join(" ".join(messages) for messages in error.field_errors.values())
    return f"{error.message} {details}".strip() if error.message not in details else details


def signature_panel(mail: Mail) -> dict[str, Any]:
    """Return what the mail page shows of the signature book: circuits, drafts to send, models, members to pick."""
    from app.mail.views import _assignee_choices, locale_code

    user = current_user_context()
    if user is None:
        return {"circuits": []}
    circuits = circuits_of_mail(mail.id)
    busy = {circuit.document_id for circuit in circuits if circuit.state == "running"}
    documents = db.session.execute(select(Document).where(Document.mail_id == mail.id).order_by(Document.id)).scalars()
    drafts = [document for document in documents if document.state == "draft" and document.id not in busy]
    startable = may_start(user, mail) and bool(drafts)
    configuration = current_configuration()
    return {
        "circuits": circuits,
        "drafts": drafts,
        "may_start": startable,
        "models": models_for(configuration, mail) if startable else [],
        "user_choices": [item for item in _assignee_choices() if item[0]] if startable else [],
        "step_rows": range(1, MANUAL_STEP_ROWS + 1),
        "step_kinds": STEP_KINDS,
        "acting": {circuit.id: acting_member(user, circuit) is not None for circuit in circuits},
        "locale": locale_code(),
        # The values and message of a start form this request rejected, shown again in the open form.
        "rejected": getattr(g, "estafette_rejected_circuit_form", None),
    }


class SignatureView(BaseView):
    route_base = "/signature"
    default_view = "book"

    @expose("/")
    @login_required
    def book(self) -> Any:
        """List the circuits waiting for me or for an agent I stand in for: the signature book."""
        user = require_user()
        return self.render_template("signature/book.html", items=waiting_for(user))

    @expose("/circuit/<int:circuit_id>")
    @login_required
    def circuit(self, circuit_id: int) -> Any:
        from app.mail.views import locale_code

        user = require_user()
        circuit = load_visible_circuit(user, circuit_id)
        acting = acting_member(user, circuit)
        integrity_error = None
        try:
            frozen_pdf(circuit)
        except (FrozenDocumentChanged, CircuitRefused) as error:
            integrity_error = error.message
        rejections = [
            entry for entry in circuit.mail.history
            if entry.event == "circuit_rejected" and (entry.details or {}).get("circuit_id") == circuit.id
        ]
        return self.render_template(
            "signature/circuit.html", circuit=circuit, mail=circuit.mail, acting=acting,
            last_rejection=rejections[-1] if rejections else None,
            may_interrupt=may_interrupt(user, circuit), integrity_error=integrity_error,
            is_author=circuit.started_by_id == user.user_id or user.can("administer"),
            with_author=circuit.current_step == WITH_AUTHOR, locale=locale_code(),
            status_labels={key: item.labels.get(locale_code()) for key, item in current_configuration().statuses.items()},
        )

    @expose("/circuit/<int:circuit_id>/pdf")
    @login_required
    def pdf(self, circuit_id: int) -> Response:
        """Serve the frozen PDF inline, after checking it against the SHA-256 the circuit recorded."""
        user = require_user()
        circuit = load_visible_circuit(user, circuit_id)
        data = frozen_pdf(circuit)
        response = Response(data, mimetype="application/pdf")
        response.headers["Content-Disposition"] = "inline"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
        return response

    def _decide(self, circuit_id: int, operation: str) -> Any:
        user = require_user()
        decision = decision_from(request.form)
        try:
            if operation == "approve":
                approve(user, circuit_id, decision)
                flash(_("Approved."), "success")
            elif operation == "reject":
                reject(user, circuit_id, decision, request.form.get("back_to") or "previous")
                flash(_("The document was sent back."), "success")
            elif operation == "sign":
                circuit = sign(user, circuit_id, decision)
                flash(_("Signed.") if circuit.state != "signed" else _("Signed: the signed PDF is attached to the mail."),
                      "success")
            elif operation == "resubmit":
                resubmit(user, circuit_id, decision)
                flash(_("The document was sent to the first step again."), "success")
            else:
                interrupt(user, circuit_id, decision)
                flash(_("The circuit was interrupted: the document is a draft again."), "success")
        except ValidationFailed as failure:
            flash(_error_text(failure), "danger")
        except (Conflict, CircuitRefused, FrozenDocumentChanged) as refusal:
            flash(refusal.message, "warning")
        return redirect(url_for("SignatureView.circuit", circuit_id=circuit_id))

    @expose("/circuit/<int:circuit_id>/approve", methods=["POST"])
    @login_required
    def approve_step(self, circuit_id: int) -> Any:
        return self._decide(circuit_id, "approve")

    @expose("/circuit/<int:circuit_id>/reject", methods=["POST"])
    @login_required
    def reject_step(self, circuit_id: int) -> Any:
        return self._decide(circuit_id, "reject")

    @expose("/circuit/<int:circuit_id>/sign", methods=["POST"])
    @login_required
    def sign_step(self, circuit_id: int) -> Any:
        return self._decide(circuit_id, "sign")

    @expose("/circuit/<int:circuit_id>/resubmit", methods=["POST"])
    @login_required
    def resubmit_step(self, circuit_id: int) -> Any:
        return self._decide(circuit_id, "resubmit")

    @expose("/circuit/<int:circuit_id>/interrupt", methods=["POST"])
    @login_required
    def interrupt_circuit(self, circuit_id: int) -> Any:
        return self._decide(circuit_id, "interrupt")

    @expose("/mail/<int:mail_id>/start", methods=["POST"])
    @login_required
    def start(self, mail_id: int) -> Any:
        """Start a circuit from the mail page, along a model or steps picked by hand."""
        user = require_user()
        document_id = _optional_int(request.form.get("document_id"))
        if document_id is None:
            raise NotFound()
        model_id = request.form.get("model") or None
        try:
            _convert_if_needed(user, mail_id, document_id)
            circuit = start_circuit(
                user, mail_id, document_id, model_id=model_id,
                steps=None if model_id else manual_steps_from(request.form),
            )
        except ValidationFailed as failure:
            from app.mail.views import mail_page_context

            log.info("circuit start on mail %s rejected for user %s: %s", mail_id, user.user_id, _error_text(failure))
            g.estafette_rejected_circuit_form = RejectedCircuitForm(request.form, _error_text(failure))
            context = mail_page_context(user, mail_id)
            if not signature_panel(context["mail"]).get("may_start"):
                # The form, where the message goes, is no longer on the page.
                flash(_error_text(failure), "danger")
            return self.render_template("mail/detail.html", **context), 400
        except (Conflict, CircuitRefused, FrozenDocumentChanged, DocumentError, PdfUnavailable) as refusal:
            flash(refusal.message, "warning")
        else:
            flash(_("The document is in the signature book."), "success")
            return redirect(url_for("SignatureView.circuit", circuit_id=circuit.id))
        return redirect(url_for("MailView.detail", mail_id=mail_id) + "#signature")

    @expose("/profile", methods=["GET", "POST"])
    @login_required
    def profile(self) -> Any:
        """Show and save the title and image of my visible signature block."""
        user = require_user()
        if request.method == "POST":
            upload = request.files.get("image")
            # One byte past the limit is enough for save_profile() to reject the image with a clear message.
            image = upload.stream.read(MAX_SIGNATURE_IMAGE_BYTES + 1) if upload and upload.filename else None
            try:
                save_profile(user, request.form.get("title"), image, bool(request.form.get("remove_image")))
            except ValidationFailed as failure:
                flash(_error_text(failure), "danger")
            else:
                flash(_("Your signature is saved."), "success")
                return redirect(url_for("SignatureView.profile"))
        return self.render_template("signature/profile.html", profile=profile_of(user.user_id))

    @expose("/profile/image")
    @login_required
    def profile_image(self) -> Response:
        from app.attachments.operations import content_store

        user = require_user()
        profile = profile_of(user.user_id)
        if profile is None or not profile.image_sha256:
            raise NotFound()
        with content_store().open_verified(profile.image_sha256) as file:
            data = file.read()
        mimetype = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        response = Response(data, mimetype=mimetype)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "private, no-store"
        return response


def _convert_if_needed(user: UserContext, mail_id: int, document_id: int) -> None:
    """Convert the document's latest version to PDF with LibreOffice when it has none, before any transaction."""
    from app.mail.views import load_visible_mail

    mail = load_visible_mail(user, mail_id)
    document = db.session.get(Document, document_id)
    if document is None or document.mail_id != mail.id or not may_start(user, mail):
        return
    version = latest_version(document)
    if version is not None and version.pdf_sha256 is None:
        ensure_pdf(version.id)


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SignatureView())
    app.jinja_env.globals["signature_panel"] = signature_panel
